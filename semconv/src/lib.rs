//! Pure mapping from what the agent captured to OpenTelemetry semantic conventions.
//!
//! The agent's capture pipeline produces two records: an [`model::Exchange`]
//! (one HTTP request/response pair, with its connection, process and TLS
//! context) and a [`model::ConnectionReport`] (one per finished connection).
//! This crate defines those records and maps them — with no kernel, no I/O
//! and no exporter in sight — onto semantic-convention names, so the mapping
//! can be tested on hand-built values.
//!
//! The outputs are neutral records ([`spans::SpanRecord`],
//! [`metrics::HttpMeasurement`], [`logs::LogRecordData`] and resource
//! attributes, all built from [`value::Attribute`]) that the agent converts
//! into its telemetry SDK's types; this crate depends on no SDK. What the
//! settings change in the mapping (known HTTP methods, opt-in attributes)
//! comes in as [`options::MappingOptions`], built once by the agent.
#![deny(missing_docs)]

pub mod attributes;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod options;
pub mod resource;
pub mod spans;
pub mod trace_context;
pub mod value;

pub use value::{AttrValue, Attribute};
