//! Incremental, panic-free HTTP/2 parser that turns the captured client and server byte streams of one connection into per-stream exchanges.
//!
//! Each side is parsed frame by frame (any split of the input gives the same
//! result), header blocks are decoded by the built-in HPACK decoder (RFC 7541,
//! one per direction), and frames are grouped by stream into [`Exchange`]s.
//! A connection joined after its start, or a side that lost bytes outside a
//! DATA payload, resynchronises on the first two consecutive plausible frame
//! headers; its HPACK state is then partly unknown, and header blocks that
//! reference unknown table entries are reported as
//! [`Message::headers_degraded`] instead of failing the connection.

use std::collections::{HashMap, HashSet, VecDeque};
use std::mem;

pub use super::http1::Side;

/// The HTTP/2 client connection preface, sent first on the request side.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of a frame header.
const FRAME_HEADER_LEN: usize = 9;
/// Largest non-DATA frame payload buffered per side; longer frames are skipped.
const MAX_PAYLOAD_BUFFER: usize = 1 << 20;
/// Largest header block (HEADERS or PUSH_PROMISE plus CONTINUATION) decoded.
const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// Largest HPACK dynamic table kept, whatever the peers negotiate.
const MAX_TABLE_SIZE: usize = 64 * 1024;
/// SETTINGS_HEADER_TABLE_SIZE before any SETTINGS frame.
const DEFAULT_TABLE_SIZE: usize = 4096;
/// Bytes counted per dynamic table entry besides its name and value.
const ENTRY_OVERHEAD: usize = 32;
/// Streams tracked at once; the oldest one is given up (as partial) beyond this.
const MAX_OPEN_STREAMS: usize = 1024;
/// Ids of finished streams remembered, so that late frames do not reopen them.
const FINISHED_REMEMBERED: usize = 4096;
/// Header fields kept per message (headers and trailers together).
const MAX_MESSAGE_FIELDS: usize = 256;
/// Decoded header bytes (names and values) kept per message.
const MAX_MESSAGE_HEADER_BYTES: usize = 64 * 1024;
/// Decoded header bytes kept over all open streams of the connection.
const MAX_CONN_HEADER_BYTES: usize = 8 << 20;
/// Largest frame length accepted when looking for a frame boundary (the
/// default SETTINGS_MAX_FRAME_SIZE, which common senders keep to).
const HUNT_MAX_FRAME: u32 = 16_384;
/// Bytes appended to the resync buffer per step.
const HUNT_CHUNK: usize = 64 * 1024;
/// Scan offset past which the resync buffer is compacted.
const HUNT_COMPACT: usize = 4096;
/// Buffer capacity kept once a buffer is emptied.
const IDLE_CAPACITY: usize = 16 * 1024;
/// Consecutive zero-progress steps tolerated before a byte is skipped.
const MAX_STALLS: u8 = 8;
/// Stream id mask (the top bit is reserved).
const STREAM_MASK: u32 = 0x7fff_ffff;

/// Frame types (RFC 9113 section 6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

/// Frame flags.
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

/// SETTINGS identifiers used here.
const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;

/// Parser limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// DATA payload bytes kept per message (0 = keep no body bytes). Capture
    /// stops at the first gap, so the kept bytes are always a contiguous prefix.
    pub max_body_capture: usize,
}

/// One header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Field name as on the wire (lowercase in HTTP/2); pseudo-headers such as
    /// `:method` are kept.
    pub name: String,
    /// Field value, decoded lossily as UTF-8.
    pub value: String,
}

/// One side (request or response) of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Fields of the first header block, in wire order (interim 1xx responses
    /// are dropped).
    pub headers: Vec<Header>,
    /// Fields of later header blocks (trailers), in wire order.
    pub trailers: Vec<Header>,
    /// DATA payload length (padding excluded), including bytes lost in gaps.
    pub body_size: u64,
    /// First `max_body_capture` payload bytes; `None` when capture is off.
    pub body: Option<Vec<u8>>,
    /// Some payload bytes are not in `body` (capture limit reached, or lost in a gap).
    pub body_truncated: bool,
    /// Frame bytes of this stream on this side: 9-byte headers and payloads of
    /// its HEADERS, CONTINUATION, DATA (padding included) and RST_STREAM frames.
    /// For a pushed stream's request: its PUSH_PROMISE and CONTINUATION frames.
    pub wire_bytes: u64,
    /// Timestamp of the push that carried the first byte of the stream's first frame on this side.
    pub start_ns: u64,
    /// Timestamp of the push that carried the last byte of the stream's last frame on this side.
    pub end_ns: u64,
    /// END_STREAM was seen (a pushed stream's request is always complete).
    pub complete: bool,
    /// Some header block could not be decoded (HPACK state missed, bytes lost,
    /// block too large) or was never seen: headers may be missing.
    pub headers_degraded: bool,
}

impl Message {
    /// First value of the field `name` (ASCII case-insensitive), looked up in
    /// the headers and then in the trailers.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .chain(self.trailers.iter())
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The `:method` pseudo-header.
    pub fn method(&self) -> Option<&str> {
        self.pseudo(":method")
    }

    /// The `:path` pseudo-header.
    pub fn path(&self) -> Option<&str> {
        self.pseudo(":path")
    }

    /// The `:authority` pseudo-header, or else the `host` header.
    pub fn authority(&self) -> Option<&str> {
        self.pseudo(":authority").or_else(|| self.pseudo("host"))
    }

    /// The `:scheme` pseudo-header.
    pub fn scheme(&self) -> Option<&str> {
        self.pseudo(":scheme")
    }

    /// The `:status` pseudo-header as a number.
    pub fn status(&self) -> Option<u16> {
        self.pseudo(":status")?.trim().parse().ok()
    }

    /// First value of `name` in the headers only.
    fn pseudo(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

/// The two sides of one HTTP/2 stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Stream identifier (odd: opened by the client; even: server push).
    pub stream_id: u32,
    /// What the client sent; `None` when no frame of it was seen. For a pushed
    /// stream: the request of its PUSH_PROMISE.
    pub request: Option<Message>,
    /// What the server sent; `None` when no frame of it was seen.
    pub response: Option<Message>,
    /// RST_STREAM error code, from either side.
    pub reset: Option<u32>,
    /// Ended by GOAWAY: the stream id is above the last stream id of a GOAWAY
    /// from the peer, or the connection closed after a GOAWAY.
    pub goaway: bool,
    /// Not both sides complete.
    pub partial: bool,
    /// gRPC call details, when a `content-type` starts with `application/grpc`.
    pub grpc: Option<Grpc>,
}

/// gRPC call details of an exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grpc {
    /// Fully qualified service, e.g. `helloworld.Greeter` (from `:path`).
    pub service: String,
    /// Method name, e.g. `SayHello` (from `:path`).
    pub method: String,
    /// `grpc-status` from the response trailers, or from the response headers
    /// of a trailers-only response.
    pub status: Option<u32>,
    /// `grpc-message`, percent-decoded, from the same place as `status`.
    pub message: Option<String>,
}

/// Parser for both directions of one HTTP/2 connection.
///
/// Feed each side's bytes in wire order with [`Http2Stream::push`]; bytes lost
/// by the capture are reported with [`Http2Stream::gap`]. Finished exchanges
/// are taken with [`Http2Stream::drain`], the rest with [`Http2Stream::close`].
/// SETTINGS sent by one side configure the parser of the other side (the
/// server's SETTINGS_HEADER_TABLE_SIZE bounds the HPACK table of the request
/// side, and vice versa).
#[derive(Debug)]
pub struct Http2Stream {
    request: SideParser,
    response: SideParser,
    conn: Conn,
    closed: bool,
}

impl Http2Stream {
    /// Creates a parser for a new connection.
    pub fn new(limits: Limits) -> Self {
        Self {
            request: SideParser::new(Side::Request),
            response: SideParser::new(Side::Response),
            conn: Conn::new(limits),
            closed: false,
        }
    }

    /// Feed bytes of one side in wire order; `ts_ns` = kernel timestamp of the capture event.
    ///
    /// The request side may start with [`PREFACE`] (connection seen from its
    /// start) or anywhere in the byte stream (joined mid-stream): frames are then
    /// parsed from the first byte that starts two consecutive plausible frame
    /// headers. Bytes are ignored after [`Http2Stream::close`].
    pub fn push(&mut self, side: Side, ts_ns: u64, data: &[u8]) {
        if self.closed {
            return;
        }
        let (me, peer) = match side {
            Side::Request => (&mut self.request, &mut self.response),
            Side::Response => (&mut self.response, &mut self.request),
        };
        let conn = &mut self.conn;
        let mut replay: Vec<u8> = Vec::new();
        let mut replay_pos = 0usize;
        let mut data_pos = 0usize;
        let mut stalls = 0u8;
        loop {
            let (from_replay, chunk) = match replay.get(replay_pos..).filter(|r| !r.is_empty()) {
                Some(r) => (true, r),
                None => match data.get(data_pos..).filter(|r| !r.is_empty()) {
                    Some(r) => (false, r),
                    None => break,
                },
            };
            let step = me.step(peer, conn, ts_ns, chunk);
            if me.joined && peer.mode == Mode::First {
                peer.peer_joined = true;
            }
            let mut used = step.used.min(chunk.len());
            if used == 0 && step.replay.is_none() {
                stalls = stalls.saturating_add(1);
                if stalls > MAX_STALLS {
                    stalls = 0;
                    used = 1;
                }
            } else {
                stalls = 0;
            }
            if from_replay {
                replay_pos = replay_pos.saturating_add(used);
            } else {
                data_pos = data_pos.saturating_add(used);
            }
            if let Some(mut again) = step.replay {
                again.extend_from_slice(replay.get(replay_pos..).unwrap_or_default());
                replay = again;
                replay_pos = 0;
            }
        }
    }

    /// `len` bytes of this side were lost (payload truncated by the kernel, or events dropped).
    ///
    /// Inside a DATA payload they are counted into `body_size` and `wire_bytes`
    /// (the body capture stops there). Anywhere else the frame they fall in is
    /// lost, a parse error is counted, and when they run past the end of the
    /// current frame the side resynchronises on the following bytes; its HPACK
    /// state is then unreliable (see [`Message::headers_degraded`]).
    pub fn gap(&mut self, side: Side, ts_ns: u64, len: u64) {
        if self.closed || len == 0 {
            return;
        }
        let me = match side {
            Side::Request => &mut self.request,
            Side::Response => &mut self.response,
        };
        me.gap(&mut self.conn, ts_ns, len);
        if side == Side::Request && self.request.joined && self.response.mode == Mode::First {
            self.response.peer_joined = true;
        }
    }

    /// Exchanges finished so far (both sides complete, or reset, or refused by
    /// GOAWAY, or given up to stay within the stream limit), in completion order.
    pub fn drain(&mut self) -> Vec<Exchange> {
        mem::take(&mut self.conn.ready)
    }

    /// The connection closed: returns the exchanges not yet drained, then every
    /// stream still open as a partial exchange (in the order streams were
    /// first seen; `goaway` is set when a GOAWAY was seen). Later input is
    /// ignored. `end_ns` of unfinished messages stays that of their last frame,
    /// so `_ts_ns` is not used.
    pub fn close(&mut self, _ts_ns: u64) -> Vec<Exchange> {
        if !self.closed {
            self.closed = true;
            self.conn.close_all();
        }
        self.drain()
    }

    /// Number of parse errors (malformed or lost frames, desyncs, undecodable
    /// header blocks while the HPACK state was reliable) seen so far.
    pub fn parse_errors(&self) -> u64 {
        self.conn.parse_errors
    }

    /// Bytes held in buffers and tables (capacity), for memory-bound tests.
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.request.buffered() + self.response.buffered() + self.conn.buffered()
    }
}

