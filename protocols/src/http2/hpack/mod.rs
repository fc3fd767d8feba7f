//! The HPACK decoder (RFC 7541) of one direction: header block representations, integers and string literals.

mod huffman;
mod table;

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::VecDeque;
#[cfg(test)]
use std::mem;

#[cfg(test)]
pub(super) use self::huffman::HUFFMAN_CODES;
use self::huffman::{huffman_decode, huffman_decoded_len};
use self::table::{static_entry, Entry, Slot, DEFAULT_TABLE_SIZE, STATIC_ENTRIES};
use super::connection::PARSER_HEADERS;
use super::message::{Header, MAX_MESSAGE_FIELDS, MAX_MESSAGE_HEADER_BYTES};
use crate::names::StaticNames;

/// Fields a header block usually has (a request's or a response's).
const FIELDS_EXPECTED: usize = 16;

/// How a header block decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Every field decoded.
    Ok,
    /// Some fields are missing (unknown table entries, limits).
    Degraded,
    /// The block is malformed; fields after the error are missing.
    Error,
}

/// HPACK decoder (RFC 7541) of one direction.
///
/// After a desync (or when joined mid-stream) the table is emptied and marked
/// as having an unknown tail: entries inserted later are known and sit at the
/// front, exactly as in the encoder's table, so references to them stay right;
/// references past them are unknown. Once the known entries fill the table the
/// tail must have been evicted and the state is reliable again.
#[derive(Debug)]
pub(super) struct Hpack {
    entries: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    /// Bound for size updates (the peer's SETTINGS_HEADER_TABLE_SIZE).
    limit: usize,
    limit_from_settings: bool,
    /// `max_size` is known (from the start, or from a size update).
    max_known: bool,
    /// The table may hold entries that were never seen.
    pub(super) unknown: bool,
    /// The fields kept (see `Limits::keep_headers`); `None`: all.
    keep: Option<StaticNames>,
    /// Static table names (bit = index) whose keeping is known, and those
    /// kept: each is judged once per decoder.
    static_judged: Cell<u64>,
    static_kept: Cell<u64>,
}

impl Hpack {
    pub(super) fn new(keep: Option<StaticNames>) -> Self {
        Self {
            keep,
            entries: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            limit: DEFAULT_TABLE_SIZE,
            limit_from_settings: false,
            max_known: true,
            unknown: false,
            static_judged: Cell::new(0),
            static_kept: Cell::new(0),
        }
    }

    /// Is the field named by table entry `index` (name `name`, value
    /// `value`) kept? Judging the name against the kept names for every
    /// reference was ~1.1k instructions per HTTP/2 exchange at level
    /// `summary` (bench/instructions.sh); a static entry's answer is
    /// remembered, and a dynamic entry holds its value exactly when its
    /// field was kept ([`Entry::value`]).
    fn entry_kept(&self, index: usize, name: &str, value: Option<&str>) -> bool {
        let Some(keep) = self.keep else {
            return true;
        };
        if index > STATIC_ENTRIES {
            return value.is_some();
        }
        let bit = 1u64 << (index % 64);
        if self.static_judged.get() & bit == 0 {
            if kept_by(keep, name) {
                self.static_kept.set(self.static_kept.get() | bit);
            }
            self.static_judged.set(self.static_judged.get() | bit);
        }
        self.static_kept.get() & bit != 0
    }

