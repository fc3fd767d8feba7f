//! otel-agent's eBPF programs and the Rust side of the kernel ↔ userspace contract.
//!
//! The programs are C (CO-RE), compiled by clang in `build.rs` and embedded
//! here as one object. Every event they write has a `#[repr(C)]` mirror in
//! [`events`]; the C header `bpf/include/events.h` and the tests in
//! [`events`] pin the same sizes and offsets, so the two cannot drift apart.
#![deny(missing_docs)]

pub mod events;

/// The compiled eBPF object (ELF with BTF), ready for `aya::Ebpf::load`.
pub static PROBES: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/agent.bpf.o"));

/// Names of the maps in [`PROBES`] that userspace touches.
pub mod maps {
    /// Ring buffer of events.
    pub const EVENTS: &str = "events";
    /// Per-CPU counters indexed by [`crate::events::Counter`].
    pub const COUNTERS: &str = "counters";
    /// One [`crate::events::AgentConfig`].
    pub const AGENT_CONFIG: &str = "agent_config";
    /// Tgids captured when `AgentConfig::filter_pids` is set.
    pub const PID_FILTER: &str = "pid_filter";
    /// Allowed service ports (a 65536-bit bitmap) when `AgentConfig::filter_ports` is set.
    pub const PORT_FILTER: &str = "port_filter";
    /// Tracked connections by `tgid << 32 | fd`.
    pub const CONNS: &str = "conns";
    /// Program array holding the shared data-syscall exit handler.
    pub const DATA_EXIT_JMP: &str = "data_exit_jmp";
}

/// Program names in [`PROBES`] that are loaded but reached only by tail call.
pub mod programs {
    /// The shared data-syscall exit handler (slot 0 of [`crate::maps::DATA_EXIT_JMP`]).
    pub const DATA_EXIT_MAIN: &str = "data_exit_main";
    /// Emits confirmed TLS write plaintext (slot 1 of [`crate::maps::DATA_EXIT_JMP`]).
    pub const TLS_WRITE_MAIN: &str = "tls_write_main";
}
