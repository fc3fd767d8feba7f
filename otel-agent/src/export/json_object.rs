//! A JSON object written field by field into a byte buffer, for the lines
//! whose shape is fixed (the stdout exchange line).
//!
//! Keys are the caller's constants, quoted at compile time by [`key!`](crate::key)
//! and written with one copy; string values are
//! escaped by `sonic-rs` (SIMD, the same bytes as `serde_json`). Writing the
//! exchange line this way instead of through serde's map serializer took its
//! keys from ~6 % of the default mode's CPU to plain copies, and lets
//! fragments that do not change from line to line (a connection's metadata)
//! be written once and copied after (perf, default mode at saturation).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sonic_rs::format::{CompactFormatter, Formatter};

/// A key of a line's fixed shape, with its quotes and colon (`"name":`), made
/// by [`key!`](crate::key) at compile time: written with one copy. Writing
/// the quotes and colon around each key was ~2.7k instructions per exchange
/// line (bench/instructions.sh, callgrind).
#[derive(Clone, Copy, Debug)]
pub struct Key(&'static str);

impl Key {
    /// `quoted` must be `"name":` with a name that needs no escaping: use
    /// [`key!`](crate::key).
    #[doc(hidden)]
    pub const fn quoted(quoted: &'static str) -> Key {
        Key(quoted)
    }
}

/// The [`Key`] of a name that needs no escaping: `key!("direction")`.
#[macro_export]
macro_rules! key {
    ($name:literal) => {
        $crate::export::json_object::Key::quoted(concat!("\"", $name, "\":"))
    };
}

/// An open JSON object; [`JsonObject::close`] writes its `}`.
pub struct JsonObject<'b> {
    buf: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> JsonObject<'b> {
    /// Start an object at the end of `buf`.
    pub fn open(buf: &'b mut Vec<u8>) -> Self {
        buf.push(b'{');
        JsonObject { buf, first: true }
    }

    /// Continue an object whose `{` and first fields are already in `buf`
    /// (a cached prefix): the next field is written after a comma.
    pub fn continued(buf: &'b mut Vec<u8>) -> Self {
        JsonObject { buf, first: false }
    }

    /// Write `"key":` (with the comma before it when needed).
    fn key(&mut self, key: Key) -> &mut Vec<u8> {
        debug_assert!(key.0.len() >= 3 && key.0.starts_with('"') && key.0.ends_with("\":"));
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.extend_from_slice(key.0.as_bytes());
        self.buf
    }

    /// A string field.
    pub fn str(&mut self, key: Key, value: &str) {
        let buf = self.key(key);
        escaped(buf, value, true);
    }

    /// A string field, `null` when absent.
    pub fn opt_str(&mut self, key: Key, value: Option<&str>) {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    /// A string field made of several pieces (escaped as one string).
    pub fn str_of(&mut self, key: Key, pieces: &[&str]) {
        let buf = self.key(key);
        buf.push(b'"');
        for p in pieces {
            escaped(buf, p, false);
        }
        buf.push(b'"');
    }

    /// A string field whose key comes from captured data (escaped like a
    /// value), its value the `values` joined by `separator`.
    pub fn data_str<'v>(
        &mut self,
        key: &str,
        values: impl Iterator<Item = &'v str>,
        separator: &str,
    ) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        escaped(self.buf, key, true);
        self.buf.extend_from_slice(b":\"");
        for (i, v) in values.enumerate() {
            if i > 0 {
                escaped(self.buf, separator, false);
            }
            escaped(self.buf, v, false);
        }
        self.buf.push(b'"');
    }

    /// A number written as a JSON string (ids, as the lines have them).
    pub fn u64_str(&mut self, key: Key, value: u64) {
        let buf = self.key(key);
        buf.push(b'"');
        buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        buf.push(b'"');
    }

    /// A number field.
    pub fn u64(&mut self, key: Key, value: u64) {
        let buf = self.key(key);
        buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// A number field, `null` when absent.
    pub fn opt_u64(&mut self, key: Key, value: Option<u64>) {
        match value {
            Some(v) => self.u64(key, v),
            None => self.null(key),
        }
    }

    /// A boolean field.
    pub fn bool(&mut self, key: Key, value: bool) {
        let buf = self.key(key);
        buf.extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// A `null` field.
    pub fn null(&mut self, key: Key) {
        self.key(key).extend_from_slice(b"null");
    }

    /// Bytes as a base64 string field (standard alphabet, padded).
    pub fn base64(&mut self, key: Key, value: &[u8]) {
        let buf = self.key(key);
        buf.push(b'"');
        let at = buf.len();
        buf.resize(at + base64::encoded_len(value.len(), true).unwrap_or(0), 0);
        let written = STANDARD.encode_slice(value, &mut buf[at..]).unwrap_or(0);
        buf.truncate(at + written);
        buf.push(b'"');
    }

    /// An array of strings.
    pub fn str_array(&mut self, key: Key, values: &[&str]) {
        let buf = self.key(key);
        buf.push(b'[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            escaped(buf, v, true);
        }
        buf.push(b']');
    }

    /// A field whose value is already JSON.
    pub fn raw(&mut self, key: Key, json: &[u8]) {
        self.key(key).extend_from_slice(json);
    }

    /// A nested object field; close it before writing to this one again.
    pub fn object(&mut self, key: Key) -> JsonObject<'_> {
        JsonObject::open(self.key(key))
    }

    /// The buffer, to write a fragment already in JSON form (such as a
    /// cached run of fields starting with a comma).
    pub fn buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    /// Write the closing `}`.
    pub fn close(self) {
        self.buf.push(b'}');
    }
}

