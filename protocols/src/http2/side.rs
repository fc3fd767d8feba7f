//! The frame parser of one direction: the preface, frame headers, buffered payloads, streamed DATA, skipped frames, SETTINGS, RST_STREAM and GOAWAY, and bytes lost by the capture (DATA payload bytes the kernel skipped on purpose are in `skip.rs`).

use crate::names::StaticNames;
use std::mem;

use super::block::{Block, MAX_HEADER_BLOCK};
use super::frame::{
    be_u32, headers_fragment, promise_fragment, FrameHeader, CONTINUATION, DATA, FLAG_ACK,
    FLAG_END_STREAM, FLAG_PADDED, FRAME_HEADER_LEN, GOAWAY, HEADERS, PUSH_PROMISE, RST_STREAM,
    SETTINGS, SETTINGS_HEADER_TABLE_SIZE, STREAM_MASK,
};
use super::hpack::Hpack;
use super::preface::PREFACE;
use super::streams::Conn;
use super::{GapCause, GapCauses, Side};

/// Largest non-DATA frame payload buffered per side; longer frames are skipped.
const MAX_PAYLOAD_BUFFER: usize = 1 << 20;
/// Buffer capacity kept once a buffer is emptied.
pub(super) const IDLE_CAPACITY: usize = 16 * 1024;

/// What the parser of one side is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Request side: matching the client preface (`matched` bytes so far).
    Preface { matched: usize },
    /// Response side: reading the first frame header, which tells whether the
    /// connection is seen from its start.
    First,
    /// Reading a frame header.
    Header,
    /// Buffering the payload of the current (non-DATA) frame.
    Payload,
    /// Streaming the payload of the current DATA frame.
    Data(DataState),
    /// Skipping the rest of the current frame.
    Skip { remaining: u32 },
    /// Looking for a frame boundary.
    Hunt,
}

/// Progress through a DATA payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DataState {
    /// The pad length byte is still to come.
    pub(super) pad_pending: bool,
    /// Payload bytes still to come.
    pub(super) data_left: u32,
    /// Padding bytes still to come.
    pub(super) pad_left: u32,
}

impl DataState {
    /// Frame bytes still to come (pad length, payload, padding).
    pub(super) fn left(&self) -> u64 {
        u64::from(self.pad_pending) + u64::from(self.data_left) + u64::from(self.pad_left)
    }
}

/// Result of one parser step.
pub(super) struct Step {
    pub(super) used: usize,
    /// Bytes to parse again (from a resync point) before the rest of the input.
    pub(super) replay: Option<Vec<u8>>,
}

impl Step {
    pub(super) fn used(used: usize) -> Self {
        Self { used, replay: None }
    }
}

/// Frame parser of one direction.
#[derive(Debug)]
pub(super) struct SideParser {
    pub(super) side: Side,
    pub(super) mode: Mode,
    hdr: [u8; FRAME_HEADER_LEN],
    pub(super) hdr_len: usize,
    /// Header of the frame whose payload is being read.
    pub(super) frame: FrameHeader,
    /// Timestamp of the push that carried the first byte of the current frame.
    pub(super) frame_ts: u64,
    pub(super) payload: Vec<u8>,
    pub(super) hunt: Vec<u8>,
    pub(super) hunt_scan: usize,
    pub(super) block: Option<Block>,
    pub(super) hpack: Hpack,
    /// The side was joined after its start (or lost it in a gap).
    pub(super) joined: bool,
    /// The other side was joined mid-stream: do not trust a first SETTINGS frame.
    pub(super) peer_joined: bool,
    /// Causes of gaps inside the current frame (its stream carries them).
    frame_gaps: GapCauses,
    /// Causes of the gaps that made the HPACK state unreliable (streams whose
    /// headers then decode degraded carry them).
    pub(super) hpack_lost: GapCauses,
}

impl SideParser {
    pub(super) fn new(side: Side, keep_headers: Option<StaticNames>) -> Self {
        Self {
            side,
            mode: match side {
                Side::Request => Mode::Preface { matched: 0 },
                Side::Response => Mode::First,
            },
            hdr: [0; FRAME_HEADER_LEN],
            hdr_len: 0,
            frame: FrameHeader::default(),
            frame_ts: 0,
            payload: Vec::new(),
            hunt: Vec::new(),
            hunt_scan: 0,
            block: None,
            hpack: Hpack::new(keep_headers),
            joined: false,
            peer_joined: false,
            frame_gaps: GapCauses::NONE,
            hpack_lost: GapCauses::NONE,
        }
    }

