//! Exchange assembly: a parsed HTTP/1 or HTTP/2 exchange plus the
//! [`semconv::model::Connection`] it travelled on becomes a
//! [`semconv::model::Exchange`], cut to the capture level.

use std::borrow::Cow;

use otel_agent_config::{CaptureLevel, CaptureSettings, RuleContext, Settings, REDACTED};
use semconv::model::{self, Connection};

use crate::track::clock::Clock;
use crate::track::decompress::{self, Coding};
use protocols::names::StaticNames;
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

    /// Bytes of the exchange were missing (see its gap causes).
    pub fn gap(&self) -> bool {
        match self {
            Parsed::Http1(e) => e.gap,
            Parsed::Http2(e) => e.gap,
        }
    }
}

/// An exchange on `connection`; `partial`, `gap`, `http2` and `grpc` are
/// left for the caller. Boxed where it is built: the exchange (768 bytes)
/// is handed on boxed (`Output::Exchange`), and each move of it on the way
/// was a copy (~650 instructions per exchange: bench/instructions.sh,
/// callgrind).
fn exchange(
    connection: &Connection,
    request: Option<model::Request>,
    response: Option<model::Response>,
    start_ns: u64,
    end_ns: u64,
    clock: &Clock,
) -> Box<model::Exchange> {
    Box::new(model::Exchange {
        connection: connection.clone(),
        request,
        response,
        start_unix_ns: clock.to_unix_ns(start_ns),
        end_unix_ns: clock.to_unix_ns(end_ns.max(start_ns)),
        partial: false,
        gap: false,
        gap_causes: Vec::new(),
        http2: None,
        grpc: None,
        link: Default::default(),
        ids: None,
    })
}

/// Build the exported exchange at the level the capture rules give it;
/// `None` when that level is `none` or sampling leaves it out. The parts it
/// keeps are taken out of `ex` where it lies (the tracker's list of parsed
/// exchanges): moving the 320-byte record out of the list and into the
/// call was two copies of it per exchange, ~190 instructions
/// (bench/instructions.sh, callgrind).
pub fn assemble(
    connection: &Connection,
    ex: &mut Parsed,
    settings: &Settings,
    clock: &Clock,
) -> Option<Box<model::Exchange>> {
    let start = match &*ex {
        Parsed::Http1(e) => e.request.as_ref().map_or(0, |r| r.start_ns),
        Parsed::Http2(e) => e.request.as_ref().map_or(0, |m| m.start_ns),
    };
    let (level, ratio) = settings.level_for(|| rule_context(connection, ex));
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

/// What the capture rules match an exchange on.
fn rule_context<'a>(connection: &'a Connection, ex: &'a Parsed) -> RuleContext<'a> {
    let (method, target, host, status) = match ex {
        Parsed::Http1(e) => (
            e.request.as_ref().map_or("", |r| r.method.as_str()),
            e.request.as_ref().map_or("", |r| r.target.as_str()),
            e.request
                .as_ref()
                .and_then(|r| header_value(&r.headers, "host")),
            e.response.as_ref().map(|r| r.status),
        ),
        Parsed::Http2(e) => (
            e.request.as_ref().and_then(|m| m.method()).unwrap_or(""),
            e.request.as_ref().and_then(|m| m.path()).unwrap_or(""),
            e.request.as_ref().and_then(|m| m.authority()),
            e.response.as_ref().and_then(|m| m.status()),
        ),
    };
    // Rules match the host without its port.
    let host = host
        .map(|h| semconv::spans::split_authority(h).0)
        .or(connection.server_name());
    RuleContext {
        host,
        path: target.split(['?', '#']).next().unwrap_or(""),
        method,
        status,
        exe: &connection.process.exe,
    }
}

/// Deterministic head sampling: the same exchange always gets the same answer.
fn sampled(connection_id: u64, start_ns: u64, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let h = (connection_id ^ start_ns.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 11) as f64 / (1u64 << 53) as f64) < ratio
}

/// Mask the configured query parameters in the request target, and in the
/// HTTP/2 `:path` pseudo-header kept among the headers (it is the target).
fn redact_target(r: &mut model::Request, settings: &Settings) {
    if let Some(masked) = masked_target(&r.target, settings) {
        r.target = masked;
    }
    for h in r.headers.iter_mut().filter(|h| h.name == ":path") {
        if let Some(masked) = masked_target(&h.value, settings) {
            h.value = masked;
        }
    }
}

/// `target` with the configured query parameters masked; `None` when nothing changes.
fn masked_target(target: &str, settings: &Settings) -> Option<String> {
    let (path, query) = target.split_once('?')?;
    let masked = settings.redact_query(query);
    (masked != query).then(|| format!("{path}?{masked}"))
}

/// One HTTP/2 stream as an exchange: pseudo-headers kept among the headers.
fn assemble_http2(
    connection: &Connection,
    ex: &mut http2::Exchange,
    level: CaptureLevel,
    capture: &CaptureSettings,
    clock: &Clock,
) -> Option<Box<model::Exchange>> {
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
    let request = ex.request.take().map(|mut m| {
        let (body, body_truncated) = kept_body(m.body.take(), m.body_truncated, level);
        let (body, body_truncated, body_decoded) = decoded(
            body,
            body_truncated,
            || m.header("content-encoding"),
            capture,
        );
        // One pass over the header fields; the trailers (rare) are looked
        // in again only for what the headers lack.
        let [method, path, authority, host, user_agent, traceparent, tracestate] = first_of(
            &m.headers,
            |h| &h.name,
            [
                ":method",
                ":path",
                ":authority",
                "host",
                "user-agent",
                "traceparent",
                "tracestate",
            ],
        );
        let trailers = !m.trailers.is_empty();
        let traceparent = (traceparent.is_some() || trailers)
            .then(|| combined(h2_pairs(&m), "traceparent"))
            .flatten();
        let tracestate = (tracestate.is_some() || trailers)
            .then(|| combined(h2_pairs(&m), "tracestate"))
            .flatten();
        let method = h2_value_at(&mut m.headers, method, level);
        let target = h2_value_at(&mut m.headers, path, level);
        let authority = match (authority, host) {
            (Some(i), _) | (None, Some(i)) => h2_value_at(&mut m.headers, Some(i), level),
            (None, None) if trailers => field_value(h2_all_fields(&mut m), "host", level),
            (None, None) => None,
        };
        let user_agent = match user_agent {
            Some(i) => h2_value_at(&mut m.headers, Some(i), level),
            None if trailers => field_value(h2_all_fields(&mut m), "user-agent", level),
            None => None,
        };
        model::Request {
            method: method.unwrap_or_default(),
            target: target.unwrap_or_default(),
            authority,
            scheme: match m.scheme() {
                None => default_scheme.into(),
                Some("https") => "https".into(),
                Some("http") => "http".into(),
                Some(other) => other.to_string().into(),
            },
            version: "2".into(),
            user_agent,
            traceparent,
            tracestate,
            headers: kept_headers(h2_fields(&mut m), level, capture),
            body_size: m.body_size,
            wire_bytes: m.wire_bytes,
            body,
            body_truncated,
            body_decoded,
        }
    });
    let response = ex.response.take().map(|mut m| {
        let (body, body_truncated) = kept_body(m.body.take(), m.body_truncated, level);
        let (body, body_truncated, body_decoded) = decoded(
            body,
            body_truncated,
            || m.header("content-encoding"),
            capture,
        );
        let [content_type] = first_of(&m.headers, |h| &h.name, ["content-type"]);
        let content_type = match content_type {
            Some(i) => h2_value_at(&mut m.headers, Some(i), level),
            None if !m.trailers.is_empty() => {
                field_value(h2_all_fields(&mut m), "content-type", level)
            }
            None => None,
        };
        model::Response {
            status: m.status().unwrap_or(0),
            content_type,
            headers: kept_headers(h2_fields(&mut m), level, capture),
            body_size: m.body_size,
            wire_bytes: m.wire_bytes,
            body,
            body_truncated,
            body_decoded,
        }
    });
    let mut out = exchange(connection, request, response, start, end, clock);
    out.partial = ex.partial || ex.reset.is_some();
    out.gap = ex.gap;
    out.gap_causes = ex.gaps.names().collect();
    out.http2 = Some(model::Http2Info {
        stream_id: ex.stream_id,
        reset: ex.reset,
        goaway: ex.goaway,
        headers_degraded: degraded,
    });
    out.grpc = ex.grpc.take().map(|g| model::GrpcInfo {
        service: g.service,
        method: g.method,
        status: g.status,
        message: g.message,
    });
    Some(out)
}

