//! The evidence for connected traces, collected by the tracker from kernel
//! events only: which thread read or wrote each request's first bytes, the
//! server requests in flight on each thread, each exchange's place on its
//! connection, and which connections the agent sees from both ends.
//!
//! A server request is in flight on the thread that read its first bytes
//! until its exchange is emitted (its response's last byte). A client request
//! written by a thread with exactly one server request in flight names that
//! request as its parent; with more (an event loop serving several, an
//! HTTP/2 server connection) the evidence is ambiguous. A process seen to
//! move an exchange between threads (its response read or written by another
//! thread than its request: goroutines, async runtimes, reader threads) gives
//! no thread evidence at all from then on: there, a thread serving one
//! request may be writing for another.
//!
//! A thread started for a request is no evidence: its client requests name
//! no parent (a root, `root`), whoever started it. The kernel shows which
//! thread created which (`sched:sched_process_fork`) and when each exits,
//! but not where a thread takes its work from, and no pattern of those
//! events tells a thread started for one call from a pool thread that
//! takes any request's work from a shared queue: a pool grown lazily from
//! the serving threads (`ThreadPoolExecutor`, `concurrent.futures`) starts
//! its threads from the thread serving request R, during R, and a pool
//! with no keep-alive (Java's `ThreadPoolExecutor` with a core size of 0
//! and a keep-alive of 0) has such a thread take queued work of another
//! request R', call out for it, and exit at once when the queue is empty —
//! its whole life inside R, exactly like a thread started and joined for
//! R's own call. Linking that call to R would be a wrong link, so none is
//! made (`integration/tests/connected_traces.rs`: a thread started and
//! joined per call, and a lazily grown pool under 40 concurrent requests,
//! give roots and no wrong link).

use std::collections::VecDeque;
use std::net::SocketAddr;

use bpf_probes::events::Role;
use protocols::Side;
use rustc_hash::{FxHashMap, FxHashSet};
use semconv::model::{Candidate, L7Protocol, LinkEvidence, Position, ServerRequest};

use crate::track::assemble::Parsed;
use crate::track::connection::Conn;

/// Request-side marks kept per client connection (oldest dropped first; a
/// request whose mark was dropped gets no thread evidence).
const MAX_MARKS: usize = 32;
/// HTTP/1 requests tracked in flight per server connection (pipelined ones).
const MAX_SERVING: usize = 8;

/// The thread state behind a request-side write: (kernel ns, tid, what the
/// thread was serving), recorded when it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mark {
    ts: u64,
    tid: u32,
    serving: Candidate<ServerRequest>,
}

/// Per connection: what the tracker knows for linking.
#[derive(Debug, Default)]
pub(crate) struct ConnLinks {
    /// HTTP/1 server connection: the requests in flight, oldest first
    /// (tid and kernel ns of their first bytes).
    serving: Vec<(u32, u64)>,
    /// Response bytes were sent since the last request in `serving` began:
    /// request bytes now begin another request (pipelined), or are the
    /// rest of a body answered early; either way they are in flight.
    answering: bool,
    /// HTTP/2 server connection: the threads that read it.
    h2_threads: Vec<u32>,
    /// Client connection: request-side marks.
    marks: VecDeque<Mark>,
    /// Exchanges emitted so far (the next one's order).
    emitted: u64,
    /// Bytes were lost on the connection: order is no longer evidence.
    order_broken: bool,
    /// In the address index.
    indexed: bool,
    /// The thread of the last response-side bytes.
    answer_tid: u32,
}

/// What one thread is doing, as far as linking cares.
#[derive(Debug, Default)]
struct ThreadState {
    /// HTTP/1 server requests whose first bytes it read, not yet answered.
    serving: Vec<ServerRequest>,
    /// HTTP/2 server connections it read (ambiguous while they live).
    h2: u32,
}

/// How long a closed client connection still names the client end of its
/// server's exchanges: the server's last response event may come after the
/// client's close (the client read it and closed first).
const CLOSED_CLIENT_KEPT_NS: u64 = 10_000_000_000;

