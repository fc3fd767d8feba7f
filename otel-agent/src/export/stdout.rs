//! Stdout exporter: one JSON line per exchange and one per connection report.
//!
//! Lines are written straight from the records into a buffer the exporter
//! reuses, never through an intermediate `serde_json::Value`. The exchange
//! line, the hot one, is written field by field ([`JsonObject`]), and the
//! metadata a connection's lines share (addresses, process, TLS) is written
//! once per connection and copied after: formatting it on every line took
//! ~9.5 % of the default mode's CPU, serde's map keys another ~6 % (perf,
//! default mode at saturation). Connection reports, one per connection, go
//! through serde (`sonic-rs`). Strings are escaped by `sonic-rs` (SIMD): the
//! same bytes as `serde_json` (`escapes_like_serde_json`).
//! Keys are written in sorted order at every level, the order the lines have
//! always had (`serde_json`'s map order).

use std::fmt::{self, Display};
use std::io::Write;

use serde::{Serialize, Serializer};

use semconv::model::{Connection, ConnectionReport, Exchange, Header, Request, Response};

use super::connection_cache::ConnectionCache;
use super::json_object::{JsonObject, Key};
use crate::internal_events::{add, CaptureStats};
use crate::key;
use crate::track::clock::Rfc3339;
use semconv::model::Output;

/// Bytes of JSON lines gathered before they are written out.
const WRITE_AT: usize = 64 * 1024;

/// Serializes as the JSON string of its `Display` text, without allocating.
///
/// Texts up to 512 bytes (addresses, numbers, timestamps) are formatted on
/// the stack and written as one string: `collect_str` escapes every fragment
/// the formatter writes on its own.
struct Text<T>(T);

/// Longest text [`Text`] formats on the stack.
const TEXT_ON_STACK: usize = 512;

impl<T: Display> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = StackText {
            bytes: [0; TEXT_ON_STACK],
            len: 0,
        };
        if fmt::write(&mut buf, format_args!("{}", self.0)).is_ok() {
            if let Ok(text) = std::str::from_utf8(&buf.bytes[..buf.len]) {
                return s.serialize_str(text);
            }
        }
        s.collect_str(&self.0)
    }
}

/// A text formatted on the stack; writing past its end fails.
struct StackText {
    bytes: [u8; TEXT_ON_STACK],
    len: usize,
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The first 8 bytes of `name`, big-endian, zero-padded: ordered as the
/// names are on their first 8 bytes (header names hold no NUL).
fn name_prefix(name: &str) -> u64 {
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(name.bytes()) {
        *d = s;
    }
    u64::from_be_bytes(b)
}

/// The headers of a message as one object: names sorted, a repeated
/// header's values joined by `, ` in wire order. Sorted on the names' first
/// 8 bytes as one integer, the full names compared only on a tie: comparing
/// the names as strings was ~1.5k instructions per exchange at level
/// `details` (bench/instructions.sh, callgrind).
fn headers(o: &mut JsonObject<'_>, key: Key, h: &[Header]) {
    /// Header lists longer than this sort an index on the heap.
    const HEADERS_ON_STACK: usize = 32;
    let mut stack = [(0u64, 0u16); HEADERS_ON_STACK];
    let mut heap = Vec::new();
    let n = h.len().min(usize::from(u16::MAX));
    let order: &mut [(u64, u16)] = if n <= HEADERS_ON_STACK {
        &mut stack[..n]
    } else {
        heap.resize(n, (0, 0));
        &mut heap
    };
    for (i, (slot, f)) in order.iter_mut().zip(h).enumerate() {
        *slot = (name_prefix(&f.name), i as u16);
    }
    // Name, then wire order: equal names keep their wire order.
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| h[usize::from(a.1)].name.cmp(&h[usize::from(b.1)].name))
            .then(a.1.cmp(&b.1))
    });
    let mut map = o.object(key);
    let mut rest = &order[..];
    while let Some(first) = rest.first() {
        let name = &h[usize::from(first.1)].name;
        let same = rest
            .iter()
            .take_while(|i| i.0 == first.0 && h[usize::from(i.1)].name == *name)
            .count();
        map.data_str(
            name,
            rest[..same]
                .iter()
                .map(|i| h[usize::from(i.1)].value.as_str()),
            ", ",
        );
        rest = &rest[same..];
    }
    map.close();
}

/// A body, losslessly: UTF-8 text as it is, anything else base64; with
/// `body_encoding` naming which (both `null` without a body). Writes
/// `body`, then `body_decoded` (only when decoded), then `body_encoding`.
fn body(o: &mut JsonObject<'_>, body: Option<&[u8]>, decoded: Option<&'static str>) {
    let encoding = match body {
        None => {
            o.null(key!("body"));
            None
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => {
                o.str(key!("body"), text);
                Some("utf-8")
            }
            Err(_) => {
                o.base64(key!("body"), b);
                Some("base64")
            }
        },
    };
    if let Some(d) = decoded {
        o.str(key!("body_decoded"), d);
    }
    o.opt_str(key!("body_encoding"), encoding);
}

