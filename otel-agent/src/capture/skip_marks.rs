//! The kernel's `body_skip` map as the tracker's [`SkipMarks`]: where
//! userspace tells the probes which body bytes they need not copy.

use aya::maps::{HashMap, MapData};
use bpf_probes::events::BodySkip;
use tracing::debug;

use crate::track::skip::SkipMarks;

/// The `body_skip` map, by connection id.
pub struct KernelSkipMarks(pub(crate) HashMap<MapData, u64, BodySkip>);

impl SkipMarks for KernelSkipMarks {
    fn set(&mut self, conn_id: u64, mark: BodySkip) {
        // A failed update only means the kernel copies those bytes anyway.
        if let Err(e) = self.0.insert(conn_id, mark, 0) {
            debug!(conn = conn_id, error = %e, "body skip mark not set");
        }
    }

    fn clear(&mut self, conn_id: u64) {
        // Gone already (the LRU map evicted it) is fine.
        let _ = self.0.remove(&conn_id);
    }
}
