//! The streams of one connection: the messages of each side, concurrent and pushed streams, trailers, RST_STREAM, GOAWAY and the bounds on open streams and header bytes.

use std::collections::VecDeque;

use rustc_hash::{FxHashMap, FxHashSet};
#[cfg(test)]
use std::mem;

use super::connection::Limits;
use super::frame::is_client_stream;
use super::grpc::grpc_of;
use super::message::{Exchange, Header, Message, MAX_MESSAGE_FIELDS, MAX_MESSAGE_HEADER_BYTES};
use super::{GapCauses, Side};

/// Streams tracked at once; the oldest one is given up (as partial) beyond this.
const MAX_OPEN_STREAMS: usize = 1024;
/// Ids of finished streams remembered, so that late frames do not reopen them.
const FINISHED_REMEMBERED: usize = 4096;
/// Decoded header bytes kept over all open streams of the connection.
const MAX_CONN_HEADER_BYTES: usize = 8 << 20;

/// One side of a stream being assembled.
#[derive(Debug)]
struct MsgState {
    msg: Message,
    /// A header block (even a lost one) took the headers slot.
    saw_headers: bool,
    /// Decoded header bytes kept.
    header_bytes: usize,
}

impl MsgState {
    fn new(start_ts: u64, capture: usize) -> Self {
        Self {
            msg: Message {
                start_ns: start_ts,
                end_ns: start_ts,
                body: (capture > 0).then(Vec::new),
                ..Message::default()
            },
            saw_headers: false,
            header_bytes: 0,
        }
    }

    fn into_message(self) -> Message {
        let mut msg = self.msg;
        if !self.saw_headers {
            msg.headers_degraded = true;
        }
        msg
    }
}

/// An open stream.
#[derive(Debug, Default)]
struct StreamState {
    seq: u64,
    request: Option<MsgState>,
    response: Option<MsgState>,
    reset: Option<u32>,
    goaway: bool,
    /// Causes of the gaps that touched the stream.
    gaps: GapCauses,
}

/// Stream table and results of one connection.
#[derive(Debug)]
pub(super) struct Conn {
    capture: usize,
    /// By stream id. Fx hashing, not SipHash (~0.6k instructions per
    /// exchange, bench/instructions.sh): the peers choose the ids, but the
    /// table is bounded (`MAX_OPEN_STREAMS`, and `FINISHED_REMEMBERED` for
    /// `finished`), so ids made to collide cost at most a scan of it.
    streams: FxHashMap<u32, StreamState>,
    next_seq: u64,
    finished: FxHashSet<u32>,
    finished_order: VecDeque<u32>,
    pub(super) ready: Vec<Exchange>,
    pub(super) parse_errors: u64,
    goaway_seen: bool,
    /// Last client stream id the server will process (from the server's GOAWAY).
    client_limit: Option<u32>,
    /// Last pushed stream id the client will process (from the client's GOAWAY).
    server_limit: Option<u32>,
    /// Highest client stream id with request frames.
    max_client_stream: u32,
    /// Client streams whose response is complete but no request frame was
    /// seen; finished once a later client stream shows the request was lost.
    orphans: Vec<u32>,
    /// Decoded header bytes kept over all open streams.
    header_bytes: usize,
    /// Causes of the gaps that lost frame boundaries on each side (request,
    /// response): a stream missing that side's headers may have lost them there.
    side_gaps: [GapCauses; 2],
}

