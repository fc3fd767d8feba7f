//! Incremental, panic-free HTTP/1.x parser that pairs the captured request and response byte streams of one TCP connection into exchanges.

use std::collections::VecDeque;
use std::mem;

/// Headers parsed with a stack array before falling back to a larger one.
const FAST_HEADER_COUNT: usize = 64;
/// Largest number of headers accepted in one message head.
const MAX_HEADER_COUNT: usize = 256;
/// Smallest usable `max_header_bytes`; smaller limits are raised to this.
const MIN_HEADER_BYTES: usize = 64;
/// Length of the longest message start token (`"OPTIONS "`, `"CONNECT "`).
const START_PROBE_LEN: usize = 8;
/// Requests kept waiting for a response before the oldest one is given up.
const MAX_PENDING: usize = 128;
/// Interim (1xx) statuses remembered for one final response.
const MAX_INFORMATIONAL: usize = 16;
/// Timestamp marks kept per buffer; later bytes share the last mark.
const MAX_MARKS: usize = 64;
/// Buffer capacity kept once a buffer is emptied.
const IDLE_CAPACITY: usize = 4096;
/// Consecutive zero-progress steps tolerated before a byte is skipped.
const MAX_STALLS: u8 = 8;

/// Tokens that start a request: a known method followed by a space.
const REQUEST_STARTS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];
/// Token that starts a response.
const RESPONSE_STARTS: [&[u8]; 1] = [b"HTTP/1."];

/// Which half of the conversation bytes belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bytes sent by the client.
    Request,
    /// Bytes sent by the server.
    Response,
}

/// Parser limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest message head (start line plus headers), chunk-size line or trailer
    /// section accepted; longer ones are parse errors. Values below 64 act as 64.
    /// Default 64 KiB.
    pub max_header_bytes: usize,
    /// Body bytes kept per message (0 = keep none). Default 0. Capture stops at
    /// the first gap, so the captured bytes are always a contiguous prefix.
    pub max_body_capture: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_body_capture: 0,
        }
    }
}

/// One header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Field name as on the wire.
    pub name: String,
    /// Field value, decoded lossily as UTF-8.
    pub value: String,
}

/// A parsed HTTP/1.x request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Request target, e.g. `/index.html`.
    pub target: String,
    /// Minor HTTP version: 0 or 1.
    pub version: u8,
    /// Header fields in wire order; chunked trailers are appended.
    pub headers: Vec<Header>,
    /// Payload length (after de-chunking), including bytes lost in gaps.
    pub body_size: u64,
    /// First `max_body_capture` payload bytes; `None` when capture is off.
    pub body: Option<Vec<u8>>,
    /// Some payload bytes are not in `body` (capture limit reached, or lost in a gap).
    pub body_truncated: bool,
    /// Timestamp of the push that carried the first byte of the message.
    pub start_ns: u64,
    /// Timestamp of the push that carried the last byte (for a message cut
    /// short: of the gap or close that ended it).
    pub end_ns: u64,
    /// The message was received up to its framed end.
    pub complete: bool,
    /// Bytes of the message on the wire: head, body and chunk framing (gaps included).
    pub wire_bytes: u64,
}

/// A parsed HTTP/1.x final response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Reason phrase (may be empty).
    pub reason: String,
    /// Minor HTTP version: 0 or 1.
    pub version: u8,
    /// Header fields in wire order; chunked trailers are appended.
    pub headers: Vec<Header>,
    /// Payload length (after de-chunking), including bytes lost in gaps.
    pub body_size: u64,
    /// First `max_body_capture` payload bytes; `None` when capture is off.
    pub body: Option<Vec<u8>>,
    /// Some payload bytes are not in `body` (capture limit reached, or lost in a gap).
    pub body_truncated: bool,
    /// Timestamp of the push that carried the first byte of this final response.
    pub start_ns: u64,
    /// Timestamp of the push that carried the last byte (for a message cut
    /// short: of the gap or close that ended it).
    pub end_ns: u64,
    /// The message was received up to its framed end (or to close, if close-delimited).
    pub complete: bool,
    /// Interim 1xx statuses seen before this final response, e.g. `[100]`.
    pub informational: Vec<u16>,
    /// Bytes of the message on the wire: interim responses, head, body and chunk framing.
    pub wire_bytes: u64,
}

/// One request paired with its response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The request; `None` when the stream was joined after it was sent, or
    /// when it was lost in a gap (then `gap` is set).
    pub request: Option<Request>,
    /// The final response; `None` when none arrived before close, or when it
    /// was lost in a gap (then `gap` is set).
    pub response: Option<Response>,
    /// A side is missing or incomplete.
    pub partial: bool,
    /// Bytes of this exchange were lost (see [`Http1Stream::gap`]).
    pub gap: bool,
    /// The connection switched protocols (101, or 2xx to CONNECT) after this exchange.
    pub upgraded: bool,
}

/// Parser for both directions of one HTTP/1.x connection.
///
/// Responses are paired with requests in order: the nth final response answers
/// the nth request. Request bytes of an exchange must be pushed before the
/// bytes of its response (as the kernel sees them); a response that arrives
/// while no request is waiting becomes an exchange without request.
///
/// After a parse error or a gap that breaks framing the side resynchronises on
/// the next line that starts with a known method and a space (request side) or
/// with `HTTP/1.` (response side). A gap that swallows the start of a message
/// still counts as one message, so that pairing stays aligned.
#[derive(Debug)]
pub struct Http1Stream {
    request: SideParser,
    response: SideParser,
    conv: Conversation,
    closed: bool,
    stalls: u64,
}

impl Http1Stream {
    /// Creates a parser for a new connection.
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            max_header_bytes: limits.max_header_bytes.max(MIN_HEADER_BYTES),
            ..limits
        };
        Self {
            request: SideParser::new(Side::Request, limits),
            response: SideParser::new(Side::Response, limits),
            conv: Conversation::new(limits.max_body_capture),
            closed: false,
            stalls: 0,
        }
    }

    /// Feed bytes of one side in wire order. ts_ns = kernel timestamp of the capture event.
    ///
    /// Bytes are ignored after an upgrade or after [`Http1Stream::close`].
    pub fn push(&mut self, side: Side, ts_ns: u64, data: &[u8]) {
        if self.closed || self.conv.upgraded {
            return;
        }
        let mut rest = data;
        let mut stalls = 0;
        while !rest.is_empty() {
            let used = self.step(side, ts_ns, rest);
            let used = self.guard(used, &mut stalls);
            rest = rest.get(used..).unwrap_or_default();
            self.settle();
        }
    }

    /// `len` bytes of this side were lost (payload truncated by the kernel, or events dropped).
    pub fn gap(&mut self, side: Side, ts_ns: u64, len: u64) {
        if self.closed || self.conv.upgraded {
            return;
        }
        self.surface_head_error(side);
        match side {
            Side::Request => self.request.gap(&mut self.conv, ts_ns, len),
            Side::Response => self.response.gap(&mut self.conv, ts_ns, len),
        }
        self.sync_sides();
        self.settle();
    }

    /// Completed exchanges so far, in request order (moves them out).
    ///
    /// An exchange is complete once its final response is complete and its
    /// request (if any) is no longer being received.
    pub fn drain(&mut self) -> Vec<Exchange> {
        mem::take(&mut self.conv.ready)
    }

    /// The connection closed: finish a close-delimited response body, then return everything
    /// still pending (requests without a response, half-parsed messages) as partial exchanges.
    ///
    /// The result also holds completed exchanges not yet drained. Later input is ignored.
    pub fn close(&mut self, ts_ns: u64) -> Vec<Exchange> {
        if !self.closed {
            self.surface_head_error(Side::Request);
            self.surface_head_error(Side::Response);
            self.closed = true;
            self.request.close(&mut self.conv, ts_ns);
            self.response.close(&mut self.conv, ts_ns);
            self.conv.close_all();
        }
        self.drain()
    }

    /// Number of parse errors (desyncs) seen so far.
    pub fn parse_errors(&self) -> u64 {
        self.conv.parse_errors
    }

    /// True once the stream was upgraded (101 or CONNECT 2xx) and is no longer parsed.
    pub fn is_upgraded(&self) -> bool {
        self.conv.upgraded
    }

    /// Runs one parser step on `data` and returns how many bytes it consumed.
    fn step(&mut self, side: Side, ts: u64, data: &[u8]) -> usize {
        let used = match side {
            Side::Request => self.request.step(&mut self.conv, ts, data),
            Side::Response => self.response.step(&mut self.conv, ts, data),
        };
        self.sync_sides();
        used
    }

    /// Heads are parsed only when a line ends, so a syntax error in the last,
    /// unfinished line may be unnoticed; finds it before a gap or close looks
    /// at the head, so that results do not depend on how input was split.
    fn surface_head_error(&mut self, side: Side) {
        loop {
            let found = match side {
                Side::Request => self.request.fail_if_head_invalid(&mut self.conv),
                Side::Response => self.response.fail_if_head_invalid(&mut self.conv),
            };
            if !found {
                return;
            }
            self.sync_sides();
            self.settle();
        }
    }

    /// Applies decisions of one side to the other: upgrades and upgrade holds.
    fn sync_sides(&mut self) {
        if self.conv.upgraded {
            // Count errors still hidden in unfinished heads before they are dropped.
            self.request.fail_if_head_invalid(&mut self.conv);
            self.response.fail_if_head_invalid(&mut self.conv);
            self.request.go_opaque();
            self.response.go_opaque();
            return;
        }
        if let State::Hold { seq } = self.request.state {
            if self.conv.is_answered(seq) {
                self.request.release_hold();
            }
        }
    }

    /// Defensive progress guarantee: after too many empty steps, skip one byte.
    fn guard(&mut self, used: usize, stalls: &mut u8) -> usize {
        if used > 0 {
            *stalls = 0;
            return used;
        }
        *stalls = stalls.saturating_add(1);
        if *stalls <= MAX_STALLS {
            return 0;
        }
        *stalls = 0;
        self.stalls = self.stalls.saturating_add(1);
        1
    }

    /// Processes replayed bytes of both sides until none are left (request side first).
    fn settle(&mut self) {
        self.request.unstage();
        self.response.unstage();
        loop {
            let next = match self.request.queue.pop_front() {
                Some(chunk) => Some((Side::Request, chunk)),
                None => self.response.queue.pop_front().map(|c| (Side::Response, c)),
            };
            let Some((side, chunk)) = next else { return };
            self.run_chunk(side, chunk);
        }
    }

    /// Feeds one replayed chunk; new replays interrupt it and are queued before its rest.
    fn run_chunk(&mut self, side: Side, chunk: Chunk) {
        let mut off = 0usize;
        let mut stalls = 0;
        while let Some(rest) = chunk.bytes.get(off..).filter(|r| !r.is_empty()) {
            let used = self.step(side, chunk.ts, rest);
            off = off.saturating_add(self.guard(used, &mut stalls));
            if self.request.has_staged() || self.response.has_staged() {
                if let Some(tail) = chunk.bytes.get(off..).filter(|r| !r.is_empty()) {
                    let tail = Chunk {
                        ts: chunk.ts,
                        bytes: tail.to_vec(),
                    };
                    self.parser_mut(side).queue.push_front(tail);
                }
                self.request.unstage();
                self.response.unstage();
                return;
            }
        }
    }

    /// The parser of one side.
    fn parser_mut(&mut self, side: Side) -> &mut SideParser {
        match side {
            Side::Request => &mut self.request,
            Side::Response => &mut self.response,
        }
    }

    /// Bytes held in buffers of both sides (capacity), for memory-bound tests.
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.request.buffered() + self.response.buffered()
    }
}

