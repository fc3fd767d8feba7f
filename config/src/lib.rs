//! otel-agent's configuration model.
//!
//! Configuration comes in two stages, as in ripgrep: raw input (YAML, the
//! environment, CLI flags) and the validated [`Settings`] the agent runs
//! with. Every field has a default, so an empty input is a working agent.
#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;

/// How much of an exchange is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaptureLevel {
    /// Nothing is exported for the exchange.
    None,
    /// Method, URL, status, sizes, timing: no headers, no body.
    Summary,
    /// Summary plus headers (sensitive ones redacted).
    #[default]
    Details,
    /// Details plus bodies up to the body limit.
    Full,
}

impl CaptureLevel {
    /// `none`, `summary`, `details`, `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureLevel::None => "none",
            CaptureLevel::Summary => "summary",
            CaptureLevel::Details => "details",
            CaptureLevel::Full => "full",
        }
    }
}

impl fmt::Display for CaptureLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a capture level.
#[derive(Debug, thiserror::Error)]
#[error("unknown capture level {0:?}: expected one of none, summary, details, full")]
pub struct BadCaptureLevel(String);

impl FromStr for CaptureLevel {
    type Err = BadCaptureLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "summary" => Ok(Self::Summary),
            "details" => Ok(Self::Details),
            "full" => Ok(Self::Full),
            _ => Err(BadCaptureLevel(s.to_string())),
        }
    }
}

/// Header names redacted by default (compared case-insensitively).
pub const DEFAULT_REDACTED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-xsrf-token",
    "api-key",
];

/// The value that replaces a redacted header value.
pub const REDACTED: &str = "[REDACTED]";

/// What to keep of each exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureSettings {
    /// Level for exchanges no rule matches.
    pub level: CaptureLevel,
    /// Body bytes kept per message at level `full`.
    pub max_body_bytes: usize,
    /// Header names (lowercase) whose values are redacted.
    pub redact_headers: Vec<String>,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        Self {
            level: CaptureLevel::default(),
            max_body_bytes: 64 * 1024,
            redact_headers: DEFAULT_REDACTED_HEADERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl CaptureSettings {
    /// Should this header's value be redacted?
    pub fn is_redacted(&self, name: &str) -> bool {
        self.redact_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Which processes are captured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessFilter {
    /// Only these process ids (pushed into the kernel). Empty: all.
    pub pids: Vec<u32>,
    /// Only processes whose executable path or name equals one of these. Empty: all.
    pub exes: Vec<String>,
}

impl ProcessFilter {
    /// Does a process with this executable path (and task name) pass the exe filter?
    pub fn exe_matches(&self, exe_path: &str, comm: &str) -> bool {
        if self.exes.is_empty() {
            return true;
        }
        let name = exe_path.rsplit('/').next().unwrap_or(exe_path);
        self.exes
            .iter()
            .any(|e| e == exe_path || e == name || (exe_path.is_empty() && e == comm))
    }
}

/// Kernel and pipeline limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Ring buffer size in bytes (power of two).
    pub ring_buffer_bytes: u32,
    /// Exchanges and reports waiting for the exporter before new ones are dropped (and counted).
    pub export_queue: usize,
    /// Largest HTTP header block parsed.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ring_buffer_bytes: 16 * 1024 * 1024,
            export_queue: 16 * 1024,
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Validated settings the agent runs with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// What to keep of each exchange.
    pub capture: CaptureSettings,
    /// Which processes are captured.
    pub filter: ProcessFilter,
    /// Kernel and pipeline limits.
    pub limits: Limits,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!("FULL".parse::<CaptureLevel>().unwrap(), CaptureLevel::Full);
        assert!("loud".parse::<CaptureLevel>().is_err());
        assert!(CaptureLevel::Summary < CaptureLevel::Details);
    }

    #[test]
    fn default_redaction_is_case_insensitive() {
        let c = CaptureSettings::default();
        assert!(c.is_redacted("Authorization"));
        assert!(c.is_redacted("SET-COOKIE"));
        assert!(!c.is_redacted("user-agent"));
    }

    #[test]
    fn exe_filter_matches_path_or_name() {
        let f = ProcessFilter {
            pids: vec![],
            exes: vec!["curl".into(), "/usr/bin/python3.11".into()],
        };
        assert!(f.exe_matches("/usr/bin/curl", "curl"));
        assert!(f.exe_matches("/usr/bin/python3.11", "python3"));
        assert!(!f.exe_matches("/usr/bin/wget", "wget"));
        assert!(ProcessFilter::default().exe_matches("/x", "x"));
    }
}
