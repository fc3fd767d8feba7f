//! Scalar values of the YAML model. Each is checked where it is read, so an
//! impossible value is refused at its own line and column.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use crate::{CaptureLevel, Compression, DirectionFilter, Protocol, ServiceName, StdoutMode};

/// One value, or a list of them (`method: GET` or `method: [GET, HEAD]`).
#[derive(Debug)]
pub(crate) struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = a.next_element()? {
                    out.push(x);
                }
                Ok(OneOrMany(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(a)).map(|x| OneOrMany(vec![x]))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                T::deserialize(s.into_deserializer()).map(|x| OneOrMany(vec![x]))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                T::deserialize(n.into_deserializer()).map(|x| OneOrMany(vec![x]))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                T::deserialize(n.into_deserializer()).map(|x| OneOrMany(vec![x]))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                T::deserialize(n.into_deserializer()).map(|x| OneOrMany(vec![x]))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                T::deserialize(b.into_deserializer()).map(|x| OneOrMany(vec![x]))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A mapping of strings, keys kept with their positions (in file order).
#[derive(Debug, Default)]
pub(crate) struct KeyValues(pub Vec<(serde_saphyr::Spanned<String>, String)>);

impl<'de> Deserialize<'de> for KeyValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<KeyValues, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = a.next_key::<serde_saphyr::Spanned<String>>()? {
                    let v: String = a.next_value()?;
                    out.push((k, v));
                }
                Ok(KeyValues(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A process id: 1 to 4194304 (the kernel's `pid_max` limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pid(pub u32);

impl<'de> Deserialize<'de> for Pid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const FORM: &str = "a process id from 1 to 4194304";
        struct V;
        impl Visitor<'_> for V {
            type Value = Pid;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(FORM)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Pid, E> {
                if (1..=4_194_304).contains(&n) {
                    Ok(Pid(n as u32))
                } else {
                    Err(E::custom(format!(
                        "pid {n} is out of range: expected {FORM}"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Pid, E> {
                Err(E::custom(format!(
                    "pid {n} is out of range: expected {FORM}"
                )))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Pid, E> {
                Err(E::custom(format!("invalid pid {s:?}: expected {FORM}")))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------- sizes

/// A size in bytes: an integer, or a string with a unit (`64KiB`, `16MiB`, `1GiB`,
/// `100kB`, `10MB`, `512B`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ByteSize(pub u64);

const SIZE_FORM: &str = "a size in bytes: an integer or a number with a unit (B, KiB, MiB, GiB, kB, MB, GB), e.g. 65536 or 64KiB";

/// Parse `64KiB`, `16 MiB`, `4096`, `10MB`.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let bad = || format!("invalid size {s:?}: expected {SIZE_FORM}");
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(SIZE_FORM)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ByteSize, E> {
                u64::try_from(n)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("negative size {n}: expected {SIZE_FORM}")))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<ByteSize, E> {
                Err(E::custom(format!(
                    "fractional size {n}: expected {SIZE_FORM}"
                )))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ByteSize, E> {
                parse_size(s).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------- durations

/// A duration: `10s`, `500ms`, `2m`, or an integer number of milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DurationValue(pub Duration);

const DURATION_FORM: &str =
    "a duration: an integer number of milliseconds or a number with a unit (ms, s, m), e.g. 10s or 500ms";

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let bad = || format!("invalid duration {s:?}: expected {DURATION_FORM}");
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    match unit.trim() {
        "" | "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => n
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("duration {s:?} is too large")),
        _ => Err(bad()),
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(DURATION_FORM)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<DurationValue, E> {
                Ok(DurationValue(Duration::from_millis(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<DurationValue, E> {
                u64::try_from(n)
                    .map(|n| DurationValue(Duration::from_millis(n)))
                    .map_err(|_| {
                        E::custom(format!("negative duration {n}: expected {DURATION_FORM}"))
                    })
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<DurationValue, E> {
                Err(E::custom(format!(
                    "fractional duration {n}: expected {DURATION_FORM}"
                )))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DurationValue, E> {
                parse_duration(s).map(DurationValue).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------- ratios

/// A sampling ratio, 0.0 to 1.0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Ratio(pub f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if v.is_nan() || !(0.0..=1.0).contains(&v) {
            return Err(de::Error::custom(format!(
                "sampling ratio {v} is out of range: expected a number from 0.0 (keep none) to 1.0 (keep all)"
            )));
        }
        Ok(Ratio(v))
    }
}

// ---------------------------------------------------------------- ranges

/// Inclusive range of HTTP status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatusRange {
    /// Lowest code matched.
    pub lo: u16,
    /// Highest code matched.
    pub hi: u16,
}

impl StatusRange {
    /// Does `status` fall in the range?
    pub fn contains(&self, status: u16) -> bool {
        (self.lo..=self.hi).contains(&status)
    }
}

const STATUS_FORM: &str =
    "a status code (404), a range (500-599) or a class (5xx), codes 100 to 599";

fn status_code(n: u64, whole: &str) -> Result<u16, String> {
    if (100..=599).contains(&n) {
        Ok(n as u16)
    } else {
        Err(format!(
            "status {n} in {whole:?} is not an HTTP status code: expected {STATUS_FORM}"
        ))
    }
}

impl FromStr for StatusRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let bad = || format!("invalid status {s:?}: expected {STATUS_FORM}");
        let num = |p: &str| -> Result<u16, String> {
            let p = p.trim();
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 5 {
                return Err(bad());
            }
            status_code(p.parse::<u64>().map_err(|_| bad())?, s)
        };
        let lower = t.to_ascii_lowercase();
        if lower.len() == 3 && lower.ends_with("xx") {
            let class = lower.as_bytes()[0];
            if (b'1'..=b'5').contains(&class) {
                let lo = u16::from(class - b'0') * 100;
                return Ok(StatusRange { lo, hi: lo + 99 });
            }
            return Err(bad());
        }
        match t.split_once('-') {
            Some((a, b)) => {
                let (lo, hi) = (num(a)?, num(b)?);
                if lo > hi {
                    return Err(format!(
                        "status range {s:?} is empty ({lo} > {hi}): expected low-high, e.g. 500-599"
                    ));
                }
                Ok(StatusRange { lo, hi })
            }
            None => num(t).map(|c| StatusRange { lo: c, hi: c }),
        }
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StatusRange;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(STATUS_FORM)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<StatusRange, E> {
                let c = status_code(n, &n.to_string()).map_err(E::custom)?;
                Ok(StatusRange { lo: c, hi: c })
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<StatusRange, E> {
                Err(E::custom(format!(
                    "status {n} is not an HTTP status code: expected {STATUS_FORM}"
                )))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StatusRange, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Inclusive range of TCP ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// Lowest port matched.
    pub lo: u16,
    /// Highest port matched.
    pub hi: u16,
}

impl PortRange {
    /// Does `port` fall in the range?
    pub fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }
}

const PORT_FORM: &str = "a port (8080) or a range (8000-8099), ports 1 to 65535";

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let num = |p: &str| -> Result<u16, String> {
            let p = p.trim();
            match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(format!("invalid port {s:?}: expected {PORT_FORM}")),
            }
        };
        match s.split_once('-') {
            Some((a, b)) => {
                let (lo, hi) = (num(a)?, num(b)?);
                if lo > hi {
                    return Err(format!(
                        "port range {s:?} is empty ({lo} > {hi}): expected low-high, e.g. 8000-8099"
                    ));
                }
                Ok(PortRange { lo, hi })
            }
            None => num(s).map(|p| PortRange { lo: p, hi: p }),
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(PORT_FORM)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<PortRange, E> {
                n.to_string().parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PortRange, E> {
                n.to_string().parse().map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PortRange, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------- matchers

/// How a [`Matcher`] compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// The whole value equals the pattern.
    Exact,
    /// The value starts with the pattern.
    Prefix,
    /// The value ends with the pattern.
    Suffix,
    /// The regular expression matches somewhere in the value (anchor it with `^…$`).
    Regex,
}

impl MatchKind {
    /// `exact`, `prefix`, `suffix`, `regex`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Prefix => "prefix",
            MatchKind::Suffix => "suffix",
            MatchKind::Regex => "regex",
        }
    }
}

const MATCH_KINDS: &[&str] = &["exact", "prefix", "suffix", "regex"];

/// A string matcher.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// The whole value equals this.
    Exact(String),
    /// The value starts with this.
    Prefix(String),
    /// The value ends with this.
    Suffix(String),
    /// This regular expression matches somewhere in the value.
    Regex(regex::Regex),
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.pattern() == other.pattern()
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// Which comparison this is.
    pub fn kind(&self) -> MatchKind {
        match self {
            Matcher::Exact(_) => MatchKind::Exact,
            Matcher::Prefix(_) => MatchKind::Prefix,
            Matcher::Suffix(_) => MatchKind::Suffix,
            Matcher::Regex(_) => MatchKind::Regex,
        }
    }

    /// The pattern as written (lowercased for case-insensitive fields).
    pub fn pattern(&self) -> &str {
        match self {
            Matcher::Exact(s) | Matcher::Prefix(s) | Matcher::Suffix(s) => s,
            Matcher::Regex(r) => r.as_str(),
        }
    }

    /// Does `value` match?
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => value == s,
            Matcher::Prefix(s) => value.starts_with(s.as_str()),
            Matcher::Suffix(s) => value.ends_with(s.as_str()),
            Matcher::Regex(r) => r.is_match(value),
        }
    }

    /// A regex matcher, or the one-line reason the pattern is not a regex.
    pub fn regex(pattern: &str) -> Result<Self, String> {
        compile_regex(pattern, false).map(Matcher::Regex)
    }
}

fn compile_regex(pattern: &str, fold_case: bool) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(fold_case)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error:"))
                .map(|r| r.trim().to_string())
                .unwrap_or_else(|| text.lines().last().unwrap_or("").trim().to_string());
            format!("invalid regex {pattern:?}: {reason}")
        })
}

/// A string that is not empty (nor only blanks).
pub(crate) struct NonEmptyString(pub String);

impl<'de> Deserialize<'de> for NonEmptyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(de::Error::custom(
                "empty string: expected a non-empty string",
            ));
        }
        Ok(NonEmptyString(s))
    }
}

/// A string that compiles as a regex.
struct RegexPattern(String);

impl<'de> Deserialize<'de> for RegexPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = NonEmptyString::deserialize(d)?.0;
        compile_regex(&s, false).map_err(de::Error::custom)?;
        Ok(RegexPattern(s))
    }
}

/// A matcher as written: a plain string (the field's default kind) or a
/// one-key mapping `{exact|prefix|suffix|regex: PATTERN}`.
#[derive(Clone, Debug)]
pub(crate) struct RawMatcher {
    kind: Option<MatchKind>,
    pattern: String,
}

impl RawMatcher {
    /// The matcher, with `default` for a plain string; `fold_case` compares
    /// case-insensitively (host names, methods).
    pub(crate) fn build(&self, default: MatchKind, fold_case: bool) -> Matcher {
        let kind = self.kind.unwrap_or(default);
        let text = if fold_case && kind != MatchKind::Regex {
            self.pattern.to_ascii_lowercase()
        } else {
            self.pattern.clone()
        };
        match kind {
            MatchKind::Exact => Matcher::Exact(text),
            MatchKind::Prefix => Matcher::Prefix(text),
            MatchKind::Suffix => Matcher::Suffix(text),
            // Checked when read: compiling again with other flags cannot fail,
            // but fall back to an exact match rather than panic if it does.
            MatchKind::Regex => match compile_regex(&text, fold_case) {
                Ok(r) => Matcher::Regex(r),
                Err(_) => Matcher::Exact(text),
            },
        }
    }
}

impl<'de> Deserialize<'de> for RawMatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMatcher;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or one of {exact: S}, {prefix: S}, {suffix: S}, {regex: RE}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawMatcher, E> {
                if s.trim().is_empty() {
                    return Err(E::custom("empty string: expected a non-empty string"));
                }
                Ok(RawMatcher {
                    kind: None,
                    pattern: s.to_string(),
                })
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawMatcher, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawMatcher, A::Error> {
                let Some(key) = a.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "empty mapping: expected one of {exact: S}, {prefix: S}, {suffix: S}, {regex: RE}",
                    ));
                };
                let kind = match key.as_str() {
                    "exact" => MatchKind::Exact,
                    "prefix" => MatchKind::Prefix,
                    "suffix" => MatchKind::Suffix,
                    "regex" => MatchKind::Regex,
                    other => return Err(de::Error::unknown_field(other, MATCH_KINDS)),
                };
                // Checked in the value's own `Deserialize`, so an error points at the value.
                let pattern = if kind == MatchKind::Regex {
                    a.next_value::<RegexPattern>()?.0
                } else {
                    a.next_value::<NonEmptyString>()?.0
                };
                if let Some(extra) = a.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "\"{extra}\" after \"{key}\": a matcher has exactly one of exact, prefix, suffix, regex"
                    )));
                }
                Ok(RawMatcher {
                    kind: Some(kind),
                    pattern,
                })
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------- keywords

