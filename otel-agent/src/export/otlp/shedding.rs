//! Shedding spans under pressure. When the span queue is more than half full
//! (the collector, or the export, cannot keep up), spans are sampled by their
//! trace's randomness at 1/2, 1/4, … instead of being dropped at random when
//! the queue overflows: the decision depends on the trace alone, so a trace
//! is kept whole or not at all, and no work is spent on the spans shed.
//!
//! This is OpenTelemetry's consistent probability sampling: each kept span
//! carries the rejection threshold in its trace state (`ot=th:…`), from which
//! a collector knows the span stands for 2^level spans. The trace's
//! randomness is the `rv` it carries in `ot`, or else the last 56 bits of its
//! trace id (W3C random trace ids). Shed spans are counted
//! (`tap.dropped.spans{tap.drop.reason=shed}`), and every exchange still
//! counts in the HTTP metrics.
//!
//! The level follows the queue's fill from moment to moment: nothing is shed
//! below half full, then each further twentieth of the queue halves the
//! share kept, down to 1/1,024 when it is 95 % full. A burst the queue
//! absorbs never sheds; under sustained overload the fill settles where the
//! share kept is what the export sustains, and the queue rarely overflows.

use semconv::trace_context::SpanIds;

/// The queue fill (0–1) from which spans are shed.
pub const SHED_FROM: f64 = 0.5;
/// The highest level: one trace in 1,024 kept.
pub const MAX_LEVEL: u32 = 10;
/// The fill between one level and the next.
const STEP: f64 = (1.0 - SHED_FROM) / MAX_LEVEL as f64;

/// The bits of randomness a trace has (W3C trace context level 2).
const RANDOM_BITS: u32 = 56;

/// The shedding level at a span queue fill of `fill` (0 empty, 1 full): at
/// level k, one trace in 2^k is kept.
pub fn level(fill: f64) -> u32 {
    if fill.is_nan() || fill < SHED_FROM {
        return 0;
    }
    let above = ((fill - SHED_FROM) / STEP) as u32;
    (1 + above).min(MAX_LEVEL)
}

/// The rejection threshold of level `k`: a trace is kept when its
/// randomness is at least this (a share 2^-k of all values).
pub fn threshold(level: u32) -> u64 {
    let k = level.min(RANDOM_BITS);
    (1u64 << RANDOM_BITS) - (1u64 << (RANDOM_BITS - k))
}

/// The `ot` entry of a W3C `tracestate` value, if any.
fn ot_entry(state: Option<&str>) -> Option<&str> {
    state?
        .split(',')
        .map(str::trim)
        .find_map(|e| e.strip_prefix("ot="))
}

/// The value of sub-key `key` (`th`, `rv`) of an `ot` entry.
fn ot_field<'a>(ot: &'a str, key: &str) -> Option<&'a str> {
    ot.split(';')
        .find_map(|f| f.strip_prefix(key)?.strip_prefix(':'))
}

/// A threshold as written in `th`: up to 14 hex digits, trailing zeros left out.
fn parse_threshold(th: &str) -> Option<u64> {
    if th.is_empty() || th.len() > 14 || !th.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u64::from_str_radix(th, 16).ok()?;
    Some(v << (4 * (14 - th.len())))
}

/// `th`'s spelling of threshold `t`.
fn format_threshold(t: u64) -> String {
    if t == 0 {
        return "0".into();
    }
    let s = format!("{t:014x}");
    s.trim_end_matches('0').to_string()
}

/// The trace's randomness: its explicit `rv` (14 hex digits) in `ot`, or
/// the last 56 bits of its trace id.
pub fn randomness(trace_id: &[u8; 16], state: Option<&str>) -> u64 {
    let explicit = ot_entry(state)
        .and_then(|ot| ot_field(ot, "rv"))
        .filter(|rv| rv.len() == 14)
        .and_then(|rv| u64::from_str_radix(rv, 16).ok());
    explicit.unwrap_or_else(|| {
        let mut low = [0u8; 8];
        low[1..].copy_from_slice(&trace_id[9..]);
        u64::from_be_bytes(low)
    })
}

/// Whether a trace with `randomness` is kept at `level`.
pub fn keeps(randomness: u64, level: u32) -> bool {
    randomness >= threshold(level)
}

