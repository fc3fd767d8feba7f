//! Loads the embedded eBPF object into the kernel and attaches its programs.
//!
//! Together with [`crate::capture::reader`], the only module that talks to aya: every
//! stage after it works on plain bytes and is unit-testable without a kernel.

use std::path::Path;

use aya::maps::{Array, HashMap, MapData, PerCpuArray, ProgramArray, RingBuf};

use crate::capture::skip_marks::KernelSkipMarks;
use aya::programs::uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLinkId, UProbeScope};
use aya::programs::{TracePoint, UProbe};
use aya::{Ebpf, EbpfLoader};
use bpf_probes::events::{AgentConfig, Counter, COUNTER_COUNT};
use bpf_probes::{maps, programs, PROBES};
use tracing::{debug, info, warn};

use crate::capture::kernel_features;
use crate::capture::tls::elf_symbols::{TlsLibrary, TlsTarget};
use crate::capture::tls::hooks::TLS_HOOKS;

/// Every tracepoint program: (program name, category, tracepoint).
const TRACEPOINTS: &[(&str, &str, &str)] = &[
    ("enter_connect", "syscalls", "sys_enter_connect"),
    ("exit_connect", "syscalls", "sys_exit_connect"),
    ("exit_accept", "syscalls", "sys_exit_accept"),
    ("exit_accept4", "syscalls", "sys_exit_accept4"),
    ("enter_close", "syscalls", "sys_enter_close"),
    ("process_exit", "sched", "sched_process_exit"),
    ("process_exec", "sched", "sched_process_exec"),
    ("enter_read", "syscalls", "sys_enter_read"),
    ("exit_read", "syscalls", "sys_exit_read"),
    ("enter_write", "syscalls", "sys_enter_write"),
    ("exit_write", "syscalls", "sys_exit_write"),
    ("enter_readv", "syscalls", "sys_enter_readv"),
    ("exit_readv", "syscalls", "sys_exit_readv"),
    ("enter_writev", "syscalls", "sys_enter_writev"),
    ("exit_writev", "syscalls", "sys_exit_writev"),
    ("enter_sendto", "syscalls", "sys_enter_sendto"),
    ("exit_sendto", "syscalls", "sys_exit_sendto"),
    ("enter_recvfrom", "syscalls", "sys_enter_recvfrom"),
    ("exit_recvfrom", "syscalls", "sys_exit_recvfrom"),
    ("enter_sendmsg", "syscalls", "sys_enter_sendmsg"),
    ("exit_sendmsg", "syscalls", "sys_exit_sendmsg"),
    ("enter_recvmsg", "syscalls", "sys_enter_recvmsg"),
    ("exit_recvmsg", "syscalls", "sys_exit_recvmsg"),
    ("enter_sendfile64", "syscalls", "sys_enter_sendfile64"),
    ("exit_sendfile64", "syscalls", "sys_exit_sendfile64"),
];

const TRACEFS: &str = "/sys/kernel/tracing";

/// Errors while loading or attaching the probes.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not running as root.
    #[error("otel-agent must run as root (it loads eBPF programs); try: sudo otel-agent")]
    NotRoot,
    /// The kernel lacks features the probes use (named, with the release
    /// that brought each).
    #[error("{0}")]
    KernelFeatures(String),
    /// tracefs is not mounted and could not be mounted.
    #[error("tracefs is not mounted at {TRACEFS} and mounting it failed: {0} (try: mount -t tracefs nodev {TRACEFS})")]
    Tracefs(std::io::Error),
    /// The object failed to load (verifier, map creation).
    #[error("loading the eBPF object failed: {0}")]
    Load(Box<aya::EbpfError>),
    /// A program failed to load or attach.
    #[error("program {program} ({category}:{name}): {source}")]
    Program {
        /// Program name.
        program: &'static str,
        /// Tracepoint category.
        category: &'static str,
        /// Tracepoint name.
        name: &'static str,
        /// The kernel's answer (includes the verifier log when it refused).
        source: Box<aya::programs::ProgramError>,
    },
    /// A map is missing or has the wrong type.
    #[error("map {0}: {1}")]
    Map(&'static str, aya::maps::MapError),
    /// A map the object must define is absent.
    #[error("map {0} is missing from the eBPF object")]
    MissingMap(&'static str),
}

/// What the probes need to know before they start.
pub struct ProbeOptions {
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    pub ring_buffer_bytes: u32,
    /// Capture only these tgids (empty: all).
    pub pids: Vec<u32>,
    /// Attach everything but make every program return at once (benchmarks).
    pub probes_only: bool,
    /// Do not capture accepted (ingress) connections.
    pub no_ingress: bool,
    /// Do not capture connected (egress) connections.
    pub no_egress: bool,
    /// Capture only these service ports (`None`: all).
    pub ports: Option<Box<dyn Fn(u16) -> bool + Send + Sync>>,
    /// Payload bytes captured per data event (≤ 16 KiB).
    pub payload_cap: u32,
    /// Connections tracked in the kernel at most (LRU beyond).
    pub max_connections: u32,
    /// No body is kept: the kernel walks HTTP/2 frames and does not copy
    /// DATA payloads.
    pub h2_walk: bool,
}

impl std::fmt::Debug for ProbeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeOptions")
            .field("ring_buffer_bytes", &self.ring_buffer_bytes)
            .field("pids", &self.pids)
            .field("probes_only", &self.probes_only)
            .field("no_ingress", &self.no_ingress)
            .field("no_egress", &self.no_egress)
            .field("ports", &self.ports.is_some())
            .field("h2_walk", &self.h2_walk)
            .finish()
    }
}

