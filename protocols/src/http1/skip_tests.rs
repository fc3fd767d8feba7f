//! Unit tests of body bytes skipped on purpose: what `skippable` allows where, skips that keep every size and flag exact, and skips that no longer fit (a stale mark) becoming gaps.

use super::tests::{capture, push, req_of, resp_of, run, FIXTURES};
use super::*;
use Side::{Request as Req, Response as Resp};

const POST_HEAD: &[u8] = b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n";
const OK_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 50000\r\n\r\n";

fn body(n: usize) -> Vec<u8> {
    vec![b'x'; n]
}

/// Feeds `data` of one side as a kernel that honours `skippable` would: in
/// events of `event` bytes, each skipped where (and as far as) the parser
/// allowed it when the event was written — asked only every `lag` events,
/// as userspace updates the kernel's mark late. Returns the bytes skipped.
fn feed_skipping(
    s: &mut Http1Stream,
    side: Side,
    ts: &mut u64,
    data: &[u8],
    event: usize,
    lag: usize,
) -> u64 {
    let mut skipped = 0;
    let mut mark = 0u64; // bytes from `pos` the kernel may skip
    for (i, piece) in data.chunks(event.max(1)).enumerate() {
        *ts += 1;
        if i % lag.max(1) == 0 {
            mark = s.skippable(side);
        }
        let n = (mark.min(piece.len() as u64)) as usize;
        if n > 0 {
            s.skip(side, *ts, n as u64);
            skipped += n as u64;
            mark -= n as u64;
        } else {
            mark = 0;
        }
        if n < piece.len() {
            s.push(side, *ts, &piece[n..]);
            mark = 0;
        }
    }
    skipped
}

/// The exchanges of a request/response pair fed with skips, and the bytes skipped.
fn with_skips(
    limits: Limits,
    req: &[u8],
    resp: &[u8],
    event: usize,
    lag: usize,
) -> (Vec<Exchange>, u64) {
    let mut s = Http1Stream::new(limits);
    let mut ts = 0;
    let mut skipped = feed_skipping(&mut s, Req, &mut ts, req, event, lag);
    skipped += feed_skipping(&mut s, Resp, &mut ts, resp, event, lag);
    let mut out = s.drain();
    out.extend(s.close(u64::MAX));
    (out, skipped)
}

/// What must be equal whether bytes were skipped or not: everything but
/// the timestamps (events are cut differently) and the body content.
fn shape(x: &Exchange) -> String {
    let q = x.request.as_ref().map(|r| {
        (
            &r.method,
            &r.target,
            &r.headers,
            r.body_size,
            r.complete,
            r.wire_bytes,
            r.body_capped,
        )
    });
    let p = x.response.as_ref().map(|r| {
        (
            r.status,
            &r.headers,
            r.body_size,
            r.complete,
            r.wire_bytes,
            r.body_capped,
        )
    });
    format!(
        "{q:?} {p:?} partial={} gap={} {:?}",
        x.partial, x.gap, x.gaps
    )
}

#[test]
fn a_body_of_known_length_is_skippable_once_its_head_is_parsed() {
    let mut s = Http1Stream::new(Limits::default());
    assert_eq!(s.skippable(Req), 0, "nothing parsed yet");
    s.push(Req, 1, POST_HEAD);
    assert_eq!(s.skippable(Req), 100_000);
    s.push(Req, 2, &body(1000));
    assert_eq!(s.skippable(Req), 99_000);
    s.skip(Req, 3, 99_000);
    assert_eq!(s.skippable(Req), 0, "the next message's head is needed");
    s.push(Resp, 4, OK_HEAD);
    assert_eq!(s.skippable(Resp), 50_000);
    s.skip(Resp, 5, 50_000);
    let out = s.drain();
    assert_eq!(out.len(), 1);
    let x = &out[0];
    assert!(!x.partial && !x.gap && x.gaps.is_empty(), "{x:#?}");
    let (q, r) = (req_of(x), resp_of(x));
    assert_eq!(
        (q.body_size, q.wire_bytes, q.complete),
        (100_000, POST_HEAD.len() as u64 + 100_000, true)
    );
    assert_eq!(
        (r.body_size, r.wire_bytes, r.complete),
        (50_000, OK_HEAD.len() as u64 + 50_000, true)
    );
    assert_eq!((q.start_ns, q.end_ns, r.start_ns, r.end_ns), (1, 3, 4, 5));
    assert_eq!(s.parse_errors(), 0);
}

