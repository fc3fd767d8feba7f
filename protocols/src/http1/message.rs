//! The public vocabulary of the HTTP/1.x parser: sides, limits, and the request, response and exchange records it produces.

use std::borrow::Cow;

use crate::names::StaticNames;
pub use crate::stream::{GapCause, GapCauses, Side};

/// Parser limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest message head (start line plus headers), chunk-size line or trailer
    /// section accepted; longer ones are parse errors. Values below 64 act as 64.
    /// Default 64 KiB.
    pub max_header_bytes: usize,
    /// Body bytes kept per message (0 = keep none). Default 0. Capture stops at
    /// the first gap, so the captured bytes are always a contiguous prefix.
    pub max_body_capture: usize,
    /// Header fields kept on the parsed messages: `None` keeps all; `Some`
    /// keeps those named (case-insensitively), so a caller that exports no
    /// headers does not pay for copying them. The parser reads the fields
    /// that frame a body (`Content-Length`, `Transfer-Encoding`, `Upgrade`)
    /// before any is dropped. Default `None`.
    pub keep_headers: Option<StaticNames>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_body_capture: 0,
            keep_headers: None,
        }
    }
}

/// One header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Field name as on the wire; as `Limits::keep_headers` spells it when
    /// that list selected the field (no copy: at level `summary` copying
    /// the kept names was ~360 instructions per exchange,
    /// bench/instructions.sh).
    pub name: Cow<'static, str>,
    /// Field value, decoded lossily as UTF-8.
    pub value: String,
}

/// A parsed HTTP/1.x request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Request target, e.g. `/index.html`.
    pub target: String,
    /// Minor HTTP version: 0 or 1.
    pub version: u8,
    /// Header fields in wire order; chunked trailers are appended.
    pub headers: Vec<Header>,
    /// Payload length (after de-chunking), including bytes lost in gaps.
    pub body_size: u64,
    /// First `max_body_capture` payload bytes; `None` when capture is off.
    pub body: Option<Vec<u8>>,
    /// Some payload bytes are not in `body` (capture limit reached, or lost in a gap).
    pub body_truncated: bool,
    /// The capture limit cut `body` short: `body_size` exceeds
    /// `max_body_capture` (bytes lost in a gap are said by the exchange's `gaps`).
    pub body_capped: bool,
    /// Timestamp of the push that carried the first byte of the message.
    pub start_ns: u64,
    /// Timestamp of the push that carried the last byte (for a message cut
    /// short: of the gap or close that ended it).
    pub end_ns: u64,
    /// The message was received up to its framed end.
    pub complete: bool,
    /// Bytes of the message on the wire: head, body and chunk framing (gaps included).
    pub wire_bytes: u64,
}

/// A parsed HTTP/1.x final response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Reason phrase (may be empty).
    pub reason: String,
    /// Minor HTTP version: 0 or 1.
    pub version: u8,
    /// Header fields in wire order; chunked trailers are appended.
    pub headers: Vec<Header>,
    /// Payload length (after de-chunking), including bytes lost in gaps.
    pub body_size: u64,
    /// First `max_body_capture` payload bytes; `None` when capture is off.
    pub body: Option<Vec<u8>>,
    /// Some payload bytes are not in `body` (capture limit reached, or lost in a gap).
    pub body_truncated: bool,
    /// The capture limit cut `body` short: `body_size` exceeds
    /// `max_body_capture` (bytes lost in a gap are said by the exchange's `gaps`).
    pub body_capped: bool,
    /// Timestamp of the push that carried the first byte of this final response.
    pub start_ns: u64,
    /// Timestamp of the push that carried the last byte (for a message cut
    /// short: of the gap or close that ended it).
    pub end_ns: u64,
    /// The message was received up to its framed end (or to close, if close-delimited).
    pub complete: bool,
    /// Interim 1xx statuses seen before this final response, e.g. `[100]`.
    pub informational: Vec<u16>,
    /// Bytes of the message on the wire: interim responses, head, body and chunk framing.
    pub wire_bytes: u64,
}

/// One request paired with its response.
///
/// An exchange that is neither `partial` nor `gap` is exact: its request and
/// response are the bytes sent, and the response answers the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The request; `None` when the stream was joined after it was sent, or
    /// when it was lost in a gap, or when which request the response answers
    /// could not be proven after a gap (then `gaps` says which gaps).
    pub request: Option<Request>,
    /// The final response; `None` when none arrived before close, or when it
    /// was lost in a gap, or when which response answers the request could not
    /// be proven after a gap (then `gaps` says which gaps).
    pub response: Option<Response>,
    /// A side is missing or incomplete.
    pub partial: bool,
    /// A gap touched this exchange: bytes of it were lost, or its other side
    /// may have been (see [`Http1Stream::gap`](super::Http1Stream::gap)).
    /// Always `!gaps.is_empty()`.
    pub gap: bool,
    /// Why: the causes of the gaps that touched this exchange.
    pub gaps: GapCauses,
    /// The connection switched protocols (101, or 2xx to CONNECT) after this exchange.
    pub upgraded: bool,
}
