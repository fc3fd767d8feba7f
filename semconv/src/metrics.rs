//! Metric names, units, buckets and the low-cardinality HTTP measurement of an exchange.

use crate::attributes as k;
use crate::model::Exchange;
use crate::options::MappingOptions;
use crate::spans::{ExchangeFacts, SpanKind};
use crate::value::{Attribute, AttributeSink};

/// Duration histogram boundaries in seconds (the semantic conventions' advice).
pub const DURATION_BUCKETS_S: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Body-size histogram boundaries in bytes: `0` (empty bodies get their own
/// bucket), then powers of four from 64 B (4³) to 16 MiB (4¹²).
pub const SIZE_BUCKETS_BY: &[f64] = &[
    0.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];

/// `http.client.request.duration` (s)
pub const HTTP_CLIENT_REQUEST_DURATION: &str =
    opentelemetry_semantic_conventions::metric::HTTP_CLIENT_REQUEST_DURATION;
/// `http.server.request.duration` (s)
pub const HTTP_SERVER_REQUEST_DURATION: &str =
    opentelemetry_semantic_conventions::metric::HTTP_SERVER_REQUEST_DURATION;
/// `http.client.request.body.size` (By)
pub const HTTP_CLIENT_REQUEST_BODY_SIZE: &str =
    opentelemetry_semantic_conventions::metric::HTTP_CLIENT_REQUEST_BODY_SIZE;
/// `http.server.request.body.size` (By)
pub const HTTP_SERVER_REQUEST_BODY_SIZE: &str =
    opentelemetry_semantic_conventions::metric::HTTP_SERVER_REQUEST_BODY_SIZE;
/// `http.client.response.body.size` (By)
pub const HTTP_CLIENT_RESPONSE_BODY_SIZE: &str =
    opentelemetry_semantic_conventions::metric::HTTP_CLIENT_RESPONSE_BODY_SIZE;
/// `http.server.response.body.size` (By)
pub const HTTP_SERVER_RESPONSE_BODY_SIZE: &str =
    opentelemetry_semantic_conventions::metric::HTTP_SERVER_RESPONSE_BODY_SIZE;

/// Instrument kind of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Monotonic sum.
    Counter,
    /// Current value that is not additive (an observable gauge).
    Gauge,
    /// Additive current value (an up-down counter): its series add up.
    UpDownCounter,
    /// Histogram (buckets: [`DURATION_BUCKETS_S`] for `s`, [`SIZE_BUCKETS_BY`] for `By`).
    Histogram,
}

/// One metric the agent emits: name, unit, description, kind and every attribute key it may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDef {
    /// Metric name.
    pub name: &'static str,
    /// UCUM unit (`s`, `By`, `{exchange}`, ...).
    pub unit: &'static str,
    /// Description.
    pub description: &'static str,
    /// Instrument kind.
    pub kind: MetricKind,
    /// All attribute keys the metric may carry.
    pub attributes: &'static [&'static str],
    /// `Some(setting)`: an opt-in metric, exported only when that
    /// configuration switch is on (off by default); `None`: always exported.
    pub opt_in: Option<&'static str>,
}

/// The switch of the opt-in body-size histograms.
pub const BODY_SIZE_SWITCH: &str = "telemetry.metrics.body_size";

/// Attribute keys of the HTTP histograms (see [`http_measurement`]). On the
/// server histograms `server.address` and `server.port` are opt-in
/// (`telemetry.metrics.server_address`), as the conventions make them there.
pub const HTTP_METRIC_ATTRIBUTES: &[&str] = &[
    k::HTTP_REQUEST_METHOD,
    k::HTTP_RESPONSE_STATUS_CODE,
    k::URL_SCHEME,
    k::SERVER_ADDRESS,
    k::SERVER_PORT,
    k::NETWORK_PROTOCOL_VERSION,
    k::ERROR_TYPE,
];

const fn http_def(name: &'static str, unit: &'static str, description: &'static str) -> MetricDef {
    MetricDef {
        name,
        unit,
        description,
        kind: MetricKind::Histogram,
        attributes: HTTP_METRIC_ATTRIBUTES,
        opt_in: None,
    }
}

/// A body-size histogram: opt-in ([`BODY_SIZE_SWITCH`]), in bytes.
const fn body_size_def(name: &'static str, description: &'static str) -> MetricDef {
    MetricDef {
        opt_in: Some(BODY_SIZE_SWITCH),
        ..http_def(name, "By", description)
    }
}

