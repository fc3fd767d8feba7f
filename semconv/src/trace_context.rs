//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): the
//! `traceparent` and `tracestate` fields of a captured request, and where the
//! exchange's span sits in the caller's trace.
//!
//! The `parent-id` of a `traceparent` is, by the specification, "the ID of
//! this request as known by the caller". So the span of the captured *client*
//! request is that request: it takes the header's trace id and uses the
//! parent-id as its own span id (its parent is unknown to the agent), and the
//! server span of the same request is its child.

/// A valid `traceparent` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// Trace id (never all zero).
    pub trace_id: [u8; 16],
    /// The caller's id of this request, `parent-id` (never all zero).
    pub span_id: [u8; 8],
    /// The `sampled` trace flag (bit 0 of the flags).
    pub sampled: bool,
}

/// The trace context a request carried: a valid `traceparent` and, with it,
/// the `tracestate` (ignored without a valid `traceparent`, as the
/// specification asks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The parsed `traceparent`.
    pub parent: TraceParent,
    /// The `tracestate` list as received (several fields joined by `,`,
    /// empty members dropped); `None` when absent or empty. Its members are
    /// checked by the exporter's trace-state type, which drops an invalid list.
    pub state: Option<String>,
}

/// Where a span sits in the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TracePlace {
    /// No valid `traceparent`: the span starts a new trace.
    Root,
    /// A child of the request the header names (a server span, or a client
    /// span whose id the agent cannot take).
    ChildOf(TraceContext),
    /// The span *is* the request the header names: span id = parent-id, parent
    /// unknown (a client span).
    Is(TraceContext),
}

impl TracePlace {
    /// The trace context, if any.
    pub fn context(&self) -> Option<&TraceContext> {
        match self {
            TracePlace::Root => None,
            TracePlace::ChildOf(c) | TracePlace::Is(c) => Some(c),
        }
    }

    /// False when the caller's trace context says the trace is not sampled:
    /// such a span is not exported (and counted).
    pub fn sampled(&self) -> bool {
        self.context().is_none_or(|c| c.parent.sampled)
    }
}

/// How a span got its place in a trace: the value of the span attribute
/// `tap.trace.link` and of the `tap.trace.link` label of `tap.trace.links`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// From the captured request's own `traceparent` (always wins).
    Traceparent,
    /// The server span of a connection seen from both ends: child of the
    /// client span of the same exchange (same connection, same position).
    Connection,
    /// A client span sent by the thread serving a request: child of that
    /// server span.
    Thread,
    /// No evidence of a parent, or the parent it named never came (its
    /// connection ended without it: left out by the capture rules, or its
    /// bytes not parsed): the span starts a trace.
    Root,
    /// Evidence of more than one possible parent (several requests in
    /// flight on the thread, several connections with the same addresses):
    /// left a root.
    RootAmbiguous,
    /// The parent did not come within `telemetry.trace_links.wait`: sent as a
    /// root when the bound was hit.
    RootTimeout,
    /// The linker held `telemetry.trace_links.max_held` spans already: sent as
    /// a root at once.
    RootFull,
}

impl LinkKind {
    /// Every kind, in the order of [`LinkKind::name`]'s table.
    pub const ALL: [LinkKind; 7] = [
        LinkKind::Traceparent,
        LinkKind::Connection,
        LinkKind::Thread,
        LinkKind::Root,
        LinkKind::RootAmbiguous,
        LinkKind::RootTimeout,
        LinkKind::RootFull,
    ];

    /// The wire name: `traceparent`, `connection`, `thread`, `root`,
    /// `root_ambiguous`, `root_timeout`, `root_full`.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Traceparent => "traceparent",
            LinkKind::Connection => "connection",
            LinkKind::Thread => "thread",
            LinkKind::Root => "root",
            LinkKind::RootAmbiguous => "root_ambiguous",
            LinkKind::RootTimeout => "root_timeout",
            LinkKind::RootFull => "root_full",
        }
    }
}

/// The ids of an exchange's span, given once, upstream of every sink (the
/// linker), so that stdout JSON and OTLP show the same trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanIds {
    /// Trace id (never all zero).
    pub trace_id: [u8; 16],
    /// The span's own id (never all zero).
    pub span_id: [u8; 8],
    /// The parent span's id; `None` for a root (or a span whose parent is the
    /// caller's own, unknown to the agent).
    pub parent_span_id: Option<[u8; 8]>,
    /// The parent came from a `traceparent` (a span of another program).
    pub parent_is_remote: bool,
    /// The caller's trace context did not say "not sampled".
    pub sampled: bool,
    /// The `tracestate` of the trace, as received.
    pub state: Option<String>,
    /// How the span got its place.
    pub link: LinkKind,
}

