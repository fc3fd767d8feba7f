//! Unit tests of DATA payload bytes skipped on purpose: what `skippable` allows where, skips that keep every size and flag exact (after part of a payload, right after a frame header, over several events, between interleaved streams), and skips that do not fit an unpadded DATA payload becoming gaps.

use super::frame::{DATA, FLAG_END_STREAM, FLAG_PADDED, PING};
use super::testutil::*;
use super::{Exchange, GapCause, Http2Stream, Limits, Side, PREFACE};
use GapCause::SkippedOutsideBody;
use Side::{Request as Req, Response as Resp};

fn limits(capture: usize) -> Limits {
    Limits {
        max_body_capture: capture,
        ..Limits::default()
    }
}

fn get(h2: &mut Http2Stream, ts: u64, id: u32, path: &str) {
    h2.push(
        Req,
        ts,
        &headers(id, true, &Enc::default().request("GET", path).done()),
    );
}

fn by_id(out: &[Exchange], id: u32) -> &Exchange {
    out.iter().find(|e| e.stream_id == id).expect("stream")
}

/// A padded DATA frame: pad length byte, `body`, `pad` zero bytes.
fn padded(stream: u32, end_stream: bool, body: &[u8], pad: u8) -> Vec<u8> {
    let mut p = vec![pad];
    p.extend_from_slice(body);
    p.extend(std::iter::repeat_n(0, usize::from(pad)));
    let flags = FLAG_PADDED | if end_stream { FLAG_END_STREAM } else { 0 };
    frame(DATA, flags, stream, &p)
}

/// Opens a connection, sends GET `path` on stream 1 and a 200 response's
/// HEADERS (no END_STREAM); returns the parser and the HEADERS frame's length.
fn exchange_until_response_body(capture: usize, path: &str) -> (Http2Stream, u64) {
    let mut h2 = Http2Stream::new(limits(capture));
    open(&mut h2);
    get(&mut h2, 10, 1, path);
    let h = headers(
        1,
        false,
        &Enc::default().status(200).add("x-srv", "one").done(),
    );
    h2.push(Resp, 11, &h);
    (h2, h.len() as u64)
}

#[test]
fn the_tail_of_a_data_payload_skipped_is_counted_exactly() {
    let body = vec![b'b'; 2000];
    let f = data(1, true, &body);
    for k in [0, 1, 999, 1999] {
        let (mut h2, head) = exchange_until_response_body(0, "/big");
        h2.push(Resp, 12, &f[..9 + k]);
        assert_eq!(h2.skippable(Resp), 2000 - k as u64, "k = {k}");
        h2.skip(Resp, 13, 2000 - k as u64);
        assert_eq!(h2.skippable(Resp), 0, "the next frame header is needed");
        let out = h2.drain();
        assert_eq!(out.len(), 1, "k = {k}");
        let e = &out[0];
        let p = resp(e);
        assert_eq!(
            (
                p.body_size,
                p.body_truncated,
                p.body_capped,
                p.body.is_none()
            ),
            (2000, false, false, true),
            "k = {k}"
        );
        assert!(p.complete && !e.partial && !e.gap && e.gaps.is_empty());
        assert_eq!(p.wire_bytes, head + 9 + 2000);
        assert_eq!((p.start_ns, p.end_ns), (11, 13));
        assert_eq!(req(e).path(), Some("/big"));
        assert_eq!(h2.parse_errors(), 0);
    }
}

