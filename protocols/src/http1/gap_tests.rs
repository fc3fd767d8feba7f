//! Unit tests of the HTTP/1 stream around gaps: each place a gap can fall, the causes it leaves on exchanges, and pairing resumed only on proof.

use super::tests::{capture, push, req_of, resp_of, run, run_warm, Op};
use super::*;
use crate::testconv::{self, Call, Loss, Spec};
use GapCause::{JoinedMidStream, KernelCap, LostEvents};
use Side::{Request as Req, Response as Resp};

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn targets(out: &[Exchange]) -> Vec<(Option<&str>, Option<u64>, bool)> {
    out.iter()
        .map(|x| {
            (
                x.request.as_ref().map(|r| r.target.as_str()),
                x.response.as_ref().map(|r| r.body_size),
                x.partial || x.gap,
            )
        })
        .collect()
}

#[test]
fn gap_in_a_request_head_cuts_it_and_resyncs_on_the_next_event() {
    let ops = [
        push(Req, 10, b"GET /a HTTP/1.1\r\nHost: t\r\nX-Lo"),
        Op::GapBy(Req, 10, 30, KernelCap),
        push(Resp, 20, &ok("aa")),
        push(Req, 30, &get("/b")),
        push(Resp, 40, &ok("bbb")),
    ];
    let out = run_warm(capture(64), &ops);
    assert_eq!(out.errors, 1);
    assert_eq!(
        targets(&out.exchanges),
        [(Some("/a"), Some(2), true), (Some("/b"), Some(3), false)]
    );
    let a = &out.exchanges[0];
    assert!(a.partial && !req_of(a).complete);
    assert_eq!(a.gaps.names().collect::<Vec<_>>(), ["cut_by_kernel_cap"]);
    assert!(resp_of(a).complete, "the response itself is whole");
}

#[test]
fn gap_in_a_response_head_cuts_it_and_resyncs() {
    let ops = [
        push(Req, 10, &get("/a")),
        push(Resp, 20, b"HTTP/1.1 404 Not Found\r\nContent-Le"),
        Op::Gap(Resp, 21, 30),
        push(Resp, 21, b"ngth: 5\r\n\r\nnope!"),
        push(Req, 30, &get("/b")),
        push(Resp, 40, &ok("bbb")),
    ];
    let out = run(capture(64), &ops);
    assert_eq!(out.errors, 1);
    let a = &out.exchanges[0];
    assert_eq!(req_of(a).target, "/a");
    assert_eq!((resp_of(a).status, resp_of(a).complete), (404, false));
    assert!(a.partial && a.gaps.contains(LostEvents));
    let b = &out.exchanges[1];
    assert_eq!((req_of(b).target.as_str(), resp_of(b).body_size), ("/b", 3));
    assert!(!b.partial && !b.gap);
}

#[test]
fn gap_inside_a_content_length_body_keeps_alignment() {
    let body = "x".repeat(100);
    let resp = ok(&body);
    let head = resp.len() - 100;
    let ops = [
        push(Req, 10, &get("/a")),
        push(Resp, 20, &resp[..head + 30]),
        Op::GapBy(Resp, 20, 40, KernelCap),
        push(Resp, 21, &resp[head + 70..]),
        push(Req, 30, &get("/b")),
        push(Resp, 40, &ok("b")),
    ];
    let out = run(capture(1000), &ops);
    assert_eq!(out.errors, 0);
    let a = &out.exchanges[0];
    let r = resp_of(a);
    assert_eq!(
        (r.body_size, r.complete, r.body_truncated),
        (100, true, true)
    );
    assert_eq!(r.body.as_deref(), Some(&body.as_bytes()[..30]));
    assert!(!r.body_capped, "lost in a gap, not cut by the limit");
    assert!(a.gap && !a.partial);
    assert_eq!(a.gaps.iter().collect::<Vec<_>>(), [KernelCap]);
    assert!(!out.exchanges[1].gap && !out.exchanges[1].partial);
}

