//! Where telemetry goes, and the resource it is described with.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// OTLP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OTLP/gRPC, conventionally port 4317; the endpoint is used as is for every signal.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, conventionally port 4318; the generic
    /// endpoint gets `/v1/<signal>` appended.
    #[default]
    HttpProtobuf,
}

impl Protocol {
    /// `grpc`, `http/protobuf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" | "http" => Ok(Protocol::HttpProtobuf),
            "http/json" => Err(
                "OTLP protocol \"http/json\" is not supported: expected grpc or http/protobuf"
                    .to_string(),
            ),
            other => Err(format!(
                "unknown OTLP protocol {other:?}: expected grpc or http/protobuf"
            )),
        }
    }
}

/// Compression of OTLP requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Uncompressed.
    #[default]
    None,
    /// gzip.
    Gzip,
}

impl Compression {
    /// `none`, `gzip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            other => Err(format!(
                "unknown compression {other:?}: expected gzip or none"
            )),
        }
    }
}

/// JSON lines on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StdoutMode {
    /// On exactly when no OTLP endpoint is configured for any exported signal.
    #[default]
    Auto,
    /// Always (also alongside OTLP).
    On,
    /// Never.
    Off,
}

impl StdoutMode {
    /// `auto`, `on`, `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            StdoutMode::Auto => "auto",
            StdoutMode::On => "on",
            StdoutMode::Off => "off",
        }
    }
}

impl fmt::Display for StdoutMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StdoutMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(StdoutMode::Auto),
            "on" | "true" => Ok(StdoutMode::On),
            "off" | "false" => Ok(StdoutMode::Off),
            _ => Err(format!(
                "unknown stdout mode {s:?}: expected one of auto, on, off"
            )),
        }
    }
}

/// An OpenTelemetry signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Metrics.
    Metrics,
    /// Log records.
    Logs,
}

impl Signal {
    /// All three, in this order.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// `traces`, `metrics`, `logs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The OTLP/HTTP path appended to a generic endpoint: `v1/traces`, ...
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "v1/traces",
            Signal::Metrics => "v1/metrics",
            Signal::Logs => "v1/logs",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which signals are exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signals {
    /// One span per HTTP exchange.
    pub traces: bool,
    /// HTTP and capture-health metrics.
    pub metrics: bool,
    /// Connection reports as log records.
    pub logs: bool,
}

impl Default for Signals {
    fn default() -> Self {
        Self {
            traces: true,
            metrics: true,
            logs: true,
        }
    }
}

impl Signals {
    /// Is `signal` on?
    pub fn get(&self, signal: Signal) -> bool {
        match signal {
            Signal::Traces => self.traces,
            Signal::Metrics => self.metrics,
            Signal::Logs => self.logs,
        }
    }

    /// Turn `signal` on or off.
    pub fn set(&mut self, signal: Signal, on: bool) {
        match signal {
            Signal::Traces => self.traces = on,
            Signal::Metrics => self.metrics = on,
            Signal::Logs => self.logs = on,
        }
    }
}

/// One URL per signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignalEndpoints {
    /// Traces URL.
    pub traces: Option<String>,
    /// Metrics URL.
    pub metrics: Option<String>,
    /// Logs URL.
    pub logs: Option<String>,
}

impl SignalEndpoints {
    /// The URL for `signal`.
    pub fn get(&self, signal: Signal) -> Option<&str> {
        match signal {
            Signal::Traces => self.traces.as_deref(),
            Signal::Metrics => self.metrics.as_deref(),
            Signal::Logs => self.logs.as_deref(),
        }
    }

    /// Set the URL for `signal`.
    pub fn set(&mut self, signal: Signal, url: Option<String>) {
        match signal {
            Signal::Traces => self.traces = url,
            Signal::Metrics => self.metrics = url,
            Signal::Logs => self.logs = url,
        }
    }
}

/// TLS towards the collector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM CA bundle that signed the collector's certificate; `None`: system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (mutual TLS); always set together with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Plaintext gRPC for `http://` endpoints, or no certificate verification.
    pub insecure: bool,
}

/// Where telemetry goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExporterSettings {
    /// `false`: nothing is exported (`OTEL_SDK_DISABLED=true`, `exporters.enabled: false`);
    /// stdout only if `stdout` is `on`.
    pub enabled: bool,
    /// Generic OTLP endpoint (for HTTP, `/v1/<signal>` is appended). `None` with no
    /// per-signal endpoint: no OTLP export.
    pub endpoint: Option<String>,
    /// Per-signal OTLP endpoints, used as is; each wins over `endpoint` for its signal.
    pub signal_endpoints: SignalEndpoints,
    /// OTLP transport.
    pub protocol: Protocol,
    /// Extra OTLP request headers (gRPC metadata), in name order.
    pub headers: BTreeMap<String, String>,
    /// TLS towards the collector.
    pub tls: TlsSettings,
    /// Deadline of one export request.
    pub timeout: Duration,
    /// Request compression.
    pub compression: Compression,
    /// Which signals are exported.
    pub signals: Signals,
    /// JSON lines on stdout.
    pub stdout: StdoutMode,
}

impl Default for ExporterSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            endpoint: None,
            signal_endpoints: SignalEndpoints::default(),
            protocol: Protocol::default(),
            headers: BTreeMap::new(),
            tls: TlsSettings::default(),
            timeout: Duration::from_secs(10),
            compression: Compression::default(),
            signals: Signals::default(),
            stdout: StdoutMode::default(),
        }
    }
}

