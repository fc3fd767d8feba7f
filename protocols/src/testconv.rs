//! Test conversations: HTTP/1 keep-alive exchanges laid out as timed capture events, the losses a capture suffers, and the check that nothing unflagged is wrong.

use crate::http1::{Exchange, Http1Stream, Limits};
use crate::stream::{GapCause, Side};

/// Body of exchange `i` on `side`: `n` bytes that name the exchange, so a
/// body paired with the wrong request is detectable.
pub(crate) fn body_of(side: Side, i: usize, n: usize) -> Vec<u8> {
    let tag = match side {
        Side::Request => format!("q{i}."),
        Side::Response => format!("r{i}."),
    };
    let mut body = tag.repeat(n / tag.len() + 1).into_bytes();
    body.truncate(n);
    body
}

/// One exchange of a conversation.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    /// Request body length (0: a GET).
    pub(crate) req_body: usize,
    /// Response body length.
    pub(crate) resp_body: usize,
    /// Response body in chunked coding (else Content-Length).
    pub(crate) chunked: bool,
}

/// The request of exchange `i`.
pub(crate) fn request(i: usize, spec: &Spec) -> Vec<u8> {
    if spec.req_body == 0 {
        return format!("GET /item/{i} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes();
    }
    let mut out = format!(
        "POST /item/{i} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        spec.req_body
    )
    .into_bytes();
    out.extend(body_of(Side::Request, i, spec.req_body));
    out
}

/// The response of exchange `i`.
pub(crate) fn response(i: usize, spec: &Spec) -> Vec<u8> {
    let body = body_of(Side::Response, i, spec.resp_body);
    if !spec.chunked {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nServer: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend(body);
        return out;
    }
    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(1000) {
        out.extend(format!("{:x}\r\n", chunk.len()).bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// One capture event: the bytes one syscall moved.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) side: Side,
    pub(crate) ts: u64,
    pub(crate) bytes: Vec<u8>,
    /// Exchange the bytes belong to.
    pub(crate) exchange: usize,
}

/// A non-pipelined keep-alive conversation: each request is one event sent
/// after the previous response ended; each response is written in events of
/// at most `write` bytes, the first carrying the head.
pub(crate) fn conversation(specs: &[Spec], write: usize) -> Vec<Event> {
    let mut events = Vec::new();
    let mut ts = 1_000u64;
    for (i, spec) in specs.iter().enumerate() {
        ts += 100;
        events.push(Event {
            side: Side::Request,
            ts,
            bytes: request(i, spec),
            exchange: i,
        });
        ts += 50;
        for piece in response(i, spec).chunks(write.max(1)) {
            ts += 10;
            events.push(Event {
                side: Side::Response,
                ts,
                bytes: piece.to_vec(),
                exchange: i,
            });
        }
    }
    events
}

/// A pipelining keep-alive conversation: requests are sent in batches of
/// `batch` (each in its own event, or all in one when `coalesce`), then the
/// responses to the batch come, written in events of at most `write` bytes.
pub(crate) fn pipelined(specs: &[Spec], batch: usize, coalesce: bool, write: usize) -> Vec<Event> {
    let mut events = Vec::new();
    let mut ts = 1_000u64;
    for (b, group) in specs.chunks(batch.max(1)).enumerate() {
        let first = b * batch.max(1);
        ts += 100;
        for (k, spec) in group.iter().enumerate() {
            let i = first + k;
            match events.last_mut() {
                Some(Event {
                    side: Side::Request,
                    bytes,
                    ..
                }) if coalesce && k > 0 => {
                    bytes.extend(request(i, spec));
                }
                _ => {
                    ts += 1;
                    events.push(Event {
                        side: Side::Request,
                        ts,
                        bytes: request(i, spec),
                        exchange: i,
                    });
                }
            }
        }
        ts += 50;
        for (k, spec) in group.iter().enumerate() {
            for piece in response(first + k, spec).chunks(write.max(1)) {
                ts += 10;
                events.push(Event {
                    side: Side::Response,
                    ts,
                    bytes: piece.to_vec(),
                    exchange: first + k,
                });
            }
        }
    }
    events
}

/// What the capture did to one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loss {
    /// Delivered whole.
    None,
    /// Dropped (ring buffer full): reported with the next event of its side.
    Dropped,
    /// Only the first `keep` bytes copied (per-call copy cap).
    Cut(usize),
}

/// One call on a parser.
#[derive(Clone, Debug)]
pub(crate) enum Call {
    Push(Side, u64, Vec<u8>),
    Gap(Side, u64, u64, GapCause),
}

/// The calls the tracker makes for `events` under `losses` (one per event):
/// a dropped event becomes a gap reported just before the next event of its
/// side (or at the end), a cut one a push of its head and a gap of its tail.
pub(crate) fn calls(events: &[Event], losses: &[Loss]) -> Vec<Call> {
    let mut out = Vec::new();
    let mut pending = [0u64; 2];
    let index = |side: Side| usize::from(side == Side::Response);
    let mut last_ts = 0;
    for (i, ev) in events.iter().enumerate() {
        last_ts = ev.ts;
        let loss = losses.get(i).copied().unwrap_or(Loss::None);
        let k = index(ev.side);
        if loss == Loss::Dropped {
            pending[k] += ev.bytes.len() as u64;
            continue;
        }
        if pending[k] > 0 {
            out.push(Call::Gap(ev.side, ev.ts, pending[k], GapCause::LostEvents));
            pending[k] = 0;
        }
        match loss {
            Loss::Cut(keep) if keep < ev.bytes.len() => {
                out.push(Call::Push(ev.side, ev.ts, ev.bytes[..keep].to_vec()));
                let tail = (ev.bytes.len() - keep) as u64;
                out.push(Call::Gap(ev.side, ev.ts, tail, GapCause::KernelCap));
            }
            _ => out.push(Call::Push(ev.side, ev.ts, ev.bytes.clone())),
        }
    }
    for side in [Side::Request, Side::Response] {
        if pending[index(side)] > 0 {
            out.push(Call::Gap(
                side,
                last_ts + 1,
                pending[index(side)],
                GapCause::LostEvents,
            ));
        }
    }
    out
}

/// Runs calls through an HTTP/1 stream (draining after each), then closes it.
pub(crate) fn run_http1(limits: Limits, calls: &[Call]) -> Vec<Exchange> {
    let mut s = Http1Stream::new(limits);
    let mut out = Vec::new();
    let mut last = 0;
    for call in calls {
        match call {
            Call::Push(side, ts, data) => {
                s.push(*side, *ts, data);
                last = *ts;
            }
            Call::Gap(side, ts, len, cause) => s.gap(*side, *ts, *len, *cause),
        }
        out.extend(s.drain());
    }
    out.extend(s.close(last + 1));
    out
}

/// Exchange number named by a request target `/item/N`.
pub(crate) fn exchange_of_target(target: &str) -> Option<usize> {
    target.strip_prefix("/item/")?.parse().ok()
}

/// Checks every exchange against what was sent; returns the exchange numbers
/// that came out exact and unflagged. Panics on a wrong pairing (whatever the
/// flags), and on anything unflagged that differs from what was sent.
pub(crate) fn check(specs: &[Spec], out: &[Exchange]) -> Vec<usize> {
    let mut exact = Vec::new();
    for x in out {
        assert_eq!(x.gap, !x.gaps.is_empty(), "{x:#?}");
        let req_id = x
            .request
            .as_ref()
            .and_then(|r| exchange_of_target(&r.target));
        if let (Some(i), Some(resp)) = (req_id, x.response.as_ref()) {
            // A response paired with a request is its response, flagged or not.
            if let Some(body) = resp.body.as_ref().filter(|b| !b.is_empty()) {
                let expect = body_of(Side::Response, i, body.len());
                assert_eq!(
                    body, &expect,
                    "response paired with the wrong request: {x:#?}"
                );
            }
            if !resp.body_truncated && resp.complete {
                assert_eq!(resp.body_size as usize, specs[i].resp_body, "{x:#?}");
            }
        }
        if x.partial || x.gap {
            continue;
        }
        let i = req_id.expect("an unflagged exchange has a request");
        let (req, resp) = (
            x.request.as_ref().expect("request"),
            x.response.as_ref().expect("response"),
        );
        let spec = &specs[i];
        assert_eq!(req.body_size as usize, spec.req_body, "{x:#?}");
        assert_eq!(resp.body_size as usize, spec.resp_body, "{x:#?}");
        assert_eq!(
            resp.body.as_deref(),
            Some(&body_of(Side::Response, i, spec.resp_body)[..]),
            "{x:#?}"
        );
        assert_eq!(
            req.body.as_deref(),
            Some(&body_of(Side::Request, i, spec.req_body)[..]),
            "{x:#?}"
        );
        exact.push(i);
    }
    exact
}