fn request(o: &mut JsonObject<'_>, r: &Request, endpoint_id: &str, protocol: &'static str) {
    let mut m = o.object(key!("request"));
    m.str(
        key!("authority"),
        r.authority.as_deref().unwrap_or(endpoint_id),
    );
    body(&mut m, r.body.as_deref(), r.body_decoded);
    m.u64(key!("body_size"), r.body_size);
    m.bool(key!("body_truncated"), r.body_truncated);
    headers(&mut m, key!("headers"), &r.headers);
    m.str(key!("method"), &r.method);
    m.str(key!("path"), r.path());
    m.str(key!("protocol"), protocol);
    m.opt_str(key!("query"), r.query());
    m.str(key!("scheme"), &r.scheme);
    m.str_of(key!("url"), &r.url_parts(endpoint_id));
    m.opt_str(key!("user_agent"), r.user_agent.as_deref());
    m.str(key!("version"), &r.version);
    m.close();
}

fn response(o: &mut JsonObject<'_>, r: &Response) {
    let mut m = o.object(key!("response"));
    body(&mut m, r.body.as_deref(), r.body_decoded);
    m.u64(key!("body_size"), r.body_size);
    m.bool(key!("body_truncated"), r.body_truncated);
    m.opt_str(key!("content_type"), r.content_type.as_deref());
    headers(&mut m, key!("headers"), &r.headers);
    m.u64(key!("status"), u64::from(r.status));
    m.close();
}

