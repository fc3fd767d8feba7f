//! Connection tracking: kernel events become connections, their bytes go to
//! the parsers of the `protocols` crate, and what those parse is assembled
//! into exchanges and connection reports at the configured capture level.

/// Log a `--trace-events` line when the connection's process is traced for `module`.
macro_rules! tev {
    ($conn:expr, $module:ident, $($rest:tt)+) => {
        if $conn.traces(Module::$module) {
            tracing::info!(
                target: "otel_agent::track::trace_events",
                conn = $conn.connection.id, pid = $conn.pid, module = stringify!($module), $($rest)+
            );
        }
    };
}

pub mod assemble;
pub mod clock;
pub mod connection;
pub mod decompress;
pub(crate) mod link_evidence;
pub mod parser;
pub mod process;
pub mod skip;
pub mod tls;
pub mod trace_events;
pub mod tracker;