/// Cheap check used for protocol detection: do these first bytes of a stream
/// start with the HTTP/2 client preface?
///
/// True when `first` begins with [`PREFACE`], or is a prefix of it at least 4
/// bytes long (`"PRI "`), so that a short first read is recognised.
pub fn looks_like_http2_preface(first: &[u8]) -> bool {
    if first.len() >= PREFACE.len() {
        first.starts_with(PREFACE)
    } else {
        first.len() >= 4 && PREFACE.starts_with(first)
    }
}

// ---------------------------------------------------------------- frames

/// A parsed 9-byte frame header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FrameHeader {
    len: u32,
    kind: u8,
    flags: u8,
    stream: u32,
    reserved: bool,
}

impl FrameHeader {
    /// Parses the first 9 bytes of `b`.
    fn parse(b: &[u8]) -> Option<Self> {
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

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Frame bytes on the wire (header and payload).
    fn wire(&self) -> u64 {
        u64::from(self.len).saturating_add(FRAME_HEADER_LEN as u64)
    }

    /// Frame kinds that carry a header block fragment.
    fn carries_block(&self) -> bool {
        matches!(self.kind, HEADERS | PUSH_PROMISE | CONTINUATION)
    }

    /// Type-specific rules that hold for every well-formed frame (stream 0 or
    /// not, fixed lengths). Undefined flags and unknown types are allowed.
    fn well_formed(&self, side: Side) -> bool {
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
    fn plausible(&self, side: Side, max_len: u32) -> bool {
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
    fn is_initial_settings(&self) -> bool {
        self.kind == SETTINGS
            && self.stream == 0
            && self.flags == 0
            && !self.reserved
            && self.len.is_multiple_of(6)
            && self.len <= HUNT_MAX_FRAME
    }
}

/// Odd stream ids are opened by the client.
fn is_client_stream(id: u32) -> bool {
    id & 1 == 1
}

/// Reads a big-endian u32 at the start of `b`.
fn be_u32(b: &[u8]) -> Option<u32> {
    let arr: [u8; 4] = b.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

/// The header block fragment of a HEADERS payload (padding and priority removed).
fn headers_fragment(flags: u8, p: &[u8]) -> Option<&[u8]> {
    let (mut start, end) = unpad(flags, p)?;
    if flags & FLAG_PRIORITY != 0 {
        start = start.checked_add(5)?;
    }
    p.get(start..end)
}

/// The promised stream id and header block fragment of a PUSH_PROMISE payload.
fn promise_fragment(flags: u8, p: &[u8]) -> Option<(u32, &[u8])> {
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

// ---------------------------------------------------------------- one side

/// What the parser of one side is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
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
struct DataState {
    /// The pad length byte is still to come.
    pad_pending: bool,
    /// Payload bytes still to come.
    data_left: u32,
    /// Padding bytes still to come.
    pad_left: u32,
}

impl DataState {
    fn left(&self) -> u64 {
        u64::from(self.pad_pending) + u64::from(self.data_left) + u64::from(self.pad_left)
    }
}

/// A header block being assembled from HEADERS/PUSH_PROMISE and CONTINUATION frames.
#[derive(Debug)]
struct Block {
    stream: u32,
    /// Promised stream id, for PUSH_PROMISE blocks.
    promised: Option<u32>,
    end_stream: bool,
    buf: Vec<u8>,
    /// Some fragment was lost: the block is not decoded.
    lost: bool,
    /// Timestamp of the first frame of the block.
    start_ts: u64,
    /// Frame bytes of a PUSH_PROMISE block (credited to the promised request).
    wire: u64,
}

/// Result of one parser step.
struct Step {
    used: usize,
    /// Bytes to parse again (from a resync point) before the rest of the input.
    replay: Option<Vec<u8>>,
}

impl Step {
    fn used(used: usize) -> Self {
        Self { used, replay: None }
    }
}

/// Frame parser of one direction.
#[derive(Debug)]
struct SideParser {
    side: Side,
    mode: Mode,
    hdr: [u8; FRAME_HEADER_LEN],
    hdr_len: usize,
    /// Header of the frame whose payload is being read.
    frame: FrameHeader,
    /// Timestamp of the push that carried the first byte of the current frame.
    frame_ts: u64,
    payload: Vec<u8>,
    hunt: Vec<u8>,
    hunt_scan: usize,
    block: Option<Block>,
    hpack: Hpack,
    /// The side was joined after its start (or lost it in a gap).
    joined: bool,
    /// The other side was joined mid-stream: do not trust a first SETTINGS frame.
    peer_joined: bool,
}

impl SideParser {
    fn new(side: Side) -> Self {
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
            hpack: Hpack::new(),
            joined: false,
            peer_joined: false,
        }
    }

    /// Runs one step on `data` (not empty).
    fn step(&mut self, peer: &mut SideParser, conn: &mut Conn, ts: u64, data: &[u8]) -> Step {
        match self.mode {
            Mode::Preface { matched } => self.step_preface(matched, data),
            Mode::First | Mode::Header => self.step_header(peer, conn, ts, data),
            Mode::Payload => self.step_payload(peer, conn, ts, data),
            Mode::Data(st) => self.step_data(st, conn, ts, data),
            Mode::Skip { remaining } => self.step_skip(remaining, conn, ts, data),
            Mode::Hunt => self.step_hunt(data),
        }
    }

    fn step_preface(&mut self, matched: usize, data: &[u8]) -> Step {
        let want = PREFACE.get(matched..).unwrap_or_default();
        let n = want.iter().zip(data).take_while(|(a, b)| a == b).count();
        let matched = matched.saturating_add(n);
        if matched >= PREFACE.len() {
            self.mode = Mode::Header;
        } else if n < data.len() {
            // Not a preface: the connection was joined after its start.
            self.joined_mid_stream();
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
            self.joined_mid_stream();
            self.hunt.clear();
            self.hunt.extend_from_slice(&self.hdr);
            return Step::used(n);
        }
        self.begin_frame(h, peer, conn, ts);
        Step::used(n)
    }

    /// The side was joined after its start: frame boundaries and HPACK state are unknown.
    fn joined_mid_stream(&mut self) {
        self.mode = Mode::Hunt;
        self.joined = true;
        self.hunt_scan = 0;
        self.hpack.joined_mid_stream();
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

    fn end_data(&mut self, conn: &mut Conn, ts: u64) {
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
        if self.frame.carries_block() {
            let h = self.frame;
            self.block_fragment(conn, h, None, ts);
        }
    }

    fn step_hunt(&mut self, data: &[u8]) -> Step {
        let n = data.len().min(HUNT_CHUNK);
        self.hunt
            .extend_from_slice(data.get(..n).unwrap_or_default());
        let max_len = HUNT_MAX_FRAME;
        loop {
            let i = self.hunt_scan;
            let Some(h) = self.hunt.get(i..).and_then(FrameHeader::parse) else {
                break;
            };
            if !h.plausible(self.side, max_len) {
                self.hunt_scan = i.saturating_add(1);
                continue;
            }
            let next = i
                .saturating_add(FRAME_HEADER_LEN)
                .saturating_add(h.len as usize);
            let Some(n2) = self.hunt.get(next..).and_then(FrameHeader::parse) else {
                // Wait for the next header (bounded by max_len).
                break;
            };
            let chained = n2.plausible(self.side, max_len)
                && (h.has(FLAG_END_HEADERS)
                    || !matches!(h.kind, HEADERS | PUSH_PROMISE | CONTINUATION)
                    || (n2.kind == CONTINUATION && n2.stream == h.stream));
            if chained {
                let mut rest = mem::take(&mut self.hunt);
                rest.drain(..i.min(rest.len()));
                self.hunt_scan = 0;
                self.mode = Mode::Header;
                self.hdr_len = 0;
                return Step {
                    used: n,
                    replay: Some(rest),
                };
            }
            self.hunt_scan = i.saturating_add(1);
        }
        if self.hunt_scan >= HUNT_COMPACT && self.hunt_scan.saturating_mul(2) >= self.hunt.len() {
            let cut = self.hunt_scan.min(self.hunt.len());
            self.hunt.drain(..cut);
            self.hunt_scan = 0;
            if self.hunt.capacity() > 4 * IDLE_CAPACITY && self.hunt.len() < IDLE_CAPACITY {
                self.hunt.shrink_to(IDLE_CAPACITY);
            }
        }
        Step::used(n)
    }

    /// Framing is lost: look for the next frame boundary; HPACK state becomes unreliable.
    fn desync(&mut self, conn: &mut Conn) {
        self.mode = Mode::Hunt;
        self.hunt.clear();
        self.hunt_scan = 0;
        self.hdr_len = 0;
        self.payload.clear();
        self.lose_block(conn);
        self.hpack.mark_unknown();
    }

    /// The header block being assembled can no longer be completed.
    fn lose_block(&mut self, conn: &mut Conn) {
        if let Some(b) = self.block.take() {
            self.hpack.mark_unknown();
            if b.promised.is_none() {
                conn.degrade(self.side, b.stream);
            }
        }
    }

    fn gap(&mut self, conn: &mut Conn, ts: u64, len: u64) {
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
            self.desync(conn);
            if at_start {
                self.joined_mid_stream();
            }
            return;
        };
        let inside = len.min(left);
        match self.mode {
            Mode::Data(mut st) => {
                let h = self.frame;
                let mut n = inside;
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
            self.desync(conn);
        }
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

    /// One frame of a header block; `frag` is `None` when its fragment is lost
    /// (and otherwise carries the promised stream id of a PUSH_PROMISE).
    fn block_fragment(
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
        match b.promised {
            None => conn.apply_headers(self.side, b.stream, fields, degraded, b.end_stream, ts),
            Some(promised) => conn.promise(promised, fields, degraded, b.start_ts, ts, b.wire),
        }
    }

    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.payload.capacity()
            + self.hunt.capacity()
            + self.block.as_ref().map_or(0, |b| b.buf.capacity())
            + self.hpack.buffered()
    }
}

// ---------------------------------------------------------------- streams

/// One side of a stream being assembled.
#[derive(Debug)]
struct MsgState {
    msg: Message,
    /// A header block (even a lost one) took the headers slot.
    saw_headers: bool,
    /// Decoded header bytes kept.
    header_bytes: usize,
}

impl MsgState {
    fn new(start_ts: u64, capture: usize) -> Self {
        Self {
            msg: Message {
                start_ns: start_ts,
                end_ns: start_ts,
                body: (capture > 0).then(Vec::new),
                ..Message::default()
            },
            saw_headers: false,
            header_bytes: 0,
        }
    }

    fn into_message(self) -> Message {
        let mut msg = self.msg;
        if !self.saw_headers {
            msg.headers_degraded = true;
        }
        msg
    }
}

/// An open stream.
#[derive(Debug, Default)]
struct StreamState {
    seq: u64,
    request: Option<MsgState>,
    response: Option<MsgState>,
    reset: Option<u32>,
    goaway: bool,
}

/// Stream table and results of one connection.
#[derive(Debug)]
struct Conn {
    capture: usize,
    streams: HashMap<u32, StreamState>,
    next_seq: u64,
    finished: HashSet<u32>,
    finished_order: VecDeque<u32>,
    ready: Vec<Exchange>,
    parse_errors: u64,
    goaway_seen: bool,
    /// Last client stream id the server will process (from the server's GOAWAY).
    client_limit: Option<u32>,
    /// Last pushed stream id the client will process (from the client's GOAWAY).
    server_limit: Option<u32>,
    /// Highest client stream id with request frames.
    max_client_stream: u32,
    /// Client streams whose response is complete but no request frame was
    /// seen; finished once a later client stream shows the request was lost.
    orphans: Vec<u32>,
    /// Decoded header bytes kept over all open streams.
    header_bytes: usize,
}

impl Conn {
    fn new(limits: Limits) -> Self {
        Self {
            capture: limits.max_body_capture,
            streams: HashMap::new(),
            next_seq: 0,
            finished: HashSet::new(),
            finished_order: VecDeque::new(),
            ready: Vec::new(),
            parse_errors: 0,
            goaway_seen: false,
            client_limit: None,
            server_limit: None,
            max_client_stream: 0,
            orphans: Vec::new(),
            header_bytes: 0,
        }
    }

    fn is_open(&self, id: u32) -> bool {
        self.streams.contains_key(&id)
    }

    /// The message of `side` on stream `id`; with `create`, opens the stream
    /// and the message when needed (not for finished streams).
    fn msg(&mut self, side: Side, id: u32, create: bool, start_ts: u64) -> Option<&mut MsgState> {
        if id == 0 {
            return None;
        }
        if !self.streams.contains_key(&id) {
            if !create || self.finished.contains(&id) {
                return None;
            }
            if self.streams.len() >= MAX_OPEN_STREAMS {
                self.evict_oldest();
            }
            let refused = if is_client_stream(id) {
                self.client_limit.is_some_and(|l| id > l)
            } else {
                self.server_limit.is_some_and(|l| id > l)
            };
            let seq = self.next_seq;
            self.next_seq = self.next_seq.saturating_add(1);
            self.streams.insert(
                id,
                StreamState {
                    seq,
                    goaway: refused,
                    ..StreamState::default()
                },
            );
        }
        if create && side == Side::Request && is_client_stream(id) && id > self.max_client_stream {
            self.max_client_stream = id;
            self.reap_orphans();
        }
        let capture = self.capture;
        let st = self.streams.get_mut(&id)?;
        let slot = match side {
            Side::Request => &mut st.request,
            Side::Response => &mut st.response,
        };
        if slot.is_none() {
            if !create {
                return None;
            }
            *slot = Some(MsgState::new(start_ts, capture));
        }
        slot.as_mut()
    }

    /// Counts frame bytes of a stream side.
    fn touch(&mut self, side: Side, id: u32, frame_ts: u64, ts: u64, bytes: u64, create: bool) {
        if let Some(m) = self.msg(side, id, create, frame_ts) {
            m.msg.wire_bytes = m.msg.wire_bytes.saturating_add(bytes);
            m.msg.end_ns = ts;
        }
    }

    /// DATA payload bytes.
    fn body(&mut self, side: Side, id: u32, ts: u64, bytes: &[u8]) {
        let capture = self.capture;
        let Some(m) = self.msg(side, id, false, ts) else {
            return;
        };
        let n = bytes.len() as u64;
        let msg = &mut m.msg;
        msg.body_size = msg.body_size.saturating_add(n);
        msg.wire_bytes = msg.wire_bytes.saturating_add(n);
        msg.end_ns = ts;
        if let Some(body) = msg.body.as_mut().filter(|_| !msg.body_truncated) {
            let keep = capture.saturating_sub(body.len()).min(bytes.len());
            body.extend_from_slice(bytes.get(..keep).unwrap_or_default());
            if keep < bytes.len() {
                msg.body_truncated = true;
            }
        }
    }

    /// DATA payload bytes lost in a gap.
    fn lost_body(&mut self, side: Side, id: u32, ts: u64, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(m) = self.msg(side, id, false, ts) {
            m.msg.body_size = m.msg.body_size.saturating_add(n);
            m.msg.wire_bytes = m.msg.wire_bytes.saturating_add(n);
            m.msg.body_truncated = true;
            m.msg.end_ns = ts;
        }
    }

    /// A header block of the stream side could not be decoded.
    fn degrade(&mut self, side: Side, id: u32) {
        if let Some(m) = self.msg(side, id, false, 0) {
            m.msg.headers_degraded = true;
            m.saw_headers = true;
        }
    }

    /// A decoded header block of a stream side.
    fn apply_headers(
        &mut self,
        side: Side,
        id: u32,
        fields: Vec<Header>,
        degraded: bool,
        end_stream: bool,
        ts: u64,
    ) {
        let budget = MAX_CONN_HEADER_BYTES.saturating_sub(self.header_bytes);
        let Some(m) = self.msg(side, id, true, ts) else {
            return;
        };
        m.msg.end_ns = ts;
        if degraded {
            m.msg.headers_degraded = true;
        }
        let interim = side == Side::Response
            && !m.saw_headers
            && !end_stream
            && fields
                .iter()
                .any(|f| f.name == ":status" && f.value.len() == 3 && f.value.starts_with('1'));
        let mut added = 0usize;
        if !interim {
            let first = !m.saw_headers;
            m.saw_headers = true;
            let mut kept = Vec::new();
            for f in fields {
                let size = f.name.len().saturating_add(f.value.len());
                let count = m.msg.headers.len() + m.msg.trailers.len() + kept.len();
                if count >= MAX_MESSAGE_FIELDS
                    || m.header_bytes.saturating_add(added).saturating_add(size)
                        > MAX_MESSAGE_HEADER_BYTES
                    || added.saturating_add(size) > budget
                {
                    m.msg.headers_degraded = true;
                    continue;
                }
                added = added.saturating_add(size);
                kept.push(f);
            }
            m.header_bytes = m.header_bytes.saturating_add(added);
            if first {
                m.msg.headers = kept;
            } else {
                m.msg.trailers.extend(kept);
            }
        }
        if end_stream {
            m.msg.complete = true;
        }
        self.header_bytes = self.header_bytes.saturating_add(added);
        if end_stream {
            self.check_done(id);
        }
    }

    /// A PUSH_PROMISE: opens the promised stream with the promised request.
    fn promise(
        &mut self,
        promised: u32,
        fields: Vec<Header>,
        degraded: bool,
        start_ts: u64,
        ts: u64,
        wire: u64,
    ) {
        if promised == 0 || is_client_stream(promised) || self.is_open(promised) {
            return;
        }
        self.apply_headers(Side::Request, promised, fields, degraded, true, ts);
        if let Some(m) = self.msg(Side::Request, promised, false, start_ts) {
            m.msg.start_ns = start_ts;
            m.msg.wire_bytes = m.msg.wire_bytes.saturating_add(wire);
        }
    }

    /// END_STREAM on a stream side.
    fn end_stream(&mut self, side: Side, id: u32, ts: u64) {
        if let Some(m) = self.msg(side, id, false, ts) {
            m.msg.complete = true;
            m.msg.end_ns = ts;
            self.check_done(id);
        }
    }

    /// RST_STREAM from either side ends the stream.
    fn reset(&mut self, side: Side, id: u32, code: u32, frame_ts: u64, ts: u64, wire: u64) {
        if !self.is_open(id) {
            return;
        }
        self.touch(side, id, frame_ts, ts, wire, false);
        if let Some(st) = self.streams.get_mut(&id) {
            st.reset = Some(code);
        }
        self.finish(id);
    }

    /// GOAWAY sent by `side`: streams opened by the other side above `last` are refused.
    fn goaway(&mut self, side: Side, last: u32) {
        self.goaway_seen = true;
        let client_streams = side == Side::Response;
        let limit = if client_streams {
            &mut self.client_limit
        } else {
            &mut self.server_limit
        };
        *limit = Some(limit.map_or(last, |l| l.min(last)));
        let mut refused: Vec<(u64, u32)> = self
            .streams
            .iter()
            .filter(|(id, _)| is_client_stream(**id) == client_streams && **id > last)
            .map(|(id, st)| (st.seq, *id))
            .collect();
        refused.sort_unstable();
        for (_, id) in refused {
            if let Some(st) = self.streams.get_mut(&id) {
                st.goaway = true;
            }
            self.finish(id);
        }
    }

    /// Finishes the stream when both sides are complete, or when its response
    /// is complete and its request can no longer arrive.
    fn check_done(&mut self, id: u32) {
        let Some(st) = self.streams.get(&id) else {
            return;
        };
        let req_done = st.request.as_ref().is_some_and(|m| m.msg.complete);
        let resp_done = st.response.as_ref().is_some_and(|m| m.msg.complete);
        let request_lost =
            st.request.is_none() && (!is_client_stream(id) || self.max_client_stream > id);
        if resp_done && (req_done || request_lost) {
            self.finish(id);
        } else if resp_done && st.request.is_none() && !self.orphans.contains(&id) {
            self.orphans.push(id);
        }
    }

    /// Finishes orphans below the highest client stream id seen.
    fn reap_orphans(&mut self) {
        let max = self.max_client_stream;
        let mut i = 0;
        while let Some(&id) = self.orphans.get(i) {
            if id < max {
                self.orphans.swap_remove(i);
                let still_orphan = self.streams.get(&id).is_some_and(|st| st.request.is_none());
                if still_orphan {
                    self.finish(id);
                }
            } else {
                i += 1;
            }
        }
    }

    fn finish(&mut self, id: u32) {
        let Some(st) = self.streams.remove(&id) else {
            return;
        };
        self.orphans.retain(|o| *o != id);
        for m in [&st.request, &st.response].into_iter().flatten() {
            self.header_bytes = self.header_bytes.saturating_sub(m.header_bytes);
        }
        if self.finished.insert(id) {
            self.finished_order.push_back(id);
            while self.finished_order.len() > FINISHED_REMEMBERED {
                if let Some(old) = self.finished_order.pop_front() {
                    self.finished.remove(&old);
                }
            }
        }
        self.ready.push(exchange(id, st));
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .streams
            .iter()
            .min_by_key(|(_, st)| st.seq)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.finish(id);
        }
    }

    fn close_all(&mut self) {
        let mut open: Vec<(u64, u32)> = self.streams.iter().map(|(id, st)| (st.seq, *id)).collect();
        open.sort_unstable();
        for (_, id) in open {
            if self.goaway_seen {
                if let Some(st) = self.streams.get_mut(&id) {
                    st.goaway = true;
                }
            }
            self.finish(id);
        }
    }

    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.header_bytes
            + self.streams.len() * mem::size_of::<StreamState>()
            + self
                .streams
                .values()
                .flat_map(|st| [&st.request, &st.response])
                .flatten()
                .map(|m| m.msg.body.as_ref().map_or(0, Vec::capacity))
                .sum::<usize>()
    }
}

/// Builds the exchange of a finished stream.
fn exchange(id: u32, st: StreamState) -> Exchange {
    let request = st.request.map(MsgState::into_message);
    let response = st.response.map(MsgState::into_message);
    let complete = |m: &Option<Message>| m.as_ref().is_some_and(|m| m.complete);
    let partial = !(complete(&request) && complete(&response));
    let grpc = grpc_of(request.as_ref(), response.as_ref());
    Exchange {
        stream_id: id,
        request,
        response,
        reset: st.reset,
        goaway: st.goaway,
        partial,
        grpc,
    }
}

/// gRPC details when either side has a `content-type` of `application/grpc...`.
fn grpc_of(request: Option<&Message>, response: Option<&Message>) -> Option<Grpc> {
    let is_grpc = [request, response].into_iter().flatten().any(|m| {
        m.pseudo("content-type").is_some_and(|ct| {
            ct.get(..16)
                .is_some_and(|p| p.eq_ignore_ascii_case("application/grpc"))
        })
    });
    if !is_grpc {
        return None;
    }
    let path = request.and_then(Message::path).unwrap_or_default();
    let path = path.strip_prefix('/').unwrap_or(path);
    let (service, method) = path.rsplit_once('/').unwrap_or((path, ""));
    let lookup = |name: &str| {
        response.and_then(|m| {
            m.trailers
                .iter()
                .chain(m.headers.iter())
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.as_str())
        })
    };
    Some(Grpc {
        service: service.to_string(),
        method: method.to_string(),
        status: lookup("grpc-status").and_then(|s| s.trim().parse().ok()),
        message: lookup("grpc-message").map(percent_decode),
    })
}

/// Decodes `%XX` escapes (as in `grpc-message`), lossily as UTF-8.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = |k: usize| b.get(k).and_then(|d| char::from(*d).to_digit(16));
            if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------- HPACK

/// How a header block decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Every field decoded.
    Ok,
    /// Some fields are missing (unknown table entries, limits).
    Degraded,
    /// The block is malformed; fields after the error are missing.
    Error,
}

/// One dynamic table entry; the name is unknown when it came from a table
/// entry that was never seen.
#[derive(Debug)]
struct Entry {
    name: Option<Vec<u8>>,
    value: Vec<u8>,
    size: usize,
}

/// Where an index points.
enum Slot<'a> {
    Found(Option<&'a [u8]>, &'a [u8]),
    /// Beyond the known entries of a table with an unknown tail.
    Unknown,
    Invalid,
}

