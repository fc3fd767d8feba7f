//! Command-line interface, and the last configuration layer: flags over the
//! YAML file and the `OTEL_*` environment.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use otel_agent_config::{CaptureLevel, Protocol, Settings, StdoutMode};

use crate::track::trace_events::TraceFilter;

/// Captures HTTP exchanges from the kernel with eBPF (plaintext and TLS) and
/// exports them as OpenTelemetry spans, metrics and logs — or JSON on stdout.
#[derive(Debug, Parser)]
#[command(name = "otel-agent", version, about)]
pub struct Cli {
    /// YAML configuration file (every field optional; see --print-default-config).
    #[arg(long, short = 'c', value_name = "FILE", env = "OTEL_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    pub print_default_config: bool,
    /// Validate a configuration file (and the environment) and exit.
    #[arg(long, value_name = "FILE")]
    pub check_config: Option<PathBuf>,
    /// Capture only these process ids (repeatable; enforced in the kernel).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Capture only processes whose executable path or file name is this (repeatable).
    #[arg(long = "exe", value_name = "EXE")]
    pub exes: Vec<String>,
    /// How much of each exchange to keep: none, summary, details (headers), full (headers + bodies).
    #[arg(long, value_name = "LEVEL", env = "OTEL_AGENT_CAPTURE_LEVEL")]
    pub capture_level: Option<CaptureLevel>,
    /// Log filter for the agent's own logs on stderr (e.g. info, debug, otel_agent=trace).
    #[arg(
        long,
        value_name = "FILTER",
        default_value = "info",
        env = "OTEL_AGENT_LOG"
    )]
    pub log_level: String,
    /// Log every probe decision for matching processes (debugging a capture):
    /// comma-separated pid=N, exe=NAME, module=socket|tls|http|all.
    #[arg(long, value_name = "FILTER")]
    pub trace_events: Option<TraceFilter>,
    /// OTLP endpoint (over the file and OTEL_EXPORTER_OTLP_ENDPOINT), e.g. http://127.0.0.1:4318.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// OTLP protocol (over the file and OTEL_EXPORTER_OTLP_PROTOCOL): grpc or http/protobuf.
    #[arg(long, value_name = "PROTOCOL")]
    pub otlp_protocol: Option<Protocol>,
    /// Also print JSON lines on stdout while exporting OTLP (stdout is the default without an endpoint).
    #[arg(long)]
    pub stdout: bool,
    /// Attach every probe but make each return at once: measures the cost of
    /// the traps alone (benchmarks). Nothing is captured.
    #[arg(long)]
    pub probes_only: bool,
    /// Copy every body byte: never tell the kernel which body bytes the
    /// capture level does not keep (benchmarks, troubleshooting).
    #[arg(long)]
    pub copy_all_bodies: bool,
    /// Also write every raw kernel event to FILE, for replay without the
    /// kernel (`cargo bench -p otel-agent --bench pipeline`, bug reports).
    /// The file holds captured payloads, TLS plaintext included.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Kernel ring buffer size in MiB (power of two).
    #[arg(long, value_name = "MIB")]
    pub ring_buffer_mib: Option<u32>,
}

impl Cli {
    /// The settings to run with: the file (or the embedded default), then the
    /// `OTEL_*` environment, then these flags.
    pub fn settings(&self) -> Result<Settings> {
        let mut s = otel_agent_config::load(self.config.as_deref())?;
        s.filter.pids.extend(&self.pids);
        s.filter.exes.extend(self.exes.iter().cloned());
        if let Some(level) = self.capture_level {
            s.capture.level = level;
        }
        if let Some(mib) = self.ring_buffer_mib {
            let bytes = u64::from(mib) * 1024 * 1024;
            s.limits.ring_buffer_bytes = otel_agent_config::check_ring_buffer(bytes)
                .map_err(anyhow::Error::msg)
                .context("--ring-buffer-mib")?;
        }
        if let Some(url) = &self.otlp_endpoint {
            s.exporters.override_endpoint(url.clone());
        }
        if let Some(p) = self.otlp_protocol {
            s.exporters.protocol = p;
        }
        if self.stdout {
            s.exporters.stdout = StdoutMode::On;
        }
        Ok(s)
    }
}