/// Append `value` as JSON string content, with its quotes when `quoted`.
pub fn escaped(buf: &mut Vec<u8>, value: &str, quoted: bool) {
    // Writing into a Vec cannot fail.
    let _ = CompactFormatter.write_string_fast(buf, value, quoted);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut JsonObject<'_>)) -> String {
        let mut buf = Vec::new();
        let mut o = JsonObject::open(&mut buf);
        f(&mut o);
        o.close();
        String::from_utf8(buf).expect("UTF-8")
    }

    #[test]
    fn fields_of_every_kind() {
        let line = written(|o| {
            o.str(crate::key!("a"), "x\"y\n");
            o.opt_str(crate::key!("b"), None);
            o.str_of(crate::key!("c"), &["http", "://", "h", "/p\t"]);
            o.u64_str(crate::key!("d"), 12);
            o.u64(crate::key!("e"), u64::MAX);
            o.opt_u64(crate::key!("f"), None);
            o.bool(crate::key!("g"), false);
            o.base64(crate::key!("h"), b"\x00\xffab");
            o.str_array(crate::key!("i"), &["1", "\u{1}"]);
            o.raw(crate::key!("j"), b"[1]");
            let mut n = o.object(crate::key!("k"));
            n.bool(crate::key!("l"), true);
            n.close();
            o.null(crate::key!("m"));
            o.data_str("x\"y", ["a", "b\n"].into_iter(), ", ");
        });
        let expected = serde_json::json!({
            "a": "x\"y\n", "b": null, "c": "http://h/p\t", "d": "12", "e": u64::MAX,
            "f": null, "g": false, "h": "AP9hYg==", "i": ["1", "\u{1}"], "j": [1],
            "k": {"l": true}, "m": null, "x\"y": "a, b\n",
        });
        assert_eq!(line, serde_json::to_string(&expected).expect("JSON"));
    }

    #[test]
    fn an_empty_object_and_a_continued_one() {
        assert_eq!(written(|_| {}), "{}");
        let mut buf = b"{\"a\":1".to_vec();
        let mut o = JsonObject::continued(&mut buf);
        o.u64(crate::key!("b"), 2);
        o.close();
        assert_eq!(buf, b"{\"a\":1,\"b\":2}");
    }
}
