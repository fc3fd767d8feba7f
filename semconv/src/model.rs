//! The captured records: exchanges and connection reports.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Direction of an exchange from the observed process's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The process served the request (it accepted the connection).
    Ingress,
    /// The process sent the request to a loopback or private address.
    EgressInternal,
    /// The process sent the request to a public address.
    EgressExternal,
}

impl Direction {
    /// Egress direction for a remote address: loopback, private, link-local
    /// and unique-local ranges are internal.
    pub fn egress_to(remote: IpAddr) -> Self {
        if is_internal(remote) {
            Direction::EgressInternal
        } else {
            Direction::EgressExternal
        }
    }

    /// The wire name: `ingress`, `egress-internal`, `egress-external`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::EgressInternal => "egress-internal",
            Direction::EgressExternal => "egress-external",
        }
    }

    /// True for the two egress variants.
    pub fn is_egress(self) -> bool {
        !matches!(self, Direction::Ingress)
    }
}

/// Loopback, RFC 1918, link-local, CGNAT, IPv6 unique-local; IPv4-mapped IPv6 unwrapped.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (s[0] & 0xfe00) == 0xfc00
                    || (s[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

/// Application protocol of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum L7Protocol {
    /// Not decided (no data seen).
    #[default]
    Unknown,
    /// HTTP/1.x.
    Http1,
    /// HTTP/2.
    Http2,
    /// Anything else.
    Other,
}

impl L7Protocol {
    /// `http1`, `http2`, `other`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            L7Protocol::Unknown => "unknown",
            L7Protocol::Http1 => "http1",
            L7Protocol::Http2 => "http2",
            L7Protocol::Other => "other",
        }
    }
}

/// The observed process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Process id (tgid).
    pub pid: u32,
    /// Full executable path (`/proc/PID/exe`), or empty when unknown.
    pub exe: String,
    /// Command arguments (the executable as invoked first), as read from
    /// `/proc/PID/cmdline` or the exec event, credentials already masked.
    pub command_args: Vec<String>,
    /// Kernel task name.
    pub comm: String,
    /// Container id (64 hex digits) from the process's cgroup path, when in a container.
    pub container_id: Option<String>,
    /// Kubernetes pod UID from the cgroup path, when in a pod.
    pub k8s_pod_uid: Option<String>,
}

impl ProcessInfo {
    /// The command arguments joined by spaces (for people: stdout JSON, log
    /// summaries); telemetry carries the list itself (`process.command_args`).
    pub fn command_line(&self) -> String {
        self.command_args.join(" ")
    }

    /// Executable file name, falling back to the task name.
    pub fn exe_name(&self) -> &str {
        match self.exe.rsplit('/').next() {
            Some(name) if !name.is_empty() => name,
            _ => &self.comm,
        }
    }
}

/// TLS facts about a connection, from its handshake and its probes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// Negotiated version number, e.g. 0x0304.
    pub version: Option<u16>,
    /// Server name indication from the ClientHello.
    pub server_name: Option<String>,
    /// Negotiated cipher suite name.
    pub cipher: Option<String>,
    /// ALPN offered by the client.
    pub alpn_offered: Vec<String>,
    /// ALPN chosen (from the ServerHello, or inferred from the plaintext).
    pub alpn: Option<String>,
    /// Probe types that delivered plaintext (`openssl`, `gnutls`).
    pub probes: Vec<String>,
    /// A ClientHello was seen.
    pub got_client_hello: bool,
}

/// One HTTP header as captured (name as on the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Header name (lower case once kept; a name of the HPACK static table
    /// or the keep list borrowed, not copied).
    pub name: Cow<'static, str>,
    /// Header value (lossy UTF-8).
    pub value: String,
}

