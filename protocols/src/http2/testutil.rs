//! Builders and helpers shared by the HTTP/2 unit tests: frames, HPACK blocks, a seeded generator and input mutation.

use super::connection::Http2Stream;
use super::frame::{
    DATA, FLAG_END_HEADERS, FLAG_END_STREAM, GOAWAY, HEADERS, RST_STREAM, SETTINGS,
};
use super::hpack::HUFFMAN_CODES;
use super::message::{Exchange, Header, Message};
use super::preface::PREFACE;
use super::Side::{Request as Req, Response as Resp};

pub(super) fn req(e: &Exchange) -> &Message {
    e.request.as_ref().expect("request")
}

pub(super) fn resp(e: &Exchange) -> &Message {
    e.response.as_ref().expect("response")
}

pub(super) fn hdr(name: &str, value: &str) -> Header {
    Header {
        name: name.to_string().into(),
        value: value.to_string().into(),
    }
}

pub(super) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub(super) fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

pub(super) fn headers(stream: u32, end_stream: bool, block: &[u8]) -> Vec<u8> {
    let flags = FLAG_END_HEADERS | if end_stream { FLAG_END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, block)
}

pub(super) fn data(stream: u32, end_stream: bool, body: &[u8]) -> Vec<u8> {
    frame(
        DATA,
        if end_stream { FLAG_END_STREAM } else { 0 },
        stream,
        body,
    )
}

pub(super) fn rst(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

pub(super) fn goaway(last: u32, code: u32) -> Vec<u8> {
    let mut p = last.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    frame(GOAWAY, 0, 0, &p)
}

/// HPACK integer with `prefix` bits; `first` holds the representation's flag bits.
fn int(out: &mut Vec<u8>, prefix: u32, first: u8, value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut v = value - max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

pub(super) fn huffman_encode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for &c in s {
        let (code, len) = HUFFMAN_CODES[c as usize];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) as u8);
    }
    out
}

/// A string literal, Huffman-coded when `huffman`.
fn string_lit(out: &mut Vec<u8>, s: &str, huffman: bool) {
    if huffman {
        let h = huffman_encode(s.as_bytes());
        int(out, 7, 0x80, h.len());
        out.extend_from_slice(&h);
    } else {
        int(out, 7, 0, s.len());
        out.extend_from_slice(s.as_bytes());
    }
}

/// A small HPACK encoder for building test blocks.
#[derive(Default)]
pub(super) struct Enc(Vec<u8>);

impl Enc {
    /// Literal without indexing, new name.
    pub(super) fn lit(mut self, name: &str, value: &str) -> Self {
        self.0.push(0);
        string_lit(&mut self.0, name, false);
        string_lit(&mut self.0, value, false);
        self
    }
    /// Literal with incremental indexing, new name, Huffman-coded.
    pub(super) fn add(mut self, name: &str, value: &str) -> Self {
        self.0.push(0x40);
        string_lit(&mut self.0, name, true);
        string_lit(&mut self.0, value, true);
        self
    }
    /// Literal with incremental indexing, indexed name.
    pub(super) fn add_named(mut self, index: usize, value: &str) -> Self {
        int(&mut self.0, 6, 0x40, index);
        string_lit(&mut self.0, value, false);
        self
    }
    pub(super) fn idx(mut self, index: usize) -> Self {
        int(&mut self.0, 7, 0x80, index);
        self
    }
    pub(super) fn size(mut self, size: usize) -> Self {
        int(&mut self.0, 5, 0x20, size);
        self
    }
    /// Request pseudo-headers (static indexes for GET/POST and http).
    pub(super) fn request(self, method: &str, path: &str) -> Self {
        let m = if method == "POST" {
            self.idx(3)
        } else {
            self.idx(2)
        };
        m.idx(6)
            .lit(":path", path)
            .lit(":authority", "example.test")
    }
    pub(super) fn status(self, code: u16) -> Self {
        match code {
            200 => self.idx(8),
            404 => self.idx(13),
            _ => self.lit(":status", &code.to_string()),
        }
    }
    pub(super) fn done(self) -> Vec<u8> {
        self.0
    }
}

/// Client preface and SETTINGS, server SETTINGS: a connection's start.
pub(super) fn open(h2: &mut Http2Stream) {
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[]));
    h2.push(Req, 1, &c);
    h2.push(Resp, 2, &settings(&[(3, 100)]));
}

/// Deterministic xorshift64* generator.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub(super) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(super) fn fields(list: &[(&str, &str)]) -> Vec<Header> {
    list.iter().map(|(n, v)| hdr(n, v)).collect()
}

pub(super) fn mutate(rng: &mut Rng, src: &[u8]) -> Vec<u8> {
    let mut v = src.to_vec();
    for _ in 0..1 + rng.below(8) {
        if v.is_empty() {
            break;
        }
        let at = rng.below(v.len());
        match rng.below(5) {
            0 => v[at] ^= 1 << rng.below(8),
            1 => v[at] = rng.next() as u8,
            2 => {
                v.remove(at);
            }
            3 => v.insert(at, rng.next() as u8),
            _ => {
                let end = (at + rng.below(64)).min(v.len());
                let copy = v[at..end].to_vec();
                let to = rng.below(v.len());
                v.splice(to..to, copy);
            }
        }
    }
    v
}
