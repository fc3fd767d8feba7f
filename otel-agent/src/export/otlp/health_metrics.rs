//! The agent's capture-health metrics: each instrument is created from its
//! entry in `semconv::metrics::CAPTURE_METRICS` (name, unit, description) and
//! observed from the counters at each collection, with exactly the attribute
//! keys that entry lists.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bpf_probes::events::Counter;
use opentelemetry::metrics::{AsyncInstrumentBuilder, Meter, ObservableCounter};
use opentelemetry::KeyValue;
use semconv::attributes as k;
use semconv::metrics::{self as m, MetricDef};

use super::ExportFailures;
use crate::internal_events::{CaptureStats, KernelCounters, StatsSnapshot};

/// An observable counter named, described and unitised by its catalog entry.
fn counter<'a>(
    meter: &'a Meter,
    def: &MetricDef,
) -> AsyncInstrumentBuilder<'a, ObservableCounter<u64>, u64> {
    meter
        .u64_observable_counter(def.name)
        .with_unit(def.unit)
        .with_description(def.description)
}

/// How many were lost for one of `semconv::metrics::DROP_REASONS`.
fn drops(
    reason: &str,
    s: &StatsSnapshot,
    kernel: &[u64],
    failures: &ExportFailures,
) -> Option<u64> {
    let k = |c: Counter| kernel.get(c as usize).copied().unwrap_or(0);
    Some(match reason {
        "ringbuf_full" => k(Counter::RingbufFull),
        "truncated_event" => k(Counter::TruncatedEvents),
        "conn_map_full" => k(Counter::ConnMapFull),
        "tls_unmapped" => k(Counter::TlsUnmapped),
        "scratch_busy" => k(Counter::ScratchBusy),
        "exporter_stopped" => s.exporter_stopped,
        "span_queue_full" => failures.spans_queue_full.load(Ordering::Relaxed),
        "span_export_failed" => failures.spans_lost.load(Ordering::Relaxed),
        _ => return None,
    })
}

/// Register every capture-health instrument on `meter`.
pub fn register(
    meter: &Meter,
    stats: Arc<CaptureStats>,
    kernel: KernelCounters,
    failures: Arc<ExportFailures>,
) {
    register_capture(meter, &stats);
    register_losses(meter, stats, kernel, failures);
}

/// What was captured: exchanges, connections, events, bytes, parse errors,
/// attached uprobes.
fn register_capture(meter: &Meter, stats: &Arc<CaptureStats>) {
    let s = stats.clone();
    counter(meter, &m::TAP_EXCHANGES)
        .with_callback(move |o| {
            let snap = s.snapshot();
            o.observe(snap.exchanges, &[KeyValue::new(k::TAP_PARTIAL, false)]);
            o.observe(
                snap.partial_exchanges,
                &[KeyValue::new(k::TAP_PARTIAL, true)],
            );
        })
        .build();
    let s = stats.clone();
    counter(meter, &m::TAP_CONNECTIONS)
        .with_callback(move |o| {
            let snap = s.snapshot();
            for (l7, n) in [
                ("http1", snap.connections_http1),
                ("http2", snap.connections_http2),
                ("other", snap.connections_other),
            ] {
                o.observe(n, &[KeyValue::new(k::TAP_L7_PROTOCOL, l7)]);
            }
        })
        .build();
    let s = stats.clone();
    counter(meter, &m::TAP_TLS_CONNECTIONS)
        .with_callback(move |o| {
            let snap = s.snapshot();
            for (probe, n) in [
                ("openssl", snap.tls_connections_openssl),
                ("gnutls", snap.tls_connections_gnutls),
                ("go", snap.tls_connections_go),
            ] {
                o.observe(n, &[KeyValue::new(k::TAP_TLS_PROBE, probe)]);
            }
        })
        .build();
    let s = stats.clone();
    counter(meter, &m::TAP_DATA_EVENTS)
        .with_callback(move |o| o.observe(s.snapshot().data_events, &[]))
        .build();
    let s = stats.clone();
    counter(meter, &m::TAP_BYTES)
        .with_callback(move |o| o.observe(s.snapshot().bytes_captured, &[]))
        .build();
    let s = stats.clone();
    counter(meter, &m::TAP_PARSE_ERRORS)
        .with_callback(move |o| o.observe(s.snapshot().parse_errors, &[]))
        .build();
    let s = stats.clone();
    let attached = &m::TAP_UPROBES_ATTACHED;
    meter
        .u64_observable_gauge(attached.name)
        .with_unit(attached.unit)
        .with_description(attached.description)
        .with_callback(move |o| o.observe(s.snapshot().uprobes_attached, &[]))
        .build();
}

