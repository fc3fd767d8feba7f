//! Connection tracking: kernel events in, exchanges and connection reports out.
//!
//! One [`Tracker`] owns every live connection: its process, addresses, role,
//! protocol, parser state and counters. Data events are checked against the
//! expected stream offset per direction, so bytes lost in the kernel become
//! explicit gaps for the parser instead of silent corruption.

use rustc_hash::FxHashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use bpf_probes::events::{
    self, CloseReason as KCloseReason, ConnCloseEvent, ConnOpenEvent, DataEventHeader,
    Direction as KDirection, Event, EventHeader, L7Hint, Role, Source,
};
use otel_agent_config::{CaptureLevel, Settings};
use semconv::model::{
    CloseReason, Connection, ConnectionReport, Direction, Endpoints, L7Protocol, Output,
    ProcessInfo, TlsInfo,
};
use tracing::{debug, trace};

use crate::internal_events::{add, incr, CaptureStats};
use crate::track::assemble::{self, Parsed};
use crate::track::clock::Clock;
use crate::track::process::{comm_str, ProcFs, ProcessCache, SystemView};
use crate::track::trace_events::{Module, TraceFilter};
use protocols::detect::{detect, Detected};
use protocols::http1::{self, Http1Stream, Side};
use protocols::http2::{self, Http2Stream};
use protocols::tls_handshake::{self, HandshakeMessage, TlsHandshakeParser};

/// Log a `--trace-events` line when the connection's process is traced for `module`.
macro_rules! tev {
    ($conn:expr, $module:ident, $($rest:tt)+) => {
        if $conn.traces(Module::$module) {
            tracing::info!(
                target: "otel_agent::track::trace_events",
                conn = $conn.connection.id, pid = $conn.pid, module = stringify!($module), $($rest)+
            );
        }
    };
}

/// One live connection: the [`Connection`] its exchanges and its report
/// carry, kept up to date as the connection is learnt, and the tracker's own
/// state (role, offsets, parsers, counters).
struct Conn {
    /// Id, process, direction, addresses, protocol and TLS facts. `direction`
    /// follows `role`: [`Conn::learn_role`] updates both.
    connection: Connection,
    pid: u32,
    fd: u32,
    role: Role,
    adopted: bool,
    opened_ns: u64,
    /// Kernel timestamp of the last event (for idle eviction).
    last_ns: u64,
    filtered: bool,
    parser: Option<Parser>,
    /// TLS handshake parsers, one per direction (fed on TLS connections only).
    handshake: [TlsHandshakeParser; 2],
    /// Next expected stream offset, by [socket bytes, TLS plaintext] and direction.
    next_offset: [[u64; 2]; 2],
    data_events: u64,
    gap_bytes: u64,
    exchanges: u64,
    partial_exchanges: u64,
    got_protocol_event: bool,
    /// `--trace-events` modules selected for this connection's process.
    traced: Vec<Module>,
}

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
    settings: Arc<Settings>,
    stats: Arc<CaptureStats>,
}

fn ip_from(family: u16, raw: &[u8; 16]) -> IpAddr {
    if family == 10 {
        let v6 = Ipv6Addr::from(*raw);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    } else {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    }
}

/// Ingress for a server; otherwise egress, internal or external by the remote address.
fn direction_of(role: Role, endpoints: &Endpoints) -> Direction {
    match role {
        Role::Server => Direction::Ingress,
        _ => Direction::egress_to(endpoints.remote.ip()),
    }
}

fn endpoints_of(ev: &ConnOpenEvent) -> Endpoints {
    Endpoints {
        local: SocketAddr::new(ip_from(ev.family, &ev.saddr), ev.sport),
        remote: SocketAddr::new(ip_from(ev.family, &ev.daddr), ev.dport),
    }
}

impl Conn {
    fn traces(&self, m: Module) -> bool {
        self.traced.contains(&m)
    }

