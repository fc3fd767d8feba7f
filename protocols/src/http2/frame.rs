//! HTTP/2 frames (RFC 9113 sections 4 and 6): the 9-byte frame header, frame types and flags, and the payload layouts (padding, priority, promised stream id).

use super::Side;

/// Length of a frame header.
pub(super) const FRAME_HEADER_LEN: usize = 9;
/// Stream id mask (the top bit is reserved).
pub(super) const STREAM_MASK: u32 = 0x7fff_ffff;
/// Largest frame length accepted when looking for a frame boundary (the
/// default SETTINGS_MAX_FRAME_SIZE, which common senders keep to).
pub(super) const HUNT_MAX_FRAME: u32 = 16_384;

/// Frame types (RFC 9113 section 6).
pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const PRIORITY: u8 = 0x2;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const PUSH_PROMISE: u8 = 0x5;
pub(super) const PING: u8 = 0x6;
pub(super) const GOAWAY: u8 = 0x7;
pub(super) const WINDOW_UPDATE: u8 = 0x8;
pub(super) const CONTINUATION: u8 = 0x9;

/// Frame flags.
pub(super) const FLAG_END_STREAM: u8 = 0x1;
pub(super) const FLAG_ACK: u8 = 0x1;
pub(super) const FLAG_END_HEADERS: u8 = 0x4;
pub(super) const FLAG_PADDED: u8 = 0x8;
pub(super) const FLAG_PRIORITY: u8 = 0x20;

/// SETTINGS identifiers used here.
pub(super) const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;

/// A parsed 9-byte frame header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct FrameHeader {
    pub(super) len: u32,
    pub(super) kind: u8,
    pub(super) flags: u8,
    pub(super) stream: u32,
    reserved: bool,
}

impl FrameHeader {
    /// Parses the first 9 bytes of `b`.
    pub(super) fn parse(b: &[u8]) -> Option<Self> {
        let arr: [u8; FRAME_HEADER_LEN] = b.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = arr;
        let stream = u32::from_be_bytes([s0, s1, s2, s3]);
        Some(Self {
            len: u32::from_be_bytes([0, l0, l1, l2]),
            kind,
            flags,
            stream: stream & STREAM_MASK,
            reserved: stream & !STREAM_MASK != 0,
        })
    }

    pub(super) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Frame bytes on the wire (header and payload).
    pub(super) fn wire(&self) -> u64 {
        u64::from(self.len).saturating_add(FRAME_HEADER_LEN as u64)
    }

    /// Frame kinds that carry a header block fragment.
    pub(super) fn carries_block(&self) -> bool {
        matches!(self.kind, HEADERS | PUSH_PROMISE | CONTINUATION)
    }

    /// Type-specific rules that hold for every well-formed frame (stream 0 or
    /// not, fixed lengths). Undefined flags and unknown types are allowed.
    pub(super) fn well_formed(&self, side: Side) -> bool {
        let len = self.len;
        match self.kind {
            DATA | HEADERS | CONTINUATION => self.stream != 0,
            PRIORITY => self.stream != 0 && len == 5,
            RST_STREAM => self.stream != 0 && len == 4,
            SETTINGS => {
                self.stream == 0 && len.is_multiple_of(6) && (!self.has(FLAG_ACK) || len == 0)
            }
            PUSH_PROMISE => side == Side::Response && self.stream != 0 && len >= 4,
            PING => self.stream == 0 && len == 8,
            GOAWAY => self.stream == 0 && len >= 8,
            WINDOW_UPDATE => len == 4,
            _ => true,
        }
    }

    /// Strict check used to find frame boundaries when resynchronising: a known
    /// type, only defined flags, a clear reserved bit, a plausible length and a
    /// stream id of the right parity for the side.
    pub(super) fn plausible(&self, side: Side, max_len: u32) -> bool {
        if self.reserved || self.len > max_len || !self.well_formed(side) {
            return false;
        }
        let client_stream = is_client_stream(self.stream);
        let flags_ok = |allowed: u8| self.flags & !allowed == 0;
        match self.kind {
            DATA => {
                flags_ok(FLAG_END_STREAM | FLAG_PADDED) && (side == Side::Response || client_stream)
            }
            HEADERS => {
                flags_ok(FLAG_END_STREAM | FLAG_END_HEADERS | FLAG_PADDED | FLAG_PRIORITY)
                    && (side == Side::Response || client_stream)
            }
            PRIORITY | RST_STREAM | GOAWAY | WINDOW_UPDATE => self.flags == 0,
            SETTINGS | PING => flags_ok(FLAG_ACK),
            PUSH_PROMISE => flags_ok(FLAG_END_HEADERS | FLAG_PADDED) && client_stream,
            CONTINUATION => flags_ok(FLAG_END_HEADERS),
            _ => false,
        }
    }

