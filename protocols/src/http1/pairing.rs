//! The records of one conversation: per-message progress, request slots and loss markers in request order, responses not yet placed, and the emission of finished exchanges.

use std::collections::VecDeque;

use super::body::RequestKind;
use super::head::{ReqHead, RespHead};
use super::len_u64;
use super::message::{Exchange, GapCauses, Header, Side};

/// Requests (or loss markers, or unplaced responses) kept waiting before the
/// oldest one is given up.
pub(super) const MAX_PENDING: usize = 128;

/// Body and timing state of one message.
#[derive(Debug)]
pub(super) struct Progress {
    pub(super) start_ns: u64,
    pub(super) end_ns: u64,
    /// `end_ns` is when a gap was reported, only a bound on the real end.
    pub(super) end_by_gap: bool,
    pub(super) body_size: u64,
    pub(super) body: Option<Vec<u8>>,
    pub(super) truncated: bool,
    /// `body_size` went past the capture limit.
    pub(super) capped: bool,
    pub(super) complete: bool,
    /// Causes of the gaps that lost bytes of this message.
    pub(super) gaps: GapCauses,
    pub(super) wire_bytes: u64,
}

impl Progress {
    pub(super) fn new(start_ns: u64, end_ns: u64, capture: usize) -> Self {
        Self {
            start_ns,
            end_ns,
            end_by_gap: false,
            body_size: 0,
            body: (capture > 0).then(Vec::new),
            truncated: false,
            capped: false,
            complete: false,
            gaps: GapCauses::NONE,
            wire_bytes: 0,
        }
    }

    fn note_cap(&mut self, capture: usize) {
        if self.body.is_some() && self.body_size > len_u64(capture) {
            self.capped = true;
        }
    }

    fn add_body(&mut self, bytes: &[u8], ts: u64, capture: usize) {
        self.body_size = self.body_size.saturating_add(len_u64(bytes.len()));
        self.wire_bytes = self.wire_bytes.saturating_add(len_u64(bytes.len()));
        self.end_ns = ts;
        self.end_by_gap = false;
        // After a gap or the limit, `body` stays the contiguous prefix it is.
        if let Some(body) = self.body.as_mut().filter(|_| !self.truncated) {
            let keep = capture.saturating_sub(body.len()).min(bytes.len());
            body.extend_from_slice(bytes.get(..keep).unwrap_or_default());
            if keep < bytes.len() {
                self.truncated = true;
            }
        }
        self.note_cap(capture);
    }

    /// Body bytes this message still keeps before its capture is full (0:
    /// it keeps none, or no more).
    fn body_room(&self, capture: usize) -> u64 {
        match &self.body {
            Some(body) if !self.truncated => len_u64(capture.saturating_sub(body.len())),
            _ => 0,
        }
    }

    /// `n` body bytes skipped on purpose: counted like received ones, their
    /// content absent (the kept prefix, if any, ends before them).
    fn add_skipped(&mut self, n: u64, ts: u64, capture: usize) {
        if n == 0 {
            return;
        }
        self.body_size = self.body_size.saturating_add(n);
        self.wire_bytes = self.wire_bytes.saturating_add(n);
        self.end_ns = ts;
        self.end_by_gap = false;
        if self.body.is_some() {
            self.truncated = true;
        }
        self.note_cap(capture);
    }

    /// `n` bytes lost (0: an unknown number at the end, only flagged).
    fn add_lost(&mut self, n: u64, ts: u64, causes: GapCauses, capture: usize) {
        if n == 0 && !causes.is_empty() {
            self.truncated = true;
            self.gaps |= causes;
            return;
        }
        if n > 0 {
            self.body_size = self.body_size.saturating_add(n);
            self.wire_bytes = self.wire_bytes.saturating_add(n);
            self.truncated = true;
            self.gaps |= causes;
            self.end_ns = ts;
            self.end_by_gap = true;
            self.note_cap(capture);
        }
    }
}

/// One request and the response assigned to it (or a response alone, while
/// it waits to be placed).
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) seq: u64,
    pub(super) request: Option<(ReqHead, Progress)>,
    pub(super) response: Option<(RespHead, Progress)>,
    pub(super) request_open: bool,
    pub(super) response_open: bool,
    /// A response was assigned, or none ever will be (given up).
    pub(super) answered: bool,
    /// Causes of gaps that made the other side unknown (lost, or unprovable).
    pub(super) gaps: GapCauses,
    pub(super) upgraded: bool,
}

impl Slot {
    pub(super) fn ready(&self) -> bool {
        self.answered && !self.request_open && !self.response_open
    }

