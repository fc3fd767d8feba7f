//! Exporters: where exchanges and connection reports go.

pub mod stdout;
