//! The `otel-agent` binary: parse the command line, set up logging, run the agent.

use std::io::IsTerminal;

use anyhow::Result;
use clap::Parser;
use otel_agent::cli::Cli;
use tracing_subscriber::EnvFilter;

/// mimalloc (`allocator::MiMalloc`): the per-exchange strings and vectors
/// are small and short-lived; glibc's malloc spent a third of the agent's
/// time consolidating them and kept more memory (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: otel_agent::allocator::MiMalloc = otel_agent::allocator::MiMalloc;

/// Runs before mimalloc initializes (its constructor has priority 101): its
/// options must be set before the first arena is reserved. See `allocator`.
#[used]
#[unsafe(link_section = ".init_array.00100")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

extern "C" fn tune_allocator() {
    otel_agent::allocator::return_memory_promptly();
}

fn main() {
    // Errors are for people: one line with its causes, no backtrace.
    if let Err(e) = run(Cli::parse()) {
        eprintln!("otel-agent: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if cli.print_default_config {
        print!("{}", otel_agent_config::DEFAULT_CONFIG_YAML);
        return Ok(());
    }
    if let Some(path) = &cli.check_config {
        otel_agent_config::load(Some(path))?;
        println!("{}: OK", path.display());
        return Ok(());
    }
    let mut filter = EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    if cli.trace_events.is_some() {
        if let Ok(d) = "otel_agent::track::trace_events=info".parse() {
            filter = filter.add_directive(d);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let settings = cli.settings()?;
    sanitize_sdk_environment();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let options = otel_agent::agent::RunOptions {
        trace: cli.trace_events,
        probes_only: cli.probes_only,
        copy_all_bodies: cli.copy_all_bodies,
        record: cli.record,
    };
    runtime.block_on(otel_agent::agent::run(settings, options))
}

/// The OTLP SDK also reads `OTEL_EXPORTER_OTLP_*COMPRESSION` itself and refuses
/// the spec's `none`; the settings already hold the value, so drop it from the
/// environment (before any thread starts) to let the SDK see only what it accepts.
fn sanitize_sdk_environment() {
    for var in [
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
        "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
    ] {
        if std::env::var(var).is_ok_and(|v| v.trim().eq_ignore_ascii_case("none")) {
            std::env::remove_var(var);
        }
    }
}
