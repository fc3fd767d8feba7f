//! Golden replays: the recorded captures (`benches/recordings`, real h2load ↔
//! nginx traffic) replayed through the whole pipeline — tracker, parsers,
//! exchange assembly, stdout JSON, span building and OTLP protobuf encoding,
//! HTTP metric and connection-report mapping — with a fixed clock, fixed
//! trace and span ids and no reads of the running system. The output must be
//! byte-identical to the files in `tests/golden/`.
//!
//! The readable files hold every connection report and the first
//! [`SHOWN`] exchanges; the `.summary` file holds counts and a digest of
//! every byte of every stream, so nothing escapes the comparison.
//!
//! Golden files change only on purpose: `GOLDEN_UPDATE=1 cargo test -p
//! otel-agent --test golden` rewrites them, and the commit says why. CI only
//! compares.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::{IdGenerator, SpanData};
use opentelemetry_sdk::Resource;
use otel_agent::export::otlp::spans::{group_by_resource, SpanBuilder};
use otel_agent::export::stdout;
use otel_agent::internal_events::CaptureStats;
use otel_agent::track::clock::Clock;
use otel_agent::track::process::NoSystem;
use otel_agent::track::tracker::Tracker;
use otel_agent_config::{CaptureLevel, Settings};
use prost::Message as _;
use semconv::model::Output;
use semconv::value::{AttrValue, Attribute};
use serde_json::{json, Value};

/// Exchanges written out in full in the readable files.
const SHOWN: usize = 40;
/// Spans per export request, as the exporter batches them.
const BATCH: usize = 512;
/// Wall clock = kernel monotonic time + this (2026-01-01T00:00:00Z).
const CLOCK_OFFSET_NS: i128 = 1_767_225_600_000_000_000;

/// Sequential trace and span ids.
#[derive(Debug, Default)]
struct Sequential(AtomicU64);

impl IdGenerator for Sequential {
    fn new_trace_id(&self) -> TraceId {
        TraceId::from(u128::from(self.0.fetch_add(1, Ordering::Relaxed) + 1) << 64 | 0x7e)
    }
    fn new_span_id(&self) -> SpanId {
        SpanId::from(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// FNV-1a, 64 bits: a digest of every byte of a stream.
#[derive(Clone, Copy)]
struct Digest(u64, u64);

impl Digest {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325, 0)
    }
    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
        self.1 += bytes.len() as u64;
    }
    fn show(self) -> String {
        format!("{:016x} ({} bytes)", self.0, self.1)
    }
}

/// One output stream: every line digested, the first lines kept.
struct Stream {
    shown: String,
    digest: Digest,
    lines: usize,
}

impl Stream {
    fn new() -> Self {
        Self {
            shown: String::new(),
            digest: Digest::new(),
            lines: 0,
        }
    }
    fn line(&mut self, line: &str, show: bool) {
        self.digest.add(line.as_bytes());
        self.digest.add(b"\n");
        self.lines += 1;
        if show {
            self.shown.push_str(line);
            self.shown.push('\n');
        }
    }
}

fn attr_json(a: &Attribute) -> Value {
    let v = match &a.value {
        AttrValue::Str(s) => json!(s),
        AttrValue::Int(i) => json!(i),
        AttrValue::Bool(b) => json!(b),
        AttrValue::StrArray(v) => json!(v),
    };
    json!([a.key, v])
}

fn attrs_json(attrs: &[Attribute]) -> Value {
    Value::Array(attrs.iter().map(attr_json).collect())
}

/// The connection report's log record, readable.
fn log_json(r: &semconv::model::ConnectionReport) -> Value {
    let rec = semconv::logs::connection_report(r);
    json!({
        "severity": rec.severity.as_str(),
        "severity_number": rec.severity.number(),
        "body": rec.body,
        "event_name": rec.event_name,
        "timestamp_unix_ns": rec.timestamp_unix_ns,
        "attributes": attrs_json(&rec.attributes),
    })
}

/// One export request per resource, as the gRPC exporter sends it. The SDK
/// keeps resource attributes in a hash map, so their order differs from run
/// to run (order carries no meaning in OTLP): they are sorted by key here.
fn encode(batch: Vec<(Arc<Resource>, SpanData)>) -> Vec<ExportTraceServiceRequest> {
    group_by_resource(batch)
        .into_iter()
        .map(|(res, spans)| {
            let res = ResourceAttributesWithSchema::from(&*res);
            let mut resource_spans = group_spans_by_resource_and_scope(spans, &res);
            for rs in &mut resource_spans {
                if let Some(r) = rs.resource.as_mut() {
                    r.attributes.sort_by(|a, b| a.key.cmp(&b.key));
                }
            }
            ExportTraceServiceRequest { resource_spans }
        })
        .collect()
}

struct Golden {
    stdout: Stream,
    traces: Stream,
    protobuf: Digest,
    metrics: Stream,
    logs: Stream,
    exchanges: usize,
    reports: usize,
}

