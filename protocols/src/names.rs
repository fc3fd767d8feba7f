//! Sets of header names compared ASCII-case-insensitively, asked about once
//! per captured header field: the fields a parser keeps, the values the
//! agent redacts.
//!
//! A 64-bit filter of each name's length and first and last letters answers
//! most names that are not in a set without comparing them with its members:
//! comparing every field's name with each of the ten names kept at level
//! `summary` was ~2k instructions per HTTP/1 response (bench/instructions.sh,
//! callgrind), and with the nine redacted names ~880 per exchange.

/// The filter of a set of names: a bit per name (from its length and its
/// first and last letters, case folded); a name whose bit is clear is not in
/// the set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameFilter(u64);

impl NameFilter {
    /// The filter bit of `name`.
    const fn bit(name: &[u8]) -> u64 {
        let [first, .., last] = name else {
            // One byte: first and last are the same; none: a bit of its own.
            return match name {
                [only] => Self::bit_of(1, *only, *only),
                _ => 1,
            };
        };
        Self::bit_of(name.len(), *first, *last)
    }

    const fn bit_of(len: usize, first: u8, last: u8) -> u64 {
        let h = (len as u32)
            .wrapping_mul(31)
            .wrapping_add((first.to_ascii_lowercase() as u32).wrapping_mul(7))
            .wrapping_add(last.to_ascii_lowercase() as u32);
        1 << (h % 64)
    }

    /// The filter with `name` added.
    pub const fn with(self, name: &str) -> Self {
        NameFilter(self.0 | Self::bit(name.as_bytes()))
    }

    /// The filter of `names`.
    pub const fn of(names: &[&str]) -> Self {
        let mut f = NameFilter(0);
        let mut rest = names;
        while let [first, tail @ ..] = rest {
            f = f.with(first);
            rest = tail;
        }
        f
    }

    /// False when `name` is surely not in the set; true when it may be.
    #[inline]
    pub fn may_contain(self, name: &str) -> bool {
        self.0 & Self::bit(name.as_bytes()) != 0
    }
}

/// A set of names fixed at compile time, with its filter: `StaticNames::new(&["host"])`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticNames {
    names: &'static [&'static str],
    filter: NameFilter,
}

impl StaticNames {
    /// The set of `names`.
    pub const fn new(names: &'static [&'static str]) -> Self {
        StaticNames {
            names,
            filter: NameFilter::of(names),
        }
    }

    /// Is `name` in the set (ignoring ASCII case)?
    #[inline]
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The member `name` is (ignoring ASCII case), as the set spells it.
    #[inline]
    pub fn find(&self, name: &str) -> Option<&'static str> {
        if !self.filter.may_contain(name) {
            return None;
        }
        self.names
            .iter()
            .copied()
            .find(|n| n.eq_ignore_ascii_case(name))
    }

    /// The names, as given.
    pub fn names(&self) -> &'static [&'static str] {
        self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: StaticNames = StaticNames::new(&[
        "x-a",
        "Cookie",
        "",
        "q",
        "a-very-long-header-name-over-sixty-four-bytes-of-text-and-more-of-it",
    ]);

    #[test]
    fn members_are_found_in_any_case_and_others_are_not() {
        for n in SET.names() {
            assert!(SET.contains(n), "{n}");
            assert_eq!(SET.find(&n.to_ascii_uppercase()), Some(*n));
            assert!(SET.contains(&n.to_ascii_uppercase()), "{n}");
            assert!(SET.contains(&n.to_ascii_lowercase()), "{n}");
        }
        for n in ["x-b", "cookies", "cookie ", "Set-Cookie", "host", "Q2", " "] {
            assert!(!SET.contains(n), "{n}");
        }
        assert!(!StaticNames::new(&[]).contains(""));
    }

    #[test]
    fn the_filter_says_maybe_for_every_member() {
        let names = ["authorization", "Proxy-Authorization", "é", "x"];
        let f = NameFilter::of(&names);
        for n in names {
            assert!(f.may_contain(n) && f.may_contain(&n.to_ascii_uppercase()));
        }
        assert!(!NameFilter::default().may_contain("x"));
    }
}
