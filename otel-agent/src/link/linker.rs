//! The linker: gives every exchange its span ids before any sink sees it,
//! making a span the child of another only on the tracker's evidence (the
//! connection seen from both ends, the thread serving a request) or a
//! captured `traceparent`, and holding a span a bounded time while its parent
//! has not finished yet.
//!
//! Children finish before their parents (the server span of B before the
//! client span of A that called it, which finishes before A's server span),
//! and the whole chain must share the root's trace id. So a span whose
//! evidence names a parent that has not come out yet is held; when the parent
//! is decided, its waiting children are decided with it (and theirs after
//! them). Held spans go out as roots, counted, when they have waited
//! `wait` or when `max_held` are held already: never lost, never held past
//! the bound.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use semconv::model::{Candidate, Exchange, Output, Position, ServerRequest};
use semconv::spans::SpanKind;
use semconv::trace_context::{trace_context, LinkKind, SpanIds, TracePlace};

use super::ids::IdSource;
use crate::internal_events::{incr, CaptureStats};

/// The bounds of the linker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkBounds {
    /// Longest a span is held waiting for its parent, in nanoseconds.
    pub wait_ns: u64,
    /// Most spans held at once.
    pub max_held: usize,
}

impl LinkBounds {
    /// The bounds of the settings (`telemetry.trace_links`).
    pub fn of(settings: &otel_agent_config::Settings) -> Self {
        let t = settings.telemetry.trace_links;
        Self {
            wait_ns: u64::try_from(t.wait.as_nanos()).unwrap_or(u64::MAX),
            max_held: t.max_held,
        }
    }
}

/// A span as its possible children name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// A server exchange: its connection and its request's first byte.
    Server(ServerRequest),
    /// A client exchange: its connection and its place on it.
    Client(u64, Position),
}

/// A decided span, as its children need it.
#[derive(Clone, Debug)]
struct Decided {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
    state: Option<String>,
    /// Wall-clock span of the parent, for the thread check.
    start_unix_ns: u64,
    end_unix_ns: u64,
}

/// A span waiting for its parent.
struct Held {
    ex: Box<Exchange>,
    /// How it will be linked when the parent comes.
    kind: LinkKind,
}

/// What the evidence says about an exchange's parent.
enum Parent {
    /// Decided now: a root of this kind, or the `traceparent`'s place.
    Now(TracePlace, LinkKind),
    /// The span named by the key, linked as `kind`.
    Span(Key, LinkKind),
}

/// Gives exchanges their span ids (see the module documentation).
pub struct Linker {
    ids: IdSource,
    bounds: LinkBounds,
    stats: Arc<CaptureStats>,
    /// Recently decided spans by key, kept `wait` for late children.
    decided: FxHashMap<Key, Decided>,
    decided_order: VecDeque<(u64, Key)>,
    /// Held spans by a sequence number.
    held: FxHashMap<u64, Held>,
    /// Held spans by the key of the parent they wait for.
    waiting: FxHashMap<Key, Vec<u64>>,
    /// (deadline, held number), in order (the wait is the same for all).
    deadlines: VecDeque<(u64, u64)>,
    next: u64,
    /// Reused: the outputs of one call.
    scratch: Vec<Output>,
}

impl Linker {
    /// A linker with these bounds, counting in `stats`.
    pub fn new(bounds: LinkBounds, ids: IdSource, stats: Arc<CaptureStats>) -> Self {
        Self {
            ids,
            bounds,
            stats,
            decided: FxHashMap::default(),
            decided_order: VecDeque::new(),
            held: FxHashMap::default(),
            waiting: FxHashMap::default(),
            deadlines: VecDeque::new(),
            next: 0,
            scratch: Vec::new(),
        }
    }

    /// Spans held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Client span ids repeated from a `traceparent` (see
    /// [`IdSource::repeated_client_span_ids`]).
    pub fn repeated_client_span_ids(&self) -> u64 {
        self.ids.repeated_client_span_ids()
    }