/// The request half of an exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Request target as sent (origin form `/a?b`, or absolute form).
    pub target: String,
    /// Host / `:authority`.
    pub authority: Option<String>,
    /// `http` or `https` (as sent in HTTP/2's `:scheme`). Borrowed when it
    /// is one of those: one allocation less per exchange.
    pub scheme: Cow<'static, str>,
    /// Protocol version, e.g. `1.1`, `2`: always borrowed from the few there are.
    pub version: Cow<'static, str>,
    /// Headers kept at the capture level (redacted).
    pub headers: Vec<Header>,
    /// Body bytes (payload length).
    pub body_size: u64,
    /// Body bytes kept at capture level `full`.
    pub body: Option<Vec<u8>>,
    /// Some body bytes are missing from `body` (cut at the body limit or by
    /// the kernel's per-call copy cap, or lost in a gap); `body_size` stays
    /// the exact payload length.
    pub body_truncated: bool,
    /// The content coding `body` was decoded from (`gzip`, `deflate`, `br`)
    /// when decompression is on; `body_size` stays the size on the wire.
    pub body_decoded: Option<&'static str>,
    /// Bytes on the wire (headers and body framing included).
    pub wire_bytes: u64,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `traceparent` field value (several fields joined by `,`, which makes
    /// it invalid, as the W3C specification wants).
    pub traceparent: Option<String>,
    /// `tracestate` field value (several fields joined by `,`).
    pub tracestate: Option<String>,
}

impl Request {
    /// Path part of the target (without query), `/` when absent.
    pub fn path(&self) -> &str {
        let t = self.origin_form();
        let end = t.find(['?', '#']).unwrap_or(t.len());
        match &t[..end] {
            "" => "/",
            p => p,
        }
    }

    /// Query string (without `?`), if any.
    pub fn query(&self) -> Option<&str> {
        let t = self.origin_form();
        let q = &t[t.find('?')? + 1..];
        Some(q.split('#').next().unwrap_or(q))
    }

    /// The target reduced to origin form (`/path?query`).
    fn origin_form(&self) -> &str {
        let t = self.target.as_str();
        if !self.is_absolute_form() {
            return t;
        }
        match t.find("://") {
            Some(i) => {
                let rest = &t[i + 3..];
                rest.find('/').map_or("", |j| &rest[j..])
            }
            None => t,
        }
    }

    /// The target is a full URL (`scheme://…`), not the usual origin form
    /// (`/…`) nor `*`. Asked for every exchange by the exporters: a target
    /// starting with `/` is not searched (the substring searcher's set-up
    /// was ~2 % of the pipeline's instructions, `bench/instructions.sh`).
    fn is_absolute_form(&self) -> bool {
        !self.target.starts_with('/') && self.target.contains("://")
    }

    /// Full URL: `scheme://authority/path?query`.
    pub fn url(&self, fallback_authority: &str) -> String {
        self.url_parts(fallback_authority).concat()
    }

    /// The pieces [`Request::url`] joins: the target when it is already a
    /// full URL, else scheme, `://`, authority (the request's, else
    /// `fallback_authority`) and the origin-form target.
    pub fn url_parts<'a>(&'a self, fallback_authority: &'a str) -> [&'a str; 4] {
        if self.is_absolute_form() {
            return [&self.target, "", "", ""];
        }
        let authority = self.authority.as_deref().unwrap_or(fallback_authority);
        [&self.scheme, "://", authority, self.origin_form()]
    }
}

/// The response half of an exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers kept at the capture level (redacted).
    pub headers: Vec<Header>,
    /// Body bytes (payload length).
    pub body_size: u64,
    /// Body bytes kept at capture level `full`.
    pub body: Option<Vec<u8>>,
    /// Some body bytes are missing from `body` (see [`Request::body_truncated`]).
    pub body_truncated: bool,
    /// See [`Request::body_decoded`].
    pub body_decoded: Option<&'static str>,
    /// Bytes on the wire.
    pub wire_bytes: u64,
    /// `Content-Type` header.
    pub content_type: Option<String>,
}

/// A network endpoint of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// The observed process's side.
    pub local: SocketAddr,
    /// The peer.
    pub remote: SocketAddr,
}

/// A connection as the records carry it: what every exchange on it and its
/// final report share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Connection id (the kernel's, unique while the agent runs).
    pub id: u64,
    /// The observed process.
    pub process: Arc<ProcessInfo>,
    /// Ingress / egress.
    pub direction: Direction,
    /// Local and remote addresses.
    pub endpoints: Endpoints,
    /// Application protocol (`http1` / `http2` / `other` / `unknown`).
    pub protocol: L7Protocol,
    /// TLS facts when the connection is TLS.
    /// Shared by the connection's exchanges: written (copied first if
    /// shared) only when a handshake or probe tells something new.
    pub tls: Option<Arc<TlsInfo>>,
}