    /// Runs one step on `data` (not empty).
    pub(super) fn step(
        &mut self,
        peer: &mut SideParser,
        conn: &mut Conn,
        ts: u64,
        data: &[u8],
    ) -> Step {
        match self.mode {
            Mode::Preface { matched } => self.step_preface(conn, matched, data),
            Mode::First | Mode::Header => self.step_header(peer, conn, ts, data),
            Mode::Payload => self.step_payload(peer, conn, ts, data),
            Mode::Data(st) => self.step_data(st, conn, ts, data),
            Mode::Skip { remaining } => self.step_skip(remaining, conn, ts, data),
            Mode::Hunt => self.step_hunt(data),
        }
    }

    fn step_preface(&mut self, conn: &mut Conn, matched: usize, data: &[u8]) -> Step {
        let want = PREFACE.get(matched..).unwrap_or_default();
        let n = want.iter().zip(data).take_while(|(a, b)| a == b).count();
        let matched = matched.saturating_add(n);
        if matched >= PREFACE.len() {
            self.mode = Mode::Header;
        } else if n < data.len() {
            // Not a preface: the connection was joined after its start.
            self.joined_mid_stream(conn, GapCause::JoinedMidStream.into());
            self.hunt.clear();
            self.hunt
                .extend_from_slice(PREFACE.get(..matched).unwrap_or_default());
        } else {
            self.mode = Mode::Preface { matched };
        }
        Step::used(n)
    }

    fn step_header(
        &mut self,
        peer: &mut SideParser,
        conn: &mut Conn,
        ts: u64,
        data: &[u8],
    ) -> Step {
        if self.hdr_len == 0 {
            self.frame_ts = ts;
        }
        let mut n = 0;
        for (dst, src) in self.hdr.iter_mut().skip(self.hdr_len).zip(data) {
            *dst = *src;
            n += 1;
        }
        self.hdr_len = self.hdr_len.saturating_add(n);
        if self.hdr_len < FRAME_HEADER_LEN {
            return Step::used(n);
        }
        self.hdr_len = 0;
        let Some(h) = FrameHeader::parse(&self.hdr) else {
            return Step::used(n);
        };
        // The first frame a server sends is SETTINGS: anything else means the
        // connection was joined after its start.
        if self.mode == Mode::First && (!h.is_initial_settings() || self.peer_joined) {
            self.joined_mid_stream(conn, GapCause::JoinedMidStream.into());
            self.hunt.clear();
            self.hunt.extend_from_slice(&self.hdr);
            return Step::used(n);
        }
        self.begin_frame(h, peer, conn, ts);
        Step::used(n)
    }

    fn begin_frame(&mut self, h: FrameHeader, peer: &mut SideParser, conn: &mut Conn, ts: u64) {
        if !h.well_formed(self.side) {
            conn.parse_errors = conn.parse_errors.saturating_add(1);
            let hdr = self.hdr;
            self.desync(conn);
            self.hunt
                .extend_from_slice(hdr.get(1..).unwrap_or_default());
            return;
        }
        let interrupts = self
            .block
            .as_ref()
            .is_some_and(|b| h.kind != CONTINUATION || h.stream != b.stream);
        if interrupts {
            conn.parse_errors = conn.parse_errors.saturating_add(1);
            self.lose_block(conn);
        }
        self.frame = h;
        self.frame_gaps = GapCauses::NONE;
        if h.kind == DATA {
            conn.touch(
                self.side,
                h.stream,
                self.frame_ts,
                ts,
                FRAME_HEADER_LEN as u64,
                true,
            );
            let mut st = DataState {
                pad_pending: h.has(FLAG_PADDED),
                data_left: h.len,
                pad_left: 0,
            };
            if st.pad_pending {
                if h.len == 0 {
                    conn.parse_errors = conn.parse_errors.saturating_add(1);
                    st.pad_pending = false;
                } else {
                    st.data_left = 0;
                }
            }
            self.mode = Mode::Data(st);
            if st.left() == 0 {
                self.end_data(conn, ts);
            }
            return;
        }
        if h.len as usize > MAX_PAYLOAD_BUFFER
            || (h.carries_block() && h.len as usize > MAX_HEADER_BLOCK)
        {
            if h.carries_block() {
                conn.parse_errors = conn.parse_errors.saturating_add(1);
            }
            self.mode = Mode::Skip { remaining: h.len };
            return;
        }
        self.payload.clear();
        self.mode = Mode::Payload;
        if h.len == 0 {
            self.end_payload(peer, conn, ts);
        }
    }

