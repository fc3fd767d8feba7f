//! Which request a response answers, proven or not at all: placement in order while both sides are aligned, and the rule that re-aligns them after a gap or a desync.
//!
//! # The rule
//!
//! HTTP/1 pairs the nth final response with the nth request. While no
//! message boundary was lost on either side, a response simply answers the
//! oldest unanswered request (*placement in order*).
//!
//! A gap that does not fall strictly inside a body of known length (or a
//! parse error) loses the count of messages on its side: the lost or skipped
//! bytes may hold any number of messages. On the request side this leaves a
//! *loss marker* in the request queue (an unknown number of requests, each
//! started no earlier than the last request byte seen before the loss); on
//! the response side it makes the response count *uncertain*. The side then
//! skips bytes until a message start that is proven: a start token at the
//! first byte of a new capture event (a push with a new timestamp, or the
//! first push after a gap) followed by a head that parses, or the byte after
//! the framed end of a message whose head was read (and, for a response,
//! whose request is known, since HEAD and CONNECT change its framing).
//!
//! A response whose request is then not certain is held until it is either
//! proven or given up. Let `c` be the timestamp of its first byte. Causality
//! bounds the candidates: a response answers a request that started at or
//! before `c`, and that is unanswered (loss markers count as requests that
//! may have started at their lower bound). For rules 1 and 2 the candidates
//! are only known once the request side is *caught up*: it pushed bytes
//! stamped after `c` and has no head in progress that started at or before
//! `c`, or some queued request or marker started after `c`. The response is
//! placed only if:
//!
//! 1. *Unique*: the latest candidate is the only one, and it is a request (no
//!    marker). Responses come in order, so nothing else can be answered.
//! 2. *Not pipelined*: the latest candidate `N` is a request, and there is
//!    evidence that no other request was in flight: the client was seen
//!    sending a request only after the previous response ended, and never
//!    before it ended (nor two requests in one event), `N` ended at or
//!    before `c`, consecutive candidates did not overlap, and the response
//!    ended at or before the next request (or marker) was seen to start. A non-pipelining client sends request `N + 1` only
//!    after response `N`, so the response that starts after request `N`
//!    ended and before request `N + 1` started answers `N`. While the count
//!    of responses is certain (only request-side markers are in the way),
//!    `N` must moreover be the first request after those markers.
//! 3. *Gap closed before the request*: `N` (the latest request started at
//!    or before `c`) started after every response byte lost or skipped, and
//!    after the start of every response left unplaced, since the last
//!    placement — the response-side gap was closed when `N` was sent. `N`'s
//!    response can then be neither lost nor already seen: if no request
//!    before `N` is unanswered, this response answers `N` (proven by order
//!    and causality alone); if some are, only for a client known not to
//!    pipeline as in 2 (their responses ended before `N` started), with `N`
//!    ended at or before `c`. Whatever the request side lost after `N` does
//!    not matter, so this needs no later request bytes and is also decided
//!    while the response is still arriving.
//!
//! Rules 2 and 3 with earlier requests rest on the premise that a client
//! seen waiting for each response, and never seen pipelining, does not start
//! pipelining unseen inside a gap (HTTP/1.1 clients in use do not pipeline).
//! Order and causality alone cannot locate a response once a whole one was
//! lost.
//!
//! The response must also have been framed for the kind of that request.
//! Once placed, the sides are aligned again: the candidates before `N` are
//! finished without a response (their responses were lost), markers before
//! it are dropped, and later responses are placed in order. A response that
//! cannot be placed is reported alone, flagged; if that is because several
//! candidates were possible, the response count stays uncertain. At close,
//! requests still unanswered while the count is uncertain carry the causes
//! of the gaps since the last proven placement.

use super::body::RequestKind;
use super::head::RespHead;
use super::message::GapCauses;
use super::pairing::{Conversation, Entry, Float, Progress, Slot, Timing, MAX_PENDING};