/// Bytes as lowercase hex, as in a `traceparent`.
fn hex<const N: usize>(bytes: &[u8; N], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

/// An id (a span's 8 bytes, a trace's 16) as a hex string field, written
/// as it is: hex needs no escaping (the escaping and the UTF-8 check were
/// ~160 instructions an id, bench/instructions.sh).
fn hex_id<const N: usize>(o: &mut JsonObject<'_>, key: Key, id: &[u8; N]) {
    let mut out = [b'"'; 34];
    hex(id, out.get_mut(1..).unwrap_or_default());
    o.raw(key, out.get(..2 * N + 2).unwrap_or_default());
}

/// The metadata fields every line of a connection shares, from
/// `local_address` on (sorted keys), as the JSON that follows the fields of
/// each exchange: `,"local_address":…` without the closing brace.
fn connection_fields(c: &Connection, json: &mut Vec<u8>) {
    let mut m = JsonObject::continued(json);
    m.str(key!("local_address"), &c.endpoints.local.to_string());
    m.str(key!("process_cmdline"), &c.process.command_line());
    m.str(key!("process_exe"), &c.process.exe);
    m.u64_str(key!("process_id"), u64::from(c.process.pid));
    m.str(key!("remote_address"), &c.endpoints.remote.to_string());
    // The TLS keys are there (possibly null) exactly on TLS connections.
    if let Some(t) = &c.tls {
        m.opt_str(key!("tls_probe"), t.probes.first().map(String::as_str));
        m.opt_str(key!("tls_server_name"), t.server_name.as_deref());
        m.opt_u64(key!("tls_version"), t.version.map(u64::from));
    }
}

/// Writes JSON lines, keeping each open connection's shared metadata written.
#[derive(Default)]
pub struct JsonLines {
    connections: ConnectionCache,
}

impl JsonLines {
    /// Append one output's JSON line (with its newline) to `buf`; false (and
    /// `buf` as it was) when it cannot be serialized.
    pub fn write(&mut self, buf: &mut Vec<u8>, o: &Output) -> bool {
        match o {
            Output::Exchange(e) => {
                self.write_exchange(buf, e);
            }
            Output::Report(r) => {
                self.connections.forget(r.connection.id);
                let len = buf.len();
                if write_report(buf, r).is_err() {
                    buf.truncate(len);
                    return false;
                }
            }
        }
        buf.push(b'\n');
        true
    }

    /// The connection's shared metadata, written when first needed or when
    /// it changed.
    fn connection(&mut self, c: &Connection) -> &[u8] {
        self.connections.get_or_write(c, connection_fields)
    }

    /// Append the exchange's JSON (no newline) to `buf`: the transaction
    /// shape of DESIGN.md §4, keys in sorted order.
    fn write_exchange(&mut self, buf: &mut Vec<u8>, e: &Exchange) {
        let c = &e.connection;
        let req_bytes = e.request.as_ref().map_or(0, |r| r.wire_bytes);
        let resp_bytes = e.response.as_ref().map_or(0, |r| r.wire_bytes);
        let (sent, received) = if c.direction.is_egress() {
            (req_bytes, resp_bytes)
        } else {
            (resp_bytes, req_bytes)
        };
        let endpoint_id = e.endpoint_name();
        let mut o = JsonObject::open(buf);
        o.str(key!("direction"), c.direction.as_str());
        o.u64(key!("duration_ms"), e.duration_ns() / 1_000_000);
        o.u64(key!("duration_ns"), e.duration_ns());
        o.bool(key!("gap"), e.gap);
        o.str_array(key!("gap_causes"), &e.gap_causes);
        match &e.grpc {
            Some(g) => {
                let mut m = o.object(key!("grpc"));
                m.opt_str(key!("message"), g.message.as_deref());
                m.str(key!("method"), &g.method);
                m.str(key!("service"), &g.service);
                m.opt_u64(key!("status"), g.status.map(u64::from));
                m.close();
            }
            None => o.null(key!("grpc")),
        }
        match &e.http2 {
            Some(h) => {
                let mut m = o.object(key!("http2"));
                m.bool(key!("goaway"), h.goaway);
                m.bool(key!("headers_degraded"), h.headers_degraded);
                m.opt_u64(key!("reset_code"), h.reset.map(u64::from));
                m.u64(key!("stream_id"), u64::from(h.stream_id));
                m.close();
            }
            None => o.null(key!("http2")),
        }
        let mut m = o.object(key!("metadata"));
        m.u64(key!("bytes_received"), received);
        m.u64(key!("bytes_sent"), sent);
        m.u64_str(key!("connection_id"), c.id);
        m.str(key!("endpoint_id"), &endpoint_id);
        m.buf().extend_from_slice(self.connection(c));
        m.close();
        o.bool(key!("partial"), e.partial);
        match &e.request {
            Some(r) => request(&mut o, r, &endpoint_id, c.protocol.as_str()),
            None => o.null(key!("request")),
        }
        match &e.response {
            Some(r) => response(&mut o, r),
            None => o.null(key!("response")),
        }
        // The span ids the linker gave (absent when no linker ran).
        if let Some(ids) = &e.ids {
            let mut t = o.object(key!("trace"));
            t.str(key!("link"), ids.link.name());
            match &ids.parent_span_id {
                Some(p) => hex_id(&mut t, key!("parent_span_id"), p),
                None => t.null(key!("parent_span_id")),
            }
            hex_id(&mut t, key!("span_id"), &ids.span_id);
            hex_id(&mut t, key!("trace_id"), &ids.trace_id);
            t.close();
        }
        // ASCII digits and separators, nothing to escape: written quoted
        // as they are.
        let mut time = [b'"'; 32];
        time[1..31].copy_from_slice(&Rfc3339(e.start_unix_ns).bytes());
        o.raw(key!("transaction_time"), &time);
        o.close();
    }
}

/// The connection report (keys in sorted order).
#[derive(Serialize)]
struct ReportFields<'a> {
    adopted: bool,
    bytes_received: u64,
    bytes_sent: u64,
    close_reason: &'static str,
    connection_id: Text<u64>,
    data_events: u64,
    direction: &'static str,
    duration_ms: u64,
    endpoint_id: &'a str,
    exchanges: u64,
    gap_exchanges: u64,
    got_protocol_event: bool,
    got_tls_client_hello: bool,
    l7_protocol: &'static str,
    local_address: Text<&'a std::net::SocketAddr>,
    lost_events: u64,
    opened_at: Text<Rfc3339>,
    parse_errors: u64,
    partial_exchanges: u64,
    process_exe: &'a str,
    process_id: Text<u32>,
    remote_address: Text<&'a std::net::SocketAddr>,
    role: &'static str,
    /// Present when the kernel skipped body bytes on purpose.
    #[serde(skip_serializing_if = "is_zero")]
    skipped_bytes: u64,
    tls_alpn: Option<&'a str>,
    tls_probe_types: &'a [String],
    tls_server_name: Option<&'a str>,
    tls_version: Option<u16>,
    truncated_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct ReportLine<'a> {
    connection_report: ReportFields<'a>,
}

/// Append the report's JSON (no newline) to `buf`.
fn write_report(buf: &mut Vec<u8>, r: &ConnectionReport) -> sonic_rs::Result<()> {
    let c = &r.connection;
    let tls = c.tls.as_ref();
    let line = ReportLine {
        connection_report: ReportFields {
            adopted: r.adopted,
            bytes_received: r.bytes_received,
            bytes_sent: r.bytes_sent,
            close_reason: r.close_reason.as_str(),
            connection_id: Text(c.id),
            data_events: r.data_events,
            direction: c.direction.as_str(),
            duration_ms: r.closed_unix_ns.saturating_sub(r.opened_unix_ns) / 1_000_000,
            endpoint_id: &r.endpoint_id,
            exchanges: r.exchanges,
            gap_exchanges: r.gap_exchanges,
            got_protocol_event: r.got_protocol_event,
            got_tls_client_hello: tls.is_some_and(|t| t.got_client_hello),
            l7_protocol: c.protocol.as_str(),
            local_address: Text(&c.endpoints.local),
            lost_events: r.lost_events,
            opened_at: Text(Rfc3339(r.opened_unix_ns)),
            parse_errors: r.parse_errors,
            partial_exchanges: r.partial_exchanges,
            process_exe: &c.process.exe,
            process_id: Text(c.process.pid),
            remote_address: Text(&c.endpoints.remote),
            role: r.role,
            skipped_bytes: r.skipped_bytes,
            tls_alpn: tls.and_then(|t| t.alpn.as_deref()),
            tls_probe_types: tls.map_or(&[], |t| &t.probes),
            tls_server_name: tls.and_then(|t| t.server_name.as_deref()),
            tls_version: tls.and_then(|t| t.version),
            truncated_bytes: r.truncated_bytes,
        },
    };
    sonic_rs::to_writer(buf, &line)
}

