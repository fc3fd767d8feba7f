//! HPACK Huffman decoding (RFC 7541 section 5.2 and Appendix B): the code, and canonical-code lookup tables built from it at compile time.

/// Canonical-code lookup tables built from [`HUFFMAN_CODES`].
struct HuffmanTables {
    /// Smallest code of each length.
    first: [u32; 31],
    /// Number of codes of each length.
    count: [u32; 31],
    /// Index in `symbols` of the first symbol of each length.
    offset: [u32; 31],
    /// Symbols sorted by code length, then code.
    symbols: [u16; 257],
}

/// Decoding tables for the HPACK Huffman code, built at compile time. The
/// code is canonical: within one length, codes are consecutive and increase
/// with the symbol (checked by a test).
const HUFFMAN: HuffmanTables = build_huffman();

// Indexing is fine here: this runs only at compile time, on the constant
// table, so an index out of bounds fails the build, never a capture.
#[allow(clippy::indexing_slicing)]
const fn build_huffman() -> HuffmanTables {
    let mut t = HuffmanTables {
        first: [u32::MAX; 31],
        count: [0; 31],
        offset: [0; 31],
        symbols: [0; 257],
    };
    let mut s = 0;
    while s < 257 {
        let (code, len) = HUFFMAN_CODES[s];
        let l = len as usize;
        if code < t.first[l] {
            t.first[l] = code;
        }
        t.count[l] += 1;
        s += 1;
    }
    let mut acc = 0;
    let mut l = 0;
    while l < 31 {
        t.offset[l] = acc;
        acc += t.count[l];
        l += 1;
    }
    let mut fill = [0u32; 31];
    s = 0;
    while s < 257 {
        let l = HUFFMAN_CODES[s].1 as usize;
        t.symbols[(t.offset[l] + fill[l]) as usize] = s as u16;
        fill[l] += 1;
        s += 1;
    }
    t
}

/// Bits looked up at once: every code of at most this many bits is decoded
/// by one look-up in [`FAST`], and two such codes when they fit in it
/// together (two of the 5- and 6-bit codes of lowercase letters and digits).
const FAST_BITS: u32 = 11;

/// What the next [`FAST_BITS`] bits start with: the symbol of the code of at
/// most `FAST_BITS` bits there (`len1` 0 when a longer code starts there),
/// and when the next code fits in the bits left, its symbol too (`total`,
/// the two lengths' sum, is then larger than `len1`).
#[derive(Clone, Copy)]
struct Fast {
    s1: u8,
    s2: u8,
    len1: u8,
    total: u8,
}

/// [`Fast`] for each value of the next [`FAST_BITS`] bits. The code is
/// prefix-free, so at most one code of at most `FAST_BITS` bits starts them.
const FAST: [Fast; 1 << FAST_BITS] = build_fast();

// Indexing is fine here: compile time only, as in `build_huffman`.
#[allow(clippy::indexing_slicing)]
const fn build_fast() -> [Fast; 1 << FAST_BITS] {
    let none = Fast {
        s1: 0,
        s2: 0,
        len1: 0,
        total: 0,
    };
    let mut t = [none; 1 << FAST_BITS];
    let mut s = 0;
    while s < 256 {
        let (code, len) = HUFFMAN_CODES[s];
        if len as u32 <= FAST_BITS {
            let shift = FAST_BITS - len as u32;
            let base = (code << shift) as usize;
            let mut i = 0;
            while i < 1 << shift {
                t[base + i] = Fast {
                    s1: s as u8,
                    s2: 0,
                    len1: len,
                    total: len,
                };
                i += 1;
            }
        }
        s += 1;
    }
    // The second code: what the bits after the first start with, if it
    // ends within them.
    let mask = (1usize << FAST_BITS) - 1;
    let mut v = 0;
    while v < 1 << FAST_BITS {
        let len1 = t[v].len1;
        if len1 != 0 {
            let next = t[(v << len1) & mask];
            if next.len1 != 0 && (len1 + next.len1) as u32 <= FAST_BITS {
                t[v].s2 = next.s1;
                t[v].total = len1 + next.len1;
            }
        }
        v += 1;
    }
    t
}

/// The symbol whose code, of one of `lengths`, starts the low `nbits` bits
/// of `acc`, and that length.
fn canonical(acc: u64, nbits: u32, lengths: std::ops::RangeInclusive<u32>) -> Option<(u16, u32)> {
    lengths.into_iter().find_map(|len| {
        let code = (acc >> (nbits - len)) as u32 & ((1u32 << len) - 1);
        let first = *HUFFMAN.first.get(len as usize)?;
        let count = *HUFFMAN.count.get(len as usize)?;
        if count == 0 || code < first || code - first >= count {
            return None;
        }
        let at = HUFFMAN
            .offset
            .get(len as usize)?
            .checked_add(code - first)?;
        Some((*HUFFMAN.symbols.get(at as usize)?, len))
    })
}

