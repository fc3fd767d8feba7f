//! Header blocks: a HEADERS or PUSH_PROMISE fragment and its CONTINUATION frames, assembled per direction and decoded once complete.

use super::frame::{
    is_client_stream, FrameHeader, CONTINUATION, FLAG_END_HEADERS, FLAG_END_STREAM, HEADERS,
    PUSH_PROMISE,
};
use super::hpack::Outcome;
use super::side::SideParser;
use super::streams::Conn;
use super::{GapCauses, Side};

/// Largest header block (HEADERS or PUSH_PROMISE plus CONTINUATION) decoded.
pub(super) const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// A header block being assembled from HEADERS/PUSH_PROMISE and CONTINUATION frames.
#[derive(Debug)]
pub(super) struct Block {
    pub(super) stream: u32,
    /// Promised stream id, for PUSH_PROMISE blocks.
    promised: Option<u32>,
    end_stream: bool,
    pub(super) buf: Vec<u8>,
    /// Some fragment was lost: the block is not decoded.
    lost: bool,
    /// Timestamp of the first frame of the block.
    start_ts: u64,
    /// Frame bytes of a PUSH_PROMISE block (credited to the promised request).
    wire: u64,
}

impl SideParser {
    /// The header block being assembled can no longer be completed.
    pub(super) fn lose_block(&mut self, conn: &mut Conn) {
        if let Some(b) = self.block.take() {
            self.hpack.mark_unknown();
            if b.promised.is_none() {
                conn.degrade(self.side, b.stream);
            }
        }
    }

    /// One frame of a header block; `frag` is `None` when its fragment is lost
    /// (and otherwise carries the promised stream id of a PUSH_PROMISE).
    pub(super) fn block_fragment(
        &mut self,
        conn: &mut Conn,
        h: FrameHeader,
        frag: Option<(Option<u32>, &[u8])>,
        ts: u64,
    ) {
        let side = self.side;
        if h.kind == CONTINUATION {
            let Some(block) = self.block.as_mut().filter(|b| b.stream == h.stream) else {
                // A CONTINUATION without the start of its block.
                conn.parse_errors = conn.parse_errors.saturating_add(1);
                self.hpack.mark_unknown();
                if side == Side::Request || is_client_stream(h.stream) || conn.is_open(h.stream) {
                    conn.touch(side, h.stream, self.frame_ts, ts, h.wire(), true);
                    conn.degrade(side, h.stream);
                }
                return;
            };
            let mut lost_now = false;
            match frag {
                Some((_, f)) if !block.lost => {
                    if block.buf.len().saturating_add(f.len()) > MAX_HEADER_BLOCK {
                        conn.parse_errors = conn.parse_errors.saturating_add(1);
                        lost_now = true;
                    } else {
                        block.buf.extend_from_slice(f);
                    }
                }
                Some(_) => {}
                None => lost_now = !block.lost,
            }
            if lost_now {
                block.lost = true;
                block.buf = Vec::new();
                self.hpack.mark_unknown();
            }
            if block.promised.is_some() {
                block.wire = block.wire.saturating_add(h.wire());
            } else {
                conn.touch(side, h.stream, self.frame_ts, ts, h.wire(), true);
            }
        } else {
            let promised = match (h.kind, frag) {
                (PUSH_PROMISE, Some((p, _))) => Some(p.unwrap_or(0)),
                (PUSH_PROMISE, None) => Some(0),
                _ => None,
            };
            let lost = frag.is_none();
            if lost {
                self.hpack.mark_unknown();
            }
            let block = Block {
                stream: h.stream,
                promised,
                end_stream: h.kind == HEADERS && h.has(FLAG_END_STREAM),
                buf: frag.map(|(_, f)| f.to_vec()).unwrap_or_default(),
                lost,
                start_ts: self.frame_ts,
                wire: if promised.is_some() { h.wire() } else { 0 },
            };
            if promised.is_none() {
                conn.touch(side, h.stream, self.frame_ts, ts, h.wire(), true);
            }
            self.block = Some(block);
        }
        if h.has(FLAG_END_HEADERS) {
            self.finish_block(conn, ts);
        }
    }