/// What was lost, uprobe hits and export failures.
fn register_losses(
    meter: &Meter,
    stats: Arc<CaptureStats>,
    kernel: KernelCounters,
    failures: Arc<ExportFailures>,
) {
    let (s, kc, f) = (stats, kernel.clone(), failures.clone());
    counter(meter, &m::TAP_DROPS)
        .with_callback(move |o| {
            let (snap, kernel) = (s.snapshot(), kc());
            for (reason, _) in m::DROP_REASONS {
                if let Some(n) = drops(reason, &snap, &kernel, &f) {
                    o.observe(n, &[KeyValue::new(k::TAP_DROP_REASON, *reason)]);
                }
            }
        })
        .build();
    counter(meter, &m::TAP_UPROBE_HITS)
        .with_callback(move |o| {
            let hits = kernel().get(Counter::UprobeHits as usize).copied();
            o.observe(hits.unwrap_or(0), &[]);
        })
        .build();
    counter(meter, &m::TAP_EXPORT_FAILURES)
        .with_callback(move |o| {
            for (signal, n) in [
                ("traces", failures.traces.load(Ordering::Relaxed)),
                ("metrics", failures.metrics.load(Ordering::Relaxed)),
                ("logs", failures.logs.load(Ordering::Relaxed)),
            ] {
                o.observe(n, &[KeyValue::new(k::TAP_SIGNAL, signal)]);
            }
        })
        .build();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_reason_of_the_catalog_is_counted() {
        let kernel = [0u64; bpf_probes::events::COUNTER_COUNT as usize];
        let (s, f) = (StatsSnapshot::default(), ExportFailures::default());
        for (reason, _) in m::DROP_REASONS {
            assert_eq!(drops(reason, &s, &kernel, &f), Some(0), "{reason}");
        }
        assert_eq!(drops("nope", &s, &kernel, &f), None);
    }

    #[test]
    fn every_health_metric_is_its_catalog_entry() {
        use super::super::test_metrics::{assert_in_catalog, collect};
        let stats = Arc::new(CaptureStats::default());
        stats.exchanges.store(7, Ordering::Relaxed);
        stats.tls_connections_openssl.store(2, Ordering::Relaxed);
        stats.exporter_stopped.store(3, Ordering::Relaxed);
        let mut k = [0u64; bpf_probes::events::COUNTER_COUNT as usize];
        k[Counter::RingbufFull as usize] = 5;
        let kernel: KernelCounters = Arc::new(move || k);
        let collected = collect(
            |meter| register(meter, stats.clone(), kernel, Arc::default()),
            |_| {},
        );
        assert_in_catalog(&collected);
        let mut names: Vec<&str> = collected.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        let mut health: Vec<&str> = m::CAPTURE_METRICS
            .iter()
            .map(|d| d.name)
            .filter(|n| n.starts_with("tap."))
            .collect();
        health.sort_unstable();
        assert_eq!(
            names, health,
            "every health metric of the catalog, no other"
        );
        let drops = collected
            .iter()
            .find(|c| c.name == m::TAP_DROPS.name)
            .unwrap();
        assert_eq!(
            drops.points.len(),
            m::DROP_REASONS.len(),
            "one series per reason"
        );
    }
}