fn assemble_http1(
    connection: &Connection,
    ex: &mut http1::Exchange,
    level: CaptureLevel,
    capture: &CaptureSettings,
    clock: &Clock,
) -> Option<Box<model::Exchange>> {
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
    let request = ex
        .request
        .take()
        .map(|r| request(r, scheme, level, capture));
    let response = ex.response.take().map(|r| response(r, level, capture));
    let mut out = exchange(connection, request, response, start, end, clock);
    out.partial = ex.partial;
    out.gap = ex.gap;
    out.gap_causes = ex.gaps.names().collect();
    Some(out)
}

/// The value of the first field named `name`: moved out of the field when
/// the fields are not exported at `level` (below `details`, see
/// [`kept_headers`]), else copied. The copies were ~300 instructions per
/// exchange at level `summary` (bench/instructions.sh, callgrind).
fn field_value<'f>(
    fields: impl IntoIterator<Item = (&'f str, &'f mut Cow<'static, str>)>,
    name: &str,
    level: CaptureLevel,
) -> Option<String> {
    let (_, value) = fields
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    Some(taken(value, level))
}

/// A kept field's value: moved out of the field below `details` (where no
/// field is exported), else copied.
fn taken<T: Default + AsRef<str> + Into<String>>(value: &mut T, level: CaptureLevel) -> String {
    if level < CaptureLevel::Details {
        std::mem::take(value).into()
    } else {
        value.as_ref().to_owned()
    }
}

/// Where the first field of each of `names` is among `headers`, found in
/// one pass (a pass per name, five per request with the content coding,
/// was ~170 instructions more per HTTP/1 exchange at level `details`,
/// bench/instructions.sh).
fn first_of<T, const N: usize>(
    fields: &[T],
    name_of: impl Fn(&T) -> &str,
    names: [&str; N],
) -> [Option<usize>; N] {
    let mut found = [None; N];
    for (i, f) in fields.iter().enumerate() {
        let name = name_of(f);
        for (slot, wanted) in found.iter_mut().zip(names) {
            if slot.is_none() && name.len() == wanted.len() && name.eq_ignore_ascii_case(wanted) {
                *slot = Some(i);
            }
        }
    }
    found
}

/// The value of HTTP/2 field `i`, [`taken`].
fn h2_value_at(
    headers: &mut [http2::Header],
    i: Option<usize>,
    level: CaptureLevel,
) -> Option<String> {
    Some(taken(&mut headers.get_mut(i?)?.value, level))
}

/// The value of HTTP/1 field `i`, [`taken`].
fn value_at(
    headers: &mut [http1::Header],
    i: Option<usize>,
    level: CaptureLevel,
) -> Option<String> {
    Some(taken(&mut headers.get_mut(i?)?.value, level))
}

/// An HTTP/2 message's header fields then its trailer fields, where
/// `Message::header` looks, for [`field_value`].
fn h2_all_fields(m: &mut http2::Message) -> impl Iterator<Item = (&str, &mut Cow<'static, str>)> {
    m.headers
        .iter_mut()
        .chain(m.trailers.iter_mut())
        .map(|h| (h.name.as_ref(), &mut h.value))
}

