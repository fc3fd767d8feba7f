//! Protocol detection from the first bytes of a connection's plaintext.

use crate::{http1, tls_handshake};

/// What the first bytes of a stream say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    /// An HTTP/1 request line.
    Http1Request,
    /// An HTTP/1 status line.
    Http1Response,
    /// The HTTP/2 preface.
    Http2Preface,
    /// An HTTP/2 HEADERS frame: a connection joined after its preface.
    Http2Frame,
    /// An HTTP/2 SETTINGS frame on stream 0: a server's preface (or a connection joined mid-stream).
    Http2Settings,
    /// A TLS handshake record (ciphertext follows).
    Tls,
    /// Nothing we parse.
    Other,
}

/// The same check as the kernel's `h2_headers_frame`: length 1..16384,
/// type HEADERS, only END_STREAM/END_HEADERS/PADDED/PRIORITY flags, odd stream.
pub fn looks_like_h2_headers_frame(b: &[u8]) -> bool {
    let [l0, l1, l2, ty, flags, s0, s1, s2, s3, ..] = *b else {
        return false;
    };
    let len = u32::from_be_bytes([0, l0, l1, l2]);
    let sid = u32::from_be_bytes([s0 & 0x7f, s1, s2, s3]);
    (1..=16384).contains(&len) && ty == 1 && flags & !0x2d == 0 && sid & 1 == 1
}

/// The same check as the kernel's `h2_settings_frame`.
pub fn looks_like_h2_settings_frame(b: &[u8]) -> bool {
    let [l0, l1, l2, ty, flags, s0, s1, s2, s3, ..] = *b else {
        return false;
    };
    let len = u32::from_be_bytes([0, l0, l1, l2]);
    len <= 16384
        && len.is_multiple_of(6)
        && ty == 4
        && flags & !1 == 0
        && [s0, s1, s2, s3] == [0; 4]
}

/// Classify the first bytes of one direction of a stream.
pub fn detect(first: &[u8]) -> Detected {
    if first.starts_with(b"PRI * HTTP/2") {
        Detected::Http2Preface
    } else if first.starts_with(b"HTTP/1.") {
        Detected::Http1Response
    } else if http1::looks_like_http1(first) {
        Detected::Http1Request
    } else if looks_like_h2_headers_frame(first) {
        Detected::Http2Frame
    } else if looks_like_h2_settings_frame(first) {
        Detected::Http2Settings
    } else if tls_handshake::looks_like_tls(first) {
        Detected::Tls
    } else {
        Detected::Other
    }
}

/// The application protocol a stream's first bytes imply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.x.
    Http1,
    /// HTTP/2.
    Http2,
    /// Anything else (TLS ciphertext included).
    Other,
}

impl Detected {
    /// The connection protocol this implies.
    pub fn protocol(self) -> Protocol {
        match self {
            Detected::Http1Request | Detected::Http1Response => Protocol::Http1,
            Detected::Http2Preface | Detected::Http2Frame | Detected::Http2Settings => {
                Protocol::Http2
            }
            Detected::Tls | Detected::Other => Protocol::Other,
        }
    }

    /// True when these bytes start a request (so their sender is the client).
    pub fn is_request(self) -> bool {
        matches!(self, Detected::Http1Request | Detected::Http2Preface)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_protocol() {
        assert_eq!(detect(b"GET / HTTP/1.1\r\n"), Detected::Http1Request);
        assert_eq!(
            detect(b"PROPFIND /dav/ HTTP/1.1\r\n"),
            Detected::Http1Request,
            "an extension method"
        );
        assert_eq!(detect(b"FOO /"), Detected::Other, "no version in sight");
        assert_eq!(detect(b"HTTP/1.1 200 OK\r\n"), Detected::Http1Response);
        assert_eq!(detect(crate::http2::PREFACE), Detected::Http2Preface);
        assert_eq!(detect(&[0x16, 0x03, 0x01, 0x02, 0x00]), Detected::Tls);
        assert_eq!(detect(b"\x00\x01garbage"), Detected::Other);
        assert_eq!(detect(b""), Detected::Other);
        assert_eq!(
            detect(&[0, 0, 20, 1, 0x25, 0, 0, 0, 3, 0x82]),
            Detected::Http2Frame
        );
        assert_eq!(
            detect(&[0, 0, 20, 1, 0x25, 0, 0, 0, 2]),
            Detected::Other,
            "even stream"
        );
        assert_eq!(
            detect(&[0, 0, 20, 0, 0x01, 0, 0, 0, 3]),
            Detected::Other,
            "DATA is not enough"
        );
        assert!(Detected::Http2Preface.is_request());
        assert_eq!(Detected::Http1Response.protocol(), Protocol::Http1);
    }
}