    fn progress(&self, side: Side) -> Option<&Progress> {
        match side {
            Side::Request => self.request.as_ref().map(|(_, p)| p),
            Side::Response => self.response.as_ref().map(|(_, p)| p),
        }
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

    /// Start of the request (a real slot always has one).
    pub(super) fn request_start(&self) -> Option<u64> {
        self.request.as_ref().map(|(_, p)| p.start_ns)
    }

    /// What the response to this request must know about it.
    pub(super) fn kind(&self) -> RequestKind {
        match self.request.as_ref().map(|(h, _)| h.method.as_str()) {
            Some("HEAD") => RequestKind::Head,
            Some("CONNECT") => RequestKind::Connect,
            _ => RequestKind::Other,
        }
    }

    pub(super) fn into_exchange(self) -> Exchange {
        let mut gaps = self.gaps;
        for p in [
            self.request.as_ref().map(|(_, p)| p),
            self.response.as_ref().map(|(_, p)| p),
        ]
        .into_iter()
        .flatten()
        {
            gaps |= p.gaps;
        }
        let request = self.request.map(|(h, p)| h.into_request(p));
        let response = self.response.map(|(h, p)| h.into_response(p));
        let partial = request.as_ref().is_none_or(|r| !r.complete)
            || response.as_ref().is_none_or(|r| !r.complete);
        Exchange {
            request,
            response,
            partial,
            gap: !gaps.is_empty(),
            gaps,
            upgraded: self.upgraded,
        }
    }
}

/// When a request ended and when its response ended, where known exactly.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timing {
    pub(super) request_end: Option<u64>,
    pub(super) response_end: Option<u64>,
}

impl Timing {
    pub(super) fn of(slot: &Slot) -> Self {
        let exact = |open: bool, p: &Progress| (!open && !p.end_by_gap).then_some(p.end_ns);
        Self {
            request_end: slot
                .request
                .as_ref()
                .and_then(|(_, p)| exact(slot.request_open, p)),
            response_end: slot
                .response
                .as_ref()
                .filter(|(_, p)| p.complete)
                .and_then(|(_, p)| exact(slot.response_open, p)),
        }
    }
}

/// Request bytes whose message boundaries were lost: they hold an unknown
/// number (maybe none) of requests, each started no earlier than `lower`.
#[derive(Debug)]
pub(super) struct Marker {
    pub(super) lower: u64,
    pub(super) causes: GapCauses,
}

/// One item of the request stream, in wire order.
#[derive(Debug)]
pub(super) enum Entry {
    Slot(Box<Slot>),
    Lost(Marker),
}

/// One item of the response stream not yet placed, in wire order.
#[derive(Debug)]
pub(super) enum Float {
    /// A final response, with the request kind its body was framed for.
    Resp(Box<Slot>, RequestKind),
    /// Response bytes whose message boundaries were lost: an unknown number
    /// (maybe none) of responses, all sent no later than `until`.
    Loss { causes: GapCauses, until: u64 },
}

/// Requests awaiting responses, responses awaiting placement, finished
/// exchanges, what is known of the alignment of both sides, and shared counters.
#[derive(Debug)]
pub(super) struct Conversation {
    pub(super) entries: VecDeque<Entry>,
    pub(super) floating: VecDeque<Float>,
    next_seq: u64,
    pub(super) ready: Vec<Exchange>,
    pub(super) parse_errors: u64,
    pub(super) upgraded: bool,
    pub(super) capture: usize,
    /// No response was lost or left unplaced since the last proven placement:
    /// the next response answers the first unanswered request (or a request
    /// hidden in a loss marker before it).
    pub(super) resp_certain: bool,
    /// Causes of the gaps since the last proven placement.
    pub(super) unaligned: GapCauses,
    /// Since the last placement: latest time response bytes were lost or
    /// skipped, and latest start of a response left unplaced.
    pub(super) loss_until: u64,
    pub(super) alone_until: u64,
    /// The client was seen sending a request before the previous response ended.
    pub(super) pipelining: bool,
    /// The client was seen sending a request only after the previous response ended.
    pub(super) sequential: bool,
    /// The last request emitted: its end and its response's end (both
    /// exact: not stamped by a gap, and complete).
    pub(super) last_emitted: Option<Timing>,
    /// Final responses seen lately, placed or not: (message, start, exact end).
    pub(super) recent: VecDeque<(u64, u64, Option<u64>)>,
    /// Response-side losses lately: bytes sent between these times.
    pub(super) loss_windows: VecDeque<(u64, u64)>,
    /// Timestamp of the last request-side push.
    pub(super) req_last_push: Option<u64>,
    /// Start of a request head the request side is still receiving.
    pub(super) req_pending_start: Option<u64>,
    pub(super) closed: bool,
    /// A response still being received was placed into another slot.
    pub(super) redirect: Option<(u64, u64)>,
    /// Requests (or markers) given up at the front of a full queue whose
    /// responses may still come: a marker before every entry.
    pub(super) given_up: Option<Marker>,
}

