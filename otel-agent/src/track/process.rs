//! Process identity (executable, command line) from `/proc`, cached per pid,
//! and [`SystemView`]: the one seam through which the tracker reads the
//! running system.

use std::collections::HashMap;
use std::sync::Arc;

use bpf_probes::events::ExecEvent;
use otel_agent_config::{CaptureSettings, Settings};
use semconv::model::ProcessInfo;

/// Processes remembered at most; past that the cache starts over.
const MAX_CACHED: usize = 16 * 1024;

/// Every read the tracker makes of the running system: `/proc` in the agent
/// ([`ProcFs`]), nothing at all when a recording is replayed ([`NoSystem`]),
/// so that a replay gives the same output on any machine.
pub trait SystemView: Send + Sync {
    /// `/proc/PID/exe`, without the ` (deleted)` mark.
    fn exe(&self, pid: u32) -> Option<String>;
    /// `/proc/PID/comm`, without the newline.
    fn comm(&self, pid: u32) -> Option<String>;
    /// `/proc/PID/cmdline`: NUL-separated arguments.
    fn cmdline(&self, pid: u32) -> Option<Vec<u8>>;
    /// `/proc/PID/cgroup`.
    fn cgroup(&self, pid: u32) -> Option<String>;
    /// Is a TCP socket listening on `port` in `pid`'s network namespace?
    fn listening(&self, pid: u32, port: u16) -> bool;
}

/// The running system, read from `/proc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcFs;

impl SystemView for ProcFs {
    fn exe(&self, pid: u32) -> Option<String> {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| {
                p.to_string_lossy()
                    .trim_end_matches(" (deleted)")
                    .to_string()
            })
    }

    fn comm(&self, pid: u32) -> Option<String> {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .map(|c| c.trim_end_matches('\n').to_string())
    }

    fn cmdline(&self, pid: u32) -> Option<Vec<u8>> {
        std::fs::read(format!("/proc/{pid}/cmdline")).ok()
    }

    fn cgroup(&self, pid: u32) -> Option<String> {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()
    }

    fn listening(&self, pid: u32, port: u16) -> bool {
        ["tcp", "tcp6"].iter().any(|f| {
            std::fs::read_to_string(format!("/proc/{pid}/net/{f}"))
                .is_ok_and(|table| listens_on(&table, port))
        })
    }
}

/// Does a `/proc/net/tcp`-format table hold a listening socket on `port`?
fn listens_on(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|l| {
        let mut cols = l.split_whitespace();
        let local = cols.nth(1).unwrap_or("");
        let state = cols.nth(1).unwrap_or("");
        state == "0A"
            && local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
                == Some(port)
    })
}

/// A system where every process is already gone (replays and tests): the
/// identity is what the kernel events carry.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSystem;

impl SystemView for NoSystem {
    fn exe(&self, _pid: u32) -> Option<String> {
        None
    }
    fn comm(&self, _pid: u32) -> Option<String> {
        None
    }
    fn cmdline(&self, _pid: u32) -> Option<Vec<u8>> {
        None
    }
    fn cgroup(&self, _pid: u32) -> Option<String> {
        None
    }
    fn listening(&self, _pid: u32, _port: u16) -> bool {
        false
    }
}

/// Cache of process identities, invalidated when the kernel reports an exit
/// or an exec, and checked against the task name of each new connection.
pub struct ProcessCache {
    by_pid: HashMap<u32, Arc<ProcessInfo>>,
    /// Command lines are redacted with these settings (none: kept as read).
    capture: Option<Arc<Settings>>,
    system: Arc<dyn SystemView>,
}

impl Default for ProcessCache {
    fn default() -> Self {
        Self::new(Arc::new(ProcFs), None)
    }
}

impl ProcessCache {
    /// A cache reading `system`, whose command lines are redacted by
    /// `settings.capture` when given.
    pub fn new(system: Arc<dyn SystemView>, settings: Option<Arc<Settings>>) -> Self {
        Self {
            by_pid: HashMap::new(),
            capture: settings,
            system,
        }
    }

    /// The system this cache reads.
    pub fn system(&self) -> &dyn SystemView {
        &*self.system
    }

    fn redaction(&self) -> Option<&CaptureSettings> {
        self.capture.as_deref().map(|s| &s.capture)
    }