/// `http.client.request.duration`.
pub const HTTP_CLIENT_DURATION: MetricDef = http_def(
    HTTP_CLIENT_REQUEST_DURATION,
    "s",
    "Duration of HTTP client requests.",
);
/// `http.server.request.duration`.
pub const HTTP_SERVER_DURATION: MetricDef = http_def(
    HTTP_SERVER_REQUEST_DURATION,
    "s",
    "Duration of HTTP server requests.",
);
/// `http.client.request.body.size`.
pub const HTTP_CLIENT_REQUEST_SIZE: MetricDef = body_size_def(
    HTTP_CLIENT_REQUEST_BODY_SIZE,
    "Size of HTTP client request bodies.",
);
/// `http.server.request.body.size`.
pub const HTTP_SERVER_REQUEST_SIZE: MetricDef = body_size_def(
    HTTP_SERVER_REQUEST_BODY_SIZE,
    "Size of HTTP server request bodies.",
);
/// `http.client.response.body.size`.
pub const HTTP_CLIENT_RESPONSE_SIZE: MetricDef = body_size_def(
    HTTP_CLIENT_RESPONSE_BODY_SIZE,
    "Size of HTTP client response bodies.",
);
/// `http.server.response.body.size`.
pub const HTTP_SERVER_RESPONSE_SIZE: MetricDef = body_size_def(
    HTTP_SERVER_RESPONSE_BODY_SIZE,
    "Size of HTTP server response bodies.",
);

/// `tap.exchanges`: exchanges emitted, complete or partial.
pub const TAP_EXCHANGES: MetricDef = MetricDef {
    name: "tap.exchanges",
    unit: "{exchange}",
    description: "HTTP exchanges captured, by whether they are partial.",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[k::TAP_PARTIAL],
};
/// `tap.connections`: connections whose application protocol was decided.
/// Each connection is counted once; TLS ones are counted again, by probe,
/// in [`TAP_TLS_CONNECTIONS`].
pub const TAP_CONNECTIONS: MetricDef = MetricDef {
    name: "tap.connections",
    unit: "{connection}",
    description: "Connections whose application protocol was decided, by protocol.",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[k::TAP_L7_PROTOCOL],
};
/// `tap.tls.connections`: TLS connections whose plaintext a probe delivered.
pub const TAP_TLS_CONNECTIONS: MetricDef = MetricDef {
    name: "tap.tls.connections",
    unit: "{connection}",
    description: "TLS connections whose plaintext a probe delivered, by probe type.",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[k::TAP_TLS_PROBE],
};
/// `tap.data_events`: data events read from the kernel.
pub const TAP_DATA_EVENTS: MetricDef = MetricDef {
    name: "tap.data_events",
    unit: "{event}",
    description: "Data events read from the kernel.",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[],
};
/// `tap.bytes`: payload bytes captured.
pub const TAP_BYTES: MetricDef = MetricDef {
    name: "tap.bytes",
    unit: "By",
    description: "Payload bytes read from the kernel.",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[],
};
/// `tap.skipped.bytes`: body bytes the kernel did not copy on purpose,
/// because the capture level does not keep them (they count in the body
/// sizes; nothing is lost).
pub const TAP_SKIPPED_BYTES: MetricDef = MetricDef {
    name: "tap.skipped.bytes",
    unit: "By",
    description: "Body bytes the kernel did not copy on purpose: the capture level does not \
                  keep them (counted in body sizes, not lost).",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[],
};
/// `tap.skipped.syscalls`: socket syscalls of the agent itself (its OTLP
/// exports) that the kernel left out on purpose, so the agent never captures
/// its own traffic. Nothing of an observed program is in it.
pub const TAP_SKIPPED_SYSCALLS: MetricDef = MetricDef {
    name: "tap.skipped.syscalls",
    unit: "{syscall}",
    description: "Socket syscalls of the agent itself (its exports) left out on purpose: \
                  the agent never captures its own traffic.",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[],
};
/// `tap.parse_errors`: protocol parse errors (desyncs).
pub const TAP_PARSE_ERRORS: MetricDef = MetricDef {
    name: "tap.parse_errors",
    unit: "{error}",
    description: "Protocol parse errors (stream desynchronisations).",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[],
};
/// `tap.uprobe.count`: TLS uprobes currently attached. An UpDownCounter
/// (an additive count that can go down when a file's probes are detached), named
/// `count` in the `tap.uprobe` namespace as the naming guidelines ask for
/// UpDownCounters (not pluralized; cf. `system.process.count`).
pub const TAP_UPROBE_COUNT: MetricDef = MetricDef {
    name: "tap.uprobe.count",
    unit: "{uprobe}",
    description: "TLS uprobes currently attached.",
    kind: MetricKind::UpDownCounter,
    opt_in: None,
    attributes: &[],
};
/// `tap.uprobe.hits`: TLS uprobe hits counted in the kernel.
pub const TAP_UPROBE_HITS: MetricDef = MetricDef {
    name: "tap.uprobe.hits",
    unit: "{hit}",
    description: "TLS uprobe hits counted in the kernel.",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[],
};
/// `tap.export.failures`: failed exports, by signal.
pub const TAP_EXPORT_FAILURES: MetricDef = MetricDef {
    name: "tap.export.failures",
    unit: "{failure}",
    description: "Failed exports, by signal (traces, metrics, logs).",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[k::TAP_SIGNAL],
};

