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

use rustc_hash::{FxHashMap, FxHashSet};
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

impl Key {
    /// The connection the span travelled on.
    fn connection(self) -> u64 {
        match self {
            Key::Server(s) => s.connection,
            Key::Client(c, _) => c,
        }
    }
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
    /// The parent keys waited for, by their connection.
    waiting_by_conn: FxHashMap<u64, Vec<Key>>,
    /// Held spans by their own key.
    held_keys: FxHashMap<Key, u64>,
    /// Connections whose report passed (all their exchanges came before it),
    /// kept `wait`: a parent named on one of them that is neither decided nor
    /// held will not come (its exchange was left out by the capture rules,
    /// or never parsed: its TLS library is not probed).
    reported: FxHashSet<u64>,
    reported_order: VecDeque<(u64, u64)>,
    /// (deadline, held number), in order (the wait is the same for all).
    deadlines: VecDeque<(u64, u64)>,
    next: u64,
    /// Reused: the outputs of one call.
    scratch: Vec<Output>,
    /// Monotonic time of the last [`Linker::expire`].
    expired_at: u64,
}

/// [`Linker::link`] also expires what is due when the last expiry is older
/// than this, so the bounds hold while exchanges keep coming with no pause
/// for the reader's own timer (a reader behind a full ring buffer drains it
/// for seconds on end: the decided spans then grew to 19 MB in 9 s of
/// saturation, heaptrack).
const EXPIRE_EVERY_NS: u64 = 10_000_000;

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
            waiting_by_conn: FxHashMap::default(),
            held_keys: FxHashMap::default(),
            reported: FxHashSet::default(),
            reported_order: VecDeque::new(),
            deadlines: VecDeque::new(),
            next: 0,
            scratch: Vec::new(),
            expired_at: 0,
        }
    }

    /// Spans held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Entries of the linker's waiting bookkeeping (parents waited for, by
    /// key and by connection; held spans by key): 0 when nothing is held.
    pub fn waiting_entries(&self) -> usize {
        self.waiting.len() + self.waiting_by_conn.len() + self.held_keys.len()
    }

    /// Client span ids repeated from a `traceparent` (see
    /// [`IdSource::repeated_client_span_ids`]).
    pub fn repeated_client_span_ids(&self) -> u64 {
        self.ids.repeated_client_span_ids()
    }

    /// Link the exchanges of `out` at monotonic time `now_ns`: each goes
    /// back into `out` with its ids, now or (held) in a later call; reports
    /// and exchanges that have their ids already pass through. Spans held
    /// past their deadline go out first when the last expiry is more than
    /// [`EXPIRE_EVERY_NS`] old.
    pub fn link(&mut self, out: &mut Vec<Output>, now_ns: u64) {
        if out.is_empty() {
            return;
        }
        let mut input = std::mem::take(&mut self.scratch);
        std::mem::swap(&mut input, out);
        if now_ns.saturating_sub(self.expired_at) >= EXPIRE_EVERY_NS {
            self.expire(now_ns, out);
        }
        for o in input.drain(..) {
            match o {
                Output::Exchange(ex) if ex.ids.is_none() => self.exchange(ex, now_ns, out),
                Output::Report(r) => {
                    let id = r.connection.id;
                    out.push(Output::Report(r));
                    self.reported(id, now_ns, out);
                }
                done => out.push(done),
            }
        }
        self.scratch = input;
    }

    /// Send out, as roots, the spans held past their deadline at `now_ns`,
    /// and forget decided spans older than the wait.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<Output>) {
        self.expired_at = now_ns;
        let mut expired = false;
        while let Some(&(deadline, n)) = self.deadlines.front() {
            if deadline > now_ns {
                break;
            }
            self.deadlines.pop_front();
            if let Some(h) = self.held.remove(&n) {
                expired = true;
                if let Some(k) = key_of(&h.ex) {
                    self.held_keys.remove(&k);
                }
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
        while let Some(&(at, id)) = self.reported_order.front() {
            if at.saturating_add(self.bounds.wait_ns) > now_ns
                && self.reported_order.len() <= self.bounds.max_held
            {
                break;
            }
            self.reported_order.pop_front();
            self.reported.remove(&id);
        }
        // Parents that never came: forget who waited for them.
        if expired {
            self.waiting.retain(|_, v| {
                v.retain(|n| self.held.contains_key(n));
                !v.is_empty()
            });
            let waiting = &self.waiting;
            self.waiting_by_conn.retain(|_, keys| {
                keys.retain(|k| waiting.contains_key(k));
                !keys.is_empty()
            });
        }
    }

    /// Nothing waits for `key` any more.
    fn forget_waited(&mut self, key: Key) {
        let conn = key.connection();
        if let Some(keys) = self.waiting_by_conn.get_mut(&conn) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                self.waiting_by_conn.remove(&conn);
            }
        }
    }

    /// Connection `id` is finished: every exchange of it has come. Spans
    /// waiting for one of its exchanges that is neither decided nor held go
    /// out now, as roots.
    fn reported(&mut self, id: u64, now_ns: u64, out: &mut Vec<Output>) {
        if self.reported.insert(id) {
            self.reported_order.push_back((now_ns, id));
        }
        for key in self.waiting_by_conn.remove(&id).unwrap_or_default() {
            if self.held_keys.contains_key(&key) {
                self.waiting_by_conn.entry(id).or_default().push(key);
                continue;
            }
            for n in self.waiting.remove(&key).unwrap_or_default() {
                if let Some(h) = self.held.remove(&n) {
                    if let Some(k) = key_of(&h.ex) {
                        self.held_keys.remove(&k);
                    }
                    self.root(h.ex, LinkKind::Root, now_ns, out);
                }
            }
        }
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
                } else if self.reported.contains(&key.connection())
                    && !self.held_keys.contains_key(&key)
                {
                    // Its connection is finished and the parent never came.
                    self.root(ex, LinkKind::Root, now_ns, out);
                } else if self.held.len() >= self.bounds.max_held {
                    self.root(ex, LinkKind::RootFull, now_ns, out);
                } else {
                    let n = self.next;
                    self.next += 1;
                    if let Some(own) = key_of(&ex) {
                        self.held_keys.insert(own, n);
                    }
                    self.held.insert(n, Held { ex, kind });
                    let waiters = self.waiting.entry(key).or_default();
                    if waiters.is_empty() {
                        self.waiting_by_conn
                            .entry(key.connection())
                            .or_default()
                            .push(key);
                    }
                    waiters.push(n);
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
            let waiters = self.waiting.remove(&key).unwrap_or_default();
            if !waiters.is_empty() {
                self.forget_waited(key);
            }
            for n in waiters {
                let Some(h) = self.held.remove(&n) else {
                    continue;
                };
                if let Some(k) = key_of(&h.ex) {
                    self.held_keys.remove(&k);
                }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use opentelemetry::trace::{SpanId, TraceId};
    use opentelemetry_sdk::trace::IdGenerator;
    use semconv::model::{
        Connection, Direction, Endpoints, L7Protocol, LinkEvidence, ProcessInfo, Request, Response,
    };

    use super::*;

    /// Trace ids count up from 0x100, span ids from 1.
    #[derive(Debug, Default)]
    struct Counting(AtomicU64, AtomicU64);

    impl IdGenerator for Counting {
        fn new_trace_id(&self) -> TraceId {
            TraceId::from(u128::from(self.0.fetch_add(1, Ordering::Relaxed)) + 0x100)
        }
        fn new_span_id(&self) -> SpanId {
            SpanId::from(self.1.fetch_add(1, Ordering::Relaxed) + 1)
        }
    }

    const WAIT: u64 = 1_000;

    fn linker(max_held: usize) -> (Linker, Arc<CaptureStats>) {
        let stats = Arc::new(CaptureStats::default());
        let l = Linker::new(
            LinkBounds {
                wait_ns: WAIT,
                max_held,
            },
            IdSource::new(Box::<Counting>::default()),
            stats.clone(),
        );
        (l, stats)
    }

    /// An exchange on connection `conn` over [start, end] with this evidence.
    fn ex(direction: Direction, conn: u64, start: u64, end: u64, link: LinkEvidence) -> Output {
        Output::Exchange(Box::new(Exchange {
            connection: Connection {
                id: conn,
                process: Arc::new(ProcessInfo::default()),
                direction,
                endpoints: Endpoints {
                    local: "127.0.0.1:1000".parse().unwrap(),
                    remote: "127.0.0.1:2000".parse().unwrap(),
                },
                protocol: L7Protocol::Http1,
                tls: None,
            },
            request: Some(Request {
                method: "GET".into(),
                target: "/".into(),
                ..Default::default()
            }),
            response: Some(Response {
                status: 200,
                ..Default::default()
            }),
            start_unix_ns: start,
            end_unix_ns: end,
            partial: false,
            gap: false,
            gap_causes: Vec::new(),
            http2: None,
            grpc: None,
            link,
            ids: None,
        }))
    }

    fn server(conn: u64, start: u64, end: u64, peer: Candidate<u64>) -> Output {
        let link = LinkEvidence {
            request_ns: start,
            tid: 7,
            position: Some(Position::Order(0)),
            peer,
            ..Default::default()
        };
        ex(Direction::Ingress, conn, start, end, link)
    }

    fn client(conn: u64, start: u64, end: u64, serving: Candidate<ServerRequest>) -> Output {
        let link = LinkEvidence {
            request_ns: start,
            tid: 7,
            position: Some(Position::Order(0)),
            serving,
            ..Default::default()
        };
        ex(Direction::EgressInternal, conn, start, end, link)
    }

    fn serving(conn: u64, start_ns: u64) -> Candidate<ServerRequest> {
        Candidate::One(ServerRequest {
            connection: conn,
            start_ns,
        })
    }

    /// (connection id, trace id, span id, parent span id, link kind) of each out.
    fn ids(out: &[Output]) -> Vec<(u64, u128, u64, Option<u64>, LinkKind)> {
        out.iter()
            .map(|o| {
                let Output::Exchange(e) = o else {
                    panic!("an exchange")
                };
                let i = e.ids.as_ref().expect("ids");
                (
                    e.connection.id,
                    u128::from_be_bytes(i.trace_id),
                    u64::from_be_bytes(i.span_id),
                    i.parent_span_id.map(u64::from_be_bytes),
                    i.link,
                )
            })
            .collect()
    }

    /// curl (conn 1) → A server (conn 2) → A client (conn 3) → B server
    /// (conn 4), arriving children first: nothing goes out until the root
    /// comes, then all four, in one trace, each under its parent.
    #[test]
    fn a_chain_arriving_children_first_is_one_trace() {
        let (mut l, stats) = linker(100);
        let mut out = vec![server(4, 30, 40, Candidate::One(3))];
        l.link(&mut out, 0);
        let mut more = vec![client(3, 25, 45, serving(2, 10))];
        l.link(&mut more, 1);
        out.append(&mut more);
        let mut more = vec![server(2, 10, 50, Candidate::One(1))];
        l.link(&mut more, 2);
        out.append(&mut more);
        assert!(out.is_empty(), "held while the root is unknown");
        assert_eq!(l.held(), 3);
        let mut out = vec![client(1, 5, 55, Candidate::None)];
        l.link(&mut out, 3);
        let mut got = ids(&out);
        got.sort_unstable_by_key(|g| g.0);
        assert_eq!(
            got,
            [
                (1, 0x100, 1, None, LinkKind::Root),
                (2, 0x100, 2, Some(1), LinkKind::Connection),
                (3, 0x100, 3, Some(2), LinkKind::Thread),
                (4, 0x100, 4, Some(3), LinkKind::Connection),
            ]
        );
        assert_eq!((l.held(), l.waiting_entries()), (0, 0));
        let s = stats.snapshot();
        assert_eq!(
            (
                s.trace_links_root,
                s.trace_links_connection,
                s.trace_links_thread
            ),
            (1, 2, 1)
        );
    }

    #[test]
    fn a_parent_decided_first_takes_its_children_at_once() {
        let (mut l, _) = linker(100);
        let mut out = vec![client(1, 5, 55, Candidate::None)];
        l.link(&mut out, 0);
        out.push(server(2, 10, 50, Candidate::One(1)));
        l.link(&mut out, 1);
        assert_eq!(
            ids(&out),
            [
                (1, 0x100, 1, None, LinkKind::Root),
                (2, 0x100, 2, Some(1), LinkKind::Connection),
            ]
        );
    }

    #[test]
    fn a_held_span_goes_out_as_a_root_at_the_deadline_and_its_children_follow_it() {
        let (mut l, stats) = linker(100);
        let mut out = vec![client(3, 25, 45, serving(2, 10))];
        l.link(&mut out, 0);
        out.push(server(4, 30, 40, Candidate::One(3)));
        l.link(&mut out, 10);
        assert!(out.is_empty());
        l.expire(WAIT - 1, &mut out);
        assert!(out.is_empty(), "not before the deadline");
        l.expire(WAIT, &mut out);
        assert_eq!(
            ids(&out),
            [
                (3, 0x100, 1, None, LinkKind::RootTimeout),
                (4, 0x100, 2, Some(1), LinkKind::Connection),
            ]
        );
        assert_eq!(l.held(), 0);
        assert_eq!(stats.snapshot().trace_links_root_timeout, 1);
        // The parent that came too late starts its own trace.
        let mut out = vec![server(2, 10, 50, Candidate::None)];
        l.link(&mut out, WAIT + 1);
        assert_eq!(ids(&out), [(2, 0x101, 3, None, LinkKind::Root)]);
    }

    /// Exchanges that keep coming (a reader that never pauses for its
    /// timer) still see held spans go out at their deadline, and the
    /// decided spans kept for late children stay within the bounds.
    #[test]
    fn linking_alone_expires_what_is_due() {
        let (mut l, stats) = linker(4);
        let mut out = vec![client(3, 25, 45, serving(2, 10))];
        l.link(&mut out, 0);
        assert_eq!(l.held(), 1);
        for i in 0..100u64 {
            let now = EXPIRE_EVERY_NS + i * EXPIRE_EVERY_NS;
            let mut out = vec![client(100 + i, now, now + 1, Candidate::None)];
            l.link(&mut out, now);
            assert!(l.decided.len() <= 4 + 1, "{} decided", l.decided.len());
        }
        assert_eq!(l.held(), 0);
        assert_eq!(stats.snapshot().trace_links_root_timeout, 1);
    }

    #[test]
    fn past_max_held_a_span_goes_out_at_once_as_a_root() {
        let (mut l, stats) = linker(1);
        let mut out = vec![
            client(3, 25, 45, serving(2, 10)),
            client(5, 26, 46, serving(6, 10)),
        ];
        l.link(&mut out, 0);
        assert_eq!(ids(&out), [(5, 0x100, 1, None, LinkKind::RootFull)]);
        assert_eq!(l.held(), 1);
        assert_eq!(stats.snapshot().trace_links_root_full, 1);
        let mut out = Vec::new();
        l.flush(&mut out);
        assert_eq!(ids(&out), [(3, 0x101, 2, None, LinkKind::RootTimeout)]);
    }

    #[test]
    fn a_traceparent_wins_over_the_connection() {
        let (mut l, _) = linker(100);
        let Output::Exchange(mut e) = server(2, 10, 50, Candidate::One(1)) else {
            unreachable!()
        };
        if let Some(r) = e.request.as_mut() {
            r.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        }
        let mut out = vec![Output::Exchange(e)];
        l.link(&mut out, 0);
        assert_eq!(
            ids(&out),
            [(
                2,
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                1,
                Some(0x00f0_67aa_0ba9_02b7),
                LinkKind::Traceparent
            )]
        );
        assert_eq!(l.held(), 0, "nothing waits for the client end");
    }

    #[test]
    fn ambiguous_evidence_leaves_a_root() {
        let (mut l, stats) = linker(100);
        let mut out = vec![
            client(3, 25, 45, Candidate::Ambiguous),
            server(4, 30, 40, Candidate::Ambiguous),
        ];
        l.link(&mut out, 0);
        assert_eq!(
            ids(&out),
            [
                (3, 0x100, 1, None, LinkKind::RootAmbiguous),
                (4, 0x101, 2, None, LinkKind::RootAmbiguous),
            ]
        );
        assert_eq!(stats.snapshot().trace_links_root_ambiguous, 2);
    }

    #[test]
    fn a_thread_link_outside_the_server_exchange_is_refused() {
        let (mut l, _) = linker(100);
        // The client request starts after the server exchange ended.
        let mut out = vec![client(3, 60, 70, serving(2, 10))];
        l.link(&mut out, 0);
        out.push(server(2, 10, 50, Candidate::None));
        l.link(&mut out, 1);
        let mut got = ids(&out);
        got.sort_unstable_by_key(|g| g.0);
        assert_eq!(
            got,
            [
                (2, 0x100, 1, None, LinkKind::Root),
                (3, 0x101, 2, None, LinkKind::RootAmbiguous),
            ]
        );
    }

    /// The report of connection `conn`.
    fn report(conn: u64) -> Output {
        let Output::Exchange(e) = client(conn, 0, 0, Candidate::None) else {
            unreachable!()
        };
        Output::Report(Box::new(semconv::model::ConnectionReport {
            connection: e.connection,
            role: "client",
            endpoint_id: String::new(),
            adopted: false,
            got_protocol_event: false,
            data_events: 0,
            bytes_sent: 0,
            bytes_received: 0,
            exchanges: 0,
            partial_exchanges: 0,
            gap_exchanges: 0,
            parse_errors: 0,
            lost_events: 0,
            truncated_bytes: 0,
            skipped_bytes: 0,
            opened_unix_ns: 0,
            closed_unix_ns: 0,
            close_reason: semconv::model::CloseReason::Close,
        }))
    }

    #[test]
    fn a_parent_whose_connection_ended_without_it_is_not_waited_for() {
        let (mut l, _) = linker(100);
        // B's server span waits for A's client span on connection 3, whose
        // exchange never comes (left out by the capture rules): its report
        // ends the wait at once, not the deadline.
        let mut out = vec![server(4, 30, 40, Candidate::One(3))];
        l.link(&mut out, 0);
        assert!(out.is_empty());
        out.push(report(3));
        l.link(&mut out, 1);
        assert_eq!(ids(&out[1..]), [(4, 0x100, 1, None, LinkKind::Root)]);
        // Arriving after the report, it does not wait either.
        let mut out = vec![server(6, 30, 40, Candidate::One(3))];
        l.link(&mut out, 2);
        assert_eq!(ids(&out), [(6, 0x101, 2, None, LinkKind::Root)]);
        assert_eq!(l.held(), 0);
    }

    #[test]
    fn a_held_parent_keeps_its_children_waiting_past_its_connections_report() {
        let (mut l, _) = linker(100);
        let mut out = vec![
            server(4, 30, 40, Candidate::One(3)),
            client(3, 25, 45, serving(2, 10)),
            report(3),
        ];
        l.link(&mut out, 0);
        assert_eq!(out.len(), 1, "the report only: {out:?}");
        assert_eq!(l.held(), 2);
        let mut out = vec![server(2, 10, 50, Candidate::None)];
        l.link(&mut out, 1);
        let mut got = ids(&out);
        got.sort_unstable_by_key(|g| g.0);
        assert_eq!(
            got,
            [
                (2, 0x100, 1, None, LinkKind::Root),
                (3, 0x100, 2, Some(1), LinkKind::Thread),
                (4, 0x100, 3, Some(2), LinkKind::Connection),
            ]
        );
    }

    #[test]
    fn reports_and_linked_exchanges_pass_through() {
        let (mut l, _) = linker(100);
        let mut out = vec![client(1, 5, 55, Candidate::None)];
        l.link(&mut out, 0);
        let before = ids(&out);
        l.link(&mut out, 1);
        assert_eq!(ids(&out), before, "ids are given once");
    }
}
