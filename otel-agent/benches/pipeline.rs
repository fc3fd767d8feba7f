//! Pipeline throughput without the kernel: recorded ring-buffer events (real
//! captures, `bench/record.sh`) replayed through the tracker (decoding,
//! detection, HTTP/1 and HTTP/2 parsing, exchange assembly), the linker (span
//! ids, connected traces), the span and
//! metric mapping, and OTLP protobuf encoding of the span batches, as the
//! exporter sends them; or (sink `stdout`) the JSON lines of the stdout
//! exporter, written into a buffer. Prints exchanges per second per core (CPU
//! time of this single thread).
//!
//! `--no-link` leaves the linker out (the exporter then gives ids itself), to
//! see its cost; sink `none` drops the exchanges once made (and linked), to
//! see the tracker's. `--passes N` replays exactly N times after the warm-up
//! instead of for `--secs` of CPU: fixed work, for counting instructions
//! (`bench/instructions.sh`). `--level` keeps one capture level of the two.
//!
//! `cargo bench -p otel-agent --bench pipeline [-- [--sink otlp|otlp-sdk|stdout|none] [--level summary|details] [--secs N | --passes N] [--no-link] RECORDING.rec[.gz] ...]`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;
use otel_agent::export::otlp::http_metrics::HttpHistograms;
use otel_agent::export::otlp::spans::{group_by_resource, SpanBuilder};
use otel_agent::export::otlp::RequestEncoder;
use otel_agent::export::stdout;
use otel_agent::internal_events::CaptureStats;
use otel_agent::link::ids::IdSource;
use otel_agent::link::linker::{LinkBounds, Linker};
use otel_agent::track::clock::Clock;
use otel_agent::track::tracker::Tracker;
use otel_agent_config::{CaptureLevel, Settings};
use prost::Message as _;
use semconv::model::Output;
use semconv::spans::ExchangeFacts;

/// The agent's allocator (see `main.rs`).
#[global_allocator]
static ALLOCATOR: otel_agent::allocator::MiMalloc = otel_agent::allocator::MiMalloc;

/// Spans per export request, as the exporter batches them.
const BATCH: usize = 512;
/// CPU time spent replaying each recording at each level (`--secs`).
const MEASURE: Duration = Duration::from_secs(3);
/// Bytes of stdout JSON buffered before the exporter writes them out.
const STDOUT_FLUSH: usize = 64 * 1024;

/// Where the exchanges go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    /// Span + HTTP metrics + OTLP protobuf written straight from the span
    /// record (the OTLP exporter).
    Otlp,
    /// The same through the SDK's `SpanData` and its protobuf conversion
    /// (the exporter before spans were encoded directly), for comparison.
    OtlpSdk,
    /// One JSON line each (the stdout exporter), into a reused buffer.
    Stdout,
    /// Nothing: the tracker (and the linker) alone.
    None,
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn load(path: &Path) -> Vec<Vec<u8>> {
    otel_agent::capture::recording::read(path).unwrap_or_else(|e| panic!("{e}"))
}

/// One export request's worth of spans, encoded as the gRPC exporter does
/// (grouped by resource, then protobuf); returns the encoded size.
fn encode(batch: &mut Vec<(Arc<Resource>, SpanData)>) -> usize {
    group_by_resource(std::mem::take(batch))
        .into_iter()
        .map(|(res, spans)| {
            let res = ResourceAttributesWithSchema::from(&*res);
            // The exporter keeps the batch for retries and sends a copy.
            let attempt = spans.clone();
            ExportTraceServiceRequest {
                resource_spans: group_spans_by_resource_and_scope(attempt, &res),
            }
            .encode_to_vec()
            .len()
        })
        .sum()
}

#[derive(Default)]
struct Pass {
    exchanges: u64,
    reports: u64,
    encoded_bytes: usize,
}

