//! Wires the pipeline together: probes → reader/tracker → exporter, until a signal.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bpf_probes::events::Counter;
use otel_agent_config::Settings;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::capture::loader::{ProbeOptions, Probes};
use crate::capture::reader;
use crate::capture::recording::Recorder;
use crate::capture::tls::discovery::{self, Discovery};
use crate::export;
use crate::export::otlp::{ExportFailures, Otlp, OtlpConfig};
use crate::internal_events::CaptureStats;
use crate::internal_events::KernelCounters;
use crate::link::ids::IdSource;
use crate::link::linker::{LinkBounds, Linker};
use crate::track::clock::Clock;
use crate::track::parser::ParserLimits;
use crate::track::trace_events::TraceFilter;
use crate::track::tracker::Tracker;

/// The service-port filter to push into the kernel, when the settings have one.
fn port_filter(settings: &Arc<Settings>) -> Option<Box<dyn Fn(u16) -> bool + Send + Sync>> {
    let ports = &settings.filter.ports;
    if ports.include.is_empty() && ports.exclude.is_empty() {
        return None;
    }
    let s = settings.clone();
    Some(Box::new(move |p| s.filter.port_allowed(p)))
}

/// How to run, beyond the settings (command-line only).
#[derive(Debug, Default)]
pub struct RunOptions {
    /// `--trace-events`: log every decision for the matching processes.
    pub trace: Option<TraceFilter>,
    /// `--probes-only`: attach the probes, capture nothing (benchmarks).
    pub probes_only: bool,
    /// `--copy-all-bodies`: the kernel copies body bytes the level does not keep.
    pub copy_all_bodies: bool,
    /// `--record`: also write every raw kernel event to this file.
    pub record: Option<std::path::PathBuf>,
}

/// Run the agent until SIGINT or SIGTERM, then flush and return.
pub async fn run(settings: Settings, options: RunOptions) -> Result<()> {
    let RunOptions {
        trace,
        probes_only,
        copy_all_bodies,
        record,
    } = options;
    let recorder = record
        .as_deref()
        .map(Recorder::create)
        .transpose()
        .context("--record")?;
    let settings = Arc::new(settings);
    let mut probes = Probes::load(&ProbeOptions {
        ring_buffer_bytes: settings.limits.ring_buffer_bytes,
        pids: settings.filter.kernel_pids(),
        probes_only,
        no_ingress: !settings.filter.direction.allows_ingress(),
        no_egress: !settings.filter.direction.allows_egress(),
        ports: port_filter(&settings),
        payload_cap: u32::try_from(settings.limits.max_event_payload).unwrap_or(u32::MAX),
        max_connections: settings.limits.max_connections,
        // HTTP/2 DATA payloads not copied when no exchange can keep a body.
        h2_walk: !copy_all_bodies && ParserLimits::of(&settings).max_body_capture == 0,
    })?;
    let ring = probes.take_ring_buffer()?;
    let skip_marks = probes.take_skip_marks()?;
    let probes = Arc::new(Mutex::new(probes));
    let stats = Arc::new(CaptureStats::default());

    // TLS: attach to the libraries present now, before declaring readiness.
    let mut discovery =
        Discovery::new(probes.clone(), settings.filter.kernel_pids(), stats.clone())
            .only_executables(&settings.filter.exes);
    discovery.initial_scan();
    let (exec_tx, exec_rx) = std::sync::mpsc::sync_channel(4096);
    let discovery_stop = Arc::new(AtomicBool::new(false));
    let stop_flag = discovery_stop.clone();
    let discovery_thread = std::thread::Builder::new()
        .name("tls-discovery".into())
        .spawn(move || discovery::run(discovery, exec_rx, stop_flag))
        .context("start the TLS discovery thread")?;

    let mut tracker = Tracker::new(settings.clone(), Clock::new(), stats.clone());
    tracker.notify_execs(exec_tx);
    if !copy_all_bodies {
        tracker.skip_bodies(Box::new(skip_marks));
    }
    if let Some(filter) = trace {
        info!(%filter, "--trace-events: logging every decision for matching processes");
        tracker.trace_events(filter);
    }
    let (stop_tx, stop_rx) = watch::channel(false);

    let otlp = match OtlpConfig::from_settings(&settings) {
        Some(cfg) => Some(
            Otlp::start(&cfg, stats.clone(), kernel_counters(probes.clone()))
                .context("start the OTLP exporter")?,
        ),
        None => None,
    };
    let export_failures = otlp.as_ref().map(Otlp::failures);
    // The reader delivers to the sinks itself (no hand-off: each exchange
    // is freed by the thread that built it).
    let outlet = reader::Outlet {
        otlp,
        stdout: settings
            .exporters
            .stdout_enabled()
            .then(export::stdout::Stdout::default),
    };
    let linker = Linker::new(
        LinkBounds::of(&settings),
        IdSource::default().counting_in(stats.clone()),
        stats.clone(),
    );
    let reader = tokio::spawn(reader::run(
        ring,
        tracker,
        linker,
        outlet,
        stop_rx,
        stats.clone(),
        recorder,
        reader::Pace::for_ring(settings.limits.ring_buffer_bytes),
    ));
    info!(
        tls_files = stats.snapshot().tls_files_attached,
        uprobes = stats.snapshot().uprobes_attached,
        capture_level = %settings.capture.level,
        pids = ?settings.filter.pids,
        exes = ?settings.filter.exes,
        "otel-agent ready: capturing"
    );

    let mut sigterm = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = tick.tick() => log_counters(&probes, &stats, export_failures.as_deref(), false),
        }
    }
    let _ = stop_tx.send(true);
    discovery_stop.store(true, Ordering::Relaxed);
    let outlet = match tokio::time::timeout(Duration::from_secs(5), reader).await {
        Ok(Ok((ended, outlet))) => {
            if let Err(e) = ended {
                warn!(error = %e, "reader failed");
            }
            Some(outlet)
        }
        Ok(Err(e)) => {
            warn!(error = %e, "reader task panicked");
            None
        }
        Err(_) => {
            warn!("reader did not stop within 5 s");
            None
        }
    };
    if let Some(outlet) = outlet {
        if tokio::time::timeout(Duration::from_secs(30), outlet.shutdown())
            .await
            .is_err()
        {
            warn!("exporter did not flush within 30 s");
        }
    }
    let _ = discovery_thread.join();
    log_counters(&probes, &stats, export_failures.as_deref(), true);
    crate::capture::loader::leave_detaching_to_a_child();
    Ok(())
}