/// Decodes a Huffman-coded string (RFC 7541 section 5.2 and Appendix B);
/// `None` when it is invalid (EOS inside it, padding that is not a prefix
/// of EOS or is 8 bits or more).
#[inline]
pub(super) fn huffman_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len().saturating_mul(8) / 5);
    walk(input, |b| out.push(b)).then_some(out)
}

/// The length of the string [`huffman_decode`] gives, checked the same way,
/// without writing it: what the dynamic table counts of a value nobody
/// reads (at level `summary`, four of the six values nginx adds to the
/// table per response; decoding them was ~2k instructions per HTTP/2
/// exchange, bench/instructions.sh).
pub(super) fn huffman_decoded_len(input: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    walk(input, |_| len += 1).then_some(len)
}

/// Decodes `input`, handing each symbol to `emit`; whether it is valid.
///
/// Bits are taken from a 64-bit accumulator: the codes of at most 11 bits
/// (every letter, digit and common punctuation) by one table look-up, often
/// two at once, longer ones by their canonical ranges. Decoding bit by bit was
/// over half of the tracker's instructions per HTTP/2 exchange
/// (bench/instructions.sh, callgrind).
#[inline(always)]
fn walk(input: &[u8], mut emit: impl FnMut(u8)) -> bool {
    // The low `nbits` bits of `acc` are the next bits of the input.
    let (mut acc, mut nbits) = (0u64, 0u32);
    let mut bytes = input.iter();
    loop {
        while nbits <= 56 {
            let Some(&b) = bytes.next() else { break };
            acc = acc << 8 | u64::from(b);
            nbits += 8;
        }
        // The next FAST_BITS bits; at the end of the input, the bits left
        // followed by ones (what a code must not reach into).
        let next = if nbits >= FAST_BITS {
            acc >> (nbits - FAST_BITS)
        } else {
            let pad = FAST_BITS - nbits;
            acc << pad | ((1 << pad) - 1)
        } as usize
            & ((1 << FAST_BITS) - 1);
        if let Some(f) = FAST.get(next).filter(|f| f.len1 != 0) {
            if u32::from(f.len1) > nbits {
                // A code reaching past the input: only padding is left.
                break;
            }
            emit(f.s1);
            if f.total > f.len1 && u32::from(f.total) <= nbits {
                emit(f.s2);
                nbits -= u32::from(f.total);
            } else {
                nbits -= u32::from(f.len1);
            }
            continue;
        }
        // A code longer than FAST_BITS (none is left when fewer bits are).
        if nbits <= FAST_BITS {
            break;
        }
        let Some((symbol, len)) = canonical(acc, nbits, FAST_BITS + 1..=nbits.min(30)) else {
            break;
        };
        // EOS inside a string is an error.
        let Ok(symbol) = u8::try_from(symbol) else {
            return false;
        };
        emit(symbol);
        nbits -= len;
    }
    // Padding: fewer than 8 bits, all ones (a prefix of EOS).
    let rest = acc & ((1u64 << nbits.min(63)) - 1);
    nbits < 8 && rest == (1u64 << nbits) - 1
}

