//! Message bodies: framing by Content-Length, chunked coding with trailers or close (RFC 9112 §6.3), no body for HEAD, 1xx, 204 and 304, and the switch on upgrade.

use super::head::{parse_trailers, ReqHead};
use super::len_u64;
use super::pairing::Conversation;
use super::side::{SideParser, State};

/// What the response side needs to know about the request it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RequestKind {
    Head,
    Connect,
    Other,
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
    Upgrade,
    Invalid,
}

/// What a head's fields say about its body: read from every field as
/// parsed, before the fields a caller does not keep are dropped, so that
/// framing needs none of them kept (at level `summary` copying
/// `Content-Length` and `Connection` was ~600 instructions per HTTP/1
/// exchange, bench/instructions.sh).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FramingFields {
    /// Transfer-Encoding: whether its last coding is chunked; `None` without one.
    transfer: Option<bool>,
    /// Content-Length; `Err` if present but invalid or conflicting.
    content_length: Result<Option<u64>, ()>,
    /// An Upgrade field is present.
    upgrade: bool,
}

impl Default for FramingFields {
    fn default() -> Self {
        FramingFields {
            transfer: None,
            content_length: Ok(None),
            upgrade: false,
        }
    }
}

impl FramingFields {
    /// The framing fields among `headers` (name, value).
    pub(super) fn of<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut f = FramingFields::default();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("transfer-encoding") {
                // A field without a coding leaves the last one as it was.
                let before = f.transfer.unwrap_or(false);
                f.transfer = Some(last_coding_is_chunked(value).unwrap_or(before));
            } else if name.eq_ignore_ascii_case("content-length") {
                f.content_length = f
                    .content_length
                    .and_then(|found| content_length_value(found, value));
            } else if name.eq_ignore_ascii_case("upgrade") {
                f.upgrade = true;
            }
        }
        f
    }
}

/// Body framing of a request.
pub(super) fn request_framing(fields: &FramingFields) -> Framing {
    match fields.transfer {
        Some(true) => Framing::Chunked,
        Some(false) => Framing::Invalid,
        None => match fields.content_length {
            Ok(Some(n)) => Framing::Length(n),
            Ok(None) => Framing::Empty,
            Err(()) => Framing::Invalid,
        },
    }
}

/// Body framing of a final response to a request of `kind`.
pub(super) fn response_framing(status: u16, kind: RequestKind, fields: &FramingFields) -> Framing {
    if status == 101 || (kind == RequestKind::Connect && (200..300).contains(&status)) {
        return Framing::Upgrade;
    }
    if kind == RequestKind::Head || status < 200 || status == 204 || status == 304 {
        return Framing::Empty;
    }
    match fields.transfer {
        Some(true) => Framing::Chunked,
        Some(false) => Framing::UntilClose,
        None => match fields.content_length {
            Ok(Some(n)) => Framing::Length(n),
            Ok(None) => Framing::UntilClose,
            Err(()) => Framing::Invalid,
        },
    }
}

/// Whether the last transfer coding of a Transfer-Encoding value is
/// chunked; `None` when it has none.
fn last_coding_is_chunked(value: &[u8]) -> Option<bool> {
    let mut chunked = None;
    for coding in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if coding.is_empty() {
            continue;
        }
        let name = coding.split(|&b| b == b';').next().unwrap_or_default();
        chunked = Some(name.trim_ascii().eq_ignore_ascii_case(b"chunked"));
    }
    chunked
}

/// The Content-Length after one more field's `value`, `found` before it;
/// `Err` if the value is invalid or conflicts.
fn content_length_value(found: Option<u64>, value: &[u8]) -> Result<Option<u64>, ()> {
    let mut found = found;
    // Bytes, not `str::split`: its searcher was most of this function's
    // ~440 instructions per response (bench/instructions.sh, callgrind).
    for part in value.split(|&b| b == b',') {
        let n = parse_decimal(part.trim_ascii()).ok_or(())?;
        if found.is_some_and(|f| f != n) {
            return Err(());
        }
        found = Some(n);
    }
    Ok(found)
}

