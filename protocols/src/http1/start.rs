//! Recognising the first bytes of a message: request lines (standard and
//! extension methods) and the response version token, for protocol detection
//! and resynchronisation.

use super::message::Side;

/// Length of the longest message start token (`"OPTIONS "`, `"CONNECT "`).
pub(super) const START_PROBE_LEN: usize = 8;

/// Bytes of a stream's start that decide whether it is an HTTP/1 request:
/// the kernel's `HTTP1_START_WINDOW` (`bpf-probes/bpf/socket/http1_start.h`),
/// which copies this many bytes of a connection's first write for sniffing.
pub const START_WINDOW: usize = 64;
/// The longest method token recognised (`HTTP1_MAX_METHOD`).
pub const MAX_METHOD_LEN: usize = 20;

/// Tokens that start a request: a standard method (RFC 9110, `PATCH`,
/// `QUERY`) followed by a space — the kernel's `http1_standard_method`.
const REQUEST_STARTS: [&[u8]; 10] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"QUERY ",
];
/// Token that starts a response.
const RESPONSE_STARTS: [&[u8]; 1] = [b"HTTP/1."];
/// What follows the request target.
const VERSION_START: &[u8] = b" HTTP/1.";

/// Cheap check used for protocol detection: do these first bytes start an HTTP/1 request or response?
///
/// True when they start with `HTTP/1.` or pass [`request_line_start`].
pub fn looks_like_http1(first_bytes: &[u8]) -> bool {
    start_of(Side::Response, first_bytes) == Start::Yes || request_line_start(first_bytes)
}

/// Do the first bytes of a stream start an HTTP/1 request line? The twin of
/// the kernel's `http1_request_start`, tested against the same cases
/// (`protocols/testdata/http1/request_starts.txt`).
///
/// Within the first [`START_WINDOW`] bytes: a standard method followed by a
/// space; or any method token (1 to [`MAX_METHOD_LEN`] RFC 9110 `tchar`s)
/// followed by a space, a request target (bytes above space, not DEL) and
/// ` HTTP/1.`. Control bytes fail it, so TLS records and binary protocols do.
pub fn request_line_start(first_bytes: &[u8]) -> bool {
    let p = first_bytes.get(..START_WINDOW).unwrap_or(first_bytes);
    if REQUEST_STARTS.iter().any(|t| p.starts_with(t)) {
        return true;
    }
    let Some(sp) = p.iter().position(|&c| !is_tchar(c)) else {
        return false;
    };
    if sp == 0 || sp > MAX_METHOD_LEN || p.get(sp) != Some(&b' ') {
        return false;
    }
    let rest = p.get(sp + 1..).unwrap_or_default();
    let target = rest.iter().take_while(|&&c| is_target_byte(c)).count();
    target > 0
        && rest
            .get(target..target + VERSION_START.len())
            .is_some_and(|v| v == VERSION_START)
}

/// RFC 9110 `tchar`: letters, digits and ``!#$%&'*+-.^_`|~``.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// A request-target byte: above space, not DEL (non-ASCII allowed).
fn is_target_byte(c: u8) -> bool {
    c > 0x20 && c != 0x7f
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

    /// The cases shared with the kernel's `http1_request_start`
    /// (`bpf-probes/tests/http1_start.rs` runs them against the C).
    #[test]
    fn request_line_start_agrees_with_the_shared_cases() {
        let cases = crate::testdata::request_start_cases();
        assert!(cases.len() > 30, "{} cases", cases.len());
        for (line, bytes, expected) in cases {
            assert_eq!(request_line_start(&bytes), expected, "line {line}");
        }
    }

    #[test]
    fn probing_after_lost_boundaries_knows_the_standard_methods_only() {
        assert_eq!(start_of(Side::Request, b"GET "), Start::Yes);
        assert_eq!(start_of(Side::Request, b"QUERY /"), Start::Yes);
        assert_eq!(start_of(Side::Request, b"GE"), Start::Maybe);
        assert_eq!(start_of(Side::Request, b"PROPFIND"), Start::No);
    }

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
            b"QUERY /q",
            b"PROPFIND / HTTP/1.1",
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
            b"get /",
            b"HTTP/1",
            b"HTTP/2 200",
            b"PRI * HTTP/2.0",
            b"\x16\x03\x01",
            b" GET /",
            b"PROPFIND / HTTP/1",
        ] {
            assert!(!looks_like_http1(no), "{:?}", String::from_utf8_lossy(no));
        }
    }
}
