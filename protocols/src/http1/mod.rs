//! Incremental, panic-free HTTP/1.x parser that pairs the captured request and response byte streams of one TCP connection into exchanges.

mod align;
mod body;
mod buffer;
mod head;
mod message;
mod pairing;
mod recovery;
mod side;
mod skip;
mod start;
mod stream;

pub use message::{Exchange, GapCause, GapCauses, Header, Limits, Request, Response, Side};
pub use start::{looks_like_http1, request_line_start, MAX_METHOD_LEN, START_WINDOW};
pub use stream::Http1Stream;

/// A length as `u64`, saturating (lengths and wire-byte counts are kept as `u64`).
fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
