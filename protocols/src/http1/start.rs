//! Recognising the first bytes of a message: request methods and the response version token, for resynchronisation and protocol detection.

use super::message::Side;

/// Length of the longest message start token (`"OPTIONS "`, `"CONNECT "`).
pub(super) const START_PROBE_LEN: usize = 8;

/// Tokens that start a request: a known method followed by a space.
const REQUEST_STARTS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];
/// Token that starts a response.
const RESPONSE_STARTS: [&[u8]; 1] = [b"HTTP/1."];

/// Cheap check used for protocol detection: do these first bytes start an HTTP/1 request or response?
///
/// True when they start with a known method followed by a space, or with `HTTP/1.`.
pub fn looks_like_http1(first_bytes: &[u8]) -> bool {
    start_of(Side::Request, first_bytes) == Start::Yes
        || start_of(Side::Response, first_bytes) == Start::Yes
}

/// Whether a buffer begins a message of a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Start {
    /// A full start token is present.
    Yes,
    /// The buffer is a proper prefix of a start token.
    Maybe,
    /// Not a message start.
    No,
}

/// Classifies the beginning of `buf` as a message start of `side`.
pub(super) fn start_of(side: Side, buf: &[u8]) -> Start {
    let tokens: &[&[u8]] = match side {
        Side::Request => &REQUEST_STARTS,
        Side::Response => &RESPONSE_STARTS,
    };
    if tokens.iter().any(|t| buf.starts_with(t)) {
        Start::Yes
    } else if tokens.iter().any(|t| t.starts_with(buf)) {
        Start::Maybe
    } else {
        Start::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_like_http1_cases() {
        for yes in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST ",
            b"PUT /x",
            b"HEAD ",
            b"DELETE /a",
            b"OPTIONS * HTTP/1.1",
            b"PATCH /p",
            b"CONNECT h:443",
            b"TRACE /",
            b"HTTP/1.1 200 OK",
            b"HTTP/1.0",
        ] {
            assert!(looks_like_http1(yes), "{:?}", String::from_utf8_lossy(yes));
        }
        for no in [
            &b""[..],
            b"GE",
            b"GET",
            b"GET/",
            b"get / HTTP/1.1",
            b"HTTP/1",
            b"HTTP/2 200",
            b"PRI * HTTP/2.0",
            b"\x16\x03\x01",
            b" GET /",
            b"PROPFIND / HTTP/1.1",
        ] {
            assert!(!looks_like_http1(no), "{:?}", String::from_utf8_lossy(no));
        }
    }
}
