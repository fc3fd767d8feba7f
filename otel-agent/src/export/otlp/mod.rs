//! OTLP exporter: one span per exchange, HTTP metrics, and one log record per
//! connection report — all three under the resource of the observed process
//! (`resources`) — and the agent's capture-health metrics under its own.
//!
//! Spans and log records go through our own bounded queues and batchers, so
//! that each batch can carry the resource of the process it describes with
//! real kernel timestamps. Spans are encoded to OTLP protobuf when their
//! exchange is mapped (`span_proto`) and sent as bytes (`transport`); log
//! records and the health metrics go through the SDK's exporters. HTTP
//! metrics are aggregated here, per observed process (`http_metrics`,
//! `process_meters`: bounded, idle ones expire), and exported as OTLP
//! protobuf through the same transport (`metric_export`); the health
//! metrics on the agent's SDK provider. Every export failure and every span
//! or log record dropped for a full queue is counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{
    LogExporter, MetricExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use opentelemetry_sdk::resource::{EnvResourceDetector, TelemetryResourceDetector};
use opentelemetry_sdk::{runtime, Resource};
use otel_agent_config::{
    ClientSpanFromTraceparent, Compression, Protocol, ServiceName, Settings, Signal, TlsSettings,
};
use semconv::model::{ConnectionReport, Exchange};
use semconv::spans::ExchangeFacts;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub mod buffer_pool;
pub mod health_metrics;
pub mod http_metrics;
pub mod logs;
pub mod metric_export;
pub mod process_meters;
pub mod resources;
pub mod shedding;
pub mod span_proto;
pub mod spans;
#[cfg(test)]
mod test_metrics;
pub mod transport;

use crate::internal_events::{CaptureStats, KernelCounters};
use buffer_pool::{BufferPool, BufferSource};
use logs::QueuedRecord;
use metric_export::MetricSender;
use process_meters::{proc_is_running, unix_now_ns, MeterLimits, ProcessMeters};
use span_proto::EncodedSpan;
use spans::{SpanBuilder, SpanSkip, DISTRO_NAME, DISTRO_VERSION};
use transport::OtlpTransport;

/// Spans per export request.
const MAX_BATCH: usize = 512;
/// Span export requests waiting for the collector at once.
const MAX_IN_FLIGHT: usize = 4;
/// Capacity of the emptied span buffers kept for the reader to fill again
/// (`buffer_pool`): two batches of spans of ~1 KiB (and as much again in
/// the reader's stash, taken from the pool at once).
const POOLED_SPAN_BYTES: usize = 2 * MAX_BATCH * 1024;
/// Capacity of the request bodies kept to be written again: one per
/// request in flight and the one being encoded, of ~400 KB each (batches of
/// spans of ~800 bytes); larger bodies are freed.
const POOLED_BODY_BYTES: usize = (MAX_IN_FLIGHT + 1) * 512 * 1024;
/// How long the export task waits for a first span before it looks at its
/// requests in flight again.
const BATCH_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a request's first span waits for the rest of its batch: a
/// request goes out with [`MAX_BATCH`] spans, or once its first span has
/// waited this long. Sent with whatever had come (the reader hands spans
/// over 64 at a time), requests at saturation held ~190 spans, the local
/// collector spent ~10 % more CPU per span and fell behind: 4,776–13,295 of
/// ~325,000 spans shed against 0–315 (BENCHMARKS.md, "Span requests filled
/// before they are sent").
const BATCH_LINGER: Duration = Duration::from_millis(20);
/// How long shutdown waits for the queued spans and log records to be
/// exported (side by side); then the metrics get [`SHUTDOWN_METRICS`]: the
/// agent stops within about 12 s of SIGTERM even with a stuck collector
/// (within a pod's default 30 s grace period).
const SHUTDOWN_SPANS: Duration = Duration::from_secs(7);
/// How long shutdown waits for the last metrics flush.
const SHUTDOWN_METRICS: Duration = Duration::from_secs(5);
/// Export attempts per batch (backoff 0.5 s, 1 s, 2 s between them).
const ATTEMPTS: u32 = 4;
/// How often idle processes' HTTP histograms are looked for.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

