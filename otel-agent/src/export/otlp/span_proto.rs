//! OTLP protobuf written straight from the agent's span records: no SDK
//! `SpanData`, no per-attribute `KeyValue`, no conversion into the generated
//! protobuf structs and no copy per export attempt. A span is encoded once,
//! when its exchange is mapped, into the bytes of one `Span` message; an
//! export request is those bytes framed by their resource and scope, and a
//! retry sends the same bytes again.
//!
//! Measured hot path (`cargo bench -p otel-agent --bench pipeline`): building
//! `SpanData` and letting the SDK convert and encode it took ~40 % of the
//! pipeline's time per exchange; the figures are in BENCHMARKS.md. The wire
//! format is checked against the generated `opentelemetry-proto` types in the
//! tests below (decoded and compared field by field).

use prost::encoding::{encoded_len_varint, WireType};
use semconv::model::{Connection, ProcessInfo};
use semconv::resource::process_attributes;
use semconv::spans::{connection_attributes, SpanHead, SpanKind, SpanStatus};
use semconv::value::{AttrValue, Attribute, AttributeSink};

/// Ids and trace state of one span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanIds {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// Span id.
    pub span_id: [u8; 8],
    /// Parent span id; all zero for a root span.
    pub parent_span_id: [u8; 8],
    /// The parent is in another process (a captured `traceparent`).
    pub parent_is_remote: bool,
    /// W3C trace flags (bit 0: sampled).
    pub trace_flags: u8,
    /// W3C `tracestate` header value (empty for none).
    pub trace_state: String,
}

/// One span's `Span` message, encoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodedSpan(pub Vec<u8>);

/// Field number of `Span.attributes`: the field an [`AttributeWriter`]
/// writes a span's attributes as.
pub const SPAN_ATTRIBUTES: u32 = field::SPAN_ATTRIBUTES;

// Field numbers of opentelemetry/proto/trace/v1/trace.proto and common.proto.
mod field {
    pub const SPAN_TRACE_ID: u32 = 1;
    pub const SPAN_SPAN_ID: u32 = 2;
    pub const SPAN_TRACE_STATE: u32 = 3;
    pub const SPAN_PARENT_SPAN_ID: u32 = 4;
    pub const SPAN_NAME: u32 = 5;
    pub const SPAN_KIND: u32 = 6;
    pub const SPAN_START: u32 = 7;
    pub const SPAN_END: u32 = 8;
    pub const SPAN_ATTRIBUTES: u32 = 9;
    pub const SPAN_STATUS: u32 = 15;
    pub const SPAN_FLAGS: u32 = 16;
    pub const STATUS_MESSAGE: u32 = 2;
    pub const STATUS_CODE: u32 = 3;
    pub const KV_KEY: u32 = 1;
    pub const KV_VALUE: u32 = 2;
    pub const ANY_STRING: u32 = 1;
    pub const ANY_BOOL: u32 = 2;
    pub const ANY_INT: u32 = 3;
    pub const ANY_ARRAY: u32 = 5;
    pub const ARRAY_VALUES: u32 = 1;
    pub const REQUEST_RESOURCE_SPANS: u32 = 1;
    pub const RESOURCE_SPANS_RESOURCE: u32 = 1;
    pub const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
    pub const RESOURCE_SPANS_SCHEMA_URL: u32 = 3;
    pub const SCOPE_SPANS_SCOPE: u32 = 1;
    pub const SCOPE_SPANS_SPANS: u32 = 2;
}

/// `SpanKind` enum values.
const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
/// `Status.StatusCode::ERROR`.
const STATUS_ERROR: u64 = 2;
/// `SpanFlags`: the remote bit below is meaningful / the parent is remote.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// Append `v` as a protobuf varint. Written here rather than with prost's
/// `encode_varint`, which goes through `BufMut` one byte at a time: that was
/// 7 % of the pipeline bench's time per exchange (perf, HTTP/1 summary).
#[inline]
fn encode_varint(v: u64, buf: &mut Vec<u8>) {
    if v < 0x80 {
        buf.push(v as u8);
        return;
    }
    let mut p = Prefix::new();
    p.varint(v);
    p.flush(buf);
}

#[inline]
fn encode_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    encode_varint(u64::from(tag << 3 | wire_type as u32), buf);
}

