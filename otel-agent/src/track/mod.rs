//! Connection tracking: kernel events become connections, their bytes go to
//! the parsers of the `protocols` crate, and what those parse is assembled
//! into exchanges and connection reports at the configured capture level.

pub mod assemble;
pub mod clock;
pub mod process;
pub mod trace_events;
pub mod tracker;