/// Cheap check used for protocol detection: do these first bytes start an HTTP/1 request or response?
///
/// True when they start with a known method followed by a space, or with `HTTP/1.`.
pub fn looks_like_http1(first_bytes: &[u8]) -> bool {
    start_of(Side::Request, first_bytes) == Start::Yes
        || start_of(Side::Response, first_bytes) == Start::Yes
}

/// Whether a buffer begins a message of a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// A full start token is present.
    Yes,
    /// The buffer is a proper prefix of a start token.
    Maybe,
    /// Not a message start.
    No,
}

/// Classifies the beginning of `buf` as a message start of `side`.
fn start_of(side: Side, buf: &[u8]) -> Start {
    let tokens: &[&[u8]] = match side {
        Side::Request => &REQUEST_STARTS,
        Side::Response => &RESPONSE_STARTS,
    };
    if tokens.iter().any(|t| buf.starts_with(t)) {
        Start::Yes
    } else if tokens.iter().any(|t| t.starts_with(buf)) {
        Start::Maybe
    } else {
        Start::No
    }
}

/// Parser state of one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Accumulating a message head.
    Head,
    /// Accumulating the first bytes of a candidate message start after a desync.
    Probe,
    /// Skipping bytes up to the next line start.
    Resync { line_start: bool },
    /// Inside a body of known length.
    Length { remaining: u64 },
    /// Accumulating a chunk-size line.
    ChunkSize,
    /// Inside chunk data.
    ChunkData { remaining: u64 },
    /// Expecting the CRLF after chunk data.
    ChunkEnd { cr: bool },
    /// Accumulating the trailer section.
    Trailers,
    /// Inside a close-delimited body.
    UntilClose,
    /// A request that may upgrade is done; later bytes wait for its response.
    Hold { seq: u64 },
    /// Not parsed any more.
    Opaque,
}

/// Replayed bytes with the timestamp of the push that carried them.
#[derive(Debug)]
struct Chunk {
    ts: u64,
    bytes: Vec<u8>,
}

/// A bounded byte buffer that remembers push timestamps.
#[derive(Debug)]
struct TsBuf {
    bytes: Vec<u8>,
    marks: Vec<(usize, u64)>,
    limit: usize,
}

impl TsBuf {
    fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            marks: Vec::new(),
            limit,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn first_ts(&self) -> Option<u64> {
        self.marks.first().map(|m| m.1)
    }

    /// Appends bytes; capacity grows geometrically but never past the limit.
    fn push(&mut self, ts: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.marks.last().map(|m| m.1) != Some(ts) && self.marks.len() < MAX_MARKS {
            self.marks.push((self.bytes.len(), ts));
        }
        let need = self.bytes.len().saturating_add(data.len());
        if need > self.bytes.capacity() {
            let target = need.saturating_mul(2).min(self.limit.max(need));
            self.bytes
                .reserve_exact(target.saturating_sub(self.bytes.len()));
        }
        self.bytes.extend_from_slice(data);
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.marks.clear();
        if self.bytes.capacity() > IDLE_CAPACITY {
            self.bytes.shrink_to(IDLE_CAPACITY);
        }
    }

    /// Copies `bytes[from..to]` as chunks tagged with their push timestamps.
    fn chunks(&self, from: usize, to: usize) -> Vec<Chunk> {
        let mut out = Vec::new();
        for (i, &(start, ts)) in self.marks.iter().enumerate() {
            let end = self
                .marks
                .get(i.saturating_add(1))
                .map_or(self.bytes.len(), |m| m.0);
            let (lo, hi) = (start.max(from), end.min(to));
            if let Some(bytes) = self.bytes.get(lo..hi).filter(|b| !b.is_empty()) {
                out.push(Chunk {
                    ts,
                    bytes: bytes.to_vec(),
                });
            }
        }
        out
    }

    /// Moves all bytes out as chunks.
    fn take_all(&mut self) -> Vec<Chunk> {
        let out = self.chunks(0, self.len());
        self.clear();
        out
    }
}

/// Request head fields.
#[derive(Debug)]
struct ReqHead {
    method: String,
    target: String,
    version: u8,
    headers: Vec<Header>,
}

/// Response head fields.
#[derive(Debug)]
struct RespHead {
    status: u16,
    reason: String,
    version: u8,
    headers: Vec<Header>,
    informational: Vec<u16>,
}

/// A parsed head of either side.
#[derive(Debug)]
enum Head {
    Request(ReqHead),
    Response(RespHead),
}

/// Body and timing state of one message.
#[derive(Debug)]
struct Progress {
    start_ns: u64,
    end_ns: u64,
    body_size: u64,
    body: Option<Vec<u8>>,
    truncated: bool,
    complete: bool,
    gap: bool,
    wire_bytes: u64,
}

impl Progress {
    fn new(start_ns: u64, end_ns: u64, capture: usize) -> Self {
        Self {
            start_ns,
            end_ns,
            body_size: 0,
            body: (capture > 0).then(Vec::new),
            truncated: false,
            complete: false,
            gap: false,
            wire_bytes: 0,
        }
    }

    fn add_body(&mut self, bytes: &[u8], ts: u64, capture: usize) {
        self.body_size = self.body_size.saturating_add(len_u64(bytes.len()));
        self.wire_bytes = self.wire_bytes.saturating_add(len_u64(bytes.len()));
        self.end_ns = ts;
        // After a gap or the limit, `body` stays the contiguous prefix it is.
        if let Some(body) = self.body.as_mut().filter(|_| !self.truncated) {
            let keep = capture.saturating_sub(body.len()).min(bytes.len());
            body.extend_from_slice(bytes.get(..keep).unwrap_or_default());
            if keep < bytes.len() {
                self.truncated = true;
            }
        }
    }

    fn add_lost(&mut self, n: u64, ts: u64) {
        if n > 0 {
            self.body_size = self.body_size.saturating_add(n);
            self.wire_bytes = self.wire_bytes.saturating_add(n);
            self.truncated = true;
            self.gap = true;
            self.end_ns = ts;
        }
    }
}

impl ReqHead {
    fn into_request(self, p: Progress) -> Request {
        Request {
            method: self.method,
            target: self.target,
            version: self.version,
            headers: self.headers,
            body_size: p.body_size,
            body: p.body,
            body_truncated: p.truncated,
            start_ns: p.start_ns,
            end_ns: p.end_ns,
            complete: p.complete,
            wire_bytes: p.wire_bytes,
        }
    }
}

impl RespHead {
    fn into_response(self, p: Progress) -> Response {
        Response {
            status: self.status,
            reason: self.reason,
            version: self.version,
            headers: self.headers,
            body_size: p.body_size,
            body: p.body,
            body_truncated: p.truncated,
            start_ns: p.start_ns,
            end_ns: p.end_ns,
            complete: p.complete,
            informational: self.informational,
            wire_bytes: p.wire_bytes,
        }
    }
}

/// One request (or a placeholder for a lost one) and the response assigned to it.
#[derive(Debug)]
struct Slot {
    seq: u64,
    request: Option<(ReqHead, Progress)>,
    response: Option<(RespHead, Progress)>,
    request_open: bool,
    response_open: bool,
    answered: bool,
    lost: bool,
    upgraded: bool,
}

impl Slot {
    fn ready(&self) -> bool {
        self.answered && !self.request_open && !self.response_open
    }

    fn progress_mut(&mut self, side: Side) -> Option<&mut Progress> {
        match side {
            Side::Request => self.request.as_mut().map(|(_, p)| p),
            Side::Response => self.response.as_mut().map(|(_, p)| p),
        }
    }

    fn headers_mut(&mut self, side: Side) -> Option<&mut Vec<Header>> {
        match side {
            Side::Request => self.request.as_mut().map(|(h, _)| &mut h.headers),
            Side::Response => self.response.as_mut().map(|(h, _)| &mut h.headers),
        }
    }

    fn close_side(&mut self, side: Side) {
        match side {
            Side::Request => self.request_open = false,
            Side::Response => self.response_open = false,
        }
    }

    fn into_exchange(self) -> Exchange {
        let gap = self.lost
            || self.request.as_ref().is_some_and(|(_, p)| p.gap)
            || self.response.as_ref().is_some_and(|(_, p)| p.gap);
        let request = self.request.map(|(h, p)| h.into_request(p));
        let response = self.response.map(|(h, p)| h.into_response(p));
        let partial = request.as_ref().is_none_or(|r| !r.complete)
            || response.as_ref().is_none_or(|r| !r.complete);
        Exchange {
            request,
            response,
            partial,
            gap,
            upgraded: self.upgraded,
        }
    }
}

/// What the response side needs to know about the request it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestKind {
    Head,
    Connect,
    Other,
}

/// Requests awaiting responses, finished exchanges and shared counters.
#[derive(Debug)]
struct Conversation {
    slots: VecDeque<Slot>,
    next_seq: u64,
    ready: Vec<Exchange>,
    parse_errors: u64,
    upgraded: bool,
    capture: usize,
}

impl Conversation {
    fn new(capture: usize) -> Self {
        Self {
            slots: VecDeque::new(),
            next_seq: 0,
            ready: Vec::new(),
            parse_errors: 0,
            upgraded: false,
            capture,
        }
    }

    fn new_slot(&mut self) -> Slot {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        Slot {
            seq,
            request: None,
            response: None,
            request_open: false,
            response_open: false,
            answered: false,
            lost: false,
            upgraded: false,
        }
    }

    /// Appends a slot, giving up the oldest one if too many are pending.
    fn push_slot(&mut self, slot: Slot) -> u64 {
        let seq = slot.seq;
        self.slots.push_back(slot);
        if self.slots.len() > MAX_PENDING {
            if let Some(oldest) = self.slots.pop_front() {
                self.emit(oldest);
            }
        }
        self.flush();
        seq
    }

    fn emit(&mut self, slot: Slot) {
        if slot.request.is_some() || slot.response.is_some() {
            self.ready.push(slot.into_exchange());
        }
    }

