//! Stdout exporter: one JSON line per exchange and one per connection report.

use std::collections::BTreeMap;
use std::io::Write;

use semconv::model::{ConnectionReport, Exchange, Header};
use serde_json::{json, Map, Value};

use crate::internal_events::{incr, CaptureStats};
use crate::track::clock::rfc3339_nanos;
use semconv::model::Output;

fn headers_json(headers: &[Header]) -> Value {
    let mut map: BTreeMap<&str, String> = BTreeMap::new();
    for h in headers {
        map.entry(h.name.as_str())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&h.value);
            })
            .or_insert_with(|| h.value.clone());
    }
    json!(map)
}

/// `body_decoded` (the content coding the body was decoded from), only
/// when decompression decoded it: the line keeps its shape otherwise.
fn with_decoded(message: &mut Value, decoded: Option<&'static str>) {
    if let (Some(coding), Some(m)) = (decoded, message.as_object_mut()) {
        m.insert("body_decoded".into(), json!(coding));
    }
}

/// A body as JSON, losslessly: UTF-8 text as it is, anything else base64;
/// with the encoding used (`null` without a body).
fn body_json(body: &Option<Vec<u8>>) -> (Value, Value) {
    use base64::Engine as _;
    match body {
        None => (Value::Null, Value::Null),
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => (json!(text), json!("utf-8")),
            Err(_) => (
                json!(base64::engine::general_purpose::STANDARD.encode(b)),
                json!("base64"),
            ),
        },
    }
}

/// The transaction shape of DESIGN.md §4.
pub fn exchange_json(e: &Exchange) -> Value {
    let c = &e.connection;
    let req_bytes = e.request.as_ref().map_or(0, |r| r.wire_bytes);
    let resp_bytes = e.response.as_ref().map_or(0, |r| r.wire_bytes);
    let (sent, received) = if c.direction.is_egress() {
        (req_bytes, resp_bytes)
    } else {
        (resp_bytes, req_bytes)
    };
    let endpoint_id = e.endpoint_id();
    let mut metadata = Map::new();
    metadata.insert("process_id".into(), json!(c.process.pid.to_string()));
    metadata.insert("process_exe".into(), json!(c.process.exe));
    metadata.insert("process_cmdline".into(), json!(c.process.command_line()));
    metadata.insert("bytes_sent".into(), json!(sent));
    metadata.insert("bytes_received".into(), json!(received));
    metadata.insert("connection_id".into(), json!(c.id.to_string()));
    metadata.insert("endpoint_id".into(), json!(endpoint_id));
    metadata.insert("local_address".into(), json!(c.endpoints.local.to_string()));
    metadata.insert(
        "remote_address".into(),
        json!(c.endpoints.remote.to_string()),
    );
    if let Some(tls) = &c.tls {
        metadata.insert("tls_version".into(), json!(tls.version));
        metadata.insert("tls_server_name".into(), json!(tls.server_name));
        metadata.insert("tls_probe".into(), json!(tls.probes.first()));
    }
    let request = e.request.as_ref().map_or(Value::Null, |r| {
        let (body, body_encoding) = body_json(&r.body);
        let mut request = json!({
            "method": r.method,
            "url": r.url(&endpoint_id),
            "scheme": r.scheme,
            "path": r.path(),
            "query": r.query(),
            "authority": r.authority.as_deref().unwrap_or(&endpoint_id),
            "protocol": c.protocol.as_str(),
            "version": r.version,
            "user_agent": r.user_agent,
            "headers": headers_json(&r.headers),
            "body_size": r.body_size,
            "body": body,
            "body_encoding": body_encoding,
            "body_truncated": r.body_truncated,
        });
        with_decoded(&mut request, r.body_decoded);
        request
    });
    let response = e.response.as_ref().map_or(Value::Null, |r| {
        let (body, body_encoding) = body_json(&r.body);
        let mut response = json!({
            "status": r.status,
            "content_type": r.content_type,
            "headers": headers_json(&r.headers),
            "body_size": r.body_size,
            "body": body,
            "body_encoding": body_encoding,
            "body_truncated": r.body_truncated,
        });
        with_decoded(&mut response, r.body_decoded);
        response
    });
    let http2 = e.http2.as_ref().map_or(Value::Null, |h| {
        json!({
            "stream_id": h.stream_id,
            "reset_code": h.reset,
            "goaway": h.goaway,
            "headers_degraded": h.headers_degraded,
        })
    });
    let grpc = e.grpc.as_ref().map_or(Value::Null, |g| {
        json!({ "service": g.service, "method": g.method, "status": g.status, "message": g.message })
    });
    json!({
        "metadata": metadata,
        "http2": http2,
        "grpc": grpc,
        "request": request,
        "response": response,
        "transaction_time": rfc3339_nanos(e.start_unix_ns),
        "duration_ms": e.duration_ns() / 1_000_000,
        "duration_ns": e.duration_ns(),
        "direction": c.direction.as_str(),
        "partial": e.partial,
        "gap": e.gap,
        "gap_causes": e.gap_causes,
    })
}