/// HPACK decoder (RFC 7541) of one direction.
///
/// After a desync (or when joined mid-stream) the table is emptied and marked
/// as having an unknown tail: entries inserted later are known and sit at the
/// front, exactly as in the encoder's table, so references to them stay right;
/// references past them are unknown. Once the known entries fill the table the
/// tail must have been evicted and the state is reliable again.
#[derive(Debug)]
struct Hpack {
    entries: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    /// Bound for size updates (the peer's SETTINGS_HEADER_TABLE_SIZE).
    limit: usize,
    limit_from_settings: bool,
    /// `max_size` is known (from the start, or from a size update).
    max_known: bool,
    /// The table may hold entries that were never seen.
    unknown: bool,
}

impl Hpack {
    fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            limit: DEFAULT_TABLE_SIZE,
            limit_from_settings: false,
            max_known: true,
            unknown: false,
        }
    }

    fn joined_mid_stream(&mut self) {
        self.mark_unknown();
        self.max_known = false;
        if !self.limit_from_settings {
            self.limit = MAX_TABLE_SIZE;
        }
    }

    fn mark_unknown(&mut self) {
        self.entries.clear();
        self.size = 0;
        self.unknown = true;
        self.recheck();
    }

    fn set_limit(&mut self, value: u32) {
        self.limit = (value as usize).min(MAX_TABLE_SIZE);
        self.limit_from_settings = true;
    }

    /// The unknown tail is gone once no entry could fit beside the known ones.
    fn recheck(&mut self) {
        if self.unknown
            && self.max_known
            && self.size.saturating_add(ENTRY_OVERHEAD) > self.max_size
        {
            self.unknown = false;
        }
    }

    fn set_max_size(&mut self, size: usize) {
        self.max_size = size.min(self.limit).min(MAX_TABLE_SIZE);
        self.max_known = true;
        self.evict();
        self.recheck();
    }

    fn evict(&mut self) {
        while self.size > self.max_size {
            match self.entries.pop_back() {
                Some(e) => self.size = self.size.saturating_sub(e.size),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    fn insert(&mut self, name: Option<Vec<u8>>, value: Vec<u8>) {
        let size = name
            .as_ref()
            .map_or(0, Vec::len)
            .saturating_add(value.len())
            .saturating_add(ENTRY_OVERHEAD);
        if size > self.max_size {
            // The encoder's table is emptied too (its entry is at least as large).
            self.entries.clear();
            self.size = 0;
            if self.max_known {
                self.unknown = false;
            }
            return;
        }
        self.size = self.size.saturating_add(size);
        self.entries.push_front(Entry { name, value, size });
        self.evict();
        self.recheck();
    }

    fn slot(&self, index: usize) -> Slot<'_> {
        if index == 0 {
            return Slot::Invalid;
        }
        if let Some((n, v)) = STATIC_TABLE.get(index - 1) {
            return Slot::Found(Some(n.as_bytes()), v.as_bytes());
        }
        match self.entries.get(index - 1 - STATIC_TABLE.len()) {
            Some(e) => Slot::Found(e.name.as_deref(), &e.value),
            None if self.unknown => Slot::Unknown,
            None => Slot::Invalid,
        }
    }

    /// Decodes one complete header block.
    fn decode(&mut self, block: &[u8]) -> (Vec<Header>, Outcome) {
        let mut out = Vec::new();
        let mut out_bytes = 0usize;
        let mut degraded = false;
        let mut pos = 0usize;
        while let Some(&b) = block.get(pos) {
            let field = if b & 0x80 != 0 {
                let Some(index) = integer(block, &mut pos, 7) else {
                    return self.failed(out);
                };
                match self.slot(index) {
                    Slot::Found(Some(n), v) => Some((n.to_vec(), v.to_vec())),
                    Slot::Found(None, _) | Slot::Unknown => None,
                    Slot::Invalid => return self.failed(out),
                }
            } else if b & 0xe0 == 0x20 {
                let Some(size) = integer(block, &mut pos, 5) else {
                    return self.failed(out);
                };
                self.set_max_size(size);
                continue;
            } else {
                let (prefix, indexing) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
                let Some(index) = integer(block, &mut pos, prefix) else {
                    return self.failed(out);
                };
                let name = if index == 0 {
                    match string(block, &mut pos) {
                        Some(n) => Some(n),
                        None => return self.failed(out),
                    }
                } else {
                    match self.slot(index) {
                        Slot::Found(n, _) => n.map(<[u8]>::to_vec),
                        Slot::Unknown => None,
                        Slot::Invalid => return self.failed(out),
                    }
                };
                let Some(value) = string(block, &mut pos) else {
                    return self.failed(out);
                };
                if indexing {
                    self.insert(name.clone(), value.clone());
                }
                name.map(|n| (n, value))
            };
            match field {
                Some((name, value)) => {
                    let size = name.len().saturating_add(value.len());
                    if out.len() >= MAX_MESSAGE_FIELDS
                        || out_bytes.saturating_add(size) > MAX_MESSAGE_HEADER_BYTES
                    {
                        degraded = true;
                    } else {
                        out_bytes = out_bytes.saturating_add(size);
                        out.push(Header {
                            name: String::from_utf8_lossy(&name).into_owned(),
                            value: String::from_utf8_lossy(&value).into_owned(),
                        });
                    }
                }
                None => degraded = true,
            }
        }
        (
            out,
            if degraded {
                Outcome::Degraded
            } else {
                Outcome::Ok
            },
        )
    }

    /// A malformed block: entries it would have inserted are missing, so the
    /// table now has an unknown part.
    fn failed(&mut self, out: Vec<Header>) -> (Vec<Header>, Outcome) {
        self.mark_unknown();
        (out, Outcome::Error)
    }

    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.entries
            .iter()
            .map(|e| {
                e.name.as_ref().map_or(0, Vec::capacity)
                    + e.value.capacity()
                    + mem::size_of::<Entry>()
            })
            .sum()
    }
}

