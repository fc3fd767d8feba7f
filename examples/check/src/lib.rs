//! Checks of the ecosystem examples under `examples/` (no root, no network).
//!
//! The library reads the example files ([`files`], [`yaml`], [`value`]), names the
//! agent's metrics the way the collector's Prometheus exporter does ([`prometheus`]),
//! scans PromQL ([`promql`]) and takes apart Grafana dashboards ([`grafana`]),
//! collector configs ([`collector`]), compose files ([`compose`]) and systemd units
//! ([`systemd`]). The tests (`tests/`, and unit tests of the helpers beside them)
//! check that:
//!
//! - every YAML file parses (multi-document files too), every JSON file parses;
//! - the Grafana dashboard queries only metrics the agent emits, under the names the
//!   collector's Prometheus exporter gives them, with labels those metrics carry;
//! - the collector config is consistent (pipelines use only declared components,
//!   every declared component is used, the right signals go to the right backends);
//! - compose, Prometheus, Grafana provisioning, the DaemonSet, the systemd unit and
//!   the Dockerfile hold what the README and docs/troubleshooting.md say they hold;
//! - the README links every example file.
//!
//! The collector config is validated structurally here: no OpenTelemetry Collector
//! binary with the needed components is installable on this project's machines
//! (none in Debian bookworm; the one PyPI wrapper ships a reduced build without the
//! OTLP receiver and the Prometheus exporter; Debian's Go 1.19 is too old to build
//! one). With a collector at hand: `otelcol-contrib validate --config
//! examples/otel-collector.yaml`.
#![deny(missing_docs)]

pub mod collector;
pub mod compose;
pub mod files;
pub mod grafana;
pub mod prometheus;
pub mod promql;
pub mod systemd;
pub mod value;
pub mod yaml;
