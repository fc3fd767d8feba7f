//! Connection tracking: kernel events in, exchanges and connection reports out.
//!
//! One [`Tracker`] owns every live connection: its process, addresses, role,
//! protocol, parser state and counters. Data events are checked against the
//! expected stream offset per direction, so bytes lost in the kernel become
//! explicit gaps for the parser instead of silent corruption.

use rustc_hash::FxHashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bpf_probes::events::{
    self, CloseReason as KCloseReason, ConnCloseEvent, ConnOpenEvent, DataEventHeader,
    Direction as KDirection, Event, EventHeader, L7Hint, Role, Source, SyscallId,
};
use otel_agent_config::Settings;
use semconv::model::{
    CloseReason, Connection, ConnectionReport, Endpoints, L7Protocol, Output, ProcessInfo,
};
use tracing::{debug, trace};

use crate::internal_events::{add, incr, CaptureStats};
use crate::track::assemble::{self, Parsed};
use crate::track::clock::Clock;
use crate::track::connection::{direction_of, endpoints_of, l7_of, Conn, KernelTotals};
use crate::track::link_evidence::Evidence;
use crate::track::parser::{Parser, ParserLimits};
use crate::track::process::{comm_str, ProcFs, ProcessCache, SystemView};
use crate::track::skip::{self, SkipMarks};
use crate::track::tls::{infer_alpn, note_probe, tls_bytes};
use crate::track::trace_events::{Module, TraceFilter};
use protocols::{GapCause, Side};

/// Tracks connections and turns their bytes into outputs.
pub struct Tracker {
    /// By the kernel's connection id: looked up for every record, and the ids
    /// are sequential numbers from the kernel, not chosen by peers, so a fast
    /// non-keyed hash is safe here.
    conns: FxHashMap<u64, Conn>,
    execs: Option<std::sync::mpsc::SyncSender<u32>>,
    trace: Option<TraceFilter>,
    procs: ProcessCache,
    clock: Clock,
    /// What every parser may keep, derived from `settings` once.
    limits: ParserLimits,
    settings: Arc<Settings>,
    stats: Arc<CaptureStats>,
    /// The kernel's body-skip marks; `None`: every byte is copied.
    marks: Option<Box<dyn SkipMarks>>,
    /// Threads, addresses and places for connected traces.
    evidence: Evidence,
    /// Exchanges a parser finished, on their way out (reused).
    parsed: Vec<Parsed>,
}

/// A new data event placed on its stream: the bytes lost before it and why,
/// and the bytes of its own tail the kernel did not copy and why.
struct Placed {
    lost: u64,
    lost_cause: GapCause,
    missing_tail: u64,
    tail_cause: GapCause,
    /// Bytes after the payload that the kernel skipped on purpose: all the
    /// event covers (`DATA_FLAG_SKIPPED`, no payload), or its tail
    /// (`DATA_FLAG_SKIPPED_TAIL`).
    skipped: u64,
}

impl Tracker {
    /// A tracker with the given settings, sharing `stats`, reading `/proc`.
    pub fn new(settings: Arc<Settings>, clock: Clock, stats: Arc<CaptureStats>) -> Self {
        Self::with_system(settings, clock, stats, Arc::new(ProcFs))
    }

    /// A tracker that reads the running system through `system` (replays
    /// and tests pass [`crate::track::process::NoSystem`]).
    pub fn with_system(
        settings: Arc<Settings>,
        clock: Clock,
        stats: Arc<CaptureStats>,
        system: Arc<dyn SystemView>,
    ) -> Self {
        Self {
            conns: FxHashMap::default(),
            execs: None,
            trace: None,
            procs: ProcessCache::new(system, Some(settings.clone())),
            clock,
            limits: ParserLimits::of(&settings),
            settings,
            stats,
            marks: None,
            evidence: Evidence::default(),
            parsed: Vec::new(),
        }
    }

    /// Tell the kernel, through `marks`, which body bytes it need not copy
    /// (see [`crate::track::skip`]).
    pub fn skip_bodies(&mut self, marks: Box<dyn SkipMarks>) {
        self.marks = Some(marks);
    }

    /// Log every decision for the processes `filter` selects (`--trace-events`).
    pub fn trace_events(&mut self, filter: TraceFilter) {
        self.trace = Some(filter);
    }

    fn traced_modules(&self, p: &ProcessInfo) -> Vec<Module> {
        let Some(f) = &self.trace else {
            return Vec::new();
        };
        [Module::Socket, Module::Tls, Module::Http]
            .into_iter()
            .filter(|&m| f.selects(p, m))
            .collect()
    }