/// Decodes an HPACK integer with an N-bit prefix at `*pos` (RFC 7541 section 5.1).
fn integer(block: &[u8], pos: &mut usize, prefix: u32) -> Option<usize> {
    let mask = ((1u16 << prefix.min(8)) - 1) as u8;
    let first = block.get(*pos)? & mask;
    *pos = pos.checked_add(1)?;
    if first < mask {
        return Some(usize::from(first));
    }
    let mut value = u64::from(mask);
    let mut shift = 0u32;
    loop {
        let b = *block.get(*pos)?;
        *pos = pos.checked_add(1)?;
        value = value.checked_add(u64::from(b & 0x7f) << shift)?;
        if value > u64::from(u32::MAX) {
            return None;
        }
        if b & 0x80 == 0 {
            return usize::try_from(value).ok();
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

/// Decodes an HPACK string literal at `*pos` (RFC 7541 section 5.2).
fn string(block: &[u8], pos: &mut usize) -> Option<Vec<u8>> {
    let huffman = block.get(*pos)? & 0x80 != 0;
    let len = integer(block, pos, 7)?;
    let end = pos.checked_add(len)?;
    let raw = block.get(*pos..end)?;
    *pos = end;
    if huffman {
        huffman_decode(raw)
    } else {
        Some(raw.to_vec())
    }
}

/// Canonical-code lookup tables built from [`HUFFMAN_CODES`].
struct HuffmanTables {
    /// Smallest code of each length.
    first: [u32; 31],
    /// Number of codes of each length.
    count: [u32; 31],
    /// Index in `symbols` of the first symbol of each length.
    offset: [u32; 31],
    /// Symbols sorted by code length, then code.
    symbols: [u16; 257],
}

/// Decoding tables for the HPACK Huffman code, built at compile time. The
/// code is canonical: within one length, codes are consecutive and increase
/// with the symbol (checked by a test).
const HUFFMAN: HuffmanTables = build_huffman();

const fn build_huffman() -> HuffmanTables {
    let mut t = HuffmanTables {
        first: [u32::MAX; 31],
        count: [0; 31],
        offset: [0; 31],
        symbols: [0; 257],
    };
    let mut s = 0;
    while s < 257 {
        let (code, len) = HUFFMAN_CODES[s];
        let l = len as usize;
        if code < t.first[l] {
            t.first[l] = code;
        }
        t.count[l] += 1;
        s += 1;
    }
    let mut acc = 0;
    let mut l = 0;
    while l < 31 {
        t.offset[l] = acc;
        acc += t.count[l];
        l += 1;
    }
    let mut fill = [0u32; 31];
    s = 0;
    while s < 257 {
        let l = HUFFMAN_CODES[s].1 as usize;
        t.symbols[(t.offset[l] + fill[l]) as usize] = s as u16;
        fill[l] += 1;
        s += 1;
    }
    t
}

/// Decodes a Huffman-coded string (RFC 7541 section 5.2 and Appendix B).
fn huffman_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len().saturating_mul(8) / 5);
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in input {
        for bit in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> bit) & 1);
            len += 1;
            let first = *HUFFMAN.first.get(len)?;
            let count = *HUFFMAN.count.get(len)?;
            if count > 0 && code >= first && code - first < count {
                let at = HUFFMAN.offset.get(len)?.checked_add(code - first)?;
                let symbol = *HUFFMAN.symbols.get(at as usize)?;
                // EOS inside a string is an error.
                out.push(u8::try_from(symbol).ok()?);
                code = 0;
                len = 0;
            } else if len >= 30 {
                return None;
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (a prefix of EOS).
    (len < 8 && code == (1u32 << len) - 1).then_some(out)
}

/// The HPACK static table (RFC 7541 Appendix A), indexes 1 to 61.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The HPACK Huffman code (RFC 7541 Appendix B): (code, length in bits) per
/// symbol 0..=255, then EOS.
#[rustfmt::skip]
const HUFFMAN_CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28), // 0
    (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24), // 5
    (0x3ffffffc, 30), (0xfffffe9, 28), (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), // 10
    (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28), // 15
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), (0xffffff4, 28), // 20
    (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28), // 25
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), // 30
    (0xffa, 12), (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), // 35
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11), (0xfa, 8), // 40
    (0x16, 6), (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5), // 45
    (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6), // 50
    (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8), // 55
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), // 60
    (0x21, 6), (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), // 65
    (0x61, 7), (0x62, 7), (0x63, 7), (0x64, 7), (0x65, 7), // 70
    (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), // 75
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7), (0x6f, 7), // 80
    (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7), // 85
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), // 90
    (0x22, 6), (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), // 95
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6), // 100
    (0x6, 5), (0x74, 7), (0x75, 7), (0x28, 6), (0x29, 6), // 105
    (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7), (0x2c, 6), // 110
    (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7), // 115
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), // 120
    (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22), // 125
    (0xfffe7, 20), (0xfffe8, 20), (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), // 130
    (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23), // 135
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), (0xffffec, 24), // 140
    (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23), // 145
    (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), // 150
    (0x7fffe5, 23), (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), // 155
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22), // 160
    (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), (0x7fffea, 23), (0x3fffdd, 22), // 165
    (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), // 170
    (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), // 175
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20), // 180
    (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22), // 185
    (0x3fffe6, 22), (0x7ffff1, 23), (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), // 190
    (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25), // 195
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), (0x7ffffdf, 27), // 200
    (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21), // 205
    (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), // 210
    (0xfffff2, 24), (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), // 215
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20), // 220
    (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), (0x3fffe9, 22), (0x1fffe7, 21), // 225
    (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), // 230
    (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23), // 235
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27), // 240
    (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28), // 245
    (0x7ffffec, 27), (0x7ffffed, 27), (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), // 250
    (0x3ffffee, 26), (0x3fffffff, 30), // 255
];

