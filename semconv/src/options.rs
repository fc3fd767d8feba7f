//! What the mapping is told by the agent's settings: the known HTTP methods
//! and the opt-in attributes and metrics. The mapping functions stay pure:
//! they take these options as a parameter, and the agent builds them once
//! from its settings.

/// The HTTP methods the semantic conventions know by default (case-sensitive):
/// those of RFC 9110, `PATCH` (RFC 5789) and `QUERY`
/// (draft-ietf-httpbis-safe-method-w-body), as listed for `http.request.method`.
pub const DEFAULT_KNOWN_METHODS: &[&str] = &[
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE",
];

/// The method value of a method the instrumentation does not know.
pub const OTHER_METHOD: &str = "_OTHER";

/// The set of known HTTP methods: compared exactly (methods are case-sensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownMethods(Vec<String>);

impl KnownMethods {
    /// Exactly these methods: the list replaces the defaults, it does not
    /// extend them (as `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` asks).
    pub fn new<I, S>(methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(methods.into_iter().map(Into::into).collect())
    }

    /// Is `method` one of them (exact case)?
    pub fn contains(&self, method: &str) -> bool {
        self.0.iter().any(|m| m == method)
    }

    /// The `http.request.method` value: `method` itself when known, else `_OTHER`.
    pub fn normalize<'a>(&self, method: &'a str) -> &'a str {
        if self.contains(method) {
            method
        } else {
            OTHER_METHOD
        }
    }

    /// The methods, in the order given.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl Default for KnownMethods {
    fn default() -> Self {
        Self::new(DEFAULT_KNOWN_METHODS.iter().copied())
    }
}

/// How exchanges are mapped: built once by the agent from its settings.
/// The default is the conventions' default: every opt-in off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MappingOptions {
    /// Methods kept as they are in `http.request.method`; any other is `_OTHER`.
    pub known_methods: KnownMethods,
    /// Request headers (lowercase names) put on spans as
    /// `http.request.header.<name>` (opt-in); empty: none.
    pub span_request_headers: Vec<String>,
    /// Response headers (lowercase names) put on spans as
    /// `http.response.header.<name>` (opt-in); empty: none.
    pub span_response_headers: Vec<String>,
    /// Measure the `http.*.body.size` histograms (opt-in).
    pub body_size_metrics: bool,
    /// `server.address` and `server.port` on the HTTP server metrics (opt-in
    /// there; client metrics always carry them).
    pub server_address_on_server_metrics: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_known_methods_are_the_conventions_list_with_query() {
        let k = KnownMethods::default();
        for m in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY",
        ] {
            assert_eq!(k.normalize(m), m);
        }
        assert_eq!(k.as_slice().len(), 10);
        assert_eq!(k.normalize("get"), "_OTHER");
        assert_eq!(k.normalize("PROPFIND"), "_OTHER");
        assert_eq!(k.normalize(""), "_OTHER");
    }

    #[test]
    fn a_configured_list_replaces_the_defaults() {
        let k = KnownMethods::new(["GET", "PROPFIND"]);
        assert_eq!(k.normalize("PROPFIND"), "PROPFIND");
        assert_eq!(k.normalize("GET"), "GET");
        assert_eq!(k.normalize("POST"), "_OTHER");
        assert_eq!(k.normalize("propfind"), "_OTHER");
        assert_eq!(
            KnownMethods::new(Vec::<String>::new()).normalize("GET"),
            "_OTHER"
        );
    }
}