    /// Decodes one complete header block: the kept fields. A field not kept
    /// costs no copy, and its value is not even decoded unless the dynamic
    /// table takes it (at level `summary` the values of the fields nobody
    /// reads were half of the HPACK decoder's instructions per HTTP/2
    /// exchange, bench/instructions.sh).
    pub(super) fn decode(&mut self, block: &[u8]) -> (Vec<Header>, Outcome) {
        // Room for a usual block: growing from empty one field at a time
        // was ~7 % of the tracker's instructions per HTTP/2 exchange
        // (bench/instructions.sh, callgrind).
        let mut out = Vec::with_capacity(FIELDS_EXPECTED);
        let keep = self.keep;
        let is_kept = |name: &str| keep.is_none_or(|k| kept_by(k, name));
        let mut out_bytes = 0usize;
        let mut degraded = false;
        let mut pos = 0usize;
        while let Some(&b) = block.get(pos) {
            let field = if b & 0x80 != 0 {
                let Some(index) = integer(block, &mut pos, 7) else {
                    return self.failed(out);
                };
                if let Some((n, v)) = static_entry(index) {
                    if !self.entry_kept(index, n, Some(v)) {
                        continue;
                    }
                    Some((Cow::Borrowed(n), Cow::Borrowed(v)))
                } else {
                    match self.slot(index) {
                        Slot::Found(Some((n, _)), v) if !self.entry_kept(index, n, v) => continue,
                        Slot::Found(Some((n, _)), Some(v)) => {
                            Some((Cow::Owned(n.to_owned()), Cow::Owned(v.to_owned())))
                        }
                        // A kept name never names an entry without its value;
                        // were it to, the field is missing (degraded), not wrong.
                        Slot::Found(Some(_), None) | Slot::Found(None, _) | Slot::Unknown => None,
                        Slot::Invalid => return self.failed(out),
                    }
                }
            } else if b & 0xe0 == 0x20 {
                let Some(size) = integer(block, &mut pos, 5) else {
                    return self.failed(out);
                };
                self.set_max_size(size);
                continue;
            } else {
                let (prefix, indexing) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
                let Some(index) = integer(block, &mut pos, prefix) else {
                    return self.failed(out);
                };
                // The name and its length in octets as sent.
                let (name, name_len, kept): (Option<Cow<'static, str>>, _, _) = if index == 0 {
                    match text(block, &mut pos) {
                        Some((n, len)) => {
                            let kept = is_kept(&n);
                            (Some(Cow::Owned(n)), len, kept)
                        }
                        None => return self.failed(out),
                    }
                } else if let Some((n, v)) = static_entry(index) {
                    (
                        Some(Cow::Borrowed(n)),
                        n.len(),
                        self.entry_kept(index, n, Some(v)),
                    )
                } else {
                    match self.slot(index) {
                        Slot::Found(Some((n, len)), v) => (
                            Some(Cow::Owned(n.to_owned())),
                            len,
                            self.entry_kept(index, n, v),
                        ),
                        // An unknown name is kept (decoded).
                        Slot::Found(None, _) | Slot::Unknown => (None, 0, true),
                        Slot::Invalid => return self.failed(out),
                    }
                };
                if !kept && !indexing {
                    if literal(block, &mut pos).is_none() {
                        return self.failed(out);
                    }
                    continue;
                }
                if !kept {
                    // For the dynamic table only its length in octets,
                    // checked as decoding it would check it.
                    let Some(value_len) = literal_len(block, &mut pos) else {
                        return self.failed(out);
                    };
                    self.insert(name.map(Cow::into_owned), name_len, None, value_len);
                    continue;
                }
                let Some((value, value_len)) = text(block, &mut pos) else {
                    return self.failed(out);
                };
                if indexing {
                    let entry_name = name.as_deref().map(str::to_owned);
                    self.insert(entry_name, name_len, Some(value.clone()), value_len);
                }
                name.map(|n| (n, Cow::Owned(value)))
            };
            match field {
                Some((name, value)) => {
                    let size = name.len().saturating_add(value.len());
                    if out.len() >= MAX_MESSAGE_FIELDS
                        || out_bytes.saturating_add(size) > MAX_MESSAGE_HEADER_BYTES
                    {
                        degraded = true;
                    } else {
                        out_bytes = out_bytes.saturating_add(size);
                        out.push(Header { name, value });
                    }
                }
                None => degraded = true,
            }
        }
        (
            out,
            if degraded {
                Outcome::Degraded
            } else {
                Outcome::Ok
            },
        )
    }

    /// A malformed block: entries it would have inserted are missing, so the
    /// table now has an unknown part.
    fn failed(&mut self, out: Vec<Header>) -> (Vec<Header>, Outcome) {
        self.mark_unknown();
        (out, Outcome::Error)
    }

    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.entries
            .iter()
            .map(|e| {
                e.name.as_ref().map_or(0, String::capacity)
                    + e.value.as_ref().map_or(0, String::capacity)
                    + mem::size_of::<Entry>()
            })
            .sum()
    }
}

