//! Reads the kernel ring buffer asynchronously and hands each record to the tracker.

use std::sync::Arc;
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::capture::recording::Recorder;
use crate::export::stdout::Stdout;
use crate::internal_events::{incr, CaptureStats};
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

/// Outputs handed to the exporter at least this often while draining.
const FORWARD_BATCH: usize = 64;

/// Where the reader's outputs go: JSON lines written right here (the
/// default mode: the exchange is freed by the thread that built it, with no
/// hand-off), the exporter's queue (OTLP), or both.
pub struct Outlet {
    /// The exporter's queue, when an exporter needs the outputs.
    pub tx: Option<mpsc::Sender<Output>>,
    /// JSON lines on stdout, written by the reader.
    pub stdout: Option<Stdout>,
}

/// Drain the ring buffer into `tracker` until `stop` turns true, sending
/// outputs to `outlet`. A full export queue makes the reader wait: the burst then
/// waits in the kernel ring buffer (already allocated), which counts what it
/// cannot hold, instead of growing the agent's memory.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    ring: RingBuf<MapData>,
    mut tracker: Tracker,
    mut linker: Linker,
    mut outlet: Outlet,
    mut stop: watch::Receiver<bool>,
    stats: Arc<CaptureStats>,
    mut recorder: Option<Recorder>,
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
                drain_ring(ring, &mut tracker, &mut recorder, &mut out, &mut linker, &mut outlet, &stats).await;
            }
            _ = sweep.tick() => {
                let evicted = tracker.sweep(Clock::monotonic_now(), IDLE_EVICT.as_nanos() as u64, &mut out);
                if evicted > 0 {
                    info!(evicted, "idle connections reported and forgotten");
                }
                forward(&mut outlet, &mut out, &mut linker, &stats).await;
            }
            guard = fd.readable_mut() => {
                let mut guard = guard?;
                let ring = guard.get_inner_mut();
                drain_ring(ring, &mut tracker, &mut recorder, &mut out, &mut linker, &mut outlet, &stats).await;
                guard.clear_ready();
            }
            _ = stop.changed() => break,
        }
    }
    // Whatever the kernel wrote before we stopped is still ours: drain it,
    // report the live connections, and wait for the exporter to take it all.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ring = fd.get_mut();
    drain_ring(
        ring,
        &mut tracker,
        &mut recorder,
        &mut out,
        &mut linker,
        &mut outlet,
        &stats,
    )
    .await;
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
    forward(&mut outlet, &mut out, &mut linker, &stats).await;
    info!(live_connections_reported = live, "capture stopped");
    Ok(())
}

/// Handle every record waiting in the ring buffer, handing the outputs to
/// the exporter as they come.
async fn drain_ring(
    ring: &mut RingBuf<MapData>,
    tracker: &mut Tracker,
    recorder: &mut Option<Recorder>,
    out: &mut Vec<Output>,
    linker: &mut Linker,
    outlet: &mut Outlet,
    stats: &CaptureStats,
) {
    while let Some(item) = ring.next() {
        record(recorder, &item);
        tracker.handle_record(&item, out);
        drop(item);
        if out.len() >= FORWARD_BATCH {
            forward(outlet, out, linker, stats).await;
        }
    }
    forward(outlet, out, linker, stats).await;
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

/// Count an output lost because the exporter had stopped, by what it is.
fn exporter_stopped(o: &Output, stats: &CaptureStats) {
    match o {
        Output::Exchange(_) => incr(&stats.exporter_stopped_exchanges),
        Output::Report(_) => incr(&stats.exporter_stopped_reports),
    }
}

/// Give the exchanges of `out` their span ids (the linker may hold some a
/// while) and hand what is ready to the exporter, waiting while its queue is
/// full. Only a closed queue (the exporter is gone) drops, and counts, outputs.
async fn forward(
    outlet: &mut Outlet,
    out: &mut Vec<Output>,
    linker: &mut Linker,
    stats: &CaptureStats,
) {
    linker.link(out, Clock::monotonic_now());
    if let Some(lines) = outlet.stdout.as_mut() {
        lines.write_batch(out, stats);
    }
    let Some(tx) = outlet.tx.as_ref() else {
        out.clear();
        return;
    };
    for o in out.drain(..) {
        let o = match tx.try_send(o) {
            Ok(()) => continue,
            Err(mpsc::error::TrySendError::Full(o)) => {
                incr(&stats.export_queue_waits);
                o
            }
            Err(mpsc::error::TrySendError::Closed(o)) => {
                exporter_stopped(&o, stats);
                continue;
            }
        };
        if let Err(mpsc::error::SendError(o)) = tx.send(o).await {
            exporter_stopped(&o, stats);
        }
    }
}
