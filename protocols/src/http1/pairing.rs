//! Pairing requests with responses in order: per-message progress, slots for pending requests, and the conversation queue that emits finished exchanges.

use std::collections::VecDeque;

use super::body::RequestKind;
use super::head::{ReqHead, RespHead};
use super::len_u64;
use super::message::{Exchange, Header, Side};

/// Requests kept waiting for a response before the oldest one is given up.
pub(super) const MAX_PENDING: usize = 128;

/// Body and timing state of one message.
#[derive(Debug)]
pub(super) struct Progress {
    pub(super) start_ns: u64,
    pub(super) end_ns: u64,
    pub(super) body_size: u64,
    pub(super) body: Option<Vec<u8>>,
    pub(super) truncated: bool,
    pub(super) complete: bool,
    pub(super) gap: bool,
    pub(super) wire_bytes: u64,
}

impl Progress {
    pub(super) fn new(start_ns: u64, end_ns: u64, capture: usize) -> Self {
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

/// One request (or a placeholder for a lost one) and the response assigned to it.
#[derive(Debug)]
pub(super) struct Slot {
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

/// Requests awaiting responses, finished exchanges and shared counters.
#[derive(Debug)]
pub(super) struct Conversation {
    pub(super) slots: VecDeque<Slot>,
    next_seq: u64,
    pub(super) ready: Vec<Exchange>,
    pub(super) parse_errors: u64,
    pub(super) upgraded: bool,
    pub(super) capture: usize,
}

impl Conversation {
    pub(super) fn new(capture: usize) -> Self {
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

    pub(super) fn close_all(&mut self) {
        while let Some(slot) = self.slots.pop_front() {
            self.emit(slot);
        }
    }

    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        self.slots.iter_mut().rev().find(|s| s.seq == seq)
    }

    pub(super) fn progress_mut(&mut self, side: Side, seq: Option<u64>) -> Option<&mut Progress> {
        self.slot_mut(seq?)?.progress_mut(side)
    }

    fn first_unanswered(&mut self) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| !s.answered)
    }

    /// True if the slot got a final response (or is gone).
    pub(super) fn is_answered(&self, seq: u64) -> bool {
        self.slots
            .iter()
            .find(|s| s.seq == seq)
            .is_none_or(|s| s.answered)
    }

    /// Kind of the request the next final response answers.
    pub(super) fn pending_kind(&self) -> RequestKind {
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
    pub(super) fn open_request(&mut self, head: ReqHead, progress: Progress) -> u64 {
        let mut slot = self.new_slot();
        slot.request = Some((head, progress));
        slot.request_open = true;
        self.push_slot(slot)
    }

    /// Records a request that was cut short (`lost`: by a gap) before its head was complete.
    pub(super) fn cut_request(&mut self, salvaged: Option<(ReqHead, Progress)>, lost: bool) {
        let mut slot = self.new_slot();
        slot.request = salvaged;
        slot.lost = lost;
        self.push_slot(slot);
    }

    /// Assigns a final response to the oldest unanswered request, or to a new
    /// request-less slot when none is waiting.
    pub(super) fn answer(&mut self, head: RespHead, progress: Progress) -> u64 {
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
    pub(super) fn cut_response(&mut self, salvaged: Option<(RespHead, Progress)>, lost: bool) {
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

    pub(super) fn add_body(&mut self, side: Side, seq: Option<u64>, ts: u64, bytes: &[u8]) {
        let capture = self.capture;
        if let Some(p) = self.progress_mut(side, seq) {
            p.add_body(bytes, ts, capture);
        }
    }

    pub(super) fn add_lost(&mut self, side: Side, seq: Option<u64>, ts: u64, n: u64) {
        if let Some(p) = self.progress_mut(side, seq) {
            p.add_lost(n, ts);
        }
    }

    /// Counts wire bytes that are framing, not body (chunk-size lines, CRLFs, trailers).
    pub(super) fn add_framing(&mut self, side: Side, seq: Option<u64>, n: usize) {
        if let Some(p) = self.progress_mut(side, seq) {
            p.wire_bytes = p.wire_bytes.saturating_add(len_u64(n));
        }
    }

    pub(super) fn add_trailers(&mut self, side: Side, seq: Option<u64>, trailers: Vec<Header>) {
        if let Some(headers) = seq.and_then(|s| self.slot_mut(s)?.headers_mut(side)) {
            headers.extend(trailers);
        }
    }

    /// Ends a message: `end_ns` is updated when given.
    pub(super) fn end(
        &mut self,
        side: Side,
        seq: Option<u64>,
        complete: bool,
        end_ns: Option<u64>,
    ) {
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
    pub(super) fn upgrade(&mut self, seq: u64, ts: u64) {
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