/// The generic endpoint for HTTP: `base` + `/v1/<signal>`, one slash between.
fn append_signal_path(base: &str, signal: Signal) -> String {
    let base = base.trim_end_matches('/');
    format!("{base}/{}", signal.http_path())
}

impl ExporterSettings {
    /// The URL `signal` is sent to, whether or not the signal is on: the
    /// per-signal endpoint as is, else the generic one (with `/v1/<signal>`
    /// appended for `http/protobuf`), else `None`.
    pub fn endpoint_for(&self, signal: Signal) -> Option<String> {
        if let Some(url) = self.signal_endpoints.get(signal) {
            return Some(url.to_string());
        }
        let base = self.endpoint.as_deref()?;
        Some(match self.protocol {
            Protocol::Grpc => base.to_string(),
            Protocol::HttpProtobuf => append_signal_path(base, signal),
        })
    }

    /// [`endpoint_for`](Self::endpoint_for) for every signal.
    pub fn resolved_endpoints(&self) -> SignalEndpoints {
        let mut out = SignalEndpoints::default();
        for s in Signal::ALL {
            out.set(s, self.endpoint_for(s));
        }
        out
    }

    /// Where `signal` is exported over OTLP: `None` when export is disabled,
    /// the signal is off, or it has no endpoint.
    pub fn export_endpoint(&self, signal: Signal) -> Option<String> {
        if !self.enabled || !self.signals.get(signal) {
            return None;
        }
        self.endpoint_for(signal)
    }

    /// Does anything go out over OTLP?
    pub fn otlp_enabled(&self) -> bool {
        Signal::ALL
            .iter()
            .any(|&s| self.export_endpoint(s).is_some())
    }

    /// Are JSON lines printed on stdout? `on`: yes; `off`: no; `auto`: when
    /// export is enabled and nothing goes out over OTLP.
    pub fn stdout_enabled(&self) -> bool {
        match self.stdout {
            StdoutMode::On => true,
            StdoutMode::Off => false,
            StdoutMode::Auto => self.enabled && !self.otlp_enabled(),
        }
    }

    /// Set the generic endpoint from a higher-precedence source (a CLI flag):
    /// per-signal endpoints from lower layers no longer apply.
    pub fn override_endpoint(&mut self, url: impl Into<String>) {
        self.endpoint = Some(url.into());
        self.signal_endpoints = SignalEndpoints::default();
    }
}

/// How `service.name` is chosen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ServiceName {
    /// The observed process's executable file name (per process).
    #[default]
    Executable,
    /// This name for every process (`OTEL_SERVICE_NAME`).
    Fixed(String),
}

/// Resource attributes put on everything exported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceSettings {
    /// How `service.name` is chosen.
    pub service_name: ServiceName,
    /// Extra attributes (never `service.name`), in key order.
    pub attributes: BTreeMap<String, String>,
}

impl ResourceSettings {
    /// `service.name` for a process with this executable path.
    pub fn service_name_for<'a>(&'a self, exe_path: &'a str) -> &'a str {
        match &self.service_name {
            ServiceName::Fixed(name) => name,
            ServiceName::Executable => exe_path.rsplit('/').next().unwrap_or(exe_path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_generic_endpoint_gets_signal_paths() {
        let mut e = ExporterSettings {
            endpoint: Some("http://collector:4318".into()),
            ..Default::default()
        };
        assert_eq!(
            e.endpoint_for(Signal::Traces).as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        e.endpoint = Some("http://collector:4318/prefix/".into());
        assert_eq!(
            e.endpoint_for(Signal::Logs).as_deref(),
            Some("http://collector:4318/prefix/v1/logs")
        );
        e.signal_endpoints.metrics = Some("http://m:9999/custom".into());
        assert_eq!(
            e.endpoint_for(Signal::Metrics).as_deref(),
            Some("http://m:9999/custom")
        );
        e.protocol = Protocol::Grpc;
        assert_eq!(
            e.endpoint_for(Signal::Traces).as_deref(),
            Some("http://collector:4318/prefix/")
        );
    }

    #[test]
    fn stdout_auto_follows_otlp() {
        let mut e = ExporterSettings::default();
        assert!(e.stdout_enabled() && !e.otlp_enabled());
        e.endpoint = Some("http://c:4318".into());
        assert!(!e.stdout_enabled() && e.otlp_enabled());
        e.stdout = StdoutMode::On;
        assert!(e.stdout_enabled());
        e.stdout = StdoutMode::Auto;
        e.enabled = false;
        assert!(!e.stdout_enabled() && !e.otlp_enabled());
        assert_eq!(e.export_endpoint(Signal::Traces), None);
    }

    #[test]
    fn override_endpoint_drops_lower_per_signal_endpoints() {
        let mut e = ExporterSettings::default();
        e.signal_endpoints.traces = Some("http://file:4318/v1/traces".into());
        e.override_endpoint("http://cli:4318");
        assert_eq!(
            e.endpoint_for(Signal::Traces).as_deref(),
            Some("http://cli:4318/v1/traces")
        );
    }

    #[test]
    fn service_name_strategies() {
        let mut r = ResourceSettings::default();
        assert_eq!(r.service_name_for("/usr/bin/curl"), "curl");
        r.service_name = ServiceName::Fixed("checkout".into());
        assert_eq!(r.service_name_for("/usr/bin/curl"), "checkout");
    }
}