    fn role_name(&self) -> &'static str {
        match self.role {
            Role::Client => "client",
            Role::Server => "server",
            Role::Unknown => "unknown",
        }
    }

    /// Which parser side bytes flowing in `dir` belong to, once the role is known.
    fn side(&self, dir: KDirection) -> Option<Side> {
        match (self.role, dir) {
            (Role::Client, KDirection::Egress) | (Role::Server, KDirection::Ingress) => {
                Some(Side::Request)
            }
            (Role::Client, KDirection::Ingress) | (Role::Server, KDirection::Egress) => {
                Some(Side::Response)
            }
            (Role::Unknown, _) => None,
        }
    }

    /// An adopted connection learns its role from the first plaintext it carries.
    fn learn_role(&mut self, dir: KDirection, first: &[u8], system: &dyn SystemView) -> Detected {
        let d = detect(first);
        if self.role == Role::Unknown {
            self.role = match (d, dir) {
                (Detected::Http1Request | Detected::Http2Preface, KDirection::Egress) => {
                    Role::Client
                }
                (Detected::Http1Request | Detected::Http2Preface, KDirection::Ingress) => {
                    Role::Server
                }
                (Detected::Http1Response, KDirection::Egress) => Role::Server,
                (Detected::Http1Response, KDirection::Ingress) => Role::Client,
                // Both peers send HEADERS on odd streams: the side on an
                // ephemeral port is the client.
                (Detected::Http2Frame | Detected::Http2Settings, _) => {
                    role_from_ports(system, self.pid, &self.connection.endpoints)
                }
                _ => Role::Unknown,
            };
            self.connection.direction = direction_of(self.role, &self.connection.endpoints);
        }
        d
    }
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
            settings,
            stats,
        }
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
        let tls = (L7Hint::from_raw(ev.l7) == Some(L7Hint::Tls)).then(TlsInfo::default);
        incr(&self.stats.connections);
        if filtered {
            incr(&self.stats.connections_filtered);
        }
        let traced = self.traced_modules(&process);
        let conn = Conn {
            connection: Connection {
                id: ev.hdr.conn_id,
                process,
                direction: direction_of(role, &endpoints),
                endpoints,
                protocol,
                tls,
            },
            pid: ev.hdr.tgid,
            fd: ev.hdr.fd,
            role,
            adopted: ev.flags & events::CONN_FLAG_ADOPTED != 0,
            opened_ns: ev.opened_ns,
            last_ns: ev.hdr.timestamp_ns,
            filtered,
            parser: None,
            handshake: Default::default(),
            next_offset: [[0; 2]; 2],
            data_events: 0,
            gap_bytes: 0,
            exchanges: 0,
            partial_exchanges: 0,
            got_protocol_event: false,
            traced,
        };
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
        Conn {
            connection: Connection {
                id: h.conn_id,
                process,
                direction: direction_of(Role::Unknown, &endpoints),
                endpoints,
                protocol: L7Protocol::Unknown,
                tls: None,
            },
            pid: h.tgid,
            fd: h.fd,
            role: Role::Unknown,
            adopted: true,
            opened_ns: h.timestamp_ns,
            last_ns: h.timestamp_ns,
            filtered,
            parser: None,
            handshake: Default::default(),
            next_offset: [[0; 2]; 2],
            data_events: 0,
            gap_bytes: 0,
            exchanges: 0,
            partial_exchanges: 0,
            got_protocol_event: false,
            traced: Vec::new(),
        }
    }

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
        if conn.filtered {
            tev!(conn, Socket, "skipped: process excluded by the exe filter");
            return;
        }
        if h.flags & events::DATA_FLAG_RAW_TLS != 0 {
            tev!(conn, Tls, "raw TLS record bytes: to the handshake parser");
            tls_bytes(conn, dir, payload);
            return;
        }
        let source = Source::from_raw(h.source).unwrap_or(Source::Syscall);
        let plain = match source {
            Source::Syscall if conn.connection.tls.is_some() => {
                tev!(conn, Socket, "ciphertext on a TLS connection: not parsed");
                return;
            }
            Source::Syscall => 0,
            Source::Openssl | Source::Gnutls => {
                incr(&self.stats.tls_plaintext_events);
                let probe = if source == Source::Gnutls {
                    "gnutls"
                } else {
                    "openssl"
                };
                let tls = conn.connection.tls.get_or_insert_with(TlsInfo::default);
                let first = !tls.probes.iter().any(|p| p == probe);
                if first {
                    tls.probes.push(probe.to_string());
                    incr(if source == Source::Gnutls {
                        &self.stats.tls_connections_gnutls
                    } else {
                        &self.stats.tls_connections_openssl
                    });
                    debug!(conn = conn.connection.id, probe, "TLS plaintext");
                    tev!(conn, Tls, probe, "first TLS plaintext from a probe");
                }
                1
            }
        };
        // Offsets: a jump forward means events were lost in between.
        let idx = dir as usize;
        let expected = conn.next_offset[plain][idx];
        let end = h.offset.saturating_add(u64::from(h.len));
        if end <= expected && h.len > 0 {
            return; // already seen
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
        let missing_tail = u64::from(h.len.saturating_sub(h.captured));

        if conn.connection.protocol == L7Protocol::Unknown || conn.role == Role::Unknown {
            if payload.is_empty() {
                return;
            }
            let d = conn.learn_role(dir, payload, self.procs.system());
            if conn.connection.protocol == L7Protocol::Unknown {
                conn.connection.protocol = l7_of(d.protocol());
                count_protocol(&self.stats, conn.connection.protocol);
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
            return;
        }
        let Some(side) = conn.side(dir) else {
            tev!(conn, Http, "role still unknown: bytes dropped");
            return;
        };
        tev!(conn, Http, side = ?side, bytes = payload.len(), missing = missing_tail,
            l7 = protocol.as_str(), "to the parser");
        let full_possible = self.settings.capture.level >= CaptureLevel::Full
            || self
                .settings
                .capture
                .rules
                .iter()
                .any(|r| r.level == Some(CaptureLevel::Full));
        let body_capture = if full_possible {
            self.settings.capture.max_body_bytes
        } else {
            0
        };
        let max_header_bytes = self.settings.limits.max_header_bytes;
        let parser = conn
            .parser
            .get_or_insert_with(|| Parser::new(protocol, max_header_bytes, body_capture));
        let ts = h.hdr.timestamp_ns;
        if lost > 0 {
            parser.gap(side, ts, lost);
        }
        parser.push(side, ts, payload);
        if missing_tail > 0 {
            parser.gap(side, ts, missing_tail);
        }
        let gap = lost.saturating_add(missing_tail);
        if gap > 0 {
            conn.gap_bytes = conn.gap_bytes.saturating_add(gap);
            add(&self.stats.gap_bytes, gap);
        }
        let done = parser.drain();
        emit(conn, done, &self.settings, &self.clock, &self.stats, out);
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
            lost_events: u64::from(ev.lost_events),
            truncated_bytes: ev.truncated_bytes,
        };
        self.finish(conn, ev.hdr.timestamp_ns, reason, Some(kernel), out);
    }

    fn process_exit(&mut self, h: &EventHeader, out: &mut Vec<Output>) {
        self.procs.forget(h.tgid);
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
        let mut parse_errors = 0;
        if let Some(mut parser) = conn.parser.take() {
            let rest = parser.close(ts);
            parse_errors = parser.parse_errors();
            add(&self.stats.parse_errors, parse_errors);
            emit(
                &mut conn,
                rest,
                &self.settings,
                &self.clock,
                &self.stats,
                out,
            );
        }
        if conn.filtered {
            return;
        }
        // Without the kernel's totals (process exit seen first, shutdown) use what userspace saw.
        let k = kernel.unwrap_or(KernelTotals {
            bytes_sent: conn.next_offset[0][KDirection::Egress as usize],
            bytes_received: conn.next_offset[0][KDirection::Ingress as usize],
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
            parse_errors,
            lost_events: k.lost_events,
            truncated_bytes: k.truncated_bytes.max(conn.gap_bytes),
            opened_unix_ns: self.clock.to_unix_ns(conn.opened_ns),
            closed_unix_ns: self.clock.to_unix_ns(ts.max(conn.opened_ns)),
            close_reason: reason,
        };
        incr(&self.stats.reports);
        out.push(Output::Report(Box::new(report)));
    }
}

