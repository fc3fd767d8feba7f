//! HTTP metrics under the observed process's resource: one meter provider
//! per process (the SDK puts one resource on a provider), at most
//! `max_processes` of them; a process idle for `idle` — or for
//! [`EXITED_IDLE`] once it has exited — has its provider flushed and shut
//! down. Past the limit, a new process's exchanges are recorded on the
//! agent's own instruments (under the agent's resource) and counted, never
//! lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::Resource;

use super::http_metrics::HttpInstruments;
use super::resources::ProcessResource;
use super::spans::{DISTRO_NAME, DISTRO_VERSION};

/// How many processes get their own meter provider, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterLimits {
    /// Processes with a meter provider of their own at once.
    pub max_processes: usize,
    /// A process without an exchange for this long loses its provider
    /// (flushed first).
    pub idle: Duration,
}

/// How long the provider of a process that has exited stays (for exchanges
/// still on their way through the queues) before it is flushed and dropped:
/// short-lived clients do not hold a place for `idle`.
pub const EXITED_IDLE: Duration = Duration::from_secs(30);

/// Builds the meter provider of one process's resource (its reader and
/// exporter are the caller's business).
pub type NewProvider = Box<dyn Fn(Resource) -> SdkMeterProvider + Send>;

/// Whether the process with this pid is still running.
pub type IsRunning = Box<dyn Fn(u32) -> bool + Send>;