    fn step_payload(
        &mut self,
        peer: &mut SideParser,
        conn: &mut Conn,
        ts: u64,
        data: &[u8],
    ) -> Step {
        let need = (self.frame.len as usize).saturating_sub(self.payload.len());
        let n = need.min(data.len());
        self.payload
            .extend_from_slice(data.get(..n).unwrap_or_default());
        if self.payload.len() >= self.frame.len as usize {
            self.end_payload(peer, conn, ts);
        }
        Step::used(n)
    }

    fn end_payload(&mut self, peer: &mut SideParser, conn: &mut Conn, ts: u64) {
        self.mode = Mode::Header;
        let mut payload = mem::take(&mut self.payload);
        self.handle_frame(&payload, peer, conn, ts);
        payload.clear();
        if payload.capacity() <= IDLE_CAPACITY {
            self.payload = payload;
        }
    }

    fn step_data(&mut self, mut st: DataState, conn: &mut Conn, ts: u64, data: &[u8]) -> Step {
        let h = self.frame;
        let mut used = 0;
        if st.pad_pending {
            if let Some(&pad) = data.first() {
                used = 1;
                st.pad_pending = false;
                let rest = h.len.saturating_sub(1);
                if u32::from(pad) > rest {
                    conn.parse_errors = conn.parse_errors.saturating_add(1);
                    st.pad_left = rest;
                } else {
                    st.data_left = rest - u32::from(pad);
                    st.pad_left = u32::from(pad);
                }
                conn.touch(self.side, h.stream, self.frame_ts, ts, 1, false);
            }
        } else if st.data_left > 0 {
            let n = (st.data_left as usize).min(data.len());
            conn.body(self.side, h.stream, ts, data.get(..n).unwrap_or_default());
            st.data_left = st.data_left.saturating_sub(n as u32);
            used = n;
        } else if st.pad_left > 0 {
            let n = (st.pad_left as usize).min(data.len());
            conn.touch(self.side, h.stream, self.frame_ts, ts, n as u64, false);
            st.pad_left = st.pad_left.saturating_sub(n as u32);
            used = n;
        }
        self.mode = Mode::Data(st);
        if st.left() == 0 {
            self.end_data(conn, ts);
        }
        Step::used(used)
    }

    /// The current DATA frame's payload is done: END_STREAM ends its stream side.
    pub(super) fn end_data(&mut self, conn: &mut Conn, ts: u64) {
        self.mode = Mode::Header;
        if self.frame.has(FLAG_END_STREAM) {
            conn.end_stream(self.side, self.frame.stream, ts);
        }
    }

    fn step_skip(&mut self, remaining: u32, conn: &mut Conn, ts: u64, data: &[u8]) -> Step {
        let n = (remaining as usize).min(data.len());
        let remaining = remaining.saturating_sub(n as u32);
        self.mode = Mode::Skip { remaining };
        if remaining == 0 {
            self.end_skip(conn, ts);
        }
        Step::used(n)
    }

    fn end_skip(&mut self, conn: &mut Conn, ts: u64) {
        self.mode = Mode::Header;
        let h = self.frame;
        if h.carries_block() {
            self.block_fragment(conn, h, None, ts);
        }
        conn.flag(h.stream, mem::take(&mut self.frame_gaps));
    }

