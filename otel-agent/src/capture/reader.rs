//! Reads the kernel ring buffer asynchronously and hands each record to the tracker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::capture::recording::Recorder;
use crate::export::otlp::Otlp;
use crate::export::stdout::Stdout;
use crate::internal_events::CaptureStats;
use crate::link::linker::Linker;
use crate::track::clock::Clock;
use crate::track::tracker::Tracker;
use semconv::model::Output;

/// How often the ring buffer is drained even without a wakeup: the kernel
/// wakes the reader only once `wakeup_bytes` wait (see `loader`), so a quiet
/// ring holds its last records at most this long.
pub const DRAIN_EVERY: Duration = Duration::from_millis(20);
/// How often idle connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// A connection with no event for this long is reported (`evicted`) and forgotten.
const IDLE_EVICT: Duration = Duration::from_secs(15 * 60);

/// Outputs delivered at least this often while draining (the linker sees
/// them in batches).
const FORWARD_BATCH: usize = 64;

/// Records read in one go before the reader looks at its timers and at the
/// stop signal again: a reader behind a ring buffer that the kernel keeps
/// filling would otherwise never leave the drain (nor stop when asked).
const DRAIN_BUDGET: usize = 16 * 1024;

/// How long the reader works before it lets the threads waiting for its
/// CPU go first (`sched_yield`): a thread of the observed server woken on
/// this CPU waits for the reader's burst to end, and bursts of a few
/// milliseconds were what the server's paced p99 latency grew by, whatever
/// the agent's priority (BENCHMARKS.md, "The reader's bursts").
const YIELD_EVERY: Duration = Duration::from_micros(100);
/// Records handled between two looks at the clock.
const YIELD_CHECK: usize = 16;

/// When the reader lets the server go first ([`YIELD_EVERY`]): only while it
/// keeps up — in a drain's first sixteenth of the ring buffer (a drain that
/// reads more is behind a producer that outpaces it, and yielding would let
/// the ring fill), and while no sink is behind ([`Outlet::behind`]).
pub struct Pace {
    /// Bytes a drain reads before it stops yielding.
    drain_bytes: usize,
    /// When the reader last yielded (or started the drain).
    slice: Instant,
}

impl Pace {
    /// The pace for a ring buffer of `ring_bytes`.
    pub fn for_ring(ring_bytes: u32) -> Self {
        Self {
            drain_bytes: ring_bytes as usize / 16,
            slice: Instant::now(),
        }
    }

    /// After `read` records (`bytes` of them) of this drain: yield the CPU
    /// if the slice is over and the reader keeps up.
    fn after(&mut self, read: usize, bytes: usize, outlet: &Outlet) {
        if read.is_multiple_of(YIELD_CHECK)
            && bytes < self.drain_bytes
            && self.slice.elapsed() >= YIELD_EVERY
            && !outlet.behind()
        {
            std::thread::yield_now();
            self.slice = Instant::now();
        }
    }
}

/// Drains at shutdown, at most: what the ring buffer held when the agent
/// was asked to stop (a few budgets at most), not a load that goes on.
const FINAL_DRAINS: usize = 16;

/// Where the reader's outputs go, delivered right here: JSON lines on
/// stdout, and OTLP (spans encoded, HTTP metrics recorded, connection
/// reports made log records, then queued for the export tasks). Nothing is
/// handed to another task as an exchange: each exchange is freed by the
/// thread that built it, which keeps the allocator's retained memory small
/// (BENCHMARKS.md, "JSON lines written by the reader").
#[derive(Default)]
pub struct Outlet {
    /// OTLP spans, HTTP metrics and logs.
    pub otlp: Option<Otlp>,
    /// JSON lines on stdout.
    pub stdout: Option<Stdout>,
}

impl Outlet {
    /// Deliver `out` to every sink, and empty it.
    fn deliver(&mut self, out: &mut Vec<Output>, stats: &CaptureStats) {
        if let Some(lines) = self.stdout.as_mut() {
            lines.write_batch(out, stats);
        }
        if let Some(otlp) = self.otlp.as_mut() {
            for o in out.iter() {
                match o {
                    Output::Exchange(e) => otlp.exchange(e),
                    Output::Report(r) => otlp.report(r),
                }
            }
        }
        out.clear();
    }

    /// Is a sink behind: OTLP spans waiting for the collector
    /// ([`Otlp::behind`])? The reader then stops yielding its CPU
    /// ([`YIELD_EVERY`]): letting the server go first would only make spans
    /// for the queue to shed.
    fn behind(&self) -> bool {
        self.otlp.as_ref().is_some_and(Otlp::behind)
    }

    /// Housekeeping between batches: the HTTP metrics' export, idle
    /// processes' last values.
    fn tick(&mut self) {
        if let Some(otlp) = self.otlp.as_mut() {
            otlp.expire_idle();
        }
    }

    /// Flush what the sinks still hold (queued spans and log records, the
    /// last metrics), within the OTLP exporter's shutdown bounds.
    pub async fn shutdown(self) {
        if let Some(otlp) = self.otlp {
            otlp.shutdown().await;
        }
    }
}