impl Connection {
    /// The server name (SNI) from the TLS ClientHello, when seen.
    pub fn server_name(&self) -> Option<&str> {
        self.tls.as_ref().and_then(|t| t.server_name.as_deref())
    }
}

/// One captured HTTP exchange with its context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The connection it travelled on.
    pub connection: Connection,
    /// The request, when seen.
    pub request: Option<Request>,
    /// The response, when seen.
    pub response: Option<Response>,
    /// Wall-clock start (first request byte), Unix nanoseconds.
    pub start_unix_ns: u64,
    /// Wall-clock end (last response byte), Unix nanoseconds.
    pub end_unix_ns: u64,
    /// A side is missing or incomplete.
    pub partial: bool,
    /// Bytes were missing inside the exchange.
    pub gap: bool,
    /// Why (`lost_bytes`, `cut_by_kernel_cap`, `joined_mid_stream`,
    /// `not_visible`): empty exactly when `gap` is false.
    pub gap_causes: Vec<&'static str>,
    /// HTTP/2 stream facts, for exchanges on HTTP/2.
    pub http2: Option<Http2Info>,
    /// gRPC call facts, when the exchange is a gRPC call.
    pub grpc: Option<GrpcInfo>,
    /// What the tracker saw that can link this exchange's span to others.
    pub link: LinkEvidence,
    /// The span's ids, given by the linker before any sink sees the exchange
    /// (`None` when no linker ran: replays and unit tests).
    pub ids: Option<crate::trace_context::SpanIds>,
}

/// The exchange's place on its connection: the evidence that pairs the two
/// ends of one exchange when both are seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Position {
    /// HTTP/1: the exchange's index (from 0) in request order, when no gap
    /// touched the connection up to and including it.
    Order(u64),
    /// HTTP/2: the stream id, when no gap touched the stream.
    Stream(u32),
}

/// A server exchange, named by what the tracker knows while it is in
/// flight: its connection and the kernel time of its request's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerRequest {
    /// Connection id of the server side.
    pub connection: u64,
    /// Kernel time (ns) of the request's first byte.
    pub start_ns: u64,
}

/// What one side of an evidence lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Candidate<T> {
    /// Nothing: no parent by this evidence.
    #[default]
    None,
    /// Exactly one.
    One(T),
    /// More than one: the evidence cannot decide.
    Ambiguous,
}

/// The evidence for linking an exchange's span, collected by the tracker
/// from kernel events (never from the content of requests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LinkEvidence {
    /// Kernel time (ns) of the request's first byte (0: no request).
    pub request_ns: u64,
    /// Thread (tid) that read (server) or wrote (client) the request's first
    /// bytes (0: unknown).
    pub tid: u32,
    /// The exchange's place on its connection, when still evidence.
    pub position: Option<Position>,
    /// Client exchanges: the server request in flight on the writing thread
    /// when the request was written.
    pub serving: Candidate<ServerRequest>,
    /// Server exchanges: the connection id of the client end of this
    /// connection, when the agent sees it too.
    pub peer: Candidate<u64>,
}

/// The HTTP/2 stream an exchange travelled on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Http2Info {
    /// Stream id.
    pub stream_id: u32,
    /// RST_STREAM error code, when the stream was reset.
    pub reset: Option<u32>,
    /// The stream was ended by a GOAWAY.
    pub goaway: bool,
    /// Some header block could not be decoded (HPACK state missed).
    pub headers_degraded: bool,
}

/// A gRPC call recognised on an HTTP/2 exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrpcInfo {
    /// Fully qualified service, e.g. `helloworld.Greeter`.
    pub service: String,
    /// Method, e.g. `SayHello`.
    pub method: String,
    /// `grpc-status`, when seen.
    pub status: Option<u32>,
    /// `grpc-message`, when seen.
    pub message: Option<String>,
}

impl Exchange {
    /// The endpoint name: SNI, else the request authority, else the remote address.
    pub fn endpoint_id(&self) -> String {
        self.endpoint_name().into_owned()
    }