/// Decodes an HPACK integer with an N-bit prefix at `*pos` (RFC 7541 section 5.1).
fn integer(block: &[u8], pos: &mut usize, prefix: u32) -> Option<usize> {
    let mask = ((1u16 << prefix.min(8)) - 1) as u8;
    let first = block.get(*pos)? & mask;
    *pos = pos.checked_add(1)?;
    if first < mask {
        return Some(usize::from(first));
    }
    let mut value = u64::from(mask);
    let mut shift = 0u32;
    loop {
        let b = *block.get(*pos)?;
        *pos = pos.checked_add(1)?;
        value = value.checked_add(u64::from(b & 0x7f) << shift)?;
        if value > u64::from(u32::MAX) {
            return None;
        }
        if b & 0x80 == 0 {
            return usize::try_from(value).ok();
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

/// Steps over an HPACK string literal at `*pos` (RFC 7541 section 5.2):
/// whether it is Huffman-coded, and its bytes as sent.
fn literal<'b>(block: &'b [u8], pos: &mut usize) -> Option<(bool, &'b [u8])> {
    let huffman = block.get(*pos)? & 0x80 != 0;
    let len = integer(block, pos, 7)?;
    let end = pos.checked_add(len)?;
    let raw = block.get(*pos..end)?;
    *pos = end;
    Some((huffman, raw))
}

/// Decodes an HPACK string literal at `*pos`.
fn string(block: &[u8], pos: &mut usize) -> Option<Vec<u8>> {
    match literal(block, pos)? {
        (true, raw) => huffman_decode(raw),
        (false, raw) => Some(raw.to_vec()),
    }
}

/// Steps over an HPACK string literal at `*pos`: its length in octets once
/// decoded, `None` when it is malformed (as [`text`] would find it).
fn literal_len(block: &[u8], pos: &mut usize) -> Option<usize> {
    match literal(block, pos)? {
        (true, raw) => huffman_decoded_len(raw),
        (false, raw) => Some(raw.len()),
    }
}

/// Is the field `name` kept by `keep`: named there, a pseudo-header field,
/// or one the parser reads?
fn kept_by(keep: StaticNames, name: &str) -> bool {
    name.starts_with(':') || keep.contains(name) || PARSER_HEADERS.contains(name)
}

/// A string literal as text, and its length in octets as sent (what the
/// table counts).
fn text(block: &[u8], pos: &mut usize) -> Option<(String, usize)> {
    let octets = string(block, pos)?;
    let len = octets.len();
    Some((crate::text::lossy_owned(octets), len))
}

#[cfg(test)]
mod tests {
    use super::table::MAX_TABLE_SIZE;
    use super::*;
    use crate::http2::testutil::*;

    #[test]
    fn hpack_integers() {
        // RFC 7541 C.1.
        let mut pos = 0;
        assert_eq!(integer(&[0x0a], &mut pos, 5), Some(10));
        pos = 0;
        assert_eq!(integer(&[0x1f, 0x9a, 0x0a], &mut pos, 5), Some(1337));
        assert_eq!(pos, 3);
        pos = 0;
        assert_eq!(integer(&[0x2a], &mut pos, 8), Some(42));
        pos = 0;
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x0f], &mut pos, 5),
            None,
            "overflow"
        );
        pos = 0;
        assert_eq!(
            integer(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], &mut pos, 5),
            None
        );
        pos = 0;
        assert_eq!(integer(&[0x1f], &mut pos, 5), None, "truncated");
    }

    #[test]
    fn hpack_rfc_request_examples() {
        // RFC 7541 C.3 (literals) and C.4 (Huffman): three requests on one connection.
        for blocks in [
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
        ] {
            let mut d = Hpack::new(None);
            let first = [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ];
            assert_eq!(d.decode(&hex(blocks[0])), (fields(&first), Outcome::Ok));
            let mut second = first.to_vec();
            second.push(("cache-control", "no-cache"));
            assert_eq!(d.decode(&hex(blocks[1])), (fields(&second), Outcome::Ok));
            let third = [
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ];
            assert_eq!(d.decode(&hex(blocks[2])), (fields(&third), Outcome::Ok));
            assert_eq!(d.size, 164);
        }
    }

    /// Entries are kept as text, but the table counts the octets as sent:
    /// two entries whose invalid UTF-8 grows threefold as text still fit a
    /// table sized for their octets, and a new entry naming one of them
    /// counts that name's octets.
    #[test]
    fn the_table_counts_octets_not_text() {
        let mut d = Hpack::new(None);
        // A size update to 2 × (32 + 1 + 10) = 86 (5-bit prefix: 31 + 55).
        let mut block = vec![0x3f, 55];
        // Twice: a literal with incremental indexing, new name "a", value of
        // ten 0xff octets.
        for _ in 0..2 {
            block.extend_from_slice(&[0x40, 0x01, b'a', 0x0a]);
            block.extend_from_slice(&[0xff; 10]);
        }
        let text = "\u{fffd}".repeat(10);
        let (fields, outcome) = d.decode(&block);
        assert_eq!(outcome, Outcome::Ok);
        assert_eq!(fields, vec![hdr("a", &text), hdr("a", &text)]);
        assert_eq!((d.size, d.entries.len()), (86, 2));
        // Both still there: indexes 62 and 63.
        assert_eq!(
            d.decode(&[0xbe, 0xbf]),
            (vec![hdr("a", &text), hdr("a", &text)], Outcome::Ok)
        );
        // A literal with indexing naming entry 62 (a 1-octet name, 6-bit
        // prefix: 62 = 0x3e) and an empty value: 33 octets, evicting one.
        assert_eq!(
            d.decode(&[0x40 | 0x3e, 0x00]),
            (vec![hdr("a", "")], Outcome::Ok)
        );
        assert_eq!((d.size, d.entries.len()), (33 + 43, 2));
    }

    /// A decoder keeping a few fields gives the full decoder's fields of
    /// those names, in order, and keeps the same table: random valid blocks
    /// of literals (indexed or not, new or indexed names, Huffman or not)
    /// and indexed fields, over several blocks per connection.
    /// A field the dynamic table takes but the decoder does not keep is
    /// only measured, yet checked as decoding it would be: a bad Huffman
    /// value fails the block as it does when every field is kept.
    #[test]
    fn a_bad_huffman_value_for_the_table_fails_kept_or_not() {
        const KEEP: StaticNames = StaticNames::new(&["user-agent"]);
        for bad in [&[0xff, 0xff, 0xff, 0xff][..], &[0x00], &[0x1f, 0xff]] {
            // Literal with incremental indexing, new name `date`, the value
            // Huffman-coded: EOS inside it, padding of zeros, 8 bits of padding.
            let mut block = vec![0x40, 4];
            block.extend_from_slice(b"date");
            block.push(0x80 | u8::try_from(bad.len()).expect("short"));
            block.extend_from_slice(bad);
            let (_, all) = Hpack::new(None).decode(&block);
            let (_, few) = Hpack::new(Some(KEEP)).decode(&block);
            assert_eq!((all, few), (Outcome::Error, Outcome::Error), "{bad:x?}");
        }
        // A good one is counted in octets once decoded: 33 + 4 + 29.
        let date = "Mon, 21 Oct 2013 20:13:21 GMT";
        let mut few = Hpack::new(Some(KEEP));
        let (fields, outcome) = few.decode(&Enc::default().add("date", date).done());
        assert_eq!((fields.len(), outcome), (0, Outcome::Ok));
        assert_eq!((few.size, few.entries.len()), (32 + 4 + date.len(), 1));
    }

    #[test]
    fn keeping_a_few_fields_is_the_full_decode_filtered() {
        const KEEP: StaticNames = StaticNames::new(&["user-agent", "traceparent"]);
        let names = [
            "user-agent",
            "Traceparent",
            "x-a",
            "date",
            "content-type",
            ":path",
            "grpc-status",
            "server",
        ];
        let mut rng = Rng(7);
        for _ in 0..300 {
            let (mut all, mut few) = (Hpack::new(None), Hpack::new(Some(KEEP)));
            let mut added = 0usize;
            for _ in 0..6 {
                let mut enc = Enc::default();
                if rng.below(8) == 0 {
                    enc = enc.size(rng.below(300));
                }
                for _ in 0..rng.below(12) {
                    let name = names[rng.below(names.len())];
                    let value = "v".repeat(rng.below(40));
                    enc = match rng.below(5) {
                        0 => enc.lit(name, &value),
                        1 => {
                            added += 1;
                            enc.add(name, &value)
                        }
                        // Indexed name: the static table's 1..=61, or a
                        // dynamic entry.
                        2 => {
                            added += 1;
                            enc.add_named(1 + rng.below(61 + added.min(8)), &value)
                        }
                        _ => enc.idx(1 + rng.below(61 + added.min(8))),
                    };
                }
                let block = enc.done();
                let (full, o1) = all.decode(&block);
                let (kept, o2) = few.decode(&block);
                assert_eq!(o1, o2);
                let expected: Vec<Header> = full
                    .into_iter()
                    .filter(|h| {
                        h.name.starts_with(':')
                            || KEEP.contains(&h.name)
                            || PARSER_HEADERS.contains(&h.name)
                    })
                    .collect();
                assert_eq!(kept, expected);
                assert_eq!((all.size, all.entries.len()), (few.size, few.entries.len()));
                assert_eq!(all.unknown, few.unknown);
            }
        }
    }

    #[test]
    fn hpack_rfc_response_examples_with_eviction() {
        // RFC 7541 C.6: Huffman, table size 256, evictions.
        let mut d = Hpack::new(None);
        d.set_limit(256);
        d.set_max_size(256);
        let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
        let b1 = concat!(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6",
            "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"
        );
        let r1 = [
            ("status", "302"),
            ("cache-control", "private"),
            ("date", date1),
            ("location", "https://www.example.com"),
        ];
        let with_colon = |l: &[(&'static str, &'static str)]| -> Vec<Header> {
            l.iter()
                .map(|(n, v)| hdr(if *n == "status" { ":status" } else { n }, v))
                .collect()
        };
        assert_eq!(d.decode(&hex(b1)), (with_colon(&r1), Outcome::Ok));
        assert_eq!(d.size, 222);
        let b2 = "4883 640e ffc1 c0bf";
        let r2 = [
            ("status", "307"),
            ("cache-control", "private"),
            ("date", date1),
            ("location", "https://www.example.com"),
        ];
        assert_eq!(d.decode(&hex(b2)), (with_colon(&r2), Outcome::Ok));
        assert_eq!(d.size, 222);
        let b3 = concat!(
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab",
            "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f",
            "9587 3160 65c0 03ed 4ee5 b106 3d50 07"
        );
        let date3 = "Mon, 21 Oct 2013 20:13:22 GMT";
        let r3 = [
            ("status", "200"),
            ("cache-control", "private"),
            ("date", date3),
            ("location", "https://www.example.com"),
            ("content-encoding", "gzip"),
            (
                "set-cookie",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            ),
        ];
        assert_eq!(d.decode(&hex(b3)), (with_colon(&r3), Outcome::Ok));
        assert_eq!(d.size, 215);
        assert_eq!(d.entries.len(), 3);
    }

    #[test]
    fn random_header_blocks_never_panic() {
        let mut rng = Rng(42);
        let valid = [
            hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
            Enc::default()
                .size(100)
                .add("k", "v")
                .idx(62)
                .add_named(62, "w")
                .done(),
            Enc::default()
                .request("GET", "/")
                .add("x", &"y".repeat(700))
                .done(),
        ];
        for i in 0..8_000 {
            let mut d = Hpack::new(None);
            if i % 3 == 0 {
                d.mark_unknown();
            }
            d.set_limit(rng.next() as u32);
            for _ in 0..4 {
                let (len, pick) = (rng.below(200), rng.below(valid.len()));
                let block = if rng.below(2) == 0 {
                    rng.bytes(len)
                } else {
                    mutate(&mut rng, &valid[pick])
                };
                let (out, _) = d.decode(&block);
                assert!(out.len() <= MAX_MESSAGE_FIELDS);
                assert!(d.size <= d.max_size && d.max_size <= MAX_TABLE_SIZE);
            }
        }
        // Indexed references cannot amplify beyond the per-block limit.
        let mut d = Hpack::new(None);
        d.set_limit(65_536);
        let block = Enc::default()
            .size(65_536)
            .add("a", &"b".repeat(60_000))
            .done();
        d.decode(&block);
        let (out, o) = d.decode(&vec![0xbe; 100_000]);
        assert_eq!(o, Outcome::Degraded);
        assert!(out.iter().map(|h| h.value.len()).sum::<usize>() <= MAX_MESSAGE_HEADER_BYTES);
    }
}