#[test]
fn a_kept_prefix_comes_first_then_the_rest_is_skippable() {
    let mut s = Http1Stream::new(capture(10));
    s.push(Resp, 1, OK_HEAD);
    assert_eq!(s.skippable(Resp), 0, "10 body bytes are still to keep");
    s.push(Resp, 2, b"0123456");
    assert_eq!(s.skippable(Resp), 0);
    s.push(Resp, 3, b"789abc");
    assert_eq!(s.skippable(Resp), 50_000 - 13);
    s.skip(Resp, 4, 50_000 - 13);
    let out = s.close(5);
    let r = resp_of(&out[0]);
    assert_eq!(r.body.as_deref(), Some(&b"0123456789"[..]));
    assert!(r.body_truncated && r.body_capped && r.complete);
    assert_eq!(r.body_size, 50_000);
    assert!(!out[0].gap);
}

#[test]
fn chunks_are_skippable_one_at_a_time_and_their_framing_is_still_read() {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut s = Http1Stream::new(Limits::default());
    s.push(Req, 1, b"GET / HTTP/1.1\r\n\r\n");
    s.push(Resp, 2, head);
    assert_eq!(s.skippable(Resp), 0, "a chunk-size line comes first");
    s.push(Resp, 3, b"8000\r\nab");
    assert_eq!(s.skippable(Resp), 0x8000 - 2);
    s.skip(Resp, 4, 0x8000 - 2);
    assert_eq!(s.skippable(Resp), 0, "the chunk's CRLF");
    s.push(Resp, 5, b"\r\n0\r\n\r\n");
    let out = s.drain();
    let r = resp_of(&out[0]);
    assert!(r.complete && !out[0].gap && !out[0].partial);
    assert_eq!(r.body_size, 0x8000);
    assert_eq!(r.wire_bytes, (head.len() + 6 + 0x8000 + 2 + 5) as u64);
}

#[test]
fn a_body_read_until_close_is_skippable_to_the_end() {
    let mut s = Http1Stream::new(Limits::default());
    s.push(Req, 1, b"GET / HTTP/1.0\r\n\r\n");
    s.push(Resp, 2, b"HTTP/1.0 200 OK\r\n\r\nabc");
    assert_eq!(s.skippable(Resp), u64::MAX);
    s.skip(Resp, 3, 1 << 20);
    let out = s.close(4);
    let r = resp_of(&out[0]);
    assert_eq!((r.body_size, r.complete), (3 + (1 << 20), true));
    assert!(!out[0].gap && !out[0].partial);
}

#[test]
fn nothing_is_skippable_in_heads_held_bytes_or_after_an_upgrade() {
    let mut s = Http1Stream::new(Limits::default());
    s.push(Req, 1, b"GET / HTTP/1.1\r\nHost: t\r\n");
    assert_eq!(s.skippable(Req), 0, "inside a head");
    s.push(Req, 2, b"Upgrade: websocket\r\n\r\n");
    assert_eq!(s.skippable(Req), 0, "held until the response says");
    s.push(
        Resp,
        3,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    );
    assert!(s.is_upgraded());
    assert_eq!((s.skippable(Req), s.skippable(Resp)), (0, 0));
}

