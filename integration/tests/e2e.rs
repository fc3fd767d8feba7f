//! End-to-end tests: the real agent (root, eBPF) against real clients and servers.
//!
//! Each test starts its own agent and its own servers on fresh ports, and
//! tells its traffic apart by port. Run serially (`--test-threads=1`).

mod body_skip;
mod config;
mod connected_traces;
mod extension_methods;
mod faults;
mod go_tls;
mod harness;
mod http1_plaintext;
mod http2;
mod never_wrong;
mod one_exchange;
mod otlp;
mod tls;
mod trace_context;