/// A client connection by its addresses: id, and when it closed (kernel ns).
#[derive(Clone, Copy, Debug)]
struct ClientEnd {
    id: u64,
    closed_ns: Option<u64>,
}

/// Connections by their addresses (local, remote).
#[derive(Debug, Default)]
struct Ends {
    clients: Vec<ClientEnd>,
    servers: Vec<u64>,
}

/// The tracker's linking evidence across connections and threads.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    threads: FxHashMap<(u32, u32), ThreadState>,
    ends: FxHashMap<(SocketAddr, SocketAddr), Ends>,
    /// Closed client connections still in `ends`, oldest first.
    closed_clients: VecDeque<(u64, (SocketAddr, SocketAddr), u64)>,
    /// Processes seen moving an exchange between threads.
    migrating: FxHashSet<u32>,
}

/// Processes remembered as moving exchanges between threads (forgotten at
/// exit; all of them past this many, which only costs links).
const MAX_MIGRATING: usize = 65_536;

impl Evidence {
    /// A connection was announced: index its addresses when its role is
    /// known from the kernel and all its bytes will be seen.
    pub(crate) fn opened(&mut self, conn: &mut Conn) {
        if conn.adopted || conn.filtered || conn.role == Role::Unknown {
            return;
        }
        let e = &conn.connection.endpoints;
        let ends = self.ends.entry((e.local, e.remote)).or_default();
        match conn.role {
            Role::Client => ends.clients.push(ClientEnd {
                id: conn.connection.id,
                closed_ns: None,
            }),
            _ => ends.servers.push(conn.connection.id),
        }
        conn.links.indexed = true;
    }

    /// Bytes of one side of `conn`, read or written by thread `tid` at
    /// kernel time `ts`.
    pub(crate) fn bytes(&mut self, conn: &mut Conn, side: Side, tid: u32, ts: u64) {
        let key = (conn.pid, tid);
        match (conn.role, side) {
            (Role::Server, Side::Response) => {
                conn.links.answering = !conn.links.serving.is_empty();
                conn.links.answer_tid = tid;
            }
            (Role::Client, Side::Response) => conn.links.answer_tid = tid,
            (Role::Server, Side::Request) if conn.connection.protocol == L7Protocol::Http2 => {
                self.h2_read(conn, tid);
            }
            (Role::Server, Side::Request) => {
                let links = &mut conn.links;
                if !links.serving.is_empty() && !links.answering {
                    return;
                }
                links.answering = false;
                links.serving.push((tid, ts));
                self.threads
                    .entry(key)
                    .or_default()
                    .serving
                    .push(ServerRequest {
                        connection: conn.connection.id,
                        start_ns: ts,
                    });
                if links.serving.len() > MAX_SERVING {
                    let (tid, start) = links.serving.remove(0);
                    self.stop_serving(conn.pid, tid, conn.connection.id, start);
                }
            }
            (Role::Client, Side::Request) => {
                let serving = match self.threads.get(&key) {
                    _ if self.migrating.contains(&conn.pid) => Candidate::Ambiguous,
                    None => Candidate::None,
                    Some(t) => match (t.h2, t.serving.as_slice()) {
                        (0, []) => Candidate::None,
                        (0, [one]) => Candidate::One(*one),
                        _ => Candidate::Ambiguous,
                    },
                };
                let marks = &mut conn.links.marks;
                if marks
                    .back()
                    .is_some_and(|m| m.tid == tid && m.serving == serving)
                {
                    return;
                }
                marks.push_back(Mark { ts, tid, serving });
                if marks.len() > MAX_MARKS {
                    marks.pop_front();
                }
            }
            _ => {}
        }
    }

    /// An HTTP/2 server connection read by `tid`: its streams make the
    /// thread ambiguous while the connection lives.
    fn h2_read(&mut self, conn: &mut Conn, tid: u32) {
        if !conn.links.h2_threads.contains(&tid) {
            conn.links.h2_threads.push(tid);
            self.threads.entry((conn.pid, tid)).or_default().h2 += 1;
        }
    }