#[test]
fn a_payload_over_a_push_and_two_skips_then_the_next_exchange() {
    let (mut h2, head) = exchange_until_response_body(0, "/big");
    let f = data(1, true, &[7; 2000]);
    h2.push(Resp, 12, &f[..9 + 300]);
    h2.skip(Resp, 12, 500); // the tail of the same event
    assert_eq!(h2.skippable(Resp), 1200);
    h2.skip(Resp, 13, 1200); // an event skipped whole
                             // The framing and both HPACK tables are intact: the next exchange
                             // references entries the first one added.
    h2.push(
        Req,
        14,
        &headers(
            3,
            true,
            &Enc::default()
                .request("GET", "/next")
                .add("x-k", "v")
                .done(),
        ),
    );
    h2.push(
        Resp,
        15,
        &headers(3, true, &Enc::default().status(200).idx(62).done()),
    );
    let out = h2.drain();
    assert_eq!(out.len(), 2);
    let p = resp(by_id(&out, 1));
    assert_eq!((p.body_size, p.wire_bytes), (2000, head + 9 + 2000));
    assert_eq!((p.body_truncated, p.complete, p.end_ns), (false, true, 13));
    let e3 = by_id(&out, 3);
    assert_eq!(resp(e3).header("x-srv"), Some("one"));
    assert!(!e3.gap && !e3.partial && !resp(e3).headers_degraded);
    assert_eq!(h2.parse_errors(), 0);
}

#[test]
fn a_skip_in_one_of_two_interleaved_streams() {
    let mut h2 = Http2Stream::new(limits(0));
    open(&mut h2);
    let q1 = Enc::default().request("GET", "/a").add("x-k", "v").done();
    let q3 = Enc::default().request("POST", "/b").idx(62).done();
    h2.push(Req, 10, &headers(1, true, &q1));
    h2.push(Req, 10, &headers(3, false, &q3));
    h2.push(Req, 11, &data(3, true, &[1; 700]));
    let s1 = Enc::default().status(200).add("x-srv", "one").done();
    let s3 = Enc::default().status(404).idx(62).done();
    let mut r = headers(1, false, &s1);
    r.extend(headers(3, false, &s3));
    r.extend(data(1, false, &[2; 500]));
    r.extend(data(3, false, &[3; 800]));
    h2.push(Resp, 12, &r);
    // Stream 1's last DATA frame: its header and 10 bytes copied, the rest skipped.
    let last1 = data(1, true, &[4; 1000]);
    h2.push(Resp, 13, &last1[..19]);
    assert_eq!(h2.skippable(Resp), 990);
    h2.skip(Resp, 13, 990);
    h2.push(Resp, 14, &data(3, true, &[5; 300]));
    // The next exchange's HEADERS reference both sides' dynamic tables.
    let q5 = Enc::default().request("GET", "/c").idx(62).done();
    h2.push(Req, 15, &headers(5, true, &q5));
    let s5 = Enc::default().status(200).idx(62).done();
    h2.push(Resp, 16, &headers(5, true, &s5));
    let out = h2.drain();
    assert_eq!(h2.parse_errors(), 0);
    let ids: Vec<u32> = out.iter().map(|e| e.stream_id).collect();
    assert_eq!(ids, [1, 3, 5]);
    let (e1, e3, e5) = (by_id(&out, 1), by_id(&out, 3), by_id(&out, 5));
    assert!(out
        .iter()
        .all(|e| !e.gap && !e.partial && e.gaps.is_empty()));
    let p1 = resp(e1);
    assert_eq!(p1.body_size, 1500);
    assert_eq!(
        p1.wire_bytes,
        (9 + s1.len() + 9 + 500 + 9 + 1000) as u64,
        "stream 1's frames"
    );
    assert_eq!((p1.end_ns, p1.body_truncated), (13, false));
    let p3 = resp(e3);
    assert_eq!(p3.status(), Some(404));
    assert_eq!(p3.body_size, 1100);
    assert_eq!(p3.wire_bytes, (9 + s3.len() + 9 + 800 + 9 + 300) as u64);
    assert_eq!(req(e3).body_size, 700);
    assert_eq!(req(e3).header("x-k"), Some("v"));
    assert_eq!(req(e5).header("x-k"), Some("v"), "request HPACK intact");
    assert_eq!(
        resp(e5).header("x-srv"),
        Some("one"),
        "response HPACK intact"
    );
    assert!(!req(e5).headers_degraded && !resp(e5).headers_degraded);
}