    /// The first frame a server sends: a SETTINGS frame (not an ACK).
    pub(super) fn is_initial_settings(&self) -> bool {
        self.kind == SETTINGS
            && self.stream == 0
            && self.flags == 0
            && !self.reserved
            && self.len.is_multiple_of(6)
            && self.len <= HUNT_MAX_FRAME
    }
}

/// Odd stream ids are opened by the client.
pub(super) fn is_client_stream(id: u32) -> bool {
    id & 1 == 1
}

/// Reads a big-endian u32 at the start of `b`.
pub(super) fn be_u32(b: &[u8]) -> Option<u32> {
    let arr: [u8; 4] = b.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

/// The header block fragment of a HEADERS payload (padding and priority removed).
pub(super) fn headers_fragment(flags: u8, p: &[u8]) -> Option<&[u8]> {
    let (mut start, end) = unpad(flags, p)?;
    if flags & FLAG_PRIORITY != 0 {
        start = start.checked_add(5)?;
    }
    p.get(start..end)
}

/// The promised stream id and header block fragment of a PUSH_PROMISE payload.
pub(super) fn promise_fragment(flags: u8, p: &[u8]) -> Option<(u32, &[u8])> {
    let (start, end) = unpad(flags, p)?;
    let promised = be_u32(p.get(start..)?)? & STREAM_MASK;
    Some((promised, p.get(start.checked_add(4)?..end)?))
}

/// Start and end of the content of a possibly padded payload.
fn unpad(flags: u8, p: &[u8]) -> Option<(usize, usize)> {
    if flags & FLAG_PADDED == 0 {
        return Some((0, p.len()));
    }
    let pad = usize::from(*p.first()?);
    let end = p.len().checked_sub(pad)?;
    (end >= 1).then_some((1, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::testutil::*;
    use crate::http2::{Http2Stream, Limits};
    use Side::{Request as Req, Response as Resp};

    #[test]
    fn padding_and_priority_are_stripped() {
        let mut h2 = Http2Stream::new(Limits {
            max_body_capture: 100,
            ..Limits::default()
        });
        open(&mut h2);
        let block = Enc::default().request("POST", "/pad").done();
        let mut p = vec![5u8];
        p.extend_from_slice(&[0x80, 0, 0, 0, 16]); // exclusive dependency on 0, weight 17
        p.extend_from_slice(&block);
        p.extend_from_slice(&[0; 5]);
        let mut bytes = frame(
            HEADERS,
            FLAG_END_HEADERS | FLAG_PADDED | FLAG_PRIORITY,
            1,
            &p,
        );
        let mut d = vec![10u8];
        d.extend_from_slice(b"hello");
        d.extend_from_slice(&[0; 10]);
        bytes.extend(frame(DATA, FLAG_PADDED | FLAG_END_STREAM, 1, &d));
        h2.push(Req, 10, &bytes);
        h2.push(
            Resp,
            11,
            &headers(1, false, &Enc::default().status(200).done()),
        );
        h2.push(
            Resp,
            11,
            &frame(DATA, FLAG_PADDED | FLAG_END_STREAM, 1, &[0]),
        );
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        let q = req(&out[0]);
        assert_eq!(q.path(), Some("/pad"));
        assert_eq!(q.body.as_deref(), Some(&b"hello"[..]));
        assert_eq!(q.body_size, 5);
        assert_eq!(q.wire_bytes, bytes.len() as u64);
        assert_eq!(resp(&out[0]).body_size, 0);
        assert_eq!(h2.parse_errors(), 0);

        // Padding longer than the payload: counted as errors, nothing panics.
        h2.push(
            Req,
            12,
            &frame(
                HEADERS,
                FLAG_END_HEADERS | FLAG_PADDED | FLAG_END_STREAM,
                3,
                &[200, 0x82],
            ),
        );
        h2.push(Req, 12, &frame(DATA, FLAG_PADDED, 3, &[9, 1, 2]));
        h2.push(Req, 12, &frame(DATA, FLAG_PADDED, 3, &[]));
        assert_eq!(h2.parse_errors(), 3);
        let out = h2.close(13);
        assert_eq!(out.len(), 1);
        assert!(req(&out[0]).headers_degraded);
        assert_eq!(req(&out[0]).body_size, 0);
    }
}
