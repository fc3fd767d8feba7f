//! Protocol detection and the parsers of captured bytes (never panic on any input).

pub mod detect;
pub mod http1;
pub mod http2;
pub mod tls_handshake;