/// What the OTLP exporter needs to know, resolved from the settings.
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// Transport.
    pub protocol: Protocol,
    /// Where spans go (`None`: traces not exported).
    pub traces: Option<String>,
    /// Where metrics go (`None`: not exported).
    pub metrics: Option<String>,
    /// Where connection-report logs go (`None`: not exported).
    pub logs: Option<String>,
    /// Extra headers on every export request.
    pub headers: BTreeMap<String, String>,
    /// Export request timeout.
    pub timeout: Duration,
    /// Request compression.
    pub compression: Compression,
    /// TLS to the collector: CA, client certificate, insecure.
    pub tls: TlsSettings,
    /// Fixed `service.name`; `None`: the observed executable's name.
    pub service_name: Option<String>,
    /// Extra resource attributes on everything.
    pub resource_attributes: BTreeMap<String, String>,
    /// Spans waiting for export before new ones are dropped (and counted).
    pub max_queued_spans: usize,
    /// Shed spans by trace under sustained pressure rather than drop them
    /// at random when the queue overflows (`shedding`).
    pub shed_spans: bool,
    /// How exchanges are mapped to spans and metrics.
    pub mapping: semconv::options::MappingOptions,
    /// The client span of a request carrying a valid `traceparent`: export or skip.
    pub client_span_from_traceparent: ClientSpanFromTraceparent,
    /// Processes with HTTP metrics under their own resource, and how long.
    pub meter_limits: MeterLimits,
}

impl OtlpConfig {
    /// The OTLP part of the settings; `None` when nothing goes out over OTLP.
    pub fn from_settings(s: &Settings) -> Option<Self> {
        let e = &s.exporters;
        if !e.otlp_enabled() {
            return None;
        }
        Some(Self {
            protocol: e.protocol,
            traces: e.export_endpoint(Signal::Traces),
            metrics: e.export_endpoint(Signal::Metrics),
            logs: e.export_endpoint(Signal::Logs),
            headers: e.headers.clone(),
            timeout: e.timeout,
            compression: e.compression,
            tls: e.tls.clone(),
            service_name: match &s.resource.service_name {
                ServiceName::Fixed(name) => Some(name.clone()),
                ServiceName::Executable => None,
            },
            resource_attributes: s.resource.attributes.clone(),
            max_queued_spans: s.limits.export_queue.max(MAX_BATCH),
            shed_spans: s.limits.shed_spans,
            mapping: super::mapping_options(s),
            client_span_from_traceparent: s.telemetry.client_span_from_traceparent,
            meter_limits: MeterLimits {
                max_processes: s.limits.max_metric_processes,
                idle: s.limits.metric_process_idle,
            },
        })
    }
}

