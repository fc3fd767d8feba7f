//! One log record per finished connection: the connection report.

use std::net::SocketAddr;

use crate::attributes as k;
use crate::model::{ConnectionReport, L7Protocol};
use crate::resource::process_attributes;
use crate::spans::{ip_string, tls_protocol};
use crate::value::Attribute;

/// Event name of the connection report log record.
pub const CONNECTION_REPORT_EVENT: &str = "tap.connection.report";

/// Log severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// A healthy capture.
    Info,
    /// The capture was unhealthy (see [`capture_issues`]).
    Warn,
}

impl Severity {
    /// OpenTelemetry severity number (`INFO` = 9, `WARN` = 13).
    pub fn number(self) -> i32 {
        match self {
            Severity::Info => 9,
            Severity::Warn => 13,
        }
    }

    /// Severity text: `INFO` or `WARN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
        }
    }
}

/// A log record, ready for the agent to convert into its SDK's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecordData {
    /// Severity.
    pub severity: Severity,
    /// One-line human summary.
    pub body: String,
    /// Event name ([`CONNECTION_REPORT_EVENT`]).
    pub event_name: &'static str,
    /// Timestamp (the connection's close time), Unix nanoseconds.
    pub timestamp_unix_ns: u64,
    /// Attributes.
    pub attributes: Vec<Attribute>,
}

/// TLS was seen (a ClientHello) but no probe delivered plaintext.
pub const ISSUE_TLS_WITHOUT_PROBE: &str = "tls_without_plaintext_probe";
/// Data events were lost in the kernel.
pub const ISSUE_LOST_EVENTS: &str = "lost_events";
/// The protocol parser desynchronised.
pub const ISSUE_PARSE_ERRORS: &str = "parse_errors";
/// Data flowed but no protocol was decided.
pub const ISSUE_PROTOCOL_UNKNOWN: &str = "protocol_unknown";

/// Why a connection's capture was unhealthy; empty when it was healthy.
///
/// A connection that is simply not HTTP (`other`) is not unhealthy. The
/// issues are: TLS ClientHello seen without a plaintext probe, lost events,
/// parse errors, and data events on a connection whose protocol stayed
/// `unknown`.
pub fn capture_issues(r: &ConnectionReport) -> Vec<&'static str> {
    let c = &r.connection;
    let mut issues = Vec::new();
    if c.tls
        .as_ref()
        .is_some_and(|t| t.got_client_hello && t.probes.is_empty())
    {
        issues.push(ISSUE_TLS_WITHOUT_PROBE);
    }
    if r.lost_events > 0 {
        issues.push(ISSUE_LOST_EVENTS);
    }
    if r.parse_errors > 0 {
        issues.push(ISSUE_PARSE_ERRORS);
    }
    if c.protocol == L7Protocol::Unknown && r.data_events > 0 {
        issues.push(ISSUE_PROTOCOL_UNKNOWN);
    }
    issues
}

/// A socket address as text, IPv4-mapped IPv6 addresses shown as IPv4.
fn addr_string(a: SocketAddr) -> String {
    let ip = ip_string(a.ip());
    if ip.contains(':') {
        format!("[{ip}]:{}", a.port())
    } else {
        format!("{ip}:{}", a.port())
    }
}

