//! Entry points for the fuzz targets: arbitrary bytes read as a script of pushes and gaps on both sides of one connection, driven through the HTTP/1 and HTTP/2 parsers, which must never panic.
//!
//! # Script
//!
//! Byte 0 sets `max_body_capture` (its value), byte 1 the HTTP/1
//! `max_header_bytes` (low two bits: 64, 256, 4096 or 65536). Then each
//! operation starts with a control byte `c`:
//!
//! - bit 0: the side (0 request, 1 response);
//! - bits 1–2: the operation: 0 a push that starts a new capture event (the
//!   timestamp advances), 1 a push in the same event (same timestamp), 2 a
//!   gap, 3 a drain after a pause (the timestamp jumps) — or, with bit 3
//!   set, a skip on purpose (see below);
//! - for a push, bits 3–7 are the length; 31 means a 16-bit big-endian
//!   length follows. The bytes follow (fewer if the script ends);
//! - for a gap, bits 3–4 pick the cause (`LostEvents`, `KernelCap`,
//!   `JoinedMidStream`, `NotVisible`), bits 5–7 a shift `s`, and
//!   the next byte `b` gives the length `b << (4 * s)` (0 is a valid length);
//!   `s = 7` with `b = 0` is instead a tail of unknown length lost at the
//!   end of the side (`tail_lost`).
//! - for a skip, bits 5–7 and the next byte give the length as for a gap;
//!   with bit 4 clear it is cut to what the parser said is skippable (as the
//!   kernel does), with bit 4 set it is taken as is (a stale mark).
//!
//! The connection is closed at the end of the script.

use crate::http1::{self, Http1Stream};
use crate::http2::{self, Http2Stream};
use crate::stream::{ExchangeParser, GapCause, Side};

/// One operation of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op<'a> {
    Push(Side, u64, &'a [u8]),
    Gap(Side, u64, u64, GapCause),
    TailLost(Side, u64, GapCause),
    /// Skipped bytes: the length, and whether it is cut to `skippable`.
    Skip(Side, u64, u64, bool),
    Drain,
}

/// `max_body_capture` and HTTP/1 `max_header_bytes` of a script.
fn limits(data: &[u8]) -> (usize, usize) {
    let capture = data.first().map_or(0, |b| usize::from(*b));
    let header = match data.get(1).map_or(0, |b| b & 3) {
        0 => 64,
        1 => 256,
        2 => 4096,
        _ => 65536,
    };
    (capture, header)
}

/// The operations of a script, in order.
fn operations(data: &[u8]) -> impl Iterator<Item = Op<'_>> {
    let mut rest = data.get(2..).unwrap_or_default();
    let mut ts = 1u64;
    std::iter::from_fn(move || {
        let (&c, tail) = rest.split_first()?;
        rest = tail;
        let side = if c & 1 == 0 {
            Side::Request
        } else {
            Side::Response
        };
        match (c >> 1) & 3 {
            2 => {
                let (&b, tail) = rest.split_first().unwrap_or((&0, &[]));
                rest = tail;
                let shift = u32::from((c >> 5) & 7) * 4;
                let cause = match (c >> 3) & 3 {
                    1 => GapCause::KernelCap,
                    2 => GapCause::JoinedMidStream,
                    3 => GapCause::NotVisible,
                    _ => GapCause::LostEvents,
                };
                if shift == 28 && b == 0 {
                    return Some(Op::TailLost(side, ts, cause));
                }
                Some(Op::Gap(side, ts, u64::from(b) << shift, cause))
            }
            3 if c & 8 != 0 => {
                let (&b, tail) = rest.split_first().unwrap_or((&0, &[]));
                rest = tail;
                let shift = u32::from((c >> 5) & 7) * 4;
                ts = ts.saturating_add(1);
                Some(Op::Skip(side, ts, u64::from(b) << shift, c & 16 == 0))
            }
            3 => {
                ts = ts.saturating_add(1000);
                Some(Op::Drain)
            }
            kind => {
                if kind == 0 {
                    ts = ts.saturating_add(1);
                }
                let mut len = usize::from(c >> 3);
                if len == 31 {
                    let hi = rest.first().copied().unwrap_or(0);
                    let lo = rest.get(1).copied().unwrap_or(0);
                    rest = rest.get(2..).unwrap_or_default();
                    len = usize::from(u16::from_be_bytes([hi, lo]));
                }
                let (bytes, tail) = rest.split_at(len.min(rest.len()));
                rest = tail;
                Some(Op::Push(side, ts, bytes))
            }
        }
    })
}

/// Drives a parser through a script, collecting every exchange.
fn drive<P: ExchangeParser>(parser: &mut P, data: &[u8]) -> Vec<P::Exchange> {
    let mut out = Vec::new();
    let mut last = 0;
    for op in operations(data) {
        match op {
            Op::Push(side, ts, bytes) => {
                parser.push(side, ts, bytes);
                last = ts;
            }
            Op::Gap(side, ts, len, cause) => parser.gap(side, ts, len, cause),
            Op::TailLost(side, ts, cause) => parser.tail_lost(side, ts, cause),
            Op::Skip(side, ts, len, honest) => {
                let len = if honest {
                    len.min(parser.skippable(side))
                } else {
                    len
                };
                parser.skip(side, ts, len);
                last = ts;
            }
            Op::Drain => out.extend(parser.drain()),
        }
    }
    out.extend(parser.close(last.saturating_add(1)));
    out
}

fn run_http1(data: &[u8]) -> Vec<http1::Exchange> {
    let (capture, header) = limits(data);
    let mut s = Http1Stream::new(http1::Limits {
        max_header_bytes: header,
        max_body_capture: capture,
        // Some scripts parse as level summary does: a few headers kept.
        keep_headers: (data.first().is_some_and(|b| b & 0x80 != 0))
            .then_some(crate::names::StaticNames::new(&["host"])),
    });
    drive(&mut s, data)
}

fn run_http2(data: &[u8]) -> Vec<http2::Exchange> {
    let (capture, _) = limits(data);
    let mut s = Http2Stream::new(http2::Limits {
        max_body_capture: capture,
        // Some scripts parse as level summary does: a few headers kept.
        keep_headers: (data.first().is_some_and(|b| b & 0x40 != 0))
            .then_some(crate::names::StaticNames::new(&["user-agent"])),
    });
    drive(&mut s, data)
}

/// Fuzz target: the HTTP/1 stream parser driven by a script of pushes and
/// gaps (see the module documentation). Must never panic.
pub fn http1_with_gaps(data: &[u8]) {
    let _ = run_http1(data);
}

/// Fuzz target: the HTTP/2 stream parser (frames, HPACK) driven by a script
/// of pushes and gaps (see the module documentation). Must never panic.
pub fn http2_with_gaps(data: &[u8]) {
    let _ = run_http2(data);
}

#[cfg(test)]
#[path = "fuzzing_tests.rs"]
mod tests;
