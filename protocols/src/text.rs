//! Captured bytes as text: header names and values, invalid UTF-8 replaced
//! by U+FFFD.
//!
//! Validated first, converted lossily only when invalid: the lossy
//! conversion's chunk iterator was ~2 % of the agent's CPU in the default
//! mode at saturation (perf) on values that are nearly always ASCII.
//!
//! ASCII (nearly every value) is told by `is_ascii`, which reads a word at a
//! time at any alignment, and taken as text without a second check. The
//! UTF-8 check alone was ~110 instructions per value of 10–30 bytes; without
//! it a replayed exchange takes 687 fewer at level `details` (HTTP/1, stdout
//! JSON) and 633 fewer over HTTP/2 (bench/instructions.sh, callgrind).

/// `bytes` as text.
#[allow(unsafe_code)]
pub(crate) fn lossy(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return unsafe { std::str::from_utf8_unchecked(bytes) }.to_owned();
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Owned `bytes` as text, without a copy when they are valid UTF-8.
#[allow(unsafe_code)]
pub(crate) fn lossy_owned(bytes: Vec<u8>) -> String {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return unsafe { String::from_utf8_unchecked(bytes) };
    }
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_is_kept_and_invalid_bytes_replaced() {
        for (bytes, text) in [
            (&b"text/html"[..], "text/html"),
            (b"caf\xc3\xa9", "café"),
            (b"a\xffb", "a\u{fffd}b"),
            (b"\xe2\x82", "\u{fffd}"),
            (b"", ""),
        ] {
            assert_eq!(lossy(bytes), text);
            assert_eq!(lossy_owned(bytes.to_vec()), text);
        }
    }
}
