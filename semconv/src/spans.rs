//! One span per captured exchange: name, kind, attributes, status and place in the W3C trace.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::attributes as k;
use crate::model::{
    Connection, Exchange, GrpcInfo, Header, Http2Info, L7Protocol, Request, TlsInfo,
};
use crate::options::{KnownMethods, MappingOptions, OTHER_METHOD};
use crate::trace_context::{trace_context, TracePlace};
use crate::value::{Attribute, AttributeSink};

/// Span kind: CLIENT for egress exchanges, SERVER for ingress ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// The observed process sent the request.
    Client,
    /// The observed process served the request.
    Server,
}

impl SpanKind {
    /// The kind of an exchange, from its direction.
    pub fn of(ex: &Exchange) -> Self {
        Self::of_connection(&ex.connection)
    }

    /// The kind of every exchange on `connection`, from its direction.
    pub fn of_connection(connection: &Connection) -> Self {
        if connection.direction.is_egress() {
            SpanKind::Client
        } else {
            SpanKind::Server
        }
    }
}

/// Span status: the semantic conventions leave successful HTTP spans `Unset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanStatus {
    /// No error.
    Unset,
    /// The exchange failed.
    Error {
        /// Short human-readable reason for a non-HTTP error (`no response
        /// captured`, a reset stream, a gRPC message); empty for an HTTP
        /// status-code error, whose code the attributes carry.
        description: String,
    },
}

/// A span built from one exchange, ready for the agent to convert into its SDK's span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanRecord {
    /// Span name: the known method, `HTTP` for an unknown one (whose
    /// `http.request.method` is `_OTHER`) or without a request,
    /// `service/method` for a gRPC call.
    pub name: String,
    /// CLIENT or SERVER.
    pub kind: SpanKind,
    /// Start, Unix nanoseconds.
    pub start_unix_ns: u64,
    /// End, Unix nanoseconds (never before the start).
    pub end_unix_ns: u64,
    /// Semantic-convention and `tap.` attributes.
    pub attributes: Vec<Attribute>,
    /// Status.
    pub status: SpanStatus,
    /// Where the span sits in the trace, from the request's `traceparent`
    /// and `tracestate`: a CLIENT span *is* the request the header names, a
    /// SERVER span is its child.
    pub trace: TracePlace,
}

/// `(tls.protocol.name, tls.protocol.version)` for a TLS/SSL version number:
/// 0x0304 → `("tls", "1.3")`, 0x0300 → `("ssl", "3")`; `None` when unknown.
pub fn tls_protocol(version: u16) -> Option<(&'static str, &'static str)> {
    match version {
        0x0304 => Some(("tls", "1.3")),
        0x0303 => Some(("tls", "1.2")),
        0x0302 => Some(("tls", "1.1")),
        0x0301 => Some(("tls", "1.0")),
        0x0300 => Some(("ssl", "3")),
        0x0002 => Some(("ssl", "2")),
        _ => None,
    }
}

/// Splits an authority (`host`, `host:port`, `[v6]:port`, `user@host`) into
/// its host (brackets removed) and port. An unparsable port leaves the whole
/// string as the host; a bare IPv6 address (several colons) has no port.
pub fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let a = authority.trim();
    let a = a.rsplit_once('@').map_or(a, |(_, host)| host);
    if let Some(rest) = a.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port);
        }
        return (a, None);
    }
    match a.split_once(':') {
        Some((host, port)) if !port.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) if port.is_empty() => (host, None),
            Err(_) => (a, None),
        },
        _ => (a, None),
    }
}

/// An IP address as text, IPv4-mapped IPv6 addresses shown as IPv4.
pub fn ip_string(ip: IpAddr) -> String {
    IpText::of(ip).as_str().to_string()
}

/// An IP address as text on the stack ([`ip_string`] without the
/// allocation): a span writes two addresses.
#[derive(Clone, Copy)]
pub struct IpText {
    /// The longest IPv6 text is 45 bytes (`ffff:…:255.255.255.255`).
    bytes: [u8; 48],
    len: usize,
}

impl IpText {
    /// The text of `ip`, IPv4-mapped IPv6 addresses shown as IPv4.
    pub fn of(ip: IpAddr) -> Self {
        let mut t = IpText {
            bytes: [0; 48],
            len: 0,
        };
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => t.ipv4(v4.octets()),
                None => {
                    // Only `fmt::Error` can fail, and `write_str` below never does.
                    let _ = write!(t, "{v6}");
                }
            },
            IpAddr::V4(v4) => t.ipv4(v4.octets()),
        }
        t
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, dots, colons and hex letters are written.
        self.bytes
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Dotted-quad text, written digit by digit: `Display` through
    /// `fmt::write` was ~4 % of the pipeline bench's time per span (two
    /// addresses per span; perf, HTTP/1 summary).
    fn ipv4(&mut self, octets: [u8; 4]) {
        for (i, o) in octets.into_iter().enumerate() {
            if i > 0 {
                self.push(b'.');
            }
            if o >= 100 {
                self.push(b'0' + o / 100);
            }
            if o >= 10 {
                self.push(b'0' + o / 10 % 10);
            }
            self.push(b'0' + o % 10);
        }
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        s.bytes().for_each(|b| self.push(b));
        Ok(())
    }
}

/// `network.protocol.version`: `1.0`, `1.1`, `2`, `3` from the request's
/// version (an `HTTP/` prefix and a `.0` on 2 and 3 are dropped), else `2`
/// for an HTTP/2 connection; `None` when unknown.
pub fn protocol_version(ex: &Exchange) -> Option<&str> {
    let raw = ex.request.as_ref().map_or("", |r| r.version.trim());
    let v = raw
        .strip_prefix("HTTP/")
        .or_else(|| raw.strip_prefix("http/"))
        .unwrap_or(raw);
    match v {
        "2" | "2.0" => Some("2"),
        "3" | "3.0" => Some("3"),
        "" => (ex.connection.protocol == L7Protocol::Http2).then_some("2"),
        other => Some(other),
    }
}

/// `url.scheme`: the request's scheme, else `https` on TLS and `http` otherwise.
pub fn scheme(ex: &Exchange) -> Cow<'_, str> {
    match ex.request.as_ref().map(|r| r.scheme.trim()) {
        Some(s) if s.bytes().any(|b| b.is_ascii_uppercase()) => s.to_ascii_lowercase().into(),
        Some(s) if !s.is_empty() => s.into(),
        _ if ex.connection.tls.is_some() => "https".into(),
        _ => "http".into(),
    }
}

/// `server.address` and `server.port` of an exchange: host and port of the
/// request authority (`Host` / `:authority`), else of the TLS SNI, else the
/// server's IP address (CLIENT: the remote one, SERVER: the local one); the
/// port falls back to that address's port.
///
/// The SNI is a source of `server.address` because that is its current
/// name: `tls.client.server_name` is deprecated in the pinned semantic
/// conventions (1.42.0, TLS attribute registry: "Replaced by
/// `server.address`", reason `renamed`) and the registry has no other TLS
/// attribute for it, so the agent keeps no `tap.` copy either. Spans
/// already set `server.address` from the request's authority, as the HTTP
/// conventions ask; the SNI only fills in when the request has none (when
/// both exist and differ, the authority wins: it names what the HTTP span
/// describes). Connection reports, which have no request, carry the SNI as
/// their `server.address` (see `logs::connection_report`).
pub fn server_address_port(ex: &Exchange) -> (Cow<'_, str>, u16) {
    let request_authority = ex.request.as_ref().and_then(|r| r.authority.as_deref());
    let named = request_authority
        .map(split_authority)
        .filter(|(h, _)| !h.is_empty())
        .or_else(|| {
            ex.connection
                .server_name()
                .map(split_authority)
                .filter(|(h, _)| !h.is_empty())
        });
    let server = if ex.connection.direction.is_egress() {
        ex.connection.endpoints.remote
    } else {
        ex.connection.endpoints.local
    };
    match named {
        Some((host, port)) => (host.into(), port.unwrap_or(server.port())),
        None => (ip_string(server.ip()).into(), server.port()),
    }
}