/// Replay every record once through a fresh tracker (and linker, when
/// `link`), counting what comes out and handing each output to `sink`,
/// then `None` once, when the replay is over.
fn drive(
    records: &[Vec<u8>],
    settings: &Arc<Settings>,
    link: bool,
    mut sink: impl FnMut(Option<Output>, &mut Pass),
) -> Pass {
    let stats = Arc::new(CaptureStats::default());
    let mut tracker = Tracker::new(settings.clone(), Clock::with_offset(0), stats.clone());
    let mut linker =
        link.then(|| Linker::new(LinkBounds::of(settings), IdSource::default(), stats));
    let mut out = Vec::with_capacity(64);
    let mut pass = Pass::default();
    let mut drain = |out: &mut Vec<Output>, pass: &mut Pass| {
        for o in out.drain(..) {
            match &o {
                Output::Exchange(_) => pass.exchanges += 1,
                Output::Report(_) => pass.reports += 1,
            }
            sink(Some(o), pass);
        }
    };
    for r in records {
        tracker.handle_record(r, &mut out);
        if let Some(l) = linker.as_mut() {
            l.link(&mut out, 0);
        }
        drain(&mut out, &mut pass);
    }
    tracker.shutdown(&mut out);
    if let Some(l) = linker.as_mut() {
        l.link(&mut out, 0);
        l.flush(&mut out);
    }
    drain(&mut out, &mut pass);
    sink(None, &mut pass);
    pass
}

/// Replay through the stdout JSON lines.
fn replay_stdout(
    records: &[Vec<u8>],
    settings: &Arc<Settings>,
    buf: &mut Vec<u8>,
    link: bool,
) -> Pass {
    let mut lines = stdout::JsonLines::default();
    drive(records, settings, link, |o, pass| {
        if let Some(o) = &o {
            assert!(lines.write(buf, o), "a JSON line");
        }
        if buf.len() >= STDOUT_FLUSH || o.is_none() {
            pass.encoded_bytes += buf.len();
            std::hint::black_box(&buf);
            buf.clear();
        }
    })
}

/// Replay through the span pipeline: spans encoded directly (`sdk` false)
/// or built as SDK `SpanData` and converted by the SDK (`sdk` true).
fn replay(
    records: &[Vec<u8>],
    settings: &Arc<Settings>,
    spans: &mut SpanBuilder,
    http: &mut HttpHistograms,
    sdk: bool,
    link: bool,
) -> Pass {
    let mut sdk_batch = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    let mut request = RequestEncoder::default();
    drive(records, settings, link, |o, pass| match o {
        Some(Output::Exchange(ex)) => {
            // As the exporter does: the facts worked out once for both.
            let facts = ExchangeFacts::of(&ex);
            http.record(&ex, &facts, spans.options());
            if sdk {
                if let Ok(span) = spans.span(&ex) {
                    sdk_batch.push(span);
                }
            } else if let Ok(span) = {
                let process = spans.resource_of(&ex.connection.process);
                spans.encoded_under(&ex, Some(&facts), &process, 0)
            } {
                batch.push(span);
            }
            if sdk_batch.len() == BATCH {
                pass.encoded_bytes += encode(&mut sdk_batch);
            }
            if batch.len() == BATCH {
                pass.encoded_bytes += request.encode(&batch).len();
                batch.clear();
            }
        }
        Some(Output::Report(r)) => {
            std::hint::black_box(semconv::logs::connection_report(&r));
        }
        None => {
            pass.encoded_bytes += encode(&mut sdk_batch);
            if !batch.is_empty() {
                pass.encoded_bytes += request.encode(&batch).len();
                batch.clear();
            }
        }
    })
}

/// Replay, dropping what comes out: the tracker (and the linker) alone.
fn replay_none(records: &[Vec<u8>], settings: &Arc<Settings>, link: bool) -> Pass {
    drive(records, settings, link, |o, _| {
        std::hint::black_box(o);
    })
}

