#!/usr/bin/env bash
# Builds otel-agent (release) and runs it with its embedded default config:
# JSON on stdout, or OTLP to $OTEL_EXPORTER_OTLP_ENDPOINT when set.
# Extra arguments go to the agent, e.g. scripts/run.sh --exe curl
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh build
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p otel-agent
exec ./target/release/otel-agent "$@"
