//! The records the parser produces: header fields, the message of each side of a stream, and exchanges.

use std::borrow::Cow;

use super::grpc::Grpc;
use crate::stream::GapCauses;

/// Header fields kept per message (headers and trailers together).
pub(super) const MAX_MESSAGE_FIELDS: usize = 256;
/// Decoded header bytes (names and values) kept per message.
pub(super) const MAX_MESSAGE_HEADER_BYTES: usize = 64 * 1024;

/// One header field. A name or value that is the HPACK static table's
/// is borrowed from it: the copies of the pseudo-header and common field
/// names and of values such as `GET` and `200` were ~10 allocations per
/// HTTP/2 exchange at level `summary` (bench/instructions.sh).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Field name as on the wire (lowercase in HTTP/2); pseudo-headers such as
    /// `:method` are kept.
    pub name: Cow<'static, str>,
    /// Field value, decoded lossily as UTF-8.
    pub value: Cow<'static, str>,
}

/// One side (request or response) of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Fields of the first header block, in wire order (interim 1xx responses
    /// are dropped).
    pub headers: Vec<Header>,
    /// Fields of later header blocks (trailers), in wire order.
    pub trailers: Vec<Header>,
    /// DATA payload length (padding excluded), including bytes lost in gaps
    /// (when the pad length of a padded DATA frame was itself lost, the rest
    /// of that frame is counted: the stream then carries the gap).
    pub body_size: u64,
    /// First `max_body_capture` payload bytes; `None` when capture is off.
    pub body: Option<Vec<u8>>,
    /// Some payload bytes are not in `body` (capture limit reached, or lost in a gap).
    pub body_truncated: bool,
    /// The capture limit cut `body` short: `body_size` exceeds
    /// `max_body_capture` (bytes lost in a gap are said by the exchange's `gaps`).
    pub body_capped: bool,
    /// Frame bytes of this stream on this side: 9-byte headers and payloads of
    /// its HEADERS, CONTINUATION, DATA (padding included) and RST_STREAM frames.
    /// For a pushed stream's request: its PUSH_PROMISE and CONTINUATION frames.
    pub wire_bytes: u64,
    /// Timestamp of the push that carried the first byte of the stream's first frame on this side.
    pub start_ns: u64,
    /// Timestamp of the push that carried the last byte of the stream's last frame on this side.
    pub end_ns: u64,
    /// END_STREAM was seen (a pushed stream's request is always complete).
    pub complete: bool,
    /// Some header block could not be decoded (HPACK state missed, bytes lost,
    /// block too large) or was never seen: headers may be missing.
    pub headers_degraded: bool,
}

impl Message {
    /// First value of the field `name` (ASCII case-insensitive), looked up in
    /// the headers and then in the trailers.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .chain(self.trailers.iter())
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_ref())
    }

    /// The `:method` pseudo-header.
    pub fn method(&self) -> Option<&str> {
        self.pseudo(":method")
    }

    /// The `:path` pseudo-header.
    pub fn path(&self) -> Option<&str> {
        self.pseudo(":path")
    }

    /// The `:authority` pseudo-header, or else the `host` header.
    pub fn authority(&self) -> Option<&str> {
        self.pseudo(":authority").or_else(|| self.pseudo("host"))
    }

    /// The `:scheme` pseudo-header.
    pub fn scheme(&self) -> Option<&str> {
        self.pseudo(":scheme")
    }

    /// The `:status` pseudo-header as a number.
    pub fn status(&self) -> Option<u16> {
        self.pseudo(":status")?.trim().parse().ok()
    }

    /// First value of `name` in the headers only.
    pub(super) fn pseudo(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_ref())
    }
}

/// The two sides of one HTTP/2 stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Stream identifier (odd: opened by the client; even: server push).
    pub stream_id: u32,
    /// What the client sent; `None` when no frame of it was seen. For a pushed
    /// stream: the request of its PUSH_PROMISE.
    pub request: Option<Message>,
    /// What the server sent; `None` when no frame of it was seen.
    pub response: Option<Message>,
    /// RST_STREAM error code, from either side.
    pub reset: Option<u32>,
    /// Ended by GOAWAY: the stream id is above the last stream id of a GOAWAY
    /// from the peer, or the connection closed after a GOAWAY.
    pub goaway: bool,
    /// Not both sides complete.
    pub partial: bool,
    /// A gap touched this stream: bytes of its frames were lost, or may have
    /// been (its frames, or its headers on one side, were never seen after
    /// that side lost its frame boundaries). Always `!gaps.is_empty()`.
    pub gap: bool,
    /// Why: the causes of the gaps that touched this stream.
    pub gaps: GapCauses,
    /// gRPC call details, when a `content-type` starts with `application/grpc`.
    pub grpc: Option<Grpc>,
}
