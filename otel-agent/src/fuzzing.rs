//! Entry points for the fuzz targets (`otel-agent/fuzz`): each takes arbitrary
//! bytes and drives one parser of captured data the way the agent does. They
//! must never panic; `cargo fuzz` runs them under libFuzzer, and the unit
//! tests below replay fixtures and pseudo-random inputs through them on stable.

use std::sync::Arc;

use otel_agent_config::Settings;

use crate::internal_events::CaptureStats;
use crate::track::clock::Clock;
use crate::track::tracker::Tracker;
use protocols::http1::{Http1Stream, Limits, Side};
use protocols::tls_handshake::TlsHandshakeParser;

/// Split `data` into (side, chunk, gap) operations driven by its own bytes.
fn operations(data: &[u8]) -> impl Iterator<Item = (Side, &[u8], u64)> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (&ctl, tail) = rest.split_first()?;
        let len = usize::from(ctl & 0x3f).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        let side = if ctl & 0x40 == 0 {
            Side::Request
        } else {
            Side::Response
        };
        let gap = if ctl & 0x80 != 0 {
            u64::from(ctl & 0x07)
        } else {
            0
        };
        Some((side, chunk, gap))
    })
}

/// HTTP/1 stream parser: arbitrary chunks on both sides, with gaps.
pub fn http1(data: &[u8]) {
    let capture = data.first().map_or(0, |b| usize::from(*b));
    let mut s = Http1Stream::new(Limits {
        max_header_bytes: 4096,
        max_body_capture: capture,
        keep_headers: (capture & 1 == 1).then_some(crate::track::assemble::SUMMARY_HEADERS),
    });
    for (i, (side, chunk, gap)) in operations(data).enumerate() {
        s.push(side, i as u64, chunk);
        if gap > 0 {
            s.gap(side, i as u64, gap, protocols::GapCause::LostEvents);
        }
        let _ = s.drain();
    }
    let _ = s.close(u64::MAX);
}

/// HTTP/2 stream parser (frames + HPACK): arbitrary chunks on both sides, with gaps.
pub fn http2(data: &[u8]) {
    let capture = data.first().map_or(0, |b| usize::from(*b));
    let mut s = protocols::http2::Http2Stream::new(protocols::http2::Limits {
        max_body_capture: capture,
        keep_headers: (data.get(1).is_some_and(|b| b & 1 == 1))
            .then_some(crate::track::assemble::SUMMARY_HEADERS),
    });
    for (i, (side, chunk, gap)) in operations(data).enumerate() {
        s.push(side, i as u64, chunk);
        if gap > 0 {
            s.gap(side, i as u64, gap, protocols::GapCause::LostEvents);
        }
        let _ = s.drain();
    }
    let _ = s.close(u64::MAX);
}

/// TLS handshake parser: arbitrary chunks of one direction.
pub fn tls_handshake(data: &[u8]) {
    let mut p = TlsHandshakeParser::new();
    for (_, chunk, _) in operations(data) {
        let _ = p.push(chunk);
    }
}

/// Probe-site analysis of machine code read from ELF files: the first byte is
/// the arity (its high bit: the Go ABI), the rest the function's code.
pub fn uprobe_sites(data: &[u8]) {
    use crate::capture::tls::uprobe_sites::{self, Abi};
    if let Some((&arity, code)) = data.split_first() {
        let abi = if arity & 0x80 != 0 {
            Abi::Go
        } else {
            Abi::SysV
        };
        let sites = uprobe_sites::find(code, 0x40_0000, abi, usize::from(arity & 0x7f));
        let end = 0x40_0000 + code.len() as u64;
        assert!(sites.entry.is_none_or(|e| (0x40_0000..end).contains(&e)));
        assert!(sites.ret.is_none_or(|r| (0x40_0000..end).contains(&r)));
        let rets = uprobe_sites::ret_sites(code, 0x40_0000);
        assert!(rets.iter().all(|r| (0x40_0000..end).contains(r)));
    }
}