    /// `len` bytes lost before `ts`, for `causes` (see [`Http2Stream::gap`](super::Http2Stream::gap)).
    pub(super) fn gap(&mut self, conn: &mut Conn, ts: u64, len: u64, causes: GapCauses) {
        let left = match self.mode {
            Mode::Data(st) => Some(st.left()),
            Mode::Payload => {
                Some(u64::from(self.frame.len).saturating_sub(self.payload.len() as u64))
            }
            Mode::Skip { remaining } => Some(u64::from(remaining)),
            _ => None,
        };
        let Some(left) = left else {
            conn.parse_errors = conn.parse_errors.saturating_add(1);
            let at_start = matches!(self.mode, Mode::Preface { .. } | Mode::First);
            self.lose_frames(conn, causes);
            if at_start {
                self.joined_mid_stream(conn, causes);
            }
            return;
        };
        let inside = len.min(left);
        if !matches!(self.mode, Mode::Data(_)) {
            // The frame is lost: its stream is flagged once the frame ends.
            self.frame_gaps |= causes;
            if self.frame.carries_block() || self.block.is_some() {
                self.hpack_lost |= causes;
            }
        }
        match self.mode {
            Mode::Data(st) => self.gap_in_data(conn, ts, st, inside, causes),
            Mode::Payload => {
                conn.parse_errors = conn.parse_errors.saturating_add(1);
                self.payload.clear();
                let remaining = left.saturating_sub(inside) as u32;
                self.mode = Mode::Skip { remaining };
                if remaining == 0 {
                    self.end_skip(conn, ts);
                }
            }
            Mode::Skip { remaining } => {
                let remaining = remaining.saturating_sub(inside as u32);
                self.mode = Mode::Skip { remaining };
                if remaining == 0 {
                    self.end_skip(conn, ts);
                }
            }
            _ => {}
        }
        if len > left {
            conn.parse_errors = conn.parse_errors.saturating_add(1);
            self.lose_frames(conn, causes);
        }
    }

    /// `n` bytes of the current DATA frame lost.
    fn gap_in_data(
        &mut self,
        conn: &mut Conn,
        ts: u64,
        mut st: DataState,
        mut n: u64,
        causes: GapCauses,
    ) {
        let h = self.frame;
        conn.flag(h.stream, causes);
        if st.pad_pending && n > 0 {
            // The pad length is lost: count the rest as payload.
            st.pad_pending = false;
            st.data_left = h.len.saturating_sub(1);
            n -= 1;
            conn.touch(self.side, h.stream, self.frame_ts, ts, 1, false);
        }
        let d = n.min(u64::from(st.data_left));
        conn.lost_body(self.side, h.stream, ts, d);
        st.data_left = st.data_left.saturating_sub(d as u32);
        n = n.saturating_sub(d);
        let p = n.min(u64::from(st.pad_left));
        conn.touch(self.side, h.stream, self.frame_ts, ts, p, false);
        st.pad_left = st.pad_left.saturating_sub(p as u32);
        self.mode = Mode::Data(st);
        if st.left() == 0 {
            self.end_data(conn, ts);
        }
    }

    /// Frame boundaries are lost in a gap: every open stream may have lost
    /// frames, and so may every stream this side has not shown yet.
    fn lose_frames(&mut self, conn: &mut Conn, causes: GapCauses) {
        conn.lose_frames(self.side, causes);
        self.hpack_lost |= causes;
        self.desync(conn);
    }

    /// Handles a complete non-DATA frame.
    fn handle_frame(&mut self, payload: &[u8], peer: &mut SideParser, conn: &mut Conn, ts: u64) {
        let h = self.frame;
        match h.kind {
            HEADERS => {
                let frag = headers_fragment(h.flags, payload);
                if frag.is_none() {
                    conn.parse_errors = conn.parse_errors.saturating_add(1);
                }
                self.block_fragment(conn, h, frag.map(|f| (None, f)), ts);
            }
            PUSH_PROMISE => {
                let frag = promise_fragment(h.flags, payload);
                if frag.is_none() {
                    conn.parse_errors = conn.parse_errors.saturating_add(1);
                }
                self.block_fragment(conn, h, frag.map(|(p, f)| (Some(p), f)), ts);
            }
            CONTINUATION => self.block_fragment(conn, h, Some((None, payload)), ts),
            RST_STREAM => {
                if let Some(code) = be_u32(payload) {
                    conn.reset(self.side, h.stream, code, self.frame_ts, ts, h.wire());
                }
            }
            SETTINGS if !h.has(FLAG_ACK) => {
                for entry in payload.chunks_exact(6) {
                    let &[i0, i1, v0, v1, v2, v3] = entry else {
                        continue;
                    };
                    let value = u32::from_be_bytes([v0, v1, v2, v3]);
                    if u16::from_be_bytes([i0, i1]) == SETTINGS_HEADER_TABLE_SIZE {
                        peer.hpack.set_limit(value);
                    }
                }
            }
            GOAWAY => {
                if let Some(last) = be_u32(payload) {
                    conn.goaway(self.side, last & STREAM_MASK);
                }
            }
            _ => {}
        }
    }

    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.payload.capacity()
            + self.hunt.capacity()
            + self.block.as_ref().map_or(0, |b| b.buf.capacity())
            + self.hpack.buffered()
    }
}