/// A `tap.dropped.*` counter: what it counts is its unit; each series
/// carries `tap.drop.reason` (its values in [`DROP_REASONS`]).
const fn dropped(name: &'static str, unit: &'static str, description: &'static str) -> MetricDef {
    MetricDef {
        name,
        unit,
        description,
        kind: MetricKind::Counter,
        opt_in: None,
        attributes: &[k::TAP_DROP_REASON],
    }
}

/// `tap.dropped.events`: kernel events lost, by reason.
pub const TAP_DROPPED_EVENTS: MetricDef = dropped(
    "tap.dropped.events",
    "{event}",
    "Kernel events lost before userspace read them, by reason.",
);
/// `tap.dropped.connections`: connections the kernel could not track.
pub const TAP_DROPPED_CONNECTIONS: MetricDef = dropped(
    "tap.dropped.connections",
    "{connection}",
    "Connections not tracked, by reason.",
);
/// `tap.dropped.exchanges`: exchanges captured but never exported.
pub const TAP_DROPPED_EXCHANGES: MetricDef = dropped(
    "tap.dropped.exchanges",
    "{exchange}",
    "Exchanges captured but not handed to an exporter, by reason.",
);
/// `tap.dropped.reports`: connection reports never exported.
pub const TAP_DROPPED_REPORTS: MetricDef = dropped(
    "tap.dropped.reports",
    "{report}",
    "Connection reports not handed to an exporter, by reason.",
);
/// `tap.dropped.spans`: OTLP spans lost.
pub const TAP_DROPPED_SPANS: MetricDef =
    dropped("tap.dropped.spans", "{span}", "OTLP spans lost, by reason.");
/// `tap.dropped.log_records`: OTLP log records (connection reports) lost.
pub const TAP_DROPPED_LOG_RECORDS: MetricDef = dropped(
    "tap.dropped.log_records",
    "{log_record}",
    "OTLP log records lost, by reason.",
);
/// `tap.skipped.spans`: spans not exported on purpose (nothing is lost: the
/// exchange still counts in the HTTP metrics), by `tap.skip.reason`:
/// `not_sampled` (the caller's `traceparent` says not sampled) and
/// `exported_by_program` (`telemetry.client_span_from_traceparent: skip`).
pub const TAP_SKIPPED_SPANS: MetricDef = MetricDef {
    name: "tap.skipped.spans",
    unit: "{span}",
    description: "Spans not exported on purpose (not sampled by the caller, or the \
                  program exports its own client span), by reason.",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[k::TAP_SKIP_REASON],
};
/// `tap.trace.links`: every linking decision, one per exchange's span, by
/// `tap.trace.link` (see [`crate::trace_context::LinkKind`]): linked by
/// `traceparent`, `connection` or `thread`; left a `root` without evidence,
/// `root_ambiguous` with too much, `root_timeout` / `root_full` when the
/// linker's time or memory bound was hit.
pub const TAP_TRACE_LINKS: MetricDef = MetricDef {
    name: "tap.trace.links",
    unit: "{span}",
    description: "Spans by how they got their place in a trace: linked by traceparent, \
                  connection or thread, or left a root (no evidence, ambiguous evidence, \
                  a time or memory bound hit).",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[k::TAP_TRACE_LINK],
};
/// `tap.unattributed.exchanges`: exchanges whose HTTP metrics went under
/// the agent's resource instead of their process's.
pub const TAP_UNATTRIBUTED_EXCHANGES: MetricDef = MetricDef {
    name: "tap.unattributed.exchanges",
    unit: "{exchange}",
    description: "Exchanges whose HTTP metrics were recorded under the agent's resource: \
                  the limit of processes with meters of their own was reached.",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[],
};
/// `tap.truncated.events`: data events whose payload was cut (the event
/// arrived; only the bytes past the cap are missing).
pub const TAP_TRUNCATED_EVENTS: MetricDef = MetricDef {
    name: "tap.truncated.events",
    unit: "{event}",
    description: "Data events whose payload was cut at the per-call copy cap.",
    kind: MetricKind::Counter,
    opt_in: None,
    attributes: &[],
};

