//! What every parser of a connection's bytes offers the connection tracker: the two halves of a conversation, why bytes went missing, and one trait to drive them.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// Which half of the conversation bytes belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bytes sent by the client.
    Request,
    /// Bytes sent by the server.
    Response,
}

/// Why bytes of one side are missing (the `cause` of a gap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GapCause {
    /// Whole capture events were dropped (the kernel ring buffer was full).
    LostEvents,
    /// The tail of one syscall's payload was not copied: it was larger than
    /// the kernel's per-call copy cap (its length is known, its bytes are not).
    KernelCap,
    /// The connection was first seen after it started: the bytes before the
    /// first captured one are missing.
    JoinedMidStream,
    /// The bytes never passed through memory the probes can read (a body
    /// sent with `sendfile`): counted, not seen.
    NotVisible,
    /// The kernel skipped bytes on purpose (see [`ExchangeParser::skip`])
    /// where the parser, by then, did not take them for body it does not
    /// keep: their length is known, their content is not.
    SkippedOutsideBody,
}

impl GapCause {
    /// Every cause, in the order of their bits and names.
    pub const ALL: [GapCause; 5] = [
        GapCause::LostEvents,
        GapCause::KernelCap,
        GapCause::JoinedMidStream,
        GapCause::NotVisible,
        GapCause::SkippedOutsideBody,
    ];

    /// Stable name, for attributes and logs: `lost_bytes`, `cut_by_kernel_cap`,
    /// `joined_mid_stream`, `not_visible` or `skipped_outside_body`.
    pub fn name(self) -> &'static str {
        match self {
            GapCause::LostEvents => "lost_bytes",
            GapCause::KernelCap => "cut_by_kernel_cap",
            GapCause::JoinedMidStream => "joined_mid_stream",
            GapCause::NotVisible => "not_visible",
            GapCause::SkippedOutsideBody => "skipped_outside_body",
        }
    }

    fn bit(self) -> u8 {
        match self {
            GapCause::LostEvents => 1,
            GapCause::KernelCap => 2,
            GapCause::JoinedMidStream => 4,
            GapCause::NotVisible => 8,
            GapCause::SkippedOutsideBody => 16,
        }
    }
}

impl fmt::Display for GapCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of [`GapCause`]s that touched an exchange (empty: none did).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GapCauses(u8);

impl GapCauses {
    /// No cause.
    pub const NONE: GapCauses = GapCauses(0);

    /// True if `cause` is in the set.
    pub fn contains(self, cause: GapCause) -> bool {
        self.0 & cause.bit() != 0
    }

    /// True if no gap touched the exchange.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Adds a cause.
    pub fn insert(&mut self, cause: GapCause) {
        self.0 |= cause.bit();
    }

    /// The causes in the set, in [`GapCause::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = GapCause> {
        GapCause::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// The names of the causes in the set (see [`GapCause::name`]).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.iter().map(GapCause::name)
    }
}

impl From<GapCause> for GapCauses {
    fn from(cause: GapCause) -> Self {
        GapCauses(cause.bit())
    }
}

impl BitOr for GapCauses {
    type Output = GapCauses;
    fn bitor(self, rhs: GapCauses) -> GapCauses {
        GapCauses(self.0 | rhs.0)
    }
}