    /// Moves finished exchanges at the front of the queue to `ready`.
    fn flush(&mut self) {
        while self.slots.front().is_some_and(Slot::ready) {
            if let Some(slot) = self.slots.pop_front() {
                self.emit(slot);
            }
        }
    }

    fn close_all(&mut self) {
        while let Some(slot) = self.slots.pop_front() {
            self.emit(slot);
        }
    }

    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        self.slots.iter_mut().rev().find(|s| s.seq == seq)
    }

    fn progress_mut(&mut self, side: Side, seq: Option<u64>) -> Option<&mut Progress> {
        self.slot_mut(seq?)?.progress_mut(side)
    }

    fn first_unanswered(&mut self) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| !s.answered)
    }

    /// True if the slot got a final response (or is gone).
    fn is_answered(&self, seq: u64) -> bool {
        self.slots
            .iter()
            .find(|s| s.seq == seq)
            .is_none_or(|s| s.answered)
    }

    /// Kind of the request the next final response answers.
    fn pending_kind(&self) -> RequestKind {
        let method = self
            .slots
            .iter()
            .find(|s| !s.answered)
            .and_then(|s| s.request.as_ref())
            .map(|(h, _)| h.method.as_str());
        match method {
            Some("HEAD") => RequestKind::Head,
            Some("CONNECT") => RequestKind::Connect,
            _ => RequestKind::Other,
        }
    }

    /// Starts a new request that the request side is receiving.
    fn open_request(&mut self, head: ReqHead, progress: Progress) -> u64 {
        let mut slot = self.new_slot();
        slot.request = Some((head, progress));
        slot.request_open = true;
        self.push_slot(slot)
    }

    /// Records a request that was cut short (`lost`: by a gap) before its head was complete.
    fn cut_request(&mut self, salvaged: Option<(ReqHead, Progress)>, lost: bool) {
        let mut slot = self.new_slot();
        slot.request = salvaged;
        slot.lost = lost;
        self.push_slot(slot);
    }

    /// Assigns a final response to the oldest unanswered request, or to a new
    /// request-less slot when none is waiting.
    fn answer(&mut self, head: RespHead, progress: Progress) -> u64 {
        let response = Some((head, progress));
        if let Some(slot) = self.first_unanswered() {
            slot.response = response;
            slot.answered = true;
            slot.response_open = true;
            return slot.seq;
        }
        let mut slot = self.new_slot();
        slot.response = response;
        slot.answered = true;
        slot.response_open = true;
        self.push_slot(slot)
    }

    /// Assigns a response that was cut short before its head was complete.
    fn cut_response(&mut self, salvaged: Option<(RespHead, Progress)>, lost: bool) {
        if let Some(slot) = self.first_unanswered() {
            slot.response = salvaged;
            slot.answered = true;
            slot.lost |= lost;
        } else if salvaged.is_some() {
            let mut slot = self.new_slot();
            slot.response = salvaged;
            slot.answered = true;
            slot.lost = lost;
            self.push_slot(slot);
        }
        self.flush();
    }

    fn add_body(&mut self, side: Side, seq: Option<u64>, ts: u64, bytes: &[u8]) {
        let capture = self.capture;
        if let Some(p) = self.progress_mut(side, seq) {
            p.add_body(bytes, ts, capture);
        }
    }

    fn add_lost(&mut self, side: Side, seq: Option<u64>, ts: u64, n: u64) {
        if let Some(p) = self.progress_mut(side, seq) {
            p.add_lost(n, ts);
        }
    }

    /// Counts wire bytes that are framing, not body (chunk-size lines, CRLFs, trailers).
    fn add_framing(&mut self, side: Side, seq: Option<u64>, n: usize) {
        if let Some(p) = self.progress_mut(side, seq) {
            p.wire_bytes = p.wire_bytes.saturating_add(len_u64(n));
        }
    }

    fn add_trailers(&mut self, side: Side, seq: Option<u64>, trailers: Vec<Header>) {
        if let Some(headers) = seq.and_then(|s| self.slot_mut(s)?.headers_mut(side)) {
            headers.extend(trailers);
        }
    }

    /// Ends a message: `end_ns` is updated when given.
    fn end(&mut self, side: Side, seq: Option<u64>, complete: bool, end_ns: Option<u64>) {
        if let Some(slot) = seq.and_then(|s| self.slot_mut(s)) {
            if let Some(p) = slot.progress_mut(side) {
                p.complete = complete;
                if let Some(ts) = end_ns {
                    p.end_ns = ts;
                }
            }
            slot.close_side(side);
        }
        self.flush();
    }

    /// Marks the stream upgraded after the response of `seq`.
    fn upgrade(&mut self, seq: u64, ts: u64) {
        self.upgraded = true;
        if let Some(slot) = self.slot_mut(seq) {
            slot.upgraded = true;
            if let Some((_, p)) = slot.response.as_mut() {
                p.complete = true;
                p.end_ns = ts;
            }
            if slot.request_open {
                if let Some((_, p)) = slot.request.as_mut() {
                    p.complete = false;
                }
            }
            slot.request_open = false;
            slot.response_open = false;
        }
        self.flush();
    }
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
    Upgrade,
    Invalid,
}

/// Body framing of a request.
fn request_framing(headers: &[Header]) -> Framing {
    match transfer_coding(headers) {
        Some(true) => Framing::Chunked,
        Some(false) => Framing::Invalid,
        None => match content_length(headers) {
            Ok(Some(n)) => Framing::Length(n),
            Ok(None) => Framing::Empty,
            Err(()) => Framing::Invalid,
        },
    }
}

/// Body framing of a final response to a request of `kind`.
fn response_framing(status: u16, kind: RequestKind, headers: &[Header]) -> Framing {
    if status == 101 || (kind == RequestKind::Connect && (200..300).contains(&status)) {
        return Framing::Upgrade;
    }
    if kind == RequestKind::Head || status < 200 || status == 204 || status == 304 {
        return Framing::Empty;
    }
    match transfer_coding(headers) {
        Some(true) => Framing::Chunked,
        Some(false) => Framing::UntilClose,
        None => match content_length(headers) {
            Ok(Some(n)) => Framing::Length(n),
            Ok(None) => Framing::UntilClose,
            Err(()) => Framing::Invalid,
        },
    }
}

/// `Some(true)` if the last transfer coding is chunked, `Some(false)` for
/// other codings, `None` without Transfer-Encoding.
fn transfer_coding(headers: &[Header]) -> Option<bool> {
    let mut seen = false;
    let mut chunked = false;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
    {
        seen = true;
        for coding in h.value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let name = coding.split(';').next().unwrap_or_default().trim();
            chunked = name.eq_ignore_ascii_case("chunked");
        }
    }
    seen.then_some(chunked)
}

/// The Content-Length value; `Err` if present but invalid or conflicting.
fn content_length(headers: &[Header]) -> Result<Option<u64>, ()> {
    let mut found = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        for part in h.value.split(',') {
            let n = parse_decimal(part.trim()).ok_or(())?;
            if found.is_some_and(|f| f != n) {
                return Err(());
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Size of a chunk from its size line (`hex [ws] [; ext] CRLF`).
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, rest) = line.split_at_checked(digits)?;
    let rest = rest.trim_ascii_start();
    if hex.is_empty() || !(rest.is_empty() || rest.starts_with(b";")) {
        return None;
    }
    hex.iter().try_fold(0u64, |acc, &b| {
        let digit = char::from(b).to_digit(16).map(u64::from)?;
        acc.checked_mul(16)?.checked_add(digit)
    })
}

/// True when the buffer ends with an empty line (end of a trailer section).
fn ends_section(buf: &[u8]) -> bool {
    matches!(buf, b"\n" | b"\r\n") || buf.ends_with(b"\n\n") || buf.ends_with(b"\n\r\n")
}

/// Parses a complete trailer section; malformed trailers are dropped.
fn parse_trailers(buf: &[u8]) -> Vec<Header> {
    let mut headers = [httparse::EMPTY_HEADER; FAST_HEADER_COUNT];
    match httparse::parse_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete((_, parsed))) => convert_headers(parsed),
        _ => Vec::new(),
    }
}

/// A lenient httparse configuration, as fits a passive observer.
fn parser_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true)
        .ignore_invalid_headers_in_requests(true);
    config
}

/// Head length and head, `None` while incomplete.
type Parsed<T> = Result<Option<(usize, T)>, httparse::Error>;

fn parse_head(side: Side, buf: &[u8]) -> Parsed<Head> {
    Ok(match side {
        Side::Request => parse_request(buf)?.map(|(n, h)| (n, Head::Request(h))),
        Side::Response => parse_response(buf)?.map(|(n, h)| (n, Head::Response(h))),
    })
}

fn parse_request(buf: &[u8]) -> Parsed<ReqHead> {
    let mut headers = [httparse::EMPTY_HEADER; FAST_HEADER_COUNT];
    match parse_request_into(buf, &mut headers) {
        Err(httparse::Error::TooManyHeaders) => {
            let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADER_COUNT];
            parse_request_into(buf, &mut headers)
        }
        other => other,
    }
}

fn parse_request_into<'b>(buf: &'b [u8], headers: &mut [httparse::Header<'b>]) -> Parsed<ReqHead> {
    let mut req = httparse::Request::new(headers);
    Ok(match parser_config().parse_request(&mut req, buf)? {
        httparse::Status::Partial => None,
        httparse::Status::Complete(n) => Some((
            n,
            ReqHead {
                method: req.method.unwrap_or_default().to_owned(),
                target: req.path.unwrap_or_default().to_owned(),
                version: req.version.unwrap_or(1),
                headers: convert_headers(req.headers),
            },
        )),
    })
}

fn parse_response(buf: &[u8]) -> Parsed<RespHead> {
    let mut headers = [httparse::EMPTY_HEADER; FAST_HEADER_COUNT];
    match parse_response_into(buf, &mut headers) {
        Err(httparse::Error::TooManyHeaders) => {
            let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADER_COUNT];
            parse_response_into(buf, &mut headers)
        }
        other => other,
    }
}

fn parse_response_into<'b>(
    buf: &'b [u8],
    headers: &mut [httparse::Header<'b>],
) -> Parsed<RespHead> {
    let mut resp = httparse::Response::new(headers);
    Ok(match parser_config().parse_response(&mut resp, buf)? {
        httparse::Status::Partial => None,
        httparse::Status::Complete(n) => Some((
            n,
            RespHead {
                status: resp.code.unwrap_or_default(),
                reason: resp.reason.unwrap_or_default().to_owned(),
                version: resp.version.unwrap_or(1),
                headers: convert_headers(resp.headers),
                informational: Vec::new(),
            },
        )),
    })
}