fn header_value<'a>(headers: &'a [http1::Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// The value of every field named `name`, joined by `,` (how HTTP combines a
/// repeated field); `None` when there is none.
fn combined<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The request and response header fields this module reads below level
/// `details` (where no header is exported): the HTTP/1 parser keeps only
/// these (reading the framing fields before it drops the rest) when no rule
/// can raise an exchange to `details`.
pub const SUMMARY_HEADERS: StaticNames = StaticNames::new(&[
    "host",
    "user-agent",
    "traceparent",
    "tracestate",
    "content-type",
    "content-encoding",
]);

/// Headers kept at `level` (names lowercased): none below `details`;
/// sensitive values redacted. Owned names and values (the parser's own
/// HTTP/1 fields) are moved rather than copied, the name lowercased in place
/// (the copies were ~9 % of the default mode's CPU: perf, BENCHMARKS.md
/// "Where the agent's time goes"); a static name (HPACK's table) stays
/// borrowed unless it has upper case.
fn kept_headers<N, V>(
    headers: impl IntoIterator<Item = (N, V)>,
    level: CaptureLevel,
    capture: &CaptureSettings,
) -> Vec<model::Header>
where
    N: AsRef<str> + Into<Cow<'static, str>>,
    V: Into<String>,
{
    if level < CaptureLevel::Details {
        return Vec::new();
    }
    headers
        .into_iter()
        .map(|(name, value)| {
            let redacted = capture.is_redacted(name.as_ref());
            let name = match name.into() {
                Cow::Owned(mut n) => {
                    n.make_ascii_lowercase();
                    Cow::Owned(n)
                }
                Cow::Borrowed(n) if n.bytes().any(|b| b.is_ascii_uppercase()) => {
                    Cow::Owned(n.to_ascii_lowercase())
                }
                borrowed => borrowed,
            };
            model::Header {
                name,
                value: if redacted {
                    REDACTED.to_string()
                } else {
                    value.into()
                },
            }
        })
        .collect()
}

fn h1_pairs(headers: &[http1::Header]) -> impl Iterator<Item = (&str, &str)> {
    headers.iter().map(|h| (h.name.as_ref(), h.value.as_str()))
}

/// HTTP/2 headers then trailers, taken out of the message: a value (or
/// name) the parser owns is moved into the kept header, not copied again
/// (HTTP/2 details with stdout 38,494 → 38,313 instructions per exchange,
/// bench/instructions.sh).
fn h2_fields(
    m: &mut http2::Message,
) -> impl Iterator<Item = (Cow<'static, str>, Cow<'static, str>)> {
    std::mem::take(&mut m.headers)
        .into_iter()
        .chain(std::mem::take(&mut m.trailers))
        .map(|h| (h.name, h.value))
}

/// HTTP/2 headers then trailers.
fn h2_pairs(m: &http2::Message) -> impl Iterator<Item = (&str, &str)> {
    m.headers
        .iter()
        .chain(&m.trailers)
        .map(|h| (h.name.as_ref(), h.value.as_ref()))
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

/// The body decoded from its content coding when `capture.decompress` is
/// on and the whole body was kept (a cut body stays as captured); decoding
/// stops at the body limit (then the decoded body is truncated).
fn decoded<'a>(
    body: Option<Vec<u8>>,
    truncated: bool,
    content_encoding: impl FnOnce() -> Option<&'a str>,
    capture: &CaptureSettings,
) -> (Option<Vec<u8>>, bool, Option<&'static str>) {
    // Off, no body kept (below `full`) or cut: nothing to look at.
    if !capture.decompress || truncated {
        return (body, truncated, None);
    }
    let Some(b) = body else {
        return (None, false, None);
    };
    // The field is looked for only now: below `full` no body is kept.
    let Some(coding) = content_encoding().and_then(Coding::of) else {
        return (Some(b), false, None);
    };
    match decompress::decode(coding, &b, capture.max_body_bytes) {
        Some(d) => (Some(d.body), d.truncated, Some(coding.as_str())),
        None => (Some(b), false, None),
    }
}

fn request(
    mut r: http1::Request,
    scheme: &'static str,
    level: CaptureLevel,
    capture: &CaptureSettings,
) -> model::Request {
    let (body, body_truncated) = kept_body(r.body, r.body_truncated, level);
    let (body, body_truncated, body_decoded) = decoded(
        body,
        body_truncated,
        || header_value(&r.headers, "content-encoding"),
        capture,
    );
    let [host, user_agent, traceparent, tracestate] = first_of(
        &r.headers,
        |h| &h.name,
        ["host", "user-agent", "traceparent", "tracestate"],
    );
    // Several trace-context fields are joined (rare: looked for again).
    let traceparent = traceparent.and_then(|_| combined(h1_pairs(&r.headers), "traceparent"));
    let tracestate = tracestate.and_then(|_| combined(h1_pairs(&r.headers), "tracestate"));
    let authority = value_at(&mut r.headers, host, level);
    let user_agent = value_at(&mut r.headers, user_agent, level);
    model::Request {
        authority,
        user_agent,
        traceparent,
        tracestate,
        headers: kept_headers(
            r.headers
                .into_iter()
                .map(|h| (h.name.into_owned(), h.value)),
            level,
            capture,
        ),
        method: r.method,
        target: r.target,
        scheme: scheme.into(),
        version: match r.version {
            0 => "1.0".into(),
            1 => "1.1".into(),
            v => format!("1.{v}").into(),
        },
        body_size: r.body_size,
        body,
        body_truncated,
        body_decoded,
        wire_bytes: r.wire_bytes,
    }
}

fn response(
    mut r: http1::Response,
    level: CaptureLevel,
    capture: &CaptureSettings,
) -> model::Response {
    let (body, body_truncated) = kept_body(r.body, r.body_truncated, level);
    let (body, body_truncated, body_decoded) = decoded(
        body,
        body_truncated,
        || header_value(&r.headers, "content-encoding"),
        capture,
    );
    let [content_type] = first_of(&r.headers, |h| &h.name, ["content-type"]);
    let content_type = value_at(&mut r.headers, content_type, level);
    model::Response {
        content_type,
        headers: kept_headers(
            r.headers
                .into_iter()
                .map(|h| (h.name.into_owned(), h.value)),
            level,
            capture,
        ),
        status: r.status,
        body_size: r.body_size,
        body,
        body_truncated,
        body_decoded,
        wire_bytes: r.wire_bytes,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use otel_agent_config::{from_yaml_str, DEFAULT_REDACTED_HEADERS};
    use protocols::Side;
    use semconv::model::{Direction, Endpoints, L7Protocol, ProcessInfo, TlsInfo};

    use super::*;

    use crate::track::parser::{Parser, ParserLimits};

    /// [`super::assemble`] of an exchange the test owns.
    fn assemble(
        connection: &Connection,
        mut ex: Parsed,
        settings: &Settings,
        clock: &Clock,
    ) -> Option<Box<model::Exchange>> {
        super::assemble(connection, &mut ex, settings, clock)
    }

    /// Wall clock = monotonic + this.
    const OFFSET_NS: i128 = 1_767_225_600_000_000_000;

    fn clock() -> Clock {
        Clock::with_offset(OFFSET_NS)
    }

    fn wall(monotonic_ns: u64) -> u64 {
        (i128::from(monotonic_ns) + OFFSET_NS) as u64
    }

    fn settings(yaml: &str) -> Settings {
        from_yaml_str(yaml, "test.yaml").expect("test settings parse")
    }

    fn at_level(level: &str) -> Settings {
        settings(&format!("capture:\n  level: {level}\n  body_limit: 1KiB\n"))
    }

    fn process(exe: &str) -> Arc<ProcessInfo> {
        Arc::new(ProcessInfo {
            pid: 4242,
            exe: exe.into(),
            comm: exe.rsplit('/').next().unwrap_or(exe).into(),
            ..Default::default()
        })
    }

    fn connection() -> Connection {
        Connection {
            id: 7,
            process: process("/usr/bin/curl"),
            direction: Direction::EgressInternal,
            endpoints: Endpoints {
                local: "10.0.0.2:40000".parse().unwrap(),
                remote: "10.0.0.9:8080".parse().unwrap(),
            },
            protocol: L7Protocol::Http1,
            tls: None,
        }
    }

    fn tls_connection(sni: Option<&str>) -> Connection {
        Connection {
            tls: Some(std::sync::Arc::new(TlsInfo {
                version: Some(0x0304),
                server_name: sni.map(str::to_string),
                ..Default::default()
            })),
            ..connection()
        }
    }

    fn h1_headers(pairs: &[(&str, &str)]) -> Vec<http1::Header> {
        pairs
            .iter()
            .map(|(name, value)| http1::Header {
                name: name.to_string().into(),
                value: value.to_string(),
            })
            .collect()
    }

    /// A complete HTTP/1.1 request sent at 1 000..2 000 ns, with a body.
    fn h1_request(method: &str, target: &str, headers: &[(&str, &str)]) -> http1::Request {
        http1::Request {
            body_capped: false,
            method: method.into(),
            target: target.into(),
            version: 1,
            headers: h1_headers(headers),
            body_size: 4,
            body: Some(b"ping".to_vec()),
            body_truncated: false,
            start_ns: 1_000,
            end_ns: 2_000,
            complete: true,
            wire_bytes: 120,
        }
    }

    /// A complete HTTP/1.1 response received at 3 000..5 000 ns, with a body.
    fn h1_response(status: u16, headers: &[(&str, &str)]) -> http1::Response {
        http1::Response {
            body_capped: false,
            status,
            reason: "Whatever".into(),
            version: 1,
            headers: h1_headers(headers),
            body_size: 4,
            body: Some(b"pong".to_vec()),
            body_truncated: false,
            start_ns: 3_000,
            end_ns: 5_000,
            complete: true,
            informational: Vec::new(),
            wire_bytes: 90,
        }
    }

    fn h1(request: http1::Request, response: http1::Response) -> Parsed {
        Parsed::Http1(http1::Exchange {
            gaps: Default::default(),
            request: Some(request),
            response: Some(response),
            partial: false,
            gap: false,
            upgraded: false,
        })
    }

    /// `method target` to `host`, answered with `status`.
    fn h1_to(host: &str, method: &str, target: &str, status: u16) -> Parsed {
        h1(
            h1_request(
                method,
                target,
                &[("Host", host), ("User-Agent", "curl/8.5.0")],
            ),
            h1_response(status, &[("Content-Type", "text/plain")]),
        )
    }

    /// A GET answered 200 with a few ordinary headers on each side.
    fn plain_get() -> Parsed {
        h1(
            h1_request(
                "GET",
                "/items?id=7",
                &[
                    ("Host", "api.example.com:8080"),
                    ("User-Agent", "curl/8.5.0"),
                    ("Accept", "*/*"),
                ],
            ),
            h1_response(
                200,
                &[
                    ("Content-Type", "application/json"),
                    ("Content-Length", "4"),
                ],
            ),
        )
    }

    fn h2_message(headers: &[(&str, &str)], start_ns: u64, end_ns: u64) -> http2::Message {
        http2::Message {
            body_capped: false,
            headers: headers
                .iter()
                .map(|(name, value)| http2::Header {
                    name: name.to_string().into(),
                    value: value.to_string().into(),
                })
                .collect(),
            trailers: Vec::new(),
            body_size: 3,
            body: Some(b"abc".to_vec()),
            body_truncated: false,
            wire_bytes: 60,
            start_ns,
            end_ns,
            complete: true,
            headers_degraded: false,
        }
    }

    fn h2(request: &[(&str, &str)], response: &[(&str, &str)]) -> http2::Exchange {
        http2::Exchange {
            gap: false,
            gaps: Default::default(),
            stream_id: 5,
            request: Some(h2_message(request, 1_000, 1_500)),
            response: Some(h2_message(response, 2_000, 4_000)),
            reset: None,
            goaway: false,
            partial: false,
            grpc: None,
        }
    }

    fn h2_connection() -> Connection {
        Connection {
            protocol: L7Protocol::Http2,
            ..connection()
        }
    }

    /// The level an exchange was kept at, read back from what was kept:
    /// `none` when nothing came out.
    fn kept_level(out: Option<Box<model::Exchange>>) -> CaptureLevel {
        let Some(ex) = out else {
            return CaptureLevel::None;
        };
        let req = ex.request.expect("request kept");
        match (req.headers.is_empty(), req.body.is_some()) {
            (true, false) => CaptureLevel::Summary,
            (false, false) => CaptureLevel::Details,
            (false, true) => CaptureLevel::Full,
            (true, true) => panic!("a body without headers: {req:?}"),
        }
    }

    fn level_of(ex: Parsed, conn: &Connection, s: &Settings) -> CaptureLevel {
        kept_level(assemble(conn, ex, s, &clock()))
    }

    fn header<'a>(headers: &'a [model::Header], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Feeds `(side, ts, bytes)` to the parser the tracker would build for
    /// `protocol` under `s`, then closes it.
    fn parse(protocol: L7Protocol, s: &Settings, chunks: &[(Side, u64, &[u8])]) -> Vec<Parsed> {
        let mut parser = Parser::new(protocol, ParserLimits::of(s));
        let mut out = Vec::new();
        for &(side, ts, bytes) in chunks {
            parser.push(side, ts, bytes);
            parser.drain_into(&mut out);
        }
        out.extend(parser.close(1_000_000));
        out
    }

    /// An HTTP/2 fixture of `protocols/testdata/http2` as chunks in relay
    /// order; chunk i at (i + 1) * 1000 ns.
    fn h2_fixture(
        req: &'static [u8],
        resp: &'static [u8],
        order: &str,
    ) -> Vec<(Side, u64, &'static [u8])> {
        let (mut req, mut resp) = (req, resp);
        let mut out = Vec::new();
        for (i, line) in order.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let (tag, len) = line.split_once(' ').expect("order line");
            let len: usize = len.trim().parse().expect("order length");
            let (side, src) = if tag == "C" {
                (Side::Request, &mut req)
            } else {
                (Side::Response, &mut resp)
            };
            let (head, tail) = src.split_at(len);
            *src = tail;
            out.push((side, (i as u64 + 1) * 1000, head));
        }
        out
    }

    // ---------------------------------------------------------------- levels

    #[test]
    fn level_none_exports_nothing() {
        assert!(assemble(&connection(), plain_get(), &at_level("none"), &clock()).is_none());
        let h2 = h2(
            &[(":method", "GET"), (":path", "/"), (":authority", "a")],
            &[(":status", "200")],
        );
        assert!(assemble(&h2_connection(), h2.into(), &at_level("none"), &clock()).is_none());
    }

    #[test]
    fn summary_keeps_request_line_status_and_sizes_but_no_headers_or_body() {
        let ex = assemble(&connection(), plain_get(), &at_level("summary"), &clock())
            .expect("kept at summary");
        let req = ex.request.expect("request");
        assert_eq!(req.method, "GET");
        assert_eq!(req.target, "/items?id=7");
        assert_eq!(req.authority.as_deref(), Some("api.example.com:8080"));
        assert_eq!(req.scheme, "http");
        assert_eq!(req.version, "1.1");
        assert_eq!(req.user_agent.as_deref(), Some("curl/8.5.0"));
        assert_eq!((req.body_size, req.wire_bytes), (4, 120));
        assert!(req.headers.is_empty(), "{:?}", req.headers);
        assert_eq!(req.body, None);
        let resp = ex.response.expect("response");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.content_type.as_deref(), Some("application/json"));
        assert_eq!((resp.body_size, resp.wire_bytes), (4, 90));
        assert!(resp.headers.is_empty(), "{:?}", resp.headers);
        assert_eq!(resp.body, None);
        assert_eq!(ex.connection, connection());
        assert_eq!(
            (ex.partial, ex.gap, ex.http2, ex.grpc),
            (false, false, None, None)
        );
    }

    #[test]
    fn trace_context_fields_are_kept_at_summary_and_repeated_ones_joined() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ex = h1(
            h1_request(
                "GET",
                "/",
                &[
                    ("Host", "a"),
                    ("traceparent", tp),
                    ("tracestate", "rojo=1"),
                    ("TraceState", "congo=2"),
                ],
            ),
            h1_response(200, &[("Content-Length", "0")]),
        );
        let req = assemble(&connection(), ex, &at_level("summary"), &clock())
            .and_then(|e| e.request)
            .expect("request");
        assert_eq!(req.traceparent.as_deref(), Some(tp));
        assert_eq!(req.tracestate.as_deref(), Some("rojo=1,congo=2"));
        // Two traceparent fields: joined, which no parser accepts.
        let ex = h1(
            h1_request("GET", "/", &[("traceparent", tp), ("traceparent", tp)]),
            h1_response(200, &[("Content-Length", "0")]),
        );
        let req = assemble(&connection(), ex, &at_level("summary"), &clock())
            .and_then(|e| e.request)
            .expect("request");
        assert_eq!(req.traceparent, Some(format!("{tp},{tp}")));
        assert_eq!(req.tracestate, None);
    }

    #[test]
    fn details_keeps_headers_with_lowercase_names_in_wire_order_but_no_body() {
        let ex = assemble(&connection(), plain_get(), &at_level("details"), &clock())
            .expect("kept at details");
        let req = ex.request.expect("request");
        let names: Vec<&str> = req.headers.iter().map(|h| h.name.as_ref()).collect();
        assert_eq!(names, ["host", "user-agent", "accept"]);
        assert_eq!(header(&req.headers, "host"), Some("api.example.com:8080"));
        assert_eq!(header(&req.headers, "accept"), Some("*/*"));
        assert_eq!(req.body, None);
        let resp = ex.response.expect("response");
        assert_eq!(
            header(&resp.headers, "content-type"),
            Some("application/json")
        );
        assert_eq!(header(&resp.headers, "content-length"), Some("4"));
        assert_eq!(resp.body, None);
    }

    #[test]
    fn decompression_decodes_whole_bodies_and_keeps_the_wire_size() {
        use std::io::Write;
        let text = b"{\"items\": [1, 2, 3]} ".repeat(40);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let wire = gz.finish().unwrap();
        let gzipped = |truncated: bool| {
            let mut resp = h1_response(200, &[("Content-Encoding", "gzip")]);
            resp.body_size = wire.len() as u64;
            resp.body = Some(wire.clone());
            resp.body_truncated = truncated;
            h1(h1_request("GET", "/j", &[("Host", "h")]), resp)
        };
        let mut settings = at_level("full");
        // Off by default: the body stays as it came.
        let ex = assemble(&connection(), gzipped(false), &settings, &clock()).unwrap();
        let resp = ex.response.unwrap();
        assert_eq!(
            (resp.body.as_deref(), resp.body_decoded),
            (Some(&wire[..]), None)
        );
        settings.capture.decompress = true;
        let ex = assemble(&connection(), gzipped(false), &settings, &clock()).unwrap();
        let resp = ex.response.unwrap();
        assert_eq!(resp.body.as_deref(), Some(&text[..]));
        assert_eq!(resp.body_decoded, Some("gzip"));
        assert_eq!(resp.body_size, wire.len() as u64, "the size on the wire");
        assert!(!resp.body_truncated);
        // A cut body is not decoded.
        let ex = assemble(&connection(), gzipped(true), &settings, &clock()).unwrap();
        let resp = ex.response.unwrap();
        assert_eq!((resp.body_decoded, resp.body_truncated), (None, true));
        // Decoding stops at the body limit.
        settings.capture.max_body_bytes = 100;
        let ex = assemble(&connection(), gzipped(false), &settings, &clock()).unwrap();
        let resp = ex.response.unwrap();
        assert_eq!(resp.body.as_deref(), Some(&text[..100]));
        assert_eq!(
            (resp.body_decoded, resp.body_truncated),
            (Some("gzip"), true)
        );
    }

    #[test]
    fn full_keeps_headers_and_bodies() {
        let ex = assemble(&connection(), plain_get(), &at_level("full"), &clock())
            .expect("kept at full");
        let req = ex.request.expect("request");
        assert_eq!(req.headers.len(), 3);
        assert_eq!(req.body.as_deref(), Some(&b"ping"[..]));
        let resp = ex.response.expect("response");
        assert_eq!(resp.headers.len(), 2);
        assert_eq!(resp.body.as_deref(), Some(&b"pong"[..]));
    }

    #[test]
    fn full_bodies_from_real_http1_bytes_stop_at_the_body_limit() {
        let req: &[u8] = include_bytes!("../../../protocols/testdata/http1/curl_post.req");
        let resp: &[u8] = include_bytes!("../../../protocols/testdata/http1/curl_post.resp");
        let s = settings("capture:\n  level: full\n  body_limit: 8\n");
        let parsed = parse(
            L7Protocol::Http1,
            &s,
            &[(Side::Request, 1_000, req), (Side::Response, 2_000, resp)],
        );
        assert_eq!(parsed.len(), 1);
        let parsed = parsed.into_iter().next().unwrap();
        let ex = assemble(&connection(), parsed, &s, &clock()).expect("kept");
        let r = ex.request.expect("request");
        assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/form"));
        assert_eq!(r.body_size, 22);
        assert_eq!(r.body.as_deref(), Some(&b"name=val"[..]));
        assert!(r.body_truncated, "the kept body says it was cut");
        assert_eq!(
            header(&r.headers, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let p = ex.response.expect("response");
        assert_eq!(p.status, 201);
        assert_eq!(p.body_size, 13);
        assert_eq!(p.body.as_deref(), Some(&b"got 22 b"[..]));
        assert!(p.body_truncated);
        assert_eq!(
            (ex.start_unix_ns, ex.end_unix_ns),
            (wall(1_000), wall(2_000))
        );
    }

    #[test]
    fn full_bodies_from_real_http2_bytes_stop_at_the_body_limit() {
        let chunks = h2_fixture(
            include_bytes!("../../../protocols/testdata/http2/curl_post.req"),
            include_bytes!("../../../protocols/testdata/http2/curl_post.resp"),
            include_str!("../../../protocols/testdata/http2/curl_post.order"),
        );
        let s = settings("capture:\n  level: full\n  body_limit: 10\n");
        let parsed = parse(L7Protocol::Http2, &s, &chunks);
        assert_eq!(parsed.len(), 1);
        let parsed = parsed.into_iter().next().unwrap();
        let ex = assemble(&h2_connection(), parsed, &s, &clock()).expect("kept");
        let r = ex.request.expect("request");
        assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/form"));
        assert_eq!((&*r.version, &*r.scheme), ("2", "http"));
        assert_eq!(r.body_size, 22);
        assert_eq!(r.body.as_deref(), Some(&b"name=value"[..]));
        let p = ex.response.expect("response");
        assert_eq!(p.status, 201);
        assert_eq!(p.body_size, 13);
        assert_eq!(p.body.as_ref().map(Vec::len), Some(10));
    }

    #[test]
    fn below_full_real_bytes_carry_sizes_but_no_body() {
        let req: &[u8] = include_bytes!("../../../protocols/testdata/http1/curl_post.req");
        let resp: &[u8] = include_bytes!("../../../protocols/testdata/http1/curl_post.resp");
        // A rule can raise some exchanges to full, so the parser keeps bodies;
        // this one stays at details and must not carry them.
        let s = settings(
            "capture:\n  level: details\n  rules:\n    - when: {path: /upload}\n      level: full\n",
        );
        let mut parsed = parse(
            L7Protocol::Http1,
            &s,
            &[(Side::Request, 1_000, req), (Side::Response, 2_000, resp)],
        );
        let ex = assemble(&connection(), parsed.remove(0), &s, &clock()).expect("kept");
        let (r, p) = (ex.request.unwrap(), ex.response.unwrap());
        assert_eq!((r.body_size, r.body), (22, None));
        assert_eq!((p.body_size, p.body), (13, None));
        assert!(!r.headers.is_empty());
    }

    // ---------------------------------------------------------------- rules

    #[test]
    fn a_host_rule_raises_the_level_ignoring_port_and_case() {
        let s = settings(
            "capture:\n  level: summary\n  rules:\n    - when: {host: api.example.com}\n      level: full\n",
        );
        let c = connection();
        let level = |host: &str| level_of(h1_to(host, "GET", "/", 200), &c, &s);
        assert_eq!(level("api.example.com"), CaptureLevel::Full);
        assert_eq!(level("API.Example.COM:8443"), CaptureLevel::Full);
        assert_eq!(level("www.example.com"), CaptureLevel::Summary);
    }

    #[test]
    fn a_path_rule_lowers_the_level_ignoring_the_query() {
        let s = settings(
            "capture:\n  level: full\n  rules:\n    - when: {path: {exact: /healthz}}\n      level: none\n",
        );
        let c = connection();
        let level = |target: &str| level_of(h1_to("svc", "GET", target, 200), &c, &s);
        assert_eq!(level("/healthz"), CaptureLevel::None);
        assert_eq!(level("/healthz?verbose=1"), CaptureLevel::None);
        assert_eq!(level("/healthz/deep"), CaptureLevel::Full);
        assert_eq!(level("/api"), CaptureLevel::Full);
    }

    #[test]
    fn a_status_rule_matches_the_response_status() {
        let s = settings(
            "capture:\n  level: summary\n  rules:\n    - when: {status: 5xx}\n      level: full\n",
        );
        let c = connection();
        let level = |status: u16| level_of(h1_to("svc", "GET", "/", status), &c, &s);
        assert_eq!(level(503), CaptureLevel::Full);
        assert_eq!(level(500), CaptureLevel::Full);
        assert_eq!(level(404), CaptureLevel::Summary);
        assert_eq!(level(200), CaptureLevel::Summary);
        // No response yet: a status condition never matches.
        let no_response = Parsed::Http1(http1::Exchange {
            gaps: Default::default(),
            request: Some(h1_request("GET", "/", &[("Host", "svc")])),
            response: None,
            partial: true,
            gap: false,
            upgraded: false,
        });
        assert_eq!(level_of(no_response, &c, &s), CaptureLevel::Summary);
    }

    #[test]
    fn a_method_rule_matches_case_insensitively() {
        let s = settings(
            "capture:\n  level: details\n  rules:\n    - when: {method: [POST, PUT]}\n      level: summary\n",
        );
        let c = connection();
        let level = |method: &str| level_of(h1_to("svc", method, "/", 200), &c, &s);
        assert_eq!(level("POST"), CaptureLevel::Summary);
        assert_eq!(level("PUT"), CaptureLevel::Summary);
        assert_eq!(level("post"), CaptureLevel::Summary);
        assert_eq!(level("GET"), CaptureLevel::Details);
    }

    #[test]
    fn an_exe_rule_matches_the_executable_path_or_file_name() {
        let s = settings(
            "capture:\n  level: summary\n  rules:\n    - when: {exe: python3}\n      level: full\n    - when: {exe: {prefix: /opt/app/}}\n      level: none\n",
        );
        let on = |exe: &str| Connection {
            process: process(exe),
            ..connection()
        };
        let level = |exe: &str| level_of(plain_get(), &on(exe), &s);
        assert_eq!(level("/usr/bin/python3"), CaptureLevel::Full);
        assert_eq!(level("/opt/app/bin/server"), CaptureLevel::None);
        assert_eq!(level("/usr/bin/curl"), CaptureLevel::Summary);
        assert_eq!(level("/usr/bin/python3.12"), CaptureLevel::Summary);
    }

    #[test]
    fn the_first_matching_rule_wins_and_all_its_conditions_must_hold() {
        let s = settings(concat!(
            "capture:\n  level: details\n  rules:\n",
            "    - when: {host: api.example.com, method: POST}\n      level: none\n",
            "    - when: {host: api.example.com}\n      level: full\n",
            "    - when: {path: /}\n      level: summary\n",
        ));
        let c = connection();
        let level = |host: &str, method: &str| level_of(h1_to(host, method, "/x", 200), &c, &s);
        assert_eq!(level("api.example.com", "POST"), CaptureLevel::None);
        assert_eq!(level("api.example.com", "GET"), CaptureLevel::Full);
        assert_eq!(level("other.example.com", "POST"), CaptureLevel::Summary);
    }

    #[test]
    fn the_rule_host_falls_back_to_the_tls_server_name() {
        let s = settings(
            "capture:\n  level: summary\n  rules:\n    - when: {host: api.example.com}\n      level: full\n",
        );
        let no_host = || {
            h1(
                h1_request("GET", "/", &[("User-Agent", "curl/8.5.0")]),
                h1_response(200, &[]),
            )
        };
        let sni = tls_connection(Some("api.example.com"));
        assert_eq!(level_of(no_host(), &sni, &s), CaptureLevel::Full);
        assert_eq!(
            level_of(no_host(), &connection(), &s),
            CaptureLevel::Summary
        );
        assert_eq!(
            level_of(no_host(), &tls_connection(None), &s),
            CaptureLevel::Summary
        );
        // A Host header wins over the SNI.
        assert_eq!(
            level_of(h1_to("other.example.com", "GET", "/", 200), &sni, &s),
            CaptureLevel::Summary
        );
        // HTTP/2 without :authority or host falls back too.
        let h2_no_authority = h2(&[(":method", "GET"), (":path", "/")], &[(":status", "200")]);
        let sni_h2 = Connection {
            protocol: L7Protocol::Http2,
            ..sni
        };
        assert_eq!(
            level_of(h2_no_authority.into(), &sni_h2, &s),
            CaptureLevel::Full
        );
    }

    #[test]
    fn http2_rules_see_method_path_authority_and_status_from_pseudo_headers() {
        let s = settings(concat!(
            "capture:\n  level: summary\n  rules:\n",
            "    - when: {host: grpc.example.com, path: /pkg.Svc/, method: POST, status: 200}\n",
            "      level: full\n",
        ));
        let ex = |path: &str, status: &str| -> Parsed {
            h2(
                &[
                    (":method", "POST"),
                    (":scheme", "https"),
                    (":authority", "grpc.example.com:443"),
                    (":path", path),
                ],
                &[(":status", status)],
            )
            .into()
        };
        let c = h2_connection();
        assert_eq!(
            level_of(ex("/pkg.Svc/Call", "200"), &c, &s),
            CaptureLevel::Full
        );
        assert_eq!(
            level_of(ex("/pkg.Svc/Call", "500"), &c, &s),
            CaptureLevel::Summary
        );
        assert_eq!(
            level_of(ex("/other/Call", "200"), &c, &s),
            CaptureLevel::Summary
        );
    }

    // ---------------------------------------------------------------- sampling

    /// A GET on connection `id` whose request started at `start_ns`.
    fn sampled_get(id: u64, start_ns: u64, s: &Settings) -> bool {
        let mut request = h1_request("GET", "/", &[("Host", "svc")]);
        request.start_ns = start_ns;
        request.end_ns = start_ns;
        let c = Connection { id, ..connection() };
        assemble(&c, h1(request, h1_response(200, &[])), s, &clock()).is_some()
    }

    #[test]
    fn sample_ratio_zero_keeps_nothing() {
        let s = settings("capture:\n  sample: 0.0\n");
        assert!((0..1_000).all(|id| !sampled_get(id, id * 7_919, &s)));
    }

    #[test]
    fn sample_ratio_one_keeps_everything() {
        let s = settings("capture:\n  sample: 1.0\n");
        assert!((0..1_000).all(|id| sampled_get(id, id * 7_919, &s)));
    }

    #[test]
    fn fractional_sampling_is_deterministic_for_the_same_connection_and_start() {
        let s = settings("capture:\n  sample: 0.5\n");
        let first: Vec<bool> = (0..200).map(|id| sampled_get(id, 1_000 + id, &s)).collect();
        let again: Vec<bool> = (0..200).map(|id| sampled_get(id, 1_000 + id, &s)).collect();
        assert_eq!(first, again);
        // Both answers occur: it is a decision, not a constant.
        assert!(first.contains(&true) && first.contains(&false), "{first:?}");
    }

    #[test]
    fn fractional_sampling_keeps_about_the_ratio() {
        let s = settings("capture:\n  sample: 0.25\n");
        let n = 10_000;
        let by_id = (0..n).filter(|&id| sampled_get(id, 5_000, &s)).count();
        assert!((2_200..=2_800).contains(&by_id), "{by_id} of {n} by id");
        // Exchanges of one connection are sampled one by one.
        let by_start = (0..n)
            .filter(|&i| sampled_get(42, 1_000_000 + i * 1_000, &s))
            .count();
        assert!(
            (2_200..=2_800).contains(&by_start),
            "{by_start} of {n} by start"
        );
    }

    #[test]
    fn a_rule_sample_ratio_overrides_the_default_ratio() {
        let s = settings(
            "capture:\n  sample: 1.0\n  rules:\n    - when: {path: /noisy}\n      sample: 0.0\n",
        );
        let c = connection();
        let kept =
            |target: &str| assemble(&c, h1_to("svc", "GET", target, 200), &s, &clock()).is_some();
        assert!(!kept("/noisy"));
        assert!(kept("/quiet"));
    }

    // ---------------------------------------------------------------- redaction

    #[test]
    fn sensitive_headers_are_redacted_on_both_sides() {
        let mut req_headers = vec![("Host", "svc"), ("Accept", "*/*")];
        req_headers.extend(DEFAULT_REDACTED_HEADERS.iter().map(|&n| (n, "secret")));
        req_headers.push(("X-API-Key", "k-123"));
        req_headers.push(("Authorization", "Bearer abc"));
        let ex = h1(
            h1_request("GET", "/", &req_headers),
            h1_response(
                200,
                &[
                    ("Set-Cookie", "sid=1"),
                    ("set-cookie", "theme=dark"),
                    ("Content-Type", "text/plain"),
                ],
            ),
        );
        let out = assemble(&connection(), ex, &at_level("full"), &clock()).expect("kept");
        let req = out.request.expect("request");
        assert_eq!(req.headers.len(), req_headers.len());
        for h in &req.headers {
            let expected = if DEFAULT_REDACTED_HEADERS.contains(&h.name.as_ref()) {
                REDACTED
            } else {
                match h.name.as_ref() {
                    "host" => "svc",
                    "accept" => "*/*",
                    other => panic!("unexpected header {other}"),
                }
            };
            assert_eq!(h.value, expected, "{}", h.name);
        }
        assert!(req.headers.iter().any(|h| h.name == "x-api-key"));
        let resp = out.response.expect("response");
        let values: Vec<(&str, &str)> = resp
            .headers
            .iter()
            .map(|h| (h.name.as_ref(), h.value.as_str()))
            .collect();
        assert_eq!(
            values,
            [
                ("set-cookie", REDACTED),
                ("set-cookie", REDACTED),
                ("content-type", "text/plain")
            ]
        );
    }

    #[test]
    fn configured_extra_headers_are_redacted_too() {
        let s = settings("redaction:\n  headers: [X-Session-Id]\n");
        let ex = h1(
            h1_request(
                "GET",
                "/",
                &[("x-session-id", "s-1"), ("Cookie", "a=b"), ("X-Trace", "t")],
            ),
            h1_response(200, &[]),
        );
        let req = assemble(&connection(), ex, &s, &clock())
            .and_then(|e| e.request)
            .expect("request");
        assert_eq!(header(&req.headers, "x-session-id"), Some(REDACTED));
        assert_eq!(header(&req.headers, "cookie"), Some(REDACTED));
        assert_eq!(header(&req.headers, "x-trace"), Some("t"));
    }

    #[test]
    fn http2_sensitive_headers_and_trailers_are_redacted() {
        let mut ex = h2(
            &[
                (":method", "GET"),
                (":path", "/"),
                (":authority", "svc"),
                ("authorization", "Bearer abc"),
                ("cookie", "a=b"),
            ],
            &[(":status", "200"), ("set-cookie", "sid=1")],
        );
        if let Some(resp) = ex.response.as_mut() {
            resp.trailers.push(http2::Header {
                name: "x-api-key".into(),
                value: "k".into(),
            });
        }
        let out =
            assemble(&h2_connection(), ex.into(), &at_level("details"), &clock()).expect("kept");
        let req = out.request.expect("request");
        assert_eq!(header(&req.headers, "authorization"), Some(REDACTED));
        assert_eq!(header(&req.headers, "cookie"), Some(REDACTED));
        assert_eq!(header(&req.headers, ":authority"), Some("svc"));
        let resp = out.response.expect("response");
        assert_eq!(header(&resp.headers, "set-cookie"), Some(REDACTED));
        assert_eq!(header(&resp.headers, "x-api-key"), Some(REDACTED));
    }

    #[test]
    fn http2_fields_the_headers_lack_are_read_from_the_trailers() {
        let trailer = |name: &str, value: &str| http2::Header {
            name: name.to_string().into(),
            value: value.to_string().into(),
        };
        for level in ["summary", "details"] {
            // No :authority: `host` in the headers, the rest in trailers.
            let mut ex = h2(
                &[(":method", "POST"), (":path", "/a"), ("host", "h:81")],
                &[(":status", "200")],
            );
            if let Some(req) = ex.request.as_mut() {
                req.trailers.push(trailer("user-agent", "ua/1"));
                req.trailers.push(trailer("traceparent", "tp"));
            }
            if let Some(resp) = ex.response.as_mut() {
                resp.trailers.push(trailer("content-type", "text/x"));
            }
            let out =
                assemble(&h2_connection(), ex.into(), &at_level(level), &clock()).expect("kept");
            let req = out.request.expect("request");
            assert_eq!(
                (req.method.as_str(), req.target.as_str()),
                ("POST", "/a"),
                "{level}"
            );
            assert_eq!(req.authority.as_deref(), Some("h:81"), "{level}");
            assert_eq!(req.user_agent.as_deref(), Some("ua/1"), "{level}");
            assert_eq!(req.traceparent.as_deref(), Some("tp"), "{level}");
            let resp = out.response.expect("response");
            assert_eq!(resp.content_type.as_deref(), Some("text/x"), "{level}");

            // :authority before `host`; `host` from the trailers only
            // without either in the headers.
            let authority = |headers: &[(&str, &str)]| {
                let mut ex = h2(headers, &[(":status", "204")]);
                if let Some(req) = ex.request.as_mut() {
                    req.trailers.push(trailer("host", "t"));
                }
                assemble(&h2_connection(), ex.into(), &at_level(level), &clock())
                    .and_then(|e| e.request)
                    .and_then(|r| r.authority)
            };
            let both = [(":method", "GET"), ("host", "h"), (":authority", "a")];
            assert_eq!(authority(&both).as_deref(), Some("a"), "{level}");
            assert_eq!(
                authority(&[(":method", "GET")]).as_deref(),
                Some("t"),
                "{level}"
            );
        }
    }

    #[test]
    fn sensitive_query_parameters_are_masked_in_the_target_at_every_level() {
        for level in ["summary", "details", "full"] {
            let ex = h1_to(
                "svc",
                "GET",
                "/search?q=rust&token=abc&API_KEY=k&page=2",
                200,
            );
            let req = assemble(&connection(), ex, &at_level(level), &clock())
                .and_then(|e| e.request)
                .expect("request");
            assert_eq!(
                req.target, "/search?q=rust&token=REDACTED&API_KEY=REDACTED&page=2",
                "{level}"
            );
        }
    }

    #[test]
    fn a_target_without_sensitive_parameters_is_kept_byte_for_byte() {
        for target in ["/a?b=1&&c&d=%20", "/plain", "/q?", "/x?tokens=1"] {
            let req = assemble(
                &connection(),
                h1_to("svc", "GET", target, 200),
                &at_level("details"),
                &clock(),
            )
            .and_then(|e| e.request)
            .expect("request");
            assert_eq!(req.target, target);
        }
    }

    #[test]
    fn configured_query_parameters_are_masked_in_http2_paths() {
        let s = settings("capture:\n  level: details\nredaction:\n  query_params: [session]\n");
        let ex = h2(
            &[
                (":method", "GET"),
                (":path", "/cb?session=s1&code=c&access_token=t"),
                (":authority", "svc"),
            ],
            &[(":status", "200")],
        );
        let req = assemble(&h2_connection(), ex.into(), &s, &clock())
            .and_then(|e| e.request)
            .expect("request");
        assert_eq!(
            req.target,
            "/cb?session=REDACTED&code=c&access_token=REDACTED"
        );
    }

    #[test]
    fn the_http2_path_pseudo_header_is_masked_like_the_target() {
        let ex = h2(
            &[
                (":method", "GET"),
                (":path", "/cb?token=secret&x=1"),
                (":authority", "svc"),
            ],
            &[(":status", "200")],
        );
        let req = assemble(&h2_connection(), ex.into(), &at_level("details"), &clock())
            .and_then(|e| e.request)
            .expect("request");
        assert_eq!(req.target, "/cb?token=REDACTED&x=1");
        assert_eq!(
            header(&req.headers, ":path"),
            Some("/cb?token=REDACTED&x=1"),
            "the kept :path must not leak the masked query"
        );
    }

    // ---------------------------------------------------------------- HTTP/2

    #[test]
    fn http2_pseudo_headers_map_to_method_path_authority_and_status() {
        let ex = h2(
            &[
                (":method", "POST"),
                (":scheme", "https"),
                (":authority", "api.example.com:8443"),
                (":path", "/v1/items?id=7"),
                ("user-agent", "grpc-go/1.60"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
            ],
            &[(":status", "201"), ("content-type", "application/json")],
        );
        let out =
            assemble(&h2_connection(), ex.into(), &at_level("details"), &clock()).expect("kept");
        let req = out.request.expect("request");
        assert_eq!(req.method, "POST");
        assert_eq!(req.target, "/v1/items?id=7");
        assert_eq!(req.authority.as_deref(), Some("api.example.com:8443"));
        assert_eq!(req.scheme, "https");
        assert_eq!(req.version, "2");
        assert_eq!(req.user_agent.as_deref(), Some("grpc-go/1.60"));
        assert_eq!(
            req.traceparent.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        assert_eq!(header(&req.headers, ":method"), Some("POST"));
        assert_eq!((req.body_size, req.wire_bytes, req.body), (3, 60, None));
        let resp = out.response.expect("response");
        assert_eq!(resp.status, 201);
        assert_eq!(resp.content_type.as_deref(), Some("application/json"));
        assert_eq!(header(&resp.headers, ":status"), Some("201"));
        assert_eq!(
            out.http2,
            Some(model::Http2Info {
                stream_id: 5,
                reset: None,
                goaway: false,
                headers_degraded: false,
            })
        );
        assert_eq!(out.grpc, None);
    }

    #[test]
    fn http2_scheme_defaults_to_the_connection_and_authority_to_host() {
        let ex = || {
            h2(
                &[(":method", "GET"), (":path", "/"), ("host", "h.example")],
                &[],
            )
        };
        let plain = assemble(
            &h2_connection(),
            ex().into(),
            &at_level("summary"),
            &clock(),
        )
        .and_then(|e| e.request)
        .expect("request");
        assert_eq!(plain.scheme, "http");
        assert_eq!(plain.authority.as_deref(), Some("h.example"));
        let tls = Connection {
            protocol: L7Protocol::Http2,
            ..tls_connection(Some("sni.example"))
        };
        let secure = assemble(&tls, ex().into(), &at_level("summary"), &clock())
            .and_then(|e| e.request)
            .expect("request");
        assert_eq!(secure.scheme, "https");
        assert_eq!(secure.authority.as_deref(), Some("h.example"));
    }

    #[test]
    fn http1_scheme_follows_tls() {
        let plain = assemble(&connection(), plain_get(), &at_level("summary"), &clock());
        let secure = assemble(
            &tls_connection(Some("api.example.com")),
            plain_get(),
            &at_level("summary"),
            &clock(),
        );
        assert_eq!(plain.and_then(|e| e.request).unwrap().scheme, "http");
        assert_eq!(secure.and_then(|e| e.request).unwrap().scheme, "https");
    }

    #[test]
    fn http2_reset_goaway_degraded_and_grpc_are_carried() {
        let mut ex = h2(
            &[
                (":method", "POST"),
                (":path", "/helloworld.Greeter/SayHello"),
                (":authority", "svc"),
                ("content-type", "application/grpc"),
            ],
            &[(":status", "200")],
        );
        ex.reset = Some(8);
        ex.goaway = true;
        if let Some(r) = ex.response.as_mut() {
            r.headers_degraded = true;
        }
        ex.grpc = Some(protocols::http2::Grpc {
            service: "helloworld.Greeter".into(),
            method: "SayHello".into(),
            status: Some(12),
            message: Some("unknown method".into()),
        });
        let out =
            assemble(&h2_connection(), ex.into(), &at_level("summary"), &clock()).expect("kept");
        assert!(out.partial, "a reset stream is partial");
        assert!(!out.gap);
        assert_eq!(
            out.http2,
            Some(model::Http2Info {
                stream_id: 5,
                reset: Some(8),
                goaway: true,
                headers_degraded: true,
            })
        );
        assert_eq!(
            out.grpc,
            Some(model::GrpcInfo {
                service: "helloworld.Greeter".into(),
                method: "SayHello".into(),
                status: Some(12),
                message: Some("unknown method".into()),
            })
        );
    }

    #[test]
    fn real_http2_get_is_assembled_from_its_frames() {
        let chunks = h2_fixture(
            include_bytes!("../../../protocols/testdata/http2/curl_get.req"),
            include_bytes!("../../../protocols/testdata/http2/curl_get.resp"),
            include_str!("../../../protocols/testdata/http2/curl_get.order"),
        );
        let s = at_level("details");
        let parsed = parse(L7Protocol::Http2, &s, &chunks);
        assert_eq!(parsed.len(), 1);
        let parsed = parsed.into_iter().next().unwrap();
        let ex = assemble(&h2_connection(), parsed, &s, &clock()).expect("kept");
        let r = ex.request.expect("request");
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("GET", "/index?x=1")
        );
        assert!(
            r.authority
                .as_deref()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "{:?}",
            r.authority
        );
        assert_eq!(r.user_agent.as_deref(), Some("curl/7.88.1"));
        assert_eq!(header(&r.headers, "accept"), Some("*/*"));
        let p = ex.response.expect("response");
        assert_eq!((p.status, p.body_size, p.body), (200, 25, None));
        assert_eq!(ex.http2.map(|h| h.stream_id), Some(1));
        assert!(!ex.partial);
        assert_eq!(ex.start_unix_ns, wall(1_000));
        assert!(ex.end_unix_ns > ex.start_unix_ns);
    }

    // ---------------------------------------------------------------- flags and times

    #[test]
    fn http1_partial_and_gap_flags_are_carried() {
        let ex = Parsed::Http1(http1::Exchange {
            gaps: Default::default(),
            request: Some(h1_request("GET", "/", &[("Host", "svc")])),
            response: None,
            partial: true,
            gap: true,
            upgraded: false,
        });
        assert!(ex.partial());
        let out = assemble(&connection(), ex, &at_level("details"), &clock()).expect("kept");
        assert!(out.partial && out.gap);
        assert!(out.response.is_none());
        // Without a response the exchange ends with its request.
        assert_eq!(
            (out.start_unix_ns, out.end_unix_ns),
            (wall(1_000), wall(2_000))
        );
        let complete =
            assemble(&connection(), plain_get(), &at_level("details"), &clock()).expect("kept");
        assert!(!complete.partial && !complete.gap);
    }

    #[test]
    fn an_incomplete_http2_stream_is_partial() {
        let mut ex = h2(&[(":method", "GET"), (":path", "/")], &[]);
        ex.partial = true;
        ex.response = None;
        let parsed = Parsed::from(ex);
        assert!(parsed.partial());
        let out = assemble(&h2_connection(), parsed, &at_level("details"), &clock()).expect("kept");
        assert!(out.partial);
        assert_eq!(
            (out.start_unix_ns, out.end_unix_ns),
            (wall(1_000), wall(1_500))
        );
    }

    #[test]
    fn times_are_wall_clock_from_the_clock_offset() {
        let out =
            assemble(&connection(), plain_get(), &at_level("summary"), &clock()).expect("kept");
        // First request byte to last response byte.
        assert_eq!(out.start_unix_ns, wall(1_000));
        assert_eq!(out.end_unix_ns, wall(5_000));
        assert_eq!(out.duration_ns(), 4_000);
        let h2 = h2(&[(":method", "GET"), (":path", "/")], &[(":status", "200")]);
        let out =
            assemble(&h2_connection(), h2.into(), &at_level("summary"), &clock()).expect("kept");
        assert_eq!(
            (out.start_unix_ns, out.end_unix_ns),
            (wall(1_000), wall(4_000))
        );
    }

    #[test]
    fn an_end_before_the_start_is_clamped_to_the_start() {
        let mut response = h1_response(200, &[]);
        response.end_ns = 500;
        let ex = h1(h1_request("GET", "/", &[("Host", "svc")]), response);
        let out = assemble(&connection(), ex, &at_level("summary"), &clock()).expect("kept");
        assert_eq!(out.start_unix_ns, wall(1_000));
        assert_eq!(out.end_unix_ns, wall(1_000));
    }

    #[test]
    fn a_response_without_its_request_starts_with_the_response() {
        let ex = Parsed::Http1(http1::Exchange {
            gaps: Default::default(),
            request: None,
            response: Some(h1_response(200, &[])),
            partial: true,
            gap: false,
            upgraded: false,
        });
        let out = assemble(&connection(), ex, &at_level("details"), &clock()).expect("kept");
        assert!(out.request.is_none());
        assert_eq!(out.response.map(|r| r.status), Some(200));
        assert_eq!(
            (out.start_unix_ns, out.end_unix_ns),
            (wall(3_000), wall(5_000))
        );
    }
}
