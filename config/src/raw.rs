//! The file as written: every field optional, unknown keys refused.
//!
//! Values that can be checked alone are checked while they are read (see
//! `values.rs`); checks that need a position after reading keep it with
//! [`Spanned`].

use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::values::{
    ByteSize, DurationValue, KeyValues, OneOrMany, Pid, PortRange, Ratio, RawMatcher, StatusRange,
};
use crate::{CaptureLevel, Compression, DirectionFilter, Protocol, ServiceName, StdoutMode};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// Where telemetry goes: OTLP and/or JSON lines on stdout.
    pub exporters: Option<RawExporters>,
    /// Resource attributes put on everything exported.
    pub resource: Option<RawResource>,
    /// How much of each HTTP exchange is kept, with per-exchange rules.
    pub capture: Option<RawCapture>,
    /// Which traffic is captured at all.
    pub filters: Option<RawFilters>,
    /// What is masked before anything leaves the agent.
    pub redaction: Option<RawRedaction>,
    /// Kernel and pipeline sizes.
    pub limits: Option<RawLimits>,
    /// How exchanges are described in spans and metrics.
    pub telemetry: Option<RawTelemetry>,
}

/// `exporters:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExporters {
    /// `false` turns all export off (as `OTEL_SDK_DISABLED=true` does).
    pub enabled: Option<bool>,
    /// JSON lines on stdout: `auto` (only when no OTLP endpoint is set), `on`, `off`.
    pub stdout: Option<StdoutMode>,
    /// Which signals are exported.
    pub signals: Option<RawSignals>,
    /// The OTLP exporter.
    pub otlp: Option<RawOtlp>,
}

/// `exporters.signals:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSignals {
    /// Export one span per HTTP exchange.
    pub traces: Option<bool>,
    /// Export HTTP and capture-health metrics.
    pub metrics: Option<bool>,
    /// Export connection reports as log records.
    pub logs: Option<bool>,
}

/// `exporters.otlp:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOtlp {
    /// Base URL for all signals (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub endpoint: Option<Spanned<String>>,
    /// URL for traces, used as is (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    pub traces_endpoint: Option<Spanned<String>>,
    /// URL for metrics, used as is (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`).
    pub metrics_endpoint: Option<Spanned<String>>,
    /// URL for logs, used as is (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`).
    pub logs_endpoint: Option<Spanned<String>>,
    /// `grpc` or `http/protobuf` (`OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub protocol: Option<Protocol>,
    /// Extra request headers, e.g. an API key (`OTEL_EXPORTER_OTLP_HEADERS`).
    pub headers: Option<KeyValues>,
    /// TLS towards the collector.
    pub tls: Option<Spanned<RawTls>>,
    /// Deadline of one export request (`OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub timeout: Option<Spanned<DurationValue>>,
    /// `gzip` or `none` (`OTEL_EXPORTER_OTLP_COMPRESSION`).
    pub compression: Option<Compression>,
}

/// `exporters.otlp.tls:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    /// PEM file of the CA that signed the collector's certificate (`OTEL_EXPORTER_OTLP_CERTIFICATE`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate (`OTEL_EXPORTER_OTLP_CLIENT_KEY`).
    pub key_file: Option<PathBuf>,
    /// Plaintext gRPC to an `http://` endpoint / skip verification (`OTEL_EXPORTER_OTLP_INSECURE`).
    pub insecure: Option<bool>,
}

/// `resource:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResource {
    /// `executable` (each process's executable name) or `{fixed: NAME}` (`OTEL_SERVICE_NAME`).
    pub service_name: Option<ServiceName>,
    /// Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`); `service.name` belongs in `service_name`.
    pub attributes: Option<KeyValues>,
}

/// `capture:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCapture {
    /// Level for exchanges no rule matches: `none`, `summary`, `details`, `full`.
    pub level: Option<CaptureLevel>,
    /// Body bytes kept per message at level `full`.
    pub body_limit: Option<Spanned<ByteSize>>,
    /// Decode gzip, deflate and br bodies at level `full`.
    pub decompress: Option<bool>,
    /// Share of exchanges no rule matches that are kept, 0.0 to 1.0.
    pub sample: Option<Ratio>,
    /// Rules, first match wins.
    pub rules: Option<Vec<RawRule>>,
}

/// One entry of `capture.rules:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    /// A name for logs and debugging.
    pub name: Option<String>,
    /// Conditions, all of which must hold; none: the rule matches everything.
    pub when: Option<RawWhen>,
    /// Level for matching exchanges; default: `capture.level`.
    pub level: Option<CaptureLevel>,
    /// Share of matching exchanges kept, 0.0 to 1.0; default: `capture.sample`.
    pub sample: Option<Ratio>,
}