/// Drain the ring buffer into `tracker` until `stop` turns true, delivering
/// outputs to `outlet`, which is handed back (to be shut down) with how the
/// reading ended. Delivery never waits: a sink that cannot keep up drops
/// and counts (the OTLP span and log queues), and a reader that cannot keep
/// up leaves the burst in the kernel ring buffer, which counts what it
/// cannot hold.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    ring: RingBuf<MapData>,
    tracker: Tracker,
    linker: Linker,
    mut outlet: Outlet,
    stop: watch::Receiver<bool>,
    stats: Arc<CaptureStats>,
    recorder: Option<Recorder>,
    pace: Pace,
) -> (std::io::Result<()>, Outlet) {
    let ended = read(
        ring,
        tracker,
        linker,
        &mut outlet,
        stop,
        stats,
        recorder,
        pace,
    )
    .await;
    (ended, outlet)
}

#[allow(clippy::too_many_arguments)]
async fn read(
    ring: RingBuf<MapData>,
    mut tracker: Tracker,
    mut linker: Linker,
    outlet: &mut Outlet,
    mut stop: watch::Receiver<bool>,
    stats: Arc<CaptureStats>,
    mut recorder: Option<Recorder>,
    mut pace: Pace,
) -> std::io::Result<()> {
    // SAFETY: the RingBuf owns its map fd, which stays open and unchanged
    // for as long as the AsyncFd (which owns the RingBuf) lives.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    let mut out = Vec::with_capacity(64);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut drain = tokio::time::interval(DRAIN_EVERY);
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = drain.tick() => {
                let ring = fd.get_mut();
                linker.expire(Clock::monotonic_now(), &mut out);
                drain_ring(ring, &mut tracker, &mut recorder, &mut out, &mut linker, outlet, &stats, &mut pace);
                outlet.tick();
            }
            _ = sweep.tick() => {
                let evicted = tracker.sweep(Clock::monotonic_now(), IDLE_EVICT.as_nanos() as u64, &mut out);
                if evicted > 0 {
                    info!(evicted, "idle connections reported and forgotten");
                }
                forward(outlet, &mut out, &mut linker, &stats);
            }
            guard = fd.readable_mut() => {
                let mut guard = guard?;
                let ring = guard.get_inner_mut();
                let more = drain_ring(ring, &mut tracker, &mut recorder, &mut out, &mut linker, outlet, &stats, &mut pace);
                if !more {
                    guard.clear_ready();
                }
            }
            _ = stop.changed() => break,
        }
    }
    // Whatever the kernel wrote before we stopped is still ours: drain it,
    // and report the live connections.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ring = fd.get_mut();
    for _ in 0..FINAL_DRAINS {
        let more = drain_ring(
            ring,
            &mut tracker,
            &mut recorder,
            &mut out,
            &mut linker,
            outlet,
            &stats,
            &mut pace,
        );
        if !more {
            break;
        }
    }
    if let Some(r) = recorder.take() {
        match r.finish() {
            Ok(records) => info!(records, "recording written"),
            Err(e) => warn!(error = %e, "recording incomplete"),
        }
    }
    let live = tracker.len();
    tracker.shutdown(&mut out);
    linker.link(&mut out, Clock::monotonic_now());
    linker.flush(&mut out);
    forward(outlet, &mut out, &mut linker, &stats);
    info!(live_connections_reported = live, "capture stopped");
    Ok(())
}

/// Handle the records waiting in the ring buffer, [`DRAIN_BUDGET`] at
/// most, delivering the outputs as they come; true when the budget ran out
/// (more may wait).
#[allow(clippy::too_many_arguments)]
fn drain_ring(
    ring: &mut RingBuf<MapData>,
    tracker: &mut Tracker,
    recorder: &mut Option<Recorder>,
    out: &mut Vec<Output>,
    linker: &mut Linker,
    outlet: &mut Outlet,
    stats: &CaptureStats,
    pace: &mut Pace,
) -> bool {
    let mut read = 0;
    let mut bytes = 0;
    pace.slice = Instant::now();
    while let Some(item) = ring.next() {
        record(recorder, &item);
        tracker.handle_record(&item, out);
        bytes += item.len();
        drop(item);
        if out.len() >= FORWARD_BATCH {
            forward(outlet, out, linker, stats);
        }
        read += 1;
        pace.after(read, bytes, outlet);
        if read == DRAIN_BUDGET {
            forward(outlet, out, linker, stats);
            return true;
        }
    }
    forward(outlet, out, linker, stats);
    false
}

/// Append a record to the recording, if any; a write error ends the recording
/// (logged) without stopping capture.
fn record(recorder: &mut Option<Recorder>, item: &[u8]) {
    if let Some(r) = recorder {
        if let Err(e) = r.write(item) {
            warn!(error = %e, "recording stopped");
            *recorder = None;
        }
    }
}

/// Give the exchanges of `out` their span ids (the linker may hold some a
/// while) and deliver what is ready.
fn forward(outlet: &mut Outlet, out: &mut Vec<Output>, linker: &mut Linker, stats: &CaptureStats) {
    linker.link(out, Clock::monotonic_now());
    outlet.deliver(out, stats);
}
