//! otel-agent's configuration model.
//!
//! Configuration comes in two stages, as in ripgrep: raw input (YAML, the
//! environment, CLI flags) and the validated [`Settings`] the agent runs
//! with. Every field has a default, so an empty input is a working agent.
//!
//! Precedence, lowest first: [`DEFAULT_CONFIG_YAML`] (= [`Settings::default`]),
//! the YAML file ([`load_file`] / [`from_yaml_str`]), the OpenTelemetry
//! environment variables ([`apply_env`]), then the agent's CLI flags, which it
//! applies to the returned [`Settings`] itself.
//!
//! A file is refused, never partly used: an unknown key, a wrong type or an
//! impossible value gives a [`ConfigError`] with the file, line, column and
//! the expected form.
#![deny(missing_docs)]

mod capture;
mod env;
mod error;
mod exporters;
mod filter;
mod raw;
mod telemetry;
mod validate;
mod values;

use std::path::Path;

pub use capture::{
    BadCaptureLevel, CaptureLevel, CaptureRule, CaptureSettings, HeaderNames, RuleContext,
    DEFAULT_REDACTED_HEADERS, DEFAULT_REDACTED_QUERY_PARAMS, REDACTED, REDACTED_QUERY_VALUE,
};
pub use env::{apply_env, ENV_VARS};
pub use error::ConfigError;
pub use exporters::{
    Compression, ExporterSettings, Protocol, ResourceSettings, ServiceName, Signal,
    SignalEndpoints, Signals, StdoutMode, TlsSettings,
};
pub use filter::{DirectionFilter, FilterSettings, PortFilter, ProcessFilter, ProcessMatcher};
pub use telemetry::{
    ClientSpanFromTraceparent, TelemetrySettings, TraceLinks, DEFAULT_KNOWN_HTTP_METHODS,
};
pub use validate::{
    check_ring_buffer, EVENT_OVERHEAD_BYTES, MAX_EVENT_PAYLOAD_BYTES, MAX_RING_BUFFER_BYTES,
    MIN_RING_BUFFER_BYTES,
};
pub use values::{MatchKind, Matcher, PortRange, StatusRange};

/// The embedded default configuration: every field, at its default, with
/// comments. Parsing it gives [`Settings::default`].
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default.yaml");

/// Kernel and pipeline limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Ring buffer size in bytes (power of two, 4 KiB to 1 GiB).
    pub ring_buffer_bytes: u32,
    /// OTLP spans, and log records, waiting for the collector before new
    /// ones are dropped (and counted).
    pub export_queue: usize,
    /// Under sustained pressure on the span queue, keep whole traces at
    /// 1/2, 1/4, … (the ratio in each span's trace state, the rest counted
    /// as shed) instead of losing spans at random when it overflows.
    pub shed_spans: bool,
    /// Largest HTTP header block parsed.
    pub max_header_bytes: usize,
    /// Payload bytes carried by one kernel event (64 to 16 KiB).
    pub max_event_payload: usize,
    /// Connections tracked at once in the kernel.
    pub max_connections: u32,
    /// Observed processes whose HTTP metrics go out under their own resource
    /// (histograms of their own) at once; past that, under the agent's
    /// (counted in `tap.unattributed.exchanges`).
    pub max_metric_processes: usize,
    /// A process without an exchange for this long has its HTTP metrics
    /// exported a last time and dropped.
    pub metric_process_idle: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ring_buffer_bytes: 8 * 1024 * 1024,
            export_queue: 2 * 1024,
            shed_spans: true,
            max_header_bytes: 64 * 1024,
            max_event_payload: 16 * 1024,
            max_connections: 65536,
            max_metric_processes: 256,
            metric_process_idle: std::time::Duration::from_secs(600),
        }
    }
}

/// Validated settings the agent runs with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Where telemetry goes.
    pub exporters: ExporterSettings,
    /// Resource attributes put on everything exported.
    pub resource: ResourceSettings,
    /// What to keep of each exchange (level, rules, sampling, redaction).
    pub capture: CaptureSettings,
    /// Which traffic is captured (processes, direction, ports, loopback).
    pub filter: ProcessFilter,
    /// Kernel and pipeline limits.
    pub limits: Limits,
    /// How exchanges are described in spans and metrics (known HTTP methods).
    pub telemetry: TelemetrySettings,
}

impl Settings {
    /// `query` with the configured parameters masked; see
    /// [`CaptureSettings::redact_query`].
    pub fn redact_query(&self, query: &str) -> String {
        self.capture.redact_query(query)
    }

    /// Level and sample ratio for an exchange; see [`CaptureSettings::level_for`].
    /// The exchange's rule context is built only when there are rules to
    /// match: finding its host (the authority split from its port) and path
    /// was ~650 instructions per exchange (bench/instructions.sh, callgrind)
    /// spent for nothing without rules, the default.
    pub fn level_for<'a>(&self, ctx: impl FnOnce() -> RuleContext<'a>) -> (CaptureLevel, f64) {
        if self.capture.rules.is_empty() {
            return (self.capture.level, self.capture.sample_ratio);
        }
        self.capture.level_for(&ctx())
    }
}

/// Settings from [`DEFAULT_CONFIG_YAML`] (equal to [`Settings::default`]).
pub fn default_settings() -> Settings {
    // The embedded file is tested to parse; fall back rather than panic.
    from_yaml_str(DEFAULT_CONFIG_YAML, "<default>").unwrap_or_default()
}

/// Settings from YAML text; `source_name` names it in errors.
pub fn from_yaml_str(text: &str, source_name: &str) -> Result<Settings, ConfigError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
    };
    // `Option`: a document that is only `~` (or empty) is the defaults.
    let raw: Option<raw::RawConfig> = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| error::from_yaml_error(&e, source_name))?;
    validate::build(raw.unwrap_or_default()).map_err(|l| l.into_error(source_name))
}

/// Settings from a YAML file; errors name it as given.
pub fn load_file(path: impl AsRef<Path>) -> Result<Settings, ConfigError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = utf8(&bytes, &name)?;
    from_yaml_str(text, &name)
}

/// The file's text, or where its first byte that is not UTF-8 is.
fn utf8<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&good[line_start..]).chars().count() as u64 + 1;
        ConfigError::Invalid {
            file: name.to_string(),
            line,
            column,
            message: "invalid UTF-8: expected a UTF-8 text file".to_string(),
        }
    })
}

/// The file at `path` (or the embedded default when `None`), then the
/// process environment ([`apply_env`] with [`std::env::var`]).
pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
    let mut settings = match path {
        Some(p) => load_file(p)?,
        None => default_settings(),
    };
    apply_env(&mut settings, &|k| std::env::var(k).ok())?;
    Ok(settings)
}

#[cfg(test)]
mod tests;
