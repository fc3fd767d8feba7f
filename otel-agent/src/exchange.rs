//! Exchange assembly: a parsed HTTP/1 exchange plus its connection context
//! becomes a [`semconv::model::Exchange`], cut to the capture level.

use std::sync::Arc;

use otel_agent_config::{CaptureLevel, CaptureSettings, REDACTED};
use semconv::model::{self, Direction, Endpoints, L7Protocol, ProcessInfo, TlsInfo};

use crate::clock::Clock;
use crate::protocols::http1;

/// What an exchange inherits from its connection.
#[derive(Clone, Debug)]
pub struct ConnContext {
    /// Connection id.
    pub connection_id: u64,
    /// The observed process.
    pub process: Arc<ProcessInfo>,
    /// Ingress / egress.
    pub direction: Direction,
    /// Addresses.
    pub endpoints: Endpoints,
    /// Application protocol.
    pub protocol: L7Protocol,
    /// TLS facts, when TLS.
    pub tls: Option<TlsInfo>,
}

/// Build the exported exchange; `None` when the level is `none`.
pub fn assemble(
    ctx: &ConnContext,
    ex: http1::Exchange,
    capture: &CaptureSettings,
    clock: &Clock,
) -> Option<model::Exchange> {
    let level = capture.level;
    if level == CaptureLevel::None {
        return None;
    }
    let scheme = if ctx.tls.is_some() { "https" } else { "http" };
    let start = ex
        .request
        .as_ref()
        .map(|r| r.start_ns)
        .or(ex.response.as_ref().map(|r| r.start_ns))
        .unwrap_or(0);
    let end = ex
        .response
        .as_ref()
        .map(|r| r.end_ns)
        .or(ex.request.as_ref().map(|r| r.end_ns))
        .unwrap_or(start);
    let request = ex.request.map(|r| request(r, scheme, level, capture));
    let response = ex.response.map(|r| response(r, level, capture));
    Some(model::Exchange {
        connection_id: ctx.connection_id,
        process: (*ctx.process).clone(),
        direction: ctx.direction,
        endpoints: ctx.endpoints,
        protocol: ctx.protocol,
        tls: ctx.tls.clone(),
        request,
        response,
        start_unix_ns: clock.to_unix_ns(start),
        end_unix_ns: clock.to_unix_ns(end.max(start)),
        partial: ex.partial,
        gap: ex.gap,
        http2: None,
        grpc: None,
    })
}

fn header_value<'a>(headers: &'a [http1::Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Headers kept at `level`: none below `details`; redacted values otherwise.
fn kept_headers(
    headers: &[http1::Header],
    level: CaptureLevel,
    capture: &CaptureSettings,
) -> Vec<model::Header> {
    if level < CaptureLevel::Details {
        return Vec::new();
    }
    headers
        .iter()
        .map(|h| model::Header {
            name: h.name.to_ascii_lowercase(),
            value: if capture.is_redacted(&h.name) {
                REDACTED.to_string()
            } else {
                h.value.clone()
            },
        })
        .collect()
}

fn kept_body(body: Option<Vec<u8>>, level: CaptureLevel) -> Option<Vec<u8>> {
    if level < CaptureLevel::Full {
        return None;
    }
    body
}

fn request(
    r: http1::Request,
    scheme: &str,
    level: CaptureLevel,
    capture: &CaptureSettings,
) -> model::Request {
    model::Request {
        authority: header_value(&r.headers, "host").map(str::to_string),
        user_agent: header_value(&r.headers, "user-agent").map(str::to_string),
        traceparent: header_value(&r.headers, "traceparent").map(str::to_string),
        headers: kept_headers(&r.headers, level, capture),
        method: r.method,
        target: r.target,
        scheme: scheme.to_string(),
        version: format!("1.{}", r.version),
        body_size: r.body_size,
        body: kept_body(r.body, level),
        wire_bytes: r.wire_bytes,
    }
}

fn response(r: http1::Response, level: CaptureLevel, capture: &CaptureSettings) -> model::Response {
    model::Response {
        content_type: header_value(&r.headers, "content-type").map(str::to_string),
        headers: kept_headers(&r.headers, level, capture),
        status: r.status,
        body_size: r.body_size,
        body: kept_body(r.body, level),
        wire_bytes: r.wire_bytes,
    }
}
