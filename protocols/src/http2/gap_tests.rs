//! Unit tests of the HTTP/2 stream around gaps: in a frame header, in a DATA payload, in a header block, and the resync that trusts a frame header only when the next one validates too.

use super::frame::{DATA, PING};
use super::testutil::*;
use super::{GapCause, Http2Stream, Limits};
use GapCause::{KernelCap, LostEvents};
use Side::{Request as Req, Response as Resp};

use super::Side;

fn get(h2: &mut Http2Stream, ts: u64, id: u32, path: &str) {
    h2.push(
        Req,
        ts,
        &headers(id, true, &Enc::default().request("GET", path).done()),
    );
}

fn by_id(out: &[super::Exchange], id: u32) -> &super::Exchange {
    out.iter().find(|e| e.stream_id == id).expect("stream")
}

#[test]
fn gap_in_a_frame_header_flags_open_streams_and_resyncs() {
    let mut h2 = Http2Stream::new(Limits {
        max_body_capture: 100,
        ..Limits::default()
    });
    open(&mut h2);
    get(&mut h2, 10, 1, "/a");
    get(&mut h2, 11, 3, "/b");
    let status = Enc::default().status(200).done();
    h2.push(Resp, 12, &headers(1, false, &status));
    h2.push(Resp, 12, &headers(3, false, &status));
    // The header of stream 1's last DATA frame is cut after 4 bytes; the
    // rest of it and a DATA frame of stream 3 are lost.
    let d1 = data(1, true, b"hello");
    let d3 = data(3, false, b"lost");
    h2.push(Resp, 13, &d1[..4]);
    h2.gap(Resp, 14, (d1.len() - 4 + d3.len()) as u64, LostEvents);
    get(&mut h2, 15, 5, "/c");
    let mut after = data(3, true, b"end");
    after.extend(headers(5, true, &status));
    h2.push(Resp, 16, &after);
    let out = h2.close(17);
    assert!(h2.parse_errors() >= 1);
    let (e1, e3, e5) = (by_id(&out, 1), by_id(&out, 3), by_id(&out, 5));
    assert!(e1.gap && e1.partial && e1.gaps.contains(LostEvents));
    assert!(e3.gap && e3.gaps.contains(LostEvents), "open at the gap");
    assert_eq!(resp(e3).body.as_deref(), Some(&b"end"[..]));
    assert!(!e5.gap && !e5.partial && e5.gaps.is_empty());
    assert_eq!((req(e5).path(), resp(e5).status()), (Some("/c"), Some(200)));
}

#[test]
fn gap_in_a_data_payload_flags_only_its_stream() {
    let mut h2 = Http2Stream::new(Limits {
        max_body_capture: 100,
        ..Limits::default()
    });
    open(&mut h2);
    get(&mut h2, 10, 1, "/a");
    get(&mut h2, 10, 3, "/b");
    let status = Enc::default().status(200).done();
    h2.push(Resp, 11, &headers(1, false, &status));
    h2.push(Resp, 11, &headers(3, false, &status));
    let body: Vec<u8> = (0..60u8).collect();
    let d1 = data(1, true, &body);
    h2.push(Resp, 12, &d1[..29]);
    h2.gap(Resp, 12, 20, KernelCap);
    h2.push(Resp, 13, &d1[49..]);
    h2.push(Resp, 13, &data(3, true, b"fine"));
    let out = h2.drain();
    assert_eq!(h2.parse_errors(), 0);
    let (e1, e3) = (by_id(&out, 1), by_id(&out, 3));
    let p = resp(e1);
    assert_eq!(
        (p.body_size, p.body_truncated, p.complete),
        (60, true, true)
    );
    assert_eq!(p.body.as_deref(), Some(&body[..20]));
    assert!(!p.body_capped, "lost in a gap, not cut by the limit");
    assert!(e1.gap && !e1.partial);
    assert_eq!(e1.gaps.names().collect::<Vec<_>>(), ["cut_by_kernel_cap"]);
    assert!(!e3.gap && !e3.partial);
    assert_eq!(resp(e3).body.as_deref(), Some(&b"fine"[..]));
}