#[test]
fn a_skip_past_the_payload_is_a_gap_never_another_streams_body() {
    let mut h2 = Http2Stream::new(limits(0));
    open(&mut h2);
    get(&mut h2, 10, 1, "/a");
    get(&mut h2, 10, 3, "/b");
    let status = Enc::default().status(200).done();
    h2.push(Resp, 11, &headers(1, false, &status));
    h2.push(Resp, 11, &headers(3, false, &status));
    // Stream 1's DATA frame (100 bytes) is skipped after 10 payload bytes,
    // with 30 bytes more: the start of a DATA frame of stream 3 (41 bytes).
    let d1 = data(1, true, &[b'x'; 100]);
    let d3 = data(3, false, &[b'x'; 41]);
    h2.push(Resp, 12, &d1[..19]);
    h2.skip(Resp, 13, 90 + 30);
    assert_eq!(h2.parse_errors(), 1, "frame boundaries lost");
    assert_eq!(h2.skippable(Resp), 0, "resynchronising");
    // The rest of stream 3's frame, then frames that resynchronise the side.
    let mut after = d3[30..].to_vec();
    after.extend(data(3, true, b"end"));
    after.extend(frame(PING, 0, 0, &[0; 8]));
    h2.push(Resp, 14, &after);
    let out = h2.close(15);
    let (e1, e3) = (by_id(&out, 1), by_id(&out, 3));
    let p1 = resp(e1);
    assert_eq!((p1.body_size, p1.complete), (100, true));
    assert!(!e1.gap && !e1.partial, "finished before the gap");
    let p3 = resp(e3);
    assert_eq!(p3.body_size, 3, "the skipped bytes are nobody's body");
    assert!(p3.complete);
    assert!(e3.gap && e3.gaps.contains(SkippedOutsideBody), "{e3:#?}");
    assert_eq!(e3.gaps.iter().count(), 1);
}

#[test]
fn a_skip_outside_a_data_payload_is_a_gap() {
    // In a frame header (at a boundary and inside one).
    for cut in [0, 4] {
        let (mut h2, _) = exchange_until_response_body(0, "/a");
        let d = data(1, true, &[1; 50]);
        h2.push(Resp, 12, &d[..cut]);
        assert_eq!(h2.skippable(Resp), 0);
        h2.skip(Resp, 13, 50);
        assert_eq!(h2.parse_errors(), 1, "cut {cut}");
        let out = h2.close(14);
        let e = by_id(&out, 1);
        assert!(e.partial && e.gaps.contains(SkippedOutsideBody), "{e:#?}");
        assert_eq!(resp(e).body_size, 0);
    }
    // In a HEADERS frame's payload: the frame is lost, its stream flagged.
    let mut h2 = Http2Stream::new(limits(0));
    open(&mut h2);
    let h = headers(1, true, &Enc::default().request("GET", "/a").done());
    h2.push(Req, 10, &h[..12]);
    assert_eq!(h2.skippable(Req), 0);
    h2.skip(Req, 11, (h.len() - 12) as u64);
    get(&mut h2, 12, 3, "/b");
    for id in [1, 3] {
        h2.push(
            Resp,
            13,
            &headers(id, true, &Enc::default().status(200).done()),
        );
    }
    let out = h2.close(14);
    assert!(h2.parse_errors() >= 1);
    let e1 = by_id(&out, 1);
    assert!(e1.gaps.contains(SkippedOutsideBody) && req(e1).headers_degraded);
    let e3 = by_id(&out, 3);
    assert_eq!(req(e3).path(), Some("/b"));
    assert!(!e3.gap);
    // Skipped while the side looks for a frame boundary: a gap again.
    let mut h2 = Http2Stream::new(limits(0));
    h2.push(Resp, 1, &[0xff; 20]);
    h2.skip(Resp, 2, 100);
    assert!(h2.parse_errors() >= 1);
    assert!(h2.close(3).is_empty());
}