/// Whether `/proc/<pid>` exists. A pid reused since keeps a provider until
/// it is `idle`, which is what it would have had anyway.
pub fn proc_is_running(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// One process's provider and its HTTP instruments.
struct Entry {
    provider: SdkMeterProvider,
    http: HttpInstruments,
    pid: u32,
    last_used: Instant,
}

/// The per-process meter providers.
pub struct ProcessMeters {
    /// By process resource key (FxHash: looked up on every exchange).
    by_resource: rustc_hash::FxHashMap<Arc<str>, Entry>,
    limits: MeterLimits,
    body_sizes: bool,
    new_provider: NewProvider,
    is_running: IsRunning,
    /// The agent's own instruments, for processes past the limit.
    fallback: HttpInstruments,
    /// Exchanges recorded on `fallback`.
    unattributed: Arc<AtomicU64>,
}

impl ProcessMeters {
    /// `body_sizes`: create the opt-in body-size histograms too;
    /// `is_running`: whether a pid still runs ([`proc_is_running`]);
    /// `fallback`: the agent's HTTP instruments, used past the limit and
    /// counted in `unattributed`.
    pub fn new(
        limits: MeterLimits,
        body_sizes: bool,
        new_provider: NewProvider,
        is_running: IsRunning,
        fallback: HttpInstruments,
        unattributed: Arc<AtomicU64>,
    ) -> Self {
        Self {
            by_resource: Default::default(),
            limits,
            body_sizes,
            new_provider,
            is_running,
            fallback,
            unattributed,
        }
    }

    /// The HTTP instruments to record an exchange of `process` on, at `now`:
    /// its own provider's (created on first use), or the agent's when
    /// `max_processes` providers exist already (counted).
    pub fn instruments(&mut self, process: &ProcessResource, now: Instant) -> &mut HttpInstruments {
        let full = self.by_resource.len() >= self.limits.max_processes;
        if full && !self.by_resource.contains_key(&process.key) {
            self.unattributed.fetch_add(1, Ordering::Relaxed);
            return &mut self.fallback;
        }
        let (new_provider, body_sizes) = (&self.new_provider, self.body_sizes);
        let entry = self
            .by_resource
            .entry(process.key.clone())
            .or_insert_with(|| {
                let provider = new_provider(Resource::clone(&process.resource));
                let meter = provider.meter_with_scope(
                    opentelemetry::InstrumentationScope::builder(DISTRO_NAME)
                        .with_version(DISTRO_VERSION)
                        .build(),
                );
                let http = HttpInstruments::new(&meter, body_sizes);
                Entry {
                    provider,
                    http,
                    pid: process.pid,
                    last_used: now,
                }
            });
        entry.last_used = now;
        &mut entry.http
    }

    /// Remove the providers of processes idle for `idle` or longer at `now`,
    /// or for [`EXITED_IDLE`] and no longer running, and hand them back, to
    /// be shut down (which exports their last values).
    pub fn expire(&mut self, now: Instant) -> Vec<SdkMeterProvider> {
        let idle = self.limits.idle;
        let is_running = &self.is_running;
        let expired: Vec<Arc<str>> = self
            .by_resource
            .iter()
            .filter(|(_, e)| {
                let unused = now.saturating_duration_since(e.last_used);
                unused >= idle || (unused >= EXITED_IDLE && !is_running(e.pid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .iter()
            .filter_map(|k| self.by_resource.remove(k))
            .map(|e| e.provider)
            .collect()
    }

    /// Every provider, removed (at shutdown).
    pub fn drain(&mut self) -> Vec<SdkMeterProvider> {
        self.by_resource.drain().map(|(_, e)| e.provider).collect()
    }

    /// Processes with a provider of their own now.
    pub fn len(&self) -> usize {
        self.by_resource.len()
    }

    /// Whether no process has a provider now.
    pub fn is_empty(&self) -> bool {
        self.by_resource.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use opentelemetry::Key;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader};
    use semconv::metrics::HttpMeasurement;
    use semconv::model::ProcessInfo;
    use semconv::spans::SpanKind;

    use super::super::resources::ProcessResources;
    use super::*;

    /// Per-process providers exporting to one in-memory exporter, the
    /// agent's provider to another.
    struct Setup {
        meters: ProcessMeters,
        exported: InMemoryMetricExporter,
        agent: SdkMeterProvider,
        agent_exported: InMemoryMetricExporter,
        unattributed: Arc<AtomicU64>,
        /// Pids that have exited.
        exited: Arc<Mutex<Vec<u32>>>,
        resources: ProcessResources,
        /// Providers built so far (to flush them in the test).
        built: Arc<Mutex<Vec<SdkMeterProvider>>>,
    }

    fn setup(max_processes: usize, idle: Duration) -> Setup {
        let exported = InMemoryMetricExporter::default();
        let e = exported.clone();
        let built = Arc::new(Mutex::new(Vec::new()));
        let b = built.clone();
        let new_provider: NewProvider = Box::new(move |resource| {
            let p = SdkMeterProvider::builder()
                .with_resource(resource)
                .with_reader(PeriodicReader::builder(e.clone()).build())
                .build();
            b.lock().expect("lock").push(p.clone());
            p
        });
        let agent_exported = InMemoryMetricExporter::default();
        let agent = SdkMeterProvider::builder()
            .with_resource(
                Resource::builder_empty()
                    .with_service_name("otel-agent")
                    .build(),
            )
            .with_reader(PeriodicReader::builder(agent_exported.clone()).build())
            .build();
        let unattributed = Arc::new(AtomicU64::new(0));
        let exited = Arc::new(Mutex::new(Vec::new()));
        let gone = exited.clone();
        let is_running: IsRunning = Box::new(move |pid| !gone.lock().expect("lock").contains(&pid));
        let meters = ProcessMeters::new(
            MeterLimits {
                max_processes,
                idle,
            },
            false,
            new_provider,
            is_running,
            HttpInstruments::new(&agent.meter("otel-agent"), false),
            unattributed.clone(),
        );
        Setup {
            meters,
            exported,
            agent,
            agent_exported,
            unattributed,
            exited,
            resources: ProcessResources::new(None, BTreeMap::new(), "web-1".into()),
            built,
        }
    }

    fn process(pid: u32, exe: &str) -> Arc<ProcessInfo> {
        Arc::new(ProcessInfo {
            pid,
            exe: exe.into(),
            ..Default::default()
        })
    }

    fn request() -> HttpMeasurement {
        HttpMeasurement {
            kind: SpanKind::Server,
            duration_s: 0.01,
            request_body_size: None,
            response_body_size: None,
            attributes: vec![],
        }
    }

    impl Setup {
        fn record(&mut self, p: &Arc<ProcessInfo>, now: Instant) {
            let r = self.resources.resource_of(p);
            self.meters
                .instruments(&r, now)
                .record_measurement(request());
        }

        fn flush(&self) {
            for p in self.built.lock().expect("lock").iter() {
                let _ = p.force_flush();
            }
            let _ = self.agent.force_flush();
        }
    }

    /// (service.name, process.pid, request count) of every
    /// `http.server.request.duration` histogram point exported, in order.
    fn counts(exporter: &InMemoryMetricExporter) -> Vec<(String, String, u64)> {
        let mut out = Vec::new();
        for rm in exporter.get_finished_metrics().expect("metrics") {
            let attr = |k: &'static str| {
                rm.resource()
                    .get(&Key::from_static_str(k))
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            };
            for sm in rm.scope_metrics() {
                for m in sm.metrics() {
                    assert_eq!(m.name(), "http.server.request.duration");
                    let AggregatedMetrics::F64(MetricData::Histogram(h)) = m.data() else {
                        panic!("a histogram: {:?}", m.data());
                    };
                    for p in h.data_points() {
                        out.push((attr("service.name"), attr("process.pid"), p.count()));
                    }
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn each_process_gets_its_own_resource() {
        let mut s = setup(8, Duration::from_secs(60));
        let now = Instant::now();
        let (nginx, python) = (
            process(10, "/usr/sbin/nginx"),
            process(20, "/usr/bin/python3"),
        );
        for _ in 0..3 {
            s.record(&nginx, now);
        }
        s.record(&python, now);
        assert_eq!(s.meters.len(), 2);
        s.flush();
        assert_eq!(
            counts(&s.exported),
            [
                ("nginx".into(), "10".into(), 3),
                ("python3".into(), "20".into(), 1)
            ]
        );
        assert_eq!(counts(&s.agent_exported), []);
        assert_eq!(s.unattributed.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn past_the_limit_exchanges_go_under_the_agent_and_are_counted() {
        let mut s = setup(1, Duration::from_secs(60));
        let now = Instant::now();
        let (nginx, python) = (
            process(10, "/usr/sbin/nginx"),
            process(20, "/usr/bin/python3"),
        );
        s.record(&nginx, now);
        s.record(&python, now);
        s.record(&python, now);
        s.record(&nginx, now);
        assert_eq!(s.meters.len(), 1);
        assert_eq!(s.unattributed.load(Ordering::Relaxed), 2);
        s.flush();
        assert_eq!(counts(&s.exported), [("nginx".into(), "10".into(), 2)]);
        assert_eq!(
            counts(&s.agent_exported),
            [("otel-agent".into(), String::new(), 2)]
        );
    }

    #[test]
    fn idle_processes_expire_and_make_room() {
        let idle = Duration::from_secs(60);
        let mut s = setup(1, idle);
        let t0 = Instant::now();
        let (nginx, python) = (
            process(10, "/usr/sbin/nginx"),
            process(20, "/usr/bin/python3"),
        );
        s.record(&nginx, t0);
        // Not idle long enough yet.
        assert!(s.meters.expire(t0 + idle / 2).is_empty());
        s.record(&nginx, t0 + idle / 2);
        assert!(
            s.meters.expire(t0 + idle).is_empty(),
            "used again at idle/2"
        );
        let expired = s.meters.expire(t0 + idle / 2 + idle);
        assert_eq!(expired.len(), 1);
        assert!(s.meters.is_empty());
        // Shutting the expired provider down exports its last values.
        for p in &expired {
            p.shutdown().expect("shutdown");
        }
        assert_eq!(counts(&s.exported), [("nginx".into(), "10".into(), 2)]);
        // Room again: python gets a provider of its own, nothing unattributed.
        s.record(&python, t0 + 2 * idle);
        assert_eq!(s.meters.len(), 1);
        assert_eq!(s.unattributed.load(Ordering::Relaxed), 0);
        let rest = s.meters.drain();
        assert_eq!(rest.len(), 1);
        assert!(s.meters.is_empty());
    }

    #[test]
    fn exited_processes_expire_sooner() {
        let idle = Duration::from_secs(600);
        let mut s = setup(8, idle);
        let t0 = Instant::now();
        let (curl, nginx) = (process(30, "/usr/bin/curl"), process(10, "/usr/sbin/nginx"));
        s.record(&curl, t0);
        s.record(&nginx, t0);
        s.exited.lock().expect("lock").push(30);
        // Exited, but not yet EXITED_IDLE without an exchange: kept.
        assert!(s.meters.expire(t0 + EXITED_IDLE / 2).is_empty());
        let expired = s.meters.expire(t0 + EXITED_IDLE);
        assert_eq!(expired.len(), 1, "curl's, not running nginx's");
        for p in &expired {
            p.shutdown().expect("shutdown");
        }
        assert_eq!(counts(&s.exported), [("curl".into(), "30".into(), 1)]);
        assert_eq!(s.meters.len(), 1);
        assert!(s.meters.expire(t0 + idle / 2).is_empty(), "nginx runs");
        assert_eq!(s.meters.expire(t0 + idle).len(), 1);
        assert!(proc_is_running(std::process::id()));
        assert!(!proc_is_running(u32::MAX));
    }

    #[test]
    fn equal_resources_share_a_provider() {
        let mut s = setup(8, Duration::from_secs(60));
        let now = Instant::now();
        // Two identities of one process: one provider, one series.
        s.record(&process(10, "/usr/sbin/nginx"), now);
        s.record(&process(10, "/usr/sbin/nginx"), now);
        assert_eq!(s.meters.len(), 1);
        s.flush();
        assert_eq!(counts(&s.exported), [("nginx".into(), "10".into(), 2)]);
    }
}