/// Request line fields of an incomplete head, if at least the method was received.
fn salvage_request(buf: &[u8]) -> Option<ReqHead> {
    let mut headers = [httparse::EMPTY_HEADER; 1];
    let mut req = httparse::Request::new(&mut headers);
    let _ = parser_config().parse_request(&mut req, buf);
    Some(ReqHead {
        method: req.method?.to_owned(),
        target: req.path.unwrap_or_default().to_owned(),
        version: req.version.unwrap_or(1),
        headers: Vec::new(),
    })
}

/// Status line fields of an incomplete head, if at least the status was received.
fn salvage_response(buf: &[u8]) -> Option<RespHead> {
    let mut headers = [httparse::EMPTY_HEADER; 1];
    let mut resp = httparse::Response::new(&mut headers);
    let _ = parser_config().parse_response(&mut resp, buf);
    Some(RespHead {
        status: resp.code?,
        reason: resp.reason.unwrap_or_default().to_owned(),
        version: resp.version.unwrap_or(1),
        headers: Vec::new(),
        informational: Vec::new(),
    })
}

fn convert_headers(headers: &[httparse::Header<'_>]) -> Vec<Header> {
    headers
        .iter()
        .map(|h| Header {
            name: h.name.to_owned(),
            value: String::from_utf8_lossy(h.value).into_owned(),
        })
        .collect()
}

/// Interim responses that do not answer the request (101 does).
fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

/// A request after which the connection may switch protocols.
fn may_upgrade(head: &ReqHead) -> bool {
    head.method == "CONNECT"
        || head
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("upgrade"))
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// `min(remaining, available)` as a usize.
fn clamp_len(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining)
        .unwrap_or(usize::MAX)
        .min(available)
}

/// Incremental parser of one direction.
#[derive(Debug)]
struct SideParser {
    side: Side,
    limits: Limits,
    state: State,
    buf: TsBuf,
    /// The last head parsed fine and nothing went wrong since.
    synced: bool,
    /// Slot of the message being received.
    current: Option<u64>,
    /// Hold further bytes once the current request is done.
    hold_after: bool,
    informational: Vec<u16>,
    /// Wire bytes of interim (1xx) responses, counted into the final response.
    interim_bytes: u64,
    /// Bytes to replay, produced by the last step.
    staged: Vec<Chunk>,
    /// Bytes to replay before any new input.
    queue: VecDeque<Chunk>,
}