/// The kernel's counters, read from the probes' per-CPU map at each call.
fn kernel_counters(probes: Arc<Mutex<Probes>>) -> KernelCounters {
    Arc::new(move || probes.lock().map(|p| p.counters()).unwrap_or_default())
}

fn log_counters(
    probes: &Mutex<Probes>,
    stats: &CaptureStats,
    export: Option<&ExportFailures>,
    last: bool,
) {
    let Ok(k) = probes.lock().map(|p| p.counters()) else {
        return;
    };
    let s = stats.snapshot();
    let kernel = |c: Counter| k[c as usize];
    let spans =
        |c: fn(&ExportFailures) -> &AtomicU64| export.map_or(0, |f| c(f).load(Ordering::Relaxed));
    macro_rules! emit {
        ($lvl:ident) => {
            $lvl!(
                exchanges = s.exchanges,
                partial_exchanges = s.partial_exchanges,
                connections = s.connections,
                http1 = s.connections_http1,
                http2 = s.connections_http2,
                other = s.connections_other,
                data_events = s.data_events,
                bytes_captured = s.bytes_captured,
                gap_bytes = s.gap_bytes,
                bytes_skipped = s.bytes_skipped,
                skip_marks = s.skip_marks,
                parse_errors = s.parse_errors,
                exporter_stopped = s.exporter_stopped_exchanges + s.exporter_stopped_reports,
                span_queue_full = spans(|f| &f.spans_queue_full),
                span_export_failed = spans(|f| &f.spans_lost),
                span_shed = spans(|f| &f.spans_shed),
                span_not_sampled = spans(|f| &f.spans_not_sampled),
                span_client_skipped = spans(|f| &f.spans_client_skipped),
                client_span_ids_repeated = s.client_span_ids_repeated,
                log_queue_full = spans(|f| &f.log_records_queue_full),
                log_export_failed = spans(|f| &f.log_records_lost),
                metrics_unattributed = spans(|f| &*f.exchanges_unattributed),
                kernel_ringbuf_full = kernel(Counter::RingbufFull),
                kernel_truncated_events = kernel(Counter::TruncatedEvents),
                kernel_truncated_bytes = kernel(Counter::TruncatedBytes),
                kernel_conn_map_full = kernel(Counter::ConnMapFull),
                kernel_data_events = kernel(Counter::DataEvents),
                kernel_tls_unmapped = kernel(Counter::TlsUnmapped),
                kernel_scratch_busy = kernel(Counter::ScratchBusy),
                kernel_recursion_misses = kernel(Counter::RecursionMisses),
                kernel_uprobe_hits = kernel(Counter::UprobeHits),
                kernel_skipped_bytes = kernel(Counter::SkippedBytes),
                kernel_h2_walks_lost = kernel(Counter::H2WalksLost),
                kernel_self_skipped = kernel(Counter::SelfSkipped),
                tls_plaintext_events = s.tls_plaintext_events,
                links_traceparent = s.trace_links_traceparent,
                links_connection = s.trace_links_connection,
                links_thread = s.trace_links_thread,
                links_root = s.trace_links_root,
                links_root_ambiguous = s.trace_links_root_ambiguous,
                links_root_timeout = s.trace_links_root_timeout,
                links_root_full = s.trace_links_root_full,
                uprobe_hits_per_exchange = format!(
                    "{:.1}",
                    kernel(Counter::UprobeHits) as f64
                        / (s.exchanges + s.partial_exchanges).max(1) as f64
                ),
                "capture counters"
            )
        };
    }
    if last {
        emit!(info);
    } else {
        emit!(debug);
    }
}