/// Responses and response-side losses remembered for evidence of how the
/// client sends.
const RECENT: usize = 16;

/// What to do with the oldest unplaced response.
enum Decision {
    /// Not enough is known yet.
    Wait,
    /// It answers the request of slot `seq`.
    Place(u64),
    /// It is reported alone with these causes; `ambiguous`: it may have
    /// answered one of several requests, so the response count is uncertain.
    Alone { causes: GapCauses, ambiguous: bool },
}

/// A possible answer of a response: a request, or a loss marker.
struct Candidate {
    /// Slot of the request; `None` for a marker.
    seq: Option<u64>,
    start: u64,
    end: u64,
    complete: bool,
    kind: RequestKind,
    causes: GapCauses,
}

impl Candidate {
    fn of(entry: &Entry) -> Option<Self> {
        match entry {
            Entry::Lost(m) => Some(Self {
                seq: None,
                start: m.lower,
                end: m.lower,
                complete: false,
                kind: RequestKind::Other,
                causes: m.causes,
            }),
            Entry::Slot(s) if !s.answered => {
                let (_, p) = s.request.as_ref()?;
                Some(Self {
                    seq: Some(s.seq),
                    start: p.start_ns,
                    end: p.end_ns,
                    complete: p.complete && !s.request_open,
                    kind: s.kind(),
                    causes: GapCauses::NONE,
                })
            }
            Entry::Slot(_) => None,
        }
    }
}