/// The functions of `target` whose probes all sit on instructions the kernel
/// emulates (no single-step per hit; see [`crate::capture::tls::uprobe_sites`]).
pub fn emulated_functions(target: &TlsTarget) -> Vec<&'static str> {
    TLS_HOOKS
        .iter()
        .filter(|h| h.library == target.library)
        .filter(|h| target.function(h.function).is_some_and(|f| h.emulated(f)))
        .map(|h| h.function)
        .collect()
}

/// The uprobes attached to one file: (program, function, link) each.
#[derive(Debug, Default)]
pub struct TlsLinks(Vec<(&'static str, &'static str, UProbeLinkId)>);

impl TlsLinks {
    /// Number of uprobes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing is attached.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The loaded, attached probes. Dropping it detaches everything.
pub struct Probes {
    ebpf: Ebpf,
    counters: PerCpuArray<MapData, u64>,
    /// Libraries whose programs the kernel refused (Go's read their attach
    /// cookie: Linux 5.15): not attached, the rest of capture unaffected.
    unsupported: Vec<TlsLibrary>,
}

impl Probes {
    /// Check privileges, mount tracefs if needed, load, configure and attach.
    pub fn load(opts: &ProbeOptions) -> Result<Self, LoadError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(LoadError::NotRoot);
        }
        let (missing, unknown) = kernel_features::probe_all();
        for (f, e) in &unknown {
            warn!(feature = f.name, error = %e, "could not probe for a kernel feature; trying anyway");
        }
        if !missing.is_empty() {
            return Err(LoadError::KernelFeatures(
                kernel_features::describe_missing(&missing),
            ));
        }
        ensure_tracefs()?;
        let mut ebpf = EbpfLoader::new()
            // `active_io` is task storage, which aya creates but has no
            // userspace type for (the agent never reads it).
            .allow_unsupported_maps()
            .map_max_entries(maps::EVENTS, opts.ring_buffer_bytes)
            .map_max_entries(maps::CONNS, opts.max_connections.max(1024))
            .load(PROBES)
            .map_err(|e| LoadError::Load(Box::new(e)))?;
        configure(&mut ebpf, opts)?;
        install_tail_calls(&mut ebpf)?;
        for &(program, category, name) in TRACEPOINTS {
            let err = |source| LoadError::Program {
                program,
                category,
                name,
                source: Box::new(source),
            };
            let tp: &mut TracePoint = typed_program(&mut ebpf, program, category, name)?;
            tp.load().map_err(err)?;
            tp.attach(category, name).map_err(err)?;
            debug!(program, tracepoint = %format!("{category}:{name}"), "attached");
        }
        info!(tracepoints = TRACEPOINTS.len(), "probes attached");
        let mut loaded = Vec::new();
        let mut unsupported = Vec::new();
        for (h, program) in TLS_HOOKS
            .iter()
            .flat_map(|h| h.programs().map(move |p| (h, p)))
        {
            if loaded.contains(&program) || unsupported.contains(&h.library) {
                continue;
            }
            let function = h.function;
            let err = |source| LoadError::Program {
                program,
                category: "uprobe",
                name: function,
                source: Box::new(source),
            };
            let up: &mut UProbe = typed_program(&mut ebpf, program, "uprobe", function)?;
            match up.load() {
                Ok(()) => loaded.push(program),
                // bpf_get_attach_cookie from uprobes: Linux 5.15.
                Err(e) if h.library == TlsLibrary::Go => {
                    warn!(program, error = %e, "Go crypto/tls probes unavailable (they need Linux >= 5.15); Go HTTPS is not captured");
                    unsupported.push(h.library);
                }
                Err(e) => return Err(err(e)),
            }
        }
        let counters = ebpf
            .take_map(maps::COUNTERS)
            .ok_or(LoadError::MissingMap(maps::COUNTERS))?;
        let counters =
            PerCpuArray::try_from(counters).map_err(|e| LoadError::Map(maps::COUNTERS, e))?;
        Ok(Self {
            ebpf,
            counters,
            unsupported,
        })
    }

    /// Attach the TLS uprobes to the functions of `target` found in the file
    /// at `path` (a uprobe on a file covers every process that maps it); only
    /// for `pids` when not empty. Returns the links, for [`Probes::detach_tls`].
    pub fn attach_tls(
        &mut self,
        path: &Path,
        target: &TlsTarget,
        pids: &[u32],
    ) -> Result<TlsLinks, LoadError> {
        let mut links = TlsLinks::default();
        if self.unsupported.contains(&target.library) {
            return Ok(links);
        }
        // Go's probes read their release's struct layout from the cookie.
        let cookie = target.go.as_ref().map(|g| g.layout.cookie());
        let placements = TLS_HOOKS
            .iter()
            .filter(|h| h.library == target.library)
            .filter_map(|h| Some((h.function, h.placements(target.function(h.function)?))))
            .flat_map(|(function, ps)| ps.into_iter().map(move |(p, o)| (function, p, o)));
        for (function, program, offset) in placements {
            let err = |source| LoadError::Program {
                program,
                category: "uprobe",
                name: function,
                source: Box::new(source),
            };
            let up: &mut UProbe = typed_program(&mut self.ebpf, program, "uprobe", function)?;
            let scopes: Vec<UProbeScope> = if pids.is_empty() {
                vec![UProbeScope::AllProcesses]
            } else {
                pids.iter()
                    .filter_map(|&p| std::num::NonZeroU32::new(p))
                    .map(UProbeScope::OneProcess)
                    .collect()
            };
            for scope in scopes {
                let point = UProbeAttachPoint {
                    location: UProbeAttachLocation::AbsoluteOffset(offset),
                    cookie,
                };
                match up.attach(point, path, scope) {
                    Ok(id) => links.0.push((program, function, id)),
                    Err(e) => {
                        // Leave nothing half-attached behind.
                        self.detach_tls(links);
                        return Err(err(e));
                    }
                }
            }
        }
        Ok(links)
    }

    /// Detach uprobes attached by [`Probes::attach_tls`]; returns how many
    /// were detached (a failure is logged and the rest still detached).
    pub fn detach_tls(&mut self, links: TlsLinks) -> usize {
        let mut detached = 0;
        for (program, function, id) in links.0 {
            let result = typed_program::<UProbe>(&mut self.ebpf, program, "uprobe", function)
                .and_then(|up| {
                    up.detach(id).map_err(|source| LoadError::Program {
                        program,
                        category: "uprobe",
                        name: function,
                        source: Box::new(source),
                    })
                });
            match result {
                Ok(()) => detached += 1,
                Err(e) => warn!(error = %e, "detaching a TLS uprobe failed"),
            }
        }
        detached
    }

    /// Take the ring buffer (once) for the reader.
    pub fn take_ring_buffer(&mut self) -> Result<RingBuf<MapData>, LoadError> {
        let map = self
            .ebpf
            .take_map(maps::EVENTS)
            .ok_or(LoadError::MissingMap(maps::EVENTS))?;
        RingBuf::try_from(map).map_err(|e| LoadError::Map(maps::EVENTS, e))
    }

    /// Take the `body_skip` map (once) for the tracker.
    pub fn take_skip_marks(&mut self) -> Result<KernelSkipMarks, LoadError> {
        let map = self
            .ebpf
            .take_map(maps::BODY_SKIP)
            .ok_or(LoadError::MissingMap(maps::BODY_SKIP))?;
        let map = HashMap::try_from(map).map_err(|e| LoadError::Map(maps::BODY_SKIP, e))?;
        Ok(KernelSkipMarks(map))
    }

    /// Current values of the kernel counters, summed over CPUs, with
    /// [`Counter::RecursionMisses`] summed over the loaded programs.
    pub fn counters(&self) -> [u64; COUNTER_COUNT as usize] {
        let mut out = [0u64; COUNTER_COUNT as usize];
        for c in Counter::ALL {
            if let Ok(values) = self.counters.get(&(c as u32), 0) {
                out[c as usize] = values.iter().copied().fold(0u64, u64::saturating_add);
            }
        }
        out[Counter::RecursionMisses as usize] = self.recursion_misses();
        out
    }

    /// Runs of our programs the kernel skipped because another BPF program
    /// was running on the same CPU: the `recursion_misses` the kernel keeps
    /// per program (shown in its fdinfo since 5.12; aya does not expose it).
    fn recursion_misses(&self) -> u64 {
        use std::os::fd::{AsFd, AsRawFd};
        self.ebpf
            .programs()
            .filter_map(|(_, p)| p.fd().ok())
            .filter_map(|fd| {
                let raw = fd.as_fd().as_raw_fd();
                std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}")).ok()
            })
            .map(|info| fdinfo_field(&info, "recursion_misses"))
            .fold(0u64, u64::saturating_add)
    }
}

