//! Connection reports → OTLP log records: the pure mapping of
//! `semconv::logs::connection_report` copied onto the SDK's record, and
//! their export under the resource of the observed process.
//!
//! The SDK's logger provider has one resource, so the records do not go
//! through it: like spans, they are queued with their process's resource
//! and exported in batches, one request per resource
//! (`LogExporter::set_resource` per group). A full queue and a failed
//! export drop records, counted.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord, Logger as _, Severity as OtelSeverity};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord, SdkLogger};
use opentelemetry_sdk::Resource;
use semconv::logs::{connection_report, Severity};
use semconv::model::ConnectionReport;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::spans::{any_value, group_by_resource, time};
use super::ExportFailures;

/// Log records per export request.
const MAX_BATCH: usize = 512;
/// How long records wait for a batch to fill.
const BATCH_TIMEOUT: Duration = Duration::from_millis(500);

/// A log record and the resource of the process it describes.
pub type QueuedRecord = (Arc<Resource>, SdkLogRecord);

/// Fill `rec` with the connection report; `observed` is when the agent saw it.
pub fn fill(rec: &mut impl LogRecord, r: &ConnectionReport, observed: SystemTime) {
    let data = connection_report(r);
    let (number, text) = match data.severity {
        Severity::Info => (OtelSeverity::Info, "INFO"),
        Severity::Warn => (OtelSeverity::Warn, "WARN"),
    };
    rec.set_severity_number(number);
    rec.set_severity_text(text);
    rec.set_body(AnyValue::String(data.body.into()));
    rec.set_event_name(data.event_name);
    rec.set_timestamp(time(data.timestamp_unix_ns));
    rec.set_observed_timestamp(observed);
    for a in data.attributes {
        rec.add_attribute(a.key, any_value(a.value));
    }
}

/// Emit one connection report on `logger`.
pub fn emit_report(logger: &SdkLogger, r: &ConnectionReport) {
    logger.emit(record(logger, r));
}

/// The log record of one connection report (`logger` only makes the
/// record; nothing is emitted).
pub fn record(logger: &SdkLogger, r: &ConnectionReport) -> SdkLogRecord {
    let mut rec = logger.create_log_record();
    fill(&mut rec, r, SystemTime::now());
    rec
}

/// The log export task: batch the queued records, group them by resource,
/// export one request per resource. Records of a failed request are
/// counted lost (`log_records_lost`), the request in `logs`.
pub async fn export_logs<E: LogExporter>(
    mut exporter: E,
    mut rx: mpsc::Receiver<QueuedRecord>,
    scope: InstrumentationScope,
    failures: Arc<ExportFailures>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let got = tokio::time::timeout(BATCH_TIMEOUT, rx.recv_many(&mut batch, MAX_BATCH)).await;
        let closed = matches!(got, Ok(0));
        if !batch.is_empty() {
            export_batch(&mut exporter, std::mem::take(&mut batch), &scope, &failures).await;
        }
        if closed {
            break;
        }
    }
    let _ = exporter.shutdown();
}