#[test]
fn gap_past_a_content_length_body_loses_the_count() {
    // The tail of /a's response and all of the response to /b are lost.
    let ops = [
        push(Req, 10, &get("/a")),
        push(
            Resp,
            20,
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\naaaa",
        ),
        push(Req, 30, &get("/b")),
        Op::Gap(Resp, 50, 6 + ok("bb").len() as u64),
        push(Req, 60, &get("/c")),
        push(Resp, 70, &ok("ccc")),
    ];
    let out = run_warm(capture(64), &ops);
    assert_eq!(
        targets(&out.exchanges),
        [
            (Some("/a"), Some(10), true),
            (Some("/b"), None, true),
            (Some("/c"), Some(3), false)
        ]
    );
    assert!(out.exchanges[1].gaps.contains(LostEvents));
}

#[test]
fn gap_inside_chunk_data_keeps_alignment() {
    let ops = [
        push(Req, 1, &get("/a")),
        push(
            Resp,
            2,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01",
        ),
        Op::Gap(Resp, 3, 8),
        push(Resp, 3, b"\r\n3\r\nabc\r\n0\r\n\r\n"),
        push(Req, 4, &get("/b")),
        push(Resp, 5, &ok("b")),
    ];
    let out = run(capture(64), &ops);
    assert_eq!(out.errors, 0);
    let a = &out.exchanges[0];
    assert_eq!(resp_of(a).body_size, 13);
    assert_eq!(resp_of(a).body.as_deref(), Some(&b"01"[..]));
    assert!(a.gap && !a.partial);
    assert!(!out.exchanges[1].gap);
}

#[test]
fn gap_in_a_chunk_size_line_loses_the_count() {
    let ops = [
        push(Req, 1, &get("/a")),
        push(
            Resp,
            2,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1",
        ),
        Op::Gap(Resp, 3, 3),
        // The rest of the body, in a later event, looks like a response.
        push(
            Resp,
            3,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\r\n0\r\n\r\n",
        ),
        push(Req, 4, &get("/b")),
        push(Resp, 5, &ok("bb")),
    ];
    let out = run(capture(64), &ops);
    assert_eq!(out.errors, 1);
    // The event after the gap starts with a status line: it is taken as a
    // response, but cannot be placed (it started before /b), so it comes
    // out alone and flagged; /b gets its own response.
    for x in &out.exchanges {
        if let (Some(q), Some(r)) = (&x.request, &x.response) {
            let expect = if q.target == "/a" { 3 } else { 2 };
            assert_eq!(r.body_size, expect, "{x:#?}");
        }
    }
    let b = out
        .exchanges
        .iter()
        .find(|x| x.request.as_ref().is_some_and(|r| r.target == "/b"))
        .expect("/b");
    assert!(!b.gap && !b.partial);
    assert_eq!(resp_of(b).body_size, 2);
    assert!(out.exchanges.iter().filter(|x| x.gap).count() >= 2);
}

#[test]
fn gap_between_pipelined_requests_never_misplaces_responses() {
    // Three requests written at once; the middle one is cut out of the event.
    let (a, b, c) = (get("/a"), get("/b"), get("/c"));
    let mut first = a.clone();
    first.extend_from_slice(&b[..5]);
    let ops = [
        push(Req, 10, &first),
        Op::GapBy(Req, 10, (b.len() - 5) as u64, KernelCap),
        push(Req, 11, &c),
        push(Resp, 20, &ok("aa")),
        push(Resp, 21, &ok("bbb")),
        push(Resp, 22, &ok("cccc")),
    ];
    let out = run(capture(64), &ops);
    // /a is answered in order, then the cut "/b" (its start is known: only
    // its target was lost). What the gap held after it is unknown, and the
    // client pipelines, so the last response cannot be placed: it is not
    // paired with /c.
    let pairs: Vec<_> = out
        .exchanges
        .iter()
        .filter_map(|x| Some((x.request.as_ref()?, x.response.as_ref()?)))
        .map(|(q, r)| (q.target.as_str(), r.body_size, q.complete))
        .collect();
    assert_eq!(pairs, [("/a", 2, true), ("", 3, false)]);
    let c = out
        .exchanges
        .iter()
        .find(|x| x.request.as_ref().is_some_and(|r| r.target == "/c"))
        .expect("/c");
    assert!(c.response.is_none() && c.partial && c.gap);
    assert_eq!(
        out.exchanges.iter().filter(|x| x.request.is_none()).count(),
        1
    );
}