/// The stdout exporter: JSON lines gathered in one reused buffer, written
/// out in large writes.
#[derive(Default)]
pub struct Stdout {
    buf: Vec<u8>,
    lines: JsonLines,
    /// Exchange lines in `buf`: counted as exported once written, as lost
    /// (`exporter_stopped_exchanges`) if the write fails.
    exchanges: u64,
    /// Connection-report lines in `buf`, counted likewise.
    reports: u64,
}

impl Stdout {
    /// Write a batch of outputs as JSON lines to stdout and flush.
    pub fn write_batch(&mut self, batch: &[Output], stats: &CaptureStats) {
        let stdout = std::io::stdout();
        let mut w = stdout.lock();
        for o in batch {
            if self.lines.write(&mut self.buf, o) {
                match o {
                    Output::Exchange(_) => self.exchanges += 1,
                    Output::Report(_) => self.reports += 1,
                }
            }
            if self.buf.len() >= WRITE_AT {
                self.write_out(&mut w, stats);
            }
        }
        self.write_out(&mut w, stats);
        let _ = w.flush();
    }

    /// Write the buffered lines. If stdout refuses them (closed pipe, full
    /// disk), every line of the write is counted as lost: part of it may
    /// have gone out, but not as whole lines a reader could rely on.
    fn write_out(&mut self, w: &mut impl Write, stats: &CaptureStats) {
        if !self.buf.is_empty() {
            if w.write_all(&self.buf).is_ok() {
                add(&stats.exported, self.exchanges + self.reports);
            } else {
                add(&stats.exporter_stopped_exchanges, self.exchanges);
                add(&stats.exporter_stopped_reports, self.reports);
            }
        }
        self.buf.clear();
        self.exchanges = 0;
        self.reports = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use semconv::model::{
        CloseReason, Connection, Direction, Endpoints, GrpcInfo, Http2Info, L7Protocol,
        ProcessInfo, Request, Response, TlsInfo,
    };

    use serde_json::{json, Value};

    use super::*;

    /// The line of `o`, parsed; asserting it is byte for byte what
    /// serializing that value gives: keys sorted at every level, as the
    /// lines have always been.
    fn parsed(o: Output) -> Value {
        let mut buf = b"before\n".to_vec();
        assert!(JsonLines::default().write(&mut buf, &o));
        let line = buf
            .strip_prefix(b"before\n")
            .and_then(|l| l.strip_suffix(b"\n"))
            .expect("appended, one newline");
        let v: Value = serde_json::from_slice(line).expect("JSON");
        assert_eq!(
            serde_json::to_string(&v).expect("JSON"),
            std::str::from_utf8(line).expect("UTF-8")
        );
        v
    }

    /// Every character class JSON escapes (controls, quote, backslash),
    /// DEL, multi-byte UTF-8 and long runs: the same bytes as serde_json.
    #[test]
    fn escapes_like_serde_json() {
        let mut all: String = (0u8..=0x7f).map(char::from).collect();
        all.push_str("é€𝄞\u{2028}\u{2029}\"\\/");
        let long = "a\"b".repeat(200) + &"\u{1}x".repeat(100);
        for s in [all.as_str(), long.as_str(), "", "plain"] {
            assert_eq!(
                sonic_rs::to_string(s).expect("sonic"),
                serde_json::to_string(s).expect("serde_json"),
                "{s:?}"
            );
        }
    }

    /// Lines stdout refuses are counted lost, by kind; lines it takes, exported.
    #[test]
    fn refused_lines_are_counted_lost() {
        struct Refuses;
        impl Write for Refuses {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let stats = CaptureStats::default();
        let mut out = Stdout::default();
        let batch = [
            Output::Exchange(Box::new(exchange())),
            Output::Exchange(Box::new(exchange())),
            Output::Report(Box::new(report())),
        ];
        for o in &batch {
            assert!(out.lines.write(&mut out.buf, o));
        }
        (out.exchanges, out.reports) = (2, 1);
        out.write_out(&mut Refuses, &stats);
        let s = stats.snapshot();
        assert_eq!(
            (
                s.exporter_stopped_exchanges,
                s.exporter_stopped_reports,
                s.exported
            ),
            (2, 1, 0)
        );
        assert!(out.buf.is_empty());
        assert!(out.lines.write(&mut out.buf, &batch[0]));
        out.exchanges = 1;
        out.write_out(&mut Vec::new(), &stats);
        assert_eq!(stats.snapshot().exported, 1);
    }

    fn exchange_json(e: &Exchange) -> Value {
        parsed(Output::Exchange(Box::new(e.clone())))
    }

    fn report_json(r: &ConnectionReport) -> Value {
        parsed(Output::Report(Box::new(r.clone())))
    }

    /// 2026-01-01T00:00:00.123456789Z
    const START: u64 = 1_767_225_600_123_456_789;

    fn h(name: &str, value: &str) -> Header {
        Header {
            name: name.to_owned().into(),
            value: value.into(),
        }
    }

    fn connection() -> Connection {
        Connection {
            id: 12,
            process: Arc::new(ProcessInfo {
                pid: 4242,
                exe: "/usr/bin/curl".into(),
                command_args: vec!["curl".into(), "http://api.example.com/items?id=7".into()],
                comm: "curl".into(),
                ..Default::default()
            }),
            direction: Direction::EgressInternal,
            endpoints: Endpoints {
                local: "10.0.0.2:51000".parse().unwrap(),
                remote: "10.0.0.9:8080".parse().unwrap(),
            },
            protocol: L7Protocol::Http1,
            tls: None,
        }
    }

    fn tls() -> TlsInfo {
        TlsInfo {
            version: Some(0x0304),
            server_name: Some("api.example.com".into()),
            cipher: Some("TLS_AES_128_GCM_SHA256".into()),
            alpn_offered: vec!["h2".into(), "http/1.1".into()],
            alpn: Some("h2".into()),
            probes: vec!["openssl".into(), "gnutls".into()],
            got_client_hello: true,
        }
    }

    fn exchange() -> Exchange {
        Exchange {
            connection: connection(),
            request: Some(Request {
                method: "GET".into(),
                target: "/items?id=7".into(),
                authority: Some("api.example.com:8080".into()),
                scheme: "http".into(),
                version: "1.1".into(),
                headers: vec![
                    h("host", "api.example.com:8080"),
                    h("accept", "text/html"),
                    h("user-agent", "curl/8.5.0"),
                    h("accept", "application/json"),
                ],
                body_size: 0,
                body: None,
                body_truncated: false,
                body_decoded: None,
                wire_bytes: 120,
                user_agent: Some("curl/8.5.0".into()),
                traceparent: None,
                tracestate: None,
            }),
            response: Some(Response {
                status: 200,
                headers: vec![
                    h("content-type", "application/json"),
                    h("set-cookie", "a=1"),
                    h("set-cookie", "b=2"),
                    h("set-cookie", "c=3"),
                ],
                body_size: 2,
                body: Some(b"{}".to_vec()),
                body_truncated: false,
                body_decoded: None,
                wire_bytes: 300,
                content_type: Some("application/json".into()),
            }),
            start_unix_ns: START,
            end_unix_ns: START + 2_500_000_999,
            partial: false,
            gap: false,
            gap_causes: Vec::new(),
            http2: None,
            grpc: None,
            link: Default::default(),
            ids: None,
        }
    }

    fn keys(v: &Value) -> BTreeSet<&str> {
        v.as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
        names.iter().copied().collect()
    }

    #[test]
    fn exchange_json_carries_the_span_ids() {
        use semconv::trace_context::{LinkKind, SpanIds};
        let mut e = exchange();
        assert!(
            exchange_json(&e).get("trace").is_none(),
            "no linker, no ids"
        );
        e.ids = Some(SpanIds {
            trace_id: [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36,
            ],
            span_id: [0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
            parent_span_id: Some([0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]),
            parent_is_remote: false,
            sampled: true,
            state: None,
            link: LinkKind::Thread,
        });
        let v = exchange_json(&e);
        assert_eq!(
            v["trace"],
            serde_json::json!({
                "link": "thread",
                "parent_span_id": "b7ad6b7169203331",
                "span_id": "00f067aa0ba902b7",
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            })
        );
        if let Some(ids) = e.ids.as_mut() {
            ids.parent_span_id = None;
            ids.link = LinkKind::Root;
        }
        let v = exchange_json(&e);
        assert_eq!(v["trace"]["parent_span_id"], Value::Null);
        assert_eq!(v["trace"]["link"], "root");
    }

    #[test]
    fn exchange_json_has_the_documented_shape() {
        let v = exchange_json(&exchange());
        assert_eq!(
            keys(&v),
            set(&[
                "metadata",
                "http2",
                "grpc",
                "request",
                "response",
                "transaction_time",
                "duration_ms",
                "duration_ns",
                "direction",
                "partial",
                "gap",
                "gap_causes",
            ])
        );
        assert_eq!(
            keys(&v["metadata"]),
            set(&[
                "process_id",
                "process_exe",
                "process_cmdline",
                "bytes_sent",
                "bytes_received",
                "connection_id",
                "endpoint_id",
                "local_address",
                "remote_address",
            ])
        );
        assert_eq!(
            keys(&v["request"]),
            set(&[
                "method",
                "url",
                "scheme",
                "path",
                "query",
                "authority",
                "protocol",
                "version",
                "user_agent",
                "headers",
                "body_size",
                "body",
                "body_encoding",
                "body_truncated",
            ])
        );
        assert_eq!(
            keys(&v["response"]),
            set(&[
                "status",
                "content_type",
                "headers",
                "body_size",
                "body",
                "body_encoding",
                "body_truncated",
            ])
        );
    }

    #[test]
    fn exchange_json_values() {
        let v = exchange_json(&exchange());
        let m = &v["metadata"];
        // Ids are strings; sizes are numbers.
        assert_eq!(m["process_id"], json!("4242"));
        assert_eq!(m["connection_id"], json!("12"));
        assert_eq!(m["process_exe"], json!("/usr/bin/curl"));
        assert_eq!(
            m["process_cmdline"],
            json!("curl http://api.example.com/items?id=7")
        );
        assert_eq!(m["endpoint_id"], json!("api.example.com:8080"));
        assert_eq!(m["local_address"], json!("10.0.0.2:51000"));
        assert_eq!(m["remote_address"], json!("10.0.0.9:8080"));
        let r = &v["request"];
        assert_eq!(r["method"], json!("GET"));
        assert_eq!(r["url"], json!("http://api.example.com:8080/items?id=7"));
        assert_eq!(r["scheme"], json!("http"));
        assert_eq!(r["path"], json!("/items"));
        assert_eq!(r["query"], json!("id=7"));
        assert_eq!(r["authority"], json!("api.example.com:8080"));
        assert_eq!(r["protocol"], json!("http1"));
        assert_eq!(r["version"], json!("1.1"));
        assert_eq!(r["user_agent"], json!("curl/8.5.0"));
        assert_eq!(r["body_size"], json!(0));
        assert_eq!(r["body"], Value::Null);
        let p = &v["response"];
        assert_eq!(p["status"], json!(200));
        assert_eq!(p["content_type"], json!("application/json"));
        assert_eq!(p["body_size"], json!(2));
        assert_eq!(p["body"], json!("{}"));
        assert_eq!(v["direction"], json!("egress-internal"));
        assert_eq!(v["partial"], json!(false));
        assert_eq!(v["http2"], Value::Null);
        assert_eq!(v["grpc"], Value::Null);
    }

    #[test]
    fn repeated_headers_are_joined_in_wire_order() {
        let v = exchange_json(&exchange());
        assert_eq!(
            v["request"]["headers"],
            json!({
                "host": "api.example.com:8080",
                "accept": "text/html, application/json",
                "user-agent": "curl/8.5.0",
            })
        );
        assert_eq!(
            v["response"]["headers"],
            json!({"content-type": "application/json", "set-cookie": "a=1, b=2, c=3"})
        );
        // No headers kept (summary level): an empty object, not null.
        let mut e = exchange();
        if let Some(r) = e.request.as_mut() {
            r.headers.clear();
        }
        assert_eq!(exchange_json(&e)["request"]["headers"], json!({}));
    }

    #[test]
    fn tls_metadata_is_present_only_for_tls() {
        let plain = exchange_json(&exchange());
        for key in ["tls_version", "tls_server_name", "tls_probe"] {
            assert!(plain["metadata"].get(key).is_none(), "{key} on plaintext");
        }
        let mut e = exchange();
        e.connection.tls = Some(tls().into());
        let v = exchange_json(&e);
        let m = &v["metadata"];
        assert_eq!(m["tls_version"], json!(0x0304));
        assert_eq!(m["tls_server_name"], json!("api.example.com"));
        assert_eq!(m["tls_probe"], json!("openssl"), "the first probe");
        // The SNI names the endpoint.
        assert_eq!(m["endpoint_id"], json!("api.example.com"));
        // TLS seen but nothing known yet: the keys are there, null.
        e.connection.tls = Some(Default::default());
        let m = exchange_json(&e)["metadata"].clone();
        assert_eq!(
            (&m["tls_version"], &m["tls_server_name"], &m["tls_probe"]),
            (&Value::Null, &Value::Null, &Value::Null)
        );
    }

    /// A connection's metadata is written once and reused, written anew
    /// when what it shows changed (TLS learnt, a new process behind the
    /// same id), and forgotten with the connection's report.
    #[test]
    fn connection_metadata_is_reused_until_it_changes() {
        let mut lines = JsonLines::default();
        let line = |lines: &mut JsonLines, e: &Exchange| -> Value {
            let mut buf = Vec::new();
            assert!(lines.write(&mut buf, &Output::Exchange(Box::new(e.clone()))));
            let v: Value = serde_json::from_slice(&buf).expect("JSON");
            assert_eq!(v, exchange_json(e), "as a fresh writer writes it");
            v
        };
        let mut e = exchange();
        line(&mut lines, &e);
        assert_eq!(lines.connections.len(), 1);
        e.connection.tls = Some(tls().into());
        let v = line(&mut lines, &e);
        assert_eq!(v["metadata"]["tls_server_name"], json!("api.example.com"));
        let mut other = (*e.connection.process).clone();
        other.exe = "/usr/bin/wget".into();
        e.connection.process = Arc::new(other);
        let v = line(&mut lines, &e);
        assert_eq!(v["metadata"]["process_exe"], json!("/usr/bin/wget"));
        e.connection.endpoints.remote = "10.1.2.3:8443".parse().expect("address");
        let v = line(&mut lines, &e);
        assert_eq!(v["metadata"]["remote_address"], json!("10.1.2.3:8443"));
        let mut r = report();
        r.connection.id = e.connection.id;
        assert!(lines.write(&mut Vec::new(), &Output::Report(Box::new(r))));
        assert!(lines.connections.is_empty(), "forgotten with the report");
    }

    #[test]
    fn bytes_sent_and_received_follow_the_direction() {
        let egress = exchange_json(&exchange());
        assert_eq!(egress["metadata"]["bytes_sent"], json!(120));
        assert_eq!(egress["metadata"]["bytes_received"], json!(300));
        let mut e = exchange();
        e.connection.direction = Direction::Ingress;
        let ingress = exchange_json(&e);
        assert_eq!(ingress["direction"], json!("ingress"));
        assert_eq!(ingress["metadata"]["bytes_sent"], json!(300));
        assert_eq!(ingress["metadata"]["bytes_received"], json!(120));
    }

    #[test]
    fn durations_and_rfc3339_transaction_time() {
        let v = exchange_json(&exchange());
        assert_eq!(
            v["transaction_time"],
            json!("2026-01-01T00:00:00.123456789Z")
        );
        assert_eq!(v["duration_ns"], json!(2_500_000_999u64));
        assert_eq!(v["duration_ms"], json!(2_500), "whole milliseconds");
        // A clock that went backwards gives 0, not a wrapped number.
        let mut e = exchange();
        e.end_unix_ns = START - 1;
        let v = exchange_json(&e);
        assert_eq!(
            (&v["duration_ns"], &v["duration_ms"]),
            (&json!(0), &json!(0))
        );
    }

    #[test]
    fn a_partial_exchange_without_response_has_a_null_response() {
        let mut e = exchange();
        e.partial = true;
        e.response = None;
        let v = exchange_json(&e);
        assert_eq!(v["partial"], json!(true));
        assert_eq!(v["response"], Value::Null);
        assert_eq!(v["metadata"]["bytes_received"], json!(0));
        let mut e = exchange();
        e.request = None;
        assert_eq!(exchange_json(&e)["request"], Value::Null);
    }

    #[test]
    fn url_and_authority_fall_back_to_the_endpoint_id() {
        let mut e = exchange();
        if let Some(r) = e.request.as_mut() {
            r.authority = None;
        }
        let v = exchange_json(&e);
        assert_eq!(v["metadata"]["endpoint_id"], json!("10.0.0.9:8080"));
        assert_eq!(v["request"]["authority"], json!("10.0.0.9:8080"));
        assert_eq!(
            v["request"]["url"],
            json!("http://10.0.0.9:8080/items?id=7")
        );
    }

    #[test]
    fn http2_and_grpc_sections() {
        let mut e = exchange();
        e.connection.protocol = L7Protocol::Http2;
        e.http2 = Some(Http2Info {
            stream_id: 3,
            reset: Some(8),
            goaway: true,
            headers_degraded: false,
        });
        e.grpc = Some(GrpcInfo {
            service: "helloworld.Greeter".into(),
            method: "SayHello".into(),
            status: Some(12),
            message: Some("unknown method".into()),
        });
        let v = exchange_json(&e);
        assert_eq!(
            v["http2"],
            json!({"stream_id": 3, "reset_code": 8, "goaway": true, "headers_degraded": false})
        );
        assert_eq!(
            v["grpc"],
            json!({
                "service": "helloworld.Greeter",
                "method": "SayHello",
                "status": 12,
                "message": "unknown method",
            })
        );
        assert_eq!(v["request"]["protocol"], json!("http2"));
    }

    #[test]
    fn bodies_are_lossless_text_or_base64() {
        let mut e = exchange();
        let v = exchange_json(&e);
        assert_eq!(v["response"]["body"], json!("{}"));
        assert_eq!(v["response"]["body_encoding"], json!("utf-8"));
        assert_eq!(v["request"]["body"], Value::Null);
        assert_eq!(v["request"]["body_encoding"], Value::Null);
        if let Some(r) = e.response.as_mut() {
            r.body = Some(vec![b'o', b'k', 0xff, 0x00]);
            r.body_truncated = true;
        }
        let v = exchange_json(&e);
        assert_eq!(v["response"]["body"], json!("b2v/AA=="));
        assert_eq!(v["response"]["body_encoding"], json!("base64"));
        assert_eq!(v["response"]["body_truncated"], json!(true));
        assert_eq!(v["gap"], json!(false));
    }

    fn report() -> ConnectionReport {
        ConnectionReport {
            connection: connection(),
            role: "client",
            endpoint_id: "10.0.0.9:8080".into(),
            adopted: false,
            got_protocol_event: true,
            data_events: 6,
            bytes_sent: 412,
            bytes_received: 1229,
            exchanges: 3,
            partial_exchanges: 1,
            gap_exchanges: 0,
            parse_errors: 2,
            lost_events: 4,
            truncated_bytes: 5,
            skipped_bytes: 0,
            opened_unix_ns: START,
            closed_unix_ns: START + 1_750_000_000,
            close_reason: CloseReason::ProcessExit,
        }
    }

    const REPORT_KEYS: &[&str] = &[
        "connection_id",
        "process_id",
        "process_exe",
        "direction",
        "role",
        "local_address",
        "remote_address",
        "endpoint_id",
        "l7_protocol",
        "tls_version",
        "tls_server_name",
        "tls_alpn",
        "tls_probe_types",
        "got_tls_client_hello",
        "got_protocol_event",
        "adopted",
        "data_events",
        "bytes_sent",
        "bytes_received",
        "exchanges",
        "partial_exchanges",
        "gap_exchanges",
        "parse_errors",
        "lost_events",
        "truncated_bytes",
        "opened_at",
        "duration_ms",
        "close_reason",
    ];

    #[test]
    fn report_json_nests_snake_case_keys_under_connection_report() {
        let v = report_json(&report());
        assert_eq!(keys(&v), set(&["connection_report"]));
        let r = &v["connection_report"];
        assert_eq!(keys(r), set(REPORT_KEYS));
        for key in keys(r) {
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{key} is not snake_case"
            );
        }
    }

    #[test]
    fn report_json_values() {
        let v = report_json(&report());
        let r = &v["connection_report"];
        assert_eq!(r["connection_id"], json!("12"));
        assert_eq!(r["process_id"], json!("4242"));
        assert_eq!(r["process_exe"], json!("/usr/bin/curl"));
        assert_eq!(r["direction"], json!("egress-internal"));
        assert_eq!(r["role"], json!("client"));
        assert_eq!(r["local_address"], json!("10.0.0.2:51000"));
        assert_eq!(r["remote_address"], json!("10.0.0.9:8080"));
        assert_eq!(r["endpoint_id"], json!("10.0.0.9:8080"));
        assert_eq!(r["l7_protocol"], json!("http1"));
        assert_eq!(r["got_protocol_event"], json!(true));
        assert_eq!(r["adopted"], json!(false));
        assert_eq!(r["data_events"], json!(6));
        assert_eq!(r["bytes_sent"], json!(412));
        assert_eq!(r["bytes_received"], json!(1229));
        assert_eq!(r["exchanges"], json!(3));
        assert_eq!(r["partial_exchanges"], json!(1));
        assert_eq!(r["parse_errors"], json!(2));
        assert_eq!(r["lost_events"], json!(4));
        assert_eq!(r["truncated_bytes"], json!(5));
        assert_eq!(r["opened_at"], json!("2026-01-01T00:00:00.123456789Z"));
        assert_eq!(r["duration_ms"], json!(1_750));
        assert_eq!(r["close_reason"], json!("process_exit"));
    }

    #[test]
    fn report_tls_fields_are_empty_without_tls_and_filled_with_it() {
        let v = report_json(&report());
        let r = &v["connection_report"];
        assert_eq!(r["tls_version"], Value::Null);
        assert_eq!(r["tls_server_name"], Value::Null);
        assert_eq!(r["tls_alpn"], Value::Null);
        assert_eq!(r["tls_probe_types"], json!([]));
        assert_eq!(r["got_tls_client_hello"], json!(false));

        let mut report = report();
        report.connection.tls = Some(tls().into());
        let v = report_json(&report);
        let r = &v["connection_report"];
        assert_eq!(r["tls_version"], json!(772));
        assert_eq!(r["tls_server_name"], json!("api.example.com"));
        assert_eq!(r["tls_alpn"], json!("h2"));
        assert_eq!(r["tls_probe_types"], json!(["openssl", "gnutls"]));
        assert_eq!(r["got_tls_client_hello"], json!(true));
    }

    #[test]
    fn report_duration_never_wraps() {
        let mut r = report();
        r.closed_unix_ns = r.opened_unix_ns - 1;
        assert_eq!(
            report_json(&r)["connection_report"]["duration_ms"],
            json!(0)
        );
    }
}