impl Conversation {
    /// The possible answers of the next response, in request order: what was
    /// given up at the front of the queue, then the unanswered entries.
    fn candidates(&self) -> impl DoubleEndedIterator<Item = Candidate> + '_ {
        let given_up = self.given_up.as_ref().map(|m| Candidate {
            seq: None,
            start: m.lower,
            end: m.lower,
            complete: false,
            kind: RequestKind::Other,
            causes: m.causes,
        });
        given_up
            .into_iter()
            .chain(self.entries.iter().filter_map(Candidate::of))
    }

    /// The request side pushed bytes up to `last_push`; a head started at
    /// `pending` is still being received.
    pub(super) fn note_request_frontier(&mut self, last_push: Option<u64>, pending: Option<u64>) {
        if last_push.is_some() {
            self.req_last_push = last_push;
        }
        self.req_pending_start = pending;
    }

    /// Evidence of how the client sends, from a request starting at `start`
    /// and the previous one, when nothing was lost between them. Pipelining:
    /// the previous request ended at the same time, or its placed response
    /// ended later, or two final responses started between the two requests.
    /// Sequential: exactly one response started between them, and it ended
    /// before this one started, with no response bytes lost meanwhile.
    pub(super) fn note_request_start(&mut self, start: u64) {
        let previous = match self.entries.back() {
            Some(Entry::Slot(s)) => Some(Timing::of(s)),
            Some(Entry::Lost(_)) => None,
            None => self.last_emitted,
        };
        let Some(prev) = previous else { return };
        if prev.request_end == Some(start) || prev.response_end.is_some_and(|end| end > start) {
            self.pipelining = true;
            return;
        }
        let Some(after) = prev.request_end else {
            return;
        };
        // The ends of the responses that started in between: the first
        // two tell (no list: its allocation was ~190 instructions per
        // request, bench/instructions.sh).
        let mut between = self
            .recent
            .iter()
            .filter(|(_, c, _)| *c >= after && *c < start)
            .map(|(_, _, end)| *end);
        let lossy = || {
            self.loss_windows
                .iter()
                .any(|(from, until)| *from < start && *until >= after)
        };
        match (between.next(), between.next()) {
            (Some(_), Some(_)) => self.pipelining = true,
            (Some(Some(end)), None) if end <= start && !lossy() => self.sequential = true,
            _ => {}
        }
    }

    /// A final response (message `seq`) started at `start`.
    fn note_response_start(&mut self, seq: u64, start: u64) {
        self.recent.push_back((seq, start, None));
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }

    /// Response bytes were lost (or skipped) between `from` and `until`.
    pub(super) fn note_loss_window(&mut self, from: u64, until: u64) {
        self.loss_windows.push_back((from, until));
        if self.loss_windows.len() > RECENT {
            self.loss_windows.pop_front();
        }
    }

    /// Response `seq` ended at `end` (exact) or was cut (`None`).
    pub(super) fn note_response_timing(&mut self, seq: u64, end: Option<u64>) {
        if let Some(r) = self.recent.iter_mut().rev().find(|r| r.0 == seq) {
            r.2 = end;
        }
    }

    /// The placed response of slot `seq` ended: pipelining if the next
    /// request started before.
    pub(super) fn note_response_end(&mut self, seq: u64) {
        let seq = match self.redirect {
            Some((from, to)) if from == seq => to,
            _ => seq,
        };
        let mut end = None;
        let mut next_start = None;
        for entry in &self.entries {
            let Entry::Slot(s) = entry else { continue };
            if end.is_some() {
                if let Some(start) = s.request_start() {
                    next_start = Some(start);
                    break;
                }
            } else if s.seq == seq {
                match s.response.as_ref() {
                    Some((_, p)) if p.complete && !p.end_by_gap => end = Some(p.end_ns),
                    _ => return,
                }
            }
        }
        if let (Some(end), Some(next)) = (end, next_start) {
            if next < end {
                self.pipelining = true;
            }
        }
    }

    /// The client is known not to pipeline: seen waiting for a response
    /// before sending the next request, never seen sending one before.
    fn known_sequential(&self) -> bool {
        self.sequential && !self.pipelining
    }

    /// The request kind a final response starting at `c` is framed for: that
    /// of the request it answers in order, or else of the request it would
    /// most likely answer (checked again when it is placed).
    pub(super) fn response_kind(&self, c: u64) -> RequestKind {
        let mut started = self
            .candidates()
            .filter(|cand| cand.seq.is_some() && cand.start <= c);
        let found = if self.resp_certain && self.floating.is_empty() {
            started.next()
        } else {
            started.next_back()
        };
        found.map_or(RequestKind::Other, |cand| cand.kind)
    }

    /// A final response: placed in order when the sides are aligned, else held
    /// until it can be placed or given up. Returns the slot to feed it through.
    pub(super) fn add_response(
        &mut self,
        head: RespHead,
        progress: Progress,
        kind: RequestKind,
        open: bool,
    ) -> u64 {
        let mut slot = self.new_slot();
        let seq = slot.seq;
        self.note_response_start(seq, progress.start_ns);
        slot.response = Some((head, progress));
        slot.response_open = open;
        slot.answered = true;
        self.floating.push_back(Float::Resp(Box::new(slot), kind));
        if self.floating.len() > MAX_PENDING {
            self.give_up_front();
        }
        self.resolve();
        self.flush();
        seq
    }

    /// Places or gives up held responses, oldest first, while it can be decided.
    pub(super) fn resolve(&mut self) {
        loop {
            let decision = match self.floating.front() {
                None => return,
                Some(Float::Loss { causes, until }) => {
                    self.resp_certain = false;
                    self.unaligned |= *causes;
                    self.loss_until = self.loss_until.max(*until);
                    self.floating.pop_front();
                    continue;
                }
                Some(Float::Resp(slot, kind)) => match self.in_order(slot, *kind) {
                    Some(seq) => Decision::Place(seq),
                    None => match self.after_closed_gap(slot, *kind) {
                        Some(seq) => Decision::Place(seq),
                        None if slot.response_open && !self.closed => Decision::Wait,
                        None => self.decide(slot, *kind),
                    },
                },
            };
            match decision {
                Decision::Wait => return,
                Decision::Place(seq) => self.place(seq),
                Decision::Alone { causes, ambiguous } => {
                    if let Some(Float::Resp(mut slot, _)) = self.floating.pop_front() {
                        slot.gaps |= causes;
                        if let Some((_, p)) = slot.response.as_ref() {
                            self.alone_until = self.alone_until.max(p.start_ns);
                        }
                        self.emit_alone(*slot);
                    }
                    if ambiguous {
                        self.resp_certain = false;
                        self.unaligned |= causes;
                    }
                }
            }
        }
    }

    /// The slot a response answers in order, if the sides are aligned, the
    /// request started no later than the response and the framing fits.
    fn in_order(&self, response: &Slot, kind: RequestKind) -> Option<u64> {
        if !self.resp_certain || self.given_up.is_some() {
            return None;
        }
        let c = response.response.as_ref()?.1.start_ns;
        let cursor = self.entries.iter().find_map(|e| match e {
            Entry::Lost(_) => Some(None),
            Entry::Slot(s) if !s.answered => Some(Some(s)),
            Entry::Slot(_) => None,
        })??;
        let start = cursor.request_start()?;
        (start <= c && cursor.kind() == kind).then_some(cursor.seq)
    }

    /// Rule 2 when the response-side gap closed before the request started:
    /// the latest request `N` that started at or before the response did,
    /// if it started after every response byte lost or skipped, and after
    /// every response left unplaced, since the last placement. Without
    /// pipelining, `N`'s response is then neither lost nor already seen, and
    /// responses to earlier requests ended before `N` started: this response
    /// answers `N`. Needs nothing later from the request side.
    fn after_closed_gap(&self, response: &Slot, kind: RequestKind) -> Option<u64> {
        if self.in_order(response, kind).is_some() {
            return None;
        }
        let c = response.response.as_ref()?.1.start_ns;
        let closed = self.loss_until.max(self.alone_until);
        let started: Vec<Candidate> = self
            .candidates()
            .take_while(|cand| cand.start <= c)
            .collect();
        let last = started.iter().rev().find(|cand| cand.seq.is_some())?;
        if last.start <= closed || last.kind != kind {
            return None;
        }
        // With nothing unanswered before N, every earlier request was
        // answered by a placed response: N's is the next one, proven.
        // Otherwise the earlier ones' responses must have ended before N
        // started: only for a client known not to pipeline.
        let earlier = started.first().is_some_and(|first| first.seq != last.seq);
        if earlier {
            let others_after_gap = started
                .iter()
                .filter(|cand| cand.seq.is_some() && cand.seq != last.seq)
                .any(|cand| cand.start > closed);
            if !self.known_sequential() || others_after_gap || !last.complete || last.end > c {
                return None;
            }
        }
        last.seq
    }

    /// The rule of the module documentation, for a response no longer being
    /// received (or at close).
    fn decide(&self, response: &Slot, kind: RequestKind) -> Decision {
        let Some((_, fp)) = response.response.as_ref() else {
            return Decision::Alone {
                causes: GapCauses::NONE,
                ambiguous: false,
            };
        };
        let c = fp.start_ns;
        let mut possible: Vec<Candidate> = Vec::new();
        let mut next: Option<u64> = None;
        for cand in self.candidates() {
            if cand.start > c {
                next = Some(cand.start);
                break;
            }
            possible.push(cand);
        }
        if next.is_none() && !self.closed && !self.caught_up(c) {
            return Decision::Wait;
        }
        let base = if self.resp_certain {
            GapCauses::NONE
        } else {
            self.unaligned
        };
        let causes = possible.iter().fold(base, |acc, cand| acc | cand.causes);
        let Some(last) = possible.last() else {
            return Decision::Alone {
                causes,
                ambiguous: false,
            };
        };
        let Some(seq) = last.seq else {
            // It may answer a request hidden in the marker.
            return Decision::Alone {
                causes,
                ambiguous: false,
            };
        };
        let proven = if possible.len() == 1 {
            true
        } else {
            match self.not_pipelined(&possible, response, c, next) {
                Some(proven) => proven,
                None => return Decision::Wait,
            }
        };
        if proven && last.kind == kind {
            Decision::Place(seq)
        } else {
            Decision::Alone {
                causes,
                ambiguous: true,
            }
        }
    }

    /// The evidence of rule 2 for the latest of several candidates; `None`
    /// while the start of the next request is not known yet.
    fn not_pipelined(
        &self,
        possible: &[Candidate],
        response: &Slot,
        c: u64,
        next: Option<u64>,
    ) -> Option<bool> {
        let Some(last) = possible.last() else {
            return Some(false);
        };
        let reals: Vec<&Candidate> = possible.iter().filter(|p| p.seq.is_some()).collect();
        if !self.known_sequential()
            || !last.complete
            || last.end > c
            || (self.resp_certain && reals.len() > 1)
            || reals.windows(2).any(|w| match w {
                [a, b] => b.start <= a.end,
                _ => false,
            })
        {
            return Some(false);
        }
        let Some((_, fp)) = response.response.as_ref() else {
            return Some(false);
        };
        if !fp.complete {
            return Some(true);
        }
        let next = next.or(self.req_pending_start);
        Some(match next {
            Some(start) => fp.end_ns <= start,
            None if self.closed => false,
            // A later request would start no earlier than the last push.
            None if self.req_last_push.is_some_and(|t| fp.end_ns <= t) => true,
            None => return None,
        })
    }

    /// Every request that started at or before `c` is in the queue.
    fn caught_up(&self, c: u64) -> bool {
        self.req_last_push.is_some_and(|t| c < t) && self.req_pending_start.is_none_or(|s| s > c)
    }

    /// Puts the oldest held response into slot `seq`; the unanswered requests
    /// before it lost their responses, the markers before it are dropped.
    fn place(&mut self, seq: u64) {
        let Some(Float::Resp(mut response, _)) = self.floating.pop_front() else {
            return;
        };
        let skipped = if self.resp_certain {
            GapCauses::NONE
        } else {
            self.unaligned
        };
        // In place: rebuilding the queue moved every slot and allocated
        // (~300 instructions per response, bench/instructions.sh).
        let mut before = true;
        self.entries.retain_mut(|entry| match entry {
            Entry::Slot(s) if s.seq == seq => {
                before = false;
                s.answered = true;
                s.response_open = response.response_open;
                s.upgraded |= response.upgraded;
                s.gaps |= response.gaps;
                s.response = response.response.take();
                true
            }
            Entry::Lost(_) if before => false,
            Entry::Slot(s) if before && !s.answered => {
                s.answered = true;
                s.gaps |= skipped;
                true
            }
            _ => true,
        });
        self.given_up = None;
        if response.response_open {
            self.redirect = Some((response.seq, seq));
        }
        self.resp_certain = true;
        self.unaligned = GapCauses::NONE;
        self.loss_until = 0;
        self.alone_until = 0;
        if !response.response_open {
            self.note_response_end(seq);
        }
    }

    /// Reports a response that answers no known request.
    fn emit_alone(&mut self, slot: Slot) {
        self.emit(slot);
    }

    /// Too many responses held: the oldest is reported alone.
    fn give_up_front(&mut self) {
        match self.floating.pop_front() {
            Some(Float::Resp(slot, _)) => {
                self.resp_certain = false;
                if let Some((_, p)) = slot.response.as_ref() {
                    self.alone_until = self.alone_until.max(p.start_ns);
                }
                self.emit_alone(*slot);
            }
            Some(Float::Loss { causes, until }) => {
                self.resp_certain = false;
                self.unaligned |= causes;
                self.loss_until = self.loss_until.max(until);
            }
            None => {}
        }
    }
}