    /// Link the exchanges of `out` at monotonic time `now_ns`: each goes
    /// back into `out` with its ids, now or (held) in a later call; reports
    /// and exchanges that have their ids already pass through.
    pub fn link(&mut self, out: &mut Vec<Output>, now_ns: u64) {
        if out.is_empty() {
            return;
        }
        let mut input = std::mem::take(&mut self.scratch);
        std::mem::swap(&mut input, out);
        for o in input.drain(..) {
            match o {
                Output::Exchange(ex) if ex.ids.is_none() => self.exchange(ex, now_ns, out),
                done => out.push(done),
            }
        }
        self.scratch = input;
    }

    /// Send out, as roots, the spans held past their deadline at `now_ns`,
    /// and forget decided spans older than the wait.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<Output>) {
        while let Some(&(deadline, n)) = self.deadlines.front() {
            if deadline > now_ns {
                break;
            }
            self.deadlines.pop_front();
            if let Some(h) = self.held.remove(&n) {
                self.root(h.ex, LinkKind::RootTimeout, now_ns.min(deadline), out);
            }
        }
        while let Some(&(at, key)) = self.decided_order.front() {
            if at.saturating_add(self.bounds.wait_ns) > now_ns
                && self.decided_order.len() <= self.bounds.max_held
            {
                break;
            }
            self.decided_order.pop_front();
            self.decided.remove(&key);
        }
        self.waiting.retain(|_, v| {
            v.retain(|n| self.held.contains_key(n));
            !v.is_empty()
        });
    }

    /// The agent stops: every held span goes out now, as a root.
    pub fn flush(&mut self, out: &mut Vec<Output>) {
        self.expire(u64::MAX, out);
    }

    fn exchange(&mut self, ex: Box<Exchange>, now_ns: u64, out: &mut Vec<Output>) {
        match parent_of(&ex) {
            Parent::Now(place, kind) => {
                let ids = self.ids.place(&place, kind);
                self.decide(ex, ids, now_ns, out);
            }
            Parent::Span(key, kind) => {
                if let Some(p) = self.decided.get(&key).cloned() {
                    self.child(ex, &p, kind, now_ns, out);
                } else if self.held.len() >= self.bounds.max_held {
                    self.root(ex, LinkKind::RootFull, now_ns, out);
                } else {
                    let n = self.next;
                    self.next += 1;
                    self.held.insert(n, Held { ex, kind });
                    self.waiting.entry(key).or_default().push(n);
                    self.deadlines
                        .push_back((now_ns.saturating_add(self.bounds.wait_ns), n));
                }
            }
        }
    }

    /// `ex` as a child of `parent`.
    fn child(
        &mut self,
        ex: Box<Exchange>,
        parent: &Decided,
        kind: LinkKind,
        now_ns: u64,
        out: &mut Vec<Output>,
    ) {
        let ids = self.child_ids(&ex, parent, kind);
        self.decide(ex, ids, now_ns, out);
    }

    /// The ids of `ex` as a child of `parent`, when the timing agrees with
    /// the link (a thread's client request starts inside the server
    /// exchange); else a root, as ambiguous.
    fn child_ids(&mut self, ex: &Exchange, parent: &Decided, kind: LinkKind) -> SpanIds {
        let inside =
            ex.start_unix_ns >= parent.start_unix_ns && ex.start_unix_ns <= parent.end_unix_ns;
        if kind == LinkKind::Thread && !inside {
            return self.ids.place(&TracePlace::Root, LinkKind::RootAmbiguous);
        }
        SpanIds {
            trace_id: parent.trace_id,
            span_id: self.ids.span_id(),
            parent_span_id: Some(parent.span_id),
            parent_is_remote: false,
            sampled: parent.sampled,
            state: parent.state.clone(),
            link: kind,
        }
    }

    /// `ex` as a root of `kind` (its own children may still come).
    fn root(&mut self, ex: Box<Exchange>, kind: LinkKind, now_ns: u64, out: &mut Vec<Output>) {
        let ids = self.ids.place(&TracePlace::Root, kind);
        self.decide(ex, ids, now_ns, out);
    }

    /// Give `ex` its ids, send it, and decide the spans waiting for it.
    fn decide(&mut self, ex: Box<Exchange>, ids: SpanIds, now_ns: u64, out: &mut Vec<Output>) {
        let mut stack = vec![(ex, ids)];
        while let Some((mut ex, ids)) = stack.pop() {
            count(&self.stats, ids.link);
            let key = key_of(&ex);
            let decided = Decided {
                trace_id: ids.trace_id,
                span_id: ids.span_id,
                sampled: ids.sampled,
                state: ids.state.clone(),
                start_unix_ns: ex.start_unix_ns,
                end_unix_ns: ex.end_unix_ns,
            };
            ex.ids = Some(ids);
            out.push(Output::Exchange(ex));
            let Some(key) = key else { continue };
            for n in self.waiting.remove(&key).unwrap_or_default() {
                let Some(h) = self.held.remove(&n) else {
                    continue;
                };
                let ids = self.child_ids(&h.ex, &decided, h.kind);
                stack.push((h.ex, ids));
            }
            self.decided.insert(key, decided);
            self.decided_order.push_back((now_ns, key));
        }
    }
}