#[test]
fn gap_in_an_hpack_block_degrades_later_headers_never_guesses() {
    let mut h2 = Http2Stream::new(Limits::default());
    open(&mut h2);
    // Request 1 indexes x-token: one (dynamic index 62).
    let b1 = Enc::default()
        .request("GET", "/1")
        .add("x-token", "one")
        .done();
    h2.push(Req, 10, &headers(1, true, &b1));
    // Request 3 indexes x-token: two; part of its block is lost.
    let b3 = Enc::default()
        .request("GET", "/3")
        .add("x-token", "two")
        .done();
    let f3 = headers(3, true, &b3);
    h2.push(Req, 11, &f3[..12]);
    h2.gap(Req, 11, (f3.len() - 12) as u64, KernelCap);
    // Request 5 references index 62: "two" for the encoder, unknown here.
    let b5 = Enc::default().request("GET", "/5").idx(62).done();
    h2.push(Req, 12, &headers(5, true, &b5));
    // Request 7 uses only static entries and literals: exact.
    get(&mut h2, 13, 7, "/7");
    for id in [1, 3, 5, 7] {
        h2.push(
            Resp,
            14,
            &headers(id, true, &Enc::default().status(200).done()),
        );
    }
    let out = h2.close(15);
    let e1 = by_id(&out, 1);
    assert_eq!(req(e1).header("x-token"), Some("one"));
    assert!(!e1.gap);
    let e3 = by_id(&out, 3);
    assert!(req(e3).headers_degraded && e3.gap && e3.gaps.contains(KernelCap));
    let e5 = by_id(&out, 5);
    assert_eq!(req(e5).header("x-token"), None, "never guessed as \"one\"");
    assert_eq!(req(e5).path(), Some("/5"));
    assert!(req(e5).headers_degraded);
    assert!(e5.gap && e5.gaps.contains(KernelCap), "degraded by the gap");
    let e7 = by_id(&out, 7);
    assert!(!req(e7).headers_degraded && !e7.gap && !e7.partial);
}

#[test]
fn resync_trusts_a_frame_header_only_when_the_next_one_validates() {
    let mut h2 = Http2Stream::new(Limits {
        max_body_capture: 100,
        ..Limits::default()
    });
    open(&mut h2);
    get(&mut h2, 10, 1, "/a");
    h2.push(
        Resp,
        11,
        &headers(1, false, &Enc::default().status(200).done()),
    );
    h2.push(Resp, 12, &[0, 0]);
    h2.gap(Resp, 12, 50, LostEvents);
    // A plausible DATA header for stream 1 with a payload, followed by bytes
    // that are no frame header: not a boundary.
    let mut bytes = frame(DATA, 0, 1, b"FAKE!");
    bytes.extend_from_slice(&[0xff; 12]);
    // Then real frames: a PING, the end of stream 1, and more traffic (a
    // candidate header is only judged once the header after it is buffered).
    bytes.extend(frame(PING, 0, 0, &[0; 8]));
    bytes.extend(data(1, true, b"real"));
    for i in 0..200u8 {
        bytes.extend(frame(PING, 0, 0, &[i; 8]));
    }
    h2.push(Resp, 13, &bytes);
    let out = h2.close(14);
    let e1 = by_id(&out, 1);
    assert_eq!(resp(e1).body.as_deref(), Some(&b"real"[..]));
    assert!(e1.gap && e1.gaps.contains(LostEvents));
}

#[test]
fn stream_whose_request_was_lost_in_a_gap_is_flagged() {
    let mut h2 = Http2Stream::new(Limits::default());
    open(&mut h2);
    get(&mut h2, 10, 1, "/a");
    // Stream 3's request is lost with the frame boundaries.
    let lost = headers(3, true, &Enc::default().request("GET", "/b").done());
    h2.push(Req, 11, &lost[..3]);
    h2.gap(Req, 12, (lost.len() - 3) as u64, LostEvents);
    let mut next = headers(5, true, &Enc::default().request("GET", "/c").done());
    next.extend(frame(PING, 0, 0, &[0; 8]));
    h2.push(Req, 13, &next);
    for id in [1, 3, 5] {
        h2.push(
            Resp,
            14,
            &headers(id, true, &Enc::default().status(200).done()),
        );
    }
    let out = h2.close(15);
    let e3 = by_id(&out, 3);
    assert!(e3.request.is_none() && e3.partial && e3.gaps.contains(LostEvents));
    let e5 = by_id(&out, 5);
    assert!(!e5.gap && !e5.partial);
    // Stream 1 was open when the request side lost frames (a RST_STREAM for
    // it may have been among them): flagged, though its own frames are whole.
    let e1 = by_id(&out, 1);
    assert!(e1.gap && !e1.partial && req(e1).path() == Some("/a"));
}