impl SideParser {
    fn new(side: Side, limits: Limits) -> Self {
        Self {
            side,
            limits,
            state: State::Head,
            buf: TsBuf::new(limits.max_header_bytes),
            synced: true,
            current: None,
            hold_after: false,
            informational: Vec::new(),
            interim_bytes: 0,
            staged: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Puts staged replays in front of the queue, keeping their order.
    fn unstage(&mut self) {
        for chunk in self.staged.drain(..).rev() {
            self.queue.push_front(chunk);
        }
    }

    #[cfg(test)]
    fn buffered(&self) -> usize {
        let queued: usize = self.queue.iter().map(|c| c.bytes.capacity()).sum();
        let staged: usize = self.staged.iter().map(|c| c.bytes.capacity()).sum();
        self.buf.bytes.capacity() + queued + staged
    }

    /// Consumes a prefix of `data` (possibly empty, after a state change).
    fn step(&mut self, conv: &mut Conversation, ts: u64, data: &[u8]) -> usize {
        match self.state {
            State::Head => self.step_head(conv, ts, data, false),
            State::Probe => self.step_head(conv, ts, data, true),
            State::Resync { line_start } => self.step_resync(line_start, data),
            State::Length { remaining } => self.step_length(conv, ts, data, remaining),
            State::ChunkSize => self.step_chunk_size(conv, ts, data),
            State::ChunkData { remaining } => self.step_chunk_data(conv, ts, data, remaining),
            State::ChunkEnd { cr } => self.step_chunk_end(conv, ts, data, cr),
            State::Trailers => self.step_trailers(conv, ts, data),
            State::UntilClose => {
                conv.add_body(self.side, self.current, ts, data);
                data.len()
            }
            State::Hold { .. } => self.step_hold(ts, data),
            State::Opaque => data.len(),
        }
    }

    fn step_head(&mut self, conv: &mut Conversation, ts: u64, data: &[u8], probing: bool) -> usize {
        if self.buf.is_empty() {
            let blank = data
                .iter()
                .take_while(|b| matches!(**b, b'\r' | b'\n'))
                .count();
            if blank > 0 {
                return blank;
            }
        }
        let old = self.buf.len();
        let room = self.limits.max_header_bytes.saturating_sub(old);
        let want = if probing {
            START_PROBE_LEN.saturating_sub(old).max(1)
        } else {
            room
        };
        let take = want.min(room).min(data.len());
        if take == 0 {
            self.parse_failed(conv);
            return 0;
        }
        let new = data.get(..take).unwrap_or_default();
        self.buf.push(ts, new);
        if probing {
            match start_of(self.side, self.buf.bytes()) {
                Start::Maybe => return take,
                Start::No => {
                    self.reject_start();
                    return take;
                }
                Start::Yes => {
                    self.state = State::Head;
                    if !self.buf.bytes().contains(&b'\n') {
                        return take;
                    }
                }
            }
        } else if !new.contains(&b'\n') && self.buf.len() < self.limits.max_header_bytes {
            return take;
        }
        self.try_head(conv, ts, old, take)
    }

    /// Parses the buffered head; `old` bytes were buffered before this step added `take`.
    fn try_head(&mut self, conv: &mut Conversation, ts: u64, old: usize, take: usize) -> usize {
        match parse_head(self.side, self.buf.bytes()) {
            Ok(Some((n, head))) => {
                let keep = n.max(old).min(self.buf.len());
                let leftover = self.buf.chunks(n, keep);
                let start_ns = self.buf.first_ts().unwrap_or(ts);
                self.buf.clear();
                self.staged.extend(leftover);
                self.on_head(conv, head, start_ns, ts, n);
                keep.saturating_sub(old)
            }
            Ok(None) if self.buf.len() < self.limits.max_header_bytes => take,
            _ => {
                self.parse_failed(conv);
                take
            }
        }
    }

    fn step_resync(&mut self, line_start: bool, data: &[u8]) -> usize {
        if line_start {
            self.state = State::Probe;
            return 0;
        }
        match data.iter().position(|b| *b == b'\n') {
            Some(i) => {
                self.state = State::Resync { line_start: true };
                i.saturating_add(1)
            }
            None => data.len(),
        }
    }

    fn step_length(
        &mut self,
        conv: &mut Conversation,
        ts: u64,
        data: &[u8],
        remaining: u64,
    ) -> usize {
        let take = clamp_len(remaining, data.len());
        conv.add_body(
            self.side,
            self.current,
            ts,
            data.get(..take).unwrap_or_default(),
        );
        let left = remaining.saturating_sub(len_u64(take));
        if left == 0 {
            self.complete(conv, ts);
        } else {
            self.state = State::Length { remaining: left };
        }
        take
    }

    fn step_chunk_data(
        &mut self,
        conv: &mut Conversation,
        ts: u64,
        data: &[u8],
        remaining: u64,
    ) -> usize {
        let take = clamp_len(remaining, data.len());
        conv.add_body(
            self.side,
            self.current,
            ts,
            data.get(..take).unwrap_or_default(),
        );
        let left = remaining.saturating_sub(len_u64(take));
        self.state = if left == 0 {
            State::ChunkEnd { cr: false }
        } else {
            State::ChunkData { remaining: left }
        };
        take
    }

    fn step_chunk_end(&mut self, conv: &mut Conversation, ts: u64, data: &[u8], cr: bool) -> usize {
        match data.first() {
            Some(b'\r') if !cr => {
                self.state = State::ChunkEnd { cr: true };
                conv.add_framing(self.side, self.current, 1);
                1
            }
            Some(b'\n') => {
                self.state = State::ChunkSize;
                conv.add_framing(self.side, self.current, 1);
                1
            }
            Some(_) => {
                self.body_error(conv, ts, false);
                0
            }
            None => 0,
        }
    }

    fn step_chunk_size(&mut self, conv: &mut Conversation, ts: u64, data: &[u8]) -> usize {
        let Some((take, done)) = self.take_line(ts, data) else {
            self.body_error(conv, ts, false);
            return 0;
        };
        if done {
            conv.add_framing(self.side, self.current, self.buf.len());
            match parse_chunk_size(self.buf.bytes()) {
                Some(0) => {
                    self.buf.clear();
                    self.state = State::Trailers;
                }
                Some(n) => {
                    self.buf.clear();
                    self.state = State::ChunkData { remaining: n };
                }
                None => self.body_error(conv, ts, true),
            }
        }
        take
    }

    fn step_trailers(&mut self, conv: &mut Conversation, ts: u64, data: &[u8]) -> usize {
        let Some((take, done)) = self.take_line(ts, data) else {
            self.body_error(conv, ts, false);
            return 0;
        };
        if done && ends_section(self.buf.bytes()) {
            conv.add_framing(self.side, self.current, self.buf.len());
            let trailers = parse_trailers(self.buf.bytes());
            conv.add_trailers(self.side, self.current, trailers);
            self.complete(conv, ts);
        }
        take
    }

    /// Buffers bytes up to and including the next LF: (consumed, line ended),
    /// or `None` if the line would exceed the limit.
    fn take_line(&mut self, ts: u64, data: &[u8]) -> Option<(usize, bool)> {
        let (take, done) = match data.iter().position(|b| *b == b'\n') {
            Some(i) => (i.saturating_add(1), true),
            None => (data.len(), false),
        };
        if self.buf.len().saturating_add(take) > self.limits.max_header_bytes {
            return None;
        }
        self.buf.push(ts, data.get(..take).unwrap_or_default());
        Some((take, done))
    }

    fn step_hold(&mut self, ts: u64, data: &[u8]) -> usize {
        let room = self.limits.max_header_bytes.saturating_sub(self.buf.len());
        if room == 0 {
            self.release_hold();
            return 0;
        }
        let take = room.min(data.len());
        self.buf.push(ts, data.get(..take).unwrap_or_default());
        take
    }

    /// The held bytes are HTTP after all: replay them.
    fn release_hold(&mut self) {
        let held = self.buf.take_all();
        self.staged.extend(held);
        self.state = State::Head;
    }

    fn go_opaque(&mut self) {
        self.state = State::Opaque;
        self.buf.clear();
        self.staged.clear();
        self.queue.clear();
        self.current = None;
        self.hold_after = false;
    }

    fn on_head(
        &mut self,
        conv: &mut Conversation,
        head: Head,
        start_ns: u64,
        ts: u64,
        head_len: usize,
    ) {
        self.synced = true;
        match head {
            Head::Request(h) => self.on_request(conv, h, start_ns, ts, head_len),
            Head::Response(h) => self.on_response(conv, h, start_ns, ts, head_len),
        }
    }

    fn on_request(
        &mut self,
        conv: &mut Conversation,
        head: ReqHead,
        start_ns: u64,
        ts: u64,
        head_len: usize,
    ) {
        let framing = request_framing(&head.headers);
        self.hold_after = may_upgrade(&head);
        let mut progress = Progress::new(start_ns, ts, conv.capture);
        progress.wire_bytes = len_u64(head_len);
        self.current = Some(conv.open_request(head, progress));
        self.begin_body(conv, framing, ts);
    }

    fn on_response(
        &mut self,
        conv: &mut Conversation,
        mut head: RespHead,
        start_ns: u64,
        ts: u64,
        head_len: usize,
    ) {
        if is_interim(head.status) {
            if self.informational.len() < MAX_INFORMATIONAL {
                self.informational.push(head.status);
            }
            self.interim_bytes = self.interim_bytes.saturating_add(len_u64(head_len));
            return;
        }
        let framing = response_framing(head.status, conv.pending_kind(), &head.headers);
        head.informational = mem::take(&mut self.informational);
        let mut progress = Progress::new(start_ns, ts, conv.capture);
        progress.wire_bytes = len_u64(head_len).saturating_add(mem::take(&mut self.interim_bytes));
        let seq = conv.answer(head, progress);
        if framing == Framing::Upgrade {
            conv.upgrade(seq, ts);
            self.go_opaque();
            return;
        }
        self.current = Some(seq);
        self.begin_body(conv, framing, ts);
    }

    fn begin_body(&mut self, conv: &mut Conversation, framing: Framing, ts: u64) {
        match framing {
            Framing::Empty | Framing::Length(0) | Framing::Upgrade => self.complete(conv, ts),
            Framing::Length(n) => self.state = State::Length { remaining: n },
            Framing::Chunked => self.state = State::ChunkSize,
            Framing::UntilClose => self.state = State::UntilClose,
            Framing::Invalid => self.body_error(conv, ts, true),
        }
    }

    /// The current message ended at its framed end.
    fn complete(&mut self, conv: &mut Conversation, ts: u64) {
        let seq = self.current.take();
        conv.end(self.side, seq, true, Some(ts));
        self.buf.clear();
        self.state = match seq {
            Some(seq) if self.hold_after && self.side == Side::Request => State::Hold { seq },
            _ => State::Head,
        };
        self.hold_after = false;
    }

    /// The current message is cut short at `ts`.
    fn abort(&mut self, conv: &mut Conversation, ts: u64, gap: bool) {
        let seq = self.current.take();
        if gap {
            if let Some(p) = conv.progress_mut(self.side, seq) {
                p.gap = true;
                p.truncated = true;
            }
        }
        conv.end(self.side, seq, false, Some(ts));
        self.buf.clear();
        self.hold_after = false;
    }

    fn count_error(&mut self, conv: &mut Conversation) {
        if self.synced {
            conv.parse_errors = conv.parse_errors.saturating_add(1);
            self.synced = false;
        }
    }

    /// Fails the buffered head if it already contains a syntax error.
    fn fail_if_head_invalid(&mut self, conv: &mut Conversation) -> bool {
        let invalid = self.state == State::Head
            && !self.buf.is_empty()
            && parse_head(self.side, self.buf.bytes()).is_err();
        if invalid {
            self.parse_failed(conv);
        }
        invalid
    }

    /// The bytes buffered as a head are not a valid message.
    fn parse_failed(&mut self, conv: &mut Conversation) {
        self.count_error(conv);
        self.reject_start();
    }

    /// Drops the first buffered byte and rescans the rest for a message start.
    fn reject_start(&mut self) {
        let replay = self.buf.chunks(1, self.buf.len());
        self.buf.clear();
        self.staged.extend(replay);
        self.state = State::Resync { line_start: false };
    }

    /// Framing inside a body is broken: end the message and resync.
    fn body_error(&mut self, conv: &mut Conversation, ts: u64, line_start: bool) {
        self.count_error(conv);
        self.abort(conv, ts, false);
        self.state = State::Resync { line_start };
    }

    /// Hunt for the next message start from the next byte.
    fn hunt(&mut self) {
        self.buf.clear();
        self.state = State::Resync { line_start: true };
    }

    fn gap(&mut self, conv: &mut Conversation, ts: u64, len: u64) {
        if len == 0 {
            return;
        }
        match self.state {
            State::Opaque => {}
            State::Resync { .. } | State::Probe => self.hunt(),
            State::Head if !self.synced => self.hunt(),
            State::Head => {
                self.count_error(conv);
                self.salvage_head(conv, ts, true);
                self.hunt();
            }
            State::Hold { .. } => {
                self.count_error(conv);
                self.hunt();
            }
            State::Length { remaining } => self.gap_in_length(conv, ts, len, remaining),
            State::ChunkData { remaining } => self.gap_in_chunk(conv, ts, len, remaining),
            State::ChunkSize | State::ChunkEnd { .. } | State::Trailers => {
                self.count_error(conv);
                self.abort(conv, ts, true);
                self.hunt();
            }
            State::UntilClose => conv.add_lost(self.side, self.current, ts, len),
        }
    }

    fn gap_in_length(&mut self, conv: &mut Conversation, ts: u64, len: u64, remaining: u64) {
        let lost = len.min(remaining);
        conv.add_lost(self.side, self.current, ts, lost);
        let left = remaining.saturating_sub(lost);
        if left > 0 {
            self.state = State::Length { remaining: left };
            return;
        }
        self.complete(conv, ts);
        // The rest of the gap hid the start of the next message.
        let beyond = len.saturating_sub(lost);
        if beyond > 0 && matches!(self.state, State::Head | State::Hold { .. }) {
            self.gap(conv, ts, beyond);
        }
    }

    fn gap_in_chunk(&mut self, conv: &mut Conversation, ts: u64, len: u64, remaining: u64) {
        conv.add_lost(self.side, self.current, ts, len.min(remaining));
        if len > remaining {
            self.count_error(conv);
            self.abort(conv, ts, true);
            self.hunt();
        } else if len == remaining {
            self.state = State::ChunkEnd { cr: false };
        } else {
            self.state = State::ChunkData {
                remaining: remaining.saturating_sub(len),
            };
        }
    }

    /// Records the message whose head was cut short by a gap (`gap`) or by close.
    ///
    /// After a gap even an unreadable (or not yet started) head stands for a
    /// lost message, which keeps requests and responses paired.
    fn salvage_head(&mut self, conv: &mut Conversation, ts: u64, gap: bool) {
        let start_ns = self.buf.first_ts().unwrap_or(ts);
        let mut progress = Progress::new(start_ns, ts, conv.capture);
        progress.gap = gap;
        match self.side {
            Side::Request => {
                let head = salvage_request(self.buf.bytes());
                if head.is_some() || gap {
                    conv.cut_request(head.map(|h| (h, progress)), gap);
                }
            }
            Side::Response => {
                let head = salvage_response(self.buf.bytes());
                if head.as_ref().is_some_and(|h| is_interim(h.status)) {
                    return;
                }
                let informational = mem::take(&mut self.informational);
                if head.is_some() || gap {
                    let head = head.map(|h| (RespHead { informational, ..h }, progress));
                    conv.cut_response(head, gap);
                }
            }
        }
    }

    /// The connection closed: end whatever message is in progress.
    fn close(&mut self, conv: &mut Conversation, ts: u64) {
        match self.state {
            State::Head if self.synced && !self.buf.is_empty() => {
                self.salvage_head(conv, ts, false)
            }
            State::UntilClose => conv.end(self.side, self.current.take(), true, None),
            State::Length { .. }
            | State::ChunkSize
            | State::ChunkData { .. }
            | State::ChunkEnd { .. }
            | State::Trailers => self.abort(conv, ts, false),
            _ => {}
        }
        self.go_opaque();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_KEEPALIVE_REQ: &[u8] = include_bytes!("../../testdata/http1/curl_get_keepalive.req");
    const GET_KEEPALIVE_RESP: &[u8] =
        include_bytes!("../../testdata/http1/curl_get_keepalive.resp");
    const POST_REQ: &[u8] = include_bytes!("../../testdata/http1/curl_post.req");
    const POST_RESP: &[u8] = include_bytes!("../../testdata/http1/curl_post.resp");
    const EXPECT_REQ: &[u8] = include_bytes!("../../testdata/http1/curl_expect_100.req");
    const EXPECT_RESP: &[u8] = include_bytes!("../../testdata/http1/curl_expect_100.resp");
    const HEAD_REQ: &[u8] = include_bytes!("../../testdata/http1/curl_head.req");
    const HEAD_RESP: &[u8] = include_bytes!("../../testdata/http1/curl_head.resp");
    const CHUNKED_REQ: &[u8] = include_bytes!("../../testdata/http1/chunked_trailer.req");
    const CHUNKED_RESP: &[u8] = include_bytes!("../../testdata/http1/chunked_trailer.resp");
    const SIMPLE_REQ: &[u8] = include_bytes!("../../testdata/http1/python_http_server_get.req");
    const SIMPLE_RESP: &[u8] = include_bytes!("../../testdata/http1/python_http_server_get.resp");
    const CLOSE_REQ: &[u8] = include_bytes!("../../testdata/http1/python_close_delimited.req");
    const CLOSE_RESP: &[u8] = include_bytes!("../../testdata/http1/python_close_delimited.resp");

    const FIXTURES: [(&str, &[u8], &[u8]); 7] = [
        ("curl_get_keepalive", GET_KEEPALIVE_REQ, GET_KEEPALIVE_RESP),
        ("curl_post", POST_REQ, POST_RESP),
        ("curl_expect_100", EXPECT_REQ, EXPECT_RESP),
        ("curl_head", HEAD_REQ, HEAD_RESP),
        ("chunked_trailer", CHUNKED_REQ, CHUNKED_RESP),
        ("python_http_server_get", SIMPLE_REQ, SIMPLE_RESP),
        ("python_close_delimited", CLOSE_REQ, CLOSE_RESP),
    ];

    use Side::{Request as Req, Response as Resp};

    #[derive(Clone, Debug)]
    enum Op {
        Push(Side, u64, Vec<u8>),
        Gap(Side, u64, u64),
    }

    fn push(side: Side, ts: u64, data: &[u8]) -> Op {
        Op::Push(side, ts, data.to_vec())
    }

    #[derive(Debug, PartialEq)]
    struct Outcome {
        exchanges: Vec<Exchange>,
        errors: u64,
        upgraded: bool,
    }

    fn capture(n: usize) -> Limits {
        Limits {
            max_body_capture: n,
            ..Limits::default()
        }
    }

    /// Applies the ops, draining after each, then closes; checks invariants on the way.
    fn run(limits: Limits, ops: &[Op]) -> Outcome {
        let mut s = Http1Stream::new(limits);
        let bound = 2 * (limits.max_header_bytes.max(MIN_HEADER_BYTES) + 64);
        let mut exchanges = Vec::new();
        for op in ops {
            match op {
                Op::Push(side, ts, data) => s.push(*side, *ts, data),
                Op::Gap(side, ts, len) => s.gap(*side, *ts, *len),
            }
            exchanges.extend(s.drain());
            assert!(s.buffered() <= bound, "buffered {} > {bound}", s.buffered());
            assert!(s.conv.slots.len() <= MAX_PENDING);
        }
        exchanges.extend(s.close(u64::MAX));
        assert_eq!(s.stalls, 0, "parser made no progress");
        Outcome {
            exchanges,
            errors: s.parse_errors(),
            upgraded: s.is_upgraded(),
        }
    }

    fn pair(req: &[u8], resp: &[u8]) -> Outcome {
        run(Limits::default(), &[push(Req, 1, req), push(Resp, 2, resp)])
    }

    #[test]
    fn wire_bytes_add_up_to_every_byte_of_each_fixture() {
        for (name, req, resp) in FIXTURES {
            let out = pair(req, resp);
            let sent: u64 = out
                .exchanges
                .iter()
                .filter_map(|x| x.request.as_ref())
                .map(|r| r.wire_bytes)
                .sum();
            let got: u64 = out
                .exchanges
                .iter()
                .filter_map(|x| x.response.as_ref())
                .map(|r| r.wire_bytes)
                .sum();
            assert_eq!(sent, req.len() as u64, "{name}: request wire bytes");
            assert_eq!(got, resp.len() as u64, "{name}: response wire bytes");
        }
    }

    fn req_of(x: &Exchange) -> &Request {
        x.request.as_ref().expect("request")
    }

    fn resp_of(x: &Exchange) -> &Response {
        x.response.as_ref().expect("response")
    }

    fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    fn body_len(resp: &[u8]) -> u64 {
        let head = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head")
            + 4;
        (resp.len() - head) as u64
    }

    fn assert_clean(out: &Outcome, n: usize) {
        assert_eq!(out.errors, 0);
        assert_eq!(out.exchanges.len(), n, "{:#?}", out.exchanges);
        for x in &out.exchanges {
            assert!(!x.partial && !x.gap && !x.upgraded, "{x:#?}");
        }
    }

    #[test]
    fn curl_keepalive_fixture() {
        let out = pair(GET_KEEPALIVE_REQ, GET_KEEPALIVE_RESP);
        assert_clean(&out, 2);
        let targets: Vec<_> = out
            .exchanges
            .iter()
            .map(|x| req_of(x).target.as_str())
            .collect();
        assert_eq!(targets, ["/first", "/second"]);
        let first = &out.exchanges[0];
        assert_eq!(req_of(first).method, "GET");
        assert_eq!(req_of(first).version, 1);
        assert_eq!(
            header(&req_of(first).headers, "user-agent"),
            Some("curl/7.88.1")
        );
        assert_eq!(resp_of(first).status, 200);
        assert_eq!(resp_of(first).reason, "OK");
        assert_eq!(resp_of(first).body_size, 21);
        assert_eq!(resp_of(first).body, None);
        assert_eq!(resp_of(&out.exchanges[1]).body_size, 22);
    }

    #[test]
    fn post_body_capture() {
        let ops = [push(Req, 1, POST_REQ), push(Resp, 2, POST_RESP)];
        let out = run(capture(8), &ops);
        assert_clean(&out, 1);
        let req = req_of(&out.exchanges[0]);
        assert_eq!((req.method.as_str(), req.body_size), ("POST", 22));
        assert_eq!(req.body.as_deref(), Some(&b"name=val"[..]));
        assert!(req.body_truncated);
        let resp = resp_of(&out.exchanges[0]);
        assert_eq!(
            (resp.status, resp.body.as_deref()),
            (201, Some(&b"got 22 b"[..]))
        );

        let out = run(capture(1024), &ops);
        let req = req_of(&out.exchanges[0]);
        assert_eq!(req.body.as_deref(), Some(&b"name=value&other=thing"[..]));
        assert!(!req.body_truncated);
        assert_eq!(
            resp_of(&out.exchanges[0]).body.as_deref(),
            Some(&b"got 22 bytes\n"[..])
        );

        let out = pair(POST_REQ, POST_RESP);
        assert_eq!(req_of(&out.exchanges[0]).body, None);
        assert!(!req_of(&out.exchanges[0]).body_truncated);
    }

    #[test]
    fn expect_100_continue_fixture() {
        let out = pair(EXPECT_REQ, EXPECT_RESP);
        assert_clean(&out, 1);
        let x = &out.exchanges[0];
        assert_eq!(header(&req_of(x).headers, "expect"), Some("100-continue"));
        assert_eq!(req_of(x).body_size, 2000);
        assert_eq!(resp_of(x).status, 201);
        assert_eq!(resp_of(x).informational, [100]);
    }

    #[test]
    fn expect_100_continue_in_wire_order() {
        let head_len = EXPECT_REQ
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
            + 4;
        let (head, body) = EXPECT_REQ.split_at(head_len);
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
        let (_, final_resp) = EXPECT_RESP.split_at(interim.len());
        let mut s = Http1Stream::new(Limits::default());
        s.push(Req, 10, head);
        s.push(Resp, 20, interim);
        assert!(s.drain().is_empty(), "interim response is not an exchange");
        s.push(Req, 30, body);
        s.push(Resp, 40, final_resp);
        let out = s.drain();
        assert_eq!(out.len(), 1);
        let (req, resp) = (req_of(&out[0]), resp_of(&out[0]));
        assert_eq!((req.start_ns, req.end_ns, req.complete), (10, 30, true));
        assert_eq!((resp.start_ns, resp.end_ns, resp.status), (40, 40, 201));
        assert_eq!(resp.informational, [100]);
        assert_eq!(s.parse_errors(), 0);
    }

    #[test]
    fn several_interim_responses() {
        let out = pair(
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert_clean(&out, 1);
        assert_eq!(resp_of(&out.exchanges[0]).informational, [100, 103]);
    }

    #[test]
    fn head_response_has_no_body() {
        let out = pair(HEAD_REQ, HEAD_RESP);
        assert_clean(&out, 1);
        let resp = resp_of(&out.exchanges[0]);
        assert_eq!(header(&resp.headers, "content-length"), Some("31"));
        assert_eq!(resp.body_size, 0);
        // The next response on the same connection must not be eaten as a body.
        let out = pair(
            &[HEAD_REQ, GET_KEEPALIVE_REQ].concat(),
            &[HEAD_RESP, GET_KEEPALIVE_RESP].concat(),
        );
        assert_clean(&out, 3);
        let sizes: Vec<_> = out.exchanges.iter().map(|x| resp_of(x).body_size).collect();
        assert_eq!(sizes, [0, 21, 22]);
    }

    #[test]
    fn unknown_request_is_not_head() {
        let out = run(
            Limits::default(),
            &[push(
                Resp,
                1,
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            )],
        );
        assert_eq!(out.exchanges.len(), 1);
        assert_eq!(resp_of(&out.exchanges[0]).body_size, 3);
    }

    #[test]
    fn no_body_statuses() {
        let out = pair(
            b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        );
        assert_clean(&out, 3);
        let got: Vec<_> = out
            .exchanges
            .iter()
            .map(|x| (resp_of(x).status, resp_of(x).body_size))
            .collect();
        assert_eq!(got, [(204, 0), (304, 0), (200, 2)]);
    }

    #[test]
    fn chunked_response_with_extension_and_trailer() {
        let ops = [push(Req, 1, CHUNKED_REQ), push(Resp, 2, CHUNKED_RESP)];
        let out = run(capture(1024), &ops);
        assert_clean(&out, 1);
        let resp = resp_of(&out.exchanges[0]);
        assert_eq!(resp.body_size, 39);
        assert_eq!(
            resp.body.as_deref(),
            Some(&b"hello, world!abcdefghijklmnopqrstuvwxyz"[..])
        );
        assert_eq!(header(&resp.headers, "x-checksum"), Some("1234"));
        assert_eq!(header(&resp.headers, "transfer-encoding"), Some("chunked"));
    }

    #[test]
    fn chunked_request_body() {
        let out = run(
            capture(64),
            &[
                push(Req, 1, b"POST /u HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4;a=b\r\nwiki\r\n5 \r\npedia\r\n0\r\n\r\n"),
                push(Resp, 2, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            ],
        );
        assert_clean(&out, 1);
        let req = req_of(&out.exchanges[0]);
        assert_eq!(req.body.as_deref(), Some(&b"wikipedia"[..]));
        assert_eq!(req.body_size, 9);
    }

    #[test]
    fn python_http_server_fixture() {
        let mut s = Http1Stream::new(Limits::default());
        s.push(Req, 1, SIMPLE_REQ);
        s.push(Resp, 2, SIMPLE_RESP);
        let out = s.drain();
        assert_eq!(
            out.len(),
            1,
            "Content-Length response completes before close"
        );
        let resp = resp_of(&out[0]);
        assert_eq!((resp.version, resp.status, resp.body_size), (0, 200, 44));
        assert!(!out[0].partial);
        assert!(s.close(3).is_empty());
    }

    #[test]
    fn close_delimited_fixture() {
        let mut s = Http1Stream::new(capture(4096));
        s.push(Req, 1, CLOSE_REQ);
        s.push(Resp, 2, CLOSE_RESP);
        assert!(s.drain().is_empty(), "body ends only at close");
        let out = s.close(9);
        assert_eq!(out.len(), 1);
        let resp = resp_of(&out[0]);
        assert!(resp.complete && !out[0].partial);
        assert_eq!(resp.body_size, body_len(CLOSE_RESP));
        assert_eq!(resp.end_ns, 2, "end is the last byte, not the close");
        assert!(resp.body.as_deref().unwrap().starts_with(b"line 0 of"));
    }

    #[test]
    fn response_with_unknown_coding_is_close_delimited() {
        let out = pair(
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcdef",
        );
        assert_clean(&out, 1);
        assert_eq!(resp_of(&out.exchanges[0]).body_size, 6);
    }

    /// Pushes each side split at `k` (same timestamps) and compares with whole pushes.
    #[test]
    fn fixtures_split_at_every_boundary() {
        for (name, req, resp) in FIXTURES {
            for limits in [Limits::default(), capture(100)] {
                let whole = run(limits, &[push(Req, 1, req), push(Resp, 2, resp)]);
                assert!(!whole.exchanges.is_empty(), "{name}");
                for k in 0..=req.len().max(resp.len()) {
                    let (a, b) = req.split_at(k.min(req.len()));
                    let (c, d) = resp.split_at(k.min(resp.len()));
                    let ops = [
                        push(Req, 1, a),
                        push(Req, 1, b),
                        push(Resp, 2, c),
                        push(Resp, 2, d),
                    ];
                    assert_eq!(run(limits, &ops), whole, "{name} split at {k}");
                }
                let bytes = |side, ts, data: &[u8]| -> Vec<Op> {
                    data.iter().map(|b| push(side, ts, &[*b])).collect()
                };
                let mut ops = bytes(Req, 1, req);
                ops.extend(bytes(Resp, 2, resp));
                assert_eq!(run(limits, &ops), whole, "{name} one byte at a time");
            }
        }
    }

    #[test]
    fn hundred_keepalive_exchanges() {
        let mut s = Http1Stream::new(Limits::default());
        for i in 0..100u64 {
            let req = format!("GET /item/{i} HTTP/1.1\r\nHost: example\r\n\r\n");
            let body = "x".repeat(i as usize);
            let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {i}\r\n\r\n{body}");
            s.push(Req, 2 * i, req.as_bytes());
            s.push(Resp, 2 * i + 1, resp.as_bytes());
        }
        let out = s.drain();
        assert_eq!(out.len(), 100);
        for (i, x) in out.iter().enumerate() {
            assert_eq!(req_of(x).target, format!("/item/{i}"));
            assert_eq!(resp_of(x).body_size, i as u64);
            assert_eq!(req_of(x).start_ns, 2 * i as u64);
            assert_eq!(resp_of(x).end_ns, 2 * i as u64 + 1);
            assert!(!x.partial);
        }
        assert!(s.close(1000).is_empty());
        assert_eq!(s.parse_errors(), 0);
    }

    #[test]
    fn pipelined_requests_pair_in_order() {
        let out = pair(
            b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcHEAD /3 HTTP/1.1\r\n\r\nGET /4 HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nbbHTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        );
        assert_clean(&out, 4);
        let got: Vec<_> = out
            .exchanges
            .iter()
            .map(|x| {
                (
                    req_of(x).target.as_str(),
                    resp_of(x).status,
                    resp_of(x).body_size,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/1", 200, 1),
                ("/2", 201, 2),
                ("/3", 200, 0),
                ("/4", 404, 0)
            ]
        );
    }

    #[test]
    fn exchange_waits_for_request_body() {
        let mut s = Http1Stream::new(Limits::default());
        s.push(Req, 1, b"PUT /big HTTP/1.1\r\nContent-Length: 6\r\n\r\nabc");
        s.push(
            Resp,
            2,
            b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(s.drain().is_empty(), "request still being received");
        s.push(Req, 3, b"def");
        let out = s.drain();
        assert_eq!(out.len(), 1);
        assert_eq!((req_of(&out[0]).end_ns, resp_of(&out[0]).status), (3, 413));
    }

    #[test]
    fn timestamps() {
        let mut s = Http1Stream::new(Limits::default());
        s.push(Req, 10, b"\r\nPOST / HTTP/1.1\r\nContent-");
        s.push(Req, 11, b"Length: 4\r\n\r\nab");
        s.push(Req, 12, b"cd");
        s.push(Resp, 20, b"HTTP/1.1 200 OK\r\n");
        s.push(Resp, 21, b"Content-Length: 2\r\n\r\n");
        s.push(Resp, 22, b"ok");
        let out = s.drain();
        let (req, resp) = (req_of(&out[0]), resp_of(&out[0]));
        assert_eq!((req.start_ns, req.end_ns), (10, 12));
        assert_eq!((resp.start_ns, resp.end_ns), (20, 22));
    }

    #[test]
    fn websocket_upgrade_stops_parsing() {
        let mut s = Http1Stream::new(Limits::default());
        s.push(
            Req,
            1,
            b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x85garbage frame",
        );
        assert!(!s.is_upgraded());
        s.push(
            Resp,
            2,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi",
        );
        assert!(s.is_upgraded());
        let out = s.drain();
        assert_eq!(out.len(), 1);
        assert!(out[0].upgraded && !out[0].partial);
        assert_eq!(resp_of(&out[0]).status, 101);
        s.push(Req, 3, b"not http at all\r\n\r\n");
        s.push(Resp, 4, b"HTTP/1.1 200 OK\r\n\r\n");
        s.gap(Req, 5, 100);
        assert!(s.close(6).is_empty());
        assert_eq!(s.parse_errors(), 0);
    }

    #[test]
    fn connect_tunnel() {
        let out = pair(
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x02\x00",
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x7a",
        );
        assert_eq!(
            (out.errors, out.upgraded, out.exchanges.len()),
            (0, true, 1)
        );
        assert!(out.exchanges[0].upgraded);
        assert_eq!(req_of(&out.exchanges[0]).method, "CONNECT");
    }

    #[test]
    fn refused_connect_keeps_parsing() {
        let out = pair(
            b"CONNECT a:443 HTTP/1.1\r\n\r\nCONNECT a:443 HTTP/1.1\r\nProxy-Authorization: x\r\n\r\n",
            b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n\x16\x03",
        );
        assert_eq!(
            (out.errors, out.upgraded, out.exchanges.len()),
            (0, true, 2)
        );
        assert!(!out.exchanges[0].upgraded && out.exchanges[1].upgraded);
        assert_eq!(resp_of(&out.exchanges[0]).status, 407);
    }

    #[test]
    fn ignored_upgrade_header_keeps_parsing() {
        let out = pair(
            b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
        );
        assert_clean(&out, 2);
        assert_eq!(req_of(&out.exchanges[1]).target, "/next");
        assert!(!out.upgraded);
    }

    #[test]
    fn joined_mid_stream() {
        let out = run(
            Limits::default(),
            &[push(
                Resp,
                1,
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            )],
        );
        assert_eq!(out.exchanges.len(), 1);
        let x = &out.exchanges[0];
        assert!(x.request.is_none() && x.partial && !x.gap);
        assert_eq!(resp_of(x).body_size, 2);

        // Joined inside a request body: one desync, then the next request is found.
        let out = pair(
            b"e of a body\r\nmore body GET / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
            b"rest of a body\r\nHTTP/1.1 204 No Content\r\n\r\n",
        );
        assert_eq!(out.errors, 2);
        assert_eq!(out.exchanges.len(), 1, "{:#?}", out.exchanges);
        assert_eq!(req_of(&out.exchanges[0]).target, "/x");
        assert_eq!(resp_of(&out.exchanges[0]).status, 204);
    }

    #[test]
    fn pending_requests_at_close() {
        let out = run(
            Limits::default(),
            &[push(
                Req,
                1,
                b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\nHo",
            )],
        );
        let got: Vec<_> = out
            .exchanges
            .iter()
            .map(|x| {
                (
                    req_of(x).target.as_str(),
                    req_of(x).complete,
                    x.partial,
                    x.response.is_none(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/a", true, true, true),
                ("/b", true, true, true),
                ("/c", false, true, true)
            ]
        );
    }

    #[test]
    fn response_cut_by_close() {
        let out = pair(
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        );
        let x = &out.exchanges[0];
        assert!(x.partial && !x.gap && !resp_of(x).complete);
        assert_eq!(resp_of(x).body_size, 3);
        assert_eq!(resp_of(x).end_ns, u64::MAX, "cut short at close");
    }

    #[test]
    fn gap_in_content_length_body() {
        let ops = [
            push(Req, 1, b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
            Op::Gap(Req, 2, 5),
            push(Req, 3, b"ijGET /b HTTP/1.1\r\n\r\n"),
            push(Resp, 4, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ];
        let out = run(capture(64), &ops);
        assert_eq!((out.errors, out.exchanges.len()), (0, 2));
        let x = &out.exchanges[0];
        let req = req_of(x);
        assert_eq!(
            (req.body_size, req.complete, req.body_truncated),
            (10, true, true)
        );
        assert_eq!(
            req.body.as_deref(),
            Some(&b"abc"[..]),
            "capture stops at the gap"
        );
        assert!(x.gap && !x.partial);
        assert!(!out.exchanges[1].gap && !out.exchanges[1].partial);
    }

    #[test]
    fn gap_past_end_of_body_loses_next_request() {
        let ops = [
            push(Req, 1, b"POST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\nab"),
            Op::Gap(Req, 2, 22), // "cd" plus all of "GET /lost HTTP/1.1\r\n\r\n"
            push(Req, 3, b"GET /c HTTP/1.1\r\n\r\n"),
            push(Resp, 4, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nbHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc"),
        ];
        let out = run(Limits::default(), &ops);
        assert_eq!((out.errors, out.exchanges.len()), (1, 3));
        assert_eq!(req_of(&out.exchanges[0]).body_size, 4);
        let lost = &out.exchanges[1];
        assert!(lost.request.is_none() && lost.gap && lost.partial);
        assert_eq!(resp_of(lost).body.as_deref(), None);
        assert_eq!(
            req_of(&out.exchanges[2]).target,
            "/c",
            "pairing kept after the loss"
        );
        assert!(!out.exchanges[2].gap);
    }

    #[test]
    fn gap_in_chunk_data_is_accounted() {
        let ops = [
            push(Req, 1, b"GET / HTTP/1.1\r\n\r\n"),
            push(
                Resp,
                2,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01",
            ),
            Op::Gap(Resp, 3, 6),
            push(Resp, 4, b"89\r\n3\r\nabc\r\n0\r\n\r\n"),
        ];
        let out = run(Limits::default(), &ops);
        assert_eq!((out.errors, out.exchanges.len()), (0, 1));
        let resp = resp_of(&out.exchanges[0]);
        assert_eq!(
            (resp.body_size, resp.complete, resp.body_truncated),
            (13, true, true)
        );
        assert!(out.exchanges[0].gap && !out.exchanges[0].partial);
    }

    #[test]
    fn gap_in_chunk_size_line_desyncs() {
        let ops = [
            push(Req, 1, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
            push(
                Resp,
                2,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1",
            ),
            Op::Gap(Resp, 3, 4),
            push(
                Resp,
                4,
                b"garbage\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            ),
        ];
        let out = run(Limits::default(), &ops);
        assert_eq!((out.errors, out.exchanges.len()), (1, 2));
        let first = &out.exchanges[0];
        assert!(first.gap && first.partial && !resp_of(first).complete);
        assert_eq!(resp_of(first).body_size, 3);
        assert!(!out.exchanges[1].partial);
    }

    #[test]
    fn gap_in_request_headers() {
        let ops = [
            push(Req, 1, b"GET /a HTTP/1.1\r\nHo"),
            Op::Gap(Req, 2, 10),
            push(Req, 3, b"st: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
            push(Resp, 4, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"),
        ];
        let out = run(Limits::default(), &ops);
        assert_eq!((out.errors, out.exchanges.len()), (1, 2));
        let first = &out.exchanges[0];
        assert!(first.gap && first.partial);
        assert_eq!(req_of(first).target, "/a");
        assert!(!req_of(first).complete);
        assert_eq!(resp_of(first).status, 200);
        let second = &out.exchanges[1];
        assert!(!second.gap && !second.partial);
        assert_eq!(
            (req_of(second).target.as_str(), resp_of(second).status),
            ("/b", 202)
        );
    }

    #[test]
    fn gap_in_response_headers() {
        let ops = [
            push(Req, 1, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
            push(Resp, 2, b"HTTP/1.1 500 Oops\r\nContent-"),
            Op::Gap(Resp, 3, 40),
            push(
                Resp,
                4,
                b"xt/plain\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            ),
        ];
        let out = run(Limits::default(), &ops);
        assert_eq!((out.errors, out.exchanges.len()), (1, 2));
        let first = &out.exchanges[0];
        assert!(first.gap && first.partial);
        assert_eq!(
            (resp_of(first).status, resp_of(first).complete),
            (500, false)
        );
        assert_eq!(
            (
                req_of(&out.exchanges[1]).target.as_str(),
                resp_of(&out.exchanges[1]).status
            ),
            ("/b", 200)
        );
    }

    #[test]
    fn garbage_between_requests() {
        let out = pair(
            b"GET /1 HTTP/1.1\r\n\r\n\x00\x01\xffgarbage{}\r\nmore junk\nGET /2 HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\x13\x37junk\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(out.errors, 2);
        assert_eq!(out.exchanges.len(), 2);
        assert_eq!(req_of(&out.exchanges[1]).target, "/2");
        assert!(out.exchanges.iter().all(|x| !x.partial));
    }

    #[test]
    fn invalid_content_length_desyncs() {
        let out = pair(
            b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nGET /ok HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
        );
        assert_eq!(out.errors, 1);
        assert_eq!(out.exchanges.len(), 2);
        assert!(out.exchanges[0].partial && !req_of(&out.exchanges[0]).complete);
        assert_eq!(req_of(&out.exchanges[1]).target, "/ok");
        assert_eq!(resp_of(&out.exchanges[1]).body_size, 2);
    }

    #[test]
    fn oversized_headers() {
        let limits = Limits {
            max_header_bytes: 1024,
            max_body_capture: 0,
        };
        let big = format!("GET /big HTTP/1.1\r\nCookie: {}\r\n\r\n", "c".repeat(2000));
        let ok = "GET /ok HTTP/1.1\r\n\r\n";
        let req = format!("{big}{ok}");
        let fits = format!("GET /fits HTTP/1.1\r\nX: {}\r\n\r\n", "f".repeat(997));
        assert_eq!(fits.len(), 1024);
        for split in [1, 7, 4096] {
            let mut ops: Vec<Op> = req
                .as_bytes()
                .chunks(split)
                .map(|c| push(Req, 1, c))
                .collect();
            ops.push(push(Req, 1, fits.as_bytes()));
            let out = run(limits, &ops);
            assert_eq!(out.errors, 1);
            let targets: Vec<_> = out
                .exchanges
                .iter()
                .map(|x| req_of(x).target.as_str())
                .collect();
            assert_eq!(targets, ["/ok", "/fits"]);
        }
        let resp = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\nHTTP/1.1 204 No\r\n\r\n",
            "r".repeat(1100)
        );
        let out = run(
            limits,
            &[push(Req, 1, ok.as_bytes()), push(Resp, 2, resp.as_bytes())],
        );
        assert_eq!(out.errors, 1);
        assert_eq!(resp_of(&out.exchanges[0]).status, 204);
    }

    #[test]
    fn many_headers() {
        let head = |n: usize| {
            let fields: String = (0..n).map(|i| format!("X-{i}: {i}\r\n")).collect();
            format!("GET /{n} HTTP/1.1\r\n{fields}\r\n")
        };
        let out = run(Limits::default(), &[push(Req, 1, head(200).as_bytes())]);
        assert_eq!(
            (out.errors, req_of(&out.exchanges[0]).headers.len()),
            (0, 200)
        );
        let out = run(Limits::default(), &[push(Req, 1, head(300).as_bytes())]);
        assert_eq!(out.errors, 1);
        assert!(out.exchanges.is_empty());
    }

    #[test]
    fn tiny_header_limit_is_raised() {
        let limits = Limits {
            max_header_bytes: 0,
            max_body_capture: 0,
        };
        let out = run(limits, &[push(Req, 1, b"GET / HTTP/1.1\r\n\r\n")]);
        assert_eq!((out.errors, out.exchanges.len()), (0, 1));
    }

    #[test]
    fn input_after_close_is_ignored() {
        let mut s = Http1Stream::new(Limits::default());
        s.push(Req, 1, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(s.close(2).len(), 1);
        s.push(Resp, 3, b"HTTP/1.1 200 OK\r\n\r\n");
        s.gap(Req, 4, 1);
        assert!(s.close(5).is_empty());
        assert!(s.drain().is_empty());
    }

    #[test]
    fn too_many_unanswered_requests_are_given_up() {
        let req = "GET / HTTP/1.1\r\n\r\n".repeat(MAX_PENDING + 10);
        let mut s = Http1Stream::new(Limits::default());
        s.push(Req, 1, req.as_bytes());
        assert_eq!(s.drain().len(), 10);
        assert_eq!(s.close(2).len(), MAX_PENDING);
    }

    #[test]
    fn chunk_size_lines() {
        assert_eq!(parse_chunk_size(b"1a\r\n"), Some(26));
        assert_eq!(parse_chunk_size(b"1A;name=\"v\"\r\n"), Some(26));
        assert_eq!(parse_chunk_size(b"0\n"), Some(0));
        assert_eq!(parse_chunk_size(b"5 ;x\r\n"), Some(5));
        assert_eq!(parse_chunk_size(b"ffffffffffffffff\r\n"), Some(u64::MAX));
        assert_eq!(parse_chunk_size(b"10000000000000000\r\n"), None);
        assert_eq!(parse_chunk_size(b"\r\n"), None);
        assert_eq!(parse_chunk_size(b"x\r\n"), None);
        assert_eq!(parse_chunk_size(b"5x\r\n"), None);
        assert_eq!(parse_chunk_size(b"5"), None);
    }

    #[test]
    fn looks_like_http1_cases() {
        for yes in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST ",
            b"PUT /x",
            b"HEAD ",
            b"DELETE /a",
            b"OPTIONS * HTTP/1.1",
            b"PATCH /p",
            b"CONNECT h:443",
            b"TRACE /",
            b"HTTP/1.1 200 OK",
            b"HTTP/1.0",
        ] {
            assert!(looks_like_http1(yes), "{:?}", String::from_utf8_lossy(yes));
        }
        for no in [
            &b""[..],
            b"GE",
            b"GET",
            b"GET/",
            b"get / HTTP/1.1",
            b"HTTP/1",
            b"HTTP/2 200",
            b"PRI * HTTP/2.0",
            b"\x16\x03\x01",
            b" GET /",
            b"PROPFIND / HTTP/1.1",
        ] {
            assert!(!looks_like_http1(no), "{:?}", String::from_utf8_lossy(no));
        }
    }

    /// Deterministic xorshift64 generator.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const PIECES: [&[u8]; 24] = [
        b"GET / HTTP/1.1\r\n",
        b"HEAD /h HTTP/1.1\r\n",
        b"POST /p HTTP/1.0\r\n",
        b"CONNECT h:1 HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.0 204 No Content\r\n",
        b"HTTP/1.1 101 Switching\r\n",
        b"HTTP/1.1 304 Not Modified\r\n",
        b"Content-Length: 5\r\n",
        b"Content-Length: x\r\n",
        b"Content-Length: 99999999999999999999\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Upgrade: websocket\r\n",
        b"Expect: 100-continue\r\n",
        b"Host: a\r\n",
        b"\r\n",
        b"\r\n\r\n",
        b"5\r\nhello\r\n",
        b"0\r\n\r\n",
        b"3;x=y\r\nabc\r\n",
        b"Trailer-A: 1\r\n",
        b"ffffffffffffffff\r\n",
        b"hello",
    ];

    fn random_buffer(rng: &mut XorShift) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..1 + rng.below(12) {
            if rng.below(4) == 0 {
                let n = if rng.below(20) == 0 {
                    2000
                } else {
                    1 + rng.below(20)
                };
                out.extend((0..n).map(|_| rng.next() as u8));
            } else {
                out.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
        }
        out
    }

    fn random_ops(rng: &mut XorShift) -> Vec<Op> {
        let side = |rng: &mut XorShift| if rng.below(2) == 0 { Req } else { Resp };
        (0..1 + rng.below(12) as u64)
            .map(|ts| match rng.below(6) {
                0 => {
                    let len = match rng.below(4) {
                        0 => u64::MAX - rng.below(3) as u64,
                        _ => rng.below(40) as u64,
                    };
                    Op::Gap(side(rng), ts, len)
                }
                _ => Op::Push(side(rng), ts, random_buffer(rng)),
            })
            .collect()
    }

    /// The same ops with every push cut into random pieces (same timestamps).
    fn split_ops(rng: &mut XorShift, ops: &[Op]) -> Vec<Op> {
        let mut out = Vec::new();
        for op in ops {
            match op {
                Op::Push(side, ts, data) => {
                    let mut rest = &data[..];
                    while !rest.is_empty() {
                        let max = if rng.below(3) == 0 { 2 } else { rest.len() };
                        let n = 1 + rng.below(max);
                        let (piece, tail) = rest.split_at(n.min(rest.len()));
                        out.push(push(*side, *ts, piece));
                        rest = tail;
                    }
                }
                gap => out.push(gap.clone()),
            }
        }
        out
    }

    #[test]
    fn random_input_never_panics_and_is_split_independent() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let limits = [0, 64, 100, 300, 4096];
        let captures = [0, 3, 64];
        for case in 0..3000 {
            let limits = Limits {
                max_header_bytes: limits[rng.below(limits.len())],
                max_body_capture: captures[rng.below(captures.len())],
            };
            let ops = random_ops(&mut rng);
            let whole = run(limits, &ops);
            let split = run(limits, &split_ops(&mut rng, &ops));
            assert_eq!(whole, split, "case {case}: {ops:?}");
        }
    }

    #[test]
    fn random_bytes_stay_bounded() {
        let mut rng = XorShift(42);
        let limits = Limits {
            max_header_bytes: 256,
            max_body_capture: 16,
        };
        let mut s = Http1Stream::new(limits);
        for i in 0..3000u64 {
            let side = if rng.below(2) == 0 { Req } else { Resp };
            match rng.below(10) {
                0 => s.gap(side, i, rng.below(1000) as u64),
                1 => s.push(
                    side,
                    i,
                    b"GET / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n",
                ),
                _ => {
                    let data: Vec<u8> = (0..rng.below(600)).map(|_| rng.next() as u8).collect();
                    s.push(side, i, &data);
                }
            }
            let _ = s.drain();
            assert!(s.buffered() <= 2 * (256 + 64));
        }
        let _ = s.close(u64::MAX);
        assert_eq!(s.stalls, 0);
    }
}