/// The HPACK Huffman code (RFC 7541 Appendix B): (code, length in bits) per
/// symbol 0..=255, then EOS.
#[rustfmt::skip]
pub(crate) const HUFFMAN_CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28), // 0
    (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24), // 5
    (0x3ffffffc, 30), (0xfffffe9, 28), (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), // 10
    (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28), // 15
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), (0xffffff4, 28), // 20
    (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28), // 25
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), // 30
    (0xffa, 12), (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), // 35
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11), (0xfa, 8), // 40
    (0x16, 6), (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5), // 45
    (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6), // 50
    (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8), // 55
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), // 60
    (0x21, 6), (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), // 65
    (0x61, 7), (0x62, 7), (0x63, 7), (0x64, 7), (0x65, 7), // 70
    (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), // 75
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7), (0x6f, 7), // 80
    (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7), // 85
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), // 90
    (0x22, 6), (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), // 95
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6), // 100
    (0x6, 5), (0x74, 7), (0x75, 7), (0x28, 6), (0x29, 6), // 105
    (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7), (0x2c, 6), // 110
    (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7), // 115
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), // 120
    (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22), // 125
    (0xfffe7, 20), (0xfffe8, 20), (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), // 130
    (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23), // 135
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), (0xffffec, 24), // 140
    (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23), // 145
    (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), // 150
    (0x7fffe5, 23), (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), // 155
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22), // 160
    (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), (0x7fffea, 23), (0x3fffdd, 22), // 165
    (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), // 170
    (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), // 175
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20), // 180
    (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22), // 185
    (0x3fffe6, 22), (0x7ffff1, 23), (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), // 190
    (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25), // 195
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), (0x7ffffdf, 27), // 200
    (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21), // 205
    (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), // 210
    (0xfffff2, 24), (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), // 215
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20), // 220
    (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), (0x3fffe9, 22), (0x1fffe7, 21), // 225
    (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), // 230
    (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23), // 235
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27), // 240
    (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28), // 245
    (0x7ffffec, 27), (0x7ffffed, 27), (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), // 250
    (0x3ffffee, 26), (0x3fffffff, 30), // 255
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::testutil::huffman_encode;

    #[test]
    fn huffman_code_is_canonical_and_round_trips() {
        for l in 5..=30usize {
            let mut codes: Vec<(u32, usize)> = HUFFMAN_CODES
                .iter()
                .enumerate()
                .filter(|(_, c)| usize::from(c.1) == l)
                .map(|(s, c)| (c.0, s))
                .collect();
            codes.sort_unstable();
            for (k, (code, sym)) in codes.iter().enumerate() {
                assert_eq!(*code, HUFFMAN.first[l] + k as u32);
                assert_eq!(
                    usize::from(HUFFMAN.symbols[(HUFFMAN.offset[l] as usize) + k]),
                    *sym
                );
            }
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(
            huffman_decode(&huffman_encode(&all)).as_deref(),
            Some(&all[..])
        );
        // RFC 7541 C.4.1.
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(
            huffman_decode(&www).as_deref(),
            Some(&b"www.example.com"[..])
        );
        // EOS inside, over-long padding, padding with zeros.
        assert_eq!(huffman_decode(&[0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(huffman_decode(&[0xf1, 0xe3, 0xff]), None);
        assert_eq!(huffman_decode(&[0x00]), None);
    }

    /// The decoder before the look-up table, bit by bit: the reference.
    fn bitwise(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let (mut code, mut len) = (0u32, 0usize);
        for &byte in input {
            for bit in (0..8).rev() {
                code = (code << 1) | u32::from((byte >> bit) & 1);
                len += 1;
                let (first, count) = (HUFFMAN.first[len], HUFFMAN.count[len]);
                if count > 0 && code >= first && code - first < count {
                    let symbol = HUFFMAN.symbols[(HUFFMAN.offset[len] + code - first) as usize];
                    out.push(u8::try_from(symbol).ok()?);
                    (code, len) = (0, 0);
                } else if len >= 30 {
                    return None;
                }
            }
        }
        (len < 8 && code == (1u32 << len) - 1).then_some(out)
    }

    /// The length-only decoding agrees with the decoding, invalid inputs
    /// included.
    fn assert_len(input: &[u8]) {
        assert_eq!(
            huffman_decoded_len(input),
            huffman_decode(input).map(|d| d.len()),
            "{input:x?}"
        );
    }

    #[test]
    fn decodes_as_bit_by_bit_on_any_input() {
        // Every string of up to 2 bytes, then pseudo-random ones (encoded
        // text and raw bytes) of up to 40 bytes.
        for a in 0..=255u8 {
            assert_eq!(huffman_decode(&[a]), bitwise(&[a]), "{a:#x}");
            assert_len(&[a]);
            for b in 0..=255u8 {
                assert_eq!(huffman_decode(&[a, b]), bitwise(&[a, b]), "{a:#x} {b:#x}");
                assert_len(&[a, b]);
            }
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let n = (next() % 40) as usize;
            let raw: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            assert_eq!(huffman_decode(&raw), bitwise(&raw), "{raw:x?}");
            assert_len(&raw);
            let text = huffman_encode(&raw);
            assert_len(&text);
            assert_eq!(huffman_decode(&text).as_deref(), Some(&raw[..]));
            assert_eq!(huffman_decode(&text), bitwise(&text));
            // Header-like text: mostly codes of 5 to 8 bits, two per look-up.
            const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 -./:;=,ABCXYZ";
            let header: Vec<u8> = (0..n)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let coded = huffman_encode(&header);
            assert_eq!(huffman_decode(&coded).as_deref(), Some(&header[..]));
            for cut in 0..coded.len() {
                let part = &coded[..cut];
                assert_eq!(huffman_decode(part), bitwise(part), "{part:x?}");
                assert_len(part);
            }
        }
    }
}
