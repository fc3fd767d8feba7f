//! Telling the kernel which body bytes it need not copy: once a parser knows
//! that the next bytes of a direction are body the capture level does not
//! keep, the connection's mark in the kernel's `body_skip` map moves to where
//! that body ends, and the kernel covers those bytes with skip events (length
//! exact, nothing copied) instead of copying them.
//!
//! The kernel map is behind [`SkipMarks`], so the tracker stays testable and
//! replayable without a kernel. A late mark only means that some body bytes
//! are copied anyway; a wrong one cannot hide a message: the parser takes
//! skipped bytes only where it expects body it does not keep, and anything
//! else is a gap (`GapCause::SkippedOutsideBody`).

use bpf_probes::events::{BodySkip, Direction as KDirection, BODY_SKIP_AFTER_HEAD};
use semconv::model::L7Protocol;

use crate::track::connection::Conn;

/// Below this many body bytes ahead, the mark is not moved: one map update
/// (a `bpf()` system call) costs about what copying one event's payload
/// costs, and the bytes of the same write are already on their way.
pub const SKIP_MIN_BYTES: u64 = 16 * 1024;

/// Where the kernel reads its marks (the `body_skip` map in the agent).
pub trait SkipMarks: Send {
    /// Connection `conn_id`'s marks: before stream offset
    /// `mark.until[direction]`, every byte is body userspace does not keep;
    /// `mark.flags` may add `BODY_SKIP_AFTER_HEAD`. Errors are the sink's.
    fn set(&mut self, conn_id: u64, mark: BodySkip);
    /// The connection is over: forget its marks.
    fn clear(&mut self, conn_id: u64);
}

/// After bytes of `dir` reached the parser: move the connection's mark to
/// the end of the body it does not keep, if that is far enough ahead; and
/// once an HTTP/1 connection that keeps no body (`keeps_no_body`) has
/// finished an exchange, let the kernel skip body buffers written after
/// their head and bodies read or written in one buffer with their head —
/// one socket call, or one call of a TLS library
/// (`BODY_SKIP_AFTER_HEAD`: one map update per connection, not
/// paid by connections of a single exchange). True when `marks` was told.
pub(crate) fn update(
    conn: &mut Conn,
    dir: KDirection,
    keeps_no_body: bool,
    marks: &mut dyn SkipMarks,
) -> bool {
    let mut changed = false;
    if keeps_no_body
        && conn.skip.flags & BODY_SKIP_AFTER_HEAD == 0
        && conn.exchanges + conn.partial_exchanges > 0
        && conn.connection.protocol == L7Protocol::Http1
    {
        conn.skip.flags |= BODY_SKIP_AFTER_HEAD;
        changed = true;
    }
    if let (Some(parser), Some(side)) = (conn.parser.as_ref(), conn.side(dir)) {
        let ahead = parser.skippable(side);
        let stream = usize::from(conn.connection.tls.is_some());
        let idx = dir as usize;
        let until = conn.next_offset[stream][idx].saturating_add(ahead);
        if ahead >= SKIP_MIN_BYTES && until > conn.skip.until[idx] {
            conn.skip.until[idx] = until;
            changed = true;
        }
    }
    if changed {
        marks.set(conn.connection.id, conn.skip);
    }
    changed
}

/// A connection the filters exclude: none of its bytes is needed, so the
/// kernel may skip them all (once told; its TLS handshake records are still
/// copied, and every byte is still counted).
pub(crate) fn ignore(conn: &mut Conn, marks: &mut dyn SkipMarks) {
    if conn.skip.until != [u64::MAX; 2] {
        conn.skip.until = [u64::MAX; 2];
        marks.set(conn.connection.id, conn.skip);
    }
}

/// The connection is over: its marks go, if it had any.
pub(crate) fn forget(conn: &Conn, marks: &mut dyn SkipMarks) {
    if conn.skip != BodySkip::default() {
        marks.clear(conn.connection.id);
    }
}
