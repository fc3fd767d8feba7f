//! How exchanges are described in the exported telemetry: the HTTP methods
//! known to the semantic-convention mapping, and the attributes and metrics
//! the conventions leave opt-in (off unless configured).

use std::fmt;
use std::str::FromStr;

/// The HTTP methods known by default (case-sensitive): the semantic
/// conventions' list for `http.request.method` (RFC 9110, `PATCH`, `QUERY`).
pub const DEFAULT_KNOWN_HTTP_METHODS: &[&str] = &[
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE",
];

/// How exchanges are described in spans and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// HTTP methods kept as they are in `http.request.method` (compared
    /// exactly); any other method is `_OTHER`, its span is named `HTTP` and
    /// the method is kept in `http.request.method_original`. A configured
    /// list (`telemetry.known_methods`, `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`)
    /// replaces the default one.
    pub known_methods: Vec<String>,
    /// Request headers (lowercase names) put on spans as
    /// `http.request.header.<name>` (opt-in in the conventions); default
    /// none. stdout JSON keeps every captured header regardless.
    pub span_request_headers: Vec<String>,
    /// Response headers (lowercase names) put on spans as
    /// `http.response.header.<name>`; default none.
    pub span_response_headers: Vec<String>,
    /// Record the `http.{client,server}.{request,response}.body.size`
    /// histograms (opt-in); default off.
    pub body_size_metrics: bool,
    /// Put `server.address` and `server.port` on the HTTP server metrics
    /// (opt-in there: they are the local host, of high cardinality for
    /// little use); default off. Client metrics always carry them.
    pub server_address_on_server_metrics: bool,
    /// The client span of a request that carries a valid W3C `traceparent`:
    /// exported with the header's parent-id as its span id (default), or
    /// skipped for programs that export their own client spans.
    pub client_span_from_traceparent: ClientSpanFromTraceparent,
    /// How spans are linked into traces when no `traceparent` says
    /// (`telemetry.trace_links`).
    pub trace_links: TraceLinks,
}

/// The bounds of trace linking (`telemetry.trace_links`): a span whose parent
/// has not come yet is held at most `wait`, and at most `max_held` spans are
/// held at once; past either bound a span goes out as a root, counted
/// (`tap.trace.links` with `root_timeout` / `root_full`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceLinks {
    /// Longest a span waits for its parent (default 1 s).
    pub wait: std::time::Duration,
    /// Most spans held at once (default 2000: ~3.4 MiB at ~1.7 KB per held
    /// exchange; 10000 held added ~17 MiB of RSS at saturation).
    pub max_held: usize,
}

impl Default for TraceLinks {
    fn default() -> Self {
        Self {
            wait: std::time::Duration::from_secs(1),
            max_held: 2_000,
        }
    }
}

/// What to do with the client span of a request that carries a valid
/// `traceparent` (`telemetry.client_span_from_traceparent`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClientSpanFromTraceparent {
    /// Export it: its span id is the header's parent-id (the id the caller
    /// gave this request), so the server span is its child.
    #[default]
    Export,
    /// Skip it (counted): the program exports its own client span with that
    /// id, and the agent's would duplicate it.
    Skip,
}

impl ClientSpanFromTraceparent {
    /// `export`, `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientSpanFromTraceparent::Export => "export",
            ClientSpanFromTraceparent::Skip => "skip",
        }
    }
}

impl fmt::Display for ClientSpanFromTraceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientSpanFromTraceparent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "export" => Ok(ClientSpanFromTraceparent::Export),
            "skip" => Ok(ClientSpanFromTraceparent::Skip),
            other => Err(format!(
                "unknown client span policy {other:?}: expected export or skip"
            )),
        }
    }
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            known_methods: DEFAULT_KNOWN_HTTP_METHODS
                .iter()
                .map(|m| m.to_string())
                .collect(),
            span_request_headers: Vec::new(),
            span_response_headers: Vec::new(),
            body_size_metrics: false,
            server_address_on_server_metrics: false,
            client_span_from_traceparent: ClientSpanFromTraceparent::Export,
            trace_links: TraceLinks::default(),
        }
    }
}

/// An HTTP method as a known-method entry: a non-empty token (RFC 9110
/// `tchar`s), kept in its case.
pub(crate) fn check_known_method(m: &str) -> Result<(), String> {
    let ok = !m.is_empty()
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid HTTP method {m:?}: expected a method name such as GET or PROPFIND (letters, digits and !#$%&'*+-.^_`|~)"
        ))
    }
}

/// A comma-separated list of methods (`OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`):
/// entries trimmed, empty ones skipped, duplicates dropped, case kept.
pub(crate) fn parse_known_methods(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for m in text.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        check_known_method(m)?;
        if !out.iter().any(|x| x == m) {
            out.push(m.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_known_methods_include_query() {
        let t = TelemetrySettings::default();
        assert_eq!(
            t.known_methods,
            [
                "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY",
                "TRACE"
            ]
        );
    }

    #[test]
    fn client_span_policies_parse_and_print() {
        for p in [
            ClientSpanFromTraceparent::Export,
            ClientSpanFromTraceparent::Skip,
        ] {
            assert_eq!(p.as_str().parse(), Ok(p));
        }
        assert_eq!(
            TelemetrySettings::default().client_span_from_traceparent,
            ClientSpanFromTraceparent::Export
        );
        assert!("drop"
            .parse::<ClientSpanFromTraceparent>()
            .unwrap_err()
            .contains("expected export or skip"));
    }

    #[test]
    fn method_lists_are_parsed_case_sensitively() {
        assert_eq!(
            parse_known_methods(" GET, PROPFIND ,,get,GET"),
            Ok(vec!["GET".into(), "PROPFIND".into(), "get".into()])
        );
        assert_eq!(parse_known_methods(" , "), Ok(vec![]));
        assert!(parse_known_methods("GET,BAD METHOD")
            .unwrap_err()
            .contains("\"BAD METHOD\""));
        assert!(parse_known_methods("GET;POST").is_err());
    }
}
