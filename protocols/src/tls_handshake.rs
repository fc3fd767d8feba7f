//! Extraction of TLS handshake metadata (ClientHello / ServerHello) from the raw bytes of one direction of a TCP connection.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;

/// Upper bound on the bytes the parser buffers for one handshake message, and
/// on the bytes of other handshake messages it skips while looking for a hello.
pub const MAX_BUFFERED: usize = 64 * 1024;

/// Largest record payload a TLS peer may send (2^14 plus expansion allowance).
const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

const RECORD_HEADER_LEN: usize = 5;
const HANDSHAKE_HEADER_LEN: usize = 4;

const CONTENT_TYPE_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
const CONTENT_TYPE_HEARTBEAT: u8 = 24;

const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_SERVER_HELLO: u8 = 2;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

const NAME_TYPE_HOST_NAME: u8 = 0;

/// `ServerHello.random` value that marks a HelloRetryRequest (RFC 8446 §4.1.3).
const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Metadata offered by a client in its ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` field (0x0303 for TLS 1.2 and 1.3 clients).
    pub legacy_version: u16,
    /// First `host_name` entry of the server_name (SNI) extension.
    pub server_name: Option<String>,
    /// Protocols offered in the ALPN extension, in client preference order.
    pub alpn: Vec<String>,
    /// Versions listed in the supported_versions extension, GREASE values removed.
    pub supported_versions: Vec<u16>,
    /// Offered cipher suites, GREASE values removed.
    pub cipher_suites: Vec<u16>,
}

/// Parameters chosen by a server in its ServerHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// `legacy_version` field (0x0303 when TLS 1.3 is negotiated).
    pub legacy_version: u16,
    /// Version from the supported_versions extension (TLS 1.3 and later).
    pub selected_version: Option<u16>,
    /// Selected cipher suite.
    pub cipher_suite: u16,
    /// Selected ALPN protocol; only visible up to TLS 1.2, since TLS 1.3
    /// moves it into the encrypted EncryptedExtensions message.
    pub alpn: Option<String>,
    /// Whether this message is a HelloRetryRequest rather than a real ServerHello.
    pub is_hello_retry_request: bool,
}

impl ServerHello {
    /// Negotiated version: `selected_version` if present, else `legacy_version`.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// A handshake message the parser extracts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeMessage {
    /// The client's opening message.
    ClientHello(ClientHello),
    /// The server's reply (or a HelloRetryRequest).
    ServerHello(ServerHello),
}

/// Reasons the bytes could not be parsed as a TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsParseError {
    /// The stream does not start with a valid TLS record header.
    NotTls,
    /// A TLS structure is inconsistent; the text names the offending field.
    Malformed(&'static str),
    /// A handshake message is larger than [`MAX_BUFFERED`].
    TooLarge,
}

impl fmt::Display for TlsParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotTls => f.write_str("not a TLS record stream"),
            Self::Malformed(what) => write!(f, "malformed TLS data: {what}"),
            Self::TooLarge => write!(f, "TLS handshake message exceeds {MAX_BUFFERED} bytes"),
        }
    }
}

impl Error for TlsParseError {}

type Result<T> = std::result::Result<T, TlsParseError>;

/// Per-direction reassembler: TLS records → handshake messages.
///
/// A handshake message may span several records, and a record may arrive
/// split across many [`push`](Self::push) calls. The parser stops after it
/// has produced a ClientHello or ServerHello, after the first non-handshake
/// record (ChangeCipherSpec, Alert, ApplicationData), or after an error; then
/// [`is_done`](Self::is_done) is true and further input is ignored cheaply.
#[derive(Debug, Default)]
pub struct TlsHandshakeParser {
    /// Bytes of the current record header collected so far.
    header: [u8; RECORD_HEADER_LEN],
    header_len: usize,
    /// Payload bytes of the current handshake record not yet consumed.
    record_remaining: usize,
    /// The handshake message being reassembled (header included).
    message: Vec<u8>,
    /// Bytes of non-hello handshake messages skipped so far.
    skipped: usize,
    done: bool,
}

impl TlsHandshakeParser {
    /// Creates a parser expecting the first byte of a TLS record stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream.
    ///
    /// Returns `Ok(Some(_))` once a ClientHello or ServerHello is complete,
    /// and `Ok(None)` while more input is needed or once the parser is done.
    ///
    /// # Errors
    ///
    /// Returns an error at most once, after which the parser is done:
    /// [`TlsParseError::NotTls`] for an invalid record header,
    /// [`TlsParseError::Malformed`] for an invalid record or hello, and
    /// [`TlsParseError::TooLarge`] when [`MAX_BUFFERED`] would be exceeded.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<HandshakeMessage>> {
        if self.done {
            return Ok(None);
        }
        let result = self.consume(data);
        if !matches!(result, Ok(None)) {
            self.finish();
        }
        result
    }

    /// Whether the parser has stopped looking at input.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn finish(&mut self) {
        self.done = true;
        self.message = Vec::new();
    }

    fn consume(&mut self, mut data: &[u8]) -> Result<Option<HandshakeMessage>> {
        while !data.is_empty() && !self.done {
            if self.record_remaining == 0 {
                data = self.fill_header(data);
                if self.header_len == RECORD_HEADER_LEN {
                    self.header_len = 0;
                    self.start_record()?;
                }
            } else {
                let wanted = self.message_bytes_wanted()?.min(self.record_remaining);
                let (chunk, rest) = split(data, wanted);
                self.message.extend_from_slice(chunk);
                self.record_remaining = self.record_remaining.saturating_sub(chunk.len());
                data = rest;
                if let Some(message) = self.take_complete_message()? {
                    return Ok(Some(message));
                }
            }
        }
        Ok(None)
    }

    /// Copies record-header bytes from `data`; returns the unused rest.
    fn fill_header<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let (head, rest) = split(data, RECORD_HEADER_LEN.saturating_sub(self.header_len));
        let free = self.header.iter_mut().skip(self.header_len);
        for (slot, &byte) in free.zip(head) {
            *slot = byte;
        }
        self.header_len = self.header_len.saturating_add(head.len());
        rest
    }

    /// Validates the complete record header and prepares for its payload.
    fn start_record(&mut self) -> Result<()> {
        let [content_type, major, minor, len_hi, len_lo] = self.header;
        let valid_type =
            (CONTENT_TYPE_CHANGE_CIPHER_SPEC..=CONTENT_TYPE_HEARTBEAT).contains(&content_type);
        if !valid_type || major != 3 || minor > 4 {
            return Err(TlsParseError::NotTls);
        }
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if len > MAX_RECORD_LEN {
            return Err(TlsParseError::Malformed("record length"));
        }
        if content_type != CONTENT_TYPE_HANDSHAKE {
            self.finish();
        } else if len == 0 {
            return Err(TlsParseError::Malformed("empty handshake record"));
        }
        self.record_remaining = len;
        Ok(())
    }

    /// Number of bytes still missing from the current handshake message
    /// (or from its header). Always at least 1.
    fn message_bytes_wanted(&mut self) -> Result<usize> {
        match self.message_total_len()? {
            None => Ok(HANDSHAKE_HEADER_LEN.saturating_sub(self.message.len())),
            Some(total) => {
                let missing = total.saturating_sub(self.message.len());
                self.message.reserve_exact(missing);
                Ok(missing)
            }
        }
    }

    /// Full length (header included) of the message being reassembled, once
    /// its header is known.
    fn message_total_len(&self) -> Result<Option<usize>> {
        let Some(&[_, a, b, c]) = self.message.first_chunk::<HANDSHAKE_HEADER_LEN>() else {
            return Ok(None);
        };
        let body_len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        let total = body_len.saturating_add(HANDSHAKE_HEADER_LEN);
        if total > MAX_BUFFERED {
            return Err(TlsParseError::TooLarge);
        }
        Ok(Some(total))
    }

    /// Parses the reassembled message if complete; other handshake message
    /// types are dropped so the next one can be reassembled.
    fn take_complete_message(&mut self) -> Result<Option<HandshakeMessage>> {
        let Some(total) = self.message_total_len()? else {
            return Ok(None);
        };
        if self.message.len() < total {
            return Ok(None);
        }
        let parsed = match self.message.split_first() {
            Some((&msg_type, rest)) => parse_handshake(msg_type, split(rest, 3).1)?,
            None => None,
        };
        self.message.clear();
        if parsed.is_none() {
            self.skipped = self.skipped.saturating_add(total);
            if self.skipped > MAX_BUFFERED {
                return Err(TlsParseError::TooLarge);
            }
        }
        Ok(parsed)
    }
}

/// Parses one handshake message body of the given handshake type; `Ok(None)`
/// for types other than ClientHello and ServerHello.
///
/// # Errors
///
/// [`TlsParseError::Malformed`] if a hello body is invalid.
pub fn parse_handshake(msg_type: u8, body: &[u8]) -> Result<Option<HandshakeMessage>> {
    match msg_type {
        HANDSHAKE_CLIENT_HELLO => parse_client_hello(body).map(HandshakeMessage::ClientHello),
        HANDSHAKE_SERVER_HELLO => parse_server_hello(body).map(HandshakeMessage::ServerHello),
        _ => return Ok(None),
    }
    .map(Some)
}

/// Parses a ClientHello body (the bytes after the 4-byte handshake header).
///
/// # Errors
///
/// [`TlsParseError::Malformed`] if the body is truncated or inconsistent.
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello> {
    let mut r = Reader::new(body);
    let legacy_version = r.u16("client version")?;
    r.bytes(32, "client random")?;
    r.vec8("session id")?;
    let cipher_suites = without_grease(r.vec16("cipher suites")?.u16_list("cipher suites")?);
    if r.vec8("compression methods")?.is_empty() {
        return Err(TlsParseError::Malformed("compression methods"));
    }
    let mut hello = ClientHello {
        legacy_version,
        server_name: None,
        alpn: Vec::new(),
        supported_versions: Vec::new(),
        cipher_suites,
    };
    for_each_extension(r, |ext_type, body| {
        match ext_type {
            EXT_SERVER_NAME => hello.server_name = parse_server_name(body)?,
            EXT_ALPN => hello.alpn = parse_alpn(body)?,
            EXT_SUPPORTED_VERSIONS => {
                let list = body.only_vec8("supported versions")?;
                hello.supported_versions = without_grease(list.u16_list("supported versions")?);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(hello)
}

/// Parses a ServerHello body (the bytes after the 4-byte handshake header).
///
/// # Errors
///
/// [`TlsParseError::Malformed`] if the body is truncated or inconsistent.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello> {
    let mut r = Reader::new(body);
    let legacy_version = r.u16("server version")?;
    let random = r.bytes(32, "server random")?;
    r.vec8("session id")?;
    let cipher_suite = r.u16("cipher suite")?;
    r.u8("compression method")?;
    let mut hello = ServerHello {
        legacy_version,
        selected_version: None,
        cipher_suite,
        alpn: None,
        is_hello_retry_request: random == HELLO_RETRY_REQUEST_RANDOM,
    };
    for_each_extension(r, |ext_type, mut body| {
        match ext_type {
            EXT_SUPPORTED_VERSIONS => {
                hello.selected_version = Some(body.u16("selected version")?);
                body.end("selected version")?;
            }
            EXT_ALPN => hello.alpn = parse_alpn(body)?.into_iter().next(),
            _ => {}
        }
        Ok(())
    })?;
    Ok(hello)
}

/// Calls `f` for each extension of the (optional) trailing extensions block.
fn for_each_extension(
    r: Reader<'_>,
    mut f: impl FnMut(u16, Reader<'_>) -> Result<()>,
) -> Result<()> {
    if r.is_empty() {
        return Ok(());
    }
    let mut extensions = r.only_vec16("extensions")?;
    while !extensions.is_empty() {
        let ext_type = extensions.u16("extension type")?;
        let body = extensions.vec16("extension body")?;
        f(ext_type, body)?;
    }
    Ok(())
}

/// First `host_name` of a server_name extension body (RFC 6066 §3).
fn parse_server_name(body: Reader<'_>) -> Result<Option<String>> {
    if body.is_empty() {
        return Ok(None);
    }
    let mut names = body.only_vec16("server name list")?;
    let mut host = None;
    while !names.is_empty() {
        let name_type = names.u8("server name type")?;
        let name = names.vec16("server name")?;
        if name_type == NAME_TYPE_HOST_NAME && host.is_none() {
            host = Some(name.into_string());
        }
    }
    Ok(host)
}

/// Protocol names of an ALPN extension body (RFC 7301 §3.1).
fn parse_alpn(body: Reader<'_>) -> Result<Vec<String>> {
    let mut list = body.only_vec16("alpn list")?;
    let mut protocols = Vec::new();
    while !list.is_empty() {
        protocols.push(list.vec8("alpn protocol")?.into_string());
    }
    Ok(protocols)
}

/// Whether `value` is a reserved GREASE value (RFC 8701): 0x0a0a, 0x1a1a, … 0xfafa.
pub fn is_grease(value: u16) -> bool {
    let [hi, lo] = value.to_be_bytes();
    hi == lo && lo & 0x0f == 0x0a
}

fn without_grease(mut values: Vec<u16>) -> Vec<u16> {
    values.retain(|&v| !is_grease(v));
    values
}

/// Splits `data` at `at`, or returns all of it when it is shorter.
fn split(data: &[u8], at: usize) -> (&[u8], &[u8]) {
    data.split_at_checked(at).unwrap_or((data, &[]))
}

/// Bounds-checked big-endian reader over a TLS structure.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let (head, rest) = self
            .data
            .split_at_checked(n)
            .ok_or(TlsParseError::Malformed(what))?;
        self.data = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let (head, rest) = self
            .data
            .split_first_chunk::<N>()
            .ok_or(TlsParseError::Malformed(what))?;
        self.data = rest;
        Ok(*head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        self.array::<1>(what).map(|[b]| b)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16> {
        self.array(what).map(u16::from_be_bytes)
    }

    /// A vector with a one-byte length prefix.
    fn vec8(&mut self, what: &'static str) -> Result<Reader<'a>> {
        let len = self.u8(what)?;
        self.bytes(usize::from(len), what).map(Reader::new)
    }

    /// A vector with a two-byte length prefix.
    fn vec16(&mut self, what: &'static str) -> Result<Reader<'a>> {
        let len = self.u16(what)?;
        self.bytes(usize::from(len), what).map(Reader::new)
    }

    /// A one-byte-prefixed vector that must fill the rest of this reader.
    fn only_vec8(mut self, what: &'static str) -> Result<Reader<'a>> {
        let inner = self.vec8(what)?;
        self.end(what)?;
        Ok(inner)
    }

    /// A two-byte-prefixed vector that must fill the rest of this reader.
    fn only_vec16(mut self, what: &'static str) -> Result<Reader<'a>> {
        let inner = self.vec16(what)?;
        self.end(what)?;
        Ok(inner)
    }

    /// Fails unless every byte has been consumed.
    fn end(&self, what: &'static str) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(TlsParseError::Malformed(what))
        }
    }

    fn u16_list(mut self, what: &'static str) -> Result<Vec<u16>> {
        let mut values = Vec::with_capacity(self.data.len() / 2);
        while !self.is_empty() {
            values.push(self.u16(what)?);
        }
        Ok(values)
    }

    fn into_string(self) -> String {
        match String::from_utf8_lossy(self.data) {
            Cow::Borrowed(s) => s.to_owned(),
            Cow::Owned(s) => s,
        }
    }
}

/// Cheap protocol-detection check: does the stream start with a TLS
/// handshake record header (content type 0x16, version 0x0300..=0x0304)?
/// Needs at least 3 bytes.
pub fn looks_like_tls(first_bytes: &[u8]) -> bool {
    matches!(first_bytes, [0x16, 0x03, 0x00..=0x04, ..])
}

/// Standard IANA name of a common cipher suite, e.g. 0x1301 → "TLS_AES_128_GCM_SHA256".
pub fn cipher_suite_name(id: u16) -> Option<&'static str> {
    let name = match id {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003d => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        0x00ff => "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
        0x5600 => "TLS_FALLBACK_SCSV",
        _ => return None,
    };
    Some(name)
}

/// Short name of a protocol version number: "SSL3.0", "1.0" … "1.3"; `None` if unknown.
pub fn version_name(v: u16) -> Option<&'static str> {
    match v {
        0x0300 => Some("SSL3.0"),
        0x0301 => Some("1.0"),
        0x0302 => Some("1.1"),
        0x0303 => Some("1.2"),
        0x0304 => Some("1.3"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURL13_CLIENT: &[u8] = include_bytes!("../testdata/tls/curl_tls13.client");
    const CURL13_SERVER: &[u8] = include_bytes!("../testdata/tls/curl_tls13.server");
    const CURL12_CLIENT: &[u8] = include_bytes!("../testdata/tls/curl_tls12.client");
    const CURL12_SERVER: &[u8] = include_bytes!("../testdata/tls/curl_tls12.server");
    const PY13_CLIENT: &[u8] = include_bytes!("../testdata/tls/python_tls13.client");
    const PY13_SERVER: &[u8] = include_bytes!("../testdata/tls/python_tls13.server");

    const FIXTURES: [&[u8]; 6] = [
        CURL13_CLIENT,
        CURL13_SERVER,
        CURL12_CLIENT,
        CURL12_SERVER,
        PY13_CLIENT,
        PY13_SERVER,
    ];

    /// Deterministic xorshift64 generator for the robustness tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    /// Pushes `chunks` in order and returns the first non-`Ok(None)` result.
    fn feed<'a>(
        parser: &mut TlsHandshakeParser,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Option<HandshakeMessage>> {
        for chunk in chunks {
            let result = parser.push(chunk);
            if !matches!(result, Ok(None)) {
                return result;
            }
        }
        Ok(None)
    }

    fn parse_all(data: &[u8]) -> Result<Option<HandshakeMessage>> {
        TlsHandshakeParser::new().push(data)
    }

    fn client_hello(data: &[u8]) -> ClientHello {
        match parse_all(data) {
            Ok(Some(HandshakeMessage::ClientHello(hello))) => hello,
            other => panic!("expected ClientHello, got {other:?}"),
        }
    }

    fn server_hello(data: &[u8]) -> ServerHello {
        match parse_all(data) {
            Ok(Some(HandshakeMessage::ServerHello(hello))) => hello,
            other => panic!("expected ServerHello, got {other:?}"),
        }
    }

    fn record(content_type: u8, payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len()).unwrap();
        let mut out = vec![content_type, 3, 3];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(body.len()).unwrap().to_be_bytes();
        let mut out = vec![msg_type, len[1], len[2], len[3]];
        out.extend_from_slice(body);
        out
    }

    fn vec16(content: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(content.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(content);
        out
    }

    fn extension(ext_type: u16, body: &[u8]) -> Vec<u8> {
        let mut out = ext_type.to_be_bytes().to_vec();
        out.extend(vec16(body));
        out
    }

    fn u16s(values: &[u16]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    /// A synthetic ClientHello body with the given ciphers and extensions.
    fn client_hello_body(ciphers: &[u16], extensions: &[u8]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([0x11; 32]);
        body.push(0);
        body.extend(vec16(&u16s(ciphers)));
        body.extend([1, 0]);
        body.extend(vec16(extensions));
        body
    }

    /// Payload of the first record of `data`.
    fn first_record_payload(data: &[u8]) -> &[u8] {
        let len = usize::from(u16::from_be_bytes([data[3], data[4]]));
        &data[5..5 + len]
    }

    /// Re-frames the first record's payload into records of `size` bytes.
    fn reframe(data: &[u8], size: usize) -> Vec<u8> {
        first_record_payload(data)
            .chunks(size)
            .flat_map(|chunk| record(CONTENT_TYPE_HANDSHAKE, chunk))
            .collect()
    }

    #[test]
    fn curl_tls13_client_hello() {
        let hello = client_hello(CURL13_CLIENT);
        assert_eq!(hello.legacy_version, 0x0303);
        assert_eq!(hello.server_name.as_deref(), Some("localhost"));
        assert_eq!(hello.alpn, ["h2", "http/1.1"]);
        assert!(hello.supported_versions.contains(&0x0304));
        assert!(hello.cipher_suites.contains(&0x1301));
        assert!(hello.cipher_suites.contains(&0xc02f));
    }

    #[test]
    fn curl_tls13_server_hello() {
        let hello = server_hello(CURL13_SERVER);
        assert_eq!(hello.legacy_version, 0x0303);
        assert_eq!(hello.selected_version, Some(0x0304));
        assert_eq!(hello.version(), 0x0304);
        assert_eq!(version_name(hello.version()), Some("1.3"));
        assert_eq!(hello.cipher_suite, 0x1302);
        assert_eq!(
            cipher_suite_name(hello.cipher_suite),
            Some("TLS_AES_256_GCM_SHA384")
        );
        assert_eq!(hello.alpn, None);
        assert!(!hello.is_hello_retry_request);
    }

    #[test]
    fn curl_tls12_client_hello() {
        let hello = client_hello(CURL12_CLIENT);
        assert_eq!(hello.legacy_version, 0x0303);
        assert_eq!(hello.server_name.as_deref(), Some("localhost"));
        assert_eq!(hello.alpn, ["http/1.1"]);
        assert!(!hello.supported_versions.contains(&0x0304));
        assert!(!hello.cipher_suites.contains(&0x1301));
    }

    #[test]
    fn curl_tls12_server_hello() {
        let hello = server_hello(CURL12_SERVER);
        assert_eq!(hello.selected_version, None);
        assert_eq!(hello.version(), 0x0303);
        assert_eq!(version_name(hello.version()), Some("1.2"));
        assert_eq!(hello.alpn.as_deref(), Some("http/1.1"));
        assert_eq!(
            cipher_suite_name(hello.cipher_suite),
            Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
        );
    }

    #[test]
    fn python_tls13_handshake() {
        let client = client_hello(PY13_CLIENT);
        assert_eq!(client.server_name.as_deref(), Some("localhost"));
        assert_eq!(client.alpn, ["http/1.1"]);
        assert!(client.supported_versions.contains(&0x0304));
        let server = server_hello(PY13_SERVER);
        assert_eq!(server.version(), 0x0304);
        assert_eq!(server.cipher_suite, 0x1302);
    }

    #[test]
    fn done_after_hello_ignores_rest() {
        let mut parser = TlsHandshakeParser::new();
        let first_record_len = 5 + first_record_payload(CURL12_SERVER).len();
        let (hello, rest) = CURL12_SERVER.split_at(first_record_len);
        assert!(matches!(parser.push(hello), Ok(Some(_))));
        assert!(parser.is_done());
        assert_eq!(parser.push(rest), Ok(None));
        assert_eq!(parser.push(CURL12_SERVER), Ok(None));
        assert!(parser.message.capacity() == 0);
    }

    #[test]
    fn split_at_every_boundary_gives_same_result() {
        for fixture in FIXTURES {
            let expected = parse_all(fixture);
            assert!(matches!(expected, Ok(Some(_))));
            for at in 0..=fixture.len() {
                let (a, b) = fixture.split_at(at);
                assert_eq!(feed(&mut TlsHandshakeParser::new(), [a, b]), expected);
            }
        }
    }

    #[test]
    fn one_byte_at_a_time_gives_same_result() {
        for fixture in FIXTURES {
            let mut parser = TlsHandshakeParser::new();
            assert_eq!(feed(&mut parser, fixture.chunks(1)), parse_all(fixture));
            assert!(parser.is_done());
        }
    }

    #[test]
    fn message_spanning_records() {
        for fixture in [CURL13_CLIENT, CURL13_SERVER, CURL12_SERVER, PY13_CLIENT] {
            let expected = parse_all(fixture);
            for size in [1, 2, 7, 100, 300] {
                let reframed = reframe(fixture, size);
                assert_eq!(parse_all(&reframed), expected, "size {size}");
                let mut parser = TlsHandshakeParser::new();
                assert_eq!(feed(&mut parser, reframed.chunks(3)), expected);
            }
        }
    }

    #[test]
    fn truncated_input_needs_more() {
        for fixture in FIXTURES {
            let first_record_len = 5 + first_record_payload(fixture).len();
            for len in 0..first_record_len {
                let mut parser = TlsHandshakeParser::new();
                assert_eq!(parser.push(&fixture[..len]), Ok(None));
                assert!(!parser.is_done());
            }
        }
    }

    #[test]
    fn skips_other_handshake_messages() {
        let mut payload = handshake(0, &[]);
        payload.extend(first_record_payload(CURL13_CLIENT));
        assert_eq!(
            parse_all(&record(CONTENT_TYPE_HANDSHAKE, &payload)),
            parse_all(CURL13_CLIENT)
        );
    }

    #[test]
    fn skipping_is_bounded() {
        let skippable = record(CONTENT_TYPE_HANDSHAKE, &handshake(0, &[0; 16_000]));
        let mut parser = TlsHandshakeParser::new();
        for _ in 0..4 {
            assert_eq!(parser.push(&skippable), Ok(None));
        }
        assert_eq!(parser.push(&skippable), Err(TlsParseError::TooLarge));
        assert_eq!(parser.push(CURL13_CLIENT), Ok(None));
    }

    #[test]
    fn non_handshake_record_stops_parsing() {
        for content_type in [20, 21, 23] {
            let mut parser = TlsHandshakeParser::new();
            assert_eq!(parser.push(&record(content_type, &[1])), Ok(None));
            assert!(parser.is_done());
            assert_eq!(parser.push(CURL13_CLIENT), Ok(None));
        }
    }

    #[test]
    fn not_tls_reported_once() {
        let mut parser = TlsHandshakeParser::new();
        assert_eq!(
            parser.push(b"GET / HTTP/1.1\r\n\r\n"),
            Err(TlsParseError::NotTls)
        );
        assert!(parser.is_done());
        assert_eq!(parser.push(CURL13_CLIENT), Ok(None));
        let mut bad_version = CURL13_CLIENT.to_vec();
        bad_version[2] = 5;
        assert_eq!(parse_all(&bad_version), Err(TlsParseError::NotTls));
    }

    #[test]
    fn malformed_record_headers() {
        assert!(matches!(
            parse_all(&[22, 3, 3, 0, 0]),
            Err(TlsParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_all(&[22, 3, 3, 0x48, 0x01]),
            Err(TlsParseError::Malformed(_))
        ));
        assert_eq!(parse_all(&[22, 3, 3, 0x48, 0x00]), Ok(None));
    }

    #[test]
    fn oversize_message_reported_once_then_ignored() {
        let mut parser = TlsHandshakeParser::new();
        let header = [1, 0x01, 0x00, 0x00]; // body of 64 KiB: total exceeds limit
        assert_eq!(
            parser.push(&record(CONTENT_TYPE_HANDSHAKE, &header)),
            Err(TlsParseError::TooLarge)
        );
        assert!(parser.is_done());
        assert_eq!(parser.push(&[0; 100]), Ok(None));
        assert_eq!(parser.push(CURL13_CLIENT), Ok(None));
    }

    #[test]
    fn large_padded_hello_within_limit() {
        let padding = extension(21, &vec![0; 40_000]);
        let mut exts = extension(EXT_ALPN, &vec16(b"\x02h2"));
        exts.extend(padding);
        let message = handshake(1, &client_hello_body(&[0x1301], &exts));
        let stream: Vec<u8> = message
            .chunks(1 << 14)
            .flat_map(|chunk| record(CONTENT_TYPE_HANDSHAKE, chunk))
            .collect();
        let mut parser = TlsHandshakeParser::new();
        let hello = match feed(&mut parser, stream.chunks(1000)) {
            Ok(Some(HandshakeMessage::ClientHello(hello))) => hello,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(hello.alpn, ["h2"]);
        assert!(parser.message.capacity() <= MAX_BUFFERED);
    }

    #[test]
    fn grease_values_are_filtered() {
        let mut versions = vec![8];
        versions.extend(u16s(&[0x2a2a, 0x0304, 0x0303, 0xfafa]));
        let exts = extension(EXT_SUPPORTED_VERSIONS, &versions);
        let body = client_hello_body(&[0x0a0a, 0x1301, 0xc02b, 0xdada], &exts);
        let hello = parse_client_hello(&body).unwrap();
        assert_eq!(hello.cipher_suites, [0x1301, 0xc02b]);
        assert_eq!(hello.supported_versions, [0x0304, 0x0303]);
        assert_eq!(hello.server_name, None);
        assert!(is_grease(0x3a3a));
        assert!(!is_grease(0x3a3b));
        assert!(!is_grease(0x1301));
    }

    #[test]
    fn server_name_skips_other_name_types() {
        let mut list = vec![1];
        list.extend(vec16(b"other"));
        list.push(0);
        list.extend(vec16(b"example.com"));
        let exts = extension(EXT_SERVER_NAME, &vec16(&list));
        let hello = parse_client_hello(&client_hello_body(&[0x1301], &exts)).unwrap();
        assert_eq!(hello.server_name.as_deref(), Some("example.com"));
    }

    #[test]
    fn hello_retry_request_is_reported() {
        let mut body = vec![3, 3];
        body.extend(HELLO_RETRY_REQUEST_RANDOM);
        body.push(0);
        body.extend([0x13, 0x01, 0]);
        body.extend(vec16(&extension(EXT_SUPPORTED_VERSIONS, &[3, 4])));
        let hello = server_hello(&record(22, &handshake(2, &body)));
        assert!(hello.is_hello_retry_request);
        assert_eq!(hello.version(), 0x0304);
        assert_eq!(hello.cipher_suite, 0x1301);
    }

    #[test]
    fn hello_without_extensions() {
        let mut body = vec![3, 1];
        body.extend([0; 32]);
        body.extend([0, 0, 2, 0, 0x2f, 1, 0]);
        let hello = parse_client_hello(&body).unwrap();
        assert_eq!(hello.legacy_version, 0x0301);
        assert_eq!(hello.cipher_suites, [0x002f]);
        assert!(hello.alpn.is_empty());
    }

    #[test]
    fn truncated_bodies_are_malformed() {
        let client = &first_record_payload(CURL13_CLIENT)[4..];
        let server = &first_record_payload(CURL13_SERVER)[4..];
        // Cutting exactly before the extensions block leaves a valid hello.
        let session_end = 35 + usize::from(client[34]);
        let ciphers_len = u16::from_be_bytes([client[session_end], client[session_end + 1]]);
        let ciphers_end = session_end + 2 + usize::from(ciphers_len);
        let client_ext_start = ciphers_end + 1 + usize::from(client[ciphers_end]);
        for len in 0..client.len() {
            let result = parse_client_hello(&client[..len]);
            assert_eq!(result.is_ok(), len == client_ext_start, "{len}");
        }
        let server_ext_start = 35 + usize::from(server[34]) + 3;
        for len in 0..server.len() {
            let result = parse_server_hello(&server[..len]);
            assert_eq!(result.is_ok(), len == server_ext_start, "{len}");
        }
        let mut trailing = client.to_vec();
        trailing.push(0);
        assert!(parse_client_hello(&trailing).is_err());
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for i in 0..5000 {
            let len = rng.below(400);
            let mut data = rng.bytes(len);
            if i % 2 == 0 && data.len() >= 9 {
                // Plausible record and handshake headers to get past the first checks.
                data[..3].copy_from_slice(&[22, 3, 1]);
                data[5] = 1 + (i % 4 == 0) as u8;
            }
            let mut parser = TlsHandshakeParser::new();
            let _ = feed(&mut parser, random_chunks(&mut rng, &data));
            let _ = parse_client_hello(&data);
            let _ = parse_server_hello(&data);
        }
    }

    #[test]
    fn mutated_fixtures_never_panic() {
        let mut rng = XorShift(0x0123_4567_89ab_cdef);
        for i in 0..3000 {
            let mut data = FIXTURES[i % FIXTURES.len()].to_vec();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(data.len().min(600));
                data[at] ^= 1 << rng.below(8);
            }
            let whole = parse_all(&data);
            let mut parser = TlsHandshakeParser::new();
            assert_eq!(feed(&mut parser, random_chunks(&mut rng, &data)), whole);
        }
    }

    #[test]
    fn random_splits_give_same_result() {
        let mut rng = XorShift(42);
        for i in 0..600 {
            let fixture = FIXTURES[i % FIXTURES.len()];
            let mut parser = TlsHandshakeParser::new();
            let chunks = random_chunks(&mut rng, fixture);
            assert_eq!(feed(&mut parser, chunks), parse_all(fixture));
        }
    }

    fn random_chunks<'a>(rng: &mut XorShift, mut data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut chunks = Vec::new();
        while !data.is_empty() {
            let (chunk, rest) = data.split_at(1 + rng.below(data.len().min(64)));
            chunks.push(chunk);
            data = rest;
        }
        chunks
    }

    #[test]
    fn looks_like_tls_cases() {
        assert!(looks_like_tls(CURL13_CLIENT));
        assert!(looks_like_tls(CURL12_SERVER));
        assert!(looks_like_tls(&[0x16, 0x03, 0x00]));
        assert!(looks_like_tls(&[0x16, 0x03, 0x04, 0x00]));
        assert!(!looks_like_tls(&[0x16, 0x03]));
        assert!(!looks_like_tls(&[]));
        assert!(!looks_like_tls(&[0x16, 0x03, 0x05]));
        assert!(!looks_like_tls(&[0x17, 0x03, 0x03]));
        assert!(!looks_like_tls(&[0x16, 0x02, 0x00]));
        assert!(!looks_like_tls(b"GET / HTTP/1.1"));
    }

    #[test]
    fn names() {
        assert_eq!(cipher_suite_name(0x1301), Some("TLS_AES_128_GCM_SHA256"));
        assert_eq!(
            cipher_suite_name(0x1303),
            Some("TLS_CHACHA20_POLY1305_SHA256")
        );
        assert_eq!(
            cipher_suite_name(0xc02b),
            Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
        );
        assert_eq!(
            cipher_suite_name(0xcca8),
            Some("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")
        );
        assert_eq!(
            cipher_suite_name(0x002f),
            Some("TLS_RSA_WITH_AES_128_CBC_SHA")
        );
        assert_eq!(cipher_suite_name(0x0a0a), None);
        assert_eq!(version_name(0x0300), Some("SSL3.0"));
        assert_eq!(version_name(0x0301), Some("1.0"));
        assert_eq!(version_name(0x0302), Some("1.1"));
        assert_eq!(version_name(0x0303), Some("1.2"));
        assert_eq!(version_name(0x0304), Some("1.3"));
        assert_eq!(version_name(0x0305), None);
        assert_eq!(version_name(0x7f1c), None);
    }

    #[test]
    fn error_display() {
        assert_eq!(TlsParseError::NotTls.to_string(), "not a TLS record stream");
        assert_eq!(
            TlsParseError::Malformed("cipher suites").to_string(),
            "malformed TLS data: cipher suites"
        );
        assert!(TlsParseError::TooLarge.to_string().contains("65536"));
        let _: &dyn Error = &TlsParseError::TooLarge;
    }
}
