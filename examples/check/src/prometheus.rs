//! The Prometheus series and label names the collector's exporter gives the agent's metrics (`semconv::metrics::CAPTURE_METRICS`).

use std::collections::{BTreeMap, BTreeSet};

use semconv::metrics::{MetricDef, MetricKind, CAPTURE_METRICS};

/// Labels that come from the resource (via `resource_to_telemetry_conversion`) or from
/// Prometheus itself, allowed on every metric: both the observed programs' resource
/// (HTTP metrics) and the agent's (`tap.*`) carry `service.name` and `host.name`;
/// `job`/`instance` are set by the exporter (from `service.name` /
/// `service.instance.id`).
pub const RESOURCE_LABELS: &[&str] = &["service_name", "host_name", "job", "instance"];

/// Series the collector's `servicegraph` connector makes from connected traces
/// (`examples/otel-collector.yaml`), with the labels they carry: one series per
/// client → server edge (`client`, `server`: the two spans' `service.name`).
pub const SERVICE_GRAPH_SERIES: &[(&str, &[&str])] = &[
    (
        "traces_service_graph_request_total",
        &["client", "server", "connection_type", "job", "instance"],
    ),
    (
        "traces_service_graph_request_failed_total",
        &["client", "server", "connection_type", "job", "instance"],
    ),
];

/// The suffix the Prometheus exporter appends for a UCUM unit; `None` for
/// annotations (`{exchange}`) and dimensionless units.
fn unit_suffix(unit: &str) -> Option<&'static str> {
    match unit {
        "s" => Some("seconds"),
        "ms" => Some("milliseconds"),
        "By" => Some("bytes"),
        "1" => None,
        u if u.starts_with('{') && u.ends_with('}') => None,
        other => panic!("unit {other:?}: extend unit_suffix with the exporter's suffix"),
    }
}

/// A name or attribute key with every character outside `[a-zA-Z0-9_:]` turned into `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The Prometheus label of an OpenTelemetry attribute key (`tap.drop.reason` -> `tap_drop_reason`).
pub fn prometheus_label(key: &str) -> String {
    sanitize(key)
}

/// The base Prometheus name of a metric: sanitized, plus the unit suffix unless the
/// name already has it as a word (`tap.bytes` stays `tap_bytes`).
pub fn prometheus_base(def: &MetricDef) -> String {
    let name = sanitize(def.name);
    match unit_suffix(def.unit) {
        Some(suffix) if !name.split('_').any(|w| w == suffix) => format!("{name}_{suffix}"),
        _ => name,
    }
}

/// What a series name means for the metric it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    /// A counter's `_total`.
    Total,
    /// A gauge's plain name.
    Value,
    /// A histogram's `_bucket` (the only series with `le`).
    Bucket,
    /// A histogram's `_sum`.
    Sum,
    /// A histogram's `_count`.
    Count,
}

/// Every series name the exporter produces for the agent's metrics.
pub fn prometheus_series() -> BTreeMap<String, (&'static MetricDef, Series)> {
    let mut out = BTreeMap::new();
    for def in CAPTURE_METRICS {
        let base = prometheus_base(def);
        let names: Vec<(String, Series)> = match def.kind {
            MetricKind::Counter => vec![(format!("{base}_total"), Series::Total)],
            // A non-monotonic sum is a gauge to Prometheus.
            MetricKind::Gauge | MetricKind::UpDownCounter => vec![(base, Series::Value)],
            MetricKind::Histogram => vec![
                (format!("{base}_bucket"), Series::Bucket),
                (format!("{base}_sum"), Series::Sum),
                (format!("{base}_count"), Series::Count),
            ],
        };
        for (name, series) in names {
            let previous = out.insert(name.clone(), (def, series));
            assert!(previous.is_none(), "two metrics map to {name}");
        }
    }
    out
}

/// Why a series name is not one of the agent's, as precisely as can be told.
pub fn diagnose_unknown(
    name: &str,
    series: &BTreeMap<String, (&'static MetricDef, Series)>,
) -> String {
    let by_base = |base: &str| CAPTURE_METRICS.iter().find(|d| prometheus_base(d) == base);
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if let Some(def) = by_base(base) {
                return format!(
                    "{name}: histogram suffix {suffix} on {} `{}`, which is a {:?}",
                    base, def.name, def.kind
                );
            }
        }
    }
    if let Some(base) = name.strip_suffix("_total") {
        if let Some(def) = by_base(base) {
            return format!(
                "{name}: `_total` on `{}`, which is a {:?}, not a counter",
                def.name, def.kind
            );
        }
    }
    if let Some(def) = by_base(name) {
        let expected: Vec<&String> = series
            .iter()
            .filter(|(_, (d, _))| d.name == def.name)
            .map(|(n, _)| n)
            .collect();
        return format!(
            "{name}: `{}` is a {:?}: its series are {expected:?}",
            def.name, def.kind
        );
    }
    let close: Vec<&String> = series
        .keys()
        .filter(|n| {
            let stem = |s: &str| s.split('_').take(3).collect::<Vec<_>>().join("_");
            stem(n) == stem(name)
        })
        .collect();
    format!("{name}: no metric of the agent is exported under this name (similar: {close:?})")
}

/// The labels a metric series may carry: its attributes, the resource labels, and
/// `le` on histogram buckets.
pub fn allowed_labels(def: &MetricDef, series: Series) -> BTreeSet<String> {
    let mut labels: BTreeSet<String> = def.attributes.iter().map(|k| prometheus_label(k)).collect();
    labels.extend(RESOURCE_LABELS.iter().map(|l| l.to_string()));
    if series == Series::Bucket {
        labels.insert("le".into());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_names_follow_the_exporter() {
        let s = prometheus_series();
        let has = |n: &str| s.contains_key(n);
        for n in [
            "http_server_request_duration_seconds_bucket",
            "http_server_request_duration_seconds_sum",
            "http_server_request_duration_seconds_count",
            "http_client_request_duration_seconds_bucket",
            "http_client_request_body_size_bytes_bucket",
            "http_server_response_body_size_bytes_count",
            "tap_exchanges_total",
            "tap_connections_total",
            "tap_tls_connections_total",
            "tap_data_events_total",
            "tap_bytes_total",
            "tap_skipped_bytes_total",
            "tap_skipped_syscalls_total",
            "tap_dropped_events_total",
            "tap_truncated_events_total",
            "tap_dropped_connections_total",
            "tap_dropped_exchanges_total",
            "tap_dropped_reports_total",
            "tap_dropped_spans_total",
            "tap_dropped_log_records_total",
            "tap_skipped_spans_total",
            "tap_trace_links_total",
            "tap_unattributed_exchanges_total",
            "tap_parse_errors_total",
            "tap_uprobe_count",
            "tap_uprobe_hits_total",
            "tap_export_failures_total",
        ] {
            assert!(has(n), "{n} missing from {:?}", s.keys());
        }
        for n in [
            "tap_bytes_bytes_total",
            "tap_exchanges_exchange_total",
            "tap_uprobe_count_total",
            "tap_drops_total",
            "tap_uprobes_attached",
            "http_server_request_duration_bucket",
            "http_server_request_duration_seconds_total",
        ] {
            assert!(!has(n), "{n} should not exist");
        }
        // Six histograms, 20 counters, one up-down counter.
        assert_eq!(s.len(), 6 * 3 + 20 + 1);
        assert_eq!(prometheus_label("tap.drop.reason"), "tap_drop_reason");
        assert_eq!(
            prometheus_label("http.response.status_code"),
            "http_response_status_code"
        );
    }
}
