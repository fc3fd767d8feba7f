//! Content decoding of captured bodies at level `full`, when asked
//! (`capture.decompress`): gzip, deflate (zlib or raw) and br, bounded by the
//! body limit so that a small compressed body cannot expand without end.
//!
//! Only a whole body is decoded: a body cut by the limit, the kernel's cap
//! or a gap stays as it was captured. `body_size` always stays the size on
//! the wire; the exchange names the encoding it decoded.

use std::io::Read;

/// A `Content-Encoding` this module decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` (or `x-gzip`).
    Gzip,
    /// `deflate`: zlib, or raw deflate as some servers send it.
    Deflate,
    /// `br`.
    Brotli,
}

impl Coding {
    /// The coding a `Content-Encoding` value names, if it is one coding we
    /// decode (a list of several codings is left alone).
    pub fn of(content_encoding: &str) -> Option<Self> {
        match content_encoding.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "deflate" => Some(Self::Deflate),
            "br" => Some(Self::Brotli),
            _ => None,
        }
    }

    /// The name shown on the exchange.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Brotli => "br",
        }
    }
}

/// A decoded body: at most `limit` bytes, `truncated` when the decoded body
/// was longer.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The decoded bytes, at most the limit.
    pub body: Vec<u8>,
    /// The decoded body was longer than the limit.
    pub truncated: bool,
}

/// Decode `body` as `coding`, keeping at most `limit` bytes; `None` when the
/// bytes are not valid for the coding (the body is then kept as captured).
pub fn decode(coding: Coding, body: &[u8], limit: usize) -> Option<Decoded> {
    match coding {
        Coding::Gzip => bounded(flate2::read::GzDecoder::new(body), limit),
        // "deflate" is zlib by the RFC, raw deflate in some servers' hands.
        Coding::Deflate => bounded(flate2::read::ZlibDecoder::new(body), limit)
            .or_else(|| bounded(flate2::read::DeflateDecoder::new(body), limit)),
        Coding::Brotli => bounded(brotli_decompressor::Decompressor::new(body, 4096), limit),
    }
}

/// Read at most `limit` bytes (and one more, to know whether there were more).
fn bounded(reader: impl Read, limit: usize) -> Option<Decoded> {
    let mut body = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut body).ok()?;
    let truncated = body.len() > limit;
    body.truncate(limit);
    Some(Decoded { body, truncated })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn codings_are_named_by_their_content_encoding() {
        assert_eq!(Coding::of("gzip"), Some(Coding::Gzip));
        assert_eq!(Coding::of(" X-GZIP "), Some(Coding::Gzip));
        assert_eq!(Coding::of("deflate"), Some(Coding::Deflate));
        assert_eq!(Coding::of("br"), Some(Coding::Brotli));
        assert_eq!(
            Coding::of("gzip, br"),
            None,
            "several codings are left alone"
        );
        assert_eq!(Coding::of("zstd"), None);
        assert_eq!(Coding::of("identity"), None);
    }

    #[test]
    fn gzip_and_deflate_decode_within_the_limit() {
        let text = b"hello hello hello hello".repeat(10);
        let d = decode(Coding::Gzip, &gzip(&text), 1 << 20).unwrap();
        assert_eq!((d.body.as_slice(), d.truncated), (&text[..], false));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let d = decode(Coding::Deflate, &z.finish().unwrap(), 1 << 20).unwrap();
        assert_eq!(d.body, text);
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&text).unwrap();
        let d = decode(Coding::Deflate, &raw.finish().unwrap(), 1 << 20).unwrap();
        assert_eq!(d.body, text, "raw deflate too");
    }

    #[test]
    fn brotli_decodes() {
        // "hello" compressed with brotli (quality 11), by the reference encoder.
        let br = [0x0b, 0x02, 0x80, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x03];
        let d = decode(Coding::Brotli, &br, 100).unwrap();
        assert_eq!(d.body, b"hello");
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let small = gzip(&zeros);
        assert!(small.len() < 64 * 1024);
        let d = decode(Coding::Gzip, &small, 4096).unwrap();
        assert_eq!((d.body.len(), d.truncated), (4096, true));
    }

    #[test]
    fn garbage_is_not_decoded() {
        assert_eq!(decode(Coding::Gzip, b"not gzip at all", 100), None);
        assert_eq!(decode(Coding::Deflate, b"\xff\xff\xff\xff", 100), None);
    }
}