impl BitOrAssign for GapCauses {
    fn bitor_assign(&mut self, rhs: GapCauses) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for GapCauses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// A parser of one connection's two byte streams into exchanges. The
/// tracker feeds it the bytes of each side in stream order, says where bytes
/// were lost and why, and takes the exchanges it has finished.
pub trait ExchangeParser {
    /// One parsed request/response pair (or one HTTP/2 stream).
    type Exchange;
    /// Bytes of one side, at kernel time `ts_ns`.
    fn push(&mut self, side: Side, ts_ns: u64, data: &[u8]);
    /// `len` bytes of one side were lost before `ts_ns`, for `cause`: the
    /// parser must not pair or report across the gap as if nothing happened,
    /// and every exchange the gap touched carries `cause`.
    fn gap(&mut self, side: Side, ts_ns: u64, len: u64, cause: GapCause);
    /// An unknown number of bytes of one side may have been lost at its end
    /// (the connection ends without the kernel's totals): what is still in
    /// progress or undecided on that side is cut and carries `cause`; what
    /// is complete stays as it is, and no length is invented.
    fn tail_lost(&mut self, side: Side, ts_ns: u64, cause: GapCause);
    /// Bytes of `side`, from the end of what was pushed so far, that are
    /// certainly body of the message in progress that the parser will not
    /// keep (the body capture limit is 0 or already reached): the kernel need
    /// not copy them (see [`ExchangeParser::skip`]). `u64::MAX`: everything
    /// until the connection closes. 0: none, or not known.
    fn skippable(&self, side: Side) -> u64;
    /// `len` bytes of one side, at kernel time `ts_ns`, were not copied on
    /// purpose because [`ExchangeParser::skippable`] allowed it: they are
    /// counted as body (sizes and wire bytes stay exact) and flag nothing.
    /// Bytes that no longer fit a body the parser does not keep (its state
    /// changed since) are a gap of cause [`GapCause::SkippedOutsideBody`].
    fn skip(&mut self, side: Side, ts_ns: u64, len: u64);
    /// The exchanges finished so far.
    fn drain(&mut self) -> Vec<Self::Exchange>;
    /// The exchanges finished so far, appended to `out` as `E`s: what
    /// [`ExchangeParser::drain`] gives, without a new list each time (a
    /// caller that reuses `out` allocates nothing per exchange).
    fn drain_into<E: From<Self::Exchange>>(&mut self, out: &mut Vec<E>);
    /// The connection closed: everything left, complete or partial.
    fn close(&mut self, ts_ns: u64) -> Vec<Self::Exchange>;
    /// Desynchronisations so far.
    fn parse_errors(&self) -> u64;
}

macro_rules! exchange_parser {
    ($stream:ty, $exchange:ty) => {
        impl ExchangeParser for $stream {
            type Exchange = $exchange;
            fn push(&mut self, side: Side, ts_ns: u64, data: &[u8]) {
                <$stream>::push(self, side, ts_ns, data)
            }
            fn gap(&mut self, side: Side, ts_ns: u64, len: u64, cause: GapCause) {
                <$stream>::gap(self, side, ts_ns, len, cause)
            }
            fn tail_lost(&mut self, side: Side, ts_ns: u64, cause: GapCause) {
                <$stream>::tail_lost(self, side, ts_ns, cause)
            }
            fn skippable(&self, side: Side) -> u64 {
                <$stream>::skippable(self, side)
            }
            fn skip(&mut self, side: Side, ts_ns: u64, len: u64) {
                <$stream>::skip(self, side, ts_ns, len)
            }
            fn drain(&mut self) -> Vec<$exchange> {
                <$stream>::drain(self)
            }
            fn drain_into<E: From<$exchange>>(&mut self, out: &mut Vec<E>) {
                <$stream>::drain_into(self, out)
            }
            fn close(&mut self, ts_ns: u64) -> Vec<$exchange> {
                <$stream>::close(self, ts_ns)
            }
            fn parse_errors(&self) -> u64 {
                <$stream>::parse_errors(self)
            }
        }
    };
}

exchange_parser!(crate::http1::Http1Stream, crate::http1::Exchange);
exchange_parser!(crate::http2::Http2Stream, crate::http2::Exchange);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_causes_set() {
        let mut set = GapCauses::NONE;
        assert!(set.is_empty());
        set.insert(GapCause::KernelCap);
        set |= GapCauses::from(GapCause::JoinedMidStream);
        assert!(set.contains(GapCause::KernelCap) && !set.contains(GapCause::LostEvents));
        assert_eq!(
            set.names().collect::<Vec<_>>(),
            ["cut_by_kernel_cap", "joined_mid_stream"]
        );
        assert_eq!(
            (GapCauses::from(GapCause::LostEvents) | set).iter().count(),
            3
        );
        assert_eq!(
            format!("{set:?}"),
            "{\"cut_by_kernel_cap\", \"joined_mid_stream\"}"
        );
        assert_eq!(GapCause::LostEvents.to_string(), "lost_bytes");
    }
}