/// The parser of a connection's plaintext, by protocol.
enum Parser {
    Http1(Box<Http1Stream>),
    Http2(Box<Http2Stream>),
}

impl Parser {
    fn new(protocol: L7Protocol, max_header_bytes: usize, max_body_capture: usize) -> Self {
        match protocol {
            L7Protocol::Http2 => Parser::Http2(Box::new(Http2Stream::new(http2::Limits {
                max_body_capture,
            }))),
            _ => Parser::Http1(Box::new(Http1Stream::new(http1::Limits {
                max_header_bytes,
                max_body_capture,
            }))),
        }
    }

    fn push(&mut self, side: Side, ts: u64, data: &[u8]) {
        match self {
            Parser::Http1(p) => p.push(side, ts, data),
            Parser::Http2(p) => p.push(side, ts, data),
        }
    }

    fn gap(&mut self, side: Side, ts: u64, len: u64) {
        match self {
            Parser::Http1(p) => p.gap(side, ts, len),
            Parser::Http2(p) => p.gap(side, ts, len),
        }
    }

    fn drain(&mut self) -> Vec<Parsed> {
        match self {
            Parser::Http1(p) => p.drain().into_iter().map(Parsed::Http1).collect(),
            Parser::Http2(p) => p.drain().into_iter().map(Parsed::Http2).collect(),
        }
    }