/// `error.type` of an exchange: `stream_reset` for a reset HTTP/2 stream,
/// the gRPC status as in `rpc.response.status_code` (its name, e.g.
/// `UNAVAILABLE`) for a gRPC error, the HTTP status code for 4xx/5xx
/// (CLIENT) or 5xx (SERVER), `incomplete` for a partial exchange without a
/// response.
pub fn error_type(ex: &Exchange) -> Option<Cow<'static, str>> {
    if ex.http2.as_ref().is_some_and(|h| h.reset.is_some()) {
        return Some("stream_reset".into());
    }
    if let Some(code) = grpc_error(ex) {
        return Some(grpc_status_name(code));
    }
    match &ex.response {
        Some(resp) => {
            let threshold = match SpanKind::of(ex) {
                SpanKind::Client => 400,
                SpanKind::Server => 500,
            };
            (resp.status >= threshold).then(|| resp.status.to_string().into())
        }
        None if ex.partial => Some("incomplete".into()),
        None => None,
    }
}

/// The span status: `Error` whenever [`error_type`] is set, else `Unset`.
///
/// The description says what the attributes do not: an HTTP status-code
/// error has none (the span status description is for non-HTTP errors; the
/// code is already in `http.response.status_code` and `error.type`), a gRPC
/// error carries its `grpc-message` (none without one), a reset stream and
/// a missing response say what happened.
pub fn status(ex: &Exchange) -> SpanStatus {
    status_with(ex, error_type(ex).is_some())
}

/// [`status`], given whether the exchange has an `error.type`.
fn status_with(ex: &Exchange, has_error_type: bool) -> SpanStatus {
    if let Some(code) = ex.http2.as_ref().and_then(|h| h.reset) {
        return SpanStatus::Error {
            description: format!("HTTP/2 stream reset (error code {code})"),
        };
    }
    if grpc_error(ex).is_some() {
        let message = ex.grpc.as_ref().and_then(|g| g.message.clone());
        return SpanStatus::Error {
            description: message.unwrap_or_default().trim().to_string(),
        };
    }
    match (&ex.response, has_error_type) {
        (Some(_), true) => SpanStatus::Error {
            description: String::new(),
        },
        (None, true) => SpanStatus::Error {
            description: "no response captured".into(),
        },
        _ => SpanStatus::Unset,
    }
}

/// The gRPC status when it is an error for this side (semconv RPC rules):
/// any non-OK status for a client; for a server only UNKNOWN (2),
/// DEADLINE_EXCEEDED (4), UNIMPLEMENTED (12), INTERNAL (13), UNAVAILABLE (14)
/// and DATA_LOSS (15).
pub fn grpc_error(ex: &Exchange) -> Option<u32> {
    let code = ex.grpc.as_ref()?.status?;
    let error = match SpanKind::of(ex) {
        SpanKind::Client => code != 0,
        SpanKind::Server => matches!(code, 2 | 4 | 12 | 13 | 14 | 15),
    };
    error.then_some(code)
}

/// The name of a gRPC status code (`0` → `OK`, `14` → `UNAVAILABLE`): the
/// string form `rpc.response.status_code` takes; a code gRPC does not define
/// is written as its number.
pub fn grpc_status_name(code: u32) -> Cow<'static, str> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| code.to_string().into(), |n| Cow::Borrowed(*n))
}

/// `url.full` ([`full_url`]) into `out`: as the request's pieces when they
/// cannot hold user information (joining them was ~1k instructions per
/// CLIENT span, bench/instructions.sh).
fn full_url_attribute(req: &Request, fallback_authority: &str, out: &mut impl AttributeSink) {
    let parts = req.url_parts(fallback_authority);
    let [scheme, separator, authority, rest] = parts;
    // The URL's first `://` is then the separator and its authority ends
    // where `authority` does, without an `@`: `full_url` leaves it as it is.
    let plain = separator == "://"
        && !scheme.contains(':')
        && !authority.contains(['@', '/', '?', '#'])
        && (rest.is_empty() || rest.starts_with(['/', '?', '#']));
    if plain {
        out.str_of(k::URL_FULL, &parts);
    } else {
        out.str(k::URL_FULL, &full_url(req, fallback_authority));
    }
}

/// `url.full` with any user information replaced by `REDACTED:REDACTED`.
fn full_url(req: &Request, fallback_authority: &str) -> String {
    let url = req.url(fallback_authority);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at_checked(auth_end).unwrap_or((rest, ""));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://REDACTED:REDACTED@{host}{tail}"),
        None => url,
    }
}

/// Header attributes of the headers named in `wanted` (lowercase; the
/// conventions make `http.*.header.<name>` opt-in, so only configured names
/// are exported): one string array per lowercase name, in order of first
/// appearance, holding every value of that name. HTTP/2 pseudo-headers
/// (`:path`, ...) are never among them: they are mapped elsewhere.
fn header_attributes(
    prefix: &str,
    headers: &[Header],
    wanted: &[String],
    out: &mut impl AttributeSink,
) {
    if wanted.is_empty() {
        return;
    }
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for h in headers {
        let name = h.name.trim().to_ascii_lowercase();
        if name.starts_with(':') || !wanted.contains(&name) {
            continue;
        }
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(&h.value),
            None => groups.push((name, vec![&h.value])),
        }
    }
    for (name, values) in groups {
        out.str_array(&format!("{prefix}{name}"), &values);
    }
}

/// TLS attributes for a connection's TLS facts.
///
/// `tap.tls.probe` is a single string: the first probe type that delivered
/// plaintext (the connection report lists them all in `tap.tls.probes`).
pub fn tls_attributes(tls: &TlsInfo, out: &mut impl AttributeSink) {
    tls_handshake_attributes(tls, out);
    if tls.version.is_some() {
        out.bool(k::TLS_ESTABLISHED, true);
    }
    if let Some(probe) = tls.probes.first() {
        out.str(k::TAP_TLS_PROBE, probe);
    }
}

/// The `tls.*` attributes spans and connection reports share: protocol name
/// and version, cipher and chosen ALPN (each when known). The server name
/// (SNI) is not among them: its current name is `server.address` (see
/// [`server_address_port`]).
pub fn tls_handshake_attributes(tls: &TlsInfo, out: &mut impl AttributeSink) {
    let known = tls.version.and_then(tls_protocol);
    out.str(k::TLS_PROTOCOL_NAME, known.map_or("tls", |(name, _)| name));
    if let Some((_, version)) = known {
        out.str(k::TLS_PROTOCOL_VERSION, version);
    }
    if let Some(cipher) = tls.cipher.as_deref().filter(|s| !s.is_empty()) {
        out.str(k::TLS_CIPHER, cipher);
    }
    if let Some(alpn) = tls.alpn.as_deref().filter(|s| !s.is_empty()) {
        out.str(k::TLS_NEXT_PROTOCOL, alpn);
    }
}

/// The span of one exchange, its attributes in a list.
///
/// Attributes, in this order: HTTP (`http.request.method` [+ `_original`],
/// `http.response.status_code`, `rpc.*`, `tap.http2.*`, `url.scheme`,
/// `network.protocol.*`, `user_agent.original`, body sizes, headers),
/// addresses (CLIENT `url.full`; SERVER `url.path`, `url.query`,
/// `client.address`; both `server.*`, `network.peer.*`), process, TLS,
/// capture (`tap.*`) and `error.type`.
pub fn span(ex: &Exchange, options: &MappingOptions) -> SpanRecord {
    let mut attributes: Vec<Attribute> = Vec::with_capacity(40);
    let head = span_into(ex, options, &mut attributes);
    SpanRecord {
        name: head.name.into_owned(),
        kind: head.kind,
        start_unix_ns: head.start_unix_ns,
        end_unix_ns: head.end_unix_ns,
        attributes,
        status: head.status,
        trace: trace_place(ex, head.kind),
    }
}

