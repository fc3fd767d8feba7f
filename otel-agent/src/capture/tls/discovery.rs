//! TLS library discovery: finds OpenSSL/GnuTLS libraries, statically linked
//! binaries and Go executables, and attaches the TLS uprobes to each file once.
//!
//! Each file is opened once: its identity, its decoding and its probes all
//! come from that open file (probes are attached through `/proc/self/fd/N`),
//! so a binary replaced on disk between decode and attach cannot get probes
//! at offsets decoded from another file.
//!
//! A uprobe on a file covers every process that maps it, now and later, so
//! each file (by device and inode) is looked at once: the libraries in the
//! standard directories at start-up, then whatever running and newly exec'd
//! processes map (their executable, for static binaries such as `node`, and
//! libraries loaded from elsewhere or later with `dlopen`).
//!
//! A uprobe also pins its file's inode: a file found through a process (not
//! in a standard directory) is detached once the periodic full rescan has
//! found no process mapping it twice in a row — e.g. a library `dlclose`d and
//! deleted, or the old inode of an upgraded one.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::capture::loader::{emulated_functions, Probes, TlsLinks};
use crate::capture::tls::elf_symbols::{find_tls_functions_in_file, ElfError};
use crate::capture::tls::proc_maps::mapped_files;
use crate::internal_events::{add, incr, sub, CaptureStats};
use otel_agent_config::ProcessFilter;

/// Standard library directories scanned at start-up (the probes are built
/// for x86-64 only: `-D__TARGET_ARCH_x86`, and probe placement decodes
/// x86-64 code).
const LIBRARY_DIRS: &[&str] = &[
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
];

/// Executable directories scanned at start-up for statically linked TLS
/// (e.g. `node`), so that such a program is probed before its first call.
const EXECUTABLE_DIRS: &[&str] = &[
    "/usr/local/bin",
    "/usr/bin",
    "/bin",
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
];
/// Executables smaller than this cannot hold a static TLS library.
const MIN_STATIC_TLS_BYTES: u64 = 2 * 1024 * 1024;

/// How long after an exec its mappings are looked at again (libraries loaded late).
const RESCAN_AFTER: &[Duration] = &[Duration::from_millis(300), Duration::from_secs(2)];
/// Period of the full rescan of every process's mappings.
const FULL_SCAN_EVERY: Duration = Duration::from_secs(5);
/// Consecutive full rescans without a process mapping a file before its
/// probes are detached (a single scan can race a process mapping it).
const DETACH_AFTER_UNMAPPED_SCANS: u32 = 2;

/// A file's identity: device and inode.
type FileKey = (u64, u64);

/// A file with TLS probes attached.
struct Attached {
    /// Its path, for logs.
    shown: PathBuf,
    links: TlsLinks,
    /// Found through a process rather than in a standard directory:
    /// detached once no process maps it.
    from_process: bool,
    /// Consecutive full rescans that found no process mapping it.
    unmapped_scans: u32,
}

/// Is this file name a TLS library we probe?
pub fn is_tls_library_name(name: &str) -> bool {
    name.starts_with("libssl.so")
        || name.starts_with("libgnutls.so")
        || name.starts_with("libboringssl")
}

/// Looks at files and attaches the TLS probes to those that have TLS functions.
pub struct Discovery {
    probes: Arc<Mutex<Probes>>,
    pids: Vec<u32>,
    /// The `--exe` list (`filter.exes`): an executable no process of which
    /// is captured is not worth probing; empty: every one.
    exes: ProcessFilter,
    seen: HashSet<FileKey>,
    seen_exes: HashSet<(u32, u64, u64)>,
    attached: HashMap<FileKey, Attached>,
    stats: Arc<CaptureStats>,
}

impl Discovery {
    /// Discovery attaching through `probes`; only for `pids` when not empty.
    pub fn new(probes: Arc<Mutex<Probes>>, pids: Vec<u32>, stats: Arc<CaptureStats>) -> Self {
        Self {
            probes,
            pids,
            exes: ProcessFilter::default(),
            seen: HashSet::new(),
            seen_exes: HashSet::new(),
            attached: HashMap::new(),
            stats,
        }
    }

