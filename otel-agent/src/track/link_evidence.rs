//! The evidence for connected traces, collected by the tracker from kernel
//! events only: which thread read or wrote each request's first bytes, the
//! server requests in flight on each thread, each exchange's place on its
//! connection, and which connections the agent sees from both ends.
//!
//! A server request is in flight on the thread that read its first bytes
//! until its exchange is emitted (its response's last byte). A client request
//! written by a thread with exactly one server request in flight names that
//! request as its parent; with more (an event loop serving several, an
//! HTTP/2 server connection) the evidence is ambiguous.

use std::collections::VecDeque;
use std::net::SocketAddr;

use bpf_probes::events::Role;
use protocols::Side;
use rustc_hash::FxHashMap;
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
    /// A gap touched an exchange: order is no longer evidence.
    order_broken: bool,
    /// In the address index.
    indexed: bool,
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
}

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
            }
            (Role::Server, Side::Request) if conn.connection.protocol == L7Protocol::Http2 => {
                if !conn.links.h2_threads.contains(&tid) {
                    conn.links.h2_threads.push(tid);
                    self.threads.entry(key).or_default().h2 += 1;
                }
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
                links.order_broken |= gap || conn.adopted;
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
                    let answered: Vec<(u32, u64)> = links.serving.drain(..done).collect();
                    if links.serving.is_empty() {
                        links.answering = false;
                    }
                    for (tid, start) in answered {
                        self.stop_serving(conn.pid, tid, conn.connection.id, start);
                        if start == request_ns {
                            ev.tid = tid;
                        }
                    }
                }
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
            }
            _ => {}
        }
        ev
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

    /// Threads with linking state (for tests and the memory figure).
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