/// Whether the span placed by `ids` is shed at `level` (never at 0).
pub fn sheds(ids: &SpanIds, level: u32) -> bool {
    level > 0 && !keeps(randomness(&ids.trace_id, ids.state.as_deref()), level)
}

/// The trace state of a span kept at `level` (> 0): the received one with
/// `ot`'s `th` raised to the level's threshold (an upstream sampler's higher
/// threshold stays), `ot` first as W3C wants a changed entry.
pub fn with_threshold(state: Option<&str>, level: u32) -> String {
    let ours = threshold(level);
    let ot = ot_entry(state).unwrap_or("");
    let th = ot_field(ot, "th")
        .and_then(parse_threshold)
        .map_or(ours, |t| t.max(ours));
    let mut value = format!("th:{}", format_threshold(th));
    for f in ot
        .split(';')
        .filter(|f| !f.is_empty() && !f.starts_with("th:"))
    {
        value.push(';');
        value.push_str(f);
    }
    let mut out = format!("ot={value}");
    for e in state
        .into_iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.starts_with("ot="))
    {
        out.push(',');
        out.push_str(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_the_spec_spellings() {
        assert_eq!(threshold(0), 0);
        assert_eq!(format_threshold(threshold(1)), "8");
        assert_eq!(format_threshold(threshold(2)), "c");
        assert_eq!(format_threshold(threshold(4)), "f");
        assert_eq!(format_threshold(threshold(5)), "f8");
        assert_eq!(format_threshold(threshold(10)), "ffc");
        for k in 0..=MAX_LEVEL {
            assert_eq!(
                parse_threshold(&format_threshold(threshold(k))),
                Some(threshold(k))
            );
        }
        assert_eq!(parse_threshold(""), None);
        assert_eq!(parse_threshold("fffffffffffffff"), None);
        assert_eq!(parse_threshold("xz"), None);
    }

    #[test]
    fn a_level_keeps_its_share_of_random_traces() {
        // The 56-bit randomness spread evenly: level k keeps 1/2^k of it.
        let n = 1u64 << 12;
        for k in 0..=MAX_LEVEL {
            let kept = (0..n).filter(|i| keeps(i << (56 - 12), k)).count() as u64;
            assert_eq!(kept, n >> k, "level {k}");
        }
    }

    #[test]
    fn randomness_is_the_explicit_rv_or_the_trace_ids_last_56_bits() {
        let mut id = [0u8; 16];
        id[8] = 0xff; // not part of the randomness
        id[9] = 0x80;
        id[15] = 0x01;
        assert_eq!(randomness(&id, None), 0x80_0000_0000_0001);
        assert_eq!(
            randomness(&id, Some("vendor=x, ot=th:8;rv:00000000000abc")),
            0xabc
        );
        // A malformed rv is not used.
        assert_eq!(randomness(&id, Some("ot=rv:12")), 0x80_0000_0000_0001);
    }

    #[test]
    fn the_threshold_goes_into_ot_first_keeping_the_rest() {
        assert_eq!(with_threshold(None, 1), "ot=th:8");
        assert_eq!(with_threshold(Some("a=1,b=2"), 2), "ot=th:c,a=1,b=2");
        assert_eq!(
            with_threshold(Some("a=1, ot=th:4;rv:00000000000abc"), 1),
            "ot=th:8;rv:00000000000abc,a=1"
        );
        // An upstream sampler's higher threshold stays.
        assert_eq!(with_threshold(Some("ot=th:f"), 1), "ot=th:f");
    }

    #[test]
    fn the_level_follows_the_queue_fill() {
        assert_eq!(level(0.0), 0);
        assert_eq!(level(0.49), 0);
        assert_eq!(level(f64::NAN), 0);
        assert_eq!(level(0.5), 1);
        assert_eq!(level(0.56), 2);
        assert_eq!(level(0.74), 5);
        assert_eq!(level(0.949), 9);
        assert_eq!(level(0.96), MAX_LEVEL);
        assert_eq!(level(1.0), MAX_LEVEL);
        let mut last = 0;
        for i in 0..=1000 {
            let l = level(f64::from(i) / 1000.0);
            assert!(l >= last && l - last <= 1, "monotonic, one step at a time");
            last = l;
        }
    }
}
