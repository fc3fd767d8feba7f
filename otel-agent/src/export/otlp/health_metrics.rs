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
use semconv::trace_context::LinkKind;

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

/// How many were lost for one [`m::DropReason`] (a reason of one
/// `tap.dropped.*` metric); `None` for a reason this function does not know.
fn dropped(
    reason: &m::DropReason,
    s: &StatsSnapshot,
    kernel: &[u64],
    failures: &ExportFailures,
) -> Option<u64> {
    let k = |c: Counter| kernel.get(c as usize).copied().unwrap_or(0);
    let f = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    Some(match (reason.metric.name, reason.reason) {
        ("tap.dropped.events", "ringbuf_full") => k(Counter::RingbufFull),
        ("tap.dropped.events", "tls_unmapped") => k(Counter::TlsUnmapped),
        ("tap.dropped.events", "scratch_busy") => k(Counter::ScratchBusy),
        ("tap.dropped.events", "recursion_miss") => k(Counter::RecursionMisses),
        ("tap.dropped.connections", "conn_map_full") => k(Counter::ConnMapFull),
        ("tap.dropped.exchanges", "exporter_stopped") => s.exporter_stopped_exchanges,
        ("tap.dropped.reports", "exporter_stopped") => s.exporter_stopped_reports,
        ("tap.dropped.spans", "queue_full") => f(&failures.spans_queue_full),
        ("tap.dropped.spans", "export_failed") => f(&failures.spans_lost),
        ("tap.dropped.spans", "shed") => f(&failures.spans_shed),
        ("tap.dropped.log_records", "queue_full") => f(&failures.log_records_queue_full),
        ("tap.dropped.log_records", "export_failed") => f(&failures.log_records_lost),
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
    counter(meter, &m::TAP_SKIPPED_BYTES)
        .with_callback(move |o| o.observe(s.snapshot().bytes_skipped, &[]))
        .build();
    let s = stats.clone();
    counter(meter, &m::TAP_PARSE_ERRORS)
        .with_callback(move |o| o.observe(s.snapshot().parse_errors, &[]))
        .build();
    let s = stats.clone();
    let count = &m::TAP_UPROBE_COUNT;
    meter
        .i64_observable_up_down_counter(count.name)
        .with_unit(count.unit)
        .with_description(count.description)
        .with_callback(move |o| {
            let n = i64::try_from(s.snapshot().uprobes_attached).unwrap_or(i64::MAX);
            o.observe(n, &[]);
        })
        .build();
}

/// What was lost, uprobe hits and export failures.
fn register_losses(
    meter: &Meter,
    stats: Arc<CaptureStats>,
    kernel: KernelCounters,
    failures: Arc<ExportFailures>,
) {
    for def in m::CAPTURE_METRICS
        .iter()
        .filter(|d| m::drop_reasons(d).next().is_some())
    {
        let (s, kc, f) = (stats.clone(), kernel.clone(), failures.clone());
        counter(meter, def)
            .with_callback(move |o| {
                let (snap, kernel) = (s.snapshot(), kc());
                for r in m::drop_reasons(def) {
                    if let Some(n) = dropped(r, &snap, &kernel, &f) {
                        o.observe(n, &[KeyValue::new(k::TAP_DROP_REASON, r.reason)]);
                    }
                }
            })
            .build();
    }
    let f = failures.clone();
    counter(meter, &m::TAP_SKIPPED_SPANS)
        .with_callback(move |o| {
            for (reason, n) in [
                ("not_sampled", &f.spans_not_sampled),
                ("exported_by_program", &f.spans_client_skipped),
            ] {
                o.observe(
                    n.load(Ordering::Relaxed),
                    &[KeyValue::new(k::TAP_SKIP_REASON, reason)],
                );
            }
        })
        .build();
    let s = stats.clone();
    counter(meter, &m::TAP_TRACE_LINKS)
        .with_callback(move |o| {
            let snap = s.snapshot();
            for kind in LinkKind::ALL {
                let n = match kind {
                    LinkKind::Traceparent => snap.trace_links_traceparent,
                    LinkKind::Connection => snap.trace_links_connection,
                    LinkKind::Thread => snap.trace_links_thread,
                    LinkKind::Root => snap.trace_links_root,
                    LinkKind::RootAmbiguous => snap.trace_links_root_ambiguous,
                    LinkKind::RootTimeout => snap.trace_links_root_timeout,
                    LinkKind::RootFull => snap.trace_links_root_full,
                };
                o.observe(n, &[KeyValue::new(k::TAP_TRACE_LINK, kind.name())]);
            }
        })
        .build();
    let f = failures.clone();
    counter(meter, &m::TAP_UNATTRIBUTED_EXCHANGES)
        .with_callback(move |o| o.observe(f.exchanges_unattributed.load(Ordering::Relaxed), &[]))
        .build();
    let kc = kernel.clone();
    counter(meter, &m::TAP_SKIPPED_SYSCALLS)
        .with_callback(move |o| {
            let skipped = kc().get(Counter::SelfSkipped as usize).copied();
            o.observe(skipped.unwrap_or(0), &[]);
        })
        .build();
    let kc = kernel.clone();
    counter(meter, &m::TAP_TRUNCATED_EVENTS)
        .with_callback(move |o| {
            let truncated = kc().get(Counter::TruncatedEvents as usize).copied();
            o.observe(truncated.unwrap_or(0), &[]);
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
    use super::super::test_metrics::{assert_in_catalog, collect, Collected};
    use super::*;

    #[test]
    fn every_drop_reason_of_the_catalog_is_counted() {
        let kernel = [0u64; bpf_probes::events::COUNTER_COUNT as usize];
        let (s, f) = (StatsSnapshot::default(), ExportFailures::default());
        for r in m::DROP_REASONS {
            assert_eq!(dropped(r, &s, &kernel, &f), Some(0), "{r:?}");
        }
        let unknown = m::DropReason {
            reason: "nope",
            ..m::DROP_REASONS[0]
        };
        assert_eq!(dropped(&unknown, &s, &kernel, &f), None);
    }

    /// Every counter set to a distinct value, then collected.
    fn collected() -> Vec<Collected> {
        let stats = Arc::new(CaptureStats::default());
        let set = |c: &std::sync::atomic::AtomicU64, v| c.store(v, Ordering::Relaxed);
        set(&stats.exchanges, 7);
        set(&stats.partial_exchanges, 1);
        set(&stats.connections_http1, 4);
        set(&stats.connections_http2, 2);
        set(&stats.connections_other, 1);
        set(&stats.tls_connections_openssl, 2);
        set(&stats.tls_connections_gnutls, 1);
        set(&stats.exporter_stopped_exchanges, 3);
        set(&stats.exporter_stopped_reports, 6);
        set(&stats.uprobes_attached, 24);
        set(&stats.trace_links_connection, 21);
        set(&stats.trace_links_thread, 22);
        set(&stats.trace_links_root_timeout, 23);
        let mut k = [0u64; bpf_probes::events::COUNTER_COUNT as usize];
        k[Counter::RingbufFull as usize] = 5;
        k[Counter::TlsUnmapped as usize] = 8;
        k[Counter::ScratchBusy as usize] = 9;
        k[Counter::RecursionMisses as usize] = 3;
        k[Counter::TruncatedEvents as usize] = 11;
        k[Counter::ConnMapFull as usize] = 12;
        k[Counter::SelfSkipped as usize] = 18;
        let kernel: KernelCounters = Arc::new(move || k);
        let failures = Arc::new(ExportFailures::default());
        set(&failures.spans_queue_full, 13);
        set(&failures.spans_lost, 14);
        set(&failures.spans_shed, 31);
        set(&failures.log_records_queue_full, 15);
        set(&failures.log_records_lost, 16);
        set(&failures.exchanges_unattributed, 17);
        let collected = collect(
            |meter| register(meter, stats.clone(), kernel, failures),
            |_| {},
        );
        assert_in_catalog(&collected);
        collected
    }

    /// The data points of `name`, sorted: (`key=value` attributes, value).
    fn series(collected: &[Collected], name: &str) -> Vec<(Vec<String>, f64)> {
        let c = collected
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} not collected"));
        let mut v = c.values.clone();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn point(attrs: &[&str], value: f64) -> (Vec<String>, f64) {
        (attrs.iter().map(|a| a.to_string()).collect(), value)
    }

    #[test]
    fn every_health_metric_is_its_catalog_entry() {
        let collected = collected();
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
        // Every series of a metric carries the same attribute keys.
        for c in &collected {
            let keys: Vec<Vec<&str>> = c
                .points
                .iter()
                .map(|p| p.iter().map(String::as_str).collect())
                .collect();
            assert!(
                keys.windows(2).all(|w| w[0] == w[1]),
                "{}: {keys:?}",
                c.name
            );
        }
    }

    #[test]
    fn tap_connections_counts_each_connection_once_by_l7_protocol() {
        let c = collected();
        assert_eq!(
            series(&c, "tap.connections"),
            [
                point(&["tap.l7_protocol=http1"], 4.0),
                point(&["tap.l7_protocol=http2"], 2.0),
                point(&["tap.l7_protocol=other"], 1.0),
            ]
        );
        assert_eq!(
            series(&c, "tap.tls.connections"),
            [
                point(&["tap.tls.probe=gnutls"], 1.0),
                point(&["tap.tls.probe=go"], 0.0),
                point(&["tap.tls.probe=openssl"], 2.0),
            ]
        );
    }

    #[test]
    fn tap_dropped_events() {
        assert_eq!(
            series(&collected(), "tap.dropped.events"),
            [
                point(&["tap.drop.reason=recursion_miss"], 3.0),
                point(&["tap.drop.reason=ringbuf_full"], 5.0),
                point(&["tap.drop.reason=scratch_busy"], 9.0),
                point(&["tap.drop.reason=tls_unmapped"], 8.0),
            ]
        );
    }

    #[test]
    fn tap_skipped_syscalls_is_the_kernels_self_skipped() {
        assert_eq!(
            series(&collected(), "tap.skipped.syscalls"),
            [point(&[], 18.0)]
        );
    }

    #[test]
    fn tap_skipped_spans() {
        assert_eq!(
            series(&collected(), "tap.skipped.spans"),
            [
                point(&["tap.skip.reason=exported_by_program"], 0.0),
                point(&["tap.skip.reason=not_sampled"], 0.0),
            ]
        );
    }

    #[test]
    fn tap_trace_links() {
        assert_eq!(
            series(&collected(), "tap.trace.links"),
            [
                point(&["tap.trace.link=connection"], 21.0),
                point(&["tap.trace.link=root"], 0.0),
                point(&["tap.trace.link=root_ambiguous"], 0.0),
                point(&["tap.trace.link=root_full"], 0.0),
                point(&["tap.trace.link=root_timeout"], 23.0),
                point(&["tap.trace.link=thread"], 22.0),
                point(&["tap.trace.link=traceparent"], 0.0),
            ]
        );
    }

    #[test]
    fn tap_truncated_events() {
        assert_eq!(
            series(&collected(), "tap.truncated.events"),
            [point(&[], 11.0)]
        );
    }

    #[test]
    fn tap_dropped_connections() {
        assert_eq!(
            series(&collected(), "tap.dropped.connections"),
            [point(&["tap.drop.reason=conn_map_full"], 12.0)]
        );
    }

    #[test]
    fn tap_dropped_exchanges_and_reports() {
        let c = collected();
        assert_eq!(
            series(&c, "tap.dropped.exchanges"),
            [point(&["tap.drop.reason=exporter_stopped"], 3.0)]
        );
        assert_eq!(
            series(&c, "tap.dropped.reports"),
            [point(&["tap.drop.reason=exporter_stopped"], 6.0)]
        );
    }

    #[test]
    fn tap_dropped_spans() {
        assert_eq!(
            series(&collected(), "tap.dropped.spans"),
            [
                point(&["tap.drop.reason=export_failed"], 14.0),
                point(&["tap.drop.reason=queue_full"], 13.0),
                point(&["tap.drop.reason=shed"], 31.0),
            ]
        );
    }

    #[test]
    fn tap_dropped_log_records() {
        assert_eq!(
            series(&collected(), "tap.dropped.log_records"),
            [
                point(&["tap.drop.reason=export_failed"], 16.0),
                point(&["tap.drop.reason=queue_full"], 15.0),
            ]
        );
    }

    #[test]
    fn tap_unattributed_exchanges() {
        assert_eq!(
            series(&collected(), "tap.unattributed.exchanges"),
            [point(&[], 17.0)]
        );
    }

    #[test]
    fn tap_uprobe_count_is_an_up_down_counter() {
        let c = collected();
        assert_eq!(series(&c, "tap.uprobe.count"), [point(&[], 24.0)]);
        let count = c.iter().find(|c| c.name == "tap.uprobe.count");
        assert_eq!(
            count.and_then(|c| c.monotonic),
            Some(false),
            "a non-monotonic sum"
        );
        let gone = ["tap.drops", "tap.uprobes.attached"];
        assert!(c.iter().all(|c| !gone.contains(&c.name.as_str())));
    }
}