/// Go executables' tables: the first byte picks `.go.buildinfo` or
/// `.gopclntab`, the rest is the section.
pub fn go_binary(data: &[u8]) {
    use crate::capture::tls::go_binary;
    if let Some((&which, rest)) = data.split_first() {
        if which & 1 == 0 {
            let _ = go_binary::build_info(rest, |addr, len| {
                let at = usize::try_from(addr).ok()?;
                rest.get(at..at.checked_add(len)?)
            });
        } else if let Some(found) =
            go_binary::find_functions(rest, 0x40_1000, &["crypto/tls.(*Conn).Read", "main.main"])
        {
            assert_eq!(found.len(), 2);
            assert!(found.iter().flatten().all(|f| f.end > f.entry));
        }
    }
}

/// Ring-buffer record decoding and the whole tracker: `data` is cut into
/// records (2-byte little-endian length prefix each) and handled in order.
pub fn events(data: &[u8]) {
    let settings = Arc::new(Settings::default());
    let mut tracker = Tracker::new(
        settings,
        Clock::with_offset(0),
        Arc::new(CaptureStats::default()),
    );
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (record, tail) = rest[2..].split_at(n);
        tracker.handle_record(record, &mut out);
        out.clear();
        rest = tail;
    }
    tracker.shutdown(&mut out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift bytes.
    fn random_inputs(seed: u64, count: usize, max_len: usize) -> Vec<Vec<u8>> {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..count)
            .map(|_| {
                let len = (next() as usize) % max_len;
                (0..len).map(|_| next() as u8).collect()
            })
            .collect()
    }

    const FIXTURES: &[&[u8]] = &[
        include_bytes!("../../protocols/testdata/http1/curl_get_keepalive.req"),
        include_bytes!("../../protocols/testdata/http1/chunked_trailer.resp"),
        include_bytes!("../../protocols/testdata/http1/curl_expect_100.req"),
        include_bytes!("../../protocols/testdata/tls/curl_tls13.client"),
        include_bytes!("../../protocols/testdata/tls/curl_tls12.server"),
        include_bytes!("../../protocols/testdata/http2/h2c_concurrent.req"),
        include_bytes!("../../protocols/testdata/http2/h2c_grpc.resp"),
    ];

    #[test]
    fn fuzz_entry_points_survive_fixtures_and_random_bytes() {
        let mut inputs: Vec<Vec<u8>> = FIXTURES.iter().map(|f| f.to_vec()).collect();
        inputs.extend(random_inputs(0x9e37_79b9_7f4a_7c15, 1500, 2048));
        for input in &inputs {
            http1(input);
            http2(input);
            tls_handshake(input);
            events(input);
            uprobe_sites(input);
            go_binary(input);
        }
    }

    #[test]
    fn events_accepts_well_formed_records() {
        // An open event then a data event for the same connection, as the kernel writes them.
        let mut open = vec![0u8; 104];
        open[0..8].copy_from_slice(&7u64.to_ne_bytes());
        open[16..20].copy_from_slice(&1u32.to_ne_bytes()); // kind ConnOpen
        open[78] = 1; // role client
        open[79] = 1; // l7 http1
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut data = vec![0u8; 56];
        data[0..8].copy_from_slice(&7u64.to_ne_bytes());
        data[16..20].copy_from_slice(&2u32.to_ne_bytes()); // kind Data
        data[40..44].copy_from_slice(&(req.len() as u32).to_ne_bytes());
        data[44..48].copy_from_slice(&(req.len() as u32).to_ne_bytes());
        data.extend_from_slice(req);
        let mut input = Vec::new();
        for r in [&open, &data] {
            input.extend_from_slice(&(r.len() as u16).to_le_bytes());
            input.extend_from_slice(r);
        }
        events(&input);
    }
}