impl Conversation {
    pub(super) fn new(capture: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            floating: VecDeque::new(),
            next_seq: 0,
            ready: Vec::new(),
            parse_errors: 0,
            upgraded: false,
            capture,
            resp_certain: true,
            unaligned: GapCauses::NONE,
            loss_until: 0,
            alone_until: 0,
            pipelining: false,
            sequential: false,
            last_emitted: None,
            recent: VecDeque::new(),
            loss_windows: VecDeque::new(),
            req_last_push: None,
            req_pending_start: None,
            closed: false,
            redirect: None,
            given_up: None,
        }
    }

    pub(super) fn new_slot(&mut self) -> Slot {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        Slot {
            seq,
            request: None,
            response: None,
            request_open: false,
            response_open: false,
            answered: false,
            gaps: GapCauses::NONE,
            upgraded: false,
        }
    }

    /// Appends an entry, giving up the oldest one if too many are pending.
    fn push_entry(&mut self, entry: Entry) {
        self.entries.push_back(entry);
        if self.entries.len() > MAX_PENDING {
            let lost = match self.entries.pop_front() {
                Some(Entry::Slot(oldest)) => {
                    // Its response may still come: it stays a possible answer.
                    let lost = (!oldest.answered).then(|| Marker {
                        lower: oldest.request_start().unwrap_or(0),
                        causes: GapCauses::NONE,
                    });
                    self.emit(*oldest);
                    lost
                }
                Some(Entry::Lost(m)) => Some(m),
                None => None,
            };
            if let Some(m) = lost {
                self.given_up = Some(match self.given_up.take() {
                    Some(g) => Marker {
                        lower: g.lower.min(m.lower),
                        causes: g.causes | m.causes,
                    },
                    None => m,
                });
            }
        }
    }

    pub(super) fn emit(&mut self, slot: Slot) {
        if slot.request.is_some() {
            self.last_emitted = Some(Timing::of(&slot));
        }
        if slot.request.is_some() || slot.response.is_some() {
            self.ready.push(slot.into_exchange());
        }
    }

    /// Moves finished exchanges at the front of the queue to `ready`.
    pub(super) fn flush(&mut self) {
        while let Some(Entry::Slot(front)) = self.entries.front() {
            if !front.ready() {
                return;
            }
            if let Some(Entry::Slot(slot)) = self.entries.pop_front() {
                self.emit(*slot);
            }
        }
    }

    /// The connection closed: places what can be placed, then emits everything.
    pub(super) fn close_all(&mut self) {
        self.closed = true;
        self.resolve();
        while let Some(item) = self.floating.pop_front() {
            if let Float::Resp(slot, _) = item {
                self.emit(*slot);
            }
        }
        let unaligned = if self.resp_certain {
            GapCauses::NONE
        } else {
            self.unaligned
        };
        while let Some(entry) = self.entries.pop_front() {
            if let Entry::Slot(mut slot) = entry {
                if !slot.answered {
                    slot.gaps |= unaligned;
                }
                self.emit(*slot);
            }
        }
    }

    /// The slot holding message `seq` (a placed or unplaced response follows its redirect).
    pub(super) fn slot(&self, seq: u64) -> Option<&Slot> {
        let seq = match self.redirect {
            Some((from, to)) if from == seq => to,
            _ => seq,
        };
        let placed = self.entries.iter().rev().find_map(|e| match e {
            Entry::Slot(s) if s.seq == seq => Some(s.as_ref()),
            _ => None,
        });
        placed.or_else(|| {
            self.floating.iter().find_map(|f| match f {
                Float::Resp(s, _) if s.seq == seq => Some(s.as_ref()),
                _ => None,
            })
        })
    }

    pub(super) fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        let seq = match self.redirect {
            Some((from, to)) if from == seq => to,
            _ => seq,
        };
        let placed = self.entries.iter_mut().rev().find_map(|e| match e {
            Entry::Slot(s) if s.seq == seq => Some(s.as_mut()),
            _ => None,
        });
        match placed {
            Some(s) => Some(s),
            None => self.floating.iter_mut().find_map(|f| match f {
                Float::Resp(s, _) if s.seq == seq => Some(s.as_mut()),
                _ => None,
            }),
        }
    }

    /// True if message `seq` sits in a request slot (its response, if it is
    /// one, was placed with proof).
    pub(super) fn is_placed(&self, seq: u64) -> bool {
        let seq = match self.redirect {
            Some((from, to)) if from == seq => to,
            _ => seq,
        };
        self.entries
            .iter()
            .any(|e| matches!(e, Entry::Slot(s) if s.seq == seq))
    }

    pub(super) fn progress_mut(&mut self, side: Side, seq: Option<u64>) -> Option<&mut Progress> {
        self.slot_mut(seq?)?.progress_mut(side)
    }

    /// True if the slot got a final response (or is gone).
    pub(super) fn is_answered(&self, seq: u64) -> bool {
        self.entries
            .iter()
            .find_map(|e| match e {
                Entry::Slot(s) if s.seq == seq => Some(s.answered),
                _ => None,
            })
            .unwrap_or(true)
    }

    /// Starts a new request that the request side is receiving.
    pub(super) fn open_request(&mut self, head: ReqHead, progress: Progress) -> u64 {
        self.note_request_start(progress.start_ns);
        let mut slot = self.new_slot();
        let seq = slot.seq;
        slot.request = Some((head, progress));
        slot.request_open = true;
        self.push_entry(Entry::Slot(Box::new(slot)));
        seq
    }

    /// Records a request whose head was cut short (by a gap or close).
    pub(super) fn cut_request(&mut self, head: ReqHead, progress: Progress) {
        self.note_request_start(progress.start_ns);
        let mut slot = self.new_slot();
        slot.request = Some((head, progress));
        self.push_entry(Entry::Slot(Box::new(slot)));
    }

    /// Request bytes whose boundaries are lost (by a gap, `causes`, or a
    /// desync): they may hide requests started at `lower` or later.
    pub(super) fn request_lost(&mut self, lower: u64, causes: GapCauses) {
        if let Some(Entry::Lost(m)) = self.entries.back_mut() {
            m.lower = m.lower.min(lower);
            m.causes |= causes;
            return;
        }
        self.push_entry(Entry::Lost(Marker { lower, causes }));
    }

    /// Response bytes whose boundaries are lost, sent between `from` and
    /// `until`: they may hide responses.
    pub(super) fn response_lost(&mut self, causes: GapCauses, from: u64, until: u64) {
        self.note_loss_window(from, until);
        if let Some(Float::Loss {
            causes: c,
            until: u,
        }) = self.floating.back_mut()
        {
            *c |= causes;
            *u = (*u).max(until);
            return;
        }
        self.floating.push_back(Float::Loss { causes, until });
        self.resolve();
    }

    pub(super) fn add_body(&mut self, side: Side, seq: Option<u64>, ts: u64, bytes: &[u8]) {
        let capture = self.capture;
        if let Some(p) = self.progress_mut(side, seq) {
            p.add_body(bytes, ts, capture);
        }
    }

    /// Body bytes message `seq` of `side` still keeps (0 without a record).
    pub(super) fn body_room(&self, side: Side, seq: Option<u64>) -> u64 {
        let capture = self.capture;
        seq.and_then(|s| self.slot(s)?.progress(side))
            .map_or(0, |p| p.body_room(capture))
    }

    /// `n` body bytes of message `seq` of `side` skipped on purpose.
    pub(super) fn add_skipped(&mut self, side: Side, seq: Option<u64>, ts: u64, n: u64) {
        let capture = self.capture;
        if let Some(p) = self.progress_mut(side, seq) {
            p.add_skipped(n, ts, capture);
        }
    }

    pub(super) fn add_lost(
        &mut self,
        side: Side,
        seq: Option<u64>,
        ts: u64,
        n: u64,
        causes: GapCauses,
    ) {
        let capture = self.capture;
        if let Some(p) = self.progress_mut(side, seq) {
            p.add_lost(n, ts, causes, capture);
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

    /// Ends a message: `end_ns` is updated when given. Returns true if the
    /// message sits in a request slot once what can be placed is placed (for a
    /// response: its framing is that of the request it answers).
    pub(super) fn end(
        &mut self,
        side: Side,
        seq: Option<u64>,
        complete: bool,
        end_ns: Option<u64>,
    ) -> bool {
        let Some(seq) = seq else {
            self.flush();
            return false;
        };
        let mut exact_end = None;
        if let Some(slot) = self.slot_mut(seq) {
            if let Some(p) = slot.progress_mut(side) {
                p.complete = complete;
                if let Some(ts) = end_ns {
                    p.end_ns = ts;
                }
                exact_end = (complete && !p.end_by_gap).then_some(p.end_ns);
            }
            slot.close_side(side);
        }
        if side == Side::Response {
            self.note_response_timing(seq, exact_end);
            self.note_response_end(seq);
            self.resolve();
        }
        let placed = self.is_placed(seq);
        self.flush();
        placed
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
        self.resolve();
        self.flush();
    }
}