#[test]
fn a_skip_in_a_padded_frame_is_a_gap_in_its_payload() {
    let (mut h2, head) = exchange_until_response_body(0, "/p");
    let f = padded(1, true, &[9; 100], 20);
    h2.push(Resp, 12, &f[..9]);
    assert_eq!(h2.skippable(Resp), 0, "pad length to come");
    h2.push(Resp, 12, &f[9..20]);
    assert_eq!(h2.skippable(Resp), 0, "padded frames are never skipped");
    h2.skip(Resp, 13, 50);
    h2.push(Resp, 14, &f[70..]);
    let out = h2.drain();
    assert_eq!(out.len(), 1);
    let e = &out[0];
    let p = resp(e);
    assert_eq!((p.body_size, p.complete), (100, true));
    assert_eq!(p.wire_bytes, head + f.len() as u64);
    assert!(e.gap && e.gaps.contains(SkippedOutsideBody) && !e.partial);
    assert_eq!(
        h2.parse_errors(),
        0,
        "a gap inside the payload keeps the framing"
    );
}

#[test]
fn a_skip_when_the_body_is_kept_truncates_it() {
    // Room left in the kept body (a stale mark): the body is flagged cut.
    let (mut h2, _) = exchange_until_response_body(100, "/kept");
    let body: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
    let f = data(1, true, &body);
    h2.push(Resp, 12, &f[..9 + 50]);
    assert_eq!(h2.skippable(Resp), 0, "the kept prefix comes first");
    h2.skip(Resp, 13, 1950);
    let out = h2.drain();
    let e = &out[0];
    let p = resp(e);
    assert_eq!(p.body.as_deref(), Some(&body[..50]));
    assert_eq!(
        (p.body_size, p.body_truncated, p.complete),
        (2000, true, true)
    );
    assert!(!e.gap, "skipped on purpose: no gap");
    assert_eq!(h2.parse_errors(), 0);

    // The kept body full: skippable, and the same as when pushed whole.
    let run = |skip: bool| {
        let (mut h2, _) = exchange_until_response_body(100, "/kept");
        if skip {
            h2.push(Resp, 12, &f[..9 + 100]);
            assert_eq!(h2.skippable(Resp), 1900);
            h2.skip(Resp, 12, 1900);
        } else {
            h2.push(Resp, 12, &f);
        }
        (h2.drain(), h2.parse_errors())
    };
    let (skipped, whole) = (run(true), run(false));
    assert_eq!(skipped, whole);
    let p = resp(&skipped.0[0]);
    assert_eq!(p.body.as_deref(), Some(&body[..100]));
    assert!(p.body_truncated && p.body_capped);
}