/// Let a child process pay for detaching the probes, so that the agent
/// exits as soon as its work is done.
///
/// The kernel unregisters each uprobe and tracepoint under a global mutex
/// and waits for an RCU grace period while holding it: ~0.1–0.2 s each
/// here, 11.5 s for 84 uprobes and the tracepoints (strace on close(2); from
/// several threads at once no faster). A forked child holds the same
/// descriptors, so the agent's own closes only drop references; the child
/// closes stdin/stdout/stderr first (readers of the agent's output see the
/// end at once) and exits, and the kernel detaches everything as it goes.
/// Called last, after every output is flushed.
pub fn leave_detaching_to_a_child() {
    // SAFETY: fork in a multi-threaded process; the child only calls close
    // and _exit, which are async-signal-safe, and touches no memory.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above; in the child, nothing else runs.
        unsafe {
            libc::close(0);
            libc::close(1);
            libc::close(2);
            libc::_exit(0);
        }
    }
    if pid < 0 {
        debug!("fork failed: the probes are detached by the agent itself");
    }
}

/// The value of `field` in a `/proc/<pid>/fdinfo/<fd>` text (0 if absent).
fn fdinfo_field(info: &str, field: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Load the shared exit handler and put it in its program-array slot; the
/// per-syscall exit programs tail-call it.
/// The program `program` of the object as a `T` (TracePoint, UProbe), with
/// errors naming it and its attach point.
fn typed_program<'a, T>(
    ebpf: &'a mut Ebpf,
    program: &'static str,
    category: &'static str,
    name: &'static str,
) -> Result<&'a mut T, LoadError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let err = |source| LoadError::Program {
        program,
        category,
        name,
        source: Box::new(source),
    };
    let prog = ebpf
        .program_mut(program)
        .ok_or(aya::programs::ProgramError::UnexpectedProgramType)
        .map_err(err)?;
    prog.try_into().map_err(err)
}