/// `capture.rules[].when:` — each condition is one value or a list (any may match).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWhen {
    /// Host (Host header, port removed), case-insensitive; a plain string is an exact match.
    pub host: Option<Spanned<OneOrMany<RawMatcher>>>,
    /// URL path (query removed); a plain string is a prefix match.
    pub path: Option<Spanned<OneOrMany<RawMatcher>>>,
    /// Request method, case-insensitive.
    pub method: Option<Spanned<OneOrMany<String>>>,
    /// Response status: `404`, `500-599`, `4xx`.
    pub status: Option<Spanned<OneOrMany<StatusRange>>>,
    /// Executable path or file name of the process; a plain string is an exact match.
    pub exe: Option<Spanned<OneOrMany<RawMatcher>>>,
}

/// `filters:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFilters {
    /// `ingress` (servers), `egress` (clients) or `all`.
    pub direction: Option<DirectionFilter>,
    /// Which processes are captured.
    pub processes: Option<RawProcesses>,
    /// Which ports are captured.
    pub ports: Option<RawPorts>,
    /// Skip connections whose both ends are loopback addresses.
    pub ignore_loopback: Option<bool>,
}

/// `filters.processes:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcesses {
    /// Capture only processes matching one of these; empty: all.
    pub include: Option<Vec<Spanned<RawProcessMatcher>>>,
    /// Never capture processes matching one of these.
    pub exclude: Option<Vec<Spanned<RawProcessMatcher>>>,
}

/// One process matcher: every key given must match.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcessMatcher {
    /// Executable path or file name; a plain string is an exact match.
    pub exe: Option<Spanned<OneOrMany<RawMatcher>>>,
    /// Task name (`comm`, at most 15 bytes); a plain string is an exact match.
    pub comm: Option<Spanned<OneOrMany<RawMatcher>>>,
    /// Process id(s).
    pub pid: Option<Spanned<OneOrMany<Pid>>>,
}

/// `filters.ports:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPorts {
    /// Capture only connections to these server ports; empty: all.
    pub include: Option<Vec<PortRange>>,
    /// Never capture connections to these server ports.
    pub exclude: Option<Vec<PortRange>>,
}

/// `redaction:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedaction {
    /// `true`: the lists below replace the built-in ones instead of extending them.
    pub replace_defaults: Option<bool>,
    /// Header names whose values are redacted (case-insensitive).
    pub headers: Option<Vec<Spanned<String>>>,
    /// Query parameter names whose values are masked in URLs (case-insensitive).
    pub query_params: Option<Vec<Spanned<String>>>,
}

/// `limits:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    /// Kernel ring buffer size: a power of two, at least 4KiB, at most 1GiB.
    pub ring_buffer: Option<Spanned<ByteSize>>,
    /// Payload bytes carried by one kernel event, 64 to 16KiB.
    pub max_event_payload: Option<Spanned<ByteSize>>,
    /// Connections tracked at once in the kernel.
    pub max_connections: Option<Spanned<u32>>,
    /// OTLP spans and log records waiting for the collector before new ones are dropped.
    pub export_queue: Option<Spanned<usize>>,
    /// Shed spans by trace under sustained pressure on the span queue.
    pub shed_spans: Option<bool>,
    /// Largest HTTP header block parsed.
    pub max_header_bytes: Option<Spanned<ByteSize>>,
    /// Observed processes with HTTP metrics under their own resource at once.
    pub max_metric_processes: Option<Spanned<usize>>,
    /// Idle time after which a process's HTTP metrics are exported a last time and dropped.
    pub metric_process_idle: Option<Spanned<DurationValue>>,
}

/// `telemetry:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    /// HTTP methods kept in `http.request.method` (case-sensitive); replaces
    /// the default list (`OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`).
    pub known_methods: Option<Vec<Spanned<String>>>,
    /// Headers put on spans as `http.{request,response}.header.<name>` (opt-in).
    pub span_headers: Option<RawSpanHeaders>,
    /// Opt-in HTTP metrics and metric attributes.
    pub metrics: Option<RawTelemetryMetrics>,
    /// The client span of a request with a valid `traceparent`: `export`
    /// (its span id is the header's parent-id) or `skip`.
    pub client_span_from_traceparent: Option<crate::telemetry::ClientSpanFromTraceparent>,
    /// The bounds of trace linking.
    pub trace_links: Option<RawTraceLinks>,
}

/// `telemetry.trace_links:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTraceLinks {
    /// Longest a span waits for its parent (`500ms`, `2s`); default 1s.
    pub wait: Option<Spanned<DurationValue>>,
    /// Most spans held at once; default 10000.
    pub max_held: Option<Spanned<usize>>,
}

/// `telemetry.span_headers:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpanHeaders {
    /// Request header names (case-insensitive); default none.
    pub request: Option<Vec<Spanned<String>>>,
    /// Response header names (case-insensitive); default none.
    pub response: Option<Vec<Spanned<String>>>,
}

/// `telemetry.metrics:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetryMetrics {
    /// The `http.*.body.size` histograms; default false.
    pub body_size: Option<bool>,
    /// `server.address` / `server.port` on the HTTP server metrics; default false.
    pub server_address: Option<bool>,
}