#[cfg(test)]
mod tests {
    use super::*;
    use Side::{Request as Req, Response as Resp};

    /// One recorded connection: both directions and the relay order of chunks.
    struct Fixture {
        req: &'static [u8],
        resp: &'static [u8],
        order: &'static str,
    }

    macro_rules! fixture {
        ($name:literal) => {
            Fixture {
                req: include_bytes!(concat!("../../testdata/http2/", $name, ".req")),
                resp: include_bytes!(concat!("../../testdata/http2/", $name, ".resp")),
                order: include_str!(concat!("../../testdata/http2/", $name, ".order")),
            }
        };
    }

    const CONCURRENT: Fixture = fixture!("h2c_concurrent");
    const DYNAMIC: Fixture = fixture!("h2c_dynamic_table");
    const GRPC: Fixture = fixture!("h2c_grpc");
    const CURL_GET: Fixture = fixture!("curl_get");
    const CURL_POST: Fixture = fixture!("curl_post");
    const NGINX_GET: Fixture = fixture!("nginx_curl_get");

    fn all_fixtures() -> [(&'static str, &'static Fixture); 6] {
        [
            ("h2c_concurrent", &CONCURRENT),
            ("h2c_dynamic_table", &DYNAMIC),
            ("h2c_grpc", &GRPC),
            ("curl_get", &CURL_GET),
            ("curl_post", &CURL_POST),
            ("nginx_curl_get", &NGINX_GET),
        ]
    }

    /// The chunks of a fixture in relay order.
    fn chunks(f: &Fixture) -> Vec<(Side, &'static [u8])> {
        let (mut req, mut resp) = (f.req, f.resp);
        let mut out = Vec::new();
        for line in f.order.lines().filter(|l| !l.trim().is_empty()) {
            let (tag, len) = line.split_once(' ').expect("order line");
            let len: usize = len.trim().parse().expect("order length");
            let src = if tag == "C" { &mut req } else { &mut resp };
            let (head, tail) = src.split_at(len);
            *src = tail;
            out.push((if tag == "C" { Req } else { Resp }, head));
        }
        assert!(
            req.is_empty() && resp.is_empty(),
            "order file covers the fixture"
        );
        out
    }

    /// What a run produced: exchanges (drained, then closed) and parse errors.
    #[derive(Debug, PartialEq)]
    struct Run {
        exchanges: Vec<Exchange>,
        errors: u64,
    }

    /// Pushes (side, ts, bytes) events, draining after each, then closes.
    fn run_events<'a>(
        events: impl IntoIterator<Item = (Side, u64, &'a [u8])>,
        limits: Limits,
    ) -> Run {
        let mut h2 = Http2Stream::new(limits);
        let mut exchanges = Vec::new();
        let mut last = 0;
        for (side, ts, bytes) in events {
            h2.push(side, ts, bytes);
            exchanges.extend(h2.drain());
            last = ts;
        }
        exchanges.extend(h2.close(last + 1));
        Run {
            exchanges,
            errors: h2.parse_errors(),
        }
    }

    /// Replays a fixture chunk by chunk; chunk i has timestamp (i + 1) * 1000.
    fn replay(f: &Fixture) -> Run {
        replay_with(f, Limits::default())
    }

    fn replay_with(f: &Fixture, limits: Limits) -> Run {
        let c = chunks(f);
        run_events(
            c.iter().enumerate().map(|(i, (s, b))| (*s, ts_of(i), *b)),
            limits,
        )
    }

    fn ts_of(i: usize) -> u64 {
        (i as u64 + 1) * 1000
    }

    fn req(e: &Exchange) -> &Message {
        e.request.as_ref().expect("request")
    }

    fn resp(e: &Exchange) -> &Message {
        e.response.as_ref().expect("response")
    }

    fn by_id(r: &Run, id: u32) -> &Exchange {
        r.exchanges
            .iter()
            .find(|e| e.stream_id == id)
            .expect("stream")
    }

    fn hdr(name: &str, value: &str) -> Header {
        Header {
            name: name.to_string(),
            value: value.to_string(),
        }
    }