/// What a span has besides its attributes and its place in the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanHead<'a> {
    /// Span name (see [`SpanRecord::name`]).
    pub name: Cow<'a, str>,
    /// CLIENT or SERVER.
    pub kind: SpanKind,
    /// Start, Unix nanoseconds.
    pub start_unix_ns: u64,
    /// End, Unix nanoseconds (never before the start).
    pub end_unix_ns: u64,
    /// Status.
    pub status: SpanStatus,
}

/// What the span and the HTTP metrics of an exchange both map, worked out
/// once when both are made ([`span_into_with`],
/// `metrics::http_measurement_with`): the authority split alone was ~330
/// instructions (bench/instructions.sh, callgrind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeFacts<'a> {
    /// CLIENT or SERVER.
    pub kind: SpanKind,
    /// `url.scheme` ([`scheme`]).
    pub scheme: Cow<'a, str>,
    /// `server.address` and `server.port` ([`server_address_port`]).
    pub server: (Cow<'a, str>, u16),
    /// `network.protocol.version` ([`protocol_version`]).
    pub protocol_version: Option<&'a str>,
    /// `error.type` ([`error_type`]).
    pub error_type: Option<Cow<'static, str>>,
}

impl<'a> ExchangeFacts<'a> {
    /// The facts of `ex`.
    pub fn of(ex: &'a Exchange) -> Self {
        ExchangeFacts {
            kind: SpanKind::of(ex),
            scheme: scheme(ex),
            server: server_address_port(ex),
            protocol_version: protocol_version(ex),
            error_type: error_type(ex),
        }
    }
}

/// The span of one exchange, its attributes (those of [`span`], in the
/// same order) put into `out` as they are mapped: an encoder writes them
/// without copying a value.
pub fn span_into<'a>(
    ex: &'a Exchange,
    options: &'a MappingOptions,
    out: &mut impl AttributeSink,
) -> SpanHead<'a> {
    span_into_with(ex, &ExchangeFacts::of(ex), options, out)
}

/// [`span_into`] with the exchange's facts worked out already.
pub fn span_into_with<'a>(
    ex: &'a Exchange,
    facts: &ExchangeFacts<'_>,
    options: &'a MappingOptions,
    out: &mut impl AttributeSink,
) -> SpanHead<'a> {
    let kind = facts.kind;
    let name = http_attributes(ex, facts, options, out);
    address_attributes(ex, facts, out);
    out.connection(&ex.connection);
    capture_attributes(ex, out);
    if let Some(e) = &facts.error_type {
        out.str(k::ERROR_TYPE, e);
    }
    SpanHead {
        name,
        kind,
        start_unix_ns: ex.start_unix_ns,
        end_unix_ns: ex.end_unix_ns.max(ex.start_unix_ns),
        status: status_with(ex, facts.error_type.is_some()),
    }
}

/// Where the exchange's span sits in the trace its request carried: a CLIENT
/// span is the request the `traceparent` names (span id = its parent-id), a
/// SERVER span is that request's child; without a valid `traceparent`, a new
/// trace.
pub fn trace_place(ex: &Exchange, kind: SpanKind) -> TracePlace {
    let ctx = ex
        .request
        .as_ref()
        .and_then(|r| trace_context(r.traceparent.as_deref(), r.tracestate.as_deref()));
    match (ctx, kind) {
        (None, _) => TracePlace::Root,
        (Some(c), SpanKind::Client) => TracePlace::Is(c),
        (Some(c), SpanKind::Server) => TracePlace::ChildOf(c),
    }
}

/// The HTTP attributes of a span; returns the span name (`service/method`
/// for a gRPC call, else the known method, `HTTP` for an unknown method or
/// without a request).
///
/// In order: method and status, gRPC, HTTP/2 stream, scheme and protocol,
/// then what the messages carried (user agent, body sizes, headers).
fn http_attributes<'a>(
    ex: &'a Exchange,
    facts: &ExchangeFacts<'_>,
    options: &'a MappingOptions,
    out: &mut impl AttributeSink,
) -> Cow<'a, str> {
    let name = method_and_status_attributes(ex, &options.known_methods, out);
    let name = match &ex.grpc {
        Some(g) => grpc_attributes(g, out).into(),
        None => name,
    };
    if let Some(h2) = &ex.http2 {
        http2_attributes(h2, out);
    }
    protocol_attributes(facts, out);
    message_attributes(ex, options, out);
    name
}

/// `http.request.method` [+ `http.request.method_original`] and
/// `http.response.status_code`; returns the span name: the known method, or
/// `HTTP` for an unknown one (`http.request.method` = `_OTHER`, the method
/// kept in `http.request.method_original`) and without a request.
fn method_and_status_attributes<'a>(
    ex: &'a Exchange,
    known: &'a KnownMethods,
    out: &mut impl AttributeSink,
) -> Cow<'a, str> {
    let name = match &ex.request {
        Some(r) => {
            let method = known.normalize(&r.method);
            out.str(k::HTTP_REQUEST_METHOD, method);
            if method != r.method {
                out.str(k::HTTP_REQUEST_METHOD_ORIGINAL, &r.method);
            }
            if method == OTHER_METHOD {
                "HTTP".into()
            } else {
                method.into()
            }
        }
        None => "HTTP".into(),
    };
    if let Some(resp) = &ex.response {
        out.int(k::HTTP_RESPONSE_STATUS_CODE, i64::from(resp.status));
    }
    name
}

/// The RPC attributes of a gRPC call, by the pinned conventions' names:
/// `rpc.system.name` = `grpc`, `rpc.method` = the fully qualified
/// `service/method`, and `rpc.response.status_code` = the status name (when
/// the status was seen). They replace the deprecated `rpc.system`,
/// `rpc.service` (now part of `rpc.method`) and the numeric
/// `rpc.grpc.status_code`. The method is reported as called: the agent
/// sees the wire, not the server's method table. Returns the span name,
/// which is `rpc.method`.
fn grpc_attributes(g: &GrpcInfo, out: &mut impl AttributeSink) -> String {
    let method = format!("{}/{}", g.service, g.method);
    out.str(k::RPC_SYSTEM_NAME, "grpc");
    out.str(k::RPC_METHOD, &method);
    if let Some(code) = g.status {
        out.str(k::RPC_RESPONSE_STATUS_CODE, &grpc_status_name(code));
    }
    method
}

/// `tap.http2.stream_id`, and `tap.http2.reset_code` and
/// `tap.http2.headers_degraded` when they apply.
fn http2_attributes(h2: &Http2Info, out: &mut impl AttributeSink) {
    out.int(k::TAP_HTTP2_STREAM_ID, i64::from(h2.stream_id));
    if let Some(code) = h2.reset {
        out.int(k::TAP_HTTP2_RESET_CODE, i64::from(code));
    }
    if h2.headers_degraded {
        out.bool(k::TAP_HTTP2_HEADERS_DEGRADED, true);
    }
}

/// `url.scheme`, `network.protocol.name` and `network.protocol.version` (when known).
fn protocol_attributes(facts: &ExchangeFacts<'_>, out: &mut impl AttributeSink) {
    out.str(k::URL_SCHEME, &facts.scheme);
    out.str(k::NETWORK_PROTOCOL_NAME, "http");
    if let Some(v) = facts.protocol_version {
        out.str(k::NETWORK_PROTOCOL_VERSION, v);
    }
}