/// `Deserialize` through `FromStr` for keyword enums, so a bad keyword is
/// refused at its position with the accepted spellings.
macro_rules! keyword_deserialize {
    ($ty:ty, $expecting:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$ty, E> {
                        s.parse::<$ty>().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

keyword_deserialize!(CaptureLevel, "one of none, summary, details, full");
keyword_deserialize!(Protocol, "one of grpc, http/protobuf");
keyword_deserialize!(Compression, "one of gzip, none");
keyword_deserialize!(DirectionFilter, "one of ingress, egress, all");
keyword_deserialize!(
    crate::telemetry::ClientSpanFromTraceparent,
    "one of export, skip"
);

impl<'de> Deserialize<'de> for StdoutMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StdoutMode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("one of auto, on, off (or true, false)")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<StdoutMode, E> {
                Ok(if b { StdoutMode::On } else { StdoutMode::Off })
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StdoutMode, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ServiceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const FORM: &str = "`executable` (each process's executable name) or {fixed: NAME}";
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ServiceName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(FORM)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ServiceName, E> {
                if s == "executable" {
                    Ok(ServiceName::Executable)
                } else {
                    Err(E::custom(format!(
                        "unknown service name strategy {s:?}: expected {FORM}"
                    )))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<ServiceName, A::Error> {
                let Some(key) = a.next_key::<String>()? else {
                    return Err(de::Error::custom(format!("empty mapping: expected {FORM}")));
                };
                if key != "fixed" {
                    return Err(de::Error::unknown_field(&key, &["fixed"]));
                }
                let name = a.next_value::<NonEmptyString>()?.0;
                if let Some(extra) = a.next_key::<String>()? {
                    return Err(de::Error::unknown_field(&extra, &["fixed"]));
                }
                Ok(ServiceName::Fixed(name))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("16 MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1500").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn status_ranges() {
        let r: StatusRange = "500-599".parse().unwrap();
        assert!(r.contains(503) && !r.contains(499));
        assert_eq!(
            "4xx".parse::<StatusRange>().unwrap(),
            StatusRange { lo: 400, hi: 499 }
        );
        assert_eq!(
            "404".parse::<StatusRange>().unwrap(),
            StatusRange { lo: 404, hi: 404 }
        );
        assert!("600-100"
            .parse::<StatusRange>()
            .unwrap_err()
            .contains("not an HTTP status"));
        assert!("599-500"
            .parse::<StatusRange>()
            .unwrap_err()
            .contains("is empty"));
        assert!("9xx".parse::<StatusRange>().is_err());
        assert!("abc".parse::<StatusRange>().is_err());
        assert!("5000000000".parse::<StatusRange>().is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(
            "8000-8099".parse::<PortRange>().unwrap(),
            PortRange { lo: 8000, hi: 8099 }
        );
        assert!("0".parse::<PortRange>().is_err());
        assert!("70000".parse::<PortRange>().is_err());
        assert!("90-80".parse::<PortRange>().is_err());
        assert!("+80".parse::<PortRange>().is_err());
    }

    #[test]
    fn regex_errors_are_one_line() {
        let e = Matcher::regex("(unclosed").unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.starts_with("invalid regex \"(unclosed\": "), "{e}");
    }
}