impl Conn {
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            capture: limits.max_body_capture,
            streams: FxHashMap::default(),
            next_seq: 0,
            finished: FxHashSet::default(),
            finished_order: VecDeque::new(),
            ready: Vec::new(),
            parse_errors: 0,
            goaway_seen: false,
            client_limit: None,
            server_limit: None,
            max_client_stream: 0,
            orphans: Vec::new(),
            header_bytes: 0,
            side_gaps: [GapCauses::NONE; 2],
        }
    }

    /// A gap (`causes`) touched stream `id`, if it is open.
    pub(super) fn flag(&mut self, id: u32, causes: GapCauses) {
        if let Some(st) = self.streams.get_mut(&id) {
            st.gaps |= causes;
        }
    }

    /// `side` lost its frame boundaries in a gap (`causes`): every open stream
    /// may have lost frames, and any stream whose headers on that side are
    /// missing may have lost them there.
    pub(super) fn lose_frames(&mut self, side: Side, causes: GapCauses) {
        for st in self.streams.values_mut() {
            st.gaps |= causes;
        }
        if let Some(g) = self.side_gaps.get_mut(side_index(side)) {
            *g |= causes;
        }
    }

    pub(super) fn is_open(&self, id: u32) -> bool {
        self.streams.contains_key(&id)
    }

    /// The message of `side` on stream `id`; with `create`, opens the stream
    /// and the message when needed (not for finished streams).
    fn msg(&mut self, side: Side, id: u32, create: bool, start_ts: u64) -> Option<&mut MsgState> {
        if id == 0 {
            return None;
        }
        if !self.streams.contains_key(&id) {
            if !create || self.finished.contains(&id) {
                return None;
            }
            if self.streams.len() >= MAX_OPEN_STREAMS {
                self.evict_oldest();
            }
            let refused = if is_client_stream(id) {
                self.client_limit.is_some_and(|l| id > l)
            } else {
                self.server_limit.is_some_and(|l| id > l)
            };
            let seq = self.next_seq;
            self.next_seq = self.next_seq.saturating_add(1);
            self.streams.insert(
                id,
                StreamState {
                    seq,
                    goaway: refused,
                    ..StreamState::default()
                },
            );
        }
        if create && side == Side::Request && is_client_stream(id) && id > self.max_client_stream {
            self.max_client_stream = id;
            self.reap_orphans();
        }
        let capture = self.capture;
        let st = self.streams.get_mut(&id)?;
        let slot = match side {
            Side::Request => &mut st.request,
            Side::Response => &mut st.response,
        };
        if slot.is_none() {
            if !create {
                return None;
            }
            *slot = Some(MsgState::new(start_ts, capture));
        }
        slot.as_mut()
    }

    /// Counts frame bytes of a stream side.
    pub(super) fn touch(
        &mut self,
        side: Side,
        id: u32,
        frame_ts: u64,
        ts: u64,
        bytes: u64,
        create: bool,
    ) {
        if let Some(m) = self.msg(side, id, create, frame_ts) {
            m.msg.wire_bytes = m.msg.wire_bytes.saturating_add(bytes);
            m.msg.end_ns = ts;
        }
    }

    /// DATA payload bytes.
    pub(super) fn body(&mut self, side: Side, id: u32, ts: u64, bytes: &[u8]) {
        let capture = self.capture;
        let Some(m) = self.msg(side, id, false, ts) else {
            return;
        };
        let n = bytes.len() as u64;
        let msg = &mut m.msg;
        msg.body_size = msg.body_size.saturating_add(n);
        msg.wire_bytes = msg.wire_bytes.saturating_add(n);
        msg.end_ns = ts;
        if let Some(body) = msg.body.as_mut().filter(|_| !msg.body_truncated) {
            let keep = capture.saturating_sub(body.len()).min(bytes.len());
            body.extend_from_slice(bytes.get(..keep).unwrap_or_default());
            if keep < bytes.len() {
                msg.body_truncated = true;
            }
        }
        note_cap(msg, capture);
    }

    /// DATA payload bytes lost in a gap.
    pub(super) fn lost_body(&mut self, side: Side, id: u32, ts: u64, n: u64) {
        if n == 0 {
            return;
        }
        let capture = self.capture;
        if let Some(m) = self.msg(side, id, false, ts) {
            m.msg.body_size = m.msg.body_size.saturating_add(n);
            m.msg.wire_bytes = m.msg.wire_bytes.saturating_add(n);
            m.msg.body_truncated = true;
            m.msg.end_ns = ts;
            note_cap(&mut m.msg, capture);
        }
    }

    /// DATA payload bytes skipped on purpose (the kernel did not copy them):
    /// counted into `body_size` and `wire_bytes` like received ones, flagging
    /// nothing. A message that captures a body does not have them in it, so
    /// its body is `body_truncated` (as when received past the capture
    /// limit) — never a kept body that silently differs from the one sent.
    pub(super) fn skipped_body(&mut self, side: Side, id: u32, ts: u64, n: u64) {
        if n == 0 {
            return;
        }
        let capture = self.capture;
        if let Some(m) = self.msg(side, id, false, ts) {
            let msg = &mut m.msg;
            msg.body_size = msg.body_size.saturating_add(n);
            msg.wire_bytes = msg.wire_bytes.saturating_add(n);
            msg.end_ns = ts;
            if msg.body.is_some() {
                msg.body_truncated = true;
            }
            note_cap(msg, capture);
        }
    }

    /// The message of `side` on stream `id` would still keep DATA payload
    /// bytes: it captures a body that is neither full nor cut short.
    pub(super) fn keeps_body(&self, side: Side, id: u32) -> bool {
        let Some(st) = self.streams.get(&id) else {
            return false;
        };
        let m = match side {
            Side::Request => st.request.as_ref(),
            Side::Response => st.response.as_ref(),
        };
        m.is_some_and(|m| {
            !m.msg.body_truncated && m.msg.body.as_ref().is_some_and(|b| b.len() < self.capture)
        })
    }

    /// A header block of the stream side could not be decoded.
    pub(super) fn degrade(&mut self, side: Side, id: u32) {
        if let Some(m) = self.msg(side, id, false, 0) {
            m.msg.headers_degraded = true;
            m.saw_headers = true;
        }
    }

    /// A decoded header block of a stream side.
    pub(super) fn apply_headers(
        &mut self,
        side: Side,
        id: u32,
        fields: Vec<Header>,
        degraded: bool,
        end_stream: bool,
        ts: u64,
    ) {
        let budget = MAX_CONN_HEADER_BYTES.saturating_sub(self.header_bytes);
        let Some(m) = self.msg(side, id, true, ts) else {
            return;
        };
        m.msg.end_ns = ts;
        if degraded {
            m.msg.headers_degraded = true;
        }
        let interim = side == Side::Response
            && !m.saw_headers
            && !end_stream
            && fields
                .iter()
                .any(|f| f.name == ":status" && f.value.len() == 3 && f.value.starts_with('1'));
        let mut added = 0usize;
        if !interim {
            let first = !m.saw_headers;
            m.saw_headers = true;
            let mut kept = Vec::new();
            for f in fields {
                let size = f.name.len().saturating_add(f.value.len());
                let count = m.msg.headers.len() + m.msg.trailers.len() + kept.len();
                if count >= MAX_MESSAGE_FIELDS
                    || m.header_bytes.saturating_add(added).saturating_add(size)
                        > MAX_MESSAGE_HEADER_BYTES
                    || added.saturating_add(size) > budget
                {
                    m.msg.headers_degraded = true;
                    continue;
                }
                added = added.saturating_add(size);
                kept.push(f);
            }
            m.header_bytes = m.header_bytes.saturating_add(added);
            if first {
                m.msg.headers = kept;
            } else {
                m.msg.trailers.extend(kept);
            }
        }
        if end_stream {
            m.msg.complete = true;
        }
        self.header_bytes = self.header_bytes.saturating_add(added);
        if end_stream {
            self.check_done(id);
        }
    }

    /// A PUSH_PROMISE: opens the promised stream with the promised request.
    pub(super) fn promise(
        &mut self,
        promised: u32,
        fields: Vec<Header>,
        degraded: bool,
        start_ts: u64,
        ts: u64,
        wire: u64,
    ) {
        if promised == 0 || is_client_stream(promised) || self.is_open(promised) {
            return;
        }
        self.apply_headers(Side::Request, promised, fields, degraded, true, ts);
        if let Some(m) = self.msg(Side::Request, promised, false, start_ts) {
            m.msg.start_ns = start_ts;
            m.msg.wire_bytes = m.msg.wire_bytes.saturating_add(wire);
        }
    }

    /// END_STREAM on a stream side.
    pub(super) fn end_stream(&mut self, side: Side, id: u32, ts: u64) {
        if let Some(m) = self.msg(side, id, false, ts) {
            m.msg.complete = true;
            m.msg.end_ns = ts;
            self.check_done(id);
        }
    }

    /// RST_STREAM from either side ends the stream.
    pub(super) fn reset(
        &mut self,
        side: Side,
        id: u32,
        code: u32,
        frame_ts: u64,
        ts: u64,
        wire: u64,
    ) {
        if !self.is_open(id) {
            return;
        }
        self.touch(side, id, frame_ts, ts, wire, false);
        if let Some(st) = self.streams.get_mut(&id) {
            st.reset = Some(code);
        }
        self.finish(id);
    }

    /// GOAWAY sent by `side`: streams opened by the other side above `last` are refused.
    pub(super) fn goaway(&mut self, side: Side, last: u32) {
        self.goaway_seen = true;
        let client_streams = side == Side::Response;
        let limit = if client_streams {
            &mut self.client_limit
        } else {
            &mut self.server_limit
        };
        *limit = Some(limit.map_or(last, |l| l.min(last)));
        let mut refused: Vec<(u64, u32)> = self
            .streams
            .iter()
            .filter(|(id, _)| is_client_stream(**id) == client_streams && **id > last)
            .map(|(id, st)| (st.seq, *id))
            .collect();
        refused.sort_unstable();
        for (_, id) in refused {
            if let Some(st) = self.streams.get_mut(&id) {
                st.goaway = true;
            }
            self.finish(id);
        }
    }

    /// Finishes the stream when both sides are complete, or when its response
    /// is complete and its request can no longer arrive.
    fn check_done(&mut self, id: u32) {
        let Some(st) = self.streams.get(&id) else {
            return;
        };
        let req_done = st.request.as_ref().is_some_and(|m| m.msg.complete);
        let resp_done = st.response.as_ref().is_some_and(|m| m.msg.complete);
        let request_lost =
            st.request.is_none() && (!is_client_stream(id) || self.max_client_stream > id);
        if resp_done && (req_done || request_lost) {
            self.finish(id);
        } else if resp_done && st.request.is_none() && !self.orphans.contains(&id) {
            self.orphans.push(id);
        }
    }

    /// Finishes orphans below the highest client stream id seen.
    fn reap_orphans(&mut self) {
        let max = self.max_client_stream;
        let mut i = 0;
        while let Some(&id) = self.orphans.get(i) {
            if id < max {
                self.orphans.swap_remove(i);
                let still_orphan = self.streams.get(&id).is_some_and(|st| st.request.is_none());
                if still_orphan {
                    self.finish(id);
                }
            } else {
                i += 1;
            }
        }
    }

    fn finish(&mut self, id: u32) {
        let Some(st) = self.streams.remove(&id) else {
            return;
        };
        self.orphans.retain(|o| *o != id);
        for m in [&st.request, &st.response].into_iter().flatten() {
            self.header_bytes = self.header_bytes.saturating_sub(m.header_bytes);
        }
        if self.finished.insert(id) {
            self.finished_order.push_back(id);
            while self.finished_order.len() > FINISHED_REMEMBERED {
                if let Some(old) = self.finished_order.pop_front() {
                    self.finished.remove(&old);
                }
            }
        }
        self.ready.push(exchange(id, st, self.side_gaps));
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .streams
            .iter()
            .min_by_key(|(_, st)| st.seq)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.finish(id);
        }
    }

    pub(super) fn close_all(&mut self) {
        let mut open: Vec<(u64, u32)> = self.streams.iter().map(|(id, st)| (st.seq, *id)).collect();
        open.sort_unstable();
        for (_, id) in open {
            if self.goaway_seen {
                if let Some(st) = self.streams.get_mut(&id) {
                    st.goaway = true;
                }
            }
            self.finish(id);
        }
    }

    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.header_bytes
            + self.streams.len() * mem::size_of::<StreamState>()
            + self
                .streams
                .values()
                .flat_map(|st| [&st.request, &st.response])
                .flatten()
                .map(|m| m.msg.body.as_ref().map_or(0, Vec::capacity))
                .sum::<usize>()
    }
}