fn install_tail_calls(ebpf: &mut Ebpf) -> Result<(), LoadError> {
    let slots = [(0, programs::DATA_EXIT_MAIN), (1, programs::TLS_WRITE_MAIN)];
    for (slot, program) in slots {
        let (category, name) = ("syscalls", "(tail call)");
        let err = |source| LoadError::Program {
            program,
            category,
            name,
            source: Box::new(source),
        };
        let tp: &mut TracePoint = typed_program(ebpf, program, category, name)?;
        tp.load().map_err(err)?;
        let fd = tp
            .fd()
            .map_err(err)?
            .try_clone()
            .map_err(|e| err(e.into()))?;
        let map = ebpf
            .map_mut(maps::DATA_EXIT_JMP)
            .ok_or(LoadError::MissingMap(maps::DATA_EXIT_JMP))?;
        let mut jmp =
            ProgramArray::try_from(map).map_err(|e| LoadError::Map(maps::DATA_EXIT_JMP, e))?;
        jmp.set(slot, &fd, 0)
            .map_err(|e| LoadError::Map(maps::DATA_EXIT_JMP, e))?;
    }
    Ok(())
}

/// How much waits in the ring buffer before the kernel wakes the reader: an
/// eighth of the buffer, at most 64 KiB (the reader also drains every
/// [`crate::capture::reader::DRAIN_EVERY`]).
fn wakeup_bytes(ring_buffer_bytes: u32) -> u32 {
    (ring_buffer_bytes / 8).min(64 * 1024)
}

