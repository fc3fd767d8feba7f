//! otel-agent: HTTP capture from the kernel, exported as OpenTelemetry.
//!
//! Data flows one way, one module per stage:
//! [`loader`] (aya: load and attach the probes) → [`reader`] (ring buffer)
//! → [`conntrack`] (connections, offsets, roles; TLS plaintext from the
//! uprobes that [`tls_discovery`] attaches) → [`protocols`] (detection,
//! HTTP/1, TLS handshake) → [`exchange`] (assembly at the capture level) →
//! [`exporters`]. Only `loader` and `reader` touch the kernel; everything
//! after them is plain bytes in, records out, and unit-tested that way.
#![deny(missing_docs)]

pub mod agent;
pub mod allocator;
pub mod cli;
pub mod clock;
pub mod conntrack;
pub mod elf_symbols;
pub mod exchange;
pub mod exporters;
pub mod fuzzing;
pub mod internal_events;
pub mod loader;
pub mod proc_maps;
pub mod process;
pub mod reader;
pub mod recording;
pub mod tls_discovery;
pub mod trace_events;
pub mod uprobe_sites;