/// Index of a side in per-side arrays.
fn side_index(side: Side) -> usize {
    match side {
        Side::Request => 0,
        Side::Response => 1,
    }
}

/// Notes that the capture limit cut the body short.
fn note_cap(msg: &mut Message, capture: usize) {
    if msg.body.is_some() && msg.body_size > capture as u64 {
        msg.body_capped = true;
    }
}

/// Builds the exchange of a finished stream.
fn exchange(id: u32, st: StreamState, side_gaps: [GapCauses; 2]) -> Exchange {
    let mut gaps = st.gaps;
    for (side, m) in [(Side::Request, &st.request), (Side::Response, &st.response)] {
        if m.as_ref().is_none_or(|m| !m.saw_headers) {
            gaps |= side_gaps.get(side_index(side)).copied().unwrap_or_default();
        }
    }
    let request = st.request.map(MsgState::into_message);
    let response = st.response.map(MsgState::into_message);
    let complete = |m: &Option<Message>| m.as_ref().is_some_and(|m| m.complete);
    let partial = !(complete(&request) && complete(&response));
    let grpc = grpc_of(request.as_ref(), response.as_ref());
    Exchange {
        stream_id: id,
        request,
        response,
        reset: st.reset,
        goaway: st.goaway,
        partial,
        gap: !gaps.is_empty(),
        gaps,
        grpc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::frame::{FLAG_END_HEADERS, PUSH_PROMISE, WINDOW_UPDATE};
    use crate::http2::testutil::*;
    use crate::http2::Http2Stream;
    use Side::{Request as Req, Response as Resp};

    #[test]
    fn fifty_concurrent_interleaved_streams() {
        let mut h2 = Http2Stream::new(Limits {
            max_body_capture: 1024,
            ..Limits::default()
        });
        open(&mut h2);
        let mut c = Vec::new();
        for i in 0..50u32 {
            let post = i % 2 == 1;
            let enc = Enc::default().request(if post { "POST" } else { "GET" }, &format!("/s/{i}"));
            // The first request indexes x-client; the others reference it.
            let enc = if i == 0 {
                enc.add("x-client", "bench")
            } else {
                enc.idx(62)
            };
            c.extend(headers(2 * i + 1, !post, &enc.done()));
        }
        for part in 0..2 {
            for i in (1..50u32).step_by(2) {
                c.extend(data(
                    2 * i + 1,
                    part == 1,
                    format!("p{part}-{i};").as_bytes(),
                ));
            }
        }
        h2.push(Req, 10, &c);
        assert!(h2.drain().is_empty());
        let mut s = Vec::new();
        for i in (0..50u32).rev() {
            let block = Enc::default()
                .status(200)
                .add_named(31, "text/plain")
                .done();
            s.extend(headers(2 * i + 1, false, &block));
        }
        for round in 0..3 {
            for i in 0..50u32 {
                s.extend(data(
                    2 * i + 1,
                    round == 2,
                    format!("r{round}s{i}|").as_bytes(),
                ));
            }
        }
        // Split the response side at odd places.
        for (k, piece) in s.chunks(37).enumerate() {
            h2.push(Resp, 20 + k as u64, piece);
        }
        let out = h2.drain();
        assert_eq!(h2.parse_errors(), 0);
        assert_eq!(out.len(), 50);
        for (i, e) in out.iter().enumerate() {
            assert_eq!(e.stream_id, 2 * i as u32 + 1, "completion order");
            assert_eq!(req(e).path(), Some(format!("/s/{i}").as_str()));
            assert_eq!(req(e).header("x-client"), Some("bench"));
            let body = format!("r0s{i}|r1s{i}|r2s{i}|");
            assert_eq!(resp(e).body.as_deref(), Some(body.as_bytes()));
            assert_eq!(resp(e).header("content-type"), Some("text/plain"));
            if i % 2 == 1 {
                assert_eq!(
                    req(e).body.as_deref(),
                    Some(format!("p0-{i};p1-{i};").as_bytes())
                );
            }
            assert!(!e.partial && !req(e).headers_degraded && !resp(e).headers_degraded);
        }
        assert!(h2.close(99).is_empty());
    }

    #[test]
    fn rst_stream_reports_the_code_and_ignores_late_frames() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        h2.push(
            Req,
            10,
            &headers(1, true, &Enc::default().request("GET", "/a").done()),
        );
        h2.push(Resp, 11, &rst(1, 7)); // REFUSED_STREAM
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].reset, Some(7));
        assert!(out[0].partial && out[0].response.is_none());
        // Late frames of the reset stream do not reopen it.
        h2.push(Resp, 12, &data(1, true, b"late"));
        h2.push(Req, 13, &frame(WINDOW_UPDATE, 0, 1, &100u32.to_be_bytes()));
        h2.push(Req, 13, &rst(1, 8));
        // A client reset after the response headers.
        h2.push(
            Req,
            14,
            &headers(3, true, &Enc::default().request("GET", "/b").done()),
        );
        h2.push(
            Resp,
            15,
            &headers(3, false, &Enc::default().status(200).done()),
        );
        h2.push(Req, 16, &rst(3, 8));
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].stream_id, out[0].reset), (3, Some(8)));
        assert_eq!(
            req(&out[0]).wire_bytes,
            9 + Enc::default().request("GET", "/b").done().len() as u64 + 13
        );
        assert_eq!(resp(&out[0]).status(), Some(200));
        assert!(h2.close(20).is_empty());
        assert_eq!(h2.parse_errors(), 0);
    }

    #[test]
    fn goaway_refuses_streams_above_the_last_id() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        for id in [1, 3, 5] {
            h2.push(
                Req,
                10,
                &headers(
                    id,
                    true,
                    &Enc::default().request("GET", &format!("/{id}")).done(),
                ),
            );
        }
        // The client's own GOAWAY (about pushed streams) refuses nothing.
        h2.push(Req, 11, &goaway(0, 0));
        assert!(h2.drain().is_empty());
        h2.push(Resp, 12, &goaway(3, 0));
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].stream_id, 5);
        assert!(out[0].goaway && out[0].partial && out[0].response.is_none());
        for id in [1, 3] {
            h2.push(
                Resp,
                13,
                &headers(id, true, &Enc::default().status(404).done()),
            );
        }
        let out = h2.drain();
        assert_eq!(out.len(), 2);
        assert!(out
            .iter()
            .all(|e| !e.goaway && !e.partial && resp(e).status() == Some(404)));
        // A stream opened after the GOAWAY, still open at close.
        h2.push(
            Req,
            14,
            &headers(7, true, &Enc::default().request("GET", "/7").done()),
        );
        let out = h2.close(15);
        assert_eq!(out.len(), 1);
        assert!(out[0].goaway && out[0].partial);
    }

    #[test]
    fn push_promise_opens_the_promised_stream() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        h2.push(
            Req,
            10,
            &headers(1, true, &Enc::default().request("GET", "/page").done()),
        );
        let mut p = 2u32.to_be_bytes().to_vec();
        p.extend(
            Enc::default()
                .request("GET", "/style.css")
                .add("x-pushed", "yes")
                .done(),
        );
        h2.push(Resp, 11, &frame(PUSH_PROMISE, FLAG_END_HEADERS, 1, &p));
        h2.push(
            Resp,
            12,
            &headers(1, true, &Enc::default().status(200).idx(62).done()),
        );
        h2.push(
            Resp,
            13,
            &headers(2, false, &Enc::default().status(200).done()),
        );
        h2.push(Resp, 14, &data(2, true, b"body{}"));
        let out = h2.drain();
        let ids: Vec<u32> = out.iter().map(|e| e.stream_id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(
            resp(&out[0]).header("x-pushed"),
            Some("yes"),
            "HPACK kept in sync"
        );
        let pushed = &out[1];
        assert_eq!(req(pushed).path(), Some("/style.css"));
        assert_eq!(req(pushed).wire_bytes, 9 + p.len() as u64);
        assert_eq!(resp(pushed).body_size, 6);
        assert!(!pushed.partial);
        assert_eq!(h2.parse_errors(), 0);
    }

    #[test]
    fn interim_responses_are_dropped() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        h2.push(
            Req,
            10,
            &headers(
                1,
                false,
                &Enc::default()
                    .request("POST", "/up")
                    .lit("expect", "100-continue")
                    .done(),
            ),
        );
        h2.push(
            Resp,
            11,
            &headers(1, false, &Enc::default().lit(":status", "100").done()),
        );
        h2.push(Req, 12, &data(1, true, b"abc"));
        h2.push(
            Resp,
            13,
            &headers(1, true, &Enc::default().status(404).done()),
        );
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(resp(&out[0]).status(), Some(404));
        assert!(resp(&out[0]).trailers.is_empty());
        assert_eq!(resp(&out[0]).start_ns, 11);
    }

    #[test]
    fn open_streams_are_bounded() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        let mut evicted = 0;
        for i in 0..1100u32 {
            h2.push(
                Req,
                10,
                &headers(
                    2 * i + 1,
                    false,
                    &Enc::default().request("POST", "/x").done(),
                ),
            );
            evicted += h2.drain().len();
        }
        assert_eq!(evicted, 1100 - MAX_OPEN_STREAMS);
        let rest = h2.close(11);
        assert_eq!(rest.len(), MAX_OPEN_STREAMS);
        assert!(rest.iter().all(|e| e.partial));
    }
}
