//! The HTTP/2 client connection preface and the protocol detection check built on it.

/// The HTTP/2 client connection preface, sent first on the request side.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Cheap check used for protocol detection: do these first bytes of a stream
/// start with the HTTP/2 client preface?
///
/// True when `first` begins with [`PREFACE`], or is a prefix of it at least 4
/// bytes long (`"PRI "`), so that a short first read is recognised.
pub fn looks_like_http2_preface(first: &[u8]) -> bool {
    if first.len() >= PREFACE.len() {
        first.starts_with(PREFACE)
    } else {
        first.len() >= 4 && PREFACE.starts_with(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preface_detection() {
        assert!(looks_like_http2_preface(PREFACE));
        assert!(looks_like_http2_preface(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"
        ));
        assert!(looks_like_http2_preface(b"PRI * HT"));
        assert!(!looks_like_http2_preface(b"PRI"));
        assert!(!looks_like_http2_preface(b"GET / HTTP/1.1\r\n"));
        assert!(!looks_like_http2_preface(
            b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"
        ));
    }
}
