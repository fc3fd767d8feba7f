//! Which traffic is captured: direction, processes, ports, loopback.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::capture::{exe_matcher_matches, file_name};
use crate::values::{Matcher, PortRange};

/// Which side of connections is captured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DirectionFilter {
    /// Only connections the process accepted (it is the server).
    Ingress,
    /// Only connections the process opened (it is the client).
    Egress,
    /// Both.
    #[default]
    All,
}

impl DirectionFilter {
    /// `ingress`, `egress`, `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectionFilter::Ingress => "ingress",
            DirectionFilter::Egress => "egress",
            DirectionFilter::All => "all",
        }
    }

    /// Are connections accepted by the process (server side) captured?
    pub fn allows_ingress(self) -> bool {
        self != DirectionFilter::Egress
    }

    /// Are connections opened by the process (client side) captured?
    pub fn allows_egress(self) -> bool {
        self != DirectionFilter::Ingress
    }
}

impl fmt::Display for DirectionFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DirectionFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ingress" => Ok(DirectionFilter::Ingress),
            "egress" => Ok(DirectionFilter::Egress),
            "all" => Ok(DirectionFilter::All),
            _ => Err(format!(
                "unknown direction {s:?}: expected one of ingress, egress, all"
            )),
        }
    }
}

/// One process matcher: every non-empty condition must hold; within a
/// condition, any value may match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessMatcher {
    /// Executable matchers, tried on the full path and on the file name.
    pub exe: Vec<Matcher>,
    /// Task name (`comm`) matchers.
    pub comm: Vec<Matcher>,
    /// Process ids.
    pub pid: Vec<u32>,
}

impl ProcessMatcher {
    /// Does the process match?
    pub fn matches(&self, pid: u32, exe_path: &str, comm: &str) -> bool {
        (self.pid.is_empty() || self.pid.contains(&pid))
            && (self.exe.is_empty() || self.exe.iter().any(|m| exe_matcher_matches(m, exe_path)))
            && (self.comm.is_empty() || self.comm.iter().any(|m| m.matches(comm)))
    }

    /// Only pids: decidable in the kernel.
    fn pid_only(&self) -> bool {
        !self.pid.is_empty() && self.exe.is_empty() && self.comm.is_empty()
    }
}

/// Server ports captured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortFilter {
    /// Only these; empty: all.
    pub include: Vec<PortRange>,
    /// Never these (wins over `include`).
    pub exclude: Vec<PortRange>,
}

impl PortFilter {
    /// Is a connection to server port `port` captured?
    pub fn allows(&self, port: u16) -> bool {
        (self.include.is_empty() || self.include.iter().any(|r| r.contains(port)))
            && !self.exclude.iter().any(|r| r.contains(port))
    }
}

/// Which traffic is captured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessFilter {
    /// Only these process ids (CLI `--pid`); empty: all. Combined with
    /// `include`/`exclude`; see [`kernel_pids`](Self::kernel_pids) for the
    /// set to push into the kernel.
    pub pids: Vec<u32>,
    /// Only processes whose executable path or name equals one of these (CLI
    /// `--exe`). Empty: all.
    pub exes: Vec<String>,
    /// Which side of connections is captured.
    pub direction: DirectionFilter,
    /// Capture only processes matching one of these; empty: all.
    pub include: Vec<ProcessMatcher>,
    /// Never capture processes matching one of these (wins over `include`).
    pub exclude: Vec<ProcessMatcher>,
    /// Server ports captured.
    pub ports: PortFilter,
    /// Skip connections whose both ends are loopback addresses.
    pub ignore_loopback: bool,
}

/// The filter section under its section name.
pub type FilterSettings = ProcessFilter;

impl ProcessFilter {
    /// Does a process with this executable path (and task name) pass the `exes`
    /// (CLI `--exe`) list? Only that list: [`process_allowed`](Self::process_allowed)
    /// applies everything.
    pub fn exe_matches(&self, exe_path: &str, comm: &str) -> bool {
        if self.exes.is_empty() {
            return true;
        }
        let name = file_name(exe_path);
        self.exes
            .iter()
            .any(|e| e == exe_path || e == name || (exe_path.is_empty() && e == comm))
    }

    /// Is this process captured? `pids`, `exes`, `include` and `exclude` all apply.
    pub fn process_allowed(&self, pid: u32, exe_path: &str, comm: &str) -> bool {
        (self.pids.is_empty() || self.pids.contains(&pid))
            && self.exe_matches(exe_path, comm)
            && (self.include.is_empty()
                || self.include.iter().any(|m| m.matches(pid, exe_path, comm)))
            && !self.exclude.iter().any(|m| m.matches(pid, exe_path, comm))
    }