async fn export_batch<E: LogExporter>(
    exporter: &mut E,
    batch: Vec<QueuedRecord>,
    scope: &InstrumentationScope,
    failures: &ExportFailures,
) {
    for (resource, records) in group_by_resource(batch) {
        exporter.set_resource(&resource);
        let n = records.len() as u64;
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            records.iter().map(|r| (r, scope)).collect();
        let result = exporter.export(LogBatch::new(&refs)).await;
        failures.log_records_pending.fetch_sub(n, Ordering::Relaxed);
        if let Err(e) = result {
            failures.logs.fetch_add(1, Ordering::Relaxed);
            failures.log_records_lost.fetch_add(n, Ordering::Relaxed);
            warn!(error = %e, records = n, "log export failed: records dropped (counted)");
        } else {
            debug!(records = n, "log records exported");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::logs::LoggerProvider as _;
    use opentelemetry::Key;
    use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLogRecord, SdkLoggerProvider};
    use semconv::logs::{capture_issues, CONNECTION_REPORT_EVENT};
    use semconv::model::{
        CloseReason, Connection, Direction, Endpoints, L7Protocol, ProcessInfo, TlsInfo,
    };

    use super::*;

    /// 2026-01-01T00:00:00Z
    const OPENED: u64 = 1_767_225_600_000_000_000;

    fn report() -> ConnectionReport {
        ConnectionReport {
            connection: Connection {
                id: 12,
                process: Arc::new(ProcessInfo {
                    pid: 4242,
                    exe: "/usr/bin/curl".into(),
                    command_args: vec!["curl".into(), "http://10.0.0.9:8080/".into()],
                    comm: "curl".into(),
                    ..Default::default()
                }),
                direction: Direction::EgressInternal,
                endpoints: Endpoints {
                    local: "10.0.0.2:51000".parse().unwrap(),
                    remote: "10.0.0.9:8080".parse().unwrap(),
                },
                protocol: L7Protocol::Http1,
                tls: None,
            },
            role: "client",
            endpoint_id: "10.0.0.9:8080".into(),
            adopted: false,
            got_protocol_event: true,
            data_events: 6,
            bytes_sent: 412,
            bytes_received: 1229,
            exchanges: 3,
            partial_exchanges: 0,
            gap_exchanges: 0,
            parse_errors: 0,
            lost_events: 0,
            truncated_bytes: 0,
            skipped_bytes: 0,
            opened_unix_ns: OPENED,
            closed_unix_ns: OPENED + 2_500_000_000,
            close_reason: CloseReason::Close,
        }
    }

    fn unhealthy() -> ConnectionReport {
        ConnectionReport {
            lost_events: 3,
            parse_errors: 1,
            ..report()
        }
    }

    /// A real SDK record, filled as the exporter fills it.
    fn filled(r: &ConnectionReport, observed: SystemTime) -> SdkLogRecord {
        let provider = SdkLoggerProvider::builder().build();
        let mut rec = provider.logger("test").create_log_record();
        fill(&mut rec, r, observed);
        rec
    }

    fn observed() -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(OPENED + 3_000_000_000)
    }

    fn attr<'a>(rec: &'a SdkLogRecord, key: &str) -> Option<&'a AnyValue> {
        rec.attributes_iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }

    fn s(v: &str) -> AnyValue {
        AnyValue::String(v.to_string().into())
    }

    #[test]
    fn a_healthy_report_is_info() {
        let r = report();
        assert!(capture_issues(&r).is_empty());
        let rec = filled(&r, observed());
        assert_eq!(rec.severity_number(), Some(OtelSeverity::Info));
        assert_eq!(rec.severity_text(), Some("INFO"));
        assert_eq!(attr(&rec, "tap.capture.issues"), None);
    }

    #[test]
    fn an_unhealthy_report_is_warn_and_lists_its_issues() {
        let r = unhealthy();
        assert_eq!(capture_issues(&r), ["lost_events", "parse_errors"]);
        let rec = filled(&r, observed());
        assert_eq!(rec.severity_number(), Some(OtelSeverity::Warn));
        assert_eq!(rec.severity_text(), Some("WARN"));
        assert_eq!(
            attr(&rec, "tap.capture.issues"),
            Some(&AnyValue::ListAny(Box::new(vec![
                s("lost_events"),
                s("parse_errors")
            ])))
        );
        let Some(AnyValue::String(body)) = rec.body() else {
            panic!("string body: {:?}", rec.body())
        };
        assert!(
            body.as_str()
                .ends_with("; issues: lost_events, parse_errors"),
            "{body}"
        );
    }

    #[test]
    fn tls_without_a_plaintext_probe_is_warn() {
        let mut r = report();
        r.connection.tls = Some(std::sync::Arc::new(TlsInfo {
            got_client_hello: true,
            ..Default::default()
        }));
        let rec = filled(&r, observed());
        assert_eq!(rec.severity_number(), Some(OtelSeverity::Warn));
        assert_eq!(
            attr(&rec, "tap.capture.issues"),
            Some(&AnyValue::ListAny(Box::new(vec![s(
                "tls_without_plaintext_probe"
            )])))
        );
    }

    #[test]
    fn body_and_event_name() {
        let rec = filled(&report(), observed());
        assert_eq!(
            rec.body(),
            Some(&s(
                "connection 12 curl → 10.0.0.9:8080 http1: 3 exchanges, 412 B sent, 1.2 KiB received, closed (close)"
            ))
        );
        assert_eq!(rec.event_name(), Some(CONNECTION_REPORT_EVENT));
        assert_eq!(rec.event_name(), Some("tap.connection.report"));
    }

    #[test]
    fn the_timestamp_is_the_close_time_and_observed_is_given() {
        let rec = filled(&report(), observed());
        assert_eq!(
            rec.timestamp(),
            Some(UNIX_EPOCH + Duration::from_nanos(OPENED + 2_500_000_000))
        );
        assert_eq!(rec.observed_timestamp(), Some(observed()));
    }

    #[test]
    fn attributes_carry_the_report_values() {
        let rec = filled(&report(), observed());
        let int = |k: &str| match attr(&rec, k) {
            Some(AnyValue::Int(i)) => Some(*i),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(int("tap.connection.id"), Some(12));
        assert_eq!(int("tap.wire_bytes_sent"), Some(412));
        assert_eq!(int("tap.wire_bytes_received"), Some(1229));
        assert_eq!(int("tap.duration_ms"), Some(2500));
        assert_eq!(int("tap.exchanges"), Some(3));
        assert_eq!(int("network.peer.port"), Some(8080));
        assert_eq!(int("process.pid"), Some(4242));
        assert_eq!(attr(&rec, "tap.role"), Some(&s("client")));
        assert_eq!(attr(&rec, "tap.direction"), Some(&s("egress-internal")));
        assert_eq!(attr(&rec, "tap.l7_protocol"), Some(&s("http1")));
        assert_eq!(attr(&rec, "tap.close_reason"), Some(&s("close")));
        assert_eq!(attr(&rec, "network.peer.address"), Some(&s("10.0.0.9")));
        assert_eq!(
            attr(&rec, "process.executable.path"),
            Some(&s("/usr/bin/curl"))
        );
        assert_eq!(attr(&rec, "tap.adopted"), Some(&AnyValue::Boolean(false)));
        assert_eq!(
            attr(&rec, "tap.tls.client_hello"),
            Some(&AnyValue::Boolean(false))
        );
    }

    #[test]
    fn every_semconv_attribute_is_copied_in_order() {
        for r in [report(), unhealthy()] {
            let expected: Vec<(Key, AnyValue)> = connection_report(&r)
                .attributes
                .into_iter()
                .map(|a| (Key::from(a.key), any_value(a.value)))
                .collect();
            let rec = filled(&r, observed());
            let got: Vec<(Key, AnyValue)> = rec.attributes_iter().cloned().collect();
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn emit_report_hands_the_record_to_the_exporter() {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let before = SystemTime::now();
        emit_report(&provider.logger("test"), &unhealthy());
        let logs = exporter.get_emitted_logs().expect("emitted logs");
        assert_eq!(logs.len(), 1);
        let rec = &logs[0].record;
        assert_eq!(rec.event_name(), Some(CONNECTION_REPORT_EVENT));
        assert_eq!(rec.severity_number(), Some(OtelSeverity::Warn));
        assert_eq!(
            rec.timestamp(),
            Some(UNIX_EPOCH + Duration::from_nanos(OPENED + 2_500_000_000))
        );
        assert!(rec.observed_timestamp().is_some_and(|t| t >= before));
    }

    /// One export request: service.name of its resource, connection ids.
    type Request = (String, Vec<i64>);

    /// Records what each export request carried; fails every request when `fail`.
    #[derive(Debug, Default)]
    struct Requests {
        resource: Option<String>,
        seen: Arc<std::sync::Mutex<Vec<Request>>>,
        fail: bool,
    }

    impl LogExporter for Requests {
        async fn export(&self, batch: LogBatch<'_>) -> opentelemetry_sdk::error::OTelSdkResult {
            let ids = batch
                .iter()
                .map(|(rec, _)| match attr(rec, "tap.connection.id") {
                    Some(AnyValue::Int(i)) => *i,
                    other => panic!("connection id: {other:?}"),
                })
                .collect();
            let service = self.resource.clone().unwrap_or_default();
            self.seen.lock().expect("lock").push((service, ids));
            if self.fail {
                return Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                    "down".into(),
                ));
            }
            Ok(())
        }
        fn set_resource(&mut self, resource: &Resource) {
            self.resource = resource
                .get(&Key::from_static_str("service.name"))
                .map(|v| v.to_string());
        }
    }

    fn queued(service: &Arc<Resource>, id: u64) -> QueuedRecord {
        let provider = SdkLoggerProvider::builder().build();
        let mut r = report();
        r.connection.id = id;
        (service.clone(), record(&provider.logger("test"), &r))
    }

    fn resource(service: &'static str) -> Arc<Resource> {
        Arc::new(Resource::builder_empty().with_service_name(service).build())
    }

    async fn run(fail: bool) -> (Vec<Request>, Arc<ExportFailures>) {
        let exporter = Requests {
            fail,
            ..Default::default()
        };
        let seen = exporter.seen.clone();
        let failures = Arc::new(ExportFailures::default());
        let (tx, rx) = mpsc::channel(16);
        let (nginx, python) = (resource("nginx"), resource("python3"));
        for (res, id) in [(&nginx, 1), (&python, 2), (&nginx, 3)] {
            failures.log_records_pending.fetch_add(1, Ordering::Relaxed);
            tx.send(queued(res, id)).await.expect("send");
        }
        drop(tx);
        export_logs(
            exporter,
            rx,
            InstrumentationScope::builder("test").build(),
            failures.clone(),
        )
        .await;
        let seen = seen.lock().expect("lock").clone();
        (seen, failures)
    }

    #[tokio::test]
    async fn records_go_out_under_their_process_resource() {
        let (seen, failures) = run(false).await;
        assert_eq!(
            seen,
            [
                ("nginx".to_string(), vec![1, 3]),
                ("python3".to_string(), vec![2])
            ]
        );
        assert_eq!(failures.log_records_pending.load(Ordering::Relaxed), 0);
        assert_eq!(failures.log_records_lost.load(Ordering::Relaxed), 0);
        assert_eq!(failures.logs.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn failed_requests_count_their_records_lost() {
        let (seen, failures) = run(true).await;
        assert_eq!(seen.len(), 2);
        assert_eq!(failures.log_records_pending.load(Ordering::Relaxed), 0);
        assert_eq!(failures.log_records_lost.load(Ordering::Relaxed), 3);
        assert_eq!(failures.logs.load(Ordering::Relaxed), 2);
    }
}