#[test]
fn response_gap_with_requests_in_flight_never_pairs_wrongly() {
    // Five keep-alive requests in flight at once (pipelined); the response
    // side loses the end of response 1, all of 2 and the start of 3.
    let specs: Vec<Spec> = [10, 1, 200, 3, 40]
        .iter()
        .map(|&n| Spec {
            req_body: 0,
            resp_body: n,
            chunked: false,
        })
        .collect();
    let mut req = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        req.extend(testconv::request(i, spec));
    }
    let resps: Vec<Vec<u8>> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| testconv::response(i, s))
        .collect();
    let mut calls = vec![Call::Push(Req, 10, req)];
    calls.push(Call::Push(Resp, 20, resps[0].clone()));
    calls.push(Call::Push(Resp, 21, resps[1][..30].to_vec()));
    let lost = resps[1].len() - 30 + resps[2].len() + 20;
    calls.push(Call::Gap(Resp, 24, lost as u64, LostEvents));
    calls.push(Call::Push(Resp, 24, resps[3][20..].to_vec()));
    calls.push(Call::Push(Resp, 25, resps[4].clone()));
    let out = testconv::run_http1(capture(1 << 16), &calls);
    let exact = testconv::check(&specs, &out);
    assert_eq!(exact, [0], "{out:#?}");
    // Every request is reported, none with another's response.
    let answered: Vec<_> = out
        .iter()
        .filter_map(|x| {
            Some((
                x.request.as_ref()?.target.as_str(),
                x.response.as_ref()?.body_size,
            ))
        })
        .collect();
    // Response 1 was cut inside its head: only its status line is known.
    assert_eq!(answered, [("/item/0", 10), ("/item/1", 0)]);
    assert_eq!(out.iter().filter(|x| x.request.is_some()).count(), 5);
}

#[test]
fn lost_events_in_a_keepalive_run_never_pair_wrongly_and_resync_unflagged() {
    // The real run's shape: files of 0 B to 200 KiB, keep-alive, responses
    // written 16 KiB at a time, and a ring buffer that drops a run of events
    // on both sides.
    let sizes = [1, 200_000, 5, 0, 70_000, 1, 3_000, 1, 150_000, 2, 40, 9];
    let specs: Vec<Spec> = sizes
        .iter()
        .map(|&n| Spec {
            req_body: 0,
            resp_body: n,
            chunked: false,
        })
        .collect();
    let events = testconv::conversation(&specs, 16 * 1024);
    // Drop everything from the middle of response 1 to the start of response 4.
    let first = events
        .iter()
        .position(|e| e.exchange == 1 && e.side == Resp)
        .unwrap()
        + 3;
    let last = events
        .iter()
        .position(|e| e.exchange == 4 && e.side == Resp)
        .unwrap();
    let mut losses = vec![Loss::None; events.len()];
    for l in &mut losses[first..=last] {
        *l = Loss::Dropped;
    }
    let out = testconv::run_http1(capture(1 << 20), &testconv::calls(&events, &losses));
    let exact = testconv::check(&specs, &out);
    // Exchange 0 precedes the loss; 1 to 4 lost bytes; every later one is exact.
    assert_eq!(exact, [0, 5, 6, 7, 8, 9, 10, 11], "{out:#?}");
}

#[test]
fn gap_then_proven_resync_gives_exact_unflagged_exchanges() {
    let specs: Vec<Spec> = (0..20)
        .map(|i| Spec {
            req_body: if i % 3 == 0 { 17 } else { 0 },
            resp_body: 100 + 37 * i,
            chunked: i % 4 == 1,
        })
        .collect();
    let events = testconv::conversation(&specs, 64);
    let mut losses = vec![Loss::None; events.len()];
    // Lose the first event of response 5 (its head) and request 9 entirely.
    let r5 = events
        .iter()
        .position(|e| e.exchange == 5 && e.side == Resp)
        .unwrap();
    losses[r5] = Loss::Dropped;
    let q9 = events
        .iter()
        .position(|e| e.exchange == 9 && e.side == Req)
        .unwrap();
    losses[q9] = Loss::Dropped;
    // Cut by the copy cap inside bodies: the third event of response 12, and
    // the end of the body of request 15.
    let r12 = events
        .iter()
        .position(|e| e.exchange == 12 && e.side == Resp)
        .unwrap();
    losses[r12 + 2] = Loss::Cut(10);
    let q15 = events
        .iter()
        .position(|e| e.exchange == 15 && e.side == Req)
        .unwrap();
    losses[q15] = Loss::Cut(events[q15].bytes.len() - 5);
    let out = testconv::run_http1(capture(1 << 16), &testconv::calls(&events, &losses));
    let exact = testconv::check(&specs, &out);
    let expect: Vec<usize> = (0..20).filter(|i| ![5, 9, 12, 15].contains(i)).collect();
    assert_eq!(exact, expect, "{out:#?}");
    for i in [12, 15] {
        let target = format!("/item/{i}");
        let x = out
            .iter()
            .find(|x| x.request.as_ref().is_some_and(|r| r.target == target))
            .unwrap();
        assert!(x.gap && !x.partial && x.gaps.contains(KernelCap), "{x:#?}");
    }
    // The response to the lost request 9 comes out alone, flagged.
    let alone = out.iter().find(|x| x.request.is_none()).expect("alone");
    assert!(alone.gap && alone.partial && alone.gaps.contains(LostEvents));
}

