//! Connected traces: span ids given once, upstream of every sink, from the
//! evidence the tracker collected (`track::link_evidence`).

pub mod ids;
pub mod linker;
