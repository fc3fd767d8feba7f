//! The HPACK header tables: the static table, and the dynamic table of one direction, whose tail may be unknown after a desync.

use super::Hpack;

/// Largest HPACK dynamic table kept, whatever the peers negotiate.
pub(super) const MAX_TABLE_SIZE: usize = 64 * 1024;
/// SETTINGS_HEADER_TABLE_SIZE before any SETTINGS frame.
pub(super) const DEFAULT_TABLE_SIZE: usize = 4096;
/// Bytes counted per dynamic table entry besides its name and value.
const ENTRY_OVERHEAD: usize = 32;

/// One dynamic table entry, as text (decoded lossily once, when inserted:
/// checking the UTF-8 of every reference to it was most of the HPACK
/// decoder's UTF-8 checks, bench/instructions.sh); the name is unknown when
/// it came from a table entry that was never seen.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: Option<String>,
    /// The name's length in octets as sent (its text may be longer, with
    /// replacement characters): what a new entry naming it counts.
    pub(super) name_len: usize,
    /// The value; `None` for a field the decoder does not keep (its name
    /// is known and not kept, so no reference to the entry reads it).
    pub(super) value: Option<String>,
    /// The entry's size as the encoder counts it: octets as sent, plus 32.
    pub(super) size: usize,
}

/// Where an index points: the name (with its length in octets as sent) and
/// the value.
pub(super) enum Slot<'a> {
    /// The value is `None` in an entry of a field not kept ([`Entry::value`]).
    Found(Option<(&'a str, usize)>, Option<&'a str>),
    /// Beyond the known entries of a table with an unknown tail.
    Unknown,
    Invalid,
}

impl Hpack {
    pub(crate) fn joined_mid_stream(&mut self) {
        self.mark_unknown();
        self.max_known = false;
        if !self.limit_from_settings {
            self.limit = MAX_TABLE_SIZE;
        }
    }

    pub(crate) fn mark_unknown(&mut self) {
        self.entries.clear();
        self.size = 0;
        self.unknown = true;
        self.recheck();
    }

    pub(crate) fn set_limit(&mut self, value: u32) {
        self.limit = (value as usize).min(MAX_TABLE_SIZE);
        self.limit_from_settings = true;
    }

    /// The unknown tail is gone once no entry could fit beside the known ones.
    fn recheck(&mut self) {
        if self.unknown
            && self.max_known
            && self.size.saturating_add(ENTRY_OVERHEAD) > self.max_size
        {
            self.unknown = false;
        }
    }

    pub(super) fn set_max_size(&mut self, size: usize) {
        self.max_size = size.min(self.limit).min(MAX_TABLE_SIZE);
        self.max_known = true;
        self.evict();
        self.recheck();
    }

    fn evict(&mut self) {
        while self.size > self.max_size {
            match self.entries.pop_back() {
                Some(e) => self.size = self.size.saturating_sub(e.size),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Insert an entry; `name_len` and `value_len` are the octets as sent.
    pub(super) fn insert(
        &mut self,
        name: Option<String>,
        name_len: usize,
        value: Option<String>,
        value_len: usize,
    ) {
        let size = name_len
            .saturating_add(value_len)
            .saturating_add(ENTRY_OVERHEAD);
        if size > self.max_size {
            // The encoder's table is emptied too (its entry is at least as large).
            self.entries.clear();
            self.size = 0;
            if self.max_known {
                self.unknown = false;
            }
            return;
        }
        self.size = self.size.saturating_add(size);
        self.entries.push_front(Entry {
            name,
            name_len,
            value,
            size,
        });
        self.evict();
        self.recheck();
    }

    pub(super) fn slot(&self, index: usize) -> Slot<'_> {
        if index == 0 {
            return Slot::Invalid;
        }
        if let Some((n, v)) = static_entry(index) {
            return Slot::Found(Some((n, n.len())), Some(v));
        }
        match self.entries.get(index - 1 - STATIC_TABLE.len()) {
            Some(e) => Slot::Found(
                e.name.as_deref().map(|n| (n, e.name_len)),
                e.value.as_deref(),
            ),
            None if self.unknown => Slot::Unknown,
            None => Slot::Invalid,
        }
    }
}

/// Static table entry `index` (1 to 61): its name and value.
pub(super) fn static_entry(index: usize) -> Option<(&'static str, &'static str)> {
    STATIC_TABLE.get(index.checked_sub(1)?).copied()
}

/// Entries of the static table: indexes 1 to 61; the dynamic table's
/// start after them.
pub(super) const STATIC_ENTRIES: usize = 61;

/// The HPACK static table (RFC 7541 Appendix A), indexes 1 to 61.
const STATIC_TABLE: [(&str, &str); STATIC_ENTRIES] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

#[cfg(test)]
mod tests {
    use super::super::Outcome;
    use super::*;
    use crate::http2::testutil::*;
    use crate::http2::Side::{Request as Req, Response as Resp};
    use crate::http2::{Http2Stream, Limits};

    #[test]
    fn hpack_unknown_tail_after_desync() {
        let mut d = Hpack::new(None);
        d.decode(&Enc::default().add("a", "1").add("b", "2").done());
        d.mark_unknown();
        // New entry c is known (index 62); 63 and above are unknown.
        let (out, o) = d.decode(&Enc::default().add("c", "3").idx(62).idx(63).idx(2).done());
        assert_eq!(out, fields(&[("c", "3"), ("c", "3"), (":method", "GET")]));
        assert_eq!(o, Outcome::Degraded);
        // An indexed name from the unknown part: the new entry's name is unknown too.
        let (out, o) = d.decode(&Enc::default().add_named(70, "v").idx(62).done());
        assert!(out.is_empty());
        assert_eq!(o, Outcome::Degraded);
        // Filling the (known 4096-byte) table drops the unknown part.
        let big = "x".repeat(2000);
        d.decode(&Enc::default().add("big1", &big).add("big2", &big).done());
        assert!(!d.unknown);
        let (_, o) = d.decode(&Enc::default().idx(70).done());
        assert_eq!(o, Outcome::Error);
    }

    #[test]
    fn table_size_update_to_zero_empties_the_table() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        h2.push(
            Req,
            3,
            &headers(
                1,
                true,
                &Enc::default().request("GET", "/").add("x-k", "v").done(),
            ),
        );
        h2.push(
            Req,
            4,
            &headers(3, true, &Enc::default().request("GET", "/").idx(62).done()),
        );
        h2.push(Resp, 5, &settings(&[(1, 0)]));
        h2.push(
            Req,
            6,
            &headers(
                5,
                true,
                &Enc::default().size(0).request("GET", "/").idx(62).done(),
            ),
        );
        for id in [1, 3, 5] {
            h2.push(
                Resp,
                7,
                &headers(id, true, &Enc::default().status(200).done()),
            );
        }
        let out = h2.drain();
        assert_eq!(out.len(), 3);
        assert_eq!(req(&out[1]).header("x-k"), Some("v"));
        assert!(req(&out[2]).headers_degraded);
        assert_eq!(req(&out[2]).header("x-k"), None);
        assert_eq!(h2.parse_errors(), 1);
    }
}
