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
    /// [`crate::events::BodySkip`] by connection id: body bytes the kernel need not copy.
    pub const BODY_SKIP: &str = "body_skip";
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "c" || x == "h") {
                out.push(p);
            }
        }
    }

    /// Per-CPU scratch is only safe through its guard (`bpf/maps/scratch.h`:
    /// a uprobe program can be preempted while it holds the slot). Checked on
    /// the source, where the rule is written: no file but the map's own
    /// header names the `scratch` map, and every function that takes the
    /// slot gives it back.
    #[test]
    fn per_cpu_scratch_is_used_only_through_its_guard() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("bpf");
        let mut files = Vec::new();
        sources(&root, &mut files);
        assert!(files.len() > 5, "C sources found under {}", root.display());
        let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            let rel = f.strip_prefix(&root).unwrap().display().to_string();
            if rel == "maps/scratch.h" {
                continue;
            }
            // Code lines only: not comment lines, not the #include of the
            // guard (a trailing comment on a code line counts as code).
            let code = text.lines().enumerate().filter(|(_, l)| {
                let t = l.trim_start();
                let comment = t.starts_with("/*") || t.starts_with('*') || t.starts_with("//");
                !(comment || t.starts_with("#include"))
            });
            for (n, line) in code {
                for (i, _) in line.match_indices("scratch") {
                    let before = line[..i].chars().next_back().unwrap_or(' ');
                    let after = line[i + "scratch".len()..].chars().next().unwrap_or(' ');
                    assert!(
                        is_ident(before) || is_ident(after),
                        "{rel}, code line {}: names the per-CPU `scratch` map; use scratch_acquire()",
                        n + 1
                    );
                }
            }
            let acquires = text.matches("scratch_acquire(").count();
            let releases = text.matches("scratch_release(").count();
            assert_eq!(
                acquires, releases,
                "{rel}: every scratch_acquire() needs its scratch_release()"
            );
        }
    }
}
