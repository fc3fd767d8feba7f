//! The incremental parser of one direction: its states, reading message heads, and starting, holding and ending messages.

use std::collections::VecDeque;
use std::mem;

use super::body::{is_interim, may_upgrade, request_framing, response_framing, Framing};
use super::buffer::{Chunk, TsBuf};
use super::head::{parse_head, Head, ReqHead, RespHead};
use super::len_u64;
use super::message::{GapCauses, Limits, Side};
use super::pairing::{Conversation, Progress};
use super::start::{start_of, Start, START_PROBE_LEN};

/// Interim (1xx) statuses remembered for one final response.
const MAX_INFORMATIONAL: usize = 16;

/// Parser state of one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Accumulating a message head.
    Head,
    /// Accumulating the first bytes of a candidate message start, from the
    /// first byte of a capture event, after boundaries were lost.
    Probe,
    /// Boundaries are lost: skipping bytes up to the next capture event.
    Await,
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

/// Incremental parser of one direction.
#[derive(Debug)]
pub(super) struct SideParser {
    pub(super) side: Side,
    pub(super) limits: Limits,
    pub(super) state: State,
    pub(super) buf: TsBuf,
    /// The last head parsed fine and nothing went wrong since.
    pub(super) synced: bool,
    /// Slot of the message being received.
    pub(super) current: Option<u64>,
    /// Hold further bytes once the current request is done.
    pub(super) hold_after: bool,
    pub(super) informational: Vec<u16>,
    /// Wire bytes of interim (1xx) responses, counted into the final response.
    pub(super) interim_bytes: u64,
    /// Bytes to replay, produced by the last step.
    pub(super) staged: Vec<Chunk>,
    /// Bytes to replay before any new input.
    pub(super) queue: VecDeque<Chunk>,
    /// Timestamp of the last push of this side.
    pub(super) last_push: Option<u64>,
    /// A gap was reported since the last push (the next push starts an event).
    pub(super) gap_since_push: bool,
}

impl SideParser {
    pub(super) fn new(side: Side, limits: Limits) -> Self {
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
            last_push: None,
            gap_since_push: false,
        }
    }

    /// A push at `ts` begins: its first byte starts a capture event when the
    /// timestamp changed or a gap came before it; a side waiting for an event
    /// then probes it for a message start.
    pub(super) fn begin_push(&mut self, ts: u64) {
        let new_event = self.is_new_event(ts);
        self.gap_since_push = false;
        self.last_push = Some(ts);
        if new_event && self.state == State::Await {
            self.state = State::Probe;
        }
    }

    /// Whether a push at `ts` starts a new capture event.
    pub(super) fn is_new_event(&self, ts: u64) -> bool {
        self.gap_since_push || self.last_push != Some(ts)
    }

    /// Start of a message head still being received (request side: a request
    /// that started but is not queued yet).
    pub(super) fn pending_start(&self) -> Option<u64> {
        match self.state {
            State::Head | State::Probe | State::Hold { .. } => self.buf.first_ts(),
            _ => None,
        }
    }

    pub(super) fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Puts staged replays in front of the queue, keeping their order.
    pub(super) fn unstage(&mut self) {
        // Nearly always nothing: the empty drain cost ~90 instructions per
        // exchange (bench/instructions.sh).
        if self.staged.is_empty() {
            return;
        }
        for chunk in self.staged.drain(..).rev() {
            self.queue.push_front(chunk);
        }
    }

    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        let queued: usize = self.queue.iter().map(|c| c.bytes.capacity()).sum();
        let staged: usize = self.staged.iter().map(|c| c.bytes.capacity()).sum();
        self.buf.bytes.capacity() + queued + staged
    }

    /// Consumes a prefix of `data` (possibly empty, after a state change).
    pub(super) fn step(&mut self, conv: &mut Conversation, ts: u64, data: &[u8]) -> usize {
        match self.state {
            State::Head => self.step_head(conv, ts, data, false),
            State::Probe => self.step_head(conv, ts, data, true),
            State::Await => self.step_await(conv, ts, data),
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
        if old == 0 && !probing {
            // A head whole in this push (the usual case) is parsed where it
            // lies: buffering it copied the whole push and cost ~300
            // instructions per exchange (bench/instructions.sh). Anything
            // else goes through the buffer as before.
            let window = data.get(..room.min(data.len())).unwrap_or_default();
            if let Ok(Some((n, head))) = parse_head(self.side, window, self.limits.keep_headers) {
                self.on_head(conv, head, ts, ts, n);
                return n;
            }
        }
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
                    self.skip_event(conv, ts);
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
        match parse_head(self.side, self.buf.bytes(), self.limits.keep_headers) {
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
    pub(super) fn release_hold(&mut self) {
        let held = self.buf.take_all();
        self.staged.extend(held);
        self.state = State::Head;
    }

    pub(super) fn go_opaque(&mut self) {
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
        let framing = request_framing(&head.framing);
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
        let kind = conv.response_kind(start_ns);
        let framing = response_framing(head.status, kind, &head.framing);
        head.informational = mem::take(&mut self.informational);
        let mut progress = Progress::new(start_ns, ts, conv.capture);
        progress.wire_bytes = len_u64(head_len).saturating_add(mem::take(&mut self.interim_bytes));
        let seq = conv.add_response(head, progress, kind, true);
        if framing == Framing::Upgrade {
            conv.upgrade(seq, ts);
            self.go_opaque();
            return;
        }
        self.current = Some(seq);
        self.begin_body(conv, framing, ts);
    }

    /// The current message ended at its framed end. The next byte starts a
    /// message, unless this was a response not placed with proof: its framing
    /// (which depends on the request) is then uncertain, and the side waits
    /// for the next capture event.
    pub(super) fn complete(&mut self, conv: &mut Conversation, ts: u64) {
        let seq = self.current.take();
        let placed = conv.end(self.side, seq, true, Some(ts));
        self.buf.clear();
        self.state = match seq {
            Some(seq) if self.hold_after && self.side == Side::Request => State::Hold { seq },
            Some(_) if self.side == Side::Response && !placed => State::Await,
            _ => State::Head,
        };
        self.hold_after = false;
    }

    /// The current message is cut short at `ts` (by gaps of `causes`, if any).
    pub(super) fn abort(&mut self, conv: &mut Conversation, ts: u64, causes: GapCauses) {
        let seq = self.current.take();
        if !causes.is_empty() {
            if let Some(p) = conv.progress_mut(self.side, seq) {
                p.gaps |= causes;
                p.truncated = true;
            }
        }
        conv.end(self.side, seq, false, Some(ts));
        self.buf.clear();
        self.hold_after = false;
    }
}