#[test]
fn a_response_never_answers_a_request_that_started_after_it() {
    // A response whose request was lost, then a request sent after it: the
    // response must not be paired with that later request.
    let ops = [
        push(Req, 10, &get("/a")),
        push(Resp, 11, &ok("a")),
        Op::Gap(Resp, 31, ok("lost").len() as u64),
        push(Resp, 31, &ok("??")),
        push(Req, 40, &get("/b")),
        push(Resp, 41, &ok("bb")),
    ];
    let out = run(capture(64), &ops);
    for x in &out.exchanges {
        if let (Some(q), Some(r)) = (&x.request, &x.response) {
            assert!(q.start_ns <= r.start_ns, "{x:#?}");
        }
    }
    assert_eq!(
        targets(&out.exchanges),
        [
            (Some("/a"), Some(1), false),
            (None, Some(2), true),
            (Some("/b"), Some(2), false)
        ]
    );
}

#[test]
fn joined_mid_stream_gap_flags_what_it_touched() {
    let ops = [
        Op::GapBy(Req, 5, 1000, JoinedMidStream),
        Op::GapBy(Resp, 5, 5000, JoinedMidStream),
        push(Resp, 5, b"ody of a response we never saw the head of"),
        push(Req, 10, &get("/a")),
        push(Resp, 20, &ok("a")),
        push(Req, 30, &get("/b")),
        push(Resp, 40, &ok("bb")),
    ];
    let out = run(capture(64), &ops);
    assert_eq!(out.errors, 2);
    // Requests hidden before the join may still be unanswered: /a's response
    // is held until /b shows the client waits for each response; then both
    // are proven, and exact.
    assert_eq!(
        targets(&out.exchanges),
        [(Some("/a"), Some(1), false), (Some("/b"), Some(2), false)]
    );
}

#[test]
fn two_identical_requests_back_to_back_are_two_exchanges() {
    let ops = [
        push(Req, 10, &get("/same")),
        push(Resp, 20, &ok("same")),
        push(Req, 30, &get("/same")),
        push(Resp, 40, &ok("same")),
    ];
    let out = run(capture(64), &ops);
    assert_eq!(out.exchanges.len(), 2);
    assert_eq!(
        out.exchanges
            .iter()
            .map(|x| (req_of(x).start_ns, resp_of(x).start_ns))
            .collect::<Vec<_>>(),
        [(10, 20), (30, 40)]
    );
    // Also when written together (pipelined) and answered together.
    let mut both = get("/same");
    both.extend(get("/same"));
    let mut answers = ok("same");
    answers.extend(ok("same"));
    let out = run(capture(64), &[push(Req, 1, &both), push(Resp, 2, &answers)]);
    assert_eq!(out.exchanges.len(), 2);
    assert!(out.exchanges.iter().all(|x| !x.partial && !x.gap));
}

#[test]
fn body_cut_by_the_capture_limit_is_not_a_gap() {
    let out = run(
        capture(4),
        &[push(Req, 1, &get("/a")), push(Resp, 2, &ok("0123456789"))],
    );
    let x = &out.exchanges[0];
    let r = resp_of(x);
    assert_eq!((r.body_size, r.body.as_deref()), (10, Some(&b"0123"[..])));
    assert!(r.body_capped && r.body_truncated);
    assert!(!x.gap && x.gaps.is_empty() && !x.partial);
}

