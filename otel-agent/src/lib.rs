//! otel-agent: HTTP capture from the kernel, exported as OpenTelemetry.
//!
//! The folders are the pipeline, and data flows one way through them:
//! [`capture`] (aya: load and attach the probes, find TLS code, read the ring
//! buffer) → [`track`] (connections, offsets, roles, process identity; the
//! parsers of the `protocols` crate; exchange assembly at the capture level)
//! → [`link`] (connected traces: every exchange's span ids, on evidence)
//! → [`export`] (stdout JSON, OTLP spans, metrics and logs through the pure
//! mapping of the `semconv` crate). Only `capture` touches the kernel, and the
//! tracker reads the running system through one seam
//! ([`track::process::SystemView`]), so everything after the ring buffer is
//! bytes in, records out, and unit-tested that way. [`agent`] wires the
//! stages together; [`main`](../otel_agent/index.html) is the command line.
#![deny(missing_docs)]

pub mod agent;
pub mod allocator;
pub mod capture;
pub mod cli;
pub mod export;
pub mod fuzzing;
pub mod internal_events;
pub mod link;
pub mod track;