/// One value of `tap.drop.reason`: the `tap.dropped.*` metric it is a
/// series of, and what it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropReason {
    /// The metric (a `tap.dropped.*` entry of [`CAPTURE_METRICS`]).
    pub metric: &'static MetricDef,
    /// The `tap.drop.reason` value.
    pub reason: &'static str,
    /// What it counts.
    pub what: &'static str,
}

const fn drop_reason(
    metric: &'static MetricDef,
    reason: &'static str,
    what: &'static str,
) -> DropReason {
    DropReason {
        metric,
        reason,
        what,
    }
}

/// Every `tap.drop.reason`, by metric: each `tap.dropped.*` metric counts one
/// thing (its unit), so its series add up.
pub const DROP_REASONS: &[DropReason] = &[
    drop_reason(
        &TAP_DROPPED_EVENTS,
        "ringbuf_full",
        "kernel events lost: the ring buffer was full",
    ),
    drop_reason(
        &TAP_DROPPED_EVENTS,
        "tls_unmapped",
        "TLS plaintext events whose socket was never seen",
    ),
    drop_reason(
        &TAP_DROPPED_EVENTS,
        "scratch_busy",
        "data events lost: this CPU's event slot was held by a preempted program",
    ),
    drop_reason(
        &TAP_DROPPED_EVENTS,
        "recursion_miss",
        "program runs the kernel skipped: another BPF program was running on that CPU",
    ),
    drop_reason(
        &TAP_DROPPED_CONNECTIONS,
        "conn_map_full",
        "connections not tracked: the kernel map was full",
    ),
    drop_reason(
        &TAP_DROPPED_EXCHANGES,
        "exporter_stopped",
        "exchanges lost because stdout refused their JSON lines (closed pipe, full disk)",
    ),
    drop_reason(
        &TAP_DROPPED_REPORTS,
        "exporter_stopped",
        "connection reports lost because stdout refused their JSON lines",
    ),
    drop_reason(
        &TAP_DROPPED_SPANS,
        "queue_full",
        "spans lost: the OTLP span queue was full",
    ),
    drop_reason(
        &TAP_DROPPED_SPANS,
        "export_failed",
        "spans lost: export failed after retries, or at shutdown",
    ),
    drop_reason(
        &TAP_DROPPED_SPANS,
        "shed",
        "spans shed under pressure: their traces sampled out (limits.shed_spans)",
    ),
    drop_reason(
        &TAP_DROPPED_LOG_RECORDS,
        "queue_full",
        "log records lost: the OTLP log queue was full",
    ),
    drop_reason(
        &TAP_DROPPED_LOG_RECORDS,
        "export_failed",
        "log records lost: their export request failed, or was still pending at shutdown",
    ),
];

/// The drop reasons of one `tap.dropped.*` metric.
pub fn drop_reasons(metric: &MetricDef) -> impl Iterator<Item = &'static DropReason> + '_ {
    DROP_REASONS
        .iter()
        .filter(move |d| d.metric.name == metric.name)
}

/// Every metric the agent may emit: the HTTP histograms and the
/// capture-health metrics. The exporter creates each instrument from its
/// entry here (name, unit, description), and the dashboard is checked
/// against this table. The four `http.*.body.size` histograms are opt-in
/// (`opt_in`: [`BODY_SIZE_SWITCH`], off by default): without it they are
/// not created, so not exported.
pub const CAPTURE_METRICS: &[MetricDef] = &[
    HTTP_CLIENT_DURATION,
    HTTP_SERVER_DURATION,
    HTTP_CLIENT_REQUEST_SIZE,
    HTTP_SERVER_REQUEST_SIZE,
    HTTP_CLIENT_RESPONSE_SIZE,
    HTTP_SERVER_RESPONSE_SIZE,
    TAP_EXCHANGES,
    TAP_CONNECTIONS,
    TAP_TLS_CONNECTIONS,
    TAP_DATA_EVENTS,
    TAP_BYTES,
    TAP_SKIPPED_BYTES,
    TAP_SKIPPED_SYSCALLS,
    TAP_DROPPED_EVENTS,
    TAP_TRUNCATED_EVENTS,
    TAP_DROPPED_CONNECTIONS,
    TAP_DROPPED_EXCHANGES,
    TAP_DROPPED_REPORTS,
    TAP_DROPPED_SPANS,
    TAP_DROPPED_LOG_RECORDS,
    TAP_SKIPPED_SPANS,
    TAP_TRACE_LINKS,
    TAP_UNATTRIBUTED_EXCHANGES,
    TAP_PARSE_ERRORS,
    TAP_UPROBE_COUNT,
    TAP_UPROBE_HITS,
    TAP_EXPORT_FAILURES,
];