/// A non-empty run of ASCII digits as a number; `None` for anything else or on overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// Size of a chunk from its size line (`hex [ws] [; ext] CRLF`).
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, rest) = line.split_at_checked(digits)?;
    let rest = rest.trim_ascii_start();
    if hex.is_empty() || !(rest.is_empty() || rest.starts_with(b";")) {
        return None;
    }
    hex.iter().try_fold(0u64, |acc, &b| {
        let digit = char::from(b).to_digit(16).map(u64::from)?;
        acc.checked_mul(16)?.checked_add(digit)
    })
}

/// True when the buffer ends with an empty line (end of a trailer section).
fn ends_section(buf: &[u8]) -> bool {
    matches!(buf, b"\n" | b"\r\n") || buf.ends_with(b"\n\n") || buf.ends_with(b"\n\r\n")
}

/// Interim responses that do not answer the request (101 does).
pub(super) fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

/// A request after which the connection may switch protocols.
pub(super) fn may_upgrade(head: &ReqHead) -> bool {
    head.method == "CONNECT" || head.framing.upgrade
}

/// `min(remaining, available)` as a usize.
fn clamp_len(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining)
        .unwrap_or(usize::MAX)
        .min(available)
}

impl SideParser {
    pub(super) fn begin_body(&mut self, conv: &mut Conversation, framing: Framing, ts: u64) {
        match framing {
            Framing::Empty | Framing::Length(0) | Framing::Upgrade => self.complete(conv, ts),
            Framing::Length(n) => self.state = State::Length { remaining: n },
            Framing::Chunked => self.state = State::ChunkSize,
            Framing::UntilClose => self.state = State::UntilClose,
            Framing::Invalid => self.body_error(conv, ts),
        }
    }

    /// Body bytes of the current message: at most `remaining` of `data`;
    /// returns how many were taken and how many the message still expects.
    fn take_body(
        &mut self,
        conv: &mut Conversation,
        ts: u64,
        data: &[u8],
        remaining: u64,
    ) -> (usize, u64) {
        let take = clamp_len(remaining, data.len());
        conv.add_body(
            self.side,
            self.current,
            ts,
            data.get(..take).unwrap_or_default(),
        );
        (take, remaining.saturating_sub(len_u64(take)))
    }

    pub(super) fn step_length(
        &mut self,
        conv: &mut Conversation,
        ts: u64,
        data: &[u8],
        remaining: u64,
    ) -> usize {
        let (take, left) = self.take_body(conv, ts, data, remaining);
        if left == 0 {
            self.complete(conv, ts);
        } else {
            self.state = State::Length { remaining: left };
        }
        take
    }

    pub(super) fn step_chunk_data(
        &mut self,
        conv: &mut Conversation,
        ts: u64,
        data: &[u8],
        remaining: u64,
    ) -> usize {
        let (take, left) = self.take_body(conv, ts, data, remaining);
        self.state = if left == 0 {
            State::ChunkEnd { cr: false }
        } else {
            State::ChunkData { remaining: left }
        };
        take
    }

    pub(super) fn step_chunk_end(
        &mut self,
        conv: &mut Conversation,
        ts: u64,
        data: &[u8],
        cr: bool,
    ) -> usize {
        match data.first() {
            Some(b'\r') if !cr => {
                self.state = State::ChunkEnd { cr: true };
                conv.add_framing(self.side, self.current, 1);
                1
            }
            Some(b'\n') => {
                self.state = State::ChunkSize;
                conv.add_framing(self.side, self.current, 1);
                1
            }
            Some(_) => {
                self.body_error(conv, ts);
                0
            }
            None => 0,
        }
    }

    pub(super) fn step_chunk_size(
        &mut self,
        conv: &mut Conversation,
        ts: u64,
        data: &[u8],
    ) -> usize {
        let Some((take, done)) = self.take_line(ts, data) else {
            self.body_error(conv, ts);
            return 0;
        };
        if done {
            conv.add_framing(self.side, self.current, self.buf.len());
            match parse_chunk_size(self.buf.bytes()) {
                Some(0) => {
                    self.buf.clear();
                    self.state = State::Trailers;
                }
                Some(n) => {
                    self.buf.clear();
                    self.state = State::ChunkData { remaining: n };
                }
                None => self.body_error(conv, ts),
            }
        }
        take
    }