    /// The evidence of an exchange `conn` emits now (called in emission
    /// order, for every parsed exchange).
    pub(crate) fn exchange(&mut self, conn: &mut Conn, ex: &Parsed) -> LinkEvidence {
        let (request_ns, gap, stream) = match ex {
            Parsed::Http1(e) => (e.request.as_ref().map_or(0, |r| r.start_ns), e.gap, None),
            Parsed::Http2(e) => (
                e.request.as_ref().map_or(0, |r| r.start_ns),
                e.gap,
                Some(e.stream_id),
            ),
        };
        let links = &mut conn.links;
        let position = match stream {
            Some(id) => (!gap && !conn.adopted).then_some(Position::Stream(id)),
            None => {
                let order = links.emitted;
                links.emitted += 1;
                // Bytes lost anywhere on the connection so far may have held
                // whole requests the parser never saw (it resynchronises on
                // the next request line without flagging the exchange).
                links.order_broken |= gap || conn.adopted || conn.gap_bytes > 0;
                (!links.order_broken).then_some(Position::Order(order))
            }
        };
        let mut ev = LinkEvidence {
            request_ns,
            position,
            ..Default::default()
        };
        match conn.role {
            Role::Server => {
                if request_ns != 0 {
                    // Answered now; older ones were lost in a gap or were
                    // the rest of a body.
                    let done = links
                        .serving
                        .iter()
                        .take_while(|s| s.1 <= request_ns)
                        .count();
                    let (pid, id) = (conn.pid, conn.connection.id);
                    for (tid, start) in links.serving.drain(..done) {
                        self.stop_serving(pid, tid, id, start);
                        if start == request_ns {
                            ev.tid = tid;
                        }
                    }
                    if links.serving.is_empty() {
                        links.answering = false;
                    }
                }
                self.moved(conn.pid, ev.tid, conn.links.answer_tid);
                ev.peer = self.peer(conn);
            }
            Role::Client if request_ns != 0 => {
                let marks = &mut conn.links.marks;
                let at = marks.iter().rposition(|m| m.ts <= request_ns);
                match at.and_then(|i| marks.get(i).copied()) {
                    Some(m) => {
                        ev.tid = m.tid;
                        ev.serving = m.serving;
                    }
                    // The mark was dropped: unknown is not "none".
                    None if !marks.is_empty() => ev.serving = Candidate::Ambiguous,
                    None => {}
                }
                // HTTP/1 requests come in order: older marks are done with.
                if let (Some(i), None) = (at, stream) {
                    marks.drain(..i);
                }
                if self.moved(conn.pid, ev.tid, conn.links.answer_tid) {
                    ev.serving = Candidate::Ambiguous;
                }
            }
            _ => {}
        }
        ev
    }

    /// True (and the process marked) when an exchange's request and response
    /// were read or written by different threads.
    fn moved(&mut self, pid: u32, request_tid: u32, answer_tid: u32) -> bool {
        let moved = request_tid != 0 && answer_tid != 0 && request_tid != answer_tid;
        if moved && self.migrating.insert(pid) && self.migrating.len() > MAX_MIGRATING {
            self.migrating.clear();
        }
        moved
    }

    /// The process exited: its pid may name another program later.
    pub(crate) fn process_exit(&mut self, pid: u32) {
        self.migrating.remove(&pid);
    }

    /// The connection is finished at kernel time `ts`: forget it everywhere
    /// (a client connection after a while: its server may still be
    /// answering its last request).
    pub(crate) fn closed(&mut self, conn: &Conn, ts: u64) {
        let id = conn.connection.id;
        for &(tid, start) in &conn.links.serving {
            self.stop_serving(conn.pid, tid, id, start);
        }
        for &tid in &conn.links.h2_threads {
            if let Some(t) = self.threads.get_mut(&(conn.pid, tid)) {
                t.h2 = t.h2.saturating_sub(1);
                if t.h2 == 0 && t.serving.is_empty() {
                    self.threads.remove(&(conn.pid, tid));
                }
            }
        }
        if conn.links.indexed {
            let e = &conn.connection.endpoints;
            let key = (e.local, e.remote);
            if conn.role == Role::Client {
                if let Some(c) = self
                    .ends
                    .get_mut(&key)
                    .and_then(|ends| ends.clients.iter_mut().find(|c| c.id == id))
                {
                    c.closed_ns = Some(ts);
                    self.closed_clients.push_back((ts, key, id));
                }
            } else {
                self.unindex(key, id);
            }
        }
        while let Some(&(at, key, id)) = self.closed_clients.front() {
            if at.saturating_add(CLOSED_CLIENT_KEPT_NS) > ts {
                break;
            }
            self.closed_clients.pop_front();
            self.unindex(key, id);
        }
    }