fn configure(ebpf: &mut Ebpf, opts: &ProbeOptions) -> Result<(), LoadError> {
    let config = AgentConfig {
        self_tgid: std::process::id(),
        filter_pids: u32::from(!opts.pids.is_empty()),
        probes_only: u32::from(opts.probes_only),
        no_ingress: u32::from(opts.no_ingress),
        no_egress: u32::from(opts.no_egress),
        filter_ports: u32::from(opts.ports.is_some()),
        payload_cap: opts.payload_cap,
        wakeup_bytes: wakeup_bytes(opts.ring_buffer_bytes),
        h2_walk: u32::from(opts.h2_walk),
        _pad: 0,
    };
    let map = ebpf
        .map_mut(maps::AGENT_CONFIG)
        .ok_or(LoadError::MissingMap(maps::AGENT_CONFIG))?;
    let mut array: Array<_, AgentConfig> =
        Array::try_from(map).map_err(|e| LoadError::Map(maps::AGENT_CONFIG, e))?;
    array
        .set(0, config, 0)
        .map_err(|e| LoadError::Map(maps::AGENT_CONFIG, e))?;
    if let Some(allowed) = &opts.ports {
        let map = ebpf
            .map_mut(maps::PORT_FILTER)
            .ok_or(LoadError::MissingMap(maps::PORT_FILTER))?;
        let mut bits: Array<_, u64> =
            Array::try_from(map).map_err(|e| LoadError::Map(maps::PORT_FILTER, e))?;
        for word in 0..1024u32 {
            let v = (0..64u32).fold(0u64, |acc, b| {
                let port = u16::try_from(word * 64 + b).unwrap_or(u16::MAX);
                if allowed(port) {
                    acc | (1u64 << b)
                } else {
                    acc
                }
            });
            bits.set(word, v, 0)
                .map_err(|e| LoadError::Map(maps::PORT_FILTER, e))?;
        }
    }
    if !opts.pids.is_empty() {
        let map = ebpf
            .map_mut(maps::PID_FILTER)
            .ok_or(LoadError::MissingMap(maps::PID_FILTER))?;
        let mut filter: HashMap<_, u32, u8> =
            HashMap::try_from(map).map_err(|e| LoadError::Map(maps::PID_FILTER, e))?;
        for &pid in &opts.pids {
            filter
                .insert(pid, 1, 0)
                .map_err(|e| LoadError::Map(maps::PID_FILTER, e))?;
        }
    }
    Ok(())
}

/// Mount tracefs at /sys/kernel/tracing when no tracefs is visible.
fn ensure_tracefs() -> Result<(), LoadError> {
    let mounted = |p: &str| {
        Path::new(p)
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    };
    if mounted(TRACEFS) || mounted("/sys/kernel/debug/tracing") {
        return Ok(());
    }
    info!(path = TRACEFS, "tracefs not mounted: mounting it");
    let c = |s: &str| {
        std::ffi::CString::new(s).map_err(|e| LoadError::Tracefs(std::io::Error::other(e)))
    };
    let (src, target, fstype) = (c("nodev")?, c(TRACEFS)?, c("tracefs")?);
    // SAFETY: all pointers are valid NUL-terminated strings; data may be null.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(LoadError::Tracefs(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fdinfo_field;

    #[test]
    fn fdinfo_fields_are_read_by_name() {
        let info = "pos:\t0\nflags:\t02000002\nprog_type:\t2\nrun_time_ns:\t0\n\
                    run_cnt:\t0\nrecursion_misses:\t17\nverified_insns:\t96\n";
        assert_eq!(fdinfo_field(info, "recursion_misses"), 17);
        assert_eq!(fdinfo_field(info, "run_cnt"), 0);
        assert_eq!(fdinfo_field(info, "absent"), 0);
        assert_eq!(
            fdinfo_field("recursion_misses:\tnot a number", "recursion_misses"),
            0
        );
    }
}