/// The connection report.
pub fn report_json(r: &ConnectionReport) -> Value {
    let c = &r.connection;
    let tls = c.tls.as_ref();
    json!({ "connection_report": {
        "connection_id": c.id.to_string(),
        "process_id": c.process.pid.to_string(),
        "process_exe": c.process.exe,
        "direction": c.direction.as_str(),
        "role": r.role,
        "local_address": c.endpoints.local.to_string(),
        "remote_address": c.endpoints.remote.to_string(),
        "endpoint_id": r.endpoint_id,
        "l7_protocol": c.protocol.as_str(),
        "tls_version": tls.and_then(|t| t.version),
        "tls_server_name": tls.and_then(|t| t.server_name.clone()),
        "tls_alpn": tls.and_then(|t| t.alpn.clone()),
        "tls_probe_types": tls.map(|t| t.probes.clone()).unwrap_or_default(),
        "got_tls_client_hello": tls.is_some_and(|t| t.got_client_hello),
        "got_protocol_event": r.got_protocol_event,
        "adopted": r.adopted,
        "data_events": r.data_events,
        "bytes_sent": r.bytes_sent,
        "bytes_received": r.bytes_received,
        "exchanges": r.exchanges,
        "partial_exchanges": r.partial_exchanges,
        "gap_exchanges": r.gap_exchanges,
        "parse_errors": r.parse_errors,
        "lost_events": r.lost_events,
        "truncated_bytes": r.truncated_bytes,
        "opened_at": rfc3339_nanos(r.opened_unix_ns),
        "duration_ms": r.closed_unix_ns.saturating_sub(r.opened_unix_ns) / 1_000_000,
        "close_reason": r.close_reason.as_str(),
    }})
}

/// Write a batch of outputs as JSON lines to stdout and flush.
pub fn write_batch(batch: &[Output], stats: &CaptureStats) {
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    for o in batch {
        let v = match o {
            Output::Exchange(e) => exchange_json(e),
            Output::Report(r) => report_json(r),
        };
        if serde_json::to_writer(&mut w, &v).is_ok() && w.write_all(b"\n").is_ok() {
            incr(&stats.exported);
        }
    }
    let _ = w.flush();
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use semconv::model::{
        CloseReason, Connection, Direction, Endpoints, GrpcInfo, Http2Info, L7Protocol,
        ProcessInfo, Request, Response, TlsInfo,
    };

    use super::*;

    /// 2026-01-01T00:00:00.123456789Z
    const START: u64 = 1_767_225_600_123_456_789;

    fn h(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
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
        e.connection.tls = Some(tls());
        let v = exchange_json(&e);
        let m = &v["metadata"];
        assert_eq!(m["tls_version"], json!(0x0304));
        assert_eq!(m["tls_server_name"], json!("api.example.com"));
        assert_eq!(m["tls_probe"], json!("openssl"), "the first probe");
        // The SNI names the endpoint.
        assert_eq!(m["endpoint_id"], json!("api.example.com"));
        // TLS seen but nothing known yet: the keys are there, null.
        e.connection.tls = Some(TlsInfo::default());
        let m = exchange_json(&e)["metadata"].clone();
        assert_eq!(
            (&m["tls_version"], &m["tls_server_name"], &m["tls_probe"]),
            (&Value::Null, &Value::Null, &Value::Null)
        );
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
        report.connection.tls = Some(tls());
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