    /// Probe only the executables (static TLS, Go) that `exes` (the `--exe`
    /// list) captures: with `--exe`, the start-up scan no longer decodes every
    /// large binary in the standard directories (2 s each for the Go tools
    /// found on one machine). Libraries are probed whatever the list.
    pub fn only_executables(mut self, exes: &[String]) -> Self {
        self.exes = ProcessFilter {
            exes: exes.to_vec(),
            ..Default::default()
        };
        self
    }

    /// Libraries in the standard directories, large executables (static TLS),
    /// then every running process.
    pub fn initial_scan(&mut self) {
        for dir in LIBRARY_DIRS {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                if is_tls_library_name(&name.to_string_lossy()) {
                    self.consider(&entry.path(), &entry.path(), false);
                }
            }
        }
        for dir in EXECUTABLE_DIRS {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let big = entry
                    .metadata()
                    .is_ok_and(|m| m.is_file() && m.len() >= MIN_STATIC_TLS_BYTES);
                if big && self.exes.exe_matches(&entry.path().to_string_lossy(), "") {
                    self.consider(&entry.path(), &entry.path(), false);
                }
            }
        }
        self.scan_all_processes();
    }

    /// Every process's executable and TLS libraries; then detach the files
    /// found through processes that no process maps anymore.
    pub fn scan_all_processes(&mut self) {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        let mut mapped = HashSet::new();
        let me = std::process::id();
        for entry in entries.flatten() {
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            {
                if pid != me && (self.pids.is_empty() || self.pids.contains(&pid)) {
                    self.scan_process_into(pid, &mut mapped);
                }
            }
        }
        self.detach_unmapped(&mapped);
    }

    /// One process: its executable (static TLS) and its mapped TLS libraries.
    pub fn scan_process(&mut self, pid: u32) {
        self.scan_process_into(pid, &mut HashSet::new());
    }

    /// [`Discovery::scan_process`], adding the identity of every candidate
    /// file the process maps (executable, TLS libraries) to `mapped`.
    fn scan_process_into(&mut self, pid: u32, mapped: &mut HashSet<FileKey>) {
        let exe_link = PathBuf::from(format!("/proc/{pid}/exe"));
        if let Ok(meta) = std::fs::metadata(&exe_link) {
            mapped.insert((meta.dev(), meta.ino()));
            if self.seen_exes.insert((pid, meta.dev(), meta.ino())) {
                let shown = std::fs::read_link(&exe_link).unwrap_or_else(|_| exe_link.clone());
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if self
                    .exes
                    .exe_matches(&shown.to_string_lossy(), comm.trim_end())
                {
                    self.consider(&exe_link, &shown, true);
                }
            }
        }
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            return;
        };
        let mut libs: Vec<&str> = Vec::new();
        for file in mapped_files(&maps).filter(|f| is_tls_library_name(f.file_name())) {
            // The kernel's identity of the mapping: also right for a deleted file.
            mapped.insert(file.key());
            if !file.deleted && !libs.contains(&file.path) {
                libs.push(file.path);
            }
        }
        for lib in libs {
            let via_root = PathBuf::from(format!("/proc/{pid}/root{lib}"));
            // The identity `consider` keys by (differs from the kernel's on overlayfs).
            if let Ok(meta) = std::fs::metadata(&via_root) {
                mapped.insert((meta.dev(), meta.ino()));
            }
            self.consider(&via_root, Path::new(lib), true);
        }
    }

    /// Inspect `path` (shown in logs as `shown`) once per device+inode; attach
    /// if it has TLS functions. `from_process`: found through a process's
    /// mappings or executable (detached when no process maps it anymore).
    fn consider(&mut self, path: &Path, shown: &Path, from_process: bool) {
        let Ok(file) = std::fs::File::open(path) else {
            return;
        };
        let Ok(meta) = file.metadata() else {
            return;
        };
        let key = (meta.dev(), meta.ino());
        if !meta.is_file() || !self.seen.insert(key) {
            return;
        }
        let target = match find_tls_functions_in_file(&file, shown) {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(e @ ElfError::Go { .. }) => {
                info!(error = %e, "TLS probes not attached");
                return;
            }
            Err(e) => {
                debug!(error = %e, "not an ELF file with symbols");
                return;
            }
        };
        // The file decoded above, whatever `path` names by now.
        let same_file = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let result = match self.probes.lock() {
            Ok(mut probes) => probes.attach_tls(&same_file, &target, &self.pids),
            Err(_) => return,
        };
        drop(file);
        match result {
            Ok(links) => {
                let n = links.len();
                incr(&self.stats.tls_files_attached);
                add(&self.stats.uprobes_attached, n as u64);
                let functions: Vec<&str> = target.functions.iter().map(|f| f.name).collect();
                // Functions whose probes sit on emulated instructions (no single-step).
                let emulated = emulated_functions(&target);
                if let Some(go) = &target.go {
                    info!(
                        path = %shown.display(), library = target.library.as_str(), uprobes = n,
                        from_process, ?functions, go_version = %go.build.version,
                        go_module = go.build.module.as_deref().unwrap_or("-"),
                        symbols = go.symbols.as_str(), layout_tested = go.layout.tested,
                        "TLS probes attached"
                    );
                } else {
                    info!(
                        path = %shown.display(), library = target.library.as_str(), uprobes = n,
                        from_process, ?functions, ?emulated, "TLS probes attached"
                    );
                }
                let attached = Attached {
                    shown: shown.to_path_buf(),
                    links,
                    from_process,
                    unmapped_scans: 0,
                };
                self.attached.insert(key, attached);
            }
            Err(e) => warn!(path = %shown.display(), error = %e, "attaching TLS probes failed"),
        }
    }

    /// After a full rescan that found `mapped`: count the rescans each file
    /// found through a process went unmapped, and detach those unmapped for
    /// [`DETACH_AFTER_UNMAPPED_SCANS`] in a row (forgetting them, so that a
    /// process mapping one again gets it probed again).
    fn detach_unmapped(&mut self, mapped: &HashSet<FileKey>) {
        let mut stale = Vec::new();
        for (key, a) in self.attached.iter_mut().filter(|(_, a)| a.from_process) {
            if mapped.contains(key) {
                a.unmapped_scans = 0;
                continue;
            }
            a.unmapped_scans += 1;
            debug!(path = %a.shown.display(), scans = a.unmapped_scans, "TLS probes on a file no process maps");
            if a.unmapped_scans >= DETACH_AFTER_UNMAPPED_SCANS {
                stale.push(*key);
            }
        }
        for key in stale {
            let Some(a) = self.attached.remove(&key) else {
                continue;
            };
            let detached = match self.probes.lock() {
                Ok(mut probes) => probes.detach_tls(a.links),
                Err(_) => return,
            };
            self.seen.remove(&key);
            self.seen_exes.retain(|&(_, dev, ino)| (dev, ino) != key);
            sub(&self.stats.tls_files_attached, 1);
            sub(&self.stats.uprobes_attached, detached as u64);
            info!(
                path = %a.shown.display(), uprobes = detached,
                "TLS probes detached: no process maps the file anymore"
            );
        }
    }
}

