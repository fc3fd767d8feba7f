#!/usr/bin/env bash
# Installs everything the tests need and runs all of them: formatting, lints,
# unit tests, and the end-to-end tests (real agent, as root, with eBPF).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh test
export PATH="$HOME/.cargo/bin:$PATH"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build -p otel-agent
cargo test --workspace --exclude integration
cargo test -p integration -- --test-threads=1