/// The trace context of a request from its `traceparent` and `tracestate`
/// field values (each the combined value of all fields of that name, joined
/// by `,`): `None` without a valid `traceparent`.
pub fn trace_context(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<TraceContext> {
    let parent = parse_traceparent(traceparent?)?;
    Some(TraceContext {
        parent,
        state: tracestate.and_then(normalize_tracestate),
    })
}

/// The `tracestate` list with empty members (and the spaces around members)
/// dropped; `None` when nothing is left.
fn normalize_tracestate(value: &str) -> Option<String> {
    let members: Vec<&str> = value
        .split(',')
        .map(|m| m.trim_matches([' ', '\t']))
        .filter(|m| !m.is_empty())
        .collect();
    (!members.is_empty()).then(|| members.join(","))
}

/// Parses a W3C `traceparent` header value.
///
/// Accepts `VV-<32 hex>-<16 hex>-<2 hex>` with lowercase hex, surrounded by
/// optional spaces or tabs. Version `ff`, all-zero trace or span ids, uppercase
/// hex and wrong lengths are rejected. Version `00` must be exactly 55
/// characters; a higher version may carry more fields after a `-` (only the
/// first four are read, as the specification asks). Two `traceparent` fields
/// (combined with `,`) are rejected too.
pub fn parse_traceparent(header: &str) -> Option<TraceParent> {
    let h = header.trim_matches([' ', '\t']).as_bytes();
    let version = hex_bytes::<1>(h.get(0..2)?)?[0];
    if version == 0xff {
        return None;
    }
    match h.len() {
        55 => {}
        n if n > 55 && version != 0 && h.get(55) == Some(&b'-') => {}
        _ => return None,
    }
    if h.get(2) != Some(&b'-') || h.get(35) != Some(&b'-') || h.get(52) != Some(&b'-') {
        return None;
    }
    let trace_id = hex_bytes::<16>(h.get(3..35)?)?;
    let span_id = hex_bytes::<8>(h.get(36..52)?)?;
    let flags = hex_bytes::<1>(h.get(53..55)?)?[0];
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(TraceParent {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

/// Decodes exactly `2 * N` lowercase hex digits.
fn hex_bytes<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (hex_digit(*hi)?, hex_digit(*lo)?),
            _ => return None,
        };
        *o = (hi << 4) | lo;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_gives_trace_id_parent_id_and_sampled() {
        let tp = parse_traceparent(VALID).expect("valid");
        assert_eq!(
            tp.trace_id,
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        assert_eq!(tp.span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert!(tp.sampled);
    }

    #[test]
    fn flags_bit_0_is_sampled_and_other_bits_are_ignored() {
        for (flags, sampled) in [("00", false), ("01", true), ("02", false), ("03", true)] {
            let h = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
            assert_eq!(
                parse_traceparent(&h).map(|t| t.sampled),
                Some(sampled),
                "{h}"
            );
        }
    }

    #[test]
    fn surrounding_spaces_and_tabs_are_trimmed() {
        let tp = parse_traceparent(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00\t")
            .expect("OWS trimmed");
        assert!(!tp.sampled);
    }

    #[test]
    fn a_future_version_may_append_fields() {
        assert!(parse_traceparent(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future"
        )
        .is_some());
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09")
                .is_some_and(|t| t.sampled)
        );
    }

    #[test]
    fn version_ff_is_invalid() {
        assert_eq!(
            parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            None
        );
    }

    #[test]
    fn all_zero_ids_are_invalid() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn uppercase_hex_is_invalid() {
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn wrong_lengths_and_separators_are_invalid() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            // Version 00 has exactly four fields.
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn two_traceparent_fields_are_invalid() {
        // Combined as HTTP combines repeated fields.
        let two = format!("{VALID},{VALID}");
        assert_eq!(parse_traceparent(&two), None);
        let two_future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01,cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(parse_traceparent(two_future), None);
    }

    #[test]
    fn garbage_never_panics() {
        let mut inputs: Vec<String> = vec![
            "é".repeat(30),
            "€".repeat(19),
            "00-😀😀😀😀😀😀😀😀-00f067aa0ba902b7-01".into(),
            "\u{0}".repeat(55),
            "-".repeat(100),
        ];
        // Every single-character substitution with a multi-byte character.
        for idx in 0..VALID.len() {
            let mut v: Vec<char> = VALID.chars().collect();
            if let Some(c) = v.get_mut(idx) {
                *c = 'ß';
            }
            inputs.push(v.into_iter().collect());
            inputs.push(VALID.chars().take(idx).collect());
        }
        for input in &inputs {
            assert_eq!(parse_traceparent(input), None, "{input:?}");
        }
    }

    #[test]
    fn tracestate_comes_with_a_valid_traceparent_only() {
        let ctx = trace_context(Some(VALID), Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"))
            .expect("valid");
        assert_eq!(
            ctx.state.as_deref(),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        assert_eq!(trace_context(None, Some("rojo=1")), None);
        assert_eq!(
            trace_context(
                Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
                Some("rojo=1")
            ),
            None
        );
    }

    #[test]
    fn tracestate_fields_are_joined_and_empty_members_dropped() {
        let ctx = trace_context(Some(VALID), Some(" rojo=1 ,, \t,congo=2 ")).expect("valid");
        assert_eq!(ctx.state.as_deref(), Some("rojo=1,congo=2"));
        let ctx = trace_context(Some(VALID), Some(" , ")).expect("valid");
        assert_eq!(ctx.state, None);
        let ctx = trace_context(Some(VALID), None).expect("valid");
        assert_eq!(ctx.state, None);
    }

    #[test]
    fn a_place_is_sampled_unless_the_caller_said_not() {
        assert!(TracePlace::Root.sampled());
        let sampled = trace_context(Some(VALID), None).expect("valid");
        assert!(TracePlace::Is(sampled.clone()).sampled());
        assert!(TracePlace::ChildOf(sampled).sampled());
        let not = trace_context(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            None,
        )
        .expect("valid");
        assert!(!TracePlace::ChildOf(not.clone()).sampled());
        assert!(!TracePlace::Is(not).sampled());
    }
}