fn main() {
    let (mut sinks, mut measure, mut paths) = (Vec::new(), MEASURE, Vec::<PathBuf>::new());
    let (mut link, mut fixed_passes, mut levels) = (true, None::<u64>, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sink" => match args.next().as_deref() {
                Some("otlp") => sinks.push(Sink::Otlp),
                Some("otlp-sdk") => sinks.push(Sink::OtlpSdk),
                Some("stdout") => sinks.push(Sink::Stdout),
                Some("none") => sinks.push(Sink::None),
                other => panic!("--sink otlp|otlp-sdk|stdout|none, not {other:?}"),
            },
            "--level" => match args.next().as_deref() {
                Some("summary") => levels.push(CaptureLevel::Summary),
                Some("details") => levels.push(CaptureLevel::Details),
                other => panic!("--level summary|details, not {other:?}"),
            },
            "--passes" => {
                let n: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--passes N");
                fixed_passes = Some(n);
            }
            "--secs" => {
                let secs: f64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--secs SECONDS");
                measure = Duration::from_secs_f64(secs);
            }
            "--no-link" => link = false,
            a if a.starts_with("--") => {} // cargo bench's own (--bench)
            a => paths.push(PathBuf::from(a)),
        }
    }
    if sinks.is_empty() {
        sinks = vec![Sink::Otlp, Sink::OtlpSdk, Sink::Stdout];
    }
    if levels.is_empty() {
        levels = vec![CaptureLevel::Summary, CaptureLevel::Details];
    }
    if paths.is_empty() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/recordings");
        paths = ["http1.rec.gz", "http2.rec.gz"]
            .iter()
            .map(|f| dir.join(f))
            .collect();
    }
    println!(
        "pipeline replay, one thread: tracker → parse → exchange → {}\
         otlp: span + metrics → OTLP protobuf; stdout: JSON lines",
        if link { "linker → " } else { "" }
    );
    for path in &paths {
        let records = load(path);
        for (sink, level) in sinks.iter().flat_map(|s| levels.iter().map(|l| (*s, *l))) {
            let mut settings = Settings::default();
            settings.capture.level = level;
            let settings = Arc::new(settings);
            let mut spans = SpanBuilder::new(
                None,
                Default::default(),
                "bench".into(),
                otel_agent::export::mapping_options(&settings),
            );
            // Exported once a minute by the agent: no replay counts an export.
            let mut http = HttpHistograms::new(spans.options().body_size_metrics, 0);
            let mut buf = Vec::with_capacity(STDOUT_FLUSH * 2);
            let mut pass = || match sink {
                Sink::Otlp => replay(&records, &settings, &mut spans, &mut http, false, link),
                Sink::OtlpSdk => replay(&records, &settings, &mut spans, &mut http, true, link),
                Sink::Stdout => replay_stdout(&records, &settings, &mut buf, link),
                Sink::None => replay_none(&records, &settings, link),
            };
            let first = pass(); // warm-up
            let (start, mut passes, mut total) = (thread_cpu(), 0u64, Pass::default());
            while fixed_passes.map_or(thread_cpu() - start < measure, |n| passes < n) {
                let p = pass();
                total.exchanges += p.exchanges;
                total.reports += p.reports;
                total.encoded_bytes += p.encoded_bytes;
                passes += 1;
            }
            let cpu = (thread_cpu() - start).as_secs_f64();
            println!(
                "{:<14} {:<8} level {:<8} {:>5} records → {} exchanges + {} connection reports per pass; \
                 {:>9.0} exchanges/s/core ({:.2} µs each), {} B of {} per exchange",
                path.file_name().map_or_else(|| "?".into(), |f| f.to_string_lossy()),
                match sink {
                    Sink::Otlp => "otlp",
                    Sink::OtlpSdk => "otlp-sdk",
                    Sink::Stdout => "stdout",
                    Sink::None => "none",
                },
                level.to_string(),
                records.len(),
                first.exchanges,
                first.reports,
                total.exchanges as f64 / cpu,
                cpu * 1e6 / total.exchanges.max(1) as f64,
                total.encoded_bytes / total.exchanges.max(1) as usize,
                match sink {
                    Sink::Otlp | Sink::OtlpSdk => "OTLP",
                    Sink::Stdout => "JSON",
                    Sink::None => "output",
                },
            );
            assert_eq!(
                total.exchanges,
                first.exchanges * passes,
                "replay is deterministic"
            );
        }
    }
}