    fn unindex(&mut self, key: (SocketAddr, SocketAddr), id: u64) {
        if let Some(ends) = self.ends.get_mut(&key) {
            ends.clients.retain(|c| c.id != id);
            ends.servers.retain(|&c| c != id);
            if ends.clients.is_empty() && ends.servers.is_empty() {
                self.ends.remove(&key);
            }
        }
    }

    /// Threads with linking state (tests).
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        self.threads.len()
    }

    fn stop_serving(&mut self, pid: u32, tid: u32, connection: u64, start_ns: u64) {
        let key = (pid, tid);
        if let Some(t) = self.threads.get_mut(&key) {
            t.serving
                .retain(|s| !(s.connection == connection && s.start_ns == start_ns));
            if t.serving.is_empty() && t.h2 == 0 {
                self.threads.remove(&key);
            }
        }
    }

    /// The client end of a server connection, when the agent sees it: the
    /// only client connection with the mirrored addresses that was still open
    /// when this one was accepted (a closed one's addresses can be reused
    /// only after it closed), and this the only server connection with its
    /// own (two network namespaces may reuse the same addresses: then the
    /// evidence is ambiguous).
    fn peer(&self, conn: &Conn) -> Candidate<u64> {
        if !conn.links.indexed {
            return Candidate::None;
        }
        let e = &conn.connection.endpoints;
        let Some(mirrored) = self.ends.get(&(e.remote, e.local)) else {
            return Candidate::None;
        };
        let mut open_then = mirrored
            .clients
            .iter()
            .filter(|c| c.closed_ns.is_none_or(|t| t >= conn.opened_ns));
        let own_alone = self
            .ends
            .get(&(e.local, e.remote))
            .is_some_and(|own| own.servers.len() == 1 && own.clients.is_empty());
        match (open_then.next(), open_then.next()) {
            (None, _) => Candidate::None,
            (Some(one), None) if own_alone => Candidate::One(one.id),
            _ => Candidate::Ambiguous,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bpf_probes::events::{
        ConnCloseEvent, ConnOpenEvent, DataEventHeader, Direction as KDirection, Event,
        EventHeader, EventKind, L7Hint,
    };
    use otel_agent_config::Settings;
    use semconv::model::{Exchange, Output};

    use super::*;
    use crate::internal_events::CaptureStats;
    use crate::track::clock::Clock;
    use crate::track::tracker::Tracker;

    const PID: u32 = 4242;

    fn tracker() -> Tracker {
        Tracker::with_system(
            Arc::new(Settings::default()),
            Clock::with_offset(0),
            Arc::new(CaptureStats::default()),
            Arc::new(crate::track::process::NoSystem),
        )
    }

    fn hdr(kind: EventKind, conn: u64, tid: u32, ts: u64) -> EventHeader {
        EventHeader {
            conn_id: conn,
            timestamp_ns: ts,
            kind: kind as u32,
            tgid: PID,
            tid,
            fd: conn as u32,
        }
    }

    /// Connection `conn` opened at `ts` with `role`, from local port `sport`
    /// to remote port `dport` on 127.0.0.1.
    fn open(t: &mut Tracker, conn: u64, role: Role, sport: u16, dport: u16, ts: u64) {
        let mut ev = ConnOpenEvent {
            hdr: hdr(EventKind::ConnOpen, conn, 1, ts),
            opened_ns: ts,
            family: 2,
            ..Default::default()
        };
        ev.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        ev.daddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        ev.sport = sport;
        ev.dport = dport;
        ev.role = role as u8;
        ev.l7 = L7Hint::Http1 as u8;
        t.handle(Event::ConnOpen(ev), &mut Vec::new());
    }

    /// Bytes on `conn` by thread `tid` at `ts`; the exchanges they finish.
    #[allow(clippy::too_many_arguments)]
    fn data(
        t: &mut Tracker,
        conn: u64,
        dir: KDirection,
        offset: u64,
        bytes: &[u8],
        tid: u32,
        ts: u64,
    ) -> Vec<Exchange> {
        let n = bytes.len() as u32;
        let h = DataEventHeader {
            hdr: hdr(EventKind::Data, conn, tid, ts),
            offset,
            len: n,
            captured: n,
            direction: dir as u8,
            ..Default::default()
        };
        let mut out = Vec::new();
        t.handle(Event::Data(h, bytes), &mut out);
        exchanges(out)
    }

    fn close(t: &mut Tracker, conn: u64, ts: u64) -> Vec<Exchange> {
        let ev = ConnCloseEvent {
            hdr: hdr(EventKind::ConnClose, conn, 1, ts),
            reason: 1,
            ..Default::default()
        };
        let mut out = Vec::new();
        t.handle(Event::ConnClose(ev), &mut out);
        exchanges(out)
    }

    fn exchanges(out: Vec<Output>) -> Vec<Exchange> {
        out.into_iter()
            .filter_map(|o| match o {
                Output::Exchange(e) => Some(*e),
                Output::Report(_) => None,
            })
            .collect()
    }

    const REQ: &[u8] = b"GET /x HTTP/1.1\r\nHost: svc\r\n\r\n";
    const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    use KDirection::{Egress as Out, Ingress as In};

    fn one(v: Vec<Exchange>) -> Exchange {
        assert_eq!(v.len(), 1, "{v:?}");
        v.into_iter().next().expect("one")
    }

    #[test]
    fn a_client_request_written_by_the_serving_thread_names_that_request() {
        let mut t = tracker();
        open(&mut t, 1, Role::Server, 8080, 40_000, 10);
        open(&mut t, 2, Role::Client, 40_001, 9090, 20);
        assert!(data(&mut t, 1, In, 0, REQ, 10, 100).is_empty());
        assert!(data(&mut t, 2, Out, 0, REQ, 10, 200).is_empty());
        let c = one(data(&mut t, 2, In, 0, RESP, 10, 300));
        assert_eq!(
            c.link,
            LinkEvidence {
                request_ns: 200,
                tid: 10,
                position: Some(Position::Order(0)),
                serving: Candidate::One(ServerRequest {
                    connection: 1,
                    start_ns: 100
                }),
                peer: Candidate::None,
            }
        );
        let s = one(data(&mut t, 1, Out, 0, RESP, 10, 400));
        assert_eq!((s.link.request_ns, s.link.tid), (100, 10));
        // Answered: the thread serves nothing now.
        assert_eq!(t.link_threads(), 0);
        assert!(data(&mut t, 2, Out, REQ.len() as u64, REQ, 10, 500).is_empty());
        let c = one(data(&mut t, 2, In, RESP.len() as u64, RESP, 10, 600));
        assert_eq!(c.link.serving, Candidate::None);
        assert_eq!(c.link.position, Some(Position::Order(1)));
    }

    #[test]
    fn another_thread_or_two_requests_in_flight_name_no_parent() {
        let mut t = tracker();
        open(&mut t, 1, Role::Server, 8080, 40_000, 10);
        open(&mut t, 3, Role::Server, 8080, 40_002, 11);
        open(&mut t, 2, Role::Client, 40_001, 9090, 20);
        data(&mut t, 1, In, 0, REQ, 10, 100);
        // Thread 11 writes: it serves nothing.
        data(&mut t, 2, Out, 0, REQ, 11, 150);
        let c = one(data(&mut t, 2, In, 0, RESP, 11, 160));
        assert_eq!((c.link.tid, c.link.serving), (11, Candidate::None));
        // Thread 10 reads a second request: an event loop.
        data(&mut t, 3, In, 0, REQ, 10, 170);
        data(&mut t, 2, Out, REQ.len() as u64, REQ, 10, 200);
        let c = one(data(&mut t, 2, In, RESP.len() as u64, RESP, 10, 300));
        assert_eq!(c.link.serving, Candidate::Ambiguous);
    }

    #[test]
    fn a_process_that_moves_exchanges_between_threads_gives_no_thread_evidence() {
        let mut t = tracker();
        open(&mut t, 1, Role::Server, 8080, 40_000, 10);
        open(&mut t, 2, Role::Client, 40_001, 9090, 20);
        data(&mut t, 1, In, 0, REQ, 10, 100);
        data(&mut t, 2, Out, 0, REQ, 10, 200);
        // The response is read by another thread (a goroutine resumed elsewhere).
        let c = one(data(&mut t, 2, In, 0, RESP, 11, 300));
        assert_eq!(c.link.serving, Candidate::Ambiguous);
        data(&mut t, 1, Out, 0, RESP, 10, 400);
        // From now on, no thread of the process is evidence.
        data(&mut t, 1, In, REQ.len() as u64, REQ, 10, 500);
        data(&mut t, 2, Out, REQ.len() as u64, REQ, 10, 600);
        let c = one(data(&mut t, 2, In, RESP.len() as u64, RESP, 10, 700));
        assert_eq!(c.link.serving, Candidate::Ambiguous);
    }

    #[test]
    fn both_ends_of_a_connection_name_each_other_by_place_until_a_gap() {
        let mut t = tracker();
        open(&mut t, 5, Role::Client, 40_000, 8080, 10);
        open(&mut t, 6, Role::Server, 8080, 40_000, 11);
        let mut at = [0u64; 4];
        let mut round = |t: &mut Tracker, ts: u64| {
            data(t, 5, Out, at[0], REQ, 1, ts);
            data(t, 6, In, at[1], REQ, 2, ts + 1);
            let s = one(data(t, 6, Out, at[2], RESP, 2, ts + 2));
            let c = one(data(t, 5, In, at[3], RESP, 1, ts + 3));
            at = [
                at[0] + REQ.len() as u64,
                at[1] + REQ.len() as u64,
                at[2] + RESP.len() as u64,
                at[3] + RESP.len() as u64,
            ];
            (s, c)
        };
        for n in 0..2 {
            let (s, c) = round(&mut t, 100 * (n + 1));
            assert_eq!(s.link.peer, Candidate::One(5));
            assert_eq!(s.link.position, Some(Position::Order(n)));
            assert_eq!(c.link.position, Some(Position::Order(n)));
        }
        // Bytes lost on the server's side: its order is no evidence any more.
        let lost = 7;
        data(&mut t, 5, Out, at[0], REQ, 1, 300);
        data(&mut t, 6, In, at[1] + lost, REQ, 2, 301);
        let s = data(&mut t, 6, Out, at[2], RESP, 2, 302);
        assert!(s.iter().all(|s| s.link.position.is_none()), "{s:?}");
    }

    #[test]
    fn a_closed_client_still_names_its_server_exchange_but_not_a_later_connection() {
        let mut t = tracker();
        open(&mut t, 5, Role::Client, 40_000, 8080, 10);
        open(&mut t, 6, Role::Server, 8080, 40_000, 11);
        data(&mut t, 5, Out, 0, REQ, 1, 100);
        data(&mut t, 6, In, 0, REQ, 2, 101);
        // The client read the response and closed before the server's write
        // event arrived.
        close(&mut t, 5, 103);
        let s = one(data(&mut t, 6, Out, 0, RESP, 2, 102));
        assert_eq!(s.link.peer, Candidate::One(5));
        close(&mut t, 6, 104);
        // The addresses reused by a new pair: the old client is not its end.
        open(&mut t, 7, Role::Client, 40_000, 8080, 200);
        open(&mut t, 8, Role::Server, 8080, 40_000, 201);
        data(&mut t, 8, In, 0, REQ, 2, 300);
        let s = one(data(&mut t, 8, Out, 0, RESP, 2, 301));
        assert_eq!(s.link.peer, Candidate::One(7));
    }
}