/// The definition of a metric by name.
pub fn metric_def(name: &str) -> Option<&'static MetricDef> {
    CAPTURE_METRICS.iter().find(|m| m.name == name)
}

/// The HTTP metric names for a span kind: (duration, request body size, response body size).
pub fn http_metric_names(kind: SpanKind) -> (&'static str, &'static str, &'static str) {
    let (d, req, resp) = http_metric_defs(kind);
    (d.name, req.name, resp.name)
}

/// The duration, request-body and response-body histograms of one side.
pub fn http_metric_defs(
    kind: SpanKind,
) -> (&'static MetricDef, &'static MetricDef, &'static MetricDef) {
    match kind {
        SpanKind::Client => (
            &HTTP_CLIENT_DURATION,
            &HTTP_CLIENT_REQUEST_SIZE,
            &HTTP_CLIENT_RESPONSE_SIZE,
        ),
        SpanKind::Server => (
            &HTTP_SERVER_DURATION,
            &HTTP_SERVER_REQUEST_SIZE,
            &HTTP_SERVER_RESPONSE_SIZE,
        ),
    }
}

/// What one exchange records into the HTTP histograms; `A`, its
/// attributes: a list, or `()` when they went into a sink
/// ([`http_measurement_into`]).
#[derive(Clone, Debug, PartialEq)]
pub struct HttpMeasurement<A = Vec<Attribute>> {
    /// Client or server: selects the metric names ([`http_metric_names`]).
    pub kind: SpanKind,
    /// Request duration in seconds.
    pub duration_s: f64,
    /// Request body size, bytes (only with the opt-in body-size metrics).
    pub request_body_size: Option<u64>,
    /// Response body size, bytes (when a response was seen, only with the
    /// opt-in body-size metrics).
    pub response_body_size: Option<u64>,
    /// Low-cardinality attributes ([`HTTP_METRIC_ATTRIBUTES`]).
    pub attributes: A,
}

/// The HTTP measurement of an exchange; `None` without a request.
///
/// Attributes are low-cardinality only: `http.request.method` (a known
/// method of `options`, else `_OTHER`), `http.response.status_code` (when
/// known), `url.scheme`, `server.address` and `server.port` (client side;
/// server side only with `options.server_address_on_server_metrics`),
/// `network.protocol.version` (when known), `error.type` (when an error) —
/// never the URL, path, query or pid. Body sizes are measured only with
/// `options.body_size_metrics`.
pub fn http_measurement(ex: &Exchange, options: &MappingOptions) -> Option<HttpMeasurement> {
    let mut attributes = Vec::with_capacity(HTTP_METRIC_ATTRIBUTES.len());
    let m = http_measurement_into(ex, options, &mut attributes)?;
    Some(HttpMeasurement {
        kind: m.kind,
        duration_s: m.duration_s,
        request_body_size: m.request_body_size,
        response_body_size: m.response_body_size,
        attributes,
    })
}

/// [`http_measurement`] with its attributes put into `out` (nothing
/// without a request).
pub fn http_measurement_into(
    ex: &Exchange,
    options: &MappingOptions,
    out: &mut impl AttributeSink,
) -> Option<HttpMeasurement<()>> {
    ex.request.as_ref()?;
    http_measurement_with(ex, &ExchangeFacts::of(ex), options, out)
}