    /// Identity of `pid`; `comm` (from the kernel event) is the fallback name
    /// when the process is already gone.
    pub fn get(&mut self, pid: u32, comm: &str) -> Arc<ProcessInfo> {
        if self.by_pid.len() >= MAX_CACHED && !self.by_pid.contains_key(&pid) {
            // Bounded: exec'd processes without connections never report an exit.
            self.by_pid.clear();
        }
        let system = &*self.system;
        if self
            .by_pid
            .get(&pid)
            .is_some_and(|p| is_stale(system, p, comm))
        {
            self.by_pid.remove(&pid);
        }
        let capture = self.capture.as_deref().map(|s| &s.capture);
        self.by_pid
            .entry(pid)
            .or_insert_with(|| Arc::new(read_process(system, pid, comm, capture)))
            .clone()
    }

    /// The process exec'd a new image: forget the old identity and read the
    /// new one now, completed with what the kernel reported at exec (path,
    /// comm, arguments) when the process is already gone.
    pub fn exec(&mut self, ev: &ExecEvent) {
        let pid = ev.hdr.tgid;
        let comm = comm_str(&ev.comm);
        let mut info = read_process(&*self.system, pid, &comm, self.redaction());
        if info.exe.is_empty() {
            info.exe = ev.filename();
        }
        if info.command_args.is_empty() {
            info.command_args = command_args(ev.args(), self.redaction());
        }
        if self.by_pid.len() >= MAX_CACHED {
            self.by_pid.clear();
        }
        self.by_pid.insert(pid, Arc::new(info));
    }

    /// The process exited: its pid may be reused.
    pub fn forget(&mut self, pid: u32) {
        self.by_pid.remove(&pid);
    }

    /// Number of cached processes.
    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }
}

/// Is the cached identity of a pid another process than the task named
/// `comm` that uses the pid now? An exec'd process that exits without a
/// connection reports no exit, so its pid can be reused — by a fork, which
/// reports no exec — behind the cache's back. A different task name is only a
/// hint (threads can be renamed): the executable decides, when it can be read.
fn is_stale(system: &dyn SystemView, cached: &ProcessInfo, comm: &str) -> bool {
    if comm.is_empty() || cached.comm == comm {
        return false;
    }
    if cached.exe.is_empty() {
        // Nothing confirmed about it: a fresh read at least has the right name.
        return true;
    }
    system.exe(cached.pid).is_some_and(|exe| exe != cached.exe)
}

/// The argument strings of a command from their NUL-separated form (empty
/// ones dropped), credentials masked when `capture` is given.
pub fn command_args(raw: &[u8], capture: Option<&CaptureSettings>) -> Vec<String> {
    let args: Vec<_> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy)
        .collect();
    match capture {
        Some(c) => c.redact_command_args(args.iter().map(|a| a.as_ref())),
        None => args.into_iter().map(|a| a.into_owned()).collect(),
    }
}

/// Read the executable and command line of `pid`; missing pieces stay empty.
/// An empty `comm` is read from the system too; the command line is
/// redacted when `capture` is given.
pub fn read_process(
    system: &dyn SystemView,
    pid: u32,
    comm: &str,
    capture: Option<&CaptureSettings>,
) -> ProcessInfo {
    let exe = system.exe(pid).unwrap_or_default();
    let comm = if comm.is_empty() {
        system.comm(pid).unwrap_or_default()
    } else {
        comm.to_string()
    };
    let command_args = system
        .cmdline(pid)
        .map(|raw| command_args(&raw, capture))
        .unwrap_or_default();
    let (container_id, k8s_pod_uid) = system
        .cgroup(pid)
        .map(|c| container_of_cgroup(&c))
        .unwrap_or((None, None));
    ProcessInfo {
        pid,
        exe,
        command_args,
        comm,
        container_id,
        k8s_pod_uid,
    }
}

