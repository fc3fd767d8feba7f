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
    metadata.insert("process_cmdline".into(), json!(c.process.cmdline));
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
        json!({
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
        })
    });
    let response = e.response.as_ref().map_or(Value::Null, |r| {
        let (body, body_encoding) = body_json(&r.body);
        json!({
            "status": r.status,
            "content_type": r.content_type,
            "headers": headers_json(&r.headers),
            "body_size": r.body_size,
            "body": body,
            "body_encoding": body_encoding,
            "body_truncated": r.body_truncated,
        })
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