    /// Decodes the completed header block and applies it to its stream.
    fn finish_block(&mut self, conn: &mut Conn, ts: u64) {
        let Some(b) = self.block.take() else {
            return;
        };
        let reliable = !self.hpack.unknown;
        let (fields, outcome) = if b.lost {
            (Vec::new(), Outcome::Degraded)
        } else {
            self.hpack.decode(&b.buf)
        };
        if outcome == Outcome::Error && reliable {
            conn.parse_errors = conn.parse_errors.saturating_add(1);
        }
        let degraded = outcome != Outcome::Ok;
        let stream = match b.promised {
            None => {
                conn.apply_headers(self.side, b.stream, fields, degraded, b.end_stream, ts);
                b.stream
            }
            Some(promised) => {
                conn.promise(promised, fields, degraded, b.start_ts, ts, b.wire);
                promised
            }
        };
        if reliable && !b.lost {
            self.hpack_lost = GapCauses::NONE;
        } else if degraded {
            // Fields are missing because this side lost bytes: say which gaps.
            conn.flag(stream, self.hpack_lost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::testutil::*;
    use crate::http2::{Http2Stream, Limits};
    use Side::{Request as Req, Response as Resp};

    #[test]
    fn continuation_frames_and_interrupted_blocks() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        let mut enc = Enc::default().request("GET", "/long");
        for i in 0..20 {
            enc = enc.lit(&format!("x-h{i}"), &"v".repeat(50));
        }
        let block = enc.done();
        let (a, rest) = block.split_at(100);
        let (b, c) = rest.split_at(500);
        let mut bytes = frame(HEADERS, FLAG_END_STREAM, 1, a);
        bytes.extend(frame(CONTINUATION, 0, 1, b));
        bytes.extend(frame(CONTINUATION, FLAG_END_HEADERS, 1, c));
        h2.push(Req, 10, &bytes);
        h2.push(
            Resp,
            11,
            &headers(1, true, &Enc::default().status(200).done()),
        );
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        let q = req(&out[0]);
        assert_eq!(q.path(), Some("/long"));
        assert_eq!(q.headers.len(), 4 + 20);
        assert_eq!(q.header("x-h19"), Some("v".repeat(50).as_str()));
        assert_eq!(q.wire_bytes, 27 + block.len() as u64);
        assert!(q.complete && !out[0].partial);
        assert_eq!(h2.parse_errors(), 0);

        // A HEADERS without END_HEADERS interrupted by a DATA frame.
        let block = Enc::default().request("GET", "/cut").done();
        h2.push(Req, 12, &frame(HEADERS, FLAG_END_STREAM, 3, &block));
        h2.push(Req, 12, &data(1, false, b"x"));
        assert_eq!(h2.parse_errors(), 1);
        h2.push(
            Resp,
            13,
            &headers(3, true, &Enc::default().status(200).done()),
        );
        // The next request uses only static entries and literals: it decodes.
        h2.push(
            Req,
            14,
            &headers(5, true, &Enc::default().request("GET", "/next").done()),
        );
        h2.push(
            Resp,
            15,
            &headers(5, true, &Enc::default().status(200).done()),
        );
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(req(&out[0]).path(), Some("/next"));
        assert!(!req(&out[0]).headers_degraded);

        // A CONTINUATION out of nowhere.
        h2.push(Req, 16, &frame(CONTINUATION, FLAG_END_HEADERS, 7, &[0x82]));
        assert_eq!(h2.parse_errors(), 2);
        // Stream 3's request never ended (its block never did).
        let out = h2.close(17);
        let ids: Vec<u32> = out.iter().map(|e| e.stream_id).collect();
        assert_eq!(ids, [3, 7]);
        assert!(req(&out[0]).headers_degraded && !req(&out[0]).complete && out[0].partial);
        assert!(req(&out[1]).headers_degraded);
    }

    #[test]
    fn oversized_header_block_is_dropped() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        let mut bytes = frame(
            HEADERS,
            FLAG_END_STREAM,
            1,
            &Enc::default().request("GET", "/").done(),
        );
        for _ in 0..17 {
            bytes.extend(frame(
                CONTINUATION,
                0,
                1,
                &Enc::default().lit("x-big", &"z".repeat(16_000)).done(),
            ));
        }
        bytes.extend(frame(CONTINUATION, FLAG_END_HEADERS, 1, &[]));
        h2.push(Req, 10, &bytes);
        h2.push(
            Resp,
            11,
            &headers(1, true, &Enc::default().status(200).done()),
        );
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        assert!(req(&out[0]).headers_degraded && req(&out[0]).complete);
        assert_eq!(req(&out[0]).wire_bytes, bytes.len() as u64);
        assert_eq!(h2.parse_errors(), 1);
        assert!(h2.buffered() < 2 * MAX_HEADER_BLOCK);
    }
}