    /// Send the pid of every exec'd process here (TLS library discovery).
    pub fn notify_execs(&mut self, tx: std::sync::mpsc::SyncSender<u32>) {
        self.execs = Some(tx);
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Threads with connected-traces state (tests).
    #[cfg(test)]
    pub(crate) fn link_threads(&self) -> usize {
        self.evidence.threads()
    }

    /// True when no connection is live.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Decode and handle one ring-buffer record.
    pub fn handle_record(&mut self, record: &[u8], out: &mut Vec<Output>) {
        incr(&self.stats.records_read);
        match events::decode(record) {
            Ok(ev) => self.handle(ev, out),
            Err(e) => {
                incr(&self.stats.decode_errors);
                debug!(error = %e, len = record.len(), "undecodable record");
            }
        }
    }

    /// Handle one decoded event.
    pub fn handle(&mut self, ev: Event<'_>, out: &mut Vec<Output>) {
        match ev {
            Event::ConnOpen(open) => self.open(&open),
            Event::Data(h, payload) => self.data(&h, payload, out),
            Event::ConnClose(close) => self.close(&close, out),
            Event::ProcExit(h) => self.process_exit(&h, out),
            Event::ProcExec(exec) => {
                // A new image: the cached identity is stale, and it may bring TLS
                // code. Take the new identity now, from /proc while the process
                // lives, else from the event (a short-lived client may be gone).
                self.procs.exec(&exec);
                if let Some(tx) = &self.execs {
                    let _ = tx.try_send(exec.hdr.tgid);
                }
            }
        }
    }

    fn open(&mut self, ev: &ConnOpenEvent) {
        let comm = comm_str(&ev.comm);
        let process = self.procs.get(ev.hdr.tgid, &comm);
        let role = Role::from_raw(ev.role).unwrap_or(Role::Unknown);
        let endpoints = endpoints_of(ev);
        let filtered = !connection_allowed(&self.settings, &process, role, &endpoints);
        let protocol = match L7Hint::from_raw(ev.l7) {
            Some(L7Hint::Http1) => L7Protocol::Http1,
            Some(L7Hint::Http2) => L7Protocol::Http2,
            Some(L7Hint::Other) => L7Protocol::Other,
            _ => L7Protocol::Unknown,
        };
        let tls = (L7Hint::from_raw(ev.l7) == Some(L7Hint::Tls)).then(Default::default);
        incr(&self.stats.connections);
        if filtered {
            incr(&self.stats.connections_filtered);
        }
        let traced = self.traced_modules(&process);
        let connection = Connection {
            id: ev.hdr.conn_id,
            process,
            direction: direction_of(role, &endpoints),
            endpoints,
            protocol,
            tls,
        };
        let adopted = ev.flags & events::CONN_FLAG_ADOPTED != 0;
        let mut conn = Conn::new(
            connection,
            ev.hdr.tgid,
            ev.hdr.fd,
            role,
            adopted,
            ev.opened_ns,
            filtered,
            traced,
        );
        conn.last_ns = ev.hdr.timestamp_ns;
        let c = &conn.connection;
        tev!(conn, Socket, fd = conn.fd, role = conn.role_name(), local = %c.endpoints.local,
            remote = %c.endpoints.remote, kernel_l7 = ev.l7, adopted = conn.adopted, filtered,
            "connection announced");
        debug!(
            conn = c.id, pid = conn.pid, fd = conn.fd, exe = %c.process.exe,
            role = conn.role_name(), local = %c.endpoints.local, remote = %c.endpoints.remote,
            l7 = protocol.as_str(), adopted = conn.adopted, filtered, "socket connection"
        );
        count_protocol(&self.stats, protocol);
        self.evidence.opened(&mut conn);
        self.conns.insert(conn.connection.id, conn);
    }

    /// A connection whose open event we never saw (lost): track it with what the data event says.
    fn placeholder(&mut self, h: &EventHeader) -> Conn {
        let process = self.procs.get(h.tgid, "");
        let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let endpoints = Endpoints {
            local: unspecified,
            remote: unspecified,
        };
        let filter = &self.settings.filter;
        let filtered = !filter.process_allowed(process.pid, &process.exe, &process.comm);
        let connection = Connection {
            id: h.conn_id,
            process,
            direction: direction_of(Role::Unknown, &endpoints),
            endpoints,
            protocol: L7Protocol::Unknown,
            tls: None,
        };
        Conn::new(
            connection,
            h.tgid,
            h.fd,
            Role::Unknown,
            true,
            h.timestamp_ns,
            filtered,
            Vec::new(),
        )
    }

    /// One data event: new bytes of one direction of one stream go, in
    /// stream order and with the gaps before and inside them, to the
    /// connection's parser; what it finishes is emitted.
    fn data(&mut self, h: &DataEventHeader, payload: &[u8], out: &mut Vec<Output>) {
        incr(&self.stats.data_events);
        add(&self.stats.bytes_captured, payload.len() as u64);
        if !self.conns.contains_key(&h.hdr.conn_id) {
            let c = self.placeholder(&h.hdr);
            self.conns.insert(c.connection.id, c);
        }
        let Some(conn) = self.conns.get_mut(&h.hdr.conn_id) else {
            return;
        };
        conn.data_events += 1;
        conn.last_ns = h.hdr.timestamp_ns;
        let Some(dir) = KDirection::from_raw(h.direction) else {
            return;
        };
        log_data_event(conn, h, dir);
        if conn.filtered {
            tev!(conn, Socket, "skipped: process excluded by the exe filter");
            if let Some(marks) = self.marks.as_deref_mut() {
                skip::ignore(conn, marks);
            }
            return;
        }
        if h.flags & events::DATA_FLAG_RAW_TLS != 0 {
            tev!(conn, Tls, "raw TLS record bytes: to the handshake parser");
            tls_bytes(conn, dir, payload);
            return;
        }
        let Some(placed) = place(conn, h, dir, &self.stats) else {
            return;
        };
        let Some(side) = http_side(conn, dir, payload, self.procs.system(), &self.stats) else {
            return;
        };
        tev!(conn, Http, side = ?side, bytes = payload.len(), missing = placed.missing_tail,
            l7 = conn.connection.protocol.as_str(), "to the parser");
        self.evidence
            .bytes(conn, side, h.hdr.tid, h.hdr.timestamp_ns);
        feed(
            conn,
            side,
            h.hdr.timestamp_ns,
            payload,
            &placed,
            self.limits,
            &self.stats,
        );
        if let Some(parser) = conn.parser.as_mut() {
            parser.drain_into(&mut self.parsed);
        }
        let ctx = (&*self.settings, &self.clock, &*self.stats);
        emit(conn, &mut self.parsed, ctx, &mut self.evidence, out);
        if let Some(marks) = self.marks.as_deref_mut() {
            let keeps_no_body = self.limits.max_body_capture == 0;
            if skip::update(conn, dir, keeps_no_body, marks) {
                tev!(conn, Http, dir = ?dir, until = conn.skip.until[dir as usize],
                    flags = conn.skip.flags, "body not kept: the kernel may skip it");
                incr(&self.stats.skip_marks);
            }
        }
    }

    fn close(&mut self, ev: &ConnCloseEvent, out: &mut Vec<Output>) {
        let Some(conn) = self.conns.remove(&ev.hdr.conn_id) else {
            return;
        };
        let reason = match KCloseReason::from_raw(ev.reason) {
            Some(KCloseReason::ProcessExit) => CloseReason::ProcessExit,
            _ => CloseReason::Close,
        };
        let kernel = KernelTotals {
            bytes_sent: ev.bytes_sent,
            bytes_received: ev.bytes_received,
            plain_sent: ev.plain_sent,
            plain_received: ev.plain_received,
            lost_events: u64::from(ev.lost_events),
            truncated_bytes: ev.truncated_bytes,
        };
        self.finish(conn, ev.hdr.timestamp_ns, reason, Some(kernel), out);
    }

    fn process_exit(&mut self, h: &EventHeader, out: &mut Vec<Output>) {
        self.procs.forget(h.tgid);
        self.evidence.process_exit(h.tgid);
        let ids: Vec<u64> = self
            .conns
            .values()
            .filter(|c| c.pid == h.tgid)
            .map(|c| c.connection.id)
            .collect();
        for id in ids {
            if let Some(conn) = self.conns.remove(&id) {
                self.finish(conn, h.timestamp_ns, CloseReason::ProcessExit, None, out);
            }
        }
    }

    /// Report and forget connections idle for longer than `idle_ns` (their
    /// close was never seen: the kernel's LRU map evicted them, or an fd was
    /// passed to another process). Returns how many were evicted.
    pub fn sweep(&mut self, now_ns: u64, idle_ns: u64, out: &mut Vec<Output>) -> usize {
        let stale: Vec<u64> = self
            .conns
            .values()
            .filter(|c| now_ns.saturating_sub(c.last_ns) > idle_ns)
            .map(|c| c.connection.id)
            .collect();
        for id in &stale {
            if let Some(conn) = self.conns.remove(id) {
                let last = conn.last_ns;
                self.finish(conn, last, CloseReason::Evicted, None, out);
            }
        }
        stale.len()
    }

    /// The agent is stopping: report every live connection.
    pub fn shutdown(&mut self, out: &mut Vec<Output>) {
        let now = Clock::monotonic_now();
        let conns: Vec<Conn> = self.conns.drain().map(|(_, c)| c).collect();
        for conn in conns {
            self.finish(conn, now, CloseReason::AgentShutdown, None, out);
        }
    }

    fn finish(
        &mut self,
        mut conn: Conn,
        ts: u64,
        reason: CloseReason,
        kernel: Option<KernelTotals>,
        out: &mut Vec<Output>,
    ) {
        if let Some(marks) = self.marks.as_deref_mut() {
            skip::forget(&conn, marks);
        }
        let mut parse_errors = 0;
        if let Some(mut parser) = conn.parser.take() {
            match &kernel {
                Some(k) => tail_lost_at_close(&conn, &mut parser, k, ts),
                None => tail_unknown_at_close(&conn, &mut parser, ts),
            }
            let mut rest = parser.close(ts);
            parse_errors = parser.parse_errors();
            add(&self.stats.parse_errors, parse_errors);
            let ctx = (&*self.settings, &self.clock, &*self.stats);
            emit(&mut conn, &mut rest, ctx, &mut self.evidence, out);
        }
        self.evidence.closed(&conn, ts);
        if conn.filtered {
            return;
        }
        // Without the kernel's totals (process exit seen first, shutdown) use what userspace saw.
        let k = kernel.unwrap_or(KernelTotals {
            bytes_sent: conn.next_offset[0][KDirection::Egress as usize],
            bytes_received: conn.next_offset[0][KDirection::Ingress as usize],
            plain_sent: conn.next_offset[1][KDirection::Egress as usize],
            plain_received: conn.next_offset[1][KDirection::Ingress as usize],
            lost_events: 0,
            truncated_bytes: 0,
        });
        debug!(
            conn = conn.connection.id,
            l7 = conn.connection.protocol.as_str(),
            exchanges = conn.exchanges,
            data_events = conn.data_events,
            reason = reason.as_str(),
            "connection report"
        );
        tev!(
            conn,
            Socket,
            l7 = conn.connection.protocol.as_str(),
            exchanges = conn.exchanges,
            data_events = conn.data_events,
            bytes_sent = k.bytes_sent,
            bytes_received = k.bytes_received,
            lost_events = k.lost_events,
            reason = reason.as_str(),
            "connection report"
        );
        // The connection is finished: its `Connection` moves into the report.
        let report = ConnectionReport {
            role: conn.role_name(),
            endpoint_id: conn.connection.server_name().map_or_else(
                || conn.connection.endpoints.remote.to_string(),
                str::to_string,
            ),
            connection: conn.connection,
            adopted: conn.adopted,
            got_protocol_event: conn.got_protocol_event,
            data_events: conn.data_events,
            bytes_sent: k.bytes_sent,
            bytes_received: k.bytes_received,
            exchanges: conn.exchanges,
            partial_exchanges: conn.partial_exchanges,
            gap_exchanges: conn.gap_exchanges,
            parse_errors,
            lost_events: k.lost_events,
            // The kernel counts every byte it did not copy; those that were
            // body the level does not keep are reported as skipped.
            truncated_bytes: k
                .truncated_bytes
                .saturating_sub(conn.uncopied_body)
                .max(conn.gap_bytes),
            skipped_bytes: conn.skipped_bytes,
            opened_unix_ns: self.clock.to_unix_ns(conn.opened_ns),
            closed_unix_ns: self.clock.to_unix_ns(ts.max(conn.opened_ns)),
            close_reason: reason,
        };
        incr(&self.stats.reports);
        out.push(Output::Report(Box::new(report)));
    }
}

/// The `trace!` line of every data event, and the `--trace-events` one for
/// traced processes.
fn log_data_event(conn: &Conn, h: &DataEventHeader, dir: KDirection) {
    trace!(
        conn = conn.connection.id, pid = conn.pid, dir = ?dir, source = h.source,
        syscall = h.syscall, offset = h.offset, len = h.len, captured = h.captured,
        flags = h.flags, "data event"
    );
    let module = if h.source == Source::Syscall as u8 {
        Module::Socket
    } else {
        Module::Tls
    };
    if conn.traces(module) {
        tracing::info!(
            target: "otel_agent::track::trace_events", conn = conn.connection.id, pid = conn.pid,
            module = if module == Module::Socket { "Socket" } else { "Tls" },
            dir = ?dir, source = h.source, syscall = h.syscall, offset = h.offset, len = h.len,
            captured = h.captured, flags = h.flags, "data event"
        );
    }
}

/// Place a data event on its stream (socket bytes, or TLS plaintext from a
/// probe): `None` for ciphertext of a TLS connection and for bytes already
/// seen; else the bytes lost before it (a jump forward in the offset means
/// events were lost in between) and the bytes of its own tail the kernel did
/// not copy.
fn place(
    conn: &mut Conn,
    h: &DataEventHeader,
    dir: KDirection,
    stats: &CaptureStats,
) -> Option<Placed> {
    let source = Source::from_raw(h.source).unwrap_or(Source::Syscall);
    let plain = match source {
        Source::Syscall if conn.connection.tls.is_some() => {
            tev!(conn, Socket, "ciphertext on a TLS connection: not parsed");
            return None;
        }
        Source::Syscall => 0,
        Source::Openssl | Source::Gnutls | Source::Go => {
            note_probe(conn, source, stats);
            1
        }
    };
    let idx = dir as usize;
    let expected = conn.next_offset[plain][idx];
    let end = h.offset.saturating_add(u64::from(h.len));
    if end <= expected && h.len > 0 {
        return None; // already seen
    }
    let lost = h.offset.saturating_sub(expected);
    if lost > 0 {
        tev!(
            conn,
            Socket,
            lost,
            expected,
            "gap: events lost before this one"
        );
    }
    conn.next_offset[plain][idx] = end;
    // Bytes before the first ones seen on a connection the agent joined
    // late were never going to be captured; later jumps are lost events.
    let lost_cause = if expected == 0 && conn.adopted {
        GapCause::JoinedMidStream
    } else {
        GapCause::LostEvents
    };
    // A sendfile's bytes never pass through memory the probes read.
    let tail_cause = if h.syscall == SyscallId::Sendfile as u8 {
        GapCause::NotVisible
    } else {
        GapCause::KernelCap
    };
    // Skipped on purpose: the bytes are known body, nothing is missing.
    let uncopied = u64::from(h.len.saturating_sub(h.captured));
    let skipped = if h.flags & (events::DATA_FLAG_SKIPPED | events::DATA_FLAG_SKIPPED_TAIL) != 0 {
        uncopied
    } else {
        0
    };
    Some(Placed {
        lost,
        lost_cause,
        missing_tail: uncopied - skipped,
        tail_cause,
        skipped,
    })
}

/// The parser side of bytes flowing in `dir`, once the connection's protocol
/// is HTTP and its role known; the first plaintext of a connection decides
/// both. `None`: not HTTP, or no role yet (the bytes are dropped).
fn http_side(
    conn: &mut Conn,
    dir: KDirection,
    payload: &[u8],
    system: &dyn SystemView,
    stats: &CaptureStats,
) -> Option<Side> {
    if conn.connection.protocol == L7Protocol::Unknown || conn.role == Role::Unknown {
        if payload.is_empty() {
            return None;
        }
        let d = conn.learn_role(dir, payload, system);
        if conn.connection.protocol == L7Protocol::Unknown {
            conn.connection.protocol = l7_of(d.protocol());
            count_protocol(stats, conn.connection.protocol);
            infer_alpn(conn);
            debug!(
                conn = conn.connection.id,
                l7 = conn.connection.protocol.as_str(),
                "protocol detected"
            );
            tev!(
                conn,
                Http,
                l7 = conn.connection.protocol.as_str(),
                role = conn.role_name(),
                "protocol detected"
            );
        }
    }
    let protocol = conn.connection.protocol;
    if !matches!(protocol, L7Protocol::Http1 | L7Protocol::Http2) {
        tev!(conn, Http, l7 = protocol.as_str(), "not parsed");
        return None;
    }
    let side = conn.side(dir);
    if side.is_none() {
        tev!(conn, Http, "role still unknown: bytes dropped");
    }
    side
}

/// Bytes to the connection's parser (made on first use), with the gap
/// before them and the uncopied tail after them.
fn feed(
    conn: &mut Conn,
    side: Side,
    ts: u64,
    payload: &[u8],
    placed: &Placed,
    limits: ParserLimits,
    stats: &CaptureStats,
) {
    let protocol = conn.connection.protocol;
    let parser = conn
        .parser
        .get_or_insert_with(|| Parser::new(protocol, limits));
    if placed.lost > 0 {
        parser.gap(side, ts, placed.lost, placed.lost_cause);
    }
    // A skip event has no payload: nothing to push.
    if !payload.is_empty() || placed.skipped == 0 {
        parser.push(side, ts, payload);
    }
    skip_body(
        parser,
        &mut conn.skipped_bytes,
        (side, ts),
        placed.skipped,
        stats,
    );
    let mut missing_tail = placed.missing_tail;
    // Bytes the kernel did not copy (past the per-call cap, or sent with
    // sendfile) that are body the capture level does not keep: nothing that
    // would be exported is missing, so they are skipped bytes, not a gap.
    if missing_tail > 0 && parser.skippable(side) >= missing_tail {
        skip_body(
            parser,
            &mut conn.skipped_bytes,
            (side, ts),
            missing_tail,
            stats,
        );
        conn.uncopied_body = conn.uncopied_body.saturating_add(missing_tail);
        missing_tail = 0;
    }
    if missing_tail > 0 {
        parser.gap(side, ts, missing_tail, placed.tail_cause);
    }
    let gap = placed.lost.saturating_add(missing_tail);
    if gap > 0 {
        conn.gap_bytes = conn.gap_bytes.saturating_add(gap);
        add(&stats.gap_bytes, gap);
    }
}

/// `n` bytes of body not copied (none: nothing) on `side` at `ts`, told to
/// the parser (which checks them against the framing) and counted as skipped.
fn skip_body(
    parser: &mut Parser,
    skipped_bytes: &mut u64,
    (side, ts): (Side, u64),
    n: u64,
    stats: &CaptureStats,
) {
    if n == 0 {
        return;
    }
    parser.skip(side, ts, n);
    *skipped_bytes = skipped_bytes.saturating_add(n);
    add(&stats.bytes_skipped, n);
}

/// Bytes the kernel counted but no event delivered (the last events of the
/// connection were lost): told to the parser before it closes, so that what
/// it still holds is decided knowing it. Socket offsets for plaintext
/// connections, the probes' plaintext offsets for TLS ones.
fn tail_lost_at_close(conn: &Conn, parser: &mut Parser, k: &KernelTotals, ts: u64) {
    let (stream, sent, received) = if conn.connection.tls.is_some() {
        (1, k.plain_sent, k.plain_received)
    } else {
        (0, k.bytes_sent, k.bytes_received)
    };
    for (dir, total) in [(KDirection::Egress, sent), (KDirection::Ingress, received)] {
        let seen = conn.next_offset[stream][dir as usize];
        if let (true, Some(side)) = (total > seen, conn.side(dir)) {
            parser.gap(side, ts, total - seen, GapCause::LostEvents);
        }
    }
}

/// The connection ends without the kernel's close event (lost with the
/// ring buffer full, the connection evicted, the agent stopping): whether its
/// last events were lost is unknown, so what the parser still holds
/// undecided is decided as if they were — never paired on the assumption
/// that nothing was missed. Complete exchanges are not touched.
fn tail_unknown_at_close(conn: &Conn, parser: &mut Parser, ts: u64) {
    for dir in [KDirection::Egress, KDirection::Ingress] {
        if let Some(side) = conn.side(dir) {
            parser.tail_lost(side, ts, GapCause::LostEvents);
        }
    }
}

fn count_protocol(stats: &CaptureStats, p: L7Protocol) {
    match p {
        L7Protocol::Http1 => incr(&stats.connections_http1),
        L7Protocol::Http2 => incr(&stats.connections_http2),
        L7Protocol::Other => incr(&stats.connections_other),
        L7Protocol::Unknown => {}
    }
}

/// Turn parsed exchanges into outputs, counting them on the connection
/// (`exchanges` is left empty).
fn emit(
    conn: &mut Conn,
    exchanges: &mut Vec<Parsed>,
    (settings, clock, stats): (&Settings, &Clock, &CaptureStats),
    evidence: &mut Evidence,
    out: &mut Vec<Output>,
) {
    if exchanges.is_empty() {
        return;
    }
    for ex in exchanges.iter_mut() {
        conn.got_protocol_event = true;
        if ex.partial() {
            conn.partial_exchanges += 1;
            incr(&stats.partial_exchanges);
        } else {
            conn.exchanges += 1;
            incr(&stats.exchanges);
        }
        if ex.gap() {
            conn.gap_exchanges += 1;
        }
        let link = evidence.exchange(conn, ex);
        if let Some(mut e) = assemble::assemble(&conn.connection, ex, settings, clock) {
            e.link = link;
            tev!(
                conn,
                Http,
                method = e.request.as_ref().map_or("", |r| r.method.as_str()),
                target = e.request.as_ref().map_or("", |r| r.target.as_str()),
                status = e.response.as_ref().map_or(0, |r| r.status),
                partial = e.partial,
                "exchange submitted"
            );
            debug!(
                conn = conn.connection.id,
                method = e.request.as_ref().map_or("", |r| r.method.as_str()),
                status = e.response.as_ref().map_or(0, |r| r.status),
                "exchange submitted"
            );
            out.push(Output::Exchange(e));
        }
    }
    exchanges.clear();
}

/// The filters of the settings that a connection can be judged on when it is
/// announced: process (pid/exe/comm include and exclude), direction, the
/// service port (remote for a client, local for a server) and loopback.
fn connection_allowed(settings: &Settings, p: &ProcessInfo, role: Role, e: &Endpoints) -> bool {
    let f = &settings.filter;
    if !f.process_allowed(p.pid, &p.exe, &p.comm) {
        return false;
    }
    if f.ignore_loopback && e.remote.ip().is_loopback() {
        return false;
    }
    match role {
        Role::Client => f.direction.allows_egress() && f.port_allowed(e.remote.port()),
        Role::Server => f.direction.allows_ingress() && f.port_allowed(e.local.port()),
        Role::Unknown => f.port_allowed(e.remote.port()) || f.port_allowed(e.local.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf_probes::events::{EventHeader, EventKind};
    use semconv::model::Direction;

    fn tracker() -> Tracker {
        Tracker::new(
            Arc::new(Settings::default()),
            Clock::with_offset(0),
            Arc::new(CaptureStats::default()),
        )
    }

    /// A tracker with an HTTP/1 client connection that has sent `REQ`, and
    /// its outputs so far.
    fn client_after_request() -> (Tracker, Vec<Output>) {
        let mut t = tracker();
        let mut out = Vec::new();
        t.handle(Event::ConnOpen(open(Role::Client, L7Hint::Http1)), &mut out);
        t.handle(
            Event::Data(data(KDirection::Egress, 0, REQ, 2_000), REQ),
            &mut out,
        );
        (t, out)
    }

    fn hdr(kind: EventKind, ts: u64) -> EventHeader {
        EventHeader {
            conn_id: 7,
            timestamp_ns: ts,
            kind: kind as u32,
            tgid: std::process::id(),
            tid: 1,
            fd: 5,
        }
    }

    fn open(role: Role, l7: L7Hint) -> ConnOpenEvent {
        let mut ev = ConnOpenEvent {
            hdr: hdr(EventKind::ConnOpen, 1_000),
            opened_ns: 900,
            family: 2,
            ..Default::default()
        };
        ev.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        ev.daddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        ev.sport = 40_000;
        ev.dport = 8080;
        ev.role = role as u8;
        ev.l7 = l7 as u8;
        ev
    }

    fn data(dir: KDirection, offset: u64, bytes: &[u8], ts: u64) -> DataEventHeader {
        let n = bytes.len() as u32;
        DataEventHeader {
            hdr: hdr(EventKind::Data, ts),
            offset,
            len: n,
            captured: n,
            direction: dir as u8,
            ..Default::default()
        }
    }

    const REQ: &[u8] = b"GET /x?y=1 HTTP/1.1\r\nHost: svc:8080\r\nUser-Agent: t/1\r\n\r\n";
    const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    fn close(ts: u64) -> ConnCloseEvent {
        ConnCloseEvent {
            hdr: hdr(EventKind::ConnClose, ts),
            bytes_sent: REQ.len() as u64,
            bytes_received: RESP.len() as u64,
            data_events: 2,
            reason: 1,
            ..Default::default()
        }
    }

    #[test]
    fn client_exchange_then_report() {
        let (mut t, mut out) = client_after_request();
        t.handle(
            Event::Data(data(KDirection::Ingress, 0, RESP, 3_000), RESP),
            &mut out,
        );
        t.handle(Event::ConnClose(close(4_000)), &mut out);
        assert_eq!(out.len(), 2);
        let Output::Exchange(e) = &out[0] else {
            panic!("exchange first: {out:?}")
        };
        assert_eq!(e.connection.direction, Direction::EgressInternal);
        let req = e.request.as_ref().unwrap();
        assert_eq!(
            (req.method.as_str(), req.path(), req.query()),
            ("GET", "/x", Some("y=1"))
        );
        assert_eq!(req.wire_bytes, REQ.len() as u64);
        assert_eq!(e.response.as_ref().unwrap().status, 200);
        assert_eq!((e.start_unix_ns, e.end_unix_ns), (2_000, 3_000));
        let Output::Report(r) = &out[1] else {
            panic!("report second")
        };
        assert_eq!(
            (r.exchanges, r.bytes_sent, r.bytes_received),
            (1, REQ.len() as u64, RESP.len() as u64)
        );
        assert_eq!(r.close_reason, CloseReason::Close);
        assert!(t.is_empty());
    }

    #[test]
    fn learnt_role_sets_the_direction_of_exchanges_and_report() {
        let mut t = tracker();
        let mut out = Vec::new();
        // Adopted: the kernel did not know the role; the first bytes tell.
        t.handle(
            Event::ConnOpen(open(Role::Unknown, L7Hint::Http1)),
            &mut out,
        );
        t.handle(
            Event::Data(data(KDirection::Ingress, 0, REQ, 2_000), REQ),
            &mut out,
        );
        t.handle(
            Event::Data(data(KDirection::Egress, 0, RESP, 3_000), RESP),
            &mut out,
        );
        t.handle(Event::ConnClose(close(4_000)), &mut out);
        let Some(Output::Exchange(e)) = out.first() else {
            panic!("exchange first: {out:?}")
        };
        assert_eq!(e.connection.direction, Direction::Ingress);
        let Some(Output::Report(r)) = out.last() else {
            panic!("report last: {out:?}")
        };
        assert_eq!(
            (r.role, r.connection.direction),
            ("server", Direction::Ingress)
        );
    }

    #[test]
    fn lost_events_become_gaps_not_corruption() {
        let mut t = tracker();
        let mut out = Vec::new();
        t.handle(Event::ConnOpen(open(Role::Server, L7Hint::Http1)), &mut out);
        // The first request was lost in the kernel; the second arrives at its real offset.
        let second = b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n";
        t.handle(
            Event::Data(data(KDirection::Ingress, 100, second, 2_000), second),
            &mut out,
        );
        t.handle(
            Event::Data(data(KDirection::Egress, 0, RESP, 3_000), RESP),
            &mut out,
        );
        t.shutdown(&mut out);
        let report = out
            .iter()
            .find_map(|o| match o {
                Output::Report(r) => Some(r),
                _ => None,
            })
            .unwrap();
        assert_eq!(report.truncated_bytes, 100, "the lost bytes are accounted");
        assert_eq!(report.close_reason, CloseReason::AgentShutdown);
    }

    #[test]
    fn idle_connections_are_evicted_with_a_report() {
        let mut t = tracker();
        let mut out = Vec::new();
        t.handle(Event::ConnOpen(open(Role::Client, L7Hint::Http1)), &mut out);
        assert_eq!(t.sweep(2_000, 10_000, &mut out), 0);
        assert_eq!(t.sweep(1_000_000, 10_000, &mut out), 1);
        let Some(Output::Report(r)) = out.last() else {
            panic!("report")
        };
        assert_eq!(r.close_reason, CloseReason::Evicted);
        assert!(t.is_empty());
    }

    /// One call on the marks: (connection, `Some(marks)` for a set, `None` for a clear).
    type MarkCall = (u64, Option<[u64; 2]>);

    /// The kernel's marks as a test sees them: every `set` and `clear`, and
    /// the flags of every `set`.
    #[derive(Clone, Default)]
    struct Marks(
        Arc<std::sync::Mutex<Vec<MarkCall>>>,
        Arc<std::sync::Mutex<Vec<u32>>>,
    );

    impl SkipMarks for Marks {
        fn set(&mut self, conn_id: u64, mark: events::BodySkip) {
            self.0.lock().unwrap().push((conn_id, Some(mark.until)));
            self.1.lock().unwrap().push(mark.flags);
        }
        fn clear(&mut self, conn_id: u64) {
            self.0.lock().unwrap().push((conn_id, None));
        }
    }

    const BIG_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";

    fn only_exchange(out: &[Output]) -> &semconv::model::Exchange {
        let ex: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::Exchange(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(ex.len(), 1, "{out:?}");
        ex[0]
    }

    fn report(out: &[Output]) -> &ConnectionReport {
        out.iter()
            .find_map(|o| match o {
                Output::Report(r) => Some(&**r),
                _ => None,
            })
            .expect("a report")
    }

    #[test]
    fn the_mark_follows_the_body_and_skipped_bytes_are_counted_exactly() {
        let mut t = tracker();
        let marks = Marks::default();
        t.skip_bodies(Box::new(marks.clone()));
        let mut out = Vec::new();
        t.handle(Event::ConnOpen(open(Role::Client, L7Hint::Http1)), &mut out);
        t.handle(
            Event::Data(data(KDirection::Egress, 0, REQ, 2_000), REQ),
            &mut out,
        );
        let mut first = BIG_HEAD.to_vec();
        first.extend_from_slice(&[b'x'; 1000]);
        t.handle(
            Event::Data(data(KDirection::Ingress, 0, &first, 3_000), &first),
            &mut out,
        );
        let at = first.len() as u64;
        assert_eq!(
            *marks.0.lock().unwrap(),
            [(7, Some([0, at + 99_000]))],
            "ingress: skip to the end of the body"
        );
        // The kernel covers the rest with a skip event: no payload.
        let mut skip = data(KDirection::Ingress, at, &[], 4_000);
        skip.len = 99_000;
        skip.flags = events::DATA_FLAG_SKIPPED;
        t.handle(Event::Data(skip, &[]), &mut out);
        let mut close = close(5_000);
        close.bytes_received = at + 99_000;
        t.handle(Event::ConnClose(close), &mut out);
        let e = only_exchange(&out);
        assert!(!e.partial && !e.gap, "{e:?}");
        let resp = e.response.as_ref().unwrap();
        assert_eq!((resp.body_size, e.end_unix_ns), (100_000, 4_000));
        let r = report(&out);
        assert_eq!(
            (r.skipped_bytes, r.truncated_bytes, r.gap_exchanges),
            (99_000, 0, 0)
        );
        assert_eq!(
            marks.0.lock().unwrap().last(),
            Some(&(7, None)),
            "forgotten at close"
        );
        assert_eq!(t.stats.snapshot().bytes_skipped, 99_000);
    }

    /// After its first exchange, an HTTP/1 connection that keeps no body
    /// lets the kernel split a head from its body in one call — over TLS
    /// too (the plaintext of an `SSL_write` or `SSL_read`), with one map
    /// update for the connection.
    #[test]
    fn an_http1_connection_over_tls_lets_the_kernel_skip_bodies_after_heads() {
        for source in [Source::Syscall, Source::Openssl] {
            let mut t = tracker();
            let marks = Marks::default();
            t.skip_bodies(Box::new(marks.clone()));
            let mut out = Vec::new();
            t.handle(Event::ConnOpen(open(Role::Client, L7Hint::Http1)), &mut out);
            let head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            for (i, ts) in [(0u64, 1_000u64), (1, 3_000)] {
                let (req_at, resp_at) = (i * REQ.len() as u64, i * head.len() as u64);
                let mut req = data(KDirection::Egress, req_at, REQ, ts);
                req.source = source as u8;
                t.handle(Event::Data(req, REQ), &mut out);
                let mut resp = data(KDirection::Ingress, resp_at, head, ts + 1_000);
                resp.source = source as u8;
                t.handle(Event::Data(resp, head), &mut out);
            }
            assert_eq!(
                t.conns[&7].connection.tls.is_some(),
                source == Source::Openssl,
                "{source:?}"
            );
            assert_eq!(
                *marks.1.lock().unwrap(),
                [events::BODY_SKIP_AFTER_HEAD],
                "{source:?}: one update, after the first exchange"
            );
        }
    }

    #[test]
    fn a_short_body_ahead_moves_no_mark() {
        let mut t = tracker();
        let marks = Marks::default();
        t.skip_bodies(Box::new(marks.clone()));
        let mut out = Vec::new();
        t.handle(Event::ConnOpen(open(Role::Client, L7Hint::Http1)), &mut out);
        t.handle(
            Event::Data(data(KDirection::Egress, 0, REQ, 2_000), REQ),
            &mut out,
        );
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n";
        t.handle(
            Event::Data(data(KDirection::Ingress, 0, head, 3_000), head),
            &mut out,
        );
        t.handle(Event::ConnClose(close(4_000)), &mut out);
        assert!(
            marks.0.lock().unwrap().is_empty(),
            "a map update costs more than 2 KiB"
        );
    }

    #[test]
    fn uncopied_body_past_the_cap_is_skipped_not_a_gap_but_a_cut_head_is_a_gap() {
        let (mut t, mut out) = client_after_request();
        // One read of head + whole body, of which the kernel copied 16 KiB.
        let total = BIG_HEAD.len() as u64 + 100_000;
        let mut copied = BIG_HEAD.to_vec();
        copied.resize(16_384, b'x');
        let mut h = data(KDirection::Ingress, 0, &copied, 3_000);
        h.len = total as u32;
        h.flags = events::DATA_FLAG_TRUNCATED;
        t.handle(Event::Data(h, &copied), &mut out);
        let mut close = close(5_000);
        close.bytes_received = total;
        close.truncated_bytes = total - 16_384;
        t.handle(Event::ConnClose(close), &mut out);
        let e = only_exchange(&out);
        assert!(!e.gap && !e.partial, "{e:?}");
        assert_eq!(e.response.as_ref().unwrap().body_size, 100_000);
        let r = report(&out);
        assert_eq!((r.skipped_bytes, r.truncated_bytes), (total - 16_384, 0));

        // At level full the body is kept: the same cut is a gap.
        let mut settings = Settings::default();
        settings.capture.level = otel_agent_config::CaptureLevel::Full;
        let mut t = Tracker::new(
            Arc::new(settings),
            Clock::with_offset(0),
            Arc::new(CaptureStats::default()),
        );
        let mut out = Vec::new();
        t.handle(Event::ConnOpen(open(Role::Client, L7Hint::Http1)), &mut out);
        t.handle(
            Event::Data(data(KDirection::Egress, 0, REQ, 2_000), REQ),
            &mut out,
        );
        t.handle(Event::Data(h, &copied), &mut out);
        t.handle(Event::ConnClose(close), &mut out);
        let e = only_exchange(&out);
        assert_eq!(e.gap_causes, ["cut_by_kernel_cap"]);
        assert_eq!(report(&out).skipped_bytes, 0);
    }

    #[test]
    fn a_body_buffer_skipped_after_its_head_is_exact_and_a_wrong_guess_is_a_gap() {
        // writev(head, body): the kernel skipped the second buffer.
        let skip = |offset: u64, len: u32, ts: u64| {
            let mut h = data(KDirection::Ingress, offset, &[], ts);
            h.len = len;
            h.flags = events::DATA_FLAG_SKIPPED;
            h
        };
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n";
        let (mut t, mut out) = client_after_request();
        t.handle(
            Event::Data(data(KDirection::Ingress, 0, head, 3_000), head),
            &mut out,
        );
        t.handle(
            Event::Data(skip(head.len() as u64, 2048, 3_001), &[]),
            &mut out,
        );
        t.shutdown(&mut out);
        let e = only_exchange(&out);
        assert!(!e.gap && !e.partial, "{e:?}");
        assert_eq!(e.response.as_ref().unwrap().body_size, 2048);
        assert_eq!(report(&out).skipped_bytes, 2048);

        // A body-less response (204) followed by a buffer the kernel took for
        // its body: the skip does not fit, so it is a gap, never a body.
        let head = b"HTTP/1.1 204 No Content\r\n\r\n";
        let (mut t, mut out) = client_after_request();
        t.handle(
            Event::Data(data(KDirection::Ingress, 0, head, 3_000), head),
            &mut out,
        );
        t.handle(
            Event::Data(skip(head.len() as u64, 100, 3_001), &[]),
            &mut out,
        );
        let second = b"GET /second HTTP/1.1\r\n\r\n";
        t.handle(
            Event::Data(
                data(KDirection::Egress, REQ.len() as u64, second, 4_000),
                second,
            ),
            &mut out,
        );
        t.shutdown(&mut out);
        let first = out
            .iter()
            .find_map(|o| match o {
                Output::Exchange(e)
                    if e.request
                        .as_ref()
                        .is_some_and(|r| r.target.starts_with("/x")) =>
                {
                    Some(e)
                }
                _ => None,
            })
            .expect("the first exchange");
        assert_eq!(first.response.as_ref().unwrap().status, 204);
        assert!(!first.gap, "its own response was whole: {first:?}");
        let r = report(&out);
        assert_eq!(r.skipped_bytes, 100, "the kernel's skip is counted as such");
        let second = out
            .iter()
            .find_map(|o| match o {
                Output::Exchange(e)
                    if e.request.as_ref().is_some_and(|r| r.target == "/second") =>
                {
                    Some(e)
                }
                _ => None,
            })
            .expect("the second request");
        assert!(second.partial && second.response.is_none(), "{second:?}");
        assert!(
            second.gap_causes.contains(&"skipped_outside_body"),
            "what the skip may have hidden is flagged: {second:?}"
        );
    }

    #[test]
    fn a_gathered_event_with_its_body_as_skipped_tail_is_exact_and_a_wrong_guess_is_a_gap() {
        // writev(head, body) as one event: the head copied, the body its
        // skipped tail.
        let gathered = |payload: &[u8], tail: u32, ts: u64| {
            let mut h = data(KDirection::Ingress, 0, payload, ts);
            h.len = payload.len() as u32 + tail;
            h.flags = events::DATA_FLAG_SKIPPED_TAIL;
            h
        };
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n";
        let (mut t, mut out) = client_after_request();
        t.handle(Event::Data(gathered(head, 2048, 3_000), head), &mut out);
        let mut close = close(5_000);
        close.bytes_received = head.len() as u64 + 2048;
        t.handle(Event::ConnClose(close), &mut out);
        let e = only_exchange(&out);
        assert!(!e.gap && !e.partial, "{e:?}");
        assert_eq!(e.response.as_ref().unwrap().body_size, 2048);
        let r = report(&out);
        assert_eq!((r.skipped_bytes, r.truncated_bytes), (2048, 0));
        assert_eq!(t.stats.snapshot().bytes_skipped, 2048);

        // A body-less response with a tail taken for its body: the skip does
        // not fit, so it is a gap, never a body.
        let head = b"HTTP/1.1 204 No Content\r\n\r\n";
        let (mut t, mut out) = client_after_request();
        t.handle(Event::Data(gathered(head, 100, 3_000), head), &mut out);
        let second = b"GET /second HTTP/1.1\r\n\r\n";
        t.handle(
            Event::Data(
                data(KDirection::Egress, REQ.len() as u64, second, 4_000),
                second,
            ),
            &mut out,
        );
        t.shutdown(&mut out);
        let exchanges: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::Exchange(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(exchanges.len(), 2, "{exchanges:?}");
        assert_eq!(exchanges[0].response.as_ref().unwrap().status, 204);
        assert!(!exchanges[0].gap, "its own response was whole");
        assert!(
            exchanges[1].partial && exchanges[1].response.is_none(),
            "{:?}",
            exchanges[1]
        );
        assert!(
            exchanges[1].gap_causes.contains(&"skipped_outside_body"),
            "what the skip may have hidden is flagged: {:?}",
            exchanges[1]
        );
    }

    #[test]
    fn a_filtered_connection_is_skipped_whole_once() {
        let mut settings = Settings::default();
        settings.filter.ignore_loopback = true;
        let mut t = Tracker::new(
            Arc::new(settings),
            Clock::with_offset(0),
            Arc::new(CaptureStats::default()),
        );
        let marks = Marks::default();
        t.skip_bodies(Box::new(marks.clone()));
        let mut out = Vec::new();
        t.handle(Event::ConnOpen(open(Role::Client, L7Hint::Http1)), &mut out);
        t.handle(
            Event::Data(data(KDirection::Egress, 0, REQ, 2_000), REQ),
            &mut out,
        );
        t.handle(
            Event::Data(data(KDirection::Ingress, 0, RESP, 3_000), RESP),
            &mut out,
        );
        t.handle(Event::ConnClose(close(4_000)), &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(
            *marks.0.lock().unwrap(),
            [(7, Some([u64::MAX; 2])), (7, None)],
            "everything skipped from the first event on, forgotten at close"
        );
    }

    #[test]
    fn tls_ciphertext_is_never_parsed_as_http() {
        let mut t = tracker();
        let mut out = Vec::new();
        t.handle(Event::ConnOpen(open(Role::Client, L7Hint::Tls)), &mut out);
        // Ciphertext past the handshake that happens to look like HTTP.
        t.handle(
            Event::Data(data(KDirection::Egress, 5_000, REQ, 2_000), REQ),
            &mut out,
        );
        t.shutdown(&mut out);
        assert!(out.iter().all(|o| matches!(o, Output::Report(_))));
    }
}
