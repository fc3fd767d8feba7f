//! The `otel-agent` binary: parse the command line, set up logging, run the agent.

use anyhow::Result;
use clap::Parser;
use otel_agent::cli::Cli;
use otel_agent_config::Settings;
use tracing_subscriber::EnvFilter;

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut settings = Settings::default();
    settings.filter.pids = cli.pids;
    settings.filter.exes = cli.exes;
    if let Some(level) = cli.capture_level {
        settings.capture.level = level;
    }
    if let Some(mib) = cli.ring_buffer_mib {
        settings.limits.ring_buffer_bytes = mib.saturating_mul(1024 * 1024);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut export = otel_agent::agent::ExportOptions::resolve(
        cli.otlp_endpoint,
        cli.otlp_protocol,
        cli.stdout,
    )?;
    export.probes_only = cli.probes_only;
    runtime.block_on(otel_agent::agent::run(settings, cli.trace_events, export))
}