/// Byte count for humans: `412 B`, `1.2 KiB`, `3.0 MiB`, ...
pub fn human_bytes(n: u64) -> String {
    const UNITS: &[&str] = &["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = "KiB";
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The one-line summary, e.g.
/// `connection 12 curl → httpbin.org (1.2.3.4:443) http2 over TLS 1.3 via openssl: 3 exchanges, 412 B sent, 1.2 KiB received, closed (close)`.
fn summary(r: &ConnectionReport, issues: &[&str]) -> String {
    let c = &r.connection;
    let name = match c.process.exe_name() {
        "" => format!("pid {}", c.process.pid),
        n => n.to_string(),
    };
    let remote = addr_string(c.endpoints.remote);
    let peer = if !c.direction.is_egress() {
        format!("← {remote}")
    } else if r.endpoint_id.is_empty() || r.endpoint_id == remote {
        format!("→ {remote}")
    } else {
        format!("→ {} ({remote})", r.endpoint_id)
    };
    let mut tls = String::new();
    if let Some(t) = &c.tls {
        tls.push_str(" over TLS");
        if let Some((name, version)) = t.version.and_then(tls_protocol) {
            tls = format!(" over {} {version}", name.to_ascii_uppercase());
        }
        if !t.probes.is_empty() {
            tls.push_str(" via ");
            tls.push_str(&t.probes.join("+"));
        }
    }
    let mut exchanges = plural(r.exchanges, "exchange", "exchanges");
    if r.partial_exchanges > 0 {
        exchanges.push_str(&format!(" ({} partial)", r.partial_exchanges));
    }
    let mut line = format!(
        "connection {} {name} {peer} {}{tls}: {exchanges}, {} sent, {} received, closed ({})",
        c.id,
        c.protocol.as_str(),
        human_bytes(r.bytes_sent),
        human_bytes(r.bytes_received),
        r.close_reason.as_str(),
    );
    if !issues.is_empty() {
        line.push_str("; issues: ");
        line.push_str(&issues.join(", "));
    }
    line
}

/// The log record of a connection report.
///
/// Severity is [`Severity::Warn`] when [`capture_issues`] finds anything (the
/// issues are listed in `tap.capture.issues`), [`Severity::Info`] otherwise.
pub fn connection_report(r: &ConnectionReport) -> LogRecordData {
    let c = &r.connection;
    let issues = capture_issues(r);
    let mut a: Vec<Attribute> = Vec::with_capacity(40);
    a.push(Attribute::uint(k::TAP_CONNECTION_ID, c.id));
    a.push(Attribute::str(k::TAP_ENDPOINT_ID, r.endpoint_id.as_str()));
    a.push(Attribute::str(k::TAP_DIRECTION, c.direction.as_str()));
    a.push(Attribute::str(k::TAP_ROLE, r.role));
    a.push(Attribute::str(k::TAP_L7_PROTOCOL, c.protocol.as_str()));
    if let Some(t) = &c.tls {
        crate::spans::tls_handshake_attributes(t, &mut a);
        // The SNI under its current name (`tls.client.server_name` is
        // deprecated in the pinned conventions: "Replaced by `server.address`").
        if let Some(sni) = t.server_name.as_deref().filter(|s| !s.is_empty()) {
            a.push(Attribute::str(k::SERVER_ADDRESS, sni));
        }
        a.push(Attribute::str_array(k::TAP_TLS_PROBES, t.probes.clone()));
    }
    a.push(Attribute::bool(
        k::TAP_TLS_CLIENT_HELLO,
        c.tls.as_ref().is_some_and(|t| t.got_client_hello),
    ));
    a.push(Attribute::bool(k::TAP_PROTOCOL_EVENT, r.got_protocol_event));
    a.push(Attribute::uint(k::TAP_DATA_EVENTS, r.data_events));
    a.push(Attribute::uint(k::TAP_WIRE_BYTES_SENT, r.bytes_sent));
    a.push(Attribute::uint(
        k::TAP_WIRE_BYTES_RECEIVED,
        r.bytes_received,
    ));
    a.push(Attribute::uint(
        k::TAP_DURATION_MS,
        r.closed_unix_ns.saturating_sub(r.opened_unix_ns) / 1_000_000,
    ));
    a.push(Attribute::uint(k::TAP_EXCHANGES, r.exchanges));
    a.push(Attribute::uint(
        k::TAP_PARTIAL_EXCHANGES,
        r.partial_exchanges,
    ));
    a.push(Attribute::uint(k::TAP_GAP_EXCHANGES, r.gap_exchanges));
    a.push(Attribute::uint(k::TAP_PARSE_ERRORS, r.parse_errors));
    a.push(Attribute::uint(k::TAP_LOST_EVENTS, r.lost_events));
    a.push(Attribute::uint(k::TAP_TRUNCATED_BYTES, r.truncated_bytes));
    if r.skipped_bytes > 0 {
        a.push(Attribute::uint(k::TAP_SKIPPED_BYTES, r.skipped_bytes));
    }
    a.push(Attribute::bool(k::TAP_ADOPTED, r.adopted));
    a.push(Attribute::str(k::TAP_CLOSE_REASON, r.close_reason.as_str()));
    a.push(Attribute::str(
        k::NETWORK_PEER_ADDRESS,
        ip_string(c.endpoints.remote.ip()),
    ));
    a.push(Attribute::int(
        k::NETWORK_PEER_PORT,
        i64::from(c.endpoints.remote.port()),
    ));
    a.push(Attribute::str(
        k::NETWORK_LOCAL_ADDRESS,
        ip_string(c.endpoints.local.ip()),
    ));
    a.push(Attribute::int(
        k::NETWORK_LOCAL_PORT,
        i64::from(c.endpoints.local.port()),
    ));
    process_attributes(&c.process, &mut a);
    if !issues.is_empty() {
        a.push(Attribute::str_array(
            k::TAP_CAPTURE_ISSUES,
            issues.iter().map(|s| s.to_string()).collect(),
        ));
    }
    LogRecordData {
        severity: if issues.is_empty() {
            Severity::Info
        } else {
            Severity::Warn
        },
        body: summary(r, &issues),
        event_name: CONNECTION_REPORT_EVENT,
        timestamp_unix_ns: r.closed_unix_ns,
        attributes: a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CloseReason, Connection, Direction, Endpoints, ProcessInfo, TlsInfo};
    use crate::value::{find, AttrValue};

    fn report() -> ConnectionReport {
        ConnectionReport {
            connection: Connection {
                id: 12,
                process: std::sync::Arc::new(ProcessInfo {
                    pid: 4242,
                    exe: "/usr/bin/curl".into(),
                    command_args: vec!["curl".into(), "http://127.0.0.1:8080/".into()],
                    comm: "curl".into(),
                    ..Default::default()
                }),
                direction: Direction::EgressInternal,
                endpoints: Endpoints {
                    local: "127.0.0.1:51000".parse().unwrap(),
                    remote: "127.0.0.1:8080".parse().unwrap(),
                },
                protocol: L7Protocol::Http1,
                tls: None,
            },
            role: "client",
            endpoint_id: "127.0.0.1:8080".into(),
            adopted: false,
            got_protocol_event: true,
            data_events: 6,
            bytes_sent: 412,
            bytes_received: 1229,
            exchanges: 3,
            partial_exchanges: 0,
            gap_exchanges: 0,
            parse_errors: 0,
            lost_events: 0,
            truncated_bytes: 0,
            skipped_bytes: 0,
            opened_unix_ns: 1_000_000_000,
            closed_unix_ns: 3_500_000_000,
            close_reason: CloseReason::Close,
        }
    }

    fn tls_report() -> ConnectionReport {
        let plain = report();
        ConnectionReport {
            connection: Connection {
                direction: Direction::EgressExternal,
                endpoints: Endpoints {
                    local: "10.0.0.2:51000".parse().unwrap(),
                    remote: "93.184.216.34:443".parse().unwrap(),
                },
                protocol: L7Protocol::Http2,
                tls: Some(std::sync::Arc::new(TlsInfo {
                    version: Some(0x0304),
                    server_name: Some("httpbin.org".into()),
                    cipher: Some("TLS_AES_256_GCM_SHA384".into()),
                    alpn_offered: vec!["h2".into()],
                    alpn: Some("h2".into()),
                    probes: vec!["openssl".into()],
                    got_client_hello: true,
                })),
                ..plain.connection
            },
            endpoint_id: "httpbin.org".into(),
            ..plain
        }
    }

    /// [`report`] with its connection edited.
    fn report_on(edit: impl FnOnce(&mut Connection)) -> ConnectionReport {
        let mut r = report();
        edit(&mut r.connection);
        r
    }

    fn s<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
        find(attrs, key).and_then(AttrValue::as_str)
    }
    fn i(attrs: &[Attribute], key: &str) -> Option<i64> {
        find(attrs, key).and_then(AttrValue::as_int)
    }
    fn b(attrs: &[Attribute], key: &str) -> Option<bool> {
        find(attrs, key).and_then(AttrValue::as_bool)
    }

    #[test]
    fn plaintext_report() {
        let log = connection_report(&report());
        assert_eq!(log.severity, Severity::Info);
        assert_eq!(log.event_name, "tap.connection.report");
        assert_eq!(log.timestamp_unix_ns, 3_500_000_000);
        assert_eq!(
            log.body,
            "connection 12 curl → 127.0.0.1:8080 http1: 3 exchanges, 412 B sent, 1.2 KiB received, closed (close)"
        );
        let a = &log.attributes;
        assert_eq!(i(a, k::TAP_CONNECTION_ID), Some(12));
        assert_eq!(s(a, k::TAP_ENDPOINT_ID), Some("127.0.0.1:8080"));
        assert_eq!(s(a, k::TAP_DIRECTION), Some("egress-internal"));
        assert_eq!(s(a, k::TAP_ROLE), Some("client"));
        assert_eq!(s(a, k::TAP_L7_PROTOCOL), Some("http1"));
        assert_eq!(find(a, k::TLS_PROTOCOL_VERSION), None);
        assert_eq!(find(a, k::TAP_TLS_PROBES), None);
        assert_eq!(b(a, k::TAP_TLS_CLIENT_HELLO), Some(false));
        assert_eq!(b(a, k::TAP_PROTOCOL_EVENT), Some(true));
        assert_eq!(i(a, k::TAP_DATA_EVENTS), Some(6));
        // The socket's byte totals, named as such.
        assert_eq!(i(a, "tap.wire_bytes_sent"), Some(412));
        assert_eq!(i(a, "tap.wire_bytes_received"), Some(1229));
        assert_eq!(find(a, "tap.bytes_sent"), None);
        assert_eq!(i(a, k::TAP_DURATION_MS), Some(2500));
        assert_eq!(i(a, k::TAP_EXCHANGES), Some(3));
        assert_eq!(i(a, k::TAP_PARTIAL_EXCHANGES), Some(0));
        assert_eq!(i(a, k::TAP_PARSE_ERRORS), Some(0));
        assert_eq!(i(a, k::TAP_LOST_EVENTS), Some(0));
        assert_eq!(i(a, k::TAP_TRUNCATED_BYTES), Some(0));
        assert_eq!(b(a, k::TAP_ADOPTED), Some(false));
        assert_eq!(s(a, k::TAP_CLOSE_REASON), Some("close"));
        assert_eq!(s(a, k::NETWORK_PEER_ADDRESS), Some("127.0.0.1"));
        assert_eq!(i(a, k::NETWORK_PEER_PORT), Some(8080));
        assert_eq!(s(a, k::NETWORK_LOCAL_ADDRESS), Some("127.0.0.1"));
        assert_eq!(i(a, k::NETWORK_LOCAL_PORT), Some(51000));
        assert_eq!(i(a, k::PROCESS_PID), Some(4242));
        assert_eq!(s(a, k::PROCESS_EXECUTABLE_NAME), Some("curl"));
        assert_eq!(s(a, k::PROCESS_EXECUTABLE_PATH), Some("/usr/bin/curl"));
        assert_eq!(
            find(a, "process.command_args"),
            Some(&AttrValue::StrArray(vec![
                "curl".into(),
                "http://127.0.0.1:8080/".into()
            ]))
        );
        assert_eq!(find(a, k::TAP_CAPTURE_ISSUES), None);
    }

    #[test]
    fn tls_report_attributes() {
        let log = connection_report(&tls_report());
        assert_eq!(log.severity, Severity::Info);
        assert_eq!(
            log.body,
            "connection 12 curl → httpbin.org (93.184.216.34:443) http2 over TLS 1.3 via openssl: 3 exchanges, 412 B sent, 1.2 KiB received, closed (close)"
        );
        let a = &log.attributes;
        assert_eq!(s(a, k::TLS_PROTOCOL_NAME), Some("tls"));
        assert_eq!(s(a, k::TLS_PROTOCOL_VERSION), Some("1.3"));
        // The SNI, under its current name.
        assert_eq!(s(a, "server.address"), Some("httpbin.org"));
        assert_eq!(find(a, "tls.client.server_name"), None);
        assert_eq!(s(a, k::TLS_NEXT_PROTOCOL), Some("h2"));
        assert_eq!(s(a, k::TLS_CIPHER), Some("TLS_AES_256_GCM_SHA384"));
        assert_eq!(
            find(a, k::TAP_TLS_PROBES),
            Some(&AttrValue::StrArray(vec!["openssl".into()]))
        );
        assert_eq!(b(a, k::TAP_TLS_CLIENT_HELLO), Some(true));
    }

    #[test]
    fn severity_rules() {
        let warn = |r: ConnectionReport, issue: &str| {
            let log = connection_report(&r);
            assert_eq!(log.severity, Severity::Warn, "{issue}");
            assert_eq!(
                find(&log.attributes, k::TAP_CAPTURE_ISSUES),
                Some(&AttrValue::StrArray(vec![issue.to_string()])),
                "{issue}"
            );
            assert!(
                log.body.ends_with(&format!("; issues: {issue}")),
                "{}",
                log.body
            );
        };
        // (a) TLS without a plaintext probe.
        let mut r = tls_report();
        if let Some(t) = r.connection.tls.as_mut().map(std::sync::Arc::make_mut) {
            t.probes.clear();
        }
        warn(r, ISSUE_TLS_WITHOUT_PROBE);
        // (b) lost events, (c) parse errors.
        warn(
            ConnectionReport {
                lost_events: 3,
                ..report()
            },
            ISSUE_LOST_EVENTS,
        );
        warn(
            ConnectionReport {
                parse_errors: 1,
                ..report()
            },
            ISSUE_PARSE_ERRORS,
        );
        // (d) data on a connection whose protocol was never decided.
        warn(
            report_on(|c| c.protocol = L7Protocol::Unknown),
            ISSUE_PROTOCOL_UNKNOWN,
        );

        // Healthy: non-HTTP traffic, an idle unknown connection, TLS without
        // a ClientHello (adopted mid-stream) and no probe.
        for r in [
            report_on(|c| c.protocol = L7Protocol::Other),
            ConnectionReport {
                data_events: 0,
                ..report_on(|c| c.protocol = L7Protocol::Unknown)
            },
            report_on(|c| c.tls = Some(Default::default())),
        ] {
            assert_eq!(connection_report(&r).severity, Severity::Info, "{r:?}");
        }
        // Several issues at once.
        let r = ConnectionReport {
            lost_events: 1,
            parse_errors: 2,
            ..report()
        };
        assert_eq!(
            capture_issues(&r),
            vec![ISSUE_LOST_EVENTS, ISSUE_PARSE_ERRORS]
        );
        assert_eq!(Severity::Warn.number(), 13);
        assert_eq!(Severity::Info.as_str(), "INFO");
    }

    #[test]
    fn ingress_and_odd_reports() {
        let r = ConnectionReport {
            role: "server",
            exchanges: 1,
            partial_exchanges: 1,
            gap_exchanges: 0,
            bytes_sent: 5 * 1024 * 1024,
            bytes_received: 0,
            opened_unix_ns: 10,
            closed_unix_ns: 5,
            close_reason: CloseReason::ProcessExit,
            adopted: true,
            ..report_on(|c| {
                c.direction = Direction::Ingress;
                c.endpoints = Endpoints {
                    local: "[::ffff:127.0.0.1]:8080".parse().unwrap(),
                    remote: "[::1]:40000".parse().unwrap(),
                };
                c.process = std::sync::Arc::new(ProcessInfo {
                    pid: 7,
                    ..Default::default()
                });
            })
        };
        let log = connection_report(&r);
        assert_eq!(
            log.body,
            "connection 12 pid 7 ← [::1]:40000 http1: 1 exchange (1 partial), 5.0 MiB sent, 0 B received, closed (process_exit)"
        );
        let a = &log.attributes;
        assert_eq!(s(a, k::NETWORK_LOCAL_ADDRESS), Some("127.0.0.1"));
        assert_eq!(s(a, k::NETWORK_PEER_ADDRESS), Some("::1"));
        assert_eq!(i(a, k::TAP_DURATION_MS), Some(0));
        assert_eq!(b(a, k::TAP_ADOPTED), Some(true));
        assert_eq!(find(a, k::PROCESS_EXECUTABLE_NAME), None);
    }

    #[test]
    fn human_byte_counts() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1229), "1.2 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }
}