    fn close(&mut self, ts: u64) -> Vec<Parsed> {
        match self {
            Parser::Http1(p) => p.close(ts).into_iter().map(Parsed::Http1).collect(),
            Parser::Http2(p) => p.close(ts).into_iter().map(Parsed::Http2).collect(),
        }
    }

    fn parse_errors(&self) -> u64 {
        match self {
            Parser::Http1(p) => p.parse_errors(),
            Parser::Http2(p) => p.parse_errors(),
        }
    }
}

/// Totals the kernel keeps per connection, delivered with its close event.
#[derive(Clone, Copy, Debug, Default)]
struct KernelTotals {
    bytes_sent: u64,
    bytes_received: u64,
    lost_events: u64,
    truncated_bytes: u64,
}

fn count_protocol(stats: &CaptureStats, p: L7Protocol) {
    match p {
        L7Protocol::Http1 => incr(&stats.connections_http1),
        L7Protocol::Http2 => incr(&stats.connections_http2),
        L7Protocol::Other => incr(&stats.connections_other),
        L7Protocol::Unknown => {}
    }
}

/// Turn parsed exchanges into outputs, counting them on the connection.
fn emit(
    conn: &mut Conn,
    exchanges: Vec<Parsed>,
    settings: &Settings,
    clock: &Clock,
    stats: &CaptureStats,
    out: &mut Vec<Output>,
) {
    if exchanges.is_empty() {
        return;
    }
    for ex in exchanges {
        conn.got_protocol_event = true;
        if ex.partial() {
            conn.partial_exchanges += 1;
            incr(&stats.partial_exchanges);
        } else {
            conn.exchanges += 1;
            incr(&stats.exchanges);
        }
        if let Some(e) = assemble::assemble(&conn.connection, ex, settings, clock) {
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
            out.push(Output::Exchange(Box::new(e)));
        }
    }
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

/// The role of a connection joined mid-stream, from its ports: our local
/// port is listening (in the process's network namespace) → server; else the
/// side on Linux's ephemeral range is the client.
fn role_from_ports(system: &dyn SystemView, pid: u32, e: &Endpoints) -> Role {
    if system.listening(pid, e.local.port()) {
        return Role::Server;
    }
    let ephemeral = |p: u16| (32768..=60999).contains(&p);
    match (ephemeral(e.local.port()), ephemeral(e.remote.port())) {
        (_, false) | (true, true) => Role::Client,
        (false, true) => Role::Server,
    }
}

/// The model's protocol for what detection found.
fn l7_of(p: protocols::detect::Protocol) -> L7Protocol {
    match p {
        protocols::detect::Protocol::Http1 => L7Protocol::Http1,
        protocols::detect::Protocol::Http2 => L7Protocol::Http2,
        protocols::detect::Protocol::Other => L7Protocol::Other,
    }
}

/// TLS 1.3 sends the chosen ALPN encrypted: infer it from the plaintext
/// protocol when the client offered it.
fn infer_alpn(conn: &mut Conn) {
    let Some(tls) = conn.connection.tls.as_mut() else {
        return;
    };
    if tls.alpn.is_some() {
        return;
    }
    let id = match conn.connection.protocol {
        L7Protocol::Http1 => "http/1.1",
        L7Protocol::Http2 => "h2",
        _ => return,
    };
    if tls.alpn_offered.iter().any(|a| a == id) {
        tls.alpn = Some(id.to_string());
    }
}

/// Raw bytes of a TLS connection: look for the ClientHello / ServerHello.
fn tls_bytes(conn: &mut Conn, dir: KDirection, payload: &[u8]) {
    let (traced, id) = (conn.traces(Module::Tls), conn.connection.id);
    let tls = conn.connection.tls.get_or_insert_with(TlsInfo::default);
    let Some(parser) = conn.handshake.get_mut(dir as usize) else {
        return;
    };
    if parser.is_done() {
        return;
    }
    match parser.push(payload) {
        Ok(Some(HandshakeMessage::ClientHello(ch))) => {
            debug!(conn = id, sni = ?ch.server_name, alpn = ?ch.alpn, "TLS ClientHello");
            if traced {
                tracing::info!(target: "otel_agent::track::trace_events", conn = id, module = "Tls",
                    sni = ?ch.server_name, alpn = ?ch.alpn, versions = ?ch.supported_versions, "TLS ClientHello");
            }
            tls.got_client_hello = true;
            tls.server_name = ch.server_name;
            tls.alpn_offered = ch.alpn;
        }
        Ok(Some(HandshakeMessage::ServerHello(sh))) => {
            debug!(
                conn = id,
                version = sh.version(),
                cipher = sh.cipher_suite,
                "TLS ServerHello"
            );
            if traced {
                tracing::info!(target: "otel_agent::track::trace_events", conn = id, module = "Tls",
                    version = sh.version(), cipher = sh.cipher_suite, alpn = ?sh.alpn, "TLS ServerHello");
            }
            tls.version = Some(sh.version());
            tls.cipher = tls_handshake::cipher_suite_name(sh.cipher_suite)
                .map(str::to_string)
                .or_else(|| Some(format!("0x{:04x}", sh.cipher_suite)));
            if sh.alpn.is_some() {
                tls.alpn = sh.alpn;
            }
        }
        Ok(None) => {}
        Err(e) => debug!(conn = id, error = %e, "TLS handshake not parsed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf_probes::events::{EventHeader, EventKind};

    fn tracker() -> Tracker {
        Tracker::new(
            Arc::new(Settings::default()),
            Clock::with_offset(0),
            Arc::new(CaptureStats::default()),
        )
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
        let mut t = tracker();
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
