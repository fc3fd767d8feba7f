//! HTTP metrics under the observed process's resource: one set of
//! histograms per process (`HttpHistograms`), at most `max_processes` of
//! them; a process idle for `idle` — or for [`EXITED_IDLE`] once it has
//! exited — has its histograms handed back for a last export and dropped.
//! Past the limit, a new process's exchanges are recorded on the agent's
//! own histograms (under the agent's resource) and counted, never lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_sdk::Resource;

use super::http_metrics::HttpHistograms;
use super::resources::ProcessResource;

/// How many processes get histograms of their own, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterLimits {
    /// Processes with histograms of their own at once.
    pub max_processes: usize,
    /// A process without an exchange for this long loses its histograms
    /// (exported a last time first).
    pub idle: Duration,
}

/// How long the histograms of a process that has exited stay (for
/// exchanges still on their way through the queues) before their last
/// export: short-lived clients do not hold a place for `idle`.
pub const EXITED_IDLE: Duration = Duration::from_secs(30);

/// Whether the process with this pid is still running.
pub type IsRunning = Box<dyn Fn(u32) -> bool + Send>;

/// Whether `/proc/<pid>` exists. A pid reused since keeps its histograms
/// until it is `idle`, which is what it would have had anyway.
pub fn proc_is_running(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Nanoseconds since the Unix epoch now.
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The HTTP histograms of one resource.
pub struct ResourceHistograms {
    /// The resource they are exported under.
    pub resource: Arc<Resource>,
    /// The histograms.
    pub http: HttpHistograms,
}

/// One process's histograms.
struct Entry {
    series: ResourceHistograms,
    pid: u32,
    last_used: Instant,
}

/// The per-process HTTP histograms.
pub struct ProcessMeters {
    /// By process resource key (FxHash: looked up on every exchange).
    by_resource: rustc_hash::FxHashMap<Arc<str>, Entry>,
    limits: MeterLimits,
    body_sizes: bool,
    is_running: IsRunning,
    /// The agent's own histograms, for processes past the limit.
    fallback: ResourceHistograms,
    /// Exchanges recorded on `fallback`.
    unattributed: Arc<AtomicU64>,
}

impl ProcessMeters {
    /// `body_sizes`: keep the opt-in body-size histograms too;
    /// `is_running`: whether a pid still runs ([`proc_is_running`]);
    /// `agent`: the agent's resource, for the histograms of processes past
    /// the limit (counted in `unattributed`).
    pub fn new(
        limits: MeterLimits,
        body_sizes: bool,
        is_running: IsRunning,
        agent: Arc<Resource>,
        unattributed: Arc<AtomicU64>,
    ) -> Self {
        Self {
            by_resource: Default::default(),
            limits,
            body_sizes,
            is_running,
            fallback: ResourceHistograms {
                resource: agent,
                http: HttpHistograms::new(body_sizes, unix_now_ns()),
            },
            unattributed,
        }
    }

    /// The histograms to record an exchange of `process` on, at `now`: its
    /// own (created on first use), or the agent's when `max_processes`
    /// processes have theirs already (counted).
    pub fn instruments(&mut self, process: &ProcessResource, now: Instant) -> &mut HttpHistograms {
        let full = self.by_resource.len() >= self.limits.max_processes;
        if full && !self.by_resource.contains_key(&process.key) {
            self.unattributed.fetch_add(1, Ordering::Relaxed);
            return &mut self.fallback.http;
        }
        let body_sizes = self.body_sizes;
        let entry = self
            .by_resource
            .entry(process.key.clone())
            .or_insert_with(|| Entry {
                series: ResourceHistograms {
                    resource: process.resource.clone(),
                    http: HttpHistograms::new(body_sizes, unix_now_ns()),
                },
                pid: process.pid,
                last_used: now,
            });
        entry.last_used = now;
        &mut entry.series.http
    }

    /// Remove the histograms of processes idle for `idle` or longer at
    /// `now`, or for [`EXITED_IDLE`] and no longer running, and hand them
    /// back for their last export.
    pub fn expire(&mut self, now: Instant) -> Vec<ResourceHistograms> {
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
            .map(|e| e.series)
            .collect()
    }

    /// Every process's histograms and the agent's, as they are now.
    pub fn all(&self) -> impl Iterator<Item = &ResourceHistograms> {
        self.by_resource
            .values()
            .map(|e| &e.series)
            .chain(std::iter::once(&self.fallback))
    }

    /// Processes with histograms of their own now.
    pub fn len(&self) -> usize {
        self.by_resource.len()
    }

    /// Whether no process has histograms of its own now.
    pub fn is_empty(&self) -> bool {
        self.by_resource.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use opentelemetry::Key;
    use semconv::metrics::HttpMeasurement;
    use semconv::model::ProcessInfo;
    use semconv::spans::SpanKind;

    use super::super::resources::ProcessResources;
    use super::*;

    struct Setup {
        meters: ProcessMeters,
        unattributed: Arc<AtomicU64>,
        /// Pids that have exited.
        exited: Arc<Mutex<Vec<u32>>>,
        resources: ProcessResources,
    }

    fn setup(max_processes: usize, idle: Duration) -> Setup {
        let agent = Resource::builder_empty()
            .with_service_name("otel-agent")
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
            is_running,
            Arc::new(agent),
            unattributed.clone(),
        );
        Setup {
            meters,
            unattributed,
            exited,
            resources: ProcessResources::new(None, BTreeMap::new(), "web-1".into()),
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
                .record_measurement(&request());
        }
    }

    /// (service.name, process.pid, exchanges) of every resource with
    /// exchanges, in order.
    fn counts<'a>(
        all: impl IntoIterator<Item = &'a ResourceHistograms>,
    ) -> Vec<(String, String, u64)> {
        let mut out: Vec<_> = all
            .into_iter()
            .filter(|r| r.http.exchanges() > 0)
            .map(|r| {
                let attr = |k: &'static str| {
                    r.resource
                        .get(&Key::from_static_str(k))
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                };
                (
                    attr("service.name"),
                    attr("process.pid"),
                    r.http.exchanges(),
                )
            })
            .collect();
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
        assert_eq!(
            counts(s.meters.all()),
            [
                ("nginx".into(), "10".into(), 3),
                ("python3".into(), "20".into(), 1)
            ]
        );
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
        assert_eq!(
            counts(s.meters.all()),
            [
                ("nginx".into(), "10".into(), 2),
                ("otel-agent".into(), String::new(), 2)
            ]
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
        // Handed back with its last values.
        assert_eq!(counts(&expired), [("nginx".into(), "10".into(), 2)]);
        assert!(s.meters.is_empty());
        // Room again: python gets histograms of its own, nothing unattributed.
        s.record(&python, t0 + 2 * idle);
        assert_eq!(s.meters.len(), 1);
        assert_eq!(s.unattributed.load(Ordering::Relaxed), 0);
        assert_eq!(counts(s.meters.all()), [("python3".into(), "20".into(), 1)]);
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
        assert_eq!(
            counts(&expired),
            [("curl".into(), "30".into(), 1)],
            "curl's, not running nginx's"
        );
        assert_eq!(s.meters.len(), 1);
        assert!(s.meters.expire(t0 + idle / 2).is_empty(), "nginx runs");
        assert_eq!(s.meters.expire(t0 + idle).len(), 1);
        assert!(proc_is_running(std::process::id()));
        assert!(!proc_is_running(u32::MAX));
    }

    #[test]
    fn equal_resources_share_histograms() {
        let mut s = setup(8, Duration::from_secs(60));
        let now = Instant::now();
        // Two identities of one process: one resource, one series.
        s.record(&process(10, "/usr/sbin/nginx"), now);
        s.record(&process(10, "/usr/sbin/nginx"), now);
        assert_eq!(s.meters.len(), 1);
        assert_eq!(counts(s.meters.all()), [("nginx".into(), "10".into(), 2)]);
    }
}