/// The one-byte key of field `tag` (below 16) of `wire_type`.
const fn key_byte(tag: u32, wire_type: WireType) -> u8 {
    (tag << 3 | wire_type as u32) as u8
}

/// Length of a length-delimited field holding `len` bytes.
fn delimited_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_delimited(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

fn put_header(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn put_varint(tag: u32, v: u64, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::Varint, buf);
    encode_varint(v, buf);
}

fn put_fixed64(tag: u32, v: u64, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_fixed32(tag: u32, v: u32, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::ThirtyTwoBit, buf);
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Length of the `ArrayValue` message of strings `a`.
fn array_len<S: AsRef<str>>(a: &[S]) -> usize {
    a.iter()
        .map(|s| {
            delimited_len(
                field::ARRAY_VALUES,
                delimited_len(field::ANY_STRING, s.as_ref().len()),
            )
        })
        .sum()
}

/// Field keys and length prefixes gathered on the stack and appended with
/// one copy: writing them byte by byte into the buffer (a capacity check
/// each) was most of the ~260 instructions per attribute of
/// [`put_attributes`] (bench/instructions.sh, callgrind).
struct Prefix {
    bytes: [u8; Prefix::CAPACITY],
    len: usize,
}

impl Prefix {
    /// Room for two field keys and two length prefixes (a key is a varint
    /// of at most 5 bytes, a length one of at most 10).
    const CAPACITY: usize = 32;

    fn new() -> Self {
        Prefix {
            bytes: [0; Prefix::CAPACITY],
            len: 0,
        }
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    #[inline]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// The key of field `tag` of `wire_type`.
    #[inline]
    fn key(&mut self, tag: u32, wire_type: WireType) {
        self.varint(u64::from(tag << 3 | wire_type as u32));
    }

    /// The key of length-delimited field `tag`, then `len`.
    #[inline]
    fn header(&mut self, tag: u32, len: usize) {
        self.key(tag, WireType::LengthDelimited);
        self.varint(len as u64);
    }

    /// Append to `buf`, and start again. All the bytes are copied and the
    /// unused ones cut off again: a copy of a constant size compiles to a
    /// few moves, where one of `len` bytes calls `memcpy`.
    #[inline]
    fn flush(&mut self, buf: &mut Vec<u8>) {
        let end = buf.len() + self.len;
        buf.extend_from_slice(&self.bytes);
        buf.truncate(end);
        self.len = 0;
    }
}

/// Attributes appended as repeated `KeyValue` field `tag`, each written as
/// it comes: the mapping (`semconv::spans::span_into`) puts them straight
/// into the span's bytes, with no attribute list and no copy of a value in
/// between (that list and its strings were ~4.6k instructions per span,
/// bench/instructions.sh).
pub struct AttributeWriter<'b> {
    tag: u32,
    buf: &'b mut Vec<u8>,
    /// A process and its attributes as this writer writes them.
    process: Option<(&'b ProcessInfo, &'b [u8])>,
    /// A connection (by id) and its attributes as this writer writes them.
    connection: Option<(u64, &'b [u8])>,
}

impl<'b> AttributeWriter<'b> {
    /// Append to `buf` as field `tag`.
    pub fn new(tag: u32, buf: &'b mut Vec<u8>) -> Self {
        AttributeWriter {
            tag,
            buf,
            process: None,
            connection: None,
        }
    }

    /// Write `encoded` for the attributes of connection `c`: what this
    /// writer wrote for them before (`connection_attributes`).
    pub fn with_connection(mut self, c: &Connection, encoded: &'b [u8]) -> Self {
        self.connection = Some((c.id, encoded));
        self
    }

    /// Write `encoded` for process `p`'s attributes: what this writer
    /// wrote for them before (the mapping was ~1.2k instructions per
    /// span, bench/instructions.sh).
    pub fn with_process(mut self, p: &'b ProcessInfo, encoded: &'b [u8]) -> Self {
        self.process = Some((p, encoded));
        self
    }

    /// The `KeyValue` header and key, then the header of an `AnyValue` of
    /// `value_len` bytes: in the prefix returned, for the value to follow.
    #[inline(always)]
    fn start(&mut self, key: &str, value_len: usize) -> Prefix {
        let kv_len =
            delimited_len(field::KV_KEY, key.len()) + delimited_len(field::KV_VALUE, value_len);
        let mut p = Prefix::new();
        p.header(self.tag, kv_len);
        p.header(field::KV_KEY, key.len());
        p.flush(self.buf);
        self.buf.extend_from_slice(key.as_bytes());
        p.header(field::KV_VALUE, value_len);
        p
    }

    /// When the whole `KeyValue` is shorter than 128 bytes (the usual
    /// attribute), so that every length is one byte: its framing up to the
    /// key and the key, written with one copy of a constant size, then
    /// true; the caller writes the `AnyValue` of `value_len` bytes the same
    /// way. Otherwise nothing, and false. ~40 instructions per attribute
    /// fewer than [`Self::start`] (bench/instructions.sh).
    #[inline(always)]
    fn short_start(&mut self, key: &str, value_len: usize) -> bool {
        let kv_len =
            delimited_len(field::KV_KEY, key.len()) + delimited_len(field::KV_VALUE, value_len);
        let (Ok(kv), Ok(tag)) = (u8::try_from(kv_len), u8::try_from(self.tag)) else {
            return false;
        };
        if kv >= 0x80 || tag >= 16 {
            return false;
        }
        // Below 128 in all: the key's and the value's lengths too.
        let Ok(key_len) = u8::try_from(key.len()) else {
            return false;
        };
        self.buf.reserve(kv_len + 2);
        self.buf.extend_from_slice(&[
            key_byte(u32::from(tag), WireType::LengthDelimited),
            kv,
            key_byte(field::KV_KEY, WireType::LengthDelimited),
            key_len,
        ]);
        self.buf.extend_from_slice(key.as_bytes());
        true
    }

    /// A string attribute.
    pub fn string(&mut self, key: &str, value: &str) {
        let any_len = delimited_len(field::ANY_STRING, value.len());
        if self.short_start(key, any_len) {
            // `short_start` checked both lengths are below 128.
            self.buf.extend_from_slice(&[
                key_byte(field::KV_VALUE, WireType::LengthDelimited),
                any_len as u8,
                key_byte(field::ANY_STRING, WireType::LengthDelimited),
                value.len() as u8,
            ]);
            self.buf.extend_from_slice(value.as_bytes());
            return;
        }
        let mut p = self.start(key, any_len);
        p.header(field::ANY_STRING, value.len());
        p.flush(self.buf);
        self.buf.extend_from_slice(value.as_bytes());
    }

    /// An integer attribute.
    pub fn integer(&mut self, key: &str, value: i64) {
        if let Ok(small @ 0..0x80) = u8::try_from(value) {
            if self.short_start(key, 2) {
                self.buf.extend_from_slice(&[
                    key_byte(field::KV_VALUE, WireType::LengthDelimited),
                    2,
                    key_byte(field::ANY_INT, WireType::Varint),
                    small,
                ]);
                return;
            }
        }
        let mut p = self.start(key, 1 + encoded_len_varint(value as u64));
        p.key(field::ANY_INT, WireType::Varint);
        p.varint(value as u64);
        p.flush(self.buf);
    }

    /// A boolean attribute.
    pub fn boolean(&mut self, key: &str, value: bool) {
        if self.short_start(key, 2) {
            self.buf.extend_from_slice(&[
                key_byte(field::KV_VALUE, WireType::LengthDelimited),
                2,
                key_byte(field::ANY_BOOL, WireType::Varint),
                u8::from(value),
            ]);
            return;
        }
        let mut p = self.start(key, 2);
        p.key(field::ANY_BOOL, WireType::Varint);
        p.byte(u8::from(value));
        p.flush(self.buf);
    }

    /// A string-array attribute.
    pub fn strings<S: AsRef<str>>(&mut self, key: &str, values: &[S]) {
        let array_len = array_len(values);
        let mut p = self.start(key, delimited_len(field::ANY_ARRAY, array_len));
        p.header(field::ANY_ARRAY, array_len);
        p.flush(self.buf);
        for s in values {
            let s = s.as_ref();
            p.header(
                field::ARRAY_VALUES,
                delimited_len(field::ANY_STRING, s.len()),
            );
            p.header(field::ANY_STRING, s.len());
            p.flush(self.buf);
            self.buf.extend_from_slice(s.as_bytes());
        }
    }

    /// One attribute of a list.
    pub fn attribute(&mut self, a: &Attribute) {
        match &a.value {
            AttrValue::Str(s) => self.string(&a.key, s),
            AttrValue::Int(i) => self.integer(&a.key, *i),
            AttrValue::Bool(b) => self.boolean(&a.key, *b),
            AttrValue::StrArray(v) => self.strings(&a.key, v),
        }
    }
}

impl AttributeSink for AttributeWriter<'_> {
    fn str(&mut self, key: &'static str, value: &str) {
        self.string(key, value);
    }

    fn int(&mut self, key: &'static str, value: i64) {
        self.integer(key, value);
    }

    fn bool(&mut self, key: &'static str, value: bool) {
        self.boolean(key, value);
    }

    fn str_array<S: AsRef<str>>(&mut self, key: &str, values: &[S]) {
        self.strings(key, values);
    }

    fn str_of(&mut self, key: &'static str, parts: &[&str]) {
        let len = parts.iter().map(|p| p.len()).sum();
        let mut p = self.start(key, delimited_len(field::ANY_STRING, len));
        p.header(field::ANY_STRING, len);
        p.flush(self.buf);
        for part in parts {
            self.buf.extend_from_slice(part.as_bytes());
        }
    }

    fn process(&mut self, p: &ProcessInfo) {
        match self.process {
            Some((kept, encoded)) if std::ptr::eq(kept, p) => self.buf.extend_from_slice(encoded),
            _ => process_attributes(p, self),
        }
    }

    fn connection(&mut self, c: &Connection) {
        match self.connection {
            Some((id, encoded)) if id == c.id => self.buf.extend_from_slice(encoded),
            _ => connection_attributes(c, self),
        }
    }
}

/// Append `attrs` as repeated `KeyValue` field `tag`.
pub fn put_attributes(tag: u32, attrs: &[Attribute], buf: &mut Vec<u8>) {
    let mut w = AttributeWriter::new(tag, buf);
    for a in attrs {
        w.attribute(a);
    }
}

/// The `Span` message of `r` with `ids` and `attributes` (repeated field
/// [`SPAN_ATTRIBUTES`], as an [`AttributeWriter`] writes them), appended to
/// `buf` (which a caller may reuse: nothing else is allocated).
pub fn encode_span(r: &SpanHead, ids: &SpanIds, attributes: &[u8], buf: &mut Vec<u8>) {
    put_delimited(field::SPAN_TRACE_ID, &ids.trace_id, buf);
    put_delimited(field::SPAN_SPAN_ID, &ids.span_id, buf);
    if !ids.trace_state.is_empty() {
        put_delimited(field::SPAN_TRACE_STATE, ids.trace_state.as_bytes(), buf);
    }
    if ids.parent_span_id != [0; 8] {
        put_delimited(field::SPAN_PARENT_SPAN_ID, &ids.parent_span_id, buf);
    }
    put_delimited(field::SPAN_NAME, r.name.as_bytes(), buf);
    let kind = match r.kind {
        SpanKind::Client => KIND_CLIENT,
        SpanKind::Server => KIND_SERVER,
    };
    put_varint(field::SPAN_KIND, kind, buf);
    put_fixed64(field::SPAN_START, r.start_unix_ns, buf);
    put_fixed64(field::SPAN_END, r.end_unix_ns.max(r.start_unix_ns), buf);
    buf.extend_from_slice(attributes);
    match &r.status {
        // An empty Status message: code UNSET, no message.
        SpanStatus::Unset => put_header(field::SPAN_STATUS, 0, buf),
        SpanStatus::Error { description } => {
            let len = 2 + if description.is_empty() {
                0
            } else {
                delimited_len(field::STATUS_MESSAGE, description.len())
            };
            put_header(field::SPAN_STATUS, len, buf);
            if !description.is_empty() {
                put_delimited(field::STATUS_MESSAGE, description.as_bytes(), buf);
            }
            put_varint(field::STATUS_CODE, STATUS_ERROR, buf);
        }
    }
    let mut flags = u32::from(ids.trace_flags) | FLAG_HAS_IS_REMOTE;
    if ids.parent_is_remote {
        flags |= FLAG_IS_REMOTE;
    }
    put_fixed32(field::SPAN_FLAGS, flags, buf);
}

/// An `ExportTraceServiceRequest` body, written into a reused buffer: one
/// `ResourceSpans` per resource, each with one `ScopeSpans` of the agent's
/// scope. `resource` and `scope` are the encoded `Resource` and
/// `InstrumentationScope` messages.
#[derive(Debug, Default)]
pub struct RequestWriter {
    buf: Vec<u8>,
    /// Length of the last request taken: a new buffer starts with room
    /// for as much.
    last_len: usize,
}

impl RequestWriter {
    /// Start a new request (the previous one's bytes are dropped, the
    /// capacity kept).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Start a new request in `buf` (emptied), with room for as much as the
    /// last request.
    pub fn start(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        buf.reserve(self.last_len);
        self.buf = buf;
    }

    /// Add the spans of one resource.
    pub fn resource_spans<'a>(
        &mut self,
        resource: &[u8],
        schema_url: &str,
        scope: &[u8],
        spans: impl Iterator<Item = &'a EncodedSpan> + Clone,
    ) {
        let spans_len: usize = spans
            .clone()
            .map(|s| delimited_len(field::SCOPE_SPANS_SPANS, s.0.len()))
            .sum();
        let scope_spans_len = delimited_len(field::SCOPE_SPANS_SCOPE, scope.len()) + spans_len;
        let mut len = delimited_len(field::RESOURCE_SPANS_RESOURCE, resource.len())
            + delimited_len(field::RESOURCE_SPANS_SCOPE_SPANS, scope_spans_len);
        if !schema_url.is_empty() {
            len += delimited_len(field::RESOURCE_SPANS_SCHEMA_URL, schema_url.len());
        }
        let buf = &mut self.buf;
        buf.reserve(delimited_len(field::REQUEST_RESOURCE_SPANS, len));
        put_header(field::REQUEST_RESOURCE_SPANS, len, buf);
        put_delimited(field::RESOURCE_SPANS_RESOURCE, resource, buf);
        put_header(field::RESOURCE_SPANS_SCOPE_SPANS, scope_spans_len, buf);
        put_delimited(field::SCOPE_SPANS_SCOPE, scope, buf);
        for s in spans {
            put_delimited(field::SCOPE_SPANS_SPANS, &s.0, buf);
        }
        if !schema_url.is_empty() {
            put_delimited(field::RESOURCE_SPANS_SCHEMA_URL, schema_url.as_bytes(), buf);
        }
    }

    /// The request written so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The request written, handed over whole (no copy); the writer is
    /// left without a buffer until [`Self::start`].
    pub fn take(&mut self) -> Vec<u8> {
        self.last_len = self.buf.len();
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as PValue;
    use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
    use prost::Message as _;
    use semconv::spans::SpanRecord;
    use semconv::trace_context::TracePlace;

    use super::*;

    /// `r` encoded as the span builder does: its attributes written first.
    fn encode(r: &SpanRecord, i: &SpanIds, buf: &mut Vec<u8>) {
        let mut attributes = Vec::new();
        put_attributes(SPAN_ATTRIBUTES, &r.attributes, &mut attributes);
        let head = SpanHead {
            name: r.name.as_str().into(),
            kind: r.kind,
            start_unix_ns: r.start_unix_ns,
            end_unix_ns: r.end_unix_ns,
            status: r.status.clone(),
        };
        encode_span(&head, i, &attributes, buf);
    }

    fn record(status: SpanStatus) -> SpanRecord {
        SpanRecord {
            name: "GET".into(),
            kind: SpanKind::Server,
            start_unix_ns: 1_700_000_000_000_000_000,
            end_unix_ns: 1_700_000_000_000_123_456,
            attributes: vec![
                Attribute::str("http.request.method", "GET"),
                Attribute::int("http.response.status_code", 200),
                Attribute::int("tap.negative", -5),
                Attribute::bool("tap.gap", false),
                Attribute {
                    key: "http.request.header.accept".into(),
                    value: AttrValue::StrArray(vec!["a/b".into(), String::new(), "é".into()]),
                },
                Attribute::str("url.path", ""),
            ],
            status,
            trace: TracePlace::Root,
        }
    }

    fn ids(parent: bool) -> SpanIds {
        SpanIds {
            trace_id: [7; 16],
            span_id: [3; 8],
            parent_span_id: if parent { [9; 8] } else { [0; 8] },
            parent_is_remote: parent,
            trace_flags: 1,
            trace_state: if parent { "k=v".into() } else { String::new() },
        }
    }

    fn decode(r: &SpanRecord, i: &SpanIds) -> Span {
        let mut buf = Vec::new();
        encode(r, i, &mut buf);
        Span::decode(buf.as_slice()).expect("a valid Span message")
    }

    #[test]
    fn varints_match_prost() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
            -5i64 as u64,
        ] {
            let mut ours = Vec::new();
            encode_varint(v, &mut ours);
            let mut theirs = Vec::new();
            prost::encoding::encode_varint(v, &mut theirs);
            assert_eq!(ours, theirs, "{v}");
            assert_eq!(ours.len(), encoded_len_varint(v));
        }
    }

    #[test]
    fn a_span_decodes_field_by_field() {
        let s = decode(&record(SpanStatus::Unset), &ids(false));
        assert_eq!(s.trace_id, vec![7; 16]);
        assert_eq!(s.span_id, vec![3; 8]);
        assert!(s.parent_span_id.is_empty());
        assert_eq!(s.trace_state, "");
        assert_eq!(s.name, "GET");
        assert_eq!(s.kind, 2);
        assert_eq!(s.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(s.end_time_unix_nano, 1_700_000_000_000_123_456);
        assert_eq!(s.flags, 0x101);
        let status = s.status.expect("status");
        assert_eq!(status.code, StatusCode::Unset as i32);
        assert_eq!(status.message, "");
        let value = |k: &str| {
            s.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(
            value("http.request.method"),
            Some(PValue::StringValue("GET".into()))
        );
        assert_eq!(
            value("http.response.status_code"),
            Some(PValue::IntValue(200))
        );
        assert_eq!(value("tap.negative"), Some(PValue::IntValue(-5)));
        assert_eq!(value("tap.gap"), Some(PValue::BoolValue(false)));
        assert_eq!(value("url.path"), Some(PValue::StringValue(String::new())));
        let Some(PValue::ArrayValue(a)) = value("http.request.header.accept") else {
            panic!("an array");
        };
        let strings: Vec<_> = a.values.into_iter().map(|v| v.value).collect();
        assert_eq!(
            strings,
            vec![
                Some(PValue::StringValue("a/b".into())),
                Some(PValue::StringValue(String::new())),
                Some(PValue::StringValue("é".into())),
            ]
        );
        assert_eq!(s.attributes.len(), 6);
    }

    /// The same bytes as prost's encoding of the generated `KeyValue`s, with
    /// keys and values long enough for two- and three-byte length prefixes,
    /// and the extreme integers.
    #[test]
    fn attributes_encode_as_prost_does() {
        use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue as PKeyValue};
        let long = |n: usize| "k".repeat(n);
        let attrs = vec![
            Attribute::str(long(200), long(20_000)),
            Attribute::str(long(127), long(128)),
            Attribute::int("min", i64::MIN),
            Attribute::int("max", i64::MAX),
            Attribute::int("zero", 0),
            Attribute::bool("yes", true),
            // Around the one-byte framing (`short_start`): a KeyValue of
            // 126, 127 and 128 bytes, small and larger integers.
            Attribute::str("k", "v"),
            Attribute::str(long(60), long(60)),
            Attribute::str(long(60), long(61)),
            Attribute::str(long(61), long(61)),
            Attribute::int("small", 127),
            Attribute::int("big", 128),
            Attribute::int(long(122), 127),
            Attribute::int(long(123), 127),
            Attribute::bool("no", false),
            Attribute::str_array(long(300), vec![long(130), String::new()]),
        ];
        let theirs: Vec<PKeyValue> = attrs
            .iter()
            .map(|a| PKeyValue {
                key: a.key.to_string(),
                value: Some(AnyValue {
                    value: Some(match &a.value {
                        AttrValue::Str(s) => PValue::StringValue(s.clone()),
                        AttrValue::Int(i) => PValue::IntValue(*i),
                        AttrValue::Bool(b) => PValue::BoolValue(*b),
                        AttrValue::StrArray(v) => PValue::ArrayValue(ArrayValue {
                            values: v
                                .iter()
                                .map(|s| AnyValue {
                                    value: Some(PValue::StringValue(s.clone())),
                                })
                                .collect(),
                        }),
                    }),
                }),
            })
            .collect();
        let mut expected = Vec::new();
        for kv in &theirs {
            prost::encoding::message::encode(field::SPAN_ATTRIBUTES, kv, &mut expected);
        }
        let mut ours = Vec::new();
        put_attributes(field::SPAN_ATTRIBUTES, &attrs, &mut ours);
        assert_eq!(ours, expected);
        // An empty key is written, where prost leaves a default-valued field
        // out: the same message once decoded.
        let mut empty = Vec::new();
        put_attributes(
            field::SPAN_ATTRIBUTES,
            &[Attribute::str("", "")],
            &mut empty,
        );
        let span = Span::decode(empty.as_slice()).expect("a Span");
        let kv = span.attributes.first().expect("an attribute");
        assert_eq!(kv.key, "");
        assert_eq!(
            kv.value.as_ref().and_then(|v| v.value.clone()),
            Some(PValue::StringValue(String::new()))
        );
    }

    #[test]
    fn parent_remote_flag_state_and_error_status() {
        let mut r = record(SpanStatus::Error {
            description: "no response captured".into(),
        });
        r.kind = SpanKind::Client;
        r.end_unix_ns = r.start_unix_ns - 1; // never before the start
        let s = decode(&r, &ids(true));
        assert_eq!(s.parent_span_id, vec![9; 8]);
        assert_eq!(s.trace_state, "k=v");
        assert_eq!(s.flags, 0x301);
        assert_eq!(s.kind, 3);
        assert_eq!(s.end_time_unix_nano, s.start_time_unix_nano);
        let status = s.status.expect("status");
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "no response captured");
        let s = decode(
            &record(SpanStatus::Error {
                description: String::new(),
            }),
            &ids(false),
        );
        assert_eq!(s.status.expect("status").code, StatusCode::Error as i32);
    }

    #[test]
    fn a_request_frames_resources_scopes_and_spans() {
        use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let resource = Resource {
            attributes: vec![],
            dropped_attributes_count: 0,
            entity_refs: vec![],
        };
        let mut res_bytes = Vec::new();
        put_attributes(
            1,
            &[Attribute::str("service.name", "nginx")],
            &mut res_bytes,
        );
        let res_decoded = Resource::decode(res_bytes.as_slice()).unwrap();
        assert_eq!(res_decoded.attributes[0].key, "service.name");
        let scope = InstrumentationScope {
            name: "otel-agent".into(),
            version: "0.1.0".into(),
            ..Default::default()
        };
        let spans: Vec<EncodedSpan> = (0..3u8)
            .map(|n| {
                let mut i = ids(false);
                i.span_id = [n; 8];
                let mut b = Vec::new();
                encode(&record(SpanStatus::Unset), &i, &mut b);
                EncodedSpan(b)
            })
            .collect();
        let mut w = RequestWriter::default();
        w.resource_spans(&res_bytes, "", &scope.encode_to_vec(), spans[..2].iter());
        w.resource_spans(
            &resource.encode_to_vec(),
            "https://opentelemetry.io/schemas/1.37.0",
            &scope.encode_to_vec(),
            spans[2..].iter(),
        );
        let req = ExportTraceServiceRequest::decode(w.bytes()).expect("a valid request");
        assert_eq!(req.resource_spans.len(), 2);
        let first = &req.resource_spans[0];
        assert_eq!(
            first.resource.as_ref().unwrap().attributes[0].key,
            "service.name"
        );
        assert_eq!(first.schema_url, "");
        assert_eq!(first.scope_spans.len(), 1);
        assert_eq!(
            first.scope_spans[0].scope.as_ref().unwrap().name,
            "otel-agent"
        );
        let ids: Vec<_> = first.scope_spans[0]
            .spans
            .iter()
            .map(|s| s.span_id[0])
            .collect();
        assert_eq!(ids, vec![0, 1]);
        let second = &req.resource_spans[1];
        assert_eq!(second.schema_url, "https://opentelemetry.io/schemas/1.37.0");
        assert_eq!(second.scope_spans[0].spans[0].span_id, vec![2; 8]);
        let len = w.bytes().len();
        let taken = w.take();
        assert_eq!(taken.len(), len);
        assert!(w.bytes().is_empty());
        w.clear();
        assert!(w.bytes().is_empty());
    }
}