/// Container id (the last 64-hex-digit token) and Kubernetes pod UID (`pod<uid>`)
/// from the contents of `/proc/PID/cgroup`.
pub fn container_of_cgroup(cgroup: &str) -> (Option<String>, Option<String>) {
    let mut container = None;
    let mut pod = None;
    for line in cgroup.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        for segment in path.split('/') {
            let base = segment
                .trim_end_matches(".scope")
                .trim_end_matches(".slice");
            for t in base.split(['-', ':', '_', '.']) {
                if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                    container = Some(t.to_ascii_lowercase());
                }
            }
            if let Some(i) = segment.rfind("pod") {
                let uid: String = segment
                    .get(i + 3..)
                    .unwrap_or("")
                    .chars()
                    .take_while(|c| c.is_ascii_hexdigit() || *c == '-' || *c == '_')
                    .map(|c| if c == '_' { '-' } else { c })
                    .collect();
                if uid.len() == 36 {
                    pod = Some(uid);
                }
            }
        }
    }
    (container, pod)
}

/// The task name from a NUL-padded kernel `comm`.
pub fn comm_str(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_args_are_redacted_when_asked() {
        let raw = b"curl\0-u\0alice:pw\0-H\0X-Api-Key: k 1\0https://h/?token=t\0";
        assert_eq!(
            command_args(raw, None),
            [
                "curl",
                "-u",
                "alice:pw",
                "-H",
                "X-Api-Key: k 1",
                "https://h/?token=t"
            ]
        );
        let c = CaptureSettings::default();
        // One entry per argument, an argument with spaces kept whole.
        assert_eq!(
            command_args(raw, Some(&c)),
            [
                "curl",
                "-u",
                "alice:[REDACTED]",
                "-H",
                "X-Api-Key: [REDACTED]",
                "https://h/?token=REDACTED"
            ]
        );
        assert!(command_args(b"\0\0", Some(&c)).is_empty());
    }

    #[test]
    fn reads_own_process() {
        let me = read_process(&ProcFs, std::process::id(), "x", None);
        assert!(!me.exe.is_empty());
        assert!(!me.command_args.is_empty());
    }

    #[test]
    fn stale_identity_of_a_reused_pid_is_read_again() {
        let me = std::process::id();
        let mut cache = ProcessCache::default();
        let fresh = cache.get(me, "");
        assert!(!fresh.comm.is_empty(), "task name read from /proc");
        // The pid once belonged to an exec'd `sleep` that exited unnoticed.
        let sleep = ProcessInfo {
            exe: "/usr/bin/sleep".into(),
            comm: "sleep".into(),
            ..read_process(&ProcFs, me, "sleep", None)
        };
        cache.by_pid.insert(me, Arc::new(sleep));
        // Same task name: trusted as is.
        assert_eq!(cache.get(me, "sleep").exe, "/usr/bin/sleep");
        // Another task name and another executable: read again.
        assert_eq!(cache.get(me, "worker").exe, fresh.exe);
        // A renamed thread of the same executable keeps the cached identity.
        let cached = cache.get(me, "worker");
        assert!(Arc::ptr_eq(&cached, &cache.get(me, "renamed-thread")));
    }

    #[test]
    fn gone_process_keeps_comm() {
        let p = read_process(&ProcFs, u32::MAX - 1, "curl", None);
        assert_eq!(p.exe, "");
        assert_eq!(p.exe_name(), "curl");
    }

    #[test]
    fn container_and_pod_from_cgroup_paths() {
        let id = "3f4a9c1b2d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";
        let docker = format!("0::/system.slice/docker-{id}.scope\n");
        assert_eq!(container_of_cgroup(&docker), (Some(id.into()), None));
        let k8s = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_7081_92a3_b4c5d6e7f809.slice/cri-containerd-{id}.scope"
        );
        assert_eq!(
            container_of_cgroup(&k8s),
            (
                Some(id.into()),
                Some("1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809".into())
            )
        );
        let cgroupfs =
            format!("12:pids:/kubepods/besteffort/pod1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809/{id}");
        assert_eq!(container_of_cgroup(&cgroupfs).0, Some(id.into()));
        assert_eq!(
            container_of_cgroup("0::/user.slice/session-3.scope"),
            (None, None)
        );
        assert_eq!(container_of_cgroup("garbage\u{0}::::pod"), (None, None));
    }

    #[test]
    fn comm_is_trimmed() {
        assert_eq!(comm_str(b"curl\0\0\0\0"), "curl");
        assert_eq!(comm_str(b"abc"), "abc");
    }
}