/// Run discovery on its own thread: react to exec'd pids, rescan them a little
/// later (for `dlopen`), and rescan everything periodically, until `stop`.
pub fn run(mut d: Discovery, execs: Receiver<u32>, stop: Arc<AtomicBool>) {
    let mut due: Vec<(Instant, u32)> = Vec::new();
    let mut next_full = Instant::now() + FULL_SCAN_EVERY;
    while !stop.load(Ordering::Relaxed) {
        match execs.recv_timeout(Duration::from_millis(100)) {
            Ok(pid) => {
                d.scan_process(pid);
                let now = Instant::now();
                due.extend(RESCAN_AFTER.iter().map(|&after| (now + after, pid)));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        let (ready, later): (Vec<_>, Vec<_>) = due.into_iter().partition(|(t, _)| *t <= now);
        due = later;
        for (_, pid) in ready {
            d.scan_process(pid);
        }
        if now >= next_full {
            d.scan_all_processes();
            next_full = now + FULL_SCAN_EVERY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        assert!(is_tls_library_name("libssl.so.3"));
        assert!(is_tls_library_name("libssl.so.1.1"));
        assert!(is_tls_library_name("libgnutls.so.30"));
        assert!(!is_tls_library_name("libssl3.so"));
        assert!(!is_tls_library_name("libcrypto.so.3"));
    }
}