#[test]
fn skippable_only_inside_an_unpadded_payload_not_kept() {
    let mut h2 = Http2Stream::new(limits(0));
    assert_eq!((h2.skippable(Req), h2.skippable(Resp)), (0, 0));
    open(&mut h2);
    let q = Enc::default().request("POST", "/up").done();
    h2.push(Req, 10, &headers(1, false, &q));
    assert_eq!(h2.skippable(Req), 0, "between frames");
    let f = data(1, false, &[0; 300]);
    h2.push(Req, 11, &f[..5]);
    assert_eq!(h2.skippable(Req), 0, "in a frame header");
    h2.push(Req, 11, &f[5..9]);
    assert_eq!(h2.skippable(Req), 300);
    assert_eq!(h2.skippable(Resp), 0, "per side");
    h2.push(Req, 12, &f[9..109]);
    assert_eq!(h2.skippable(Req), 200);
    h2.push(Req, 12, &f[109..]);
    assert_eq!(h2.skippable(Req), 0, "the frame is done");
    // A PING's payload is no body.
    let ping = frame(PING, 0, 0, &[0; 8]);
    h2.push(Req, 13, &ping[..10]);
    assert_eq!(h2.skippable(Req), 0);
    h2.push(Req, 13, &ping[10..]);
    // A padded frame, before and after its pad length.
    let p = padded(1, true, &[0; 100], 10);
    h2.push(Req, 14, &p[..9]);
    assert_eq!(h2.skippable(Req), 0);
    h2.push(Req, 14, &p[9..30]);
    assert_eq!(h2.skippable(Req), 0);
    h2.push(Req, 14, &p[30..]);
    // A DATA frame with no payload ends at once.
    let q3 = Enc::default().request("POST", "/empty").done();
    h2.push(Req, 15, &headers(3, false, &q3));
    h2.push(Req, 15, &data(3, true, &[]));
    assert_eq!(h2.skippable(Req), 0);
    let e = h2.close(16);
    assert_eq!(req(by_id(&e, 1)).body_size, 400);
    assert_eq!(h2.skippable(Req), 0, "closed");

    // A body kept with room left: nothing; once full, the rest of the frame.
    let mut h2 = Http2Stream::new(limits(100));
    open(&mut h2);
    h2.push(Req, 10, &headers(1, false, &q));
    h2.push(Req, 11, &f[..9 + 40]);
    assert_eq!(h2.skippable(Req), 0);
    h2.push(Req, 11, &f[49..109]);
    assert_eq!(h2.skippable(Req), 200);
    // The kept body was cut in a gap: nothing more is kept.
    let mut h2 = Http2Stream::new(limits(100));
    open(&mut h2);
    h2.push(Req, 10, &headers(1, false, &q));
    h2.push(Req, 11, &f[..9 + 10]);
    h2.gap(Req, 11, 10, GapCause::LostEvents);
    assert_eq!(h2.skippable(Req), 280);
    // The DATA frame of a stream already finished: nothing is kept.
    let mut h2 = Http2Stream::new(limits(100));
    open(&mut h2);
    get(&mut h2, 10, 1, "/done");
    h2.push(
        Resp,
        11,
        &headers(1, true, &Enc::default().status(200).done()),
    );
    assert_eq!(h2.drain().len(), 1);
    h2.push(Resp, 12, &data(1, true, &[0; 64])[..9]);
    assert_eq!(h2.skippable(Resp), 64);
}

#[test]
fn a_skip_after_close_or_of_nothing_is_ignored() {
    let (mut h2, _) = exchange_until_response_body(0, "/a");
    h2.push(Resp, 12, &data(1, true, &[0; 64])[..9]);
    h2.skip(Resp, 13, 0);
    assert_eq!(h2.skippable(Resp), 64);
    let out = h2.close(14);
    assert_eq!(out.len(), 1);
    h2.skip(Resp, 15, 64);
    assert!(h2.close(16).is_empty());
    assert_eq!(h2.parse_errors(), 0);
}

/// The request and response bytes of one round of a generated connection.
type Round = (Vec<u8>, Vec<u8>);

/// A connection of several rounds of 1 to 3 concurrent exchanges: bodies of
/// random sizes (0 to 5000 bytes) in 1 to 3 DATA frames (some padded, some
/// empty), the frames of a round's streams interleaved, responses ending
/// with DATA or with trailers.
fn random_connection(rng: &mut Rng) -> Vec<Round> {
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[]));
    let mut rounds = Vec::new();
    let mut next_id = 1u32;
    let mut first = true;
    for _ in 0..1 + rng.below(6) {
        let ids: Vec<u32> = (0..1 + rng.below(3) as u32)
            .map(|i| next_id + 2 * i)
            .collect();
        next_id += 2 * ids.len() as u32;
        let mut s = if first {
            settings(&[(3, 100)])
        } else {
            Vec::new()
        };
        first = false;
        let mut req_frames: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut resp_frames: Vec<Vec<Vec<u8>>> = Vec::new();
        for &id in &ids {
            let post = rng.below(2) == 0;
            let enc = Enc::default()
                .request(if post { "POST" } else { "GET" }, &format!("/r/{id}"))
                .add("x-id", &id.to_string());
            let mut q = vec![headers(id, !post, &enc.done())];
            if post {
                q.extend(body_frames(rng, id, true));
            }
            req_frames.push(q);
            let status = [200, 404, 201][rng.below(3)];
            let enc = Enc::default().status(status).add("x-s", &id.to_string());
            let trailers = rng.below(3) == 0;
            let mut p = vec![headers(id, false, &enc.done())];
            p.extend(body_frames(rng, id, !trailers));
            if trailers {
                p.push(headers(id, true, &Enc::default().lit("x-t", "1").done()));
            }
            resp_frames.push(p);
        }
        c.extend(interleave(rng, req_frames));
        s.extend(interleave(rng, resp_frames));
        rounds.push((std::mem::take(&mut c), s));
    }
    rounds
}