    // ------------------------------------------------------------ builders

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut out = len.to_be_bytes()[1..].to_vec();
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
        let mut p = Vec::new();
        for (id, v) in pairs {
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&v.to_be_bytes());
        }
        frame(SETTINGS, 0, 0, &p)
    }

    fn headers(stream: u32, end_stream: bool, block: &[u8]) -> Vec<u8> {
        let flags = FLAG_END_HEADERS | if end_stream { FLAG_END_STREAM } else { 0 };
        frame(HEADERS, flags, stream, block)
    }

    fn data(stream: u32, end_stream: bool, body: &[u8]) -> Vec<u8> {
        frame(
            DATA,
            if end_stream { FLAG_END_STREAM } else { 0 },
            stream,
            body,
        )
    }

    fn rst(stream: u32, code: u32) -> Vec<u8> {
        frame(RST_STREAM, 0, stream, &code.to_be_bytes())
    }

    fn goaway(last: u32, code: u32) -> Vec<u8> {
        let mut p = last.to_be_bytes().to_vec();
        p.extend_from_slice(&code.to_be_bytes());
        frame(GOAWAY, 0, 0, &p)
    }

    /// HPACK integer with `prefix` bits; `first` holds the representation's flag bits.
    fn int(out: &mut Vec<u8>, prefix: u32, first: u8, value: usize) {
        let max = (1usize << prefix) - 1;
        if value < max {
            out.push(first | value as u8);
            return;
        }
        out.push(first | max as u8);
        let mut v = value - max;
        while v >= 128 {
            out.push((v % 128) as u8 | 0x80);
            v /= 128;
        }
        out.push(v as u8);
    }

    fn huffman_encode(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u64, 0u32);
        for &c in s {
            let (code, len) = HUFFMAN_CODES[c as usize];
            acc = (acc << len) | u64::from(code);
            bits += u32::from(len);
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) as u8);
        }
        out
    }

    /// A string literal, Huffman-coded when `huffman`.
    fn string_lit(out: &mut Vec<u8>, s: &str, huffman: bool) {
        if huffman {
            let h = huffman_encode(s.as_bytes());
            int(out, 7, 0x80, h.len());
            out.extend_from_slice(&h);
        } else {
            int(out, 7, 0, s.len());
            out.extend_from_slice(s.as_bytes());
        }
    }

    /// A small HPACK encoder for building test blocks.
    #[derive(Default)]
    struct Enc(Vec<u8>);

    impl Enc {
        /// Literal without indexing, new name.
        fn lit(mut self, name: &str, value: &str) -> Self {
            self.0.push(0);
            string_lit(&mut self.0, name, false);
            string_lit(&mut self.0, value, false);
            self
        }
        /// Literal with incremental indexing, new name, Huffman-coded.
        fn add(mut self, name: &str, value: &str) -> Self {
            self.0.push(0x40);
            string_lit(&mut self.0, name, true);
            string_lit(&mut self.0, value, true);
            self
        }
        /// Literal with incremental indexing, indexed name.
        fn add_named(mut self, index: usize, value: &str) -> Self {
            int(&mut self.0, 6, 0x40, index);
            string_lit(&mut self.0, value, false);
            self
        }
        fn idx(mut self, index: usize) -> Self {
            int(&mut self.0, 7, 0x80, index);
            self
        }
        fn size(mut self, size: usize) -> Self {
            int(&mut self.0, 5, 0x20, size);
            self
        }
        /// Request pseudo-headers (static indexes for GET/POST and http).
        fn request(self, method: &str, path: &str) -> Self {
            let m = if method == "POST" {
                self.idx(3)
            } else {
                self.idx(2)
            };
            m.idx(6)
                .lit(":path", path)
                .lit(":authority", "example.test")
        }
        fn status(self, code: u16) -> Self {
            match code {
                200 => self.idx(8),
                404 => self.idx(13),
                _ => self.lit(":status", &code.to_string()),
            }
        }
        fn done(self) -> Vec<u8> {
            self.0
        }
    }

    /// Client preface and SETTINGS, server SETTINGS: a connection's start.
    fn open(h2: &mut Http2Stream) {
        let mut c = PREFACE.to_vec();
        c.extend(settings(&[]));
        h2.push(Req, 1, &c);
        h2.push(Resp, 2, &settings(&[(3, 100)]));
    }

    /// Deterministic xorshift64* generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    // ------------------------------------------------------------ fixtures

    #[test]
    fn concurrent_fixture_get_post_trailers_and_reset() {
        let r = replay_with(
            &CONCURRENT,
            Limits {
                max_body_capture: 4096,
            },
        );
        assert_eq!(r.errors, 0);
        let ids: Vec<u32> = r.exchanges.iter().map(|e| e.stream_id).collect();
        assert_eq!(ids, [1, 5, 3, 7], "completion order");

        let e = by_id(&r, 1);
        let q = req(e);
        assert_eq!(q.method(), Some("GET"));
        assert_eq!(q.path(), Some("/first"));
        assert_eq!(q.authority(), Some("127.0.0.1"));
        assert_eq!(q.scheme(), Some("http"));
        assert_eq!(q.header("user-agent"), Some("h2-fixture/1.0"));
        assert!(q.complete && !q.headers_degraded);
        assert_eq!((q.start_ns, q.end_ns), (1000, 1000));
        let p = resp(e);
        assert_eq!(p.status(), Some(200));
        assert_eq!(p.header("server"), Some("fixture-h2/1.0"));
        assert_eq!(p.body.as_deref(), Some(&b"you asked for /first\n"[..]));
        assert_eq!(p.body_size, 21);
        assert_eq!((p.start_ns, p.end_ns), (3000, 3000));
        assert!(!e.partial && e.reset.is_none() && !e.goaway && e.grpc.is_none());

        // POST: HEADERS, a padded DATA frame (1000 bytes + 16 + pad length), a plain one (2000).
        let e = by_id(&r, 3);
        let q = req(e);
        assert_eq!(q.method(), Some("POST"));
        assert_eq!(q.path(), Some("/upload"));
        assert_eq!(q.header("content-length"), Some("3000"));
        assert_eq!(q.body_size, 3000);
        let sent: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(q.body.as_deref(), Some(&sent[..]));
        assert!(!q.body_truncated);
        assert_eq!(q.wire_bytes, (9 + 34) + (9 + 1 + 1000 + 16) + (9 + 2000));
        assert_eq!(resp(e).status(), Some(201));
        assert_eq!(resp(e).body.as_deref(), Some(&b"got 3000 bytes\n"[..]));

        // Trailers after two DATA frames, the first one padded.
        let e = by_id(&r, 5);
        let p = resp(e);
        assert_eq!(p.header("trailer"), Some("x-checksum"));
        assert_eq!(p.trailers, vec![hdr("x-checksum", "1234")]);
        assert_eq!(p.header("x-checksum"), Some("1234"));
        assert_eq!(p.body.as_deref(), Some(&b"first part, second part\n"[..]));
        assert_eq!(p.body_size, 24);
        assert!(!e.partial);

        // Reset by the client (CANCEL) after the response headers.
        let e = by_id(&r, 7);
        assert_eq!(e.reset, Some(8));
        assert!(e.partial && !e.goaway);
        assert_eq!(req(e).path(), Some("/slow"));
        assert_eq!(resp(e).status(), Some(200));
        assert!(!resp(e).complete);
        assert_eq!(req(e).end_ns, 5000, "the RST_STREAM chunk");
    }

    #[test]
    fn body_capture_limit_truncates() {
        let r = replay_with(
            &CONCURRENT,
            Limits {
                max_body_capture: 10,
            },
        );
        let q = req(by_id(&r, 3));
        assert_eq!(q.body.as_ref().map(Vec::len), Some(10));
        assert!(q.body_truncated);
        assert_eq!(q.body_size, 3000);
        let r = replay(&CONCURRENT);
        let q = req(by_id(&r, 3));
        assert_eq!((q.body.as_ref(), q.body_truncated), (None, false));
    }

    #[test]
    fn dynamic_table_fixture_decodes_every_request() {
        let r = replay(&DYNAMIC);
        assert_eq!(r.errors, 0);
        assert_eq!(r.exchanges.len(), 12);
        let cookie = format!("session={}", "abcdef0123456789".repeat(8));
        for (i, e) in r.exchanges.iter().enumerate() {
            assert_eq!(e.stream_id, 1 + 2 * i as u32);
            let q = req(e);
            let path = format!("/item/{i}");
            assert_eq!(q.path(), Some(path.as_str()));
            assert_eq!(q.method(), Some("GET"));
            assert_eq!(
                q.header("x-request-id"),
                Some(format!("req-{i:04}").as_str())
            );
            assert_eq!(q.header("cookie"), Some(cookie.as_str()));
            assert_eq!(q.header("x-tenant"), Some("tenant-alpha"));
            assert_eq!(
                q.header("user-agent"),
                Some("h2-fixture/1.0 (dynamic table)")
            );
            assert!(!q.headers_degraded);
            let p = resp(e);
            assert_eq!(p.status(), Some(200));
            assert_eq!(p.header("server"), Some("fixture-h2/1.0"));
            assert_eq!(p.body_size, format!("you asked for {path}\n").len() as u64);
            assert!(!e.partial);
        }
        // Requests 1 to 5 reference the dynamic table (8192 bytes, allowed by the
        // server's second SETTINGS frame); after the server lowered it to 256 the
        // client sends literals again.
        let wire: Vec<u64> = r.exchanges.iter().map(|e| req(e).wire_bytes).collect();
        assert!(wire[1..6].iter().all(|w| *w < 60), "{wire:?}");
        assert!(wire[6..].iter().all(|w| *w > 150), "{wire:?}");
    }

    #[test]
    fn grpc_fixture_unary_and_trailers_only() {
        let r = replay(&GRPC);
        assert_eq!(r.errors, 0);
        assert_eq!(r.exchanges.len(), 2);
        let e = by_id(&r, 1);
        assert_eq!(
            e.grpc,
            Some(Grpc {
                service: "helloworld.Greeter".into(),
                method: "SayHello".into(),
                status: Some(0),
                message: Some(String::new()),
            })
        );
        assert_eq!(req(e).body_size, 12);
        assert_eq!(resp(e).body_size, 18);
        let e = by_id(&r, 3);
        assert_eq!(
            e.grpc,
            Some(Grpc {
                service: "helloworld.Greeter".into(),
                method: "Missing".into(),
                status: Some(12),
                message: Some("unknown method".into()),
            })
        );
        assert!(resp(e).trailers.is_empty(), "trailers-only response");
        assert!(!e.partial);
    }

    #[test]
    fn curl_and_nginx_fixtures() {
        let r = replay(&CURL_GET);
        assert_eq!((r.errors, r.exchanges.len()), (0, 1));
        let e = &r.exchanges[0];
        assert_eq!(req(e).method(), Some("GET"));
        assert_eq!(req(e).path(), Some("/index?x=1"));
        assert!(req(e)
            .authority()
            .is_some_and(|a| a.starts_with("127.0.0.1:")));
        assert_eq!(req(e).header("user-agent"), Some("curl/7.88.1"));
        assert_eq!(req(e).header("accept"), Some("*/*"));
        assert_eq!(resp(e).status(), Some(200));
        assert_eq!(resp(e).body_size, 25);
        assert!(!e.partial);

        let r = replay(&CURL_POST);
        assert_eq!((r.errors, r.exchanges.len()), (0, 1));
        let e = &r.exchanges[0];
        assert_eq!(req(e).method(), Some("POST"));
        assert_eq!(req(e).path(), Some("/form"));
        assert_eq!(
            req(e).header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(req(e).body_size, 22);
        assert_eq!(resp(e).status(), Some(201));
        assert_eq!(resp(e).body_size, 13);

        let r = replay(&NGINX_GET);
        assert_eq!((r.errors, r.exchanges.len()), (0, 1));
        let e = &r.exchanges[0];
        assert_eq!(req(e).path(), Some("/index.html"));
        assert_eq!(req(e).header("accept-language"), Some("en"));
        assert_eq!(resp(e).status(), Some(200));
        assert_eq!(resp(e).header("server"), Some("nginx/1.22.1"));
        assert_eq!(resp(e).header("content-length"), Some("1107"));
        assert_eq!(resp(e).body_size, 1107);
        assert!(!e.partial);
    }

    #[test]
    fn every_split_and_one_byte_pushes_give_the_same_result() {
        let limits = Limits {
            max_body_capture: 64,
        };
        for (name, f) in all_fixtures() {
            let base = replay_with(f, limits);
            let c = chunks(f);
            let single = run_events(
                c.iter()
                    .enumerate()
                    .flat_map(|(i, (s, b))| b.chunks(1).map(move |x| (*s, ts_of(i), x))),
                limits,
            );
            assert_eq!(single, base, "{name}: one-byte pushes");
            for (ci, (_, bytes)) in c.iter().enumerate() {
                for k in 1..bytes.len() {
                    let events = c.iter().enumerate().flat_map(|(i, (s, b))| {
                        let parts = if i == ci {
                            vec![&b[..k], &b[k..]]
                        } else {
                            vec![*b]
                        };
                        parts.into_iter().map(move |p| (*s, ts_of(i), p))
                    });
                    assert_eq!(
                        run_events(events, limits),
                        base,
                        "{name}: chunk {ci} split at {k}"
                    );
                }
            }
        }
    }

    // ------------------------------------------------------------ built frames

    #[test]
    fn fifty_concurrent_interleaved_streams() {
        let mut h2 = Http2Stream::new(Limits {
            max_body_capture: 1024,
        });
        open(&mut h2);
        let mut c = Vec::new();
        for i in 0..50u32 {
            let post = i % 2 == 1;
            let enc = Enc::default().request(if post { "POST" } else { "GET" }, &format!("/s/{i}"));
            // The first request indexes x-client; the others reference it.
            let enc = if i == 0 {
                enc.add("x-client", "bench")
            } else {
                enc.idx(62)
            };
            c.extend(headers(2 * i + 1, !post, &enc.done()));
        }
        for part in 0..2 {
            for i in (1..50u32).step_by(2) {
                c.extend(data(
                    2 * i + 1,
                    part == 1,
                    format!("p{part}-{i};").as_bytes(),
                ));
            }
        }
        h2.push(Req, 10, &c);
        assert!(h2.drain().is_empty());
        let mut s = Vec::new();
        for i in (0..50u32).rev() {
            let block = Enc::default()
                .status(200)
                .add_named(31, "text/plain")
                .done();
            s.extend(headers(2 * i + 1, false, &block));
        }
        for round in 0..3 {
            for i in 0..50u32 {
                s.extend(data(
                    2 * i + 1,
                    round == 2,
                    format!("r{round}s{i}|").as_bytes(),
                ));
            }
        }
        // Split the response side at odd places.
        for (k, piece) in s.chunks(37).enumerate() {
            h2.push(Resp, 20 + k as u64, piece);
        }
        let out = h2.drain();
        assert_eq!(h2.parse_errors(), 0);
        assert_eq!(out.len(), 50);
        for (i, e) in out.iter().enumerate() {
            assert_eq!(e.stream_id, 2 * i as u32 + 1, "completion order");
            assert_eq!(req(e).path(), Some(format!("/s/{i}").as_str()));
            assert_eq!(req(e).header("x-client"), Some("bench"));
            let body = format!("r0s{i}|r1s{i}|r2s{i}|");
            assert_eq!(resp(e).body.as_deref(), Some(body.as_bytes()));
            assert_eq!(resp(e).header("content-type"), Some("text/plain"));
            if i % 2 == 1 {
                assert_eq!(
                    req(e).body.as_deref(),
                    Some(format!("p0-{i};p1-{i};").as_bytes())
                );
            }
            assert!(!e.partial && !req(e).headers_degraded && !resp(e).headers_degraded);
        }
        assert!(h2.close(99).is_empty());
    }

    #[test]
    fn rst_stream_reports_the_code_and_ignores_late_frames() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        h2.push(
            Req,
            10,
            &headers(1, true, &Enc::default().request("GET", "/a").done()),
        );
        h2.push(Resp, 11, &rst(1, 7)); // REFUSED_STREAM
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].reset, Some(7));
        assert!(out[0].partial && out[0].response.is_none());
        // Late frames of the reset stream do not reopen it.
        h2.push(Resp, 12, &data(1, true, b"late"));
        h2.push(Req, 13, &frame(WINDOW_UPDATE, 0, 1, &100u32.to_be_bytes()));
        h2.push(Req, 13, &rst(1, 8));
        // A client reset after the response headers.
        h2.push(
            Req,
            14,
            &headers(3, true, &Enc::default().request("GET", "/b").done()),
        );
        h2.push(
            Resp,
            15,
            &headers(3, false, &Enc::default().status(200).done()),
        );
        h2.push(Req, 16, &rst(3, 8));
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].stream_id, out[0].reset), (3, Some(8)));
        assert_eq!(
            req(&out[0]).wire_bytes,
            9 + Enc::default().request("GET", "/b").done().len() as u64 + 13
        );
        assert_eq!(resp(&out[0]).status(), Some(200));
        assert!(h2.close(20).is_empty());
        assert_eq!(h2.parse_errors(), 0);
    }

    #[test]
    fn goaway_refuses_streams_above_the_last_id() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        for id in [1, 3, 5] {
            h2.push(
                Req,
                10,
                &headers(
                    id,
                    true,
                    &Enc::default().request("GET", &format!("/{id}")).done(),
                ),
            );
        }
        // The client's own GOAWAY (about pushed streams) refuses nothing.
        h2.push(Req, 11, &goaway(0, 0));
        assert!(h2.drain().is_empty());
        h2.push(Resp, 12, &goaway(3, 0));
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].stream_id, 5);
        assert!(out[0].goaway && out[0].partial && out[0].response.is_none());
        for id in [1, 3] {
            h2.push(
                Resp,
                13,
                &headers(id, true, &Enc::default().status(404).done()),
            );
        }
        let out = h2.drain();
        assert_eq!(out.len(), 2);
        assert!(out
            .iter()
            .all(|e| !e.goaway && !e.partial && resp(e).status() == Some(404)));
        // A stream opened after the GOAWAY, still open at close.
        h2.push(
            Req,
            14,
            &headers(7, true, &Enc::default().request("GET", "/7").done()),
        );
        let out = h2.close(15);
        assert_eq!(out.len(), 1);
        assert!(out[0].goaway && out[0].partial);
    }

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
    fn padding_and_priority_are_stripped() {
        let mut h2 = Http2Stream::new(Limits {
            max_body_capture: 100,
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

    #[test]
    fn table_size_update_to_zero_empties_the_table() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        h2.push(
            Req,
            3,
            &headers(
                1,
                true,
                &Enc::default().request("GET", "/").add("x-k", "v").done(),
            ),
        );
        h2.push(
            Req,
            4,
            &headers(3, true, &Enc::default().request("GET", "/").idx(62).done()),
        );
        h2.push(Resp, 5, &settings(&[(1, 0)]));
        h2.push(
            Req,
            6,
            &headers(
                5,
                true,
                &Enc::default().size(0).request("GET", "/").idx(62).done(),
            ),
        );
        for id in [1, 3, 5] {
            h2.push(
                Resp,
                7,
                &headers(id, true, &Enc::default().status(200).done()),
            );
        }
        let out = h2.drain();
        assert_eq!(out.len(), 3);
        assert_eq!(req(&out[1]).header("x-k"), Some("v"));
        assert!(req(&out[2]).headers_degraded);
        assert_eq!(req(&out[2]).header("x-k"), None);
        assert_eq!(h2.parse_errors(), 1);
    }

    #[test]
    fn grpc_unary_built_from_frames() {
        let mut h2 = Http2Stream::new(Limits {
            max_body_capture: 64,
        });
        open(&mut h2);
        let block = Enc::default()
            .request("POST", "/pkg.Service/Method")
            .lit("content-type", "application/grpc")
            .lit("te", "trailers")
            .done();
        h2.push(Req, 10, &headers(1, false, &block));
        h2.push(Req, 11, &data(1, true, &[0, 0, 0, 0, 3, 1, 2, 3]));
        let block = Enc::default()
            .status(200)
            .lit("content-type", "application/grpc+proto")
            .done();
        h2.push(Resp, 12, &headers(1, false, &block));
        h2.push(Resp, 13, &data(1, false, &[0, 0, 0, 0, 2, 9, 9]));
        let trailers = Enc::default()
            .lit("grpc-status", "0")
            .lit("grpc-message", "all%20good")
            .done();
        h2.push(Resp, 14, &headers(1, true, &trailers));
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(
            e.grpc,
            Some(Grpc {
                service: "pkg.Service".into(),
                method: "Method".into(),
                status: Some(0),
                message: Some("all good".into()),
            })
        );
        assert_eq!(req(e).body.as_deref(), Some(&[0, 0, 0, 0, 3, 1, 2, 3][..]));
        assert_eq!(resp(e).body_size, 7);
        assert_eq!((req(e).start_ns, req(e).end_ns), (10, 11));
        assert_eq!((resp(e).start_ns, resp(e).end_ns), (12, 14));
        assert!(!e.partial);
    }

    #[test]
    fn push_promise_opens_the_promised_stream() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        h2.push(
            Req,
            10,
            &headers(1, true, &Enc::default().request("GET", "/page").done()),
        );
        let mut p = 2u32.to_be_bytes().to_vec();
        p.extend(
            Enc::default()
                .request("GET", "/style.css")
                .add("x-pushed", "yes")
                .done(),
        );
        h2.push(Resp, 11, &frame(PUSH_PROMISE, FLAG_END_HEADERS, 1, &p));
        h2.push(
            Resp,
            12,
            &headers(1, true, &Enc::default().status(200).idx(62).done()),
        );
        h2.push(
            Resp,
            13,
            &headers(2, false, &Enc::default().status(200).done()),
        );
        h2.push(Resp, 14, &data(2, true, b"body{}"));
        let out = h2.drain();
        let ids: Vec<u32> = out.iter().map(|e| e.stream_id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(
            resp(&out[0]).header("x-pushed"),
            Some("yes"),
            "HPACK kept in sync"
        );
        let pushed = &out[1];
        assert_eq!(req(pushed).path(), Some("/style.css"));
        assert_eq!(req(pushed).wire_bytes, 9 + p.len() as u64);
        assert_eq!(resp(pushed).body_size, 6);
        assert!(!pushed.partial);
        assert_eq!(h2.parse_errors(), 0);
    }

    #[test]
    fn interim_responses_are_dropped() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        h2.push(
            Req,
            10,
            &headers(
                1,
                false,
                &Enc::default()
                    .request("POST", "/up")
                    .lit("expect", "100-continue")
                    .done(),
            ),
        );
        h2.push(
            Resp,
            11,
            &headers(1, false, &Enc::default().lit(":status", "100").done()),
        );
        h2.push(Req, 12, &data(1, true, b"abc"));
        h2.push(
            Resp,
            13,
            &headers(1, true, &Enc::default().status(404).done()),
        );
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(resp(&out[0]).status(), Some(404));
        assert!(resp(&out[0]).trailers.is_empty());
        assert_eq!(resp(&out[0]).start_ns, 11);
    }

    // ------------------------------------------------------------ gaps and resync

    #[test]
    fn gap_inside_data_is_counted_as_body() {
        let mut h2 = Http2Stream::new(Limits {
            max_body_capture: 1000,
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
        h2.gap(Resp, 13, 40);
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

    #[test]
    fn gap_over_a_header_block_desyncs_then_recovers() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        h2.push(
            Req,
            10,
            &headers(
                1,
                true,
                &Enc::default().request("GET", "/a").add("x-k", "v").done(),
            ),
        );
        h2.push(
            Resp,
            11,
            &headers(1, true, &Enc::default().status(200).done()),
        );
        // Stream 3's HEADERS frame is lost entirely, with the start of stream 5's.
        let lost = headers(
            3,
            true,
            &Enc::default().request("GET", "/b").add("x-l", "w").done(),
        );
        let h5 = headers(
            5,
            true,
            &Enc::default().request("GET", "/c").idx(62).idx(63).done(),
        );
        h2.gap(Req, 12, (lost.len() + 4) as u64);
        h2.push(Req, 13, &h5[4..]);
        // Stream 7's frames are found again; x-m is a new entry.
        h2.push(
            Req,
            14,
            &headers(
                7,
                true,
                &Enc::default().request("GET", "/d").add("x-m", "u").done(),
            ),
        );
        h2.push(
            Req,
            15,
            &headers(
                9,
                true,
                &Enc::default().request("GET", "/e").idx(62).idx(64).done(),
            ),
        );
        h2.push(Req, 15, &frame(PING, 0, 0, &[0; 8]));
        for id in [3, 5, 7, 9] {
            h2.push(
                Resp,
                16,
                &headers(id, true, &Enc::default().status(200).done()),
            );
        }
        let out = h2.close(17);
        assert!(h2.parse_errors() >= 1);
        let e7 = out.iter().find(|e| e.stream_id == 7).expect("stream 7");
        assert_eq!(req(e7).path(), Some("/d"));
        assert!(!req(e7).headers_degraded);
        let e9 = out.iter().find(|e| e.stream_id == 9).expect("stream 9");
        assert_eq!(req(e9).path(), Some("/e"));
        assert_eq!(
            req(e9).header("x-m"),
            Some("u"),
            "entry added after the resync"
        );
        assert!(
            req(e9).headers_degraded,
            "index 64 is in the unknown part of the table"
        );
        let e3 = out.iter().find(|e| e.stream_id == 3).expect("stream 3");
        assert!(e3.request.is_none() && e3.partial && resp(e3).status() == Some(200));
    }

    #[test]
    fn joined_mid_stream_resyncs_and_flags_degraded_headers() {
        let c = chunks(&DYNAMIC);
        // Drop the first 40% of each side (mid-frame).
        let (mut skip_req, mut skip_resp) = (DYNAMIC.req.len() * 2 / 5, DYNAMIC.resp.len() * 2 / 5);
        let mut events = Vec::new();
        for (i, (side, bytes)) in c.iter().enumerate() {
            let skip = if *side == Req {
                &mut skip_req
            } else {
                &mut skip_resp
            };
            let cut = (*skip).min(bytes.len());
            *skip -= cut;
            if cut < bytes.len() {
                events.push((*side, ts_of(i), &bytes[cut..]));
            }
        }
        let r = run_events(events, Limits::default());
        let mut decoded = 0;
        for e in &r.exchanges {
            if let Some(path) = e.request.as_ref().and_then(Message::path) {
                assert_eq!(
                    path,
                    format!("/item/{}", (e.stream_id - 1) / 2),
                    "no wrong header"
                );
                decoded += 1;
            }
        }
        // The cut falls in stream 15's HEADERS: requests from stream 17 on are
        // found again (their fields are literals); earlier streams only have
        // their responses, whose fields index entries sent before the cut.
        assert_eq!(decoded, 4);
        let last = r
            .exchanges
            .iter()
            .find(|e| e.stream_id == 23)
            .expect("last stream");
        assert_eq!(req(last).path(), Some("/item/11"));
        assert_eq!(req(last).header("x-request-id"), Some("req-0011"));
        assert!(!last.partial && !req(last).headers_degraded);
        assert!(r
            .exchanges
            .iter()
            .all(|e| resp(e).status() == Some(200) && resp(e).headers_degraded));
        let orphan = r
            .exchanges
            .iter()
            .find(|e| e.stream_id == 9)
            .expect("stream 9");
        assert!(orphan.request.is_none() && orphan.partial);
        assert!(r
            .exchanges
            .iter()
            .all(|e| e.stream_id % 2 == 1 && e.stream_id <= 23));
    }

    #[test]
    fn joined_at_any_offset_never_reports_wrong_paths() {
        for (name, f) in [
            ("concurrent", &CONCURRENT),
            ("dynamic", &DYNAMIC),
            ("grpc", &GRPC),
        ] {
            let paths: Vec<String> = replay(f)
                .exchanges
                .iter()
                .map(|e| req(e).path().unwrap_or_default().to_string())
                .collect();
            for cut in 1..f.req.len() {
                let events = [(Req, 1, &f.req[cut..]), (Resp, 2, f.resp)];
                let r = run_events(events, Limits::default());
                for e in &r.exchanges {
                    if let Some(p) = e.request.as_ref().and_then(Message::path) {
                        assert!(paths.iter().any(|k| k == p), "{name} cut {cut}: {p}");
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ limits

    #[test]
    fn open_streams_are_bounded() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        let mut evicted = 0;
        for i in 0..1100u32 {
            h2.push(
                Req,
                10,
                &headers(
                    2 * i + 1,
                    false,
                    &Enc::default().request("POST", "/x").done(),
                ),
            );
            evicted += h2.drain().len();
        }
        assert_eq!(evicted, 1100 - MAX_OPEN_STREAMS);
        let rest = h2.close(11);
        assert_eq!(rest.len(), MAX_OPEN_STREAMS);
        assert!(rest.iter().all(|e| e.partial));
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

    #[test]
    fn preface_detection() {
        assert!(looks_like_http2_preface(PREFACE));
        assert!(looks_like_http2_preface(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"
        ));
        assert!(looks_like_http2_preface(b"PRI * HT"));
        assert!(!looks_like_http2_preface(b"PRI"));
        assert!(!looks_like_http2_preface(b"GET / HTTP/1.1\r\n"));
        assert!(!looks_like_http2_preface(
            b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"
        ));
    }

    // ------------------------------------------------------------ HPACK

    #[test]
    fn huffman_code_is_canonical_and_round_trips() {
        for l in 5..=30usize {
            let mut codes: Vec<(u32, usize)> = HUFFMAN_CODES
                .iter()
                .enumerate()
                .filter(|(_, c)| usize::from(c.1) == l)
                .map(|(s, c)| (c.0, s))
                .collect();
            codes.sort_unstable();
            for (k, (code, sym)) in codes.iter().enumerate() {
                assert_eq!(*code, HUFFMAN.first[l] + k as u32);
                assert_eq!(
                    usize::from(HUFFMAN.symbols[(HUFFMAN.offset[l] as usize) + k]),
                    *sym
                );
            }
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(
            huffman_decode(&huffman_encode(&all)).as_deref(),
            Some(&all[..])
        );
        // RFC 7541 C.4.1.
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(
            huffman_decode(&www).as_deref(),
            Some(&b"www.example.com"[..])
        );
        // EOS inside, over-long padding, padding with zeros.
        assert_eq!(huffman_decode(&[0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(huffman_decode(&[0xf1, 0xe3, 0xff]), None);
        assert_eq!(huffman_decode(&[0x00]), None);
    }

    #[test]
    fn hpack_integers() {
        // RFC 7541 C.1.
        let mut pos = 0;
        assert_eq!(integer(&[0x0a], &mut pos, 5), Some(10));
        pos = 0;
        assert_eq!(integer(&[0x1f, 0x9a, 0x0a], &mut pos, 5), Some(1337));
        assert_eq!(pos, 3);
        pos = 0;
        assert_eq!(integer(&[0x2a], &mut pos, 8), Some(42));
        pos = 0;
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x0f], &mut pos, 5),
            None,
            "overflow"
        );
        pos = 0;
        assert_eq!(
            integer(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], &mut pos, 5),
            None
        );
        pos = 0;
        assert_eq!(integer(&[0x1f], &mut pos, 5), None, "truncated");
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(list: &[(&str, &str)]) -> Vec<Header> {
        list.iter().map(|(n, v)| hdr(n, v)).collect()
    }

    #[test]
    fn hpack_rfc_request_examples() {
        // RFC 7541 C.3 (literals) and C.4 (Huffman): three requests on one connection.
        for blocks in [
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
        ] {
            let mut d = Hpack::new();
            let first = [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ];
            assert_eq!(d.decode(&hex(blocks[0])), (fields(&first), Outcome::Ok));
            let mut second = first.to_vec();
            second.push(("cache-control", "no-cache"));
            assert_eq!(d.decode(&hex(blocks[1])), (fields(&second), Outcome::Ok));
            let third = [
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ];
            assert_eq!(d.decode(&hex(blocks[2])), (fields(&third), Outcome::Ok));
            assert_eq!(d.size, 164);
        }
    }

    #[test]
    fn hpack_rfc_response_examples_with_eviction() {
        // RFC 7541 C.6: Huffman, table size 256, evictions.
        let mut d = Hpack::new();
        d.set_limit(256);
        d.set_max_size(256);
        let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
        let b1 = concat!(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6",
            "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"
        );
        let r1 = [
            ("status", "302"),
            ("cache-control", "private"),
            ("date", date1),
            ("location", "https://www.example.com"),
        ];
        let with_colon = |l: &[(&'static str, &'static str)]| -> Vec<Header> {
            l.iter()
                .map(|(n, v)| hdr(if *n == "status" { ":status" } else { n }, v))
                .collect()
        };
        assert_eq!(d.decode(&hex(b1)), (with_colon(&r1), Outcome::Ok));
        assert_eq!(d.size, 222);
        let b2 = "4883 640e ffc1 c0bf";
        let r2 = [
            ("status", "307"),
            ("cache-control", "private"),
            ("date", date1),
            ("location", "https://www.example.com"),
        ];
        assert_eq!(d.decode(&hex(b2)), (with_colon(&r2), Outcome::Ok));
        assert_eq!(d.size, 222);
        let b3 = concat!(
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab",
            "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f",
            "9587 3160 65c0 03ed 4ee5 b106 3d50 07"
        );
        let date3 = "Mon, 21 Oct 2013 20:13:22 GMT";
        let r3 = [
            ("status", "200"),
            ("cache-control", "private"),
            ("date", date3),
            ("location", "https://www.example.com"),
            ("content-encoding", "gzip"),
            (
                "set-cookie",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            ),
        ];
        assert_eq!(d.decode(&hex(b3)), (with_colon(&r3), Outcome::Ok));
        assert_eq!(d.size, 215);
        assert_eq!(d.entries.len(), 3);
    }

    #[test]
    fn hpack_unknown_tail_after_desync() {
        let mut d = Hpack::new();
        d.decode(&Enc::default().add("a", "1").add("b", "2").done());
        d.mark_unknown();
        // New entry c is known (index 62); 63 and above are unknown.
        let (out, o) = d.decode(&Enc::default().add("c", "3").idx(62).idx(63).idx(2).done());
        assert_eq!(out, fields(&[("c", "3"), ("c", "3"), (":method", "GET")]));
        assert_eq!(o, Outcome::Degraded);
        // An indexed name from the unknown part: the new entry's name is unknown too.
        let (out, o) = d.decode(&Enc::default().add_named(70, "v").idx(62).done());
        assert!(out.is_empty());
        assert_eq!(o, Outcome::Degraded);
        // Filling the (known 4096-byte) table drops the unknown part.
        let big = "x".repeat(2000);
        d.decode(&Enc::default().add("big1", &big).add("big2", &big).done());
        assert!(!d.unknown);
        let (_, o) = d.decode(&Enc::default().idx(70).done());
        assert_eq!(o, Outcome::Error);
    }

    // ------------------------------------------------------------ never panic

    /// Pushes random splits of two byte streams with random gaps; checks memory.
    fn chaos(rng: &mut Rng, req_bytes: &[u8], resp_bytes: &[u8], gaps: bool) -> usize {
        let mut h2 = Http2Stream::new(Limits {
            max_body_capture: rng.below(3) * 100,
        });
        let (mut a, mut b) = (req_bytes, resp_bytes);
        let mut ts = 0;
        let mut produced = 0;
        while !a.is_empty() || !b.is_empty() {
            ts += 1;
            let side = if b.is_empty() || (!a.is_empty() && rng.below(2) == 0) {
                Req
            } else {
                Resp
            };
            let src = if side == Req { &mut a } else { &mut b };
            let max = if rng.below(4) == 0 { 4000 } else { 64 };
            let n = (1 + rng.below(max)).min(src.len());
            let (head, tail) = src.split_at(n);
            *src = tail;
            if gaps && rng.below(20) == 0 {
                h2.gap(side, ts, n as u64);
            } else {
                h2.push(side, ts, head);
            }
            if gaps && rng.below(50) == 0 {
                h2.gap(side, ts, rng.below(100_000) as u64);
            }
            assert!(h2.buffered() < 16 << 20, "memory bound: {}", h2.buffered());
            if rng.below(8) == 0 {
                produced += h2.drain().len();
            }
        }
        produced += h2.close(ts + 1).len();
        assert!(h2.close(ts + 2).is_empty());
        produced
    }

    fn mutate(rng: &mut Rng, src: &[u8]) -> Vec<u8> {
        let mut v = src.to_vec();
        for _ in 0..1 + rng.below(8) {
            if v.is_empty() {
                break;
            }
            let at = rng.below(v.len());
            match rng.below(5) {
                0 => v[at] ^= 1 << rng.below(8),
                1 => v[at] = rng.next() as u8,
                2 => {
                    v.remove(at);
                }
                3 => v.insert(at, rng.next() as u8),
                _ => {
                    let end = (at + rng.below(64)).min(v.len());
                    let copy = v[at..end].to_vec();
                    let to = rng.below(v.len());
                    v.splice(to..to, copy);
                }
            }
        }
        v
    }

    /// A random but mostly well-formed frame sequence (valid headers, random payloads).
    fn random_frames(rng: &mut Rng, side: Side) -> Vec<u8> {
        let mut out = if side == Req && rng.below(4) != 0 {
            PREFACE.to_vec()
        } else {
            Vec::new()
        };
        for _ in 0..rng.below(40) {
            let kind = rng.below(12) as u8;
            let stream = match kind {
                SETTINGS | PING | GOAWAY => 0,
                _ => 1 + rng.below(12) as u32,
            };
            let payload = match kind {
                HEADERS if rng.below(2) == 0 => Enc::default()
                    .request("GET", "/r")
                    .add("x-r", "v")
                    .idx(62)
                    .done(),
                SETTINGS => {
                    let n = rng.below(4);
                    let mut p = Vec::new();
                    for _ in 0..n {
                        p.extend_from_slice(&(1 + rng.below(6) as u16).to_be_bytes());
                        p.extend_from_slice(&(rng.next() as u32 % 70_000).to_be_bytes());
                    }
                    p
                }
                _ => {
                    let max = if rng.below(10) == 0 { 3000 } else { 20 };
                    let len = rng.below(max);
                    rng.bytes(len)
                }
            };
            out.extend(frame(kind, rng.next() as u8 & 0x2d, stream, &payload));
        }
        out
    }

    #[test]
    fn random_input_never_panics_and_stays_bounded() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..1500 {
            let (la, lb) = (rng.below(3000), rng.below(3000));
            let (a, b) = (rng.bytes(la), rng.bytes(lb));
            chaos(&mut rng, &a, &b, true);
        }
        for _ in 0..1500 {
            let a = random_frames(&mut rng, Req);
            let b = random_frames(&mut rng, Resp);
            let gaps = rng.below(2) == 0;
            chaos(&mut rng, &a, &b, gaps);
        }
        let mut produced = 0;
        for _ in 0..400 {
            for (_, f) in all_fixtures() {
                let a = mutate(&mut rng, f.req);
                let b = mutate(&mut rng, f.resp);
                let gaps = rng.below(3) == 0;
                produced += chaos(&mut rng, &a, &b, gaps);
            }
        }
        assert!(
            produced > 1000,
            "mutated fixtures still yield exchanges: {produced}"
        );
        // Large payloads and frame lengths.
        let mut big = PREFACE.to_vec();
        big.extend(frame(DATA, 0, 1, &vec![7; 3 << 20]));
        big.extend(frame(0xfa, 0, 1, &vec![1; 2 << 20]));
        big.extend(frame(HEADERS, 0, 1, &vec![0x82; 300_000]));
        let noise = rng.bytes(5 << 20);
        chaos(&mut rng, &big, &noise, true);
    }

    #[test]
    fn random_header_blocks_never_panic() {
        let mut rng = Rng(42);
        let valid = [
            hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
            Enc::default()
                .size(100)
                .add("k", "v")
                .idx(62)
                .add_named(62, "w")
                .done(),
            Enc::default()
                .request("GET", "/")
                .add("x", &"y".repeat(700))
                .done(),
        ];
        for i in 0..8_000 {
            let mut d = Hpack::new();
            if i % 3 == 0 {
                d.mark_unknown();
            }
            d.set_limit(rng.next() as u32);
            for _ in 0..4 {
                let (len, pick) = (rng.below(200), rng.below(valid.len()));
                let block = if rng.below(2) == 0 {
                    rng.bytes(len)
                } else {
                    mutate(&mut rng, &valid[pick])
                };
                let (out, _) = d.decode(&block);
                assert!(out.len() <= MAX_MESSAGE_FIELDS);
                assert!(d.size <= d.max_size && d.max_size <= MAX_TABLE_SIZE);
            }
        }
        // Indexed references cannot amplify beyond the per-block limit.
        let mut d = Hpack::new();
        d.set_limit(65_536);
        let block = Enc::default()
            .size(65_536)
            .add("a", &"b".repeat(60_000))
            .done();
        d.decode(&block);
        let (out, o) = d.decode(&vec![0xbe; 100_000]);
        assert_eq!(o, Outcome::Degraded);
        assert!(out.iter().map(|h| h.value.len()).sum::<usize>() <= MAX_MESSAGE_HEADER_BYTES);
    }
}