/// What the messages carried: `user_agent.original` (when non-empty), the
/// request then response body sizes, the request then response sizes (the
/// HTTP bytes of each message: request or status line, headers, framing and
/// body), the request then response headers configured in `options`.
fn message_attributes(ex: &Exchange, options: &MappingOptions, out: &mut impl AttributeSink) {
    let req = ex.request.as_ref();
    if let Some(ua) = req.and_then(|r| r.user_agent.as_deref()) {
        if !ua.is_empty() {
            out.str(k::USER_AGENT_ORIGINAL, ua);
        }
    }
    if let Some(r) = req {
        out.uint(k::HTTP_REQUEST_BODY_SIZE, r.body_size);
    }
    if let Some(resp) = &ex.response {
        out.uint(k::HTTP_RESPONSE_BODY_SIZE, resp.body_size);
    }
    if let Some(r) = req {
        out.uint(k::HTTP_REQUEST_SIZE, r.wire_bytes);
    }
    if let Some(resp) = &ex.response {
        out.uint(k::HTTP_RESPONSE_SIZE, resp.wire_bytes);
    }
    if let Some(r) = req {
        let wanted = &options.span_request_headers;
        header_attributes(k::HTTP_REQUEST_HEADER_PREFIX, &r.headers, wanted, out);
    }
    if let Some(resp) = &ex.response {
        let wanted = &options.span_response_headers;
        header_attributes(k::HTTP_RESPONSE_HEADER_PREFIX, &resp.headers, wanted, out);
    }
}

/// Where the exchange went. CLIENT: `url.full`; SERVER: `url.path` and
/// `url.query` (when present); then for both `server.address` and
/// `server.port` ([`server_address_port`]). The peer's address is the
/// connection's ([`connection_attributes`]).
fn address_attributes(ex: &Exchange, facts: &ExchangeFacts<'_>, out: &mut impl AttributeSink) {
    let (server_address, server_port) = (&facts.server.0, facts.server.1);
    if let Some(r) = ex.request.as_ref() {
        match facts.kind {
            SpanKind::Client => full_url_attribute(r, &ex.endpoint_name(), out),
            SpanKind::Server => {
                out.str(k::URL_PATH, r.path());
                if let Some(q) = r.query() {
                    out.str(k::URL_QUERY, q);
                }
            }
        }
    }
    out.str(k::SERVER_ADDRESS, server_address);
    out.int(k::SERVER_PORT, i64::from(server_port));
}

/// The attributes every span of `connection` carries, in this order:
/// `client.address` (SERVER spans), `network.peer.address` and
/// `network.peer.port`; the observed process
/// ([`crate::resource::process_attributes`]); on TLS, [`tls_attributes`];
/// then `tap.direction`, `tap.connection.id` and `tap.l7_protocol`. An
/// encoder may write what it wrote for the connection before instead
/// ([`AttributeSink::connection`]).
pub fn connection_attributes(connection: &Connection, out: &mut impl AttributeSink) {
    let remote = connection.endpoints.remote;
    let peer = IpText::of(remote.ip());
    if SpanKind::of_connection(connection) == SpanKind::Server {
        out.str(k::CLIENT_ADDRESS, peer.as_str());
    }
    out.str(k::NETWORK_PEER_ADDRESS, peer.as_str());
    out.int(k::NETWORK_PEER_PORT, i64::from(remote.port()));
    out.process(&connection.process);
    if let Some(tls) = &connection.tls {
        tls_attributes(tls, out);
    }
    out.str(k::TAP_DIRECTION, connection.direction.as_str());
    out.uint(k::TAP_CONNECTION_ID, connection.id);
    out.str(k::TAP_L7_PROTOCOL, connection.protocol.as_str());
}

