//! Kernel capture: load and attach the eBPF programs, find the TLS code to
//! probe, and read the ring buffer. The only part of the agent that talks to
//! the kernel through aya.

pub mod kernel_features;
pub mod loader;
pub mod reader;
pub mod recording;
pub mod skip_marks;
pub mod tls;
