//! Exchange assembly: a parsed HTTP/1 or HTTP/2 exchange plus the
//! [`semconv::model::Connection`] it travelled on becomes a
//! [`semconv::model::Exchange`], cut to the capture level.

use otel_agent_config::{CaptureLevel, CaptureSettings, RuleContext, Settings, REDACTED};
use semconv::model::{self, Connection};

use crate::track::clock::Clock;
use protocols::{http1, http2};

/// What a parser produced.
#[derive(Debug)]
pub enum Parsed {
    /// An HTTP/1.x exchange.
    Http1(http1::Exchange),
    /// One HTTP/2 stream.
    Http2(http2::Exchange),
}

impl From<http1::Exchange> for Parsed {
    fn from(e: http1::Exchange) -> Self {
        Parsed::Http1(e)
    }
}

impl From<http2::Exchange> for Parsed {
    fn from(e: http2::Exchange) -> Self {
        Parsed::Http2(e)
    }
}

impl Parsed {
    /// A side is missing or incomplete (or the stream was reset).
    pub fn partial(&self) -> bool {
        match self {
            Parsed::Http1(e) => e.partial,
            Parsed::Http2(e) => e.partial || e.reset.is_some(),
        }
    }
}

/// An exchange on `connection`; `partial`, `gap`, `http2` and `grpc` are
/// left for the caller.
fn exchange(
    connection: &Connection,
    request: Option<model::Request>,
    response: Option<model::Response>,
    start_ns: u64,
    end_ns: u64,
    clock: &Clock,
) -> model::Exchange {
    model::Exchange {
        connection: connection.clone(),
        request,
        response,
        start_unix_ns: clock.to_unix_ns(start_ns),
        end_unix_ns: clock.to_unix_ns(end_ns.max(start_ns)),
        partial: false,
        gap: false,
        http2: None,
        grpc: None,
    }
}

/// Build the exported exchange at the level the capture rules give it;
/// `None` when that level is `none` or sampling leaves it out.
pub fn assemble(
    connection: &Connection,
    ex: Parsed,
    settings: &Settings,
    clock: &Clock,
) -> Option<model::Exchange> {
    let (method, target, host, status, start) = match &ex {
        Parsed::Http1(e) => (
            e.request.as_ref().map_or("", |r| r.method.as_str()),
            e.request.as_ref().map_or("", |r| r.target.as_str()),
            e.request
                .as_ref()
                .and_then(|r| header_value(&r.headers, "host")),
            e.response.as_ref().map(|r| r.status),
            e.request.as_ref().map_or(0, |r| r.start_ns),
        ),
        Parsed::Http2(e) => (
            e.request.as_ref().and_then(|m| m.method()).unwrap_or(""),
            e.request.as_ref().and_then(|m| m.path()).unwrap_or(""),
            e.request.as_ref().and_then(|m| m.authority()),
            e.response.as_ref().and_then(|m| m.status()),
            e.request.as_ref().map_or(0, |m| m.start_ns),
        ),
    };
    // Rules match the host without its port.
    let host = host
        .map(|h| semconv::spans::split_authority(h).0)
        .or(connection.server_name());
    let path = target.split(['?', '#']).next().unwrap_or("");
    let rule = RuleContext {
        host,
        path,
        method,
        status,
        exe: &connection.process.exe,
    };
    let (level, ratio) = settings.level_for(&rule);
    if level == CaptureLevel::None || !sampled(connection.id, start, ratio) {
        return None;
    }
    let mut out = match ex {
        Parsed::Http1(e) => assemble_http1(connection, e, level, &settings.capture, clock),
        Parsed::Http2(e) => assemble_http2(connection, e, level, &settings.capture, clock),
    }?;
    if let Some(r) = out.request.as_mut() {
        redact_target(r, settings);
    }
    Some(out)
}

/// Deterministic head sampling: the same exchange always gets the same answer.
fn sampled(connection_id: u64, start_ns: u64, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let h = (connection_id ^ start_ns.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 11) as f64 / (1u64 << 53) as f64) < ratio
}

/// Mask the configured query parameters in the request target.
fn redact_target(r: &mut model::Request, settings: &Settings) {
    if let Some((path, query)) = r.target.split_once('?') {
        let masked = settings.redact_query(query);
        if masked != query {
            r.target = format!("{path}?{masked}");
        }
    }
}

