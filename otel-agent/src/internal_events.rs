//! The agent's own capture-health counters, in one place.
//!
//! Each counter is bumped where its event happens and read as a
//! [`StatsSnapshot`] for logs, the metrics exporter and the final summary.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bpf_probes::events::COUNTER_COUNT;

/// Reads the kernel's own counters (ring buffer full, truncations, uprobe
/// hits, ... indexed by `bpf_probes::events::Counter`): the agent passes one
/// that reads the probes' per-CPU map, so that the exporters need no handle
/// on the kernel side.
pub type KernelCounters = Arc<dyn Fn() -> [u64; COUNTER_COUNT as usize] + Send + Sync>;

macro_rules! stats {
    ($($(#[$m:meta])* $name:ident,)*) => {
        /// Live counters, shared between pipeline stages.
        #[derive(Debug, Default)]
        pub struct CaptureStats { $($(#[$m])* pub $name: AtomicU64,)* }

        /// A copy of [`CaptureStats`] at one instant.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
        pub struct StatsSnapshot { $($(#[$m])* pub $name: u64,)* }

        impl CaptureStats {
            /// Read every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

stats! {
    /// Ring-buffer records read.
    records_read,
    /// Records that could not be decoded.
    decode_errors,
    /// Data events received.
    data_events,
    /// Payload bytes received.
    bytes_captured,
    /// Stream bytes missing (truncated payloads, lost events).
    gap_bytes,
    /// Body bytes the kernel skipped on purpose (the capture level does not
    /// keep them): counted, never copied, never missing.
    bytes_skipped,
    /// Times the kernel's body-skip mark of a connection was moved.
    skip_marks,
    /// Connections announced by the kernel.
    connections,
    /// Connections detected as HTTP/1.
    connections_http1,
    /// Connections detected as HTTP/2.
    connections_http2,
    /// Connections with another protocol.
    connections_other,
    /// Connections skipped by a userspace filter.
    connections_filtered,
    /// Complete exchanges.
    exchanges,
    /// Exchanges emitted incomplete.
    partial_exchanges,
    /// HTTP parse errors (desyncs).
    parse_errors,
    /// Connection reports written.
    reports,
    /// Exchanges lost because stdout stopped taking JSON lines (a closed
    /// pipe, a full disk). (OTLP counts its own losses: span queue full,
    /// export failed.)
    exporter_stopped_exchanges,
    /// Connection reports lost because stdout stopped taking JSON lines.
    exporter_stopped_reports,
    /// Exchanges and reports written to stdout as JSON lines.
    exported,
    /// Files (libraries, static binaries) with TLS probes attached.
    tls_files_attached,
    /// TLS uprobes attached.
    uprobes_attached,
    /// TLS plaintext events received.
    tls_plaintext_events,
    /// TLS connections whose plaintext came from the OpenSSL probes.
    tls_connections_openssl,
    /// TLS connections whose plaintext came from the GnuTLS probes.
    tls_connections_gnutls,
    /// TLS connections whose plaintext came from the Go crypto/tls probes.
    tls_connections_go,
    /// Client spans whose `traceparent` id was taken already (a retry with
    /// the same header): exported as children of that id, with their own.
    client_span_ids_repeated,
    /// Spans placed by their request's `traceparent` (`tap.trace.links`).
    trace_links_traceparent,
    /// Server spans linked to the client span of the same connection.
    trace_links_connection,
    /// Client spans linked to the server span their thread was serving.
    trace_links_thread,
    /// Spans without evidence of a parent.
    trace_links_root,
    /// Spans left roots because the evidence named more than one parent.
    trace_links_root_ambiguous,
    /// Spans sent as roots after waiting `telemetry.trace_links.wait`.
    trace_links_root_timeout,
    /// Spans sent as roots because `telemetry.trace_links.max_held` were held.
    trace_links_root_full,
}

/// Add `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// Add one to a counter.
pub fn incr(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

/// Subtract `n` from a gauge-like counter (saturating at zero).
pub fn sub(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
}
