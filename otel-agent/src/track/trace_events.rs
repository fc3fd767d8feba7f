//! `--trace-events`: log every probe decision for the processes a filter selects.
//!
//! In the spirit of a BPF trace, to debug a capture that looks unhealthy: each
//! event of a matching process is logged at INFO under the target
//! `otel_agent::track::trace_events` with what the agent decided to do with it.

use std::fmt;
use std::str::FromStr;

use semconv::model::ProcessInfo;

/// Which part of the pipeline an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    /// Socket lifecycle and syscall data events.
    Socket,
    /// TLS handshake and plaintext probe events.
    Tls,
    /// Protocol detection, parsing and exchanges.
    Http,
}

impl Module {
    fn parse(s: &str) -> Option<Vec<Module>> {
        match s {
            "socket" => Some(vec![Module::Socket]),
            "tls" => Some(vec![Module::Tls]),
            "http" => Some(vec![Module::Http]),
            "all" | "*" => Some(vec![Module::Socket, Module::Tls, Module::Http]),
            _ => None,
        }
    }
}

/// A filter: `pid=N`, `exe=NAME|PATH`, `module=socket|tls|http|all`, comma-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// Only this process id.
    pub pid: Option<u32>,
    /// Only this executable (file name or full path).
    pub exe: Option<String>,
    /// Modules to log (empty: all).
    pub modules: Vec<Module>,
}

/// A filter string that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("bad --trace-events filter {0:?}: expected comma-separated pid=N, exe=NAME, module=socket|tls|http|all")]
pub struct BadTraceFilter(String);

impl FromStr for TraceFilter {
    type Err = BadTraceFilter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadTraceFilter(s.to_string());
        let mut f = TraceFilter::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            match k {
                "pid" => f.pid = Some(v.parse().map_err(|_| bad())?),
                "exe" => f.exe = Some(v.to_string()),
                "module" => f.modules.extend(Module::parse(v).ok_or_else(bad)?),
                _ => return Err(bad()),
            }
        }
        Ok(f)
    }
}

impl fmt::Display for TraceFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid={:?} exe={:?} modules={:?}",
            self.pid, self.exe, self.modules
        )
    }
}

impl TraceFilter {
    /// Does this filter select events of `module` for process `p`?
    pub fn selects(&self, p: &ProcessInfo, module: Module) -> bool {
        if !self.modules.is_empty() && !self.modules.contains(&module) {
            return false;
        }
        if self.pid.is_some_and(|pid| pid != p.pid) {
            return false;
        }
        match &self.exe {
            Some(exe) => exe == &p.exe || exe == p.exe_name() || exe == &p.comm,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, exe: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            exe: exe.into(),
            command_args: Vec::new(),
            comm: "c".into(),
            ..Default::default()
        }
    }

    #[test]
    fn parses_and_selects() {
        let f: TraceFilter = "exe=curl,module=tls".parse().unwrap();
        assert!(f.selects(&proc(1, "/usr/bin/curl"), Module::Tls));
        assert!(!f.selects(&proc(1, "/usr/bin/curl"), Module::Socket));
        assert!(!f.selects(&proc(1, "/usr/bin/wget"), Module::Tls));
        let f: TraceFilter = "pid=42".parse().unwrap();
        assert!(f.selects(&proc(42, "/x"), Module::Http));
        assert!(!f.selects(&proc(43, "/x"), Module::Http));
        assert!("pid=x".parse::<TraceFilter>().is_err());
        assert!("module=nope".parse::<TraceFilter>().is_err());
        assert!("what".parse::<TraceFilter>().is_err());
    }
}