#[test]
fn a_skip_past_the_body_is_a_gap_of_its_own_cause_never_the_next_message() {
    // A stale mark: the kernel skipped 100 bytes more than the body.
    let mut s = Http1Stream::new(Limits::default());
    s.push(Req, 1, b"GET /a HTTP/1.1\r\n\r\n");
    s.push(Resp, 2, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
    s.skip(Resp, 3, 110);
    s.push(Req, 4, b"GET /b HTTP/1.1\r\n\r\n");
    s.push(Resp, 5, b"HTTP/1.1 204 No Content\r\n\r\n");
    let out = s.close(6);
    let first = &out[0];
    assert_eq!(req_of(first).target, "/a");
    assert_eq!(resp_of(first).body_size, 10);
    assert!(resp_of(first).complete, "its own body was whole");
    for x in &out[1..] {
        assert!(
            x.gaps.contains(GapCause::SkippedOutsideBody) || !x.partial,
            "what follows the skip is flagged or proven: {x:#?}"
        );
    }
}

#[test]
fn a_skip_where_no_body_is_expected_is_a_gap() {
    let mut s = Http1Stream::new(Limits::default());
    s.push(Req, 1, b"GET /a HTTP/1.1\r\nHost: t\r\n");
    s.skip(Req, 2, 50);
    s.push(Resp, 3, b"HTTP/1.1 204 No Content\r\n\r\n");
    let out = s.close(4);
    assert!(
        out.iter()
            .any(|x| x.gaps.contains(GapCause::SkippedOutsideBody)),
        "{out:#?}"
    );
    assert!(out
        .iter()
        .all(|x| x.gap || x.partial || x.request.is_none()));
    assert_eq!(s.parse_errors(), 1);
}

#[test]
fn every_fixture_comes_out_the_same_with_skips_at_capture_0() {
    let mut skipped = 0;
    for (name, req, resp) in FIXTURES {
        let plain = run(Limits::default(), &[push(Req, 1, req), push(Resp, 2, resp)]);
        for event in [1, 7, 64, 4096] {
            for lag in [1, 3] {
                let (out, n) = with_skips(Limits::default(), req, resp, event, lag);
                skipped += n;
                let a: Vec<String> = plain.exchanges.iter().map(shape).collect();
                let b: Vec<String> = out.iter().map(shape).collect();
                assert_eq!(a, b, "{name}, events of {event} bytes, mark every {lag}");
            }
        }
    }
    assert!(skipped > 0, "the fixtures with bodies had bytes skipped");
}

#[test]
fn keep_alive_uploads_and_downloads_skip_almost_everything_and_stay_exact() {
    let mut req = Vec::new();
    let mut resp = Vec::new();
    for i in 0..3 {
        req.extend_from_slice(
            format!("POST /up/{i} HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n")
                .as_bytes(),
        );
        req.extend_from_slice(&body(1 << 20));
        resp.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n");
        resp.extend_from_slice(&body(1 << 20));
    }
    // Interleave as a client would: request i, then response i.
    let mut s = Http1Stream::new(Limits::default());
    let mut ts = 0;
    let (mut qi, mut ri, mut skipped) = (0, 0, 0);
    let per = req.len() / 3;
    let per_resp = resp.len() / 3;
    for _ in 0..3 {
        skipped += feed_skipping(&mut s, Req, &mut ts, &req[qi..qi + per], 16384, 2);
        skipped += feed_skipping(&mut s, Resp, &mut ts, &resp[ri..ri + per_resp], 16384, 2);
        qi += per;
        ri += per_resp;
    }
    let mut out = s.drain();
    out.extend(s.close(u64::MAX));
    assert_eq!(out.len(), 3);
    for (i, x) in out.iter().enumerate() {
        assert!(!x.partial && !x.gap, "{x:#?}");
        assert_eq!(req_of(x).target, format!("/up/{i}"));
        assert_eq!(
            (req_of(x).body_size, resp_of(x).body_size),
            (1 << 20, 1 << 20)
        );
    }
    assert!(
        skipped > 5 * (1 << 20),
        "most body bytes skipped: {skipped}"
    );
}
