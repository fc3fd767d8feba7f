//! Process identity (executable, command line) from `/proc`, cached per pid.

use std::collections::HashMap;
use std::sync::Arc;

use semconv::model::ProcessInfo;

/// Cache of process identities, invalidated when the kernel reports an exit.
#[derive(Default)]
pub struct ProcessCache {
    by_pid: HashMap<u32, Arc<ProcessInfo>>,
}

impl ProcessCache {
    /// Identity of `pid`; `comm` (from the kernel event) is the fallback name
    /// when the process is already gone.
    pub fn get(&mut self, pid: u32, comm: &str) -> Arc<ProcessInfo> {
        self.by_pid
            .entry(pid)
            .or_insert_with(|| Arc::new(read_process(pid, comm)))
            .clone()
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

/// Read `/proc/PID/exe` and `/proc/PID/cmdline`; missing pieces stay empty.
pub fn read_process(pid: u32, comm: &str) -> ProcessInfo {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| {
            p.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string()
        })
        .unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    ProcessInfo {
        pid,
        exe,
        cmdline,
        comm: comm.to_string(),
    }
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
    fn reads_own_process() {
        let me = read_process(std::process::id(), "x");
        assert!(!me.exe.is_empty());
        assert!(!me.cmdline.is_empty());
    }

    #[test]
    fn gone_process_keeps_comm() {
        let p = read_process(u32::MAX - 1, "curl");
        assert_eq!(p.exe, "");
        assert_eq!(p.exe_name(), "curl");
    }

    #[test]
    fn comm_is_trimmed() {
        assert_eq!(comm_str(b"curl\0\0\0\0"), "curl");
        assert_eq!(comm_str(b"abc"), "abc");
    }
}