/// A body in 1 to 3 DATA frames (the last with END_STREAM when `end`).
fn body_frames(rng: &mut Rng, id: u32, end: bool) -> Vec<Vec<u8>> {
    let n = 1 + rng.below(3);
    (0..n)
        .map(|i| {
            let last = end && i + 1 == n;
            let len = if rng.below(5) == 0 {
                0
            } else {
                rng.below(5000)
            };
            let body = rng.bytes(len);
            if rng.below(5) == 0 {
                padded(id, last, &body, rng.below(40) as u8)
            } else {
                data(id, last, &body)
            }
        })
        .collect()
}

/// The frames of several streams, each stream's in order, mixed at random.
fn interleave(rng: &mut Rng, mut streams: Vec<Vec<Vec<u8>>>) -> Vec<u8> {
    for s in &mut streams {
        s.reverse();
    }
    let mut out = Vec::new();
    loop {
        let open: Vec<usize> = (0..streams.len())
            .filter(|&i| !streams[i].is_empty())
            .collect();
        if open.is_empty() {
            return out;
        }
        let i = open[rng.below(open.len())];
        out.extend(streams[i].pop().expect("frame"));
    }
}

/// What must be equal whether bytes were skipped or not: every field of
/// every exchange but the timestamps (the events are cut differently), in
/// stream order.
fn shape(out: &[Exchange]) -> Vec<Exchange> {
    let mut v = out.to_vec();
    for e in &mut v {
        for m in [&mut e.request, &mut e.response].into_iter().flatten() {
            m.start_ns = 0;
            m.end_ns = 0;
        }
    }
    v.sort_by_key(|e| e.stream_id);
    v
}

/// Feeds one side's bytes as a kernel that honours `skippable` would:
/// events cut at random points, and at each event boundary inside a DATA
/// payload a random part of what `skippable` allows skipped (the tail of
/// the event just pushed, or events skipped whole). Returns the bytes skipped.
fn feed_skipping(
    h2: &mut Http2Stream,
    rng: &mut Rng,
    side: Side,
    ts: &mut u64,
    mut bytes: &[u8],
) -> u64 {
    let mut skipped = 0;
    while !bytes.is_empty() {
        let allowed = h2.skippable(side).min(bytes.len() as u64);
        if allowed > 0 && rng.below(4) != 0 {
            let n = 1 + rng.below(allowed as usize);
            // Skipped bytes end an event or make one of their own.
            if rng.below(2) == 0 {
                *ts += 1;
            }
            h2.skip(side, *ts, n as u64);
            skipped += n as u64;
            bytes = &bytes[n..];
            continue;
        }
        *ts += 1;
        let max = if rng.below(3) == 0 { 20 } else { 3000 };
        let n = (1 + rng.below(max)).min(bytes.len());
        h2.push(side, *ts, &bytes[..n]);
        bytes = &bytes[n..];
    }
    skipped
}