/// One HTTP/2 stream as an exchange: pseudo-headers kept among the headers.
fn assemble_http2(
    connection: &Connection,
    ex: http2::Exchange,
    level: CaptureLevel,
    capture: &CaptureSettings,
    clock: &Clock,
) -> Option<model::Exchange> {
    let start = ex
        .request
        .as_ref()
        .or(ex.response.as_ref())
        .map_or(0, |m| m.start_ns);
    let end = ex
        .response
        .as_ref()
        .or(ex.request.as_ref())
        .map_or(start, |m| m.end_ns);
    let default_scheme = if connection.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let degraded = [&ex.request, &ex.response]
        .iter()
        .any(|m| m.as_ref().is_some_and(|m| m.headers_degraded));
    let request = ex.request.map(|mut m| {
        let (body, body_truncated) = kept_body(m.body.take(), m.body_truncated, level);
        let header = |n: &str| m.header(n).map(str::to_string);
        model::Request {
            method: m.method().unwrap_or("").to_string(),
            target: m.path().unwrap_or("").to_string(),
            authority: m.authority().map(str::to_string).or_else(|| header("host")),
            scheme: m.scheme().unwrap_or(default_scheme).to_string(),
            version: "2".to_string(),
            user_agent: header("user-agent"),
            traceparent: header("traceparent"),
            headers: kept_headers(h2_pairs(&m), level, capture),
            body_size: m.body_size,
            wire_bytes: m.wire_bytes,
            body,
            body_truncated,
        }
    });
    let response = ex.response.map(|mut m| {
        let (body, body_truncated) = kept_body(m.body.take(), m.body_truncated, level);
        model::Response {
            status: m.status().unwrap_or(0),
            content_type: m.header("content-type").map(str::to_string),
            headers: kept_headers(h2_pairs(&m), level, capture),
            body_size: m.body_size,
            wire_bytes: m.wire_bytes,
            body,
            body_truncated,
        }
    });
    let mut out = exchange(connection, request, response, start, end, clock);
    out.partial = ex.partial || ex.reset.is_some();
    out.http2 = Some(model::Http2Info {
        stream_id: ex.stream_id,
        reset: ex.reset,
        goaway: ex.goaway,
        headers_degraded: degraded,
    });
    out.grpc = ex.grpc.map(|g| model::GrpcInfo {
        service: g.service,
        method: g.method,
        status: g.status,
        message: g.message,
    });
    Some(out)
}

fn assemble_http1(
    connection: &Connection,
    ex: http1::Exchange,
    level: CaptureLevel,
    capture: &CaptureSettings,
    clock: &Clock,
) -> Option<model::Exchange> {
    let scheme = if connection.tls.is_some() {
        "https"
    } else {
        "http"
    };
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
    let mut out = exchange(connection, request, response, start, end, clock);
    out.partial = ex.partial;
    out.gap = ex.gap;
    Some(out)
}

fn header_value<'a>(headers: &'a [http1::Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Headers kept at `level` (names lowercased): none below `details`;
/// sensitive values redacted.
fn kept_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    level: CaptureLevel,
    capture: &CaptureSettings,
) -> Vec<model::Header> {
    if level < CaptureLevel::Details {
        return Vec::new();
    }
    headers
        .map(|(name, value)| model::Header {
            name: name.to_ascii_lowercase(),
            value: if capture.is_redacted(name) {
                REDACTED.to_string()
            } else {
                value.to_string()
            },
        })
        .collect()
}

fn h1_pairs(headers: &[http1::Header]) -> impl Iterator<Item = (&str, &str)> {
    headers.iter().map(|h| (h.name.as_str(), h.value.as_str()))
}

/// HTTP/2 headers then trailers.
fn h2_pairs(m: &http2::Message) -> impl Iterator<Item = (&str, &str)> {
    m.headers
        .iter()
        .chain(&m.trailers)
        .map(|h| (h.name.as_str(), h.value.as_str()))
}

/// The body kept at `level` (only `full` keeps bodies), and whether bytes of
/// it are missing (nothing is promised, so nothing is missing, below `full`).
fn kept_body(
    body: Option<Vec<u8>>,
    truncated: bool,
    level: CaptureLevel,
) -> (Option<Vec<u8>>, bool) {
    if level < CaptureLevel::Full {
        return (None, false);
    }
    (body, truncated)
}

fn request(
    r: http1::Request,
    scheme: &str,
    level: CaptureLevel,
    capture: &CaptureSettings,
) -> model::Request {
    let (body, body_truncated) = kept_body(r.body, r.body_truncated, level);
    model::Request {
        authority: header_value(&r.headers, "host").map(str::to_string),
        user_agent: header_value(&r.headers, "user-agent").map(str::to_string),
        traceparent: header_value(&r.headers, "traceparent").map(str::to_string),
        headers: kept_headers(h1_pairs(&r.headers), level, capture),
        method: r.method,
        target: r.target,
        scheme: scheme.to_string(),
        version: format!("1.{}", r.version),
        body_size: r.body_size,
        body,
        body_truncated,
        wire_bytes: r.wire_bytes,
    }
}

fn response(r: http1::Response, level: CaptureLevel, capture: &CaptureSettings) -> model::Response {
    let (body, body_truncated) = kept_body(r.body, r.body_truncated, level);
    model::Response {
        content_type: header_value(&r.headers, "content-type").map(str::to_string),
        headers: kept_headers(h1_pairs(&r.headers), level, capture),
        status: r.status,
        body_size: r.body_size,
        body,
        body_truncated,
        wire_bytes: r.wire_bytes,
    }
}
