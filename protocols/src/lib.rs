//! The parsers of captured bytes: protocol detection, the TLS handshake,
//! HTTP/1.x and HTTP/2 (frames, HPACK, gRPC).
//!
//! Why a crate of its own: these are the parts of the agent that read bytes
//! chosen by strangers, so they are kept pure — bytes in, structured records
//! out, no kernel, no I/O, no runtime — which makes them testable on fixtures
//! captured from real clients (`testdata/`) and fuzzable in isolation. They
//! must never panic on any input; the agent's connection tracker feeds them
//! and decides what the records mean for a connection.
#![deny(missing_docs)]
// No unsafe code, but for the two ASCII-to-text conversions in `text`
// (allowed there, with their reason and figure).
#![deny(unsafe_code)]
// Bytes from strangers never panic the agent: no indexing that can go out of
// bounds, no unwrap/expect/panic outside tests (tests may assert freely).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod detect;
pub mod fuzzing;
pub mod http1;
pub mod http2;
pub mod names;
pub mod stream;
#[cfg(test)]
mod testconv;
pub mod testdata;
mod text;
pub mod tls_handshake;

pub use stream::{ExchangeParser, GapCause, GapCauses, Side};