#[test]
fn skipping_what_skippable_allows_changes_nothing_but_the_body() {
    let mut rng = Rng(0x5eed_2b2b_1234_8765);
    let mut total_skipped = 0;
    for round in 0..300 {
        let conn = random_connection(&mut rng);
        // Mostly no body kept (the level that lets the kernel skip); some
        // rounds keep a prefix, skipped only once it is full.
        let capture = [0, 0, 0, 100, 3000][rng.below(5)];
        // Pushed whole.
        let mut whole = Http2Stream::new(limits(capture));
        let mut ts = 0;
        for (c, s) in &conn {
            ts += 1;
            whole.push(Req, ts, c);
            ts += 1;
            whole.push(Resp, ts, s);
        }
        let mut expected = whole.drain();
        expected.extend(whole.close(ts + 1));
        assert_eq!(whole.parse_errors(), 0);
        assert!(expected.iter().all(|e| !e.gap && !e.partial));
        // Cut at random points, with skips.
        let mut h2 = Http2Stream::new(limits(capture));
        let mut ts = 0;
        let mut skipped = 0;
        for (c, s) in &conn {
            skipped += feed_skipping(&mut h2, &mut rng, Req, &mut ts, c);
            skipped += feed_skipping(&mut h2, &mut rng, Resp, &mut ts, s);
        }
        let mut got = h2.drain();
        got.extend(h2.close(ts + 1));
        assert_eq!(h2.parse_errors(), 0, "round {round}");
        assert_eq!(
            shape(&got),
            shape(&expected),
            "round {round}, capture {capture}"
        );
        total_skipped += skipped;
    }
    assert!(total_skipped > 1_000_000, "skips happened: {total_skipped}");
}

/// The recorded connections of `testdata/http2`: both directions and the
/// relay order of their chunks.
const FIXTURES: [(&str, &[u8], &[u8], &str); 6] = {
    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                include_bytes!(concat!("../../testdata/http2/", $name, ".req")),
                include_bytes!(concat!("../../testdata/http2/", $name, ".resp")),
                include_str!(concat!("../../testdata/http2/", $name, ".order")),
            )
        };
    }
    [
        fixture!("h2c_concurrent"),
        fixture!("h2c_dynamic_table"),
        fixture!("h2c_grpc"),
        fixture!("curl_get"),
        fixture!("curl_post"),
        fixture!("nginx_curl_get"),
    ]
};

/// A fixture's chunks in relay order.
fn chunks<'a>(mut req: &'a [u8], mut resp: &'a [u8], order: &str) -> Vec<(Side, &'a [u8])> {
    let mut out = Vec::new();
    for line in order.lines().filter(|l| !l.trim().is_empty()) {
        let (tag, len) = line.split_once(' ').expect("order line");
        let len: usize = len.trim().parse().expect("order length");
        let (side, src) = if tag == "C" {
            (Req, &mut req)
        } else {
            (Resp, &mut resp)
        };
        let (head, tail) = src.split_at(len);
        *src = tail;
        out.push((side, head));
    }
    out
}

#[test]
fn every_fixture_comes_out_the_same_with_skips() {
    let mut rng = Rng(0x0f1c_7a3e_55aa_0001);
    let mut skipped = 0;
    for (name, req, resp, order) in FIXTURES {
        let c = chunks(req, resp, order);
        for capture in [0, 16, 4096] {
            let mut whole = Http2Stream::new(limits(capture));
            for (i, (side, bytes)) in c.iter().enumerate() {
                whole.push(*side, i as u64, bytes);
            }
            let expected = whole.close(u64::MAX);
            for _ in 0..20 {
                let mut h2 = Http2Stream::new(limits(capture));
                let mut ts = 0;
                for (side, bytes) in &c {
                    skipped += feed_skipping(&mut h2, &mut rng, *side, &mut ts, bytes);
                }
                let got = h2.close(u64::MAX);
                assert_eq!(h2.parse_errors(), whole.parse_errors(), "{name}");
                assert_eq!(shape(&got), shape(&expected), "{name}, capture {capture}");
            }
        }
    }
    assert!(
        skipped > 10_000,
        "the fixtures with bodies had bytes skipped: {skipped}"
    );
}
