//! Incremental, panic-free HTTP/2 parser that turns the captured client and server byte streams of one connection into per-stream exchanges.

mod block;
mod connection;
mod frame;
#[cfg(test)]
mod gap_tests;
mod grpc;
mod hpack;
mod message;
mod preface;
mod resync;
mod side;
mod skip;
#[cfg(test)]
mod skip_tests;
mod streams;
#[cfg(test)]
mod testutil;

pub use crate::stream::{GapCause, GapCauses, Side};
pub use connection::{Http2Stream, Limits, PARSER_HEADERS};
pub use grpc::Grpc;
pub use message::{Exchange, Header, Message};
pub use preface::{looks_like_http2_preface, PREFACE};