#[cfg(test)]
mod tests {
    use crate::http2::testutil::*;
    use crate::http2::Side::{Request as Req, Response as Resp};
    use crate::http2::{Exchange, GapCause, Http2Stream, Limits, PREFACE};

    #[test]
    fn gap_inside_data_is_counted_as_body() {
        let mut h2 = Http2Stream::new(Limits {
            max_body_capture: 1000,
            ..Limits::default()
        });
        open(&mut h2);
        h2.push(
            Req,
            10,
            &headers(
                1,
                true,
                &Enc::default().request("GET", "/big").add("x-k", "v").done(),
            ),
        );
        h2.push(
            Resp,
            11,
            &headers(1, false, &Enc::default().status(200).done()),
        );
        let body: Vec<u8> = (0..100u8).collect();
        let f = data(1, true, &body);
        h2.push(Resp, 12, &f[..39]);
        h2.gap(Resp, 13, 40, GapCause::LostEvents);
        h2.push(Resp, 14, &f[79..]);
        h2.push(
            Req,
            15,
            &headers(
                3,
                true,
                &Enc::default().request("GET", "/after").idx(62).done(),
            ),
        );
        h2.push(
            Resp,
            16,
            &headers(
                3,
                true,
                &Enc::default().status(204).lit(":status", "204").done(),
            ),
        );
        let out = h2.drain();
        assert_eq!(out.len(), 2);
        let p = resp(&out[0]);
        assert_eq!(p.body_size, 100);
        assert_eq!(p.body.as_deref(), Some(&body[..30]));
        assert!(p.body_truncated && p.complete);
        assert_eq!(p.wire_bytes, f.len() as u64 + 9 + 1);
        assert_eq!(p.end_ns, 14);
        assert_eq!(req(&out[1]).header("x-k"), Some("v"), "HPACK state intact");
        assert_eq!(h2.parse_errors(), 0);
    }

    /// Client request 1 updates its table to 8192 and indexes three 2000-byte
    /// values; request 3 references the oldest one, which only survives in a
    /// table larger than 4096 bytes.
    fn table_size_connection(server_allows: bool) -> (Vec<Exchange>, u64) {
        let mut h2 = Http2Stream::new(Limits::default());
        let mut c = PREFACE.to_vec();
        if server_allows {
            c.extend(settings(&[]));
        } else {
            // Announced by the client: bounds the server's encoder, not the client's.
            c.extend(settings(&[(1, 8192)]));
        }
        h2.push(Req, 1, &c);
        if server_allows {
            h2.push(Resp, 2, &settings(&[(1, 8192)]));
        } else {
            h2.push(Resp, 2, &settings(&[]));
        }
        let mut enc = Enc::default().size(8192).request("GET", "/one");
        for name in ["x-a", "x-b", "x-c"] {
            enc = enc.add(name, &name.repeat(700)[..2000]);
        }
        h2.push(Req, 3, &headers(1, true, &enc.done()));
        h2.push(
            Req,
            4,
            &headers(
                3,
                true,
                &Enc::default().request("GET", "/two").idx(64).done(),
            ),
        );
        for id in [1, 3] {
            h2.push(
                Resp,
                5,
                &headers(id, true, &Enc::default().status(200).done()),
            );
        }
        (h2.drain(), h2.parse_errors())
    }

    #[test]
    fn settings_header_table_size_bounds_the_other_direction() {
        let (out, errors) = table_size_connection(true);
        assert_eq!(errors, 0);
        assert_eq!(out.len(), 2);
        let q = req(&out[1]);
        assert_eq!(q.header("x-a").map(str::len), Some(2000));
        assert!(!q.headers_degraded);

        let (out, errors) = table_size_connection(false);
        assert_eq!(errors, 1, "reference past a 4096-byte table");
        assert_eq!(out.len(), 2);
        let q = req(&out[1]);
        assert_eq!(q.header("x-a"), None);
        assert!(q.headers_degraded);
        assert_eq!(q.path(), Some("/two"), "fields before the error are kept");
    }
}