/// The key the exchange's possible children name it by.
fn key_of(ex: &Exchange) -> Option<Key> {
    let l = &ex.link;
    match SpanKind::of(ex) {
        SpanKind::Server if l.request_ns != 0 => Some(Key::Server(ServerRequest {
            connection: ex.connection.id,
            start_ns: l.request_ns,
        })),
        SpanKind::Client => l.position.map(|p| Key::Client(ex.connection.id, p)),
        SpanKind::Server => None,
    }
}

/// The parent the evidence names. A valid `traceparent` always wins; then
/// the client end of the same connection (server spans) or the request the
/// writing thread was serving (client spans); else a root.
fn parent_of(ex: &Exchange) -> Parent {
    let kind = SpanKind::of(ex);
    let ctx = ex
        .request
        .as_ref()
        .and_then(|r| trace_context(r.traceparent.as_deref(), r.tracestate.as_deref()));
    if let Some(c) = ctx {
        let place = match kind {
            SpanKind::Client => TracePlace::Is(c),
            SpanKind::Server => TracePlace::ChildOf(c),
        };
        return Parent::Now(place, LinkKind::Traceparent);
    }
    let l = &ex.link;
    let root = |k| Parent::Now(TracePlace::Root, k);
    match kind {
        SpanKind::Server => match (l.peer, l.position) {
            (Candidate::One(client), Some(p)) => {
                Parent::Span(Key::Client(client, p), LinkKind::Connection)
            }
            (Candidate::Ambiguous, _) => root(LinkKind::RootAmbiguous),
            _ => root(LinkKind::Root),
        },
        SpanKind::Client => match l.serving {
            Candidate::One(s) => Parent::Span(Key::Server(s), LinkKind::Thread),
            Candidate::Ambiguous => root(LinkKind::RootAmbiguous),
            Candidate::None => root(LinkKind::Root),
        },
    }
}

/// Count one decision in `tap.trace.links`.
fn count(stats: &CaptureStats, kind: LinkKind) {
    incr(match kind {
        LinkKind::Traceparent => &stats.trace_links_traceparent,
        LinkKind::Connection => &stats.trace_links_connection,
        LinkKind::Thread => &stats.trace_links_thread,
        LinkKind::Root => &stats.trace_links_root,
        LinkKind::RootAmbiguous => &stats.trace_links_root_ambiguous,
        LinkKind::RootTimeout => &stats.trace_links_root_timeout,
        LinkKind::RootFull => &stats.trace_links_root_full,
    });
}