/// [`http_measurement_into`] with the exchange's facts worked out already
/// (shared with its span).
pub fn http_measurement_with(
    ex: &Exchange,
    facts: &ExchangeFacts<'_>,
    options: &MappingOptions,
    out: &mut impl AttributeSink,
) -> Option<HttpMeasurement<()>> {
    let req = ex.request.as_ref()?;
    out.str(
        k::HTTP_REQUEST_METHOD,
        options.known_methods.normalize(&req.method),
    );
    if let Some(resp) = &ex.response {
        out.int(k::HTTP_RESPONSE_STATUS_CODE, i64::from(resp.status));
    }
    out.str(k::URL_SCHEME, &facts.scheme);
    let kind = facts.kind;
    if kind == SpanKind::Client || options.server_address_on_server_metrics {
        let (address, port) = &facts.server;
        out.str(k::SERVER_ADDRESS, address);
        out.int(k::SERVER_PORT, i64::from(*port));
    }
    if let Some(v) = facts.protocol_version {
        out.str(k::NETWORK_PROTOCOL_VERSION, v);
    }
    if let Some(e) = &facts.error_type {
        out.str(k::ERROR_TYPE, e);
    }
    let sizes = options.body_size_metrics;
    Some(HttpMeasurement {
        kind,
        duration_s: ex.duration_ns() as f64 / 1e9,
        request_body_size: sizes.then_some(req.body_size),
        response_body_size: ex.response.as_ref().filter(|_| sizes).map(|r| r.body_size),
        attributes: (),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Exchange;
    use crate::options::KnownMethods;
    use crate::spans::tests::{client_https, server_plain};
    use crate::value::{find, AttrValue};

    /// The measurement with the default options.
    fn http_measurement(ex: &Exchange) -> Option<HttpMeasurement> {
        super::http_measurement(ex, &MappingOptions::default())
    }

    #[test]
    fn metric_method_follows_the_known_methods() {
        let mut ex = server_plain();
        if let Some(r) = ex.request.as_mut() {
            r.method = "QUERY".into();
        }
        let method = |m: &HttpMeasurement| {
            find(&m.attributes, "http.request.method")
                .and_then(AttrValue::as_str)
                .map(str::to_string)
        };
        let m = http_measurement(&ex).expect("has request");
        assert_eq!(method(&m).as_deref(), Some("QUERY"));
        let only_get = MappingOptions {
            known_methods: KnownMethods::new(["GET"]),
            ..MappingOptions::default()
        };
        let m = super::http_measurement(&ex, &only_get).expect("has request");
        assert_eq!(method(&m).as_deref(), Some("_OTHER"));
        assert_eq!(find(&m.attributes, "http.request.method_original"), None);
    }

    /// Each capture-health metric counts one thing, in its unit, and all its
    /// series carry the same attribute keys (so a sum over them is meaningful).
    #[test]
    fn health_metrics_count_one_thing_each() {
        let health: Vec<(&str, &str, MetricKind, &[&str])> = CAPTURE_METRICS
            .iter()
            .filter(|d| d.name.starts_with("tap."))
            .map(|d| (d.name, d.unit, d.kind, d.attributes))
            .collect();
        use MetricKind::{Counter, UpDownCounter};
        let reason: &[&str] = &["tap.drop.reason"];
        let none: &[&str] = &[];
        assert_eq!(
            health,
            [
                ("tap.exchanges", "{exchange}", Counter, &["tap.partial"][..]),
                (
                    "tap.connections",
                    "{connection}",
                    Counter,
                    &["tap.l7_protocol"][..]
                ),
                (
                    "tap.tls.connections",
                    "{connection}",
                    Counter,
                    &["tap.tls.probe"][..]
                ),
                ("tap.data_events", "{event}", Counter, none),
                ("tap.bytes", "By", Counter, none),
                ("tap.skipped.bytes", "By", Counter, none),
                ("tap.skipped.syscalls", "{syscall}", Counter, none),
                ("tap.dropped.events", "{event}", Counter, reason),
                ("tap.truncated.events", "{event}", Counter, none),
                ("tap.dropped.connections", "{connection}", Counter, reason),
                ("tap.dropped.exchanges", "{exchange}", Counter, reason),
                ("tap.dropped.reports", "{report}", Counter, reason),
                ("tap.dropped.spans", "{span}", Counter, reason),
                ("tap.dropped.log_records", "{log_record}", Counter, reason),
                (
                    "tap.skipped.spans",
                    "{span}",
                    Counter,
                    &["tap.skip.reason"][..]
                ),
                (
                    "tap.trace.links",
                    "{span}",
                    Counter,
                    &["tap.trace.link"][..]
                ),
                ("tap.unattributed.exchanges", "{exchange}", Counter, none),
                ("tap.parse_errors", "{error}", Counter, none),
                ("tap.uprobe.count", "{uprobe}", UpDownCounter, none),
                ("tap.uprobe.hits", "{hit}", Counter, none),
                (
                    "tap.export.failures",
                    "{failure}",
                    Counter,
                    &["tap.signal"][..]
                ),
            ]
        );
        // The old names that mixed things or broke the naming rules are gone.
        for old in ["tap.drops", "tap.uprobes.attached"] {
            assert_eq!(metric_def(old), None, "{old}");
        }
    }

    #[test]
    fn drop_reasons_by_metric() {
        let by = |def: &MetricDef| -> Vec<&str> { drop_reasons(def).map(|r| r.reason).collect() };
        assert_eq!(
            by(&TAP_DROPPED_EVENTS),
            [
                "ringbuf_full",
                "tls_unmapped",
                "scratch_busy",
                "recursion_miss"
            ]
        );
        assert_eq!(by(&TAP_DROPPED_CONNECTIONS), ["conn_map_full"]);
        assert_eq!(by(&TAP_DROPPED_EXCHANGES), ["exporter_stopped"]);
        assert_eq!(by(&TAP_DROPPED_REPORTS), ["exporter_stopped"]);
        assert_eq!(
            by(&TAP_DROPPED_SPANS),
            ["queue_full", "export_failed", "shed"]
        );
        assert_eq!(
            by(&TAP_DROPPED_LOG_RECORDS),
            ["queue_full", "export_failed"]
        );
        assert_eq!(by(&TAP_EXCHANGES).len(), 0);
        // Every tap.dropped.* metric has reasons, and only they have.
        for def in CAPTURE_METRICS {
            assert_eq!(
                def.name.starts_with("tap.dropped."),
                drop_reasons(def).next().is_some(),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn buckets_are_increasing() {
        for b in [DURATION_BUCKETS_S, SIZE_BUCKETS_BY] {
            assert!(b.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(SIZE_BUCKETS_BY.last(), Some(&16_777_216.0));
    }

    #[test]
    fn table_is_complete_and_unique() {
        let mut names: Vec<&str> = CAPTURE_METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate metric name");
        for def in CAPTURE_METRICS {
            assert_eq!(metric_def(def.name), Some(def));
            assert!(!def.unit.is_empty() && !def.description.is_empty());
        }
        assert_eq!(metric_def("nope"), None);
        assert_eq!(TAP_BYTES.unit, "By");
        assert_eq!(TAP_EXCHANGES.unit, "{exchange}");
        let mut reasons: Vec<(&str, &str)> = DROP_REASONS
            .iter()
            .map(|r| (r.metric.name, r.reason))
            .collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), DROP_REASONS.len(), "duplicate drop reason");
        for r in DROP_REASONS {
            assert_eq!(metric_def(r.metric.name), Some(r.metric), "{}", r.reason);
        }
        assert_eq!(
            metric_def(HTTP_SERVER_REQUEST_DURATION).map(|d| (d.unit, d.kind)),
            Some(("s", MetricKind::Histogram))
        );
    }

    #[test]
    fn measurement_attributes_are_low_cardinality() {
        for ex in [
            client_https(),
            server_plain(),
            Exchange {
                response: None,
                partial: true,
                ..server_plain()
            },
        ] {
            let m = http_measurement(&ex).expect("has request");
            for a in &m.attributes {
                assert!(
                    !a.key.starts_with("url.") || a.key == k::URL_SCHEME,
                    "{}",
                    a.key
                );
                assert!(!a.key.starts_with("process."), "{}", a.key);
                assert!(!a.key.starts_with("http.request.header."), "{}", a.key);
                assert!(
                    HTTP_METRIC_ATTRIBUTES.contains(&a.key.as_ref()),
                    "{} not in the table",
                    a.key
                );
            }
            assert_eq!(find(&m.attributes, k::PROCESS_PID), None);
            assert_eq!(find(&m.attributes, k::URL_FULL), None);
            assert_eq!(find(&m.attributes, k::URL_PATH), None);
            assert_eq!(find(&m.attributes, k::URL_QUERY), None);
        }
    }

    #[test]
    fn client_measurement() {
        let m = http_measurement(&client_https()).expect("has request");
        assert_eq!(m.kind, SpanKind::Client);
        assert!((m.duration_s - 0.25).abs() < 1e-12);
        // Body sizes are opt-in: not measured by default.
        assert_eq!(m.request_body_size, None);
        assert_eq!(m.response_body_size, None);
        let s = |key| find(&m.attributes, key).and_then(AttrValue::as_str);
        assert_eq!(s(k::HTTP_REQUEST_METHOD), Some("GET"));
        assert_eq!(s(k::URL_SCHEME), Some("https"));
        assert_eq!(s(k::SERVER_ADDRESS), Some("api.example.com"));
        assert_eq!(s(k::NETWORK_PROTOCOL_VERSION), Some("2"));
        assert_eq!(s(k::ERROR_TYPE), None);
        assert_eq!(
            find(&m.attributes, k::HTTP_RESPONSE_STATUS_CODE).and_then(AttrValue::as_int),
            Some(200)
        );
        assert_eq!(
            find(&m.attributes, k::SERVER_PORT).and_then(AttrValue::as_int),
            Some(443)
        );
        assert_eq!(
            http_metric_names(m.kind),
            (
                HTTP_CLIENT_REQUEST_DURATION,
                HTTP_CLIENT_REQUEST_BODY_SIZE,
                HTTP_CLIENT_RESPONSE_BODY_SIZE
            )
        );
    }

    #[test]
    fn server_measurement_and_errors() {
        let mut ex = server_plain();
        if let Some(r) = ex.request.as_mut() {
            r.method = "BREW".into();
        }
        if let Some(r) = ex.response.as_mut() {
            r.status = 500;
        }
        let m = http_measurement(&ex).expect("has request");
        assert_eq!(m.kind, SpanKind::Server);
        // 4 µs.
        assert!((m.duration_s - 4e-6).abs() < 1e-15);
        let s = |key| find(&m.attributes, key).and_then(AttrValue::as_str);
        assert_eq!(s(k::HTTP_REQUEST_METHOD), Some("_OTHER"));
        assert_eq!(find(&m.attributes, k::HTTP_REQUEST_METHOD_ORIGINAL), None);
        assert_eq!(s(k::ERROR_TYPE), Some("500"));

        let partial = http_measurement(&Exchange {
            response: None,
            partial: true,
            ..server_plain()
        })
        .expect("has request");
        assert_eq!(partial.response_body_size, None);
        assert_eq!(
            find(&partial.attributes, k::ERROR_TYPE).and_then(AttrValue::as_str),
            Some("incomplete")
        );
        assert_eq!(
            find(&partial.attributes, k::HTTP_RESPONSE_STATUS_CODE),
            None
        );
    }

    #[test]
    fn opt_ins_are_off_by_default_and_switchable() {
        let keys = |m: &HttpMeasurement| -> Vec<String> {
            m.attributes.iter().map(|a| a.key.to_string()).collect()
        };
        // Server metrics: no server.address / server.port by default.
        let m = http_measurement(&server_plain()).expect("has request");
        assert_eq!(
            keys(&m),
            [
                "http.request.method",
                "http.response.status_code",
                "url.scheme",
                "network.protocol.version"
            ]
        );
        assert_eq!((m.request_body_size, m.response_body_size), (None, None));
        // Client metrics always carry them.
        let m = http_measurement(&client_https()).expect("has request");
        assert!(keys(&m).contains(&"server.address".to_string()));
        assert!(keys(&m).contains(&"server.port".to_string()));
        // Switched on.
        let on = MappingOptions {
            body_size_metrics: true,
            server_address_on_server_metrics: true,
            ..MappingOptions::default()
        };
        let m = super::http_measurement(&server_plain(), &on).expect("has request");
        let s = |key| find(&m.attributes, key).and_then(AttrValue::as_str);
        assert_eq!(s("server.address"), Some("localhost"));
        assert_eq!(
            find(&m.attributes, "server.port").and_then(AttrValue::as_int),
            Some(8080)
        );
        assert_eq!(
            (m.request_body_size, m.response_body_size),
            (Some(5), Some(2))
        );
        let m = super::http_measurement(&client_https(), &on).expect("has request");
        assert_eq!(
            (m.request_body_size, m.response_body_size),
            (Some(0), Some(321))
        );
    }

    #[test]
    fn the_catalog_says_which_metrics_are_opt_in() {
        let opt_in: Vec<&str> = CAPTURE_METRICS
            .iter()
            .filter(|d| d.opt_in.is_some())
            .map(|d| d.name)
            .collect();
        assert_eq!(
            opt_in,
            [
                "http.client.request.body.size",
                "http.server.request.body.size",
                "http.client.response.body.size",
                "http.server.response.body.size"
            ]
        );
        for def in CAPTURE_METRICS.iter().filter(|d| d.opt_in.is_some()) {
            assert_eq!(def.opt_in, Some("telemetry.metrics.body_size"));
            assert_eq!(def.unit, "By");
        }
        assert_eq!(HTTP_SERVER_DURATION.opt_in, None);
    }

    #[test]
    fn duration_conversion() {
        let mut ex = server_plain();
        ex.start_unix_ns = 1_000;
        ex.end_unix_ns = 1_500_001_000;
        let m = http_measurement(&ex).expect("has request");
        assert!((m.duration_s - 1.5).abs() < 1e-12);
        // A clock that went backwards gives zero, not a negative duration.
        ex.end_unix_ns = 0;
        assert_eq!(http_measurement(&ex).map(|m| m.duration_s), Some(0.0));
    }

    #[test]
    fn no_request_no_measurement() {
        let ex = Exchange {
            request: None,
            ..client_https()
        };
        assert_eq!(http_measurement(&ex), None);
    }
}