fn replay(recording: &str, level: CaptureLevel) -> Golden {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/recordings")
        .join(recording);
    let records = otel_agent::capture::recording::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut settings = Settings::default();
    settings.capture.level = level;
    let stats = Arc::new(CaptureStats::default());
    let options = otel_agent::export::mapping_options(&settings);
    let mut tracker = Tracker::with_system(
        Arc::new(settings),
        Clock::with_offset(CLOCK_OFFSET_NS),
        stats.clone(),
        Arc::new(NoSystem),
    );
    let mut out = Vec::new();
    for r in &records {
        tracker.handle_record(r, &mut out);
    }
    tracker.shutdown(&mut out);
    assert_eq!(stats.snapshot().decode_errors, 0);

    let mut spans = SpanBuilder::new(None, Default::default(), "golden-host".into(), options)
        .with_id_generator(Box::<Sequential>::default());
    let mut g = Golden {
        stdout: Stream::new(),
        traces: Stream::new(),
        protobuf: Digest::new(),
        metrics: Stream::new(),
        logs: Stream::new(),
        exchanges: 0,
        reports: 0,
    };
    let mut batch = Vec::new();
    let mut lines = stdout::JsonLines::default();
    for o in &out {
        match o {
            Output::Exchange(ex) => {
                let show = g.exchanges < SHOWN;
                g.exchanges += 1;
                g.stdout.line(&stdout_line(&mut lines, o), show);
                match spans.span(ex) {
                    Ok((res, span)) => {
                        // Readable: each span in an export request of its own.
                        let one = encode(vec![(res.clone(), span.clone())]);
                        for req in &one {
                            g.traces.line(&serde_json::to_string(req).unwrap(), show);
                        }
                        batch.push((res, span));
                        if batch.len() == BATCH {
                            for req in encode(std::mem::take(&mut batch)) {
                                g.protobuf.add(&req.encode_to_vec());
                            }
                        }
                    }
                    Err(skip) => g.traces.line(&format!("span not exported: {skip:?}"), show),
                }
                let m = semconv::metrics::http_measurement(ex, spans.options()).map(|m| {
                    json!({
                        "kind": format!("{:?}", m.kind),
                        "duration_s": m.duration_s,
                        "request_body_size": m.request_body_size,
                        "response_body_size": m.response_body_size,
                        "attributes": attrs_json(&m.attributes),
                    })
                });
                g.metrics.line(&m.unwrap_or(Value::Null).to_string(), show);
            }
            Output::Report(r) => {
                g.reports += 1;
                g.stdout.line(&stdout_line(&mut lines, o), true);
                g.logs.line(&log_json(r).to_string(), true);
            }
        }
    }
    for req in encode(batch) {
        g.protobuf.add(&req.encode_to_vec());
    }
    g
}

/// The stdout exporter's line for `o`, without its newline (`lines`
/// carries what the exporter keeps from line to line).
fn stdout_line(lines: &mut stdout::JsonLines, o: &Output) -> String {
    let mut buf = Vec::new();
    assert!(lines.write(&mut buf, o));
    assert_eq!(buf.pop(), Some(b'\n'));
    String::from_utf8(buf).expect("UTF-8")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compare `actual` with the golden file (or write it with `GOLDEN_UPDATE=1`);
/// a mismatch names the first differing line.
fn check(file: &str, actual: &str, failures: &mut Vec<String>) {
    let path = golden_dir().join(file);
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (GOLDEN_UPDATE=1 writes it)", path.display()));
    if expected == actual {
        return;
    }
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    failures.push(format!(
        "{file}: differs from line {}\n  golden: {}\n  now:    {}",
        line + 1,
        expected.lines().nth(line).unwrap_or("<end>"),
        actual.lines().nth(line).unwrap_or("<end>"),
    ));
}

fn golden(recording: &str, level: CaptureLevel) {
    let g = replay(recording, level);
    let stem = format!("{}.{level}", recording.trim_end_matches(".rec.gz"));
    let mut summary = String::new();
    let _ = writeln!(summary, "recording {recording}, capture level {level}");
    let _ = writeln!(
        summary,
        "exchanges {}, connection reports {}",
        g.exchanges, g.reports
    );
    let _ = writeln!(summary, "stdout   {}", g.stdout.digest.show());
    let _ = writeln!(summary, "spans    {}", g.traces.digest.show());
    let _ = writeln!(summary, "protobuf {}", g.protobuf.show());
    let _ = writeln!(summary, "metrics  {}", g.metrics.digest.show());
    let _ = writeln!(summary, "logs     {}", g.logs.digest.show());
    assert_eq!(g.stdout.lines, g.exchanges + g.reports);
    let mut failures = Vec::new();
    check(&format!("{stem}.summary"), &summary, &mut failures);
    check(
        &format!("{stem}.stdout.jsonl"),
        &g.stdout.shown,
        &mut failures,
    );
    check(
        &format!("{stem}.traces.jsonl"),
        &g.traces.shown,
        &mut failures,
    );
    check(
        &format!("{stem}.metrics.jsonl"),
        &g.metrics.shown,
        &mut failures,
    );
    check(&format!("{stem}.logs.jsonl"), &g.logs.shown, &mut failures);
    assert!(
        failures.is_empty(),
        "golden output changed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn http1_recording_at_details_is_unchanged() {
    golden("http1.rec.gz", CaptureLevel::Details);
}

#[test]
fn http1_recording_at_full_is_unchanged() {
    golden("http1.rec.gz", CaptureLevel::Full);
}

#[test]
fn http2_recording_at_details_is_unchanged() {
    golden("http2.rec.gz", CaptureLevel::Details);
}

#[test]
fn http2_recording_at_full_is_unchanged() {
    golden("http2.rec.gz", CaptureLevel::Full);
}

#[test]
fn http2_recording_at_summary_is_unchanged() {
    golden("http2.rec.gz", CaptureLevel::Summary);
}
