//! Command-line interface.

use clap::Parser;
use otel_agent_config::CaptureLevel;

use crate::trace_events::TraceFilter;

/// Captures HTTP exchanges from the kernel with eBPF (plaintext and TLS) and
/// exports them as OpenTelemetry spans, metrics and logs — or JSON on stdout.
#[derive(Debug, Parser)]
#[command(name = "otel-agent", version, about)]
pub struct Cli {
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
    /// OTLP endpoint (overrides OTEL_EXPORTER_OTLP_ENDPOINT), e.g. http://127.0.0.1:4318.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// OTLP protocol (overrides OTEL_EXPORTER_OTLP_PROTOCOL): grpc or http/protobuf.
    #[arg(long, value_name = "PROTOCOL")]
    pub otlp_protocol: Option<crate::exporters::otlp::Protocol>,
    /// Also print JSON lines on stdout while exporting OTLP (stdout is the default without an endpoint).
    #[arg(long)]
    pub stdout: bool,
    /// Attach every probe but make each return at once: measures the cost of
    /// the traps alone (benchmarks). Nothing is captured.
    #[arg(long)]
    pub probes_only: bool,
    /// Kernel ring buffer size in MiB (power of two).
    #[arg(long, value_name = "MIB")]
    pub ring_buffer_mib: Option<u32>,
}