    /// Pids to push into the kernel's pid filter, sorted; empty: no kernel-side
    /// filter (every process reaches user space, where
    /// [`process_allowed`](Self::process_allowed) decides). This is the `pids`
    /// list intersected with `include` when every include entry is pid-only,
    /// less pid-only excludes. It is only an early cut: `process_allowed` stays
    /// the authority (e.g. when the intersection is empty, nothing is allowed,
    /// but the kernel filter is off).
    pub fn kernel_pids(&self) -> Vec<u32> {
        let from_cli: Option<BTreeSet<u32>> =
            (!self.pids.is_empty()).then(|| self.pids.iter().copied().collect());
        let from_include: Option<BTreeSet<u32>> = (!self.include.is_empty()
            && self.include.iter().all(ProcessMatcher::pid_only))
        .then(|| {
            self.include
                .iter()
                .flat_map(|m| m.pid.iter().copied())
                .collect()
        });
        let mut set = match (from_cli, from_include) {
            (None, None) => return Vec::new(),
            (Some(a), None) | (None, Some(a)) => a,
            (Some(a), Some(b)) => a.intersection(&b).copied().collect(),
        };
        for m in self.exclude.iter().filter(|m| m.pid_only()) {
            for p in &m.pid {
                set.remove(p);
            }
        }
        set.into_iter().collect()
    }

    /// Is a connection to server port `port` captured?
    pub fn port_allowed(&self, port: u16) -> bool {
        self.ports.allows(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exe_filter_matches_path_or_name() {
        let f = ProcessFilter {
            exes: vec!["curl".into(), "/usr/bin/python3.11".into()],
            ..Default::default()
        };
        assert!(f.exe_matches("/usr/bin/curl", "curl"));
        assert!(f.exe_matches("/usr/bin/python3.11", "python3"));
        assert!(!f.exe_matches("/usr/bin/wget", "wget"));
        assert!(ProcessFilter::default().exe_matches("/x", "x"));
    }

    #[test]
    fn include_and_exclude() {
        let f = ProcessFilter {
            include: vec![
                ProcessMatcher {
                    exe: vec![Matcher::Prefix("/opt/app/".into())],
                    ..Default::default()
                },
                ProcessMatcher {
                    comm: vec![Matcher::regex("^python").unwrap()],
                    ..Default::default()
                },
                ProcessMatcher {
                    pid: vec![42],
                    ..Default::default()
                },
            ],
            exclude: vec![ProcessMatcher {
                exe: vec![Matcher::Exact("healthcheck".into())],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(f.process_allowed(1, "/opt/app/bin/server", "server"));
        assert!(f.process_allowed(2, "/usr/bin/python3.12", "python3"));
        assert!(f.process_allowed(42, "/usr/bin/curl", "curl"));
        assert!(!f.process_allowed(3, "/usr/bin/curl", "curl"));
        assert!(
            !f.process_allowed(4, "/opt/app/bin/healthcheck", "healthcheck"),
            "exclude wins"
        );
        // Nothing pid-only across the board: no kernel filter.
        assert!(f.kernel_pids().is_empty());
    }

    #[test]
    fn all_conditions_of_one_matcher_must_hold() {
        let m = ProcessMatcher {
            exe: vec![Matcher::Exact("node".into())],
            pid: vec![7, 8],
            ..Default::default()
        };
        assert!(m.matches(7, "/usr/bin/node", "node"));
        assert!(!m.matches(9, "/usr/bin/node", "node"));
        assert!(!m.matches(7, "/usr/bin/deno", "deno"));
    }

    #[test]
    fn kernel_pids() {
        let pid_only = |p: &[u32]| ProcessMatcher {
            pid: p.to_vec(),
            ..Default::default()
        };
        let mut f = ProcessFilter {
            include: vec![pid_only(&[3, 1]), pid_only(&[2])],
            exclude: vec![pid_only(&[2])],
            ..Default::default()
        };
        assert_eq!(f.kernel_pids(), vec![1, 3]);
        assert!(
            f.process_allowed(1, "", "")
                && !f.process_allowed(2, "", "")
                && !f.process_allowed(4, "", "")
        );
        f.pids = vec![3, 9];
        assert_eq!(f.kernel_pids(), vec![3]);
        f.include.clear();
        assert_eq!(f.kernel_pids(), vec![3, 9]);
        assert!(ProcessFilter::default().kernel_pids().is_empty());
    }

    #[test]
    fn ports_and_direction() {
        let p = PortFilter {
            include: vec!["8000-8099".parse().unwrap(), "443".parse().unwrap()],
            exclude: vec!["8081".parse().unwrap()],
        };
        assert!(p.allows(8000) && p.allows(443) && !p.allows(8081) && !p.allows(80));
        assert!(PortFilter::default().allows(1));
        assert!(
            DirectionFilter::Ingress.allows_ingress() && !DirectionFilter::Ingress.allows_egress()
        );
        assert!(DirectionFilter::All.allows_ingress() && DirectionFilter::All.allows_egress());
    }
}