/// What the capture of this exchange was like: `tap.partial` / `tap.gap`
/// (with `tap.gap.causes`) / `tap.{request,response}.body.truncated` when
/// set, and `tap.trace.link`. (The connection's `tap.*` attributes are in
/// [`connection_attributes`]; the wire sizes are `http.request.size` /
/// `http.response.size`, see [`message_attributes`].)
fn capture_attributes(ex: &Exchange, out: &mut impl AttributeSink) {
    if ex.partial {
        out.bool(k::TAP_PARTIAL, true);
    }
    if ex.gap {
        out.bool(k::TAP_GAP, true);
        if !ex.gap_causes.is_empty() {
            out.str_array(k::TAP_GAP_CAUSES, &ex.gap_causes);
        }
    }
    if ex.request.as_ref().is_some_and(|r| r.body_truncated) {
        out.bool(k::TAP_REQUEST_BODY_TRUNCATED, true);
    }
    if ex.response.as_ref().is_some_and(|r| r.body_truncated) {
        out.bool(k::TAP_RESPONSE_BODY_TRUNCATED, true);
    }
    if let Some(ids) = &ex.ids {
        out.str(k::TAP_TRACE_LINK, ids.link.name());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Connection, Direction, Endpoints, ProcessInfo, Response};
    use crate::value::{find, AttrValue};

    /// `url.full` from the request's pieces is what joining them and
    /// redacting the user information gives, for every shape of scheme,
    /// authority and target.
    #[test]
    fn full_url_pieces_equal_the_joined_url() {
        let schemes = ["http", "HTTPS", "a:b", ""];
        let authorities = [
            Some("host:8080"),
            Some("user:pw@host"),
            Some("host/x"),
            Some("h?x"),
            Some("h#y"),
            Some(""),
            None,
        ];
        let targets = [
            "/p?q#f",
            "*",
            "",
            "?q",
            "#frag",
            "x@y/z",
            "@x",
            "http://u:p@h/p",
            "https://h/p@q",
        ];
        for scheme in schemes {
            for authority in authorities {
                for target in targets {
                    for fallback in ["fb:1", "u@fb"] {
                        let r = Request {
                            scheme: scheme.to_string().into(),
                            authority: authority.map(str::to_string),
                            target: target.into(),
                            ..Default::default()
                        };
                        let mut out: Vec<Attribute> = Vec::new();
                        full_url_attribute(&r, fallback, &mut out);
                        let got = find(&out, k::URL_FULL).and_then(AttrValue::as_str);
                        assert_eq!(
                            got,
                            Some(full_url(&r, fallback).as_str()),
                            "{scheme:?} {authority:?} {target:?} {fallback:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn ipv4_text_matches_display() {
        for o in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [10, 9, 99, 100],
            [255, 255, 255, 255],
            [1, 20, 200, 5],
        ] {
            let ip = std::net::Ipv4Addr::from(o);
            assert_eq!(ip_string(IpAddr::V4(ip)), ip.to_string());
            assert_eq!(ip_string(IpAddr::V6(ip.to_ipv6_mapped())), ip.to_string());
        }
        for v6 in [
            "2001:db8::1",
            "1111:2222:3333:4444:5555:6666:7777:8888",
            "::",
            "fe80::1",
        ] {
            let ip: IpAddr = v6.parse().unwrap();
            assert_eq!(ip_string(ip), v6);
            assert_eq!(IpText::of(ip).as_str(), v6);
        }
    }

    fn h(name: &str, value: &str) -> Header {
        Header {
            name: name.to_owned().into(),
            value: value.into(),
        }
    }

    /// An egress HTTPS exchange: curl → api.example.com over TLS 1.3 / HTTP/2.
    pub(crate) fn client_https() -> Exchange {
        Exchange {
            connection: Connection {
                id: 12,
                process: std::sync::Arc::new(ProcessInfo {
                    pid: 4242,
                    exe: "/usr/bin/curl".into(),
                    command_args: vec![
                        "curl".into(),
                        "-s".into(),
                        "https://api.example.com/v1/items?id=7".into(),
                    ],
                    comm: "curl".into(),
                    ..Default::default()
                }),
                direction: Direction::EgressExternal,
                endpoints: Endpoints {
                    local: "10.0.0.2:51000".parse().unwrap(),
                    remote: "93.184.216.34:443".parse().unwrap(),
                },
                protocol: L7Protocol::Http2,
                tls: Some(std::sync::Arc::new(TlsInfo {
                    version: Some(0x0304),
                    server_name: Some("api.example.com".into()),
                    cipher: Some("TLS_AES_128_GCM_SHA256".into()),
                    alpn_offered: vec!["h2".into(), "http/1.1".into()],
                    alpn: Some("h2".into()),
                    probes: vec!["openssl".into(), "gnutls".into()],
                    got_client_hello: true,
                })),
            },
            request: Some(Request {
                method: "GET".into(),
                target: "/v1/items?id=7".into(),
                authority: Some("api.example.com".into()),
                scheme: "https".into(),
                version: "2".into(),
                headers: vec![
                    h("Accept", "application/json"),
                    h("X-Multi", "a"),
                    h("x-multi", "b"),
                    h(":path", "/v1/items?id=7"),
                ],
                body_size: 0,
                body: None,
                body_truncated: false,
                body_decoded: None,
                wire_bytes: 41,
                user_agent: Some("curl/8.10.1".into()),
                traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
                tracestate: Some("rojo=00f067aa0ba902b7".into()),
            }),
            response: Some(Response {
                status: 200,
                headers: vec![h("Content-Type", "application/json")],
                body_size: 321,
                body: None,
                body_truncated: false,
                body_decoded: None,
                wire_bytes: 395,
                content_type: Some("application/json".into()),
            }),
            start_unix_ns: 1_000_000_000,
            end_unix_ns: 1_250_000_000,
            partial: false,
            gap: false,
            gap_causes: Vec::new(),
            http2: None,
            grpc: None,
            link: Default::default(),
            ids: None,
        }
    }

    /// An ingress plaintext HTTP/1.1 exchange served by python on :8080.
    pub(crate) fn server_plain() -> Exchange {
        Exchange {
            connection: Connection {
                id: 7,
                process: std::sync::Arc::new(ProcessInfo {
                    pid: 99,
                    exe: "/usr/bin/python3.12".into(),
                    command_args: vec![
                        "python3".into(),
                        "-m".into(),
                        "http.server".into(),
                        "8080".into(),
                    ],
                    comm: "python3".into(),
                    ..Default::default()
                }),
                direction: Direction::Ingress,
                endpoints: Endpoints {
                    local: "127.0.0.1:8080".parse().unwrap(),
                    remote: "[::ffff:127.0.0.1]:40000".parse().unwrap(),
                },
                protocol: L7Protocol::Http1,
                tls: None,
            },
            request: Some(Request {
                method: "POST".into(),
                target: "/submit?x=1".into(),
                authority: Some("localhost:8080".into()),
                scheme: "http".into(),
                version: "1.1".into(),
                headers: vec![h("Host", "localhost:8080"), h("Content-Length", "5")],
                body_size: 5,
                body: None,
                body_truncated: false,
                body_decoded: None,
                wire_bytes: 120,
                user_agent: None,
                traceparent: None,
                tracestate: None,
            }),
            response: Some(Response {
                status: 201,
                headers: vec![],
                body_size: 2,
                body: None,
                body_truncated: false,
                body_decoded: None,
                wire_bytes: 80,
                content_type: None,
            }),
            start_unix_ns: 5_000,
            end_unix_ns: 9_000,
            partial: false,
            gap: false,
            gap_causes: Vec::new(),
            http2: None,
            grpc: None,
            link: Default::default(),
            ids: None,
        }
    }

    /// The span with the default options.
    pub(crate) fn span(ex: &Exchange) -> SpanRecord {
        super::span(ex, &MappingOptions::default())
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
    fn client_https_attributes() {
        let sp = span(&client_https());
        let a = &sp.attributes;
        assert_eq!(sp.name, "GET");
        assert_eq!(sp.kind, SpanKind::Client);
        assert_eq!(sp.status, SpanStatus::Unset);
        assert_eq!(
            (sp.start_unix_ns, sp.end_unix_ns),
            (1_000_000_000, 1_250_000_000)
        );
        assert_eq!(s(a, k::HTTP_REQUEST_METHOD), Some("GET"));
        assert_eq!(find(a, k::HTTP_REQUEST_METHOD_ORIGINAL), None);
        assert_eq!(i(a, k::HTTP_RESPONSE_STATUS_CODE), Some(200));
        assert_eq!(s(a, k::URL_SCHEME), Some("https"));
        assert_eq!(s(a, k::NETWORK_PROTOCOL_NAME), Some("http"));
        assert_eq!(s(a, k::NETWORK_PROTOCOL_VERSION), Some("2"));
        assert_eq!(s(a, k::USER_AGENT_ORIGINAL), Some("curl/8.10.1"));
        assert_eq!(i(a, k::HTTP_REQUEST_BODY_SIZE), Some(0));
        assert_eq!(i(a, k::HTTP_RESPONSE_BODY_SIZE), Some(321));
        // Headers are opt-in: none by default.
        assert!(
            !a.iter().any(|x| x.key.starts_with("http.request.header.")
                || x.key.starts_with("http.response.header.")),
            "{a:?}"
        );
        assert_eq!(
            s(a, k::URL_FULL),
            Some("https://api.example.com/v1/items?id=7")
        );
        assert_eq!(find(a, k::URL_PATH), None);
        assert_eq!(find(a, k::URL_QUERY), None);
        assert_eq!(find(a, k::CLIENT_ADDRESS), None);
        assert_eq!(s(a, k::SERVER_ADDRESS), Some("api.example.com"));
        assert_eq!(i(a, k::SERVER_PORT), Some(443));
        assert_eq!(s(a, k::NETWORK_PEER_ADDRESS), Some("93.184.216.34"));
        assert_eq!(i(a, k::NETWORK_PEER_PORT), Some(443));
        assert_eq!(i(a, k::PROCESS_PID), Some(4242));
        assert_eq!(s(a, k::PROCESS_EXECUTABLE_PATH), Some("/usr/bin/curl"));
        assert_eq!(s(a, k::PROCESS_EXECUTABLE_NAME), Some("curl"));
        assert_eq!(
            find(a, "process.command_args"),
            Some(&AttrValue::StrArray(vec![
                "curl".into(),
                "-s".into(),
                "https://api.example.com/v1/items?id=7".into()
            ]))
        );
        assert_eq!(find(a, "process.command_line"), None);
        assert_eq!(s(a, k::TLS_PROTOCOL_NAME), Some("tls"));
        assert_eq!(s(a, k::TLS_PROTOCOL_VERSION), Some("1.3"));
        // The SNI's current name is server.address (already from :authority).
        assert_eq!(find(a, "tls.client.server_name"), None);
        assert_eq!(s(a, k::TLS_CIPHER), Some("TLS_AES_128_GCM_SHA256"));
        assert_eq!(s(a, k::TLS_NEXT_PROTOCOL), Some("h2"));
        assert_eq!(b(a, k::TLS_ESTABLISHED), Some(true));
        assert_eq!(s(a, k::TAP_TLS_PROBE), Some("openssl"));
        assert_eq!(s(a, k::TAP_DIRECTION), Some("egress-external"));
        assert_eq!(i(a, k::TAP_CONNECTION_ID), Some(12));
        assert_eq!(s(a, k::TAP_L7_PROTOCOL), Some("http2"));
        // Wire sizes of each message, incl. headers (no tap.bytes_*).
        assert_eq!(i(a, "http.request.size"), Some(41));
        assert_eq!(i(a, "http.response.size"), Some(395));
        assert_eq!(find(a, "tap.bytes_sent"), None);
        assert_eq!(find(a, "tap.bytes_received"), None);
        assert_eq!(find(a, k::TAP_PARTIAL), None);
        assert_eq!(find(a, k::ERROR_TYPE), None);
        // A client span is the request its traceparent names.
        let TracePlace::Is(ctx) = &sp.trace else {
            panic!("client span with a traceparent: {:?}", sp.trace);
        };
        assert_eq!(
            ctx.parent.span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert!(ctx.parent.sampled);
        // No key appears twice.
        let mut keys: Vec<&str> = a.iter().map(|x| x.key.as_ref()).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }

    #[test]
    fn server_plain_attributes() {
        let sp = span(&server_plain());
        let a = &sp.attributes;
        assert_eq!(sp.name, "POST");
        assert_eq!(sp.kind, SpanKind::Server);
        assert_eq!(sp.status, SpanStatus::Unset);
        assert_eq!(sp.trace, TracePlace::Root);
        assert_eq!(s(a, k::HTTP_REQUEST_METHOD), Some("POST"));
        assert_eq!(i(a, k::HTTP_RESPONSE_STATUS_CODE), Some(201));
        assert_eq!(s(a, k::URL_SCHEME), Some("http"));
        assert_eq!(s(a, k::NETWORK_PROTOCOL_NAME), Some("http"));
        assert_eq!(s(a, k::NETWORK_PROTOCOL_VERSION), Some("1.1"));
        assert_eq!(find(a, k::USER_AGENT_ORIGINAL), None);
        assert_eq!(i(a, k::HTTP_REQUEST_BODY_SIZE), Some(5));
        assert_eq!(i(a, k::HTTP_RESPONSE_BODY_SIZE), Some(2));
        assert_eq!(find(a, "http.request.header.host"), None);
        assert_eq!(find(a, k::URL_FULL), None);
        assert_eq!(s(a, k::URL_PATH), Some("/submit"));
        assert_eq!(s(a, k::URL_QUERY), Some("x=1"));
        assert_eq!(s(a, k::SERVER_ADDRESS), Some("localhost"));
        assert_eq!(i(a, k::SERVER_PORT), Some(8080));
        assert_eq!(s(a, k::CLIENT_ADDRESS), Some("127.0.0.1"));
        assert_eq!(s(a, k::NETWORK_PEER_ADDRESS), Some("127.0.0.1"));
        assert_eq!(i(a, k::NETWORK_PEER_PORT), Some(40000));
        assert_eq!(i(a, k::PROCESS_PID), Some(99));
        assert_eq!(s(a, k::PROCESS_EXECUTABLE_NAME), Some("python3.12"));
        assert_eq!(
            s(a, k::PROCESS_EXECUTABLE_PATH),
            Some("/usr/bin/python3.12")
        );
        assert_eq!(
            find(a, "process.command_args"),
            Some(&AttrValue::StrArray(vec![
                "python3".into(),
                "-m".into(),
                "http.server".into(),
                "8080".into()
            ]))
        );
        for key in [
            k::TLS_PROTOCOL_NAME,
            k::TLS_PROTOCOL_VERSION,
            k::TLS_ESTABLISHED,
            k::TAP_TLS_PROBE,
        ] {
            assert_eq!(find(a, key), None, "{key}");
        }
        assert_eq!(s(a, k::TAP_DIRECTION), Some("ingress"));
        assert_eq!(i(a, k::TAP_CONNECTION_ID), Some(7));
        assert_eq!(s(a, k::TAP_L7_PROTOCOL), Some("http1"));
        // Sizes are per message, whatever the direction.
        assert_eq!(i(a, "http.request.size"), Some(120));
        assert_eq!(i(a, "http.response.size"), Some(80));
        assert_eq!(find(a, "tap.bytes_sent"), None);
    }

    /// Options that put these request and response headers on spans.
    pub(crate) fn with_headers(request: &[&str], response: &[&str]) -> MappingOptions {
        MappingOptions {
            span_request_headers: request.iter().map(|h| h.to_string()).collect(),
            span_response_headers: response.iter().map(|h| h.to_string()).collect(),
            ..MappingOptions::default()
        }
    }

    #[test]
    fn only_configured_headers_become_span_attributes() {
        let options = with_headers(&["accept", "x-multi", ":path"], &["content-type"]);
        let a = super::span(&client_https(), &options).attributes;
        assert_eq!(
            find(&a, "http.request.header.accept"),
            Some(&AttrValue::StrArray(vec!["application/json".into()]))
        );
        // Every value of a repeated header (any case), in order.
        assert_eq!(
            find(&a, "http.request.header.x-multi"),
            Some(&AttrValue::StrArray(vec!["a".into(), "b".into()]))
        );
        // Pseudo-headers never, even when listed.
        assert_eq!(find(&a, "http.request.header.:path"), None);
        assert_eq!(
            find(&a, "http.response.header.content-type"),
            Some(&AttrValue::StrArray(vec!["application/json".into()]))
        );
        // A request header list does not apply to responses, nor the reverse.
        let options = with_headers(&["content-type"], &["accept"]);
        let a = super::span(&client_https(), &options).attributes;
        assert_eq!(find(&a, "http.request.header.content-type"), None);
        assert_eq!(find(&a, "http.response.header.content-type"), None);
        assert_eq!(find(&a, "http.request.header.accept"), None);
        // Server side: Host, not Content-Length.
        let a = super::span(&server_plain(), &with_headers(&["host"], &[])).attributes;
        assert_eq!(
            find(&a, "http.request.header.host"),
            Some(&AttrValue::StrArray(vec!["localhost:8080".into()]))
        );
        assert_eq!(find(&a, "http.request.header.content-length"), None);
    }

    #[test]
    fn server_without_host_uses_local_address() {
        let mut ex = server_plain();
        if let Some(r) = ex.request.as_mut() {
            r.authority = None;
            r.target = "/".into();
        }
        let a = span(&ex).attributes;
        assert_eq!(s(&a, k::SERVER_ADDRESS), Some("127.0.0.1"));
        assert_eq!(i(&a, k::SERVER_PORT), Some(8080));
        assert_eq!(s(&a, k::URL_PATH), Some("/"));
        assert_eq!(find(&a, k::URL_QUERY), None);
    }

    #[test]
    fn client_fallbacks() {
        // No authority: SNI, then remote address.
        let mut ex = client_https();
        if let Some(r) = ex.request.as_mut() {
            r.authority = None;
        }
        let a = span(&ex).attributes;
        assert_eq!(s(&a, k::SERVER_ADDRESS), Some("api.example.com"));
        assert_eq!(i(&a, k::SERVER_PORT), Some(443));
        assert_eq!(
            s(&a, k::URL_FULL),
            Some("https://api.example.com/v1/items?id=7")
        );
        ex.connection.tls = None;
        let a = span(&ex).attributes;
        assert_eq!(s(&a, k::SERVER_ADDRESS), Some("93.184.216.34"));
        assert_eq!(
            s(&a, k::URL_FULL),
            Some("https://93.184.216.34:443/v1/items?id=7")
        );
        // Authority with a port wins over the remote port.
        if let Some(r) = ex.request.as_mut() {
            r.authority = Some("[::1]:8443".into());
        }
        let a = span(&ex).attributes;
        assert_eq!(s(&a, k::SERVER_ADDRESS), Some("::1"));
        assert_eq!(i(&a, k::SERVER_PORT), Some(8443));
    }

    #[test]
    fn sni_is_the_server_address_when_the_request_names_no_host() {
        // Server side, TLS, no Host header: the SNI, with the local port.
        let mut ex = server_plain();
        ex.connection.tls = client_https().connection.tls;
        if let Some(r) = ex.request.as_mut() {
            r.authority = None;
        }
        let a = span(&ex).attributes;
        assert_eq!(s(&a, "server.address"), Some("api.example.com"));
        assert_eq!(i(&a, "server.port"), Some(8080));
        assert_eq!(find(&a, "tls.client.server_name"), None);
        // A Host header wins over a different SNI.
        if let Some(r) = ex.request.as_mut() {
            r.authority = Some("www.example.org".into());
        }
        let a = span(&ex).attributes;
        assert_eq!(s(&a, "server.address"), Some("www.example.org"));
        // No Host and no SNI: the local address.
        ex.connection.tls = None;
        if let Some(r) = ex.request.as_mut() {
            r.authority = None;
        }
        let a = span(&ex).attributes;
        assert_eq!(s(&a, "server.address"), Some("127.0.0.1"));
    }

    #[test]
    fn url_full_redacts_userinfo() {
        let mut ex = client_https();
        if let Some(r) = ex.request.as_mut() {
            r.target = "http://user:secret@proxy.example:3128/x?y".into();
        }
        let a = span(&ex).attributes;
        assert_eq!(
            s(&a, k::URL_FULL),
            Some("http://REDACTED:REDACTED@proxy.example:3128/x?y")
        );
    }

    fn with_status(mut ex: Exchange, status: u16) -> Exchange {
        if let Some(r) = ex.response.as_mut() {
            r.status = status;
        }
        ex
    }

    #[test]
    fn status_rules() {
        let err = |d: &str| SpanStatus::Error {
            description: d.into(),
        };
        let table: Vec<(Exchange, SpanStatus, Option<&str>)> = vec![
            (with_status(client_https(), 200), SpanStatus::Unset, None),
            // HTTP status-code errors: Error without a description.
            (with_status(client_https(), 404), err(""), Some("404")),
            (with_status(client_https(), 502), err(""), Some("502")),
            (with_status(server_plain(), 404), SpanStatus::Unset, None),
            (with_status(server_plain(), 503), err(""), Some("503")),
            (
                Exchange {
                    response: None,
                    partial: true,
                    ..server_plain()
                },
                err("no response captured"),
                Some("incomplete"),
            ),
            (
                Exchange {
                    response: None,
                    partial: true,
                    ..client_https()
                },
                err("no response captured"),
                Some("incomplete"),
            ),
        ];
        for (ex, want_status, want_error) in table {
            let sp = span(&ex);
            assert_eq!(sp.status, want_status, "{:?}", ex.response);
            assert_eq!(s(&sp.attributes, k::ERROR_TYPE), want_error);
        }
        let partial = span(&Exchange {
            response: None,
            partial: true,
            ..server_plain()
        });
        assert_eq!(b(&partial.attributes, k::TAP_PARTIAL), Some(true));
        assert_eq!(
            find(&partial.attributes, k::HTTP_RESPONSE_STATUS_CODE),
            None
        );
        assert_eq!(find(&partial.attributes, k::HTTP_RESPONSE_BODY_SIZE), None);
        assert_eq!(i(&partial.attributes, "http.request.size"), Some(120));
        assert_eq!(find(&partial.attributes, "http.response.size"), None);
    }

    #[test]
    fn truncated_bodies_are_flagged_on_the_span() {
        let mut ex = client_https();
        let a = span(&ex).attributes;
        assert_eq!(b(&a, k::TAP_REQUEST_BODY_TRUNCATED), None);
        assert_eq!(b(&a, k::TAP_RESPONSE_BODY_TRUNCATED), None);
        if let Some(r) = ex.response.as_mut() {
            r.body_truncated = true;
        }
        let a = span(&ex).attributes;
        assert_eq!(b(&a, k::TAP_REQUEST_BODY_TRUNCATED), None);
        assert_eq!(b(&a, k::TAP_RESPONSE_BODY_TRUNCATED), Some(true));
    }

    #[test]
    fn method_normalisation() {
        let mut ex = server_plain();
        if let Some(r) = ex.request.as_mut() {
            r.method = "FOO".into();
        }
        let sp = span(&ex);
        // Unknown method: the span is named `HTTP`, not `_OTHER`.
        assert_eq!(sp.name, "HTTP");
        assert_eq!(s(&sp.attributes, "http.request.method"), Some("_OTHER"));
        assert_eq!(
            s(&sp.attributes, "http.request.method_original"),
            Some("FOO")
        );
        // QUERY is known; a known method has no `_original`.
        if let Some(r) = ex.request.as_mut() {
            r.method = "QUERY".into();
        }
        let sp = span(&ex);
        assert_eq!(sp.name, "QUERY");
        assert_eq!(s(&sp.attributes, "http.request.method"), Some("QUERY"));
        assert_eq!(find(&sp.attributes, "http.request.method_original"), None);
        // Methods are case-sensitive.
        if let Some(r) = ex.request.as_mut() {
            r.method = "get".into();
        }
        let sp = span(&ex);
        assert_eq!(sp.name, "HTTP");
        assert_eq!(s(&sp.attributes, "http.request.method"), Some("_OTHER"));
        assert_eq!(
            s(&sp.attributes, "http.request.method_original"),
            Some("get")
        );

        let no_request = span(&Exchange {
            request: None,
            ..server_plain()
        });
        assert_eq!(no_request.name, "HTTP");
        assert_eq!(find(&no_request.attributes, k::HTTP_REQUEST_METHOD), None);
        assert_eq!(find(&no_request.attributes, k::URL_PATH), None);
    }

    #[test]
    fn configured_known_methods_replace_the_defaults() {
        let options = MappingOptions {
            known_methods: KnownMethods::new(["PROPFIND", "GET"]),
            ..MappingOptions::default()
        };
        let mut ex = server_plain();
        if let Some(r) = ex.request.as_mut() {
            r.method = "PROPFIND".into();
        }
        let sp = super::span(&ex, &options);
        assert_eq!(sp.name, "PROPFIND");
        assert_eq!(s(&sp.attributes, "http.request.method"), Some("PROPFIND"));
        assert_eq!(find(&sp.attributes, "http.request.method_original"), None);
        // POST is a default method, but not in the configured list.
        if let Some(r) = ex.request.as_mut() {
            r.method = "POST".into();
        }
        let sp = super::span(&ex, &options);
        assert_eq!(sp.name, "HTTP");
        assert_eq!(s(&sp.attributes, "http.request.method"), Some("_OTHER"));
        assert_eq!(
            s(&sp.attributes, "http.request.method_original"),
            Some("POST")
        );
    }

    #[test]
    fn end_never_before_start() {
        let ex = Exchange {
            start_unix_ns: 10,
            end_unix_ns: 5,
            ..server_plain()
        };
        let sp = span(&ex);
        assert_eq!((sp.start_unix_ns, sp.end_unix_ns), (10, 10));
    }

    #[test]
    fn a_server_span_is_the_child_of_the_request_its_traceparent_names() {
        let mut ex = server_plain();
        assert_eq!(span(&ex).trace, TracePlace::Root);
        if let Some(r) = ex.request.as_mut() {
            r.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".into());
            r.tracestate = Some("congo=t61rcWkgMzE".into());
        }
        let TracePlace::ChildOf(ctx) = span(&ex).trace else {
            panic!("server span with a traceparent is a child");
        };
        assert_eq!(
            ctx.parent.span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert!(!ctx.parent.sampled);
        assert_eq!(ctx.state.as_deref(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn a_client_span_is_the_request_its_traceparent_names() {
        let TracePlace::Is(ctx) = span(&client_https()).trace else {
            panic!("client span with a traceparent is the request");
        };
        assert_eq!(ctx.state.as_deref(), Some("rojo=00f067aa0ba902b7"));
        // An invalid traceparent: a new trace, and its tracestate is ignored.
        let mut ex = client_https();
        if let Some(r) = ex.request.as_mut() {
            r.traceparent = Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        }
        assert_eq!(span(&ex).trace, TracePlace::Root);
    }

    #[test]
    fn authority_splitting() {
        assert_eq!(split_authority("example.com"), ("example.com", None));
        assert_eq!(
            split_authority("example.com:8080"),
            ("example.com", Some(8080))
        );
        assert_eq!(split_authority("example.com:"), ("example.com", None));
        assert_eq!(split_authority("[::1]:443"), ("::1", Some(443)));
        assert_eq!(split_authority("[::1]"), ("::1", None));
        assert_eq!(split_authority("[::1"), ("[::1", None));
        assert_eq!(split_authority("::1"), ("::1", None));
        assert_eq!(split_authority("u:p@h:81"), ("h", Some(81)));
        assert_eq!(split_authority("h:99999"), ("h:99999", None));
        assert_eq!(split_authority("h:x"), ("h:x", None));
        assert_eq!(split_authority(""), ("", None));
    }

    #[test]
    fn tls_versions_and_protocol_versions() {
        assert_eq!(tls_protocol(0x0304), Some(("tls", "1.3")));
        assert_eq!(tls_protocol(0x0303), Some(("tls", "1.2")));
        assert_eq!(tls_protocol(0x0301), Some(("tls", "1.0")));
        assert_eq!(tls_protocol(0x0300), Some(("ssl", "3")));
        assert_eq!(tls_protocol(0x7f1c), None);

        let mut ex = server_plain();
        for (raw, want) in [
            ("1.0", Some("1.0")),
            ("HTTP/1.1", Some("1.1")),
            ("2.0", Some("2")),
            ("", None),
        ] {
            if let Some(r) = ex.request.as_mut() {
                r.version = raw.into();
            }
            assert_eq!(protocol_version(&ex), want, "{raw}");
        }
        ex.connection.protocol = L7Protocol::Http2;
        assert_eq!(protocol_version(&ex), Some("2"));

        // Unknown TLS version: name only, not established.
        let mut ex = client_https();
        if let Some(t) = ex.connection.tls.as_mut().map(std::sync::Arc::make_mut) {
            t.version = None;
            t.probes.clear();
        }
        let a = span(&ex).attributes;
        assert_eq!(s(&a, k::TLS_PROTOCOL_NAME), Some("tls"));
        assert_eq!(find(&a, k::TLS_PROTOCOL_VERSION), None);
        assert_eq!(find(&a, k::TLS_ESTABLISHED), None);
        assert_eq!(find(&a, k::TAP_TLS_PROBE), None);
    }

    #[test]
    fn scheme_fallback() {
        let mut ex = client_https();
        if let Some(r) = ex.request.as_mut() {
            r.scheme = "".into();
        }
        assert_eq!(scheme(&ex), "https");
        ex.connection.tls = None;
        assert_eq!(scheme(&ex), "http");
    }
}

#[cfg(test)]
mod http2_tests {
    use super::tests::{client_https, server_plain, span};
    use super::*;
    use crate::model::{GrpcInfo, Http2Info};
    use crate::value::{find, AttrValue};

    #[test]
    fn grpc_call_names_the_span_and_sets_rpc_attributes() {
        let mut ex = client_https();
        ex.http2 = Some(Http2Info {
            stream_id: 5,
            ..Default::default()
        });
        ex.grpc = Some(GrpcInfo {
            service: "helloworld.Greeter".into(),
            method: "SayHello".into(),
            status: Some(0),
            message: None,
        });
        let sp = span(&ex);
        assert_eq!(sp.name, "helloworld.Greeter/SayHello");
        let s = |key| find(&sp.attributes, key).and_then(AttrValue::as_str);
        assert_eq!(s("rpc.system.name"), Some("grpc"));
        assert_eq!(s("rpc.method"), Some("helloworld.Greeter/SayHello"));
        assert_eq!(s("rpc.response.status_code"), Some("OK"));
        // The deprecated names are gone.
        for old in ["rpc.system", "rpc.service", "rpc.grpc.status_code"] {
            assert_eq!(find(&sp.attributes, old), None, "{old}");
        }
        assert_eq!(
            find(&sp.attributes, "tap.http2.stream_id").and_then(AttrValue::as_int),
            Some(5)
        );
        assert_eq!(sp.status, SpanStatus::Unset);
    }

    /// The attribute order is part of the output (exporters keep it): pin it
    /// for an exchange that sets every optional group.
    #[test]
    fn attribute_order_with_every_group() {
        let mut ex = client_https();
        ex.http2 = Some(Http2Info {
            stream_id: 5,
            reset: Some(8),
            goaway: false,
            headers_degraded: true,
        });
        ex.grpc = Some(GrpcInfo {
            service: "s".into(),
            method: "m".into(),
            status: Some(2),
            message: None,
        });
        ex.partial = true;
        ex.gap = true;
        if let Some(r) = ex.request.as_mut() {
            r.method = "BREW".into();
        }
        let options = super::tests::with_headers(&["accept", "x-multi"], &["content-type"]);
        let keys: Vec<String> = super::span(&ex, &options)
            .attributes
            .iter()
            .map(|a| a.key.to_string())
            .collect();
        let want = [
            "http.request.method",
            "http.request.method_original",
            "http.response.status_code",
            "rpc.system.name",
            "rpc.method",
            "rpc.response.status_code",
            "tap.http2.stream_id",
            "tap.http2.reset_code",
            "tap.http2.headers_degraded",
            "url.scheme",
            "network.protocol.name",
            "network.protocol.version",
            "user_agent.original",
            "http.request.body.size",
            "http.response.body.size",
            "http.request.size",
            "http.response.size",
            "http.request.header.accept",
            "http.request.header.x-multi",
            "http.response.header.content-type",
            "url.full",
            "server.address",
            "server.port",
            "network.peer.address",
            "network.peer.port",
            "process.pid",
            "process.executable.path",
            "process.executable.name",
            "process.command_args",
            "tls.protocol.name",
            "tls.protocol.version",
            "tls.cipher",
            "tls.next_protocol",
            "tls.established",
            "tap.tls.probe",
            "tap.direction",
            "tap.connection.id",
            "tap.l7_protocol",
            "tap.partial",
            "tap.gap",
            "error.type",
        ];
        assert_eq!(keys, want);
        let server = span(&server_plain());
        let keys: Vec<&str> = server.attributes.iter().map(|a| a.key.as_ref()).collect();
        // The connection's attributes follow the exchange's own.
        let addresses = [
            "url.path",
            "url.query",
            "server.address",
            "server.port",
            "client.address",
            "network.peer.address",
            "network.peer.port",
        ];
        let at = keys.iter().position(|k| *k == "url.path");
        assert_eq!(
            at.and_then(|i| keys.get(i..i + addresses.len())),
            Some(&addresses[..])
        );
    }

    #[test]
    fn grpc_error_rules_differ_by_side() {
        let grpc = |code| GrpcInfo {
            service: "s".into(),
            method: "m".into(),
            status: Some(code),
            message: Some("boom".into()),
        };
        let mut client = client_https();
        client.grpc = Some(grpc(5)); // NOT_FOUND
        assert_eq!(error_type(&client).as_deref(), Some("NOT_FOUND"));
        // The description is the grpc-message, not the code again.
        assert_eq!(
            status(&client),
            SpanStatus::Error {
                description: "boom".into()
            }
        );
        client.grpc = Some(GrpcInfo {
            message: None,
            ..grpc(5)
        });
        assert_eq!(
            status(&client),
            SpanStatus::Error {
                description: String::new()
            }
        );
        let mut server = server_plain();
        server.grpc = Some(grpc(5));
        assert_eq!(status(&server), SpanStatus::Unset);
        server.grpc = Some(grpc(13)); // INTERNAL
        assert_eq!(error_type(&server).as_deref(), Some("INTERNAL"));
        assert_eq!(
            find(&span(&server).attributes, "rpc.response.status_code").and_then(AttrValue::as_str),
            Some("INTERNAL")
        );
    }

    #[test]
    fn grpc_status_names() {
        assert_eq!(grpc_status_name(0), "OK");
        assert_eq!(grpc_status_name(4), "DEADLINE_EXCEEDED");
        assert_eq!(grpc_status_name(14), "UNAVAILABLE");
        assert_eq!(grpc_status_name(16), "UNAUTHENTICATED");
        assert_eq!(grpc_status_name(17), "17");
        assert_eq!(grpc_status_name(u32::MAX), "4294967295");
    }

    #[test]
    fn reset_stream_is_an_error() {
        let mut ex = server_plain();
        ex.http2 = Some(Http2Info {
            stream_id: 3,
            reset: Some(8),
            ..Default::default()
        });
        assert_eq!(error_type(&ex).as_deref(), Some("stream_reset"));
        assert_eq!(
            status(&ex),
            SpanStatus::Error {
                description: "HTTP/2 stream reset (error code 8)".into()
            }
        );
        let sp = span(&ex);
        assert_eq!(
            find(&sp.attributes, "tap.http2.reset_code").and_then(AttrValue::as_int),
            Some(8)
        );
    }
}