    /// [`Exchange::endpoint_id`], borrowed when it is the SNI or the authority.
    pub fn endpoint_name(&self) -> std::borrow::Cow<'_, str> {
        if let Some(sni) = self.connection.server_name() {
            return sni.into();
        }
        if let Some(a) = self.request.as_ref().and_then(|r| r.authority.as_deref()) {
            return a.into();
        }
        self.connection.endpoints.remote.to_string().into()
    }

    /// Duration in nanoseconds (0 when the clock went backwards).
    pub fn duration_ns(&self) -> u64 {
        self.end_unix_ns.saturating_sub(self.start_unix_ns)
    }
}

/// Why a connection report was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The process called close().
    Close,
    /// The process exited.
    ProcessExit,
    /// The agent stopped while it was open.
    AgentShutdown,
    /// Evicted: idle past the tracking limit.
    Evicted,
}

impl CloseReason {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Close => "close",
            CloseReason::ProcessExit => "process_exit",
            CloseReason::AgentShutdown => "agent_shutdown",
            CloseReason::Evicted => "evicted",
        }
    }
}

/// One report per finished connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionReport {
    /// The connection.
    pub connection: Connection,
    /// `client`, `server`, or `unknown` (adopted and never decided).
    pub role: &'static str,
    /// Endpoint name (SNI, else the remote address).
    pub endpoint_id: String,
    /// The connection existed before the agent saw it open.
    pub adopted: bool,
    /// A protocol (HTTP) message was parsed on it.
    pub got_protocol_event: bool,
    /// Data events received.
    pub data_events: u64,
    /// Bytes written by the process.
    pub bytes_sent: u64,
    /// Bytes read by the process.
    pub bytes_received: u64,
    /// Complete exchanges.
    pub exchanges: u64,
    /// Exchanges emitted incomplete.
    pub partial_exchanges: u64,
    /// Exchanges (complete or partial) that bytes were missing from: flagged
    /// `gap` with their causes.
    pub gap_exchanges: u64,
    /// Parse errors (desyncs).
    pub parse_errors: u64,
    /// Data events lost in the kernel (ring buffer full).
    pub lost_events: u64,
    /// Bytes not captured (per-call cap, sendfile, lost events).
    pub truncated_bytes: u64,
    /// Body bytes the kernel skipped on purpose because the capture level
    /// does not keep them: known, counted in the sizes, not lost.
    pub skipped_bytes: u64,
    /// Open time, Unix nanoseconds.
    pub opened_unix_ns: u64,
    /// Close time, Unix nanoseconds.
    pub closed_unix_ns: u64,
    /// Why it ended.
    pub close_reason: CloseReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str) -> Request {
        Request {
            method: "GET".into(),
            target: target.into(),
            scheme: "http".into(),
            authority: Some("example.com".into()),
            ..Default::default()
        }
    }

    #[test]
    fn path_and_query() {
        assert_eq!(req("/a/b?x=1&y=2").path(), "/a/b");
        assert_eq!(req("/a/b?x=1&y=2").query(), Some("x=1&y=2"));
        assert_eq!(req("/a#frag").query(), None);
        assert_eq!(req("").path(), "/");
        assert_eq!(req("http://h:8/p?q").path(), "/p");
        assert_eq!(req("http://h:8").path(), "/");
        assert_eq!(req("/p?q").url("x"), "http://example.com/p?q");
    }

    #[test]
    fn internal_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "100.64.0.1",
        ] {
            assert_eq!(
                Direction::egress_to(ip.parse().unwrap()),
                Direction::EgressInternal,
                "{ip}"
            );
        }
        for ip in ["8.8.8.8", "2001:4860::8888", "::ffff:1.1.1.1"] {
            assert_eq!(
                Direction::egress_to(ip.parse().unwrap()),
                Direction::EgressExternal,
                "{ip}"
            );
        }
    }
}

/// What the connection tracker hands to the exporters.
#[derive(Debug)]
pub enum Output {
    /// One HTTP exchange.
    Exchange(Box<Exchange>),
    /// One finished connection.
    Report(Box<ConnectionReport>),
}