/// Errors setting up the exporters.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// An exporter could not be built.
    #[error("building the OTLP {signal} exporter: {source}")]
    Build {
        /// traces, metrics or logs.
        signal: &'static str,
        /// The SDK's error.
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// The span transport could not be set up.
    #[error("OTLP traces endpoint {url}: {reason}")]
    Transport {
        /// The traces URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A TLS file or setting could not be used.
    #[error("OTLP TLS: {what} {path}: {reason}")]
    Tls {
        /// Which piece.
        what: &'static str,
        /// Its file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Reading the TLS files named in the settings.
fn read_pem(path: &std::path::Path, what: &'static str) -> Result<Vec<u8>, OtlpError> {
    std::fs::read(path).map_err(|source| OtlpError::Tls {
        what,
        path: path.display().to_string(),
        reason: source.to_string(),
    })
}

/// tonic's TLS settings for a gRPC collector (none when `insecure` or nothing is set).
fn grpc_tls(
    tls: &TlsSettings,
) -> Result<Option<opentelemetry_otlp::tonic_types::transport::ClientTlsConfig>, OtlpError> {
    use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};
    if tls.insecure || (tls.ca_file.is_none() && tls.cert_file.is_none()) {
        return Ok(None);
    }
    let mut config = ClientTlsConfig::new().with_native_roots();
    if let Some(ca) = &tls.ca_file {
        config = config.ca_certificate(Certificate::from_pem(read_pem(ca, "CA certificate")?));
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        config = config.identity(Identity::from_pem(
            read_pem(cert, "client certificate")?,
            read_pem(key, "client key")?,
        ));
    }
    Ok(Some(config))
}

/// A reqwest client for an HTTP collector with the settings' CA, client
/// certificate and `insecure` (accept any server certificate).
fn http_client(tls: &TlsSettings, timeout: Duration) -> Result<reqwest::Client, OtlpError> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .danger_accept_invalid_certs(tls.insecure);
    if let Some(ca) = &tls.ca_file {
        let cert =
            reqwest::Certificate::from_pem(&read_pem(ca, "CA certificate")?).map_err(|e| {
                OtlpError::Tls {
                    what: "CA certificate",
                    path: ca.display().to_string(),
                    reason: e.to_string(),
                }
            })?;
        b = b.add_root_certificate(cert);
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let mut pem = read_pem(cert, "client certificate")?;
        pem.extend(read_pem(key, "client key")?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| OtlpError::Tls {
            what: "client certificate",
            path: cert.display().to_string(),
            reason: e.to_string(),
        })?;
        b = b.identity(id);
    }
    b.build().map_err(|e| OtlpError::Tls {
        what: "HTTP client",
        path: String::new(),
        reason: format!("{e:?}"),
    })
}

/// Export failures per signal, and the spans not exported on purpose; shared
/// with the metrics callbacks and the final counters line.
#[derive(Debug, Default)]
pub struct ExportFailures {
    /// Span batches that could not be exported after every retry.
    pub traces: AtomicU64,
    /// Metric exports that failed.
    pub metrics: AtomicU64,
    /// Log batches that failed.
    pub logs: AtomicU64,
    /// Spans dropped: the span queue was full.
    pub spans_queue_full: AtomicU64,
    /// Spans lost with failed batches (or still queued when shutdown gave up).
    pub spans_lost: AtomicU64,
    /// Spans shed under pressure (`shedding`): their traces were sampled out.
    pub spans_shed: AtomicU64,
    /// Spans queued and not yet delivered or counted lost.
    pub spans_pending: AtomicU64,
    /// Spans not exported: the caller's `traceparent` said not sampled.
    pub spans_not_sampled: AtomicU64,
    /// Client spans not exported: the program exports its own
    /// (`telemetry.client_span_from_traceparent: skip`).
    pub spans_client_skipped: AtomicU64,
    /// Log records dropped: the log queue was full.
    pub log_records_queue_full: AtomicU64,
    /// Log records lost with failed requests (or still queued when shutdown gave up).
    pub log_records_lost: AtomicU64,
    /// Log records queued and not yet delivered or counted lost.
    pub log_records_pending: AtomicU64,
    /// Exchanges whose HTTP metrics went under the agent's resource: the
    /// limit of processes with HTTP metrics of their own was reached.
    pub exchanges_unattributed: Arc<AtomicU64>,
}

/// The running OTLP pipelines.
pub struct Otlp {
    span_tx: mpsc::Sender<(Arc<Resource>, EncodedSpan)>,
    span_task: Option<tokio::task::JoinHandle<()>>,
    spans: SpanBuilder,
    /// Whether spans are shed under pressure (`limits.shed_spans`).
    shed: bool,
    /// HTTP metrics per observed process and their export (`None`:
    /// metrics not exported).
    http: Option<(ProcessMeters, MetricSender)>,
    last_expiry: Instant,
    log_tx: mpsc::Sender<QueuedRecord>,
    log_task: Option<tokio::task::JoinHandle<()>>,
    /// Makes log records (no processor: records go through `log_tx`).
    logger: SdkLogger,
    _logger_provider: SdkLoggerProvider,
    /// The agent's own provider: capture-health metrics.
    meter_provider: SdkMeterProvider,
    failures: Arc<ExportFailures>,
}

macro_rules! build_exporter {
    ($kind:ident, $cfg:expr, $url:expr, $signal:literal) => {{
        let cfg: &OtlpConfig = $cfg;
        let err = |source| OtlpError::Build {
            signal: $signal,
            source,
        };
        match cfg.protocol {
            Protocol::Grpc => {
                let metadata = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(
                    transport::header_map(cfg),
                );
                let mut b = $kind::builder()
                    .with_tonic()
                    .with_endpoint($url)
                    .with_timeout(cfg.timeout)
                    .with_metadata(metadata);
                if cfg.compression == Compression::Gzip {
                    b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                if let Some(tls) = grpc_tls(&cfg.tls)? {
                    b = b.with_tls_config(tls);
                }
                b.build()
            }
            Protocol::HttpProtobuf => {
                let mut b = $kind::builder()
                    .with_http()
                    .with_endpoint($url)
                    .with_timeout(cfg.timeout)
                    .with_headers(cfg.headers.clone().into_iter().collect())
                    .with_http_client(http_client(&cfg.tls, cfg.timeout)?);
                if cfg.compression == Compression::Gzip {
                    b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                b.build()
            }
        }
        .map_err(err)
    }};
}

/// The agent's own resource (its capture-health metrics, and HTTP metrics of
/// processes past `limits.max_metric_processes`): host, SDK and distro identity.
fn agent_resource(host_name: &str, extra: &BTreeMap<String, String>) -> Resource {
    Resource::builder_empty()
        .with_detectors(&[
            Box::new(TelemetryResourceDetector),
            Box::new(EnvResourceDetector::new()),
        ])
        .with_attributes([
            KeyValue::new(
                "service.name",
                std::env::var("OTEL_AGENT_SERVICE_NAME").unwrap_or_else(|_| DISTRO_NAME.into()),
            ),
            KeyValue::new("host.name", host_name.to_string()),
            KeyValue::new("os.type", "linux"),
            KeyValue::new("telemetry.distro.name", DISTRO_NAME),
            KeyValue::new("telemetry.distro.version", DISTRO_VERSION),
        ])
        .with_attributes(
            extra
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .build()
}

/// This machine's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A metric exporter that counts its failures.
struct CountingMetricExporter {
    inner: MetricExporter,
    failures: Arc<ExportFailures>,
}

impl PushMetricExporter for CountingMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let r = self.inner.export(metrics).await;
        if let Err(e) = &r {
            self.failures.metrics.fetch_add(1, Ordering::Relaxed);
            debug!(error = %e, "metrics export failed");
        }
        r
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// A meter provider with `resource` exporting through `exporter` periodically
/// (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s) on the tokio runtime.
fn new_meter_provider(
    resource: Resource,
    exporter: Option<CountingMetricExporter>,
) -> SdkMeterProvider {
    let mut b = SdkMeterProvider::builder().with_resource(resource);
    if let Some(exporter) = exporter {
        b = b.with_reader(
            opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader::builder(
                exporter,
                runtime::Tokio,
            )
            .build(),
        );
    }
    b.build()
}

impl Otlp {
    /// Build the three pipelines and start the span exporter task. Must run inside the tokio runtime.
    pub fn start(
        cfg: &OtlpConfig,
        stats: Arc<CaptureStats>,
        kernel: KernelCounters,
    ) -> Result<Self, OtlpError> {
        let host_name = host_name();
        let resource = agent_resource(&host_name, &cfg.resource_attributes);
        let failures = Arc::new(ExportFailures::default());

        let (span_tx, span_rx) = mpsc::channel(cfg.max_queued_spans.max(MAX_BATCH));
        let span_buffers = BufferPool::new(POOLED_SPAN_BYTES);
        let span_task = match &cfg.traces {
            Some(url) => {
                let transport = OtlpTransport::new(cfg, url, transport::TRACES_PATH)?;
                Some(tokio::spawn(export_spans(
                    transport,
                    span_rx,
                    span_buffers.clone(),
                    failures.clone(),
                )))
            }
            None => None,
        };

        let metric_exporter = match &cfg.metrics {
            Some(url) => Some(CountingMetricExporter {
                inner: build_exporter!(MetricExporter, cfg, url.clone(), "metrics")?,
                failures: failures.clone(),
            }),
            None => None,
        };
        let resource = Arc::new(resource);
        let meter_provider = new_meter_provider(Resource::clone(&resource), metric_exporter);
        let meter = meter_provider.meter_with_scope(scope());
        let spans = SpanBuilder::of_config(cfg, host_name).with_buffer_pool(span_buffers);
        health_metrics::register(&meter, stats, kernel, failures.clone());
        let http = match &cfg.metrics {
            Some(url) => {
                let transport = OtlpTransport::new(cfg, url, transport::METRICS_PATH)?;
                let meters = ProcessMeters::new(
                    cfg.meter_limits,
                    cfg.mapping.body_size_metrics,
                    Box::new(proc_is_running),
                    resource,
                    failures.exchanges_unattributed.clone(),
                );
                Some((meters, MetricSender::new(transport, failures.clone())))
            }
            None => None,
        };

        let (log_tx, log_rx) = mpsc::channel(cfg.max_queued_spans.max(MAX_BATCH));
        let log_task = match &cfg.logs {
            Some(url) => {
                let exporter = build_exporter!(LogExporter, cfg, url.clone(), "logs")?;
                Some(tokio::spawn(logs::export_logs(
                    exporter,
                    log_rx,
                    scope(),
                    failures.clone(),
                )))
            }
            None => None,
        };
        let logger_provider = SdkLoggerProvider::builder().build();
        let logger = logger_provider.logger_with_scope(scope());

        info!(
            protocol = cfg.protocol.as_str(), traces = ?cfg.traces, metrics = ?cfg.metrics, logs = ?cfg.logs,
            "OTLP export enabled"
        );
        Ok(Self {
            span_tx,
            span_task,
            spans,
            shed: cfg.shed_spans,
            http,
            last_expiry: Instant::now(),
            log_tx,
            log_task,
            logger,
            _logger_provider: logger_provider,
            meter_provider,
            failures,
        })
    }

    /// Export failures so far.
    pub fn failures(&self) -> Arc<ExportFailures> {
        self.failures.clone()
    }

    /// How full the span queue is, from 0 (empty) to 1 (full).
    fn span_queue_fill(&self) -> f64 {
        1.0 - self.span_tx.capacity() as f64 / self.span_tx.max_capacity() as f64
    }

    /// Is the export behind: a batch's worth of spans or more queued or
    /// sent and not yet acknowledged? (Shedding starts later, at a half-full
    /// queue behind [`MAX_IN_FLIGHT`] requests.)
    pub fn behind(&self) -> bool {
        self.failures.spans_pending.load(Ordering::Relaxed) >= MAX_BATCH as u64
    }

    /// One exchange: its span (queued) and its HTTP metrics, both under
    /// its process's resource.
    pub fn exchange(&mut self, ex: &Exchange) {
        let now = Instant::now();
        // Looked up once for both.
        let process = self.spans.resource_of(&ex.connection.process);
        // Worked out once for both, when the metrics need them (a span may
        // be shed before it needs them).
        let facts = self.http.is_some().then(|| ExchangeFacts::of(ex));
        if let (Some((meters, _)), Some(facts)) = (self.http.as_mut(), &facts) {
            meters
                .instruments(&process, now)
                .record(ex, facts, self.spans.options());
        }
        if self.span_task.is_none() {
            return;
        }
        let level = if self.shed {
            shedding::level(self.span_queue_fill())
        } else {
            0
        };
        let built = self
            .spans
            .encoded_under(ex, facts.as_ref(), &process, level);
        let span = match built {
            Ok(span) => span,
            Err(SpanSkip::Shed) => {
                self.failures.spans_shed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(SpanSkip::NotSampled) => {
                self.failures
                    .spans_not_sampled
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(SpanSkip::ClientSpanOfInstrumentedProgram) => {
                self.failures
                    .spans_client_skipped
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        match self.span_tx.try_send(span) {
            Ok(()) => {
                self.failures.spans_pending.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.failures
                    .spans_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One connection report, as a log record under its process's resource
    /// (queued).
    pub fn report(&mut self, r: &ConnectionReport) {
        self.spans.forget_connection(r.connection.id);
        if self.log_task.is_none() {
            return;
        }
        let resource = self.spans.resource_of(&r.connection.process).resource;
        match self
            .log_tx
            .try_send((resource, logs::record(&self.logger, r)))
        {
            Ok(()) => {
                self.failures
                    .log_records_pending
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.failures
                    .log_records_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Housekeeping: export the HTTP metrics when due, and the last values
    /// of processes idle for `limits.metric_process_idle` (looked for at
    /// most every second), which are then dropped.
    pub fn expire_idle(&mut self) {
        let now = Instant::now();
        let Some((meters, sender)) = self.http.as_mut() else {
            return;
        };
        if sender.due(now) {
            if let Some(body) = metric_export::request(meters.all(), unix_now_ns()) {
                sender.send_periodic(body);
            }
        }
        if now.duration_since(self.last_expiry) < EXPIRE_EVERY {
            return;
        }
        self.last_expiry = now;
        let expired = meters.expire(now);
        if !expired.is_empty() {
            debug!(
                processes = expired.len(),
                "idle processes: last HTTP metrics exported and dropped"
            );
            if let Some(body) = metric_export::request(&expired, unix_now_ns()) {
                sender.send_now(body);
            }
        }
    }

    /// Flush everything and stop: queued spans and log records, metrics.
    pub async fn shutdown(self) {
        let Otlp {
            span_tx,
            span_task,
            http,
            log_tx,
            log_task,
            meter_provider,
            failures,
            ..
        } = self;
        drop(span_tx);
        drop(log_tx);
        // Spans and logs drain side by side, within one deadline.
        let spans = async {
            if let Some(task) = span_task {
                finish(task, "span", || {
                    let left = failures.spans_pending.swap(0, Ordering::Relaxed);
                    failures.spans_lost.fetch_add(left, Ordering::Relaxed);
                    left
                })
                .await;
            }
        };
        let logs = async {
            if let Some(task) = log_task {
                finish(task, "log record", || {
                    let left = failures.log_records_pending.swap(0, Ordering::Relaxed);
                    failures.log_records_lost.fetch_add(left, Ordering::Relaxed);
                    left
                })
                .await;
            }
        };
        tokio::join!(spans, logs);
        // Every process's last values, then the agent's health metrics
        // (which count what the others' export failed).
        let http = http.and_then(|(meters, sender)| {
            metric_export::request(meters.all(), unix_now_ns()).map(|body| sender.send(body))
        });
        let done = async move {
            if let Some(send) = http {
                send.await;
            }
            let flushed = tokio::task::spawn_blocking(move || {
                if let Err(e) = meter_provider.shutdown() {
                    warn!(error = %e, "metrics flush at shutdown failed");
                }
            });
            let _ = flushed.await;
        };
        if tokio::time::timeout(SHUTDOWN_METRICS, done).await.is_err() {
            warn!(
                seconds = SHUTDOWN_METRICS.as_secs(),
                "metrics flush did not finish in time"
            );
        }
    }
}

/// The instrumentation scope of everything the agent exports.
fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(DISTRO_NAME)
        .with_version(DISTRO_VERSION)
        .build()
}

/// Wait for an export task to drain its queue ([`SHUTDOWN_SPANS`] at most); past that,
/// abort it and count what was left with `lost` (which returns how many).
async fn finish(
    mut task: tokio::task::JoinHandle<()>,
    what: &'static str,
    lost: impl FnOnce() -> u64,
) {
    if tokio::time::timeout(SHUTDOWN_SPANS, &mut task)
        .await
        .is_err()
    {
        // Whatever is still queued or in flight will not be sent: count it.
        task.abort();
        let left = lost();
        warn!(
            left,
            seconds = SHUTDOWN_SPANS.as_secs(),
            "{what} export did not finish in time: dropped (counted)"
        );
    }
}

/// The span export task: batch, encode one request per batch (a
/// `ResourceSpans` per process), export it with retries — up to
/// [`MAX_IN_FLIGHT`] requests at once, so that batching and encoding go on
/// while earlier requests wait for the collector (one request at a time
/// left the queue to fill, and drop, during each round trip at saturation).
/// The spans' buffers go back to `span_buffers` once in a request.
async fn export_spans(
    transport: OtlpTransport,
    mut rx: mpsc::Receiver<(Arc<Resource>, EncodedSpan)>,
    span_buffers: BufferPool,
    failures: Arc<ExportFailures>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut request = RequestEncoder::default();
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        while in_flight.try_join_next().is_some() {}
        if in_flight.len() >= MAX_IN_FLIGHT {
            in_flight.join_next().await;
            continue;
        }
        let got = tokio::time::timeout(BATCH_TIMEOUT, rx.recv_many(&mut batch, MAX_BATCH)).await;
        let mut closed = matches!(got, Ok(0));
        if !closed && !batch.is_empty() {
            let deadline = tokio::time::Instant::now() + BATCH_LINGER;
            closed = fill_batch(&mut rx, &mut batch, MAX_BATCH, deadline).await;
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            let body = request.encode(&batch);
            span_buffers.give_back(batch.drain(..).map(|(_, span)| span.0));
            let mut transport = transport.clone();
            let failures = failures.clone();
            in_flight.spawn(async move {
                export_request(&mut transport, body, n, &failures).await;
            });
        }
        if closed {
            break;
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Turns a batch of encoded spans into one `ExportTraceServiceRequest`: the
/// spans of each resource together, resources in order of first
/// appearance; each resource encoded once and remembered. Each body is
/// written into one the transport gave back (`buffer_pool`).
pub struct RequestEncoder {
    writer: span_proto::RequestWriter,
    bodies: BufferSource,
    /// Encoded `Resource` messages and schema URLs, by resource (the `Arc`
    /// kept so the address stays that resource's).
    resources: rustc_hash::FxHashMap<usize, (Arc<Resource>, Vec<u8>, String)>,
    scope: Vec<u8>,
}

/// Encoded resources remembered at most (cleared past it).
const MAX_ENCODED_RESOURCES: usize = 4096;

impl Default for RequestEncoder {
    fn default() -> Self {
        Self {
            writer: span_proto::RequestWriter::default(),
            bodies: BufferSource::new(BufferPool::new(POOLED_BODY_BYTES)),
            resources: Default::default(),
            scope: Vec::new(),
        }
    }
}

impl RequestEncoder {
    /// The request body of `batch`; its buffer comes back to the encoder
    /// when the last clone of it is dropped.
    pub fn encode(&mut self, batch: &[(Arc<Resource>, EncodedSpan)]) -> bytes::Bytes {
        use prost::Message as _;
        if self.scope.is_empty() {
            self.scope = opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                name: DISTRO_NAME.into(),
                version: DISTRO_VERSION.into(),
                attributes: vec![],
                dropped_attributes_count: 0,
            }
            .encode_to_vec();
        }
        if self.resources.len() > MAX_ENCODED_RESOURCES {
            self.resources.clear();
        }
        self.writer.start(self.bodies.take(0));
        let mut seen: Vec<usize> = Vec::new();
        for (res, _) in batch {
            let key = Arc::as_ptr(res) as usize;
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let (_, resource, schema) = self.resources.entry(key).or_insert_with(|| {
                let (resource, schema) = resources::proto_resource(res);
                (res.clone(), resource.encode_to_vec(), schema)
            });
            let spans = batch
                .iter()
                .filter(|(r, _)| Arc::as_ptr(r) as usize == key)
                .map(|(_, s)| s);
            self.writer
                .resource_spans(resource, schema, &self.scope, spans);
        }
        // Handed over rather than copied: the copy was ~800 instructions
        // per span (bench/instructions.sh, callgrind).
        self.bodies.bytes(self.writer.take())
    }
}

/// Receive into `batch` until it holds `limit` items or `deadline` passes;
/// true if the channel closed (everything sent before has been received).
async fn fill_batch<T>(
    rx: &mut mpsc::Receiver<T>,
    batch: &mut Vec<T>,
    limit: usize,
    deadline: tokio::time::Instant,
) -> bool {
    while batch.len() < limit {
        let room = limit - batch.len();
        match tokio::time::timeout_at(deadline, rx.recv_many(batch, room)).await {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Export one request of `n` spans, retrying with backoff.
async fn export_request(
    transport: &mut OtlpTransport,
    body: bytes::Bytes,
    n: u64,
    failures: &ExportFailures,
) {
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match transport.send(body.clone()).await {
            Ok(()) => {
                failures.spans_pending.fetch_sub(n, Ordering::Relaxed);
                debug!(spans = n, attempt, "span request exported");
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                debug!(error = %e, attempt, "span export failed: retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e) => {
                failures.traces.fetch_add(1, Ordering::Relaxed);
                failures.spans_lost.fetch_add(n, Ordering::Relaxed);
                failures.spans_pending.fetch_sub(n, Ordering::Relaxed);
                warn!(error = %e, spans = n, "span export failed after retries: spans dropped (counted)");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn later(ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn a_batch_fills_to_its_limit_and_leaves_the_rest_queued() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 0..10 {
            tx.send(i).await.unwrap();
        }
        let mut batch = vec![];
        // A deadline far off: the batch is full before it.
        assert!(!fill_batch(&mut rx, &mut batch, 4, later(60_000)).await);
        assert_eq!(batch, [0, 1, 2, 3]);
        let mut rest = vec![];
        assert!(!fill_batch(&mut rx, &mut rest, 6, later(60_000)).await);
        assert_eq!(rest, [4, 5, 6, 7, 8, 9]);
    }

    #[tokio::test]
    async fn a_batch_takes_what_comes_before_the_deadline() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(1).await.unwrap();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            tx.send(2).await.unwrap();
            // Kept open past the deadline: the batch goes with what it has.
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(tx);
        });
        let mut batch = vec![];
        assert!(!fill_batch(&mut rx, &mut batch, 512, later(100)).await);
        assert_eq!(batch, [1, 2]);
        sender.abort();
    }

    #[tokio::test]
    async fn a_closed_queue_ends_the_batch_with_everything_sent() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 0..3 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        let mut batch = vec![];
        assert!(fill_batch(&mut rx, &mut batch, 512, later(60_000)).await);
        assert_eq!(batch, [0, 1, 2]);
    }
}