#[test]
fn batch_pipelining_client_with_an_early_loss_is_never_mispaired() {
    // Five requests written back to back, then their responses, twice; the
    // first response is lost before anything showed how the client sends.
    let specs: Vec<Spec> = (0..10)
        .map(|i| Spec {
            req_body: 0,
            resp_body: 10 + i,
            chunked: false,
        })
        .collect();
    let mut calls = Vec::new();
    for batch in 0..2u64 {
        for k in 0..5u64 {
            let i = (batch * 5 + k) as usize;
            calls.push(Call::Push(
                Req,
                20 * batch + 1 + k,
                testconv::request(i, &specs[i]),
            ));
        }
        for k in 0..5u64 {
            let i = (batch * 5 + k) as usize;
            let resp = testconv::response(i, &specs[i]);
            if i == 0 {
                calls.push(Call::Gap(Resp, 11, resp.len() as u64, LostEvents));
            } else {
                calls.push(Call::Push(Resp, 20 * batch + 11 + k, resp));
            }
        }
    }
    let out = testconv::run_http1(capture(1 << 10), &calls);
    // Panics on any response paired with the wrong request.
    let exact = testconv::check(&specs, &out);
    assert!(exact.is_empty(), "nothing can be proven here: {exact:?}");
    assert!(out.iter().all(|x| x.partial && x.gap));
}

#[test]
fn queue_overflow_never_misplaces_responses() {
    // More requests waiting than the queue holds: the oldest are given up,
    // but their responses may still come, so none is placed on a later one.
    let n = crate::http1::pairing::MAX_PENDING + 5;
    let specs: Vec<Spec> = (0..n)
        .map(|i| Spec {
            req_body: 0,
            resp_body: 1 + i % 7,
            chunked: false,
        })
        .collect();
    let mut calls = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        calls.push(Call::Push(Req, 1 + i as u64, testconv::request(i, spec)));
    }
    for (i, spec) in specs.iter().enumerate() {
        calls.push(Call::Push(
            Resp,
            1000 + i as u64,
            testconv::response(i, spec),
        ));
    }
    let out = testconv::run_http1(capture(64), &calls);
    testconv::check(&specs, &out);
    assert_eq!(out.iter().filter(|x| x.request.is_some()).count(), n);
}

#[test]
fn a_response_waiting_for_proof_stays_unpaired_when_the_request_tail_may_be_lost() {
    // The whole response to /a was lost; /b's request may be lost too (the
    // connection ends without the kernel's totals): the response that
    // follows the gap could answer /a or /b, so it is paired with neither.
    let ops = [
        push(Req, 10, &get("/a")),
        Op::Gap(Resp, 30, 40),
        push(Resp, 30, &ok("bbb")),
        Op::TailLost(Req, 50),
        Op::TailLost(Resp, 50),
    ];
    let out = run_warm(capture(64), &ops);
    for x in &out.exchanges {
        if let (Some(req), Some(resp)) = (&x.request, &x.response) {
            panic!(
                "{} paired with a {}-byte response",
                req.target, resp.body_size
            );
        }
        assert!(x.partial || x.gap, "{x:?}");
    }
}

#[test]
fn a_tail_lost_inside_a_body_cuts_it_without_inventing_bytes() {
    let ops = [
        push(Req, 10, &get("/a")),
        push(
            Resp,
            20,
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd",
        ),
        Op::TailLost(Resp, 30),
    ];
    let out = run_warm(capture(64), &ops);
    assert_eq!(targets(&out.exchanges), [(Some("/a"), Some(4), true)]);
    let a = &out.exchanges[0];
    assert!(!resp_of(a).complete && a.gaps.contains(LostEvents));
    // A body read until close: flagged, its size what was seen.
    let ops = [
        push(Req, 10, &get("/a")),
        push(
            Resp,
            20,
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabcdef",
        ),
        Op::TailLost(Resp, 30),
    ];
    let out = run_warm(capture(64), &ops);
    assert_eq!(targets(&out.exchanges), [(Some("/a"), Some(6), true)]);
    assert!(out.exchanges[0].gaps.contains(LostEvents));
}

#[test]
fn a_tail_lost_after_complete_exchanges_changes_nothing() {
    let ops = [
        push(Req, 10, &get("/a")),
        push(Resp, 20, &ok("aa")),
        Op::TailLost(Req, 30),
        Op::TailLost(Resp, 30),
    ];
    let out = run_warm(capture(64), &ops);
    assert_eq!(targets(&out.exchanges), [(Some("/a"), Some(2), false)]);
}