    pub(super) fn step_trailers(&mut self, conv: &mut Conversation, ts: u64, data: &[u8]) -> usize {
        let Some((take, done)) = self.take_line(ts, data) else {
            self.body_error(conv, ts);
            return 0;
        };
        if done && ends_section(self.buf.bytes()) {
            conv.add_framing(self.side, self.current, self.buf.len());
            let trailers = parse_trailers(self.buf.bytes(), self.limits.keep_headers);
            conv.add_trailers(self.side, self.current, trailers);
            self.complete(conv, ts);
        }
        take
    }

    /// Buffers bytes up to and including the next LF: (consumed, line ended),
    /// or `None` if the line would exceed the limit.
    fn take_line(&mut self, ts: u64, data: &[u8]) -> Option<(usize, bool)> {
        let (take, done) = match data.iter().position(|b| *b == b'\n') {
            Some(i) => (i.saturating_add(1), true),
            None => (data.len(), false),
        };
        if self.buf.len().saturating_add(take) > self.limits.max_header_bytes {
            return None;
        }
        self.buf.push(ts, data.get(..take).unwrap_or_default());
        Some((take, done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cl(values: &[&str]) -> Result<Option<u64>, ()> {
        FramingFields::of(values.iter().map(|v| ("Content-Length", v.as_bytes()))).content_length
    }

    fn te(values: &[&str]) -> Option<bool> {
        FramingFields::of(values.iter().map(|v| ("transfer-encoding", v.as_bytes()))).transfer
    }

    #[test]
    fn transfer_codings() {
        assert_eq!(te(&[]), None);
        assert_eq!(te(&["chunked"]), Some(true));
        assert_eq!(te(&["gzip, Chunked ;x=1"]), Some(true));
        assert_eq!(te(&["chunked, gzip"]), Some(false));
        assert_eq!(te(&["chunked", "gzip"]), Some(false));
        assert_eq!(te(&["gzip", "chunked"]), Some(true));
        assert_eq!(te(&["chunked,"]), Some(true));
        assert_eq!(te(&[""]), Some(false));
        assert_eq!(te(&["chunked", ""]), Some(true));
        assert_eq!(te(&["\u{fffd}chunked"]), Some(false));
    }

    #[test]
    fn content_length_values() {
        assert_eq!(cl(&[]), Ok(None));
        assert_eq!(cl(&["2"]), Ok(Some(2)));
        assert_eq!(cl(&[" 42 "]), Ok(Some(42)));
        assert_eq!(cl(&["7, 7", "7"]), Ok(Some(7)));
        assert_eq!(cl(&["18446744073709551615"]), Ok(Some(u64::MAX)));
        for bad in [
            "",
            "18446744073709551616",
            "-1",
            "+1",
            "1 2",
            "0x1",
            "7, 8",
            "7,",
        ] {
            assert_eq!(cl(&[bad]), Err(()), "{bad:?}");
        }
        assert_eq!(cl(&["7", "8"]), Err(()));
    }

    #[test]
    fn chunk_size_lines() {
        assert_eq!(parse_chunk_size(b"1a\r\n"), Some(26));
        assert_eq!(parse_chunk_size(b"1A;name=\"v\"\r\n"), Some(26));
        assert_eq!(parse_chunk_size(b"0\n"), Some(0));
        assert_eq!(parse_chunk_size(b"5 ;x\r\n"), Some(5));
        assert_eq!(parse_chunk_size(b"ffffffffffffffff\r\n"), Some(u64::MAX));
        assert_eq!(parse_chunk_size(b"10000000000000000\r\n"), None);
        assert_eq!(parse_chunk_size(b"\r\n"), None);
        assert_eq!(parse_chunk_size(b"x\r\n"), None);
        assert_eq!(parse_chunk_size(b"5x\r\n"), None);
        assert_eq!(parse_chunk_size(b"5"), None);
    }
}
