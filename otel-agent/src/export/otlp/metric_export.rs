//! Exports the HTTP histograms (`http_metrics`): every
//! `OTEL_METRIC_EXPORT_INTERVAL` one `ExportMetricsServiceRequest` with a
//! `ResourceMetrics` per process (and the agent's, for processes past the
//! limit), cumulative; the last values of a process that goes idle at
//! once; everything at shutdown. Requests are encoded on the reader's
//! thread, which owns the histograms (no lock on the way of an exchange),
//! and sent on the runtime. A failed export is counted; the next one
//! carries the same totals (cumulative), so nothing is retried.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use prost::Message as _;
use tracing::debug;

use super::process_meters::ResourceHistograms;
use super::resources::proto_resource;
use super::spans::{DISTRO_NAME, DISTRO_VERSION};
use super::transport::OtlpTransport;
use super::ExportFailures;

/// The export interval when `OTEL_METRIC_EXPORT_INTERVAL` is unset or not
/// a number of milliseconds (the SDK's default).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The metric export interval: `OTEL_METRIC_EXPORT_INTERVAL` milliseconds
/// (as the SDK reads it for the agent's own metrics), else 60 s.
pub fn export_interval() -> Duration {
    interval_of(std::env::var("OTEL_METRIC_EXPORT_INTERVAL").ok().as_deref())
}

/// The interval a value of `OTEL_METRIC_EXPORT_INTERVAL` gives.
fn interval_of(ms: Option<&str>) -> Duration {
    ms.and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(DEFAULT_INTERVAL, Duration::from_millis)
}

/// The request body with the metrics of `parts` at `now_unix_ns`; `None`
/// when none has a data point.
pub fn request<'a>(
    parts: impl IntoIterator<Item = &'a ResourceHistograms>,
    now_unix_ns: u64,
) -> Option<Bytes> {
    let scope = InstrumentationScope {
        name: DISTRO_NAME.into(),
        version: DISTRO_VERSION.into(),
        attributes: vec![],
        dropped_attributes_count: 0,
    };
    let resource_metrics: Vec<ResourceMetrics> = parts
        .into_iter()
        .filter_map(|p| {
            let metrics = p.http.metrics(now_unix_ns);
            if metrics.is_empty() {
                return None;
            }
            let (resource, schema_url) = proto_resource(&p.resource);
            Some(ResourceMetrics {
                resource: Some(resource),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope.clone()),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url,
            })
        })
        .collect();
    if resource_metrics.is_empty() {
        return None;
    }
    Some(Bytes::from(
        ExportMetricsServiceRequest { resource_metrics }.encode_to_vec(),
    ))
}

/// Sends the requests, one periodic export at a time.
pub struct MetricSender {
    transport: OtlpTransport,
    runtime: tokio::runtime::Handle,
    interval: Duration,
    last: Instant,
    /// A periodic export is on its way: the next is skipped (it would
    /// carry the same totals and more).
    in_flight: Arc<AtomicBool>,
    failures: Arc<ExportFailures>,
}

impl MetricSender {
    /// Must run inside the tokio runtime.
    pub fn new(transport: OtlpTransport, failures: Arc<ExportFailures>) -> Self {
        Self {
            transport,
            runtime: tokio::runtime::Handle::current(),
            interval: export_interval(),
            last: Instant::now(),
            in_flight: Arc::new(AtomicBool::new(false)),
            failures,
        }
    }

    /// Whether the periodic export is due at `now` (and none is on its
    /// way); when it is, the next one is due an interval later.
    pub fn due(&mut self, now: Instant) -> bool {
        if now.duration_since(self.last) < self.interval {
            return false;
        }
        self.last = now;
        if self.in_flight.load(Ordering::Relaxed) {
            debug!("metrics export still on its way: this one skipped");
            return false;
        }
        true
    }

    /// Send the periodic request `body`.
    pub fn send_periodic(&self, body: Bytes) {
        self.in_flight.store(true, Ordering::Relaxed);
        let in_flight = self.in_flight.clone();
        let send = self.send(body);
        self.runtime.spawn(async move {
            send.await;
            in_flight.store(false, Ordering::Relaxed);
        });
    }

    /// Send `body` now (last values of idle processes).
    pub fn send_now(&self, body: Bytes) {
        self.runtime.spawn(self.send(body));
    }

    /// Sending `body`, counting a failure.
    pub fn send(&self, body: Bytes) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut transport = self.transport.clone();
        let failures = self.failures.clone();
        async move {
            if let Err(e) = transport.send(body).await {
                failures.metrics.fetch_add(1, Ordering::Relaxed);
                debug!(error = %e, "HTTP metrics export failed (counted; the next export carries the same totals)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::metrics::v1::metric;
    use opentelemetry_sdk::Resource;
    use semconv::metrics::HttpMeasurement;
    use semconv::spans::SpanKind;

    use super::super::http_metrics::HttpHistograms;
    use super::*;

    fn part(service: &str, exchanges: usize) -> ResourceHistograms {
        let mut http = HttpHistograms::new(false, 5);
        for _ in 0..exchanges {
            http.record_measurement(&HttpMeasurement {
                kind: SpanKind::Server,
                duration_s: 0.02,
                request_body_size: None,
                response_body_size: None,
                attributes: vec![],
            });
        }
        ResourceHistograms {
            resource: Arc::new(
                Resource::builder_empty()
                    .with_attributes([KeyValue::new("service.name", service.to_string())])
                    .build(),
            ),
            http,
        }
    }

    /// One `ResourceMetrics` per resource with data points, each under its
    /// resource and the agent's scope; nothing to send without a point.
    #[test]
    fn a_request_carries_each_resource_with_points() {
        let parts = [part("nginx", 3), part("idle", 0), part("python3", 1)];
        let body = request(&parts, 9).expect("a request");
        let decoded = ExportMetricsServiceRequest::decode(body).expect("decodes");
        let got: Vec<(String, String, String, u64, u64)> = decoded
            .resource_metrics
            .iter()
            .map(|rm| {
                let service = rm
                    .resource
                    .as_ref()
                    .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                    .and_then(|kv| kv.value.as_ref()?.value.as_ref());
                let Some(Value::StringValue(service)) = service else {
                    panic!("service.name: {rm:?}");
                };
                let sm = &rm.scope_metrics[0];
                let scope = sm.scope.as_ref().expect("scope");
                assert_eq!(
                    (scope.name.as_str(), scope.version.as_str()),
                    (DISTRO_NAME, DISTRO_VERSION)
                );
                let m = &sm.metrics[0];
                let Some(metric::Data::Histogram(h)) = &m.data else {
                    panic!("{m:?}");
                };
                let p = &h.data_points[0];
                assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (5, 9));
                (
                    service.clone(),
                    m.name.clone(),
                    m.unit.clone(),
                    p.count,
                    sm.metrics.len() as u64,
                )
            })
            .collect();
        let server = |s: &str, n| {
            (
                s.to_string(),
                "http.server.request.duration".to_string(),
                "s".to_string(),
                n,
                1,
            )
        };
        assert_eq!(got, [server("nginx", 3), server("python3", 1)]);
        assert!(request(&[part("idle", 0)], 9).is_none());
    }

    #[test]
    fn the_interval_is_the_environments_in_milliseconds() {
        assert_eq!(interval_of(Some("1000")), Duration::from_secs(1));
        assert_eq!(interval_of(Some(" 250 ")), Duration::from_millis(250));
        for bad in [None, Some(""), Some("0"), Some("1s"), Some("-5")] {
            assert_eq!(interval_of(bad), DEFAULT_INTERVAL, "{bad:?}");
        }
    }
}
