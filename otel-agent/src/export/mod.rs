//! Exporters: where exchanges and connection reports go (stdout JSON, OTLP).

pub mod otlp;
pub mod stdout;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::internal_events::CaptureStats;
use semconv::model::Output;

/// The enabled sinks.
pub struct Sinks {
    /// One JSON line per exchange and report on stdout.
    pub stdout: bool,
    /// OTLP traces, metrics and logs.
    pub otlp: Option<otlp::Otlp>,
}

/// Deliver outputs to every sink until the channel closes, then flush them all.
pub async fn run(mut rx: mpsc::Receiver<Output>, mut sinks: Sinks, stats: Arc<CaptureStats>) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        if sinks.stdout {
            stdout::write_batch(&batch, &stats);
        }
        if let Some(otlp) = sinks.otlp.as_mut() {
            for o in &batch {
                match o {
                    Output::Exchange(e) => otlp.exchange(e),
                    Output::Report(r) => otlp.report(r),
                }
                otlp::exported(&stats);
            }
        }
        batch.clear();
    }
    if let Some(otlp) = sinks.otlp.take() {
        otlp.shutdown().await;
    }
}
