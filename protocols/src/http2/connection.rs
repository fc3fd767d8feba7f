//! The parser of one HTTP/2 connection: both directions fed in wire order, exchanges handed out as their streams finish.

use std::mem;

use super::message::Exchange;
use super::side::{Mode, SideParser};
use super::streams::Conn;
use super::{GapCause, GapCauses, Side};
use crate::names::StaticNames;

/// Consecutive zero-progress steps tolerated before a byte is skipped.
const MAX_STALLS: u8 = 8;

/// Parser limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// DATA payload bytes kept per message (0 = keep no body bytes). Capture
    /// stops at the first gap, so the kept bytes are always a contiguous prefix.
    pub max_body_capture: usize,
    /// Header fields kept on the parsed messages: `None` keeps all; `Some`
    /// keeps those named (case-insensitively), the pseudo-header fields and
    /// those the parser reads ([`PARSER_HEADERS`]). The others' values are
    /// not decoded unless the dynamic table needs them. Default `None`.
    pub keep_headers: Option<StaticNames>,
}

/// Header fields the HTTP/2 parser itself reads (gRPC detection and status,
/// the authority's fallback): always kept, as are the pseudo-header fields.
pub const PARSER_HEADERS: StaticNames =
    StaticNames::new(&["content-type", "grpc-status", "grpc-message", "host"]);

/// Parser for both directions of one HTTP/2 connection.
///
/// Feed each side's bytes in wire order with [`Http2Stream::push`]; bytes lost
/// by the capture are reported with [`Http2Stream::gap`], DATA payload bytes
/// the kernel did not copy on purpose (as [`Http2Stream::skippable`] allows)
/// with [`Http2Stream::skip`]. Finished exchanges
/// are taken with [`Http2Stream::drain`], the rest with [`Http2Stream::close`].
/// SETTINGS sent by one side configure the parser of the other side (the
/// server's SETTINGS_HEADER_TABLE_SIZE bounds the HPACK table of the request
/// side, and vice versa).
///
/// Each side is parsed frame by frame (any split of the input gives the same
/// result), header blocks are decoded by the built-in HPACK decoder (RFC 7541,
/// one per direction), and frames are grouped by stream into [`Exchange`]s.
/// A connection joined after its start, or a side that lost bytes outside a
/// DATA payload, resynchronises on the first two consecutive plausible frame
/// headers; its HPACK state is then partly unknown, and header blocks that
/// reference unknown table entries are reported as
/// [`Message::headers_degraded`](super::Message::headers_degraded) instead of
/// failing the connection.
#[derive(Debug)]
pub struct Http2Stream {
    request: SideParser,
    response: SideParser,
    conn: Conn,
    closed: bool,
}

impl Http2Stream {
    /// Creates a parser for a new connection.
    pub fn new(limits: Limits) -> Self {
        Self {
            request: SideParser::new(Side::Request, limits.keep_headers),
            response: SideParser::new(Side::Response, limits.keep_headers),
            conn: Conn::new(limits),
            closed: false,
        }
    }

    /// Feed bytes of one side in wire order; `ts_ns` = kernel timestamp of the capture event.
    ///
    /// The request side may start with [`PREFACE`](super::PREFACE) (connection
    /// seen from its start) or anywhere in the byte stream (joined mid-stream):
    /// frames are then parsed from the first byte that starts two consecutive
    /// plausible frame headers. Bytes are ignored after [`Http2Stream::close`].
    pub fn push(&mut self, side: Side, ts_ns: u64, data: &[u8]) {
        if self.closed {
            return;
        }
        let (me, peer) = match side {
            Side::Request => (&mut self.request, &mut self.response),
            Side::Response => (&mut self.response, &mut self.request),
        };
        let conn = &mut self.conn;
        let mut replay: Vec<u8> = Vec::new();
        let mut replay_pos = 0usize;
        let mut data_pos = 0usize;
        let mut stalls = 0u8;
        loop {
            let (from_replay, chunk) = match replay.get(replay_pos..).filter(|r| !r.is_empty()) {
                Some(r) => (true, r),
                None => match data.get(data_pos..).filter(|r| !r.is_empty()) {
                    Some(r) => (false, r),
                    None => break,
                },
            };
            let step = me.step(peer, conn, ts_ns, chunk);
            if me.joined && peer.mode == Mode::First {
                peer.peer_joined = true;
            }
            let mut used = step.used.min(chunk.len());
            if used == 0 && step.replay.is_none() {
                stalls = stalls.saturating_add(1);
                if stalls > MAX_STALLS {
                    stalls = 0;
                    used = 1;
                }
            } else {
                stalls = 0;
            }
            if from_replay {
                replay_pos = replay_pos.saturating_add(used);
            } else {
                data_pos = data_pos.saturating_add(used);
            }
            if let Some(mut again) = step.replay {
                again.extend_from_slice(replay.get(replay_pos..).unwrap_or_default());
                replay = again;
                replay_pos = 0;
            }
        }
    }

    /// `len` bytes of this side were lost before `ts_ns`, for `cause`.
    ///
    /// Inside a DATA payload they are counted into `body_size` and `wire_bytes`
    /// (the body capture stops there) and the stream carries `cause`. Anywhere
    /// else the frame they fall in is lost (its stream carries `cause`), a
    /// parse error is counted, and when they run past the end of the current
    /// frame the side resynchronises on the following bytes (two consecutive
    /// plausible frame headers): every stream open then carries `cause`, as
    /// does every stream later missing this side's headers, and the HPACK
    /// state is unreliable — header blocks that reference entries it does
    /// not know are reported as
    /// [`Message::headers_degraded`](super::Message::headers_degraded),
    /// never guessed.
    pub fn gap(&mut self, side: Side, ts_ns: u64, len: u64, cause: GapCause) {
        if self.closed || len == 0 {
            return;
        }
        let me = match side {
            Side::Request => &mut self.request,
            Side::Response => &mut self.response,
        };
        me.gap(&mut self.conn, ts_ns, len, GapCauses::from(cause));
        if side == Side::Request && self.request.joined && self.response.mode == Mode::First {
            self.response.peer_joined = true;
        }
    }

    /// Bytes of `side`, after those pushed so far, that are certainly DATA
    /// payload the parser does not keep, so the kernel need not copy them:
    /// the rest of the payload of the unpadded DATA frame the pushed bytes
    /// end in, once its message keeps no more body (the body capture limit is
    /// 0, or its kept body is full or cut short). 0 anywhere else: in a frame
    /// header or any other frame, in a padded DATA frame, while resynchronising,
    /// or after [`Http2Stream::close`]. Never past the end of the frame: the
    /// next frame header is always needed.
    pub fn skippable(&self, side: Side) -> u64 {
        if self.closed {
            return 0;
        }
        match side {
            Side::Request => self.request.skippable(&self.conn),
            Side::Response => self.response.skippable(&self.conn),
        }
    }

    /// `len` bytes of `side` were skipped on purpose at `ts_ns` (the kernel
    /// did not copy them, meaning them as the rest of the payload of the DATA
    /// frame in progress). Inside the payload of an unpadded DATA frame they
    /// are counted into `body_size` and `wire_bytes` like received bytes,
    /// flagging nothing (a message that captures a body is marked
    /// `body_truncated`); when they complete the payload the frame ends, and
    /// its stream side with END_STREAM. What does not fit there (bytes past
    /// the payload, or a skip anywhere else: a frame header, another frame, a
    /// padded DATA frame, a side resynchronising) is a gap of cause
    /// [`GapCause::SkippedOutsideBody`] (see [`Http2Stream::gap`]): frame
    /// boundaries are then lost and counted, never bytes taken for a frame
    /// they may not be.
    pub fn skip(&mut self, side: Side, ts_ns: u64, len: u64) {
        if self.closed || len == 0 {
            return;
        }
        let me = match side {
            Side::Request => &mut self.request,
            Side::Response => &mut self.response,
        };
        let rest = me.skip(&mut self.conn, ts_ns, len);
        if rest > 0 {
            self.gap(side, ts_ns, rest, GapCause::SkippedOutsideBody);
        }
    }

    /// An unknown number of bytes of `side` may have been lost at its end:
    /// every stream still open carries `cause`.
    pub fn tail_lost(&mut self, side: Side, _ts_ns: u64, cause: GapCause) {
        if !self.closed {
            self.conn.lose_frames(side, GapCauses::from(cause));
        }
    }

    /// Exchanges finished so far (both sides complete, or reset, or refused by
    /// GOAWAY, or given up to stay within the stream limit), in completion order.
    pub fn drain(&mut self) -> Vec<Exchange> {
        mem::take(&mut self.conn.ready)
    }

    /// [`Self::drain`] into `out`, as `E`s; the list of completed exchanges
    /// keeps its room.
    pub fn drain_into<E: From<Exchange>>(&mut self, out: &mut Vec<E>) {
        out.extend(self.conn.ready.drain(..).map(E::from));
    }

    /// The connection closed: returns the exchanges not yet drained, then every
    /// stream still open as a partial exchange (in the order streams were
    /// first seen; `goaway` is set when a GOAWAY was seen). Later input is
    /// ignored. `end_ns` of unfinished messages stays that of their last frame,
    /// so `_ts_ns` is not used.
    pub fn close(&mut self, _ts_ns: u64) -> Vec<Exchange> {
        if !self.closed {
            self.closed = true;
            self.conn.close_all();
        }
        self.drain()
    }

    /// Number of parse errors (malformed or lost frames, desyncs, undecodable
    /// header blocks while the HPACK state was reliable) seen so far.
    pub fn parse_errors(&self) -> u64 {
        self.conn.parse_errors
    }

    /// Bytes held in buffers and tables (capacity), for memory-bound tests.
    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.request.buffered() + self.response.buffered() + self.conn.buffered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::frame::{DATA, GOAWAY, HEADERS, PING, SETTINGS};
    use crate::http2::testutil::*;
    use crate::http2::{Grpc, Message, PREFACE};
    use crate::stream::GapCause;
    use Side::{Request as Req, Response as Resp};

    /// One recorded connection: both directions and the relay order of chunks.
    struct Fixture {
        req: &'static [u8],
        resp: &'static [u8],
        order: &'static str,
    }

    macro_rules! fixture {
        ($name:literal) => {
            Fixture {
                req: include_bytes!(concat!("../../testdata/http2/", $name, ".req")),
                resp: include_bytes!(concat!("../../testdata/http2/", $name, ".resp")),
                order: include_str!(concat!("../../testdata/http2/", $name, ".order")),
            }
        };
    }

    const CONCURRENT: Fixture = fixture!("h2c_concurrent");
    const DYNAMIC: Fixture = fixture!("h2c_dynamic_table");
    const GRPC: Fixture = fixture!("h2c_grpc");
    const CURL_GET: Fixture = fixture!("curl_get");
    const CURL_POST: Fixture = fixture!("curl_post");
    const NGINX_GET: Fixture = fixture!("nginx_curl_get");

    fn all_fixtures() -> [(&'static str, &'static Fixture); 6] {
        [
            ("h2c_concurrent", &CONCURRENT),
            ("h2c_dynamic_table", &DYNAMIC),
            ("h2c_grpc", &GRPC),
            ("curl_get", &CURL_GET),
            ("curl_post", &CURL_POST),
            ("nginx_curl_get", &NGINX_GET),
        ]
    }

    /// The chunks of a fixture in relay order.
    fn chunks(f: &Fixture) -> Vec<(Side, &'static [u8])> {
        let (mut req, mut resp) = (f.req, f.resp);
        let mut out = Vec::new();
        for line in f.order.lines().filter(|l| !l.trim().is_empty()) {
            let (tag, len) = line.split_once(' ').expect("order line");
            let len: usize = len.trim().parse().expect("order length");
            let src = if tag == "C" { &mut req } else { &mut resp };
            let (head, tail) = src.split_at(len);
            *src = tail;
            out.push((if tag == "C" { Req } else { Resp }, head));
        }
        assert!(
            req.is_empty() && resp.is_empty(),
            "order file covers the fixture"
        );
        out
    }

    /// What a run produced: exchanges (drained, then closed) and parse errors.
    #[derive(Debug, PartialEq)]
    struct Run {
        exchanges: Vec<Exchange>,
        errors: u64,
    }

    /// Pushes (side, ts, bytes) events, draining after each, then closes.
    fn run_events<'a>(
        events: impl IntoIterator<Item = (Side, u64, &'a [u8])>,
        limits: Limits,
    ) -> Run {
        let mut h2 = Http2Stream::new(limits);
        let mut exchanges = Vec::new();
        let mut last = 0;
        for (side, ts, bytes) in events {
            h2.push(side, ts, bytes);
            exchanges.extend(h2.drain());
            last = ts;
        }
        exchanges.extend(h2.close(last + 1));
        Run {
            exchanges,
            errors: h2.parse_errors(),
        }
    }

    /// Replays a fixture chunk by chunk; chunk i has timestamp (i + 1) * 1000.
    fn replay(f: &Fixture) -> Run {
        replay_with(f, Limits::default())
    }

    fn replay_with(f: &Fixture, limits: Limits) -> Run {
        let c = chunks(f);
        run_events(
            c.iter().enumerate().map(|(i, (s, b))| (*s, ts_of(i), *b)),
            limits,
        )
    }

    fn ts_of(i: usize) -> u64 {
        (i as u64 + 1) * 1000
    }

    fn by_id(r: &Run, id: u32) -> &Exchange {
        r.exchanges
            .iter()
            .find(|e| e.stream_id == id)
            .expect("stream")
    }

    #[test]
    fn concurrent_fixture_get_post_trailers_and_reset() {
        let r = replay_with(
            &CONCURRENT,
            Limits {
                max_body_capture: 4096,
                ..Limits::default()
            },
        );
        assert_eq!(r.errors, 0);
        let ids: Vec<u32> = r.exchanges.iter().map(|e| e.stream_id).collect();
        assert_eq!(ids, [1, 5, 3, 7], "completion order");

        let e = by_id(&r, 1);
        let q = req(e);
        assert_eq!(q.method(), Some("GET"));
        assert_eq!(q.path(), Some("/first"));
        assert_eq!(q.authority(), Some("127.0.0.1"));
        assert_eq!(q.scheme(), Some("http"));
        assert_eq!(q.header("user-agent"), Some("h2-fixture/1.0"));
        assert!(q.complete && !q.headers_degraded);
        assert_eq!((q.start_ns, q.end_ns), (1000, 1000));
        let p = resp(e);
        assert_eq!(p.status(), Some(200));
        assert_eq!(p.header("server"), Some("fixture-h2/1.0"));
        assert_eq!(p.body.as_deref(), Some(&b"you asked for /first\n"[..]));
        assert_eq!(p.body_size, 21);
        assert_eq!((p.start_ns, p.end_ns), (3000, 3000));
        assert!(!e.partial && e.reset.is_none() && !e.goaway && e.grpc.is_none());

        // POST: HEADERS, a padded DATA frame (1000 bytes + 16 + pad length), a plain one (2000).
        let e = by_id(&r, 3);
        let q = req(e);
        assert_eq!(q.method(), Some("POST"));
        assert_eq!(q.path(), Some("/upload"));
        assert_eq!(q.header("content-length"), Some("3000"));
        assert_eq!(q.body_size, 3000);
        let sent: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(q.body.as_deref(), Some(&sent[..]));
        assert!(!q.body_truncated);
        assert_eq!(q.wire_bytes, (9 + 34) + (9 + 1 + 1000 + 16) + (9 + 2000));
        assert_eq!(resp(e).status(), Some(201));
        assert_eq!(resp(e).body.as_deref(), Some(&b"got 3000 bytes\n"[..]));

        // Trailers after two DATA frames, the first one padded.
        let e = by_id(&r, 5);
        let p = resp(e);
        assert_eq!(p.header("trailer"), Some("x-checksum"));
        assert_eq!(p.trailers, vec![hdr("x-checksum", "1234")]);
        assert_eq!(p.header("x-checksum"), Some("1234"));
        assert_eq!(p.body.as_deref(), Some(&b"first part, second part\n"[..]));
        assert_eq!(p.body_size, 24);
        assert!(!e.partial);

        // Reset by the client (CANCEL) after the response headers.
        let e = by_id(&r, 7);
        assert_eq!(e.reset, Some(8));
        assert!(e.partial && !e.goaway);
        assert_eq!(req(e).path(), Some("/slow"));
        assert_eq!(resp(e).status(), Some(200));
        assert!(!resp(e).complete);
        assert_eq!(req(e).end_ns, 5000, "the RST_STREAM chunk");
    }

    #[test]
    fn body_capture_limit_truncates() {
        let r = replay_with(
            &CONCURRENT,
            Limits {
                max_body_capture: 10,
                ..Limits::default()
            },
        );
        let q = req(by_id(&r, 3));
        assert_eq!(q.body.as_ref().map(Vec::len), Some(10));
        assert!(q.body_truncated);
        assert_eq!(q.body_size, 3000);
        let r = replay(&CONCURRENT);
        let q = req(by_id(&r, 3));
        assert_eq!((q.body.as_ref(), q.body_truncated), (None, false));
    }

    #[test]
    fn dynamic_table_fixture_decodes_every_request() {
        let r = replay(&DYNAMIC);
        assert_eq!(r.errors, 0);
        assert_eq!(r.exchanges.len(), 12);
        let cookie = format!("session={}", "abcdef0123456789".repeat(8));
        for (i, e) in r.exchanges.iter().enumerate() {
            assert_eq!(e.stream_id, 1 + 2 * i as u32);
            let q = req(e);
            let path = format!("/item/{i}");
            assert_eq!(q.path(), Some(path.as_str()));
            assert_eq!(q.method(), Some("GET"));
            assert_eq!(
                q.header("x-request-id"),
                Some(format!("req-{i:04}").as_str())
            );
            assert_eq!(q.header("cookie"), Some(cookie.as_str()));
            assert_eq!(q.header("x-tenant"), Some("tenant-alpha"));
            assert_eq!(
                q.header("user-agent"),
                Some("h2-fixture/1.0 (dynamic table)")
            );
            assert!(!q.headers_degraded);
            let p = resp(e);
            assert_eq!(p.status(), Some(200));
            assert_eq!(p.header("server"), Some("fixture-h2/1.0"));
            assert_eq!(p.body_size, format!("you asked for {path}\n").len() as u64);
            assert!(!e.partial);
        }
        // Requests 1 to 5 reference the dynamic table (8192 bytes, allowed by the
        // server's second SETTINGS frame); after the server lowered it to 256 the
        // client sends literals again.
        let wire: Vec<u64> = r.exchanges.iter().map(|e| req(e).wire_bytes).collect();
        assert!(wire[1..6].iter().all(|w| *w < 60), "{wire:?}");
        assert!(wire[6..].iter().all(|w| *w > 150), "{wire:?}");
    }

    #[test]
    fn grpc_fixture_unary_and_trailers_only() {
        let r = replay(&GRPC);
        assert_eq!(r.errors, 0);
        assert_eq!(r.exchanges.len(), 2);
        let e = by_id(&r, 1);
        assert_eq!(
            e.grpc,
            Some(Grpc {
                service: "helloworld.Greeter".into(),
                method: "SayHello".into(),
                status: Some(0),
                message: Some(String::new()),
            })
        );
        assert_eq!(req(e).body_size, 12);
        assert_eq!(resp(e).body_size, 18);
        let e = by_id(&r, 3);
        assert_eq!(
            e.grpc,
            Some(Grpc {
                service: "helloworld.Greeter".into(),
                method: "Missing".into(),
                status: Some(12),
                message: Some("unknown method".into()),
            })
        );
        assert!(resp(e).trailers.is_empty(), "trailers-only response");
        assert!(!e.partial);
    }

    #[test]
    fn curl_and_nginx_fixtures() {
        let r = replay(&CURL_GET);
        assert_eq!((r.errors, r.exchanges.len()), (0, 1));
        let e = &r.exchanges[0];
        assert_eq!(req(e).method(), Some("GET"));
        assert_eq!(req(e).path(), Some("/index?x=1"));
        assert!(req(e)
            .authority()
            .is_some_and(|a| a.starts_with("127.0.0.1:")));
        assert_eq!(req(e).header("user-agent"), Some("curl/7.88.1"));
        assert_eq!(req(e).header("accept"), Some("*/*"));
        assert_eq!(resp(e).status(), Some(200));
        assert_eq!(resp(e).body_size, 25);
        assert!(!e.partial);

        let r = replay(&CURL_POST);
        assert_eq!((r.errors, r.exchanges.len()), (0, 1));
        let e = &r.exchanges[0];
        assert_eq!(req(e).method(), Some("POST"));
        assert_eq!(req(e).path(), Some("/form"));
        assert_eq!(
            req(e).header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(req(e).body_size, 22);
        assert_eq!(resp(e).status(), Some(201));
        assert_eq!(resp(e).body_size, 13);

        let r = replay(&NGINX_GET);
        assert_eq!((r.errors, r.exchanges.len()), (0, 1));
        let e = &r.exchanges[0];
        assert_eq!(req(e).path(), Some("/index.html"));
        assert_eq!(req(e).header("accept-language"), Some("en"));
        assert_eq!(resp(e).status(), Some(200));
        assert_eq!(resp(e).header("server"), Some("nginx/1.22.1"));
        assert_eq!(resp(e).header("content-length"), Some("1107"));
        assert_eq!(resp(e).body_size, 1107);
        assert!(!e.partial);
    }

    #[test]
    fn every_split_and_one_byte_pushes_give_the_same_result() {
        let limits = Limits {
            max_body_capture: 64,
            ..Limits::default()
        };
        for (name, f) in all_fixtures() {
            let base = replay_with(f, limits);
            let c = chunks(f);
            let single = run_events(
                c.iter()
                    .enumerate()
                    .flat_map(|(i, (s, b))| b.chunks(1).map(move |x| (*s, ts_of(i), x))),
                limits,
            );
            assert_eq!(single, base, "{name}: one-byte pushes");
            for (ci, (_, bytes)) in c.iter().enumerate() {
                for k in 1..bytes.len() {
                    let events = c.iter().enumerate().flat_map(|(i, (s, b))| {
                        let parts = if i == ci {
                            vec![&b[..k], &b[k..]]
                        } else {
                            vec![*b]
                        };
                        parts.into_iter().map(move |p| (*s, ts_of(i), p))
                    });
                    assert_eq!(
                        run_events(events, limits),
                        base,
                        "{name}: chunk {ci} split at {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn joined_mid_stream_resyncs_and_flags_degraded_headers() {
        let c = chunks(&DYNAMIC);
        // Drop the first 40% of each side (mid-frame).
        let (mut skip_req, mut skip_resp) = (DYNAMIC.req.len() * 2 / 5, DYNAMIC.resp.len() * 2 / 5);
        let mut events = Vec::new();
        for (i, (side, bytes)) in c.iter().enumerate() {
            let skip = if *side == Req {
                &mut skip_req
            } else {
                &mut skip_resp
            };
            let cut = (*skip).min(bytes.len());
            *skip -= cut;
            if cut < bytes.len() {
                events.push((*side, ts_of(i), &bytes[cut..]));
            }
        }
        let r = run_events(events, Limits::default());
        let mut decoded = 0;
        for e in &r.exchanges {
            if let Some(path) = e.request.as_ref().and_then(Message::path) {
                assert_eq!(
                    path,
                    format!("/item/{}", (e.stream_id - 1) / 2),
                    "no wrong header"
                );
                decoded += 1;
            }
        }
        // The cut falls in stream 15's HEADERS: requests from stream 17 on are
        // found again (their fields are literals); earlier streams only have
        // their responses, whose fields index entries sent before the cut.
        assert_eq!(decoded, 4);
        let last = r
            .exchanges
            .iter()
            .find(|e| e.stream_id == 23)
            .expect("last stream");
        assert_eq!(req(last).path(), Some("/item/11"));
        assert_eq!(req(last).header("x-request-id"), Some("req-0011"));
        assert!(!last.partial && !req(last).headers_degraded);
        assert!(r
            .exchanges
            .iter()
            .all(|e| resp(e).status() == Some(200) && resp(e).headers_degraded));
        let orphan = r
            .exchanges
            .iter()
            .find(|e| e.stream_id == 9)
            .expect("stream 9");
        assert!(orphan.request.is_none() && orphan.partial);
        assert!(r
            .exchanges
            .iter()
            .all(|e| e.stream_id % 2 == 1 && e.stream_id <= 23));
        // The start was never seen: every stream whose headers were missed
        // (here all responses, which index entries sent before the cut) says so.
        assert!(r.exchanges.iter().all(|e| e.gap
            && e.gaps.contains(GapCause::JoinedMidStream)
            && e.gaps.iter().count() == 1));
    }

    #[test]
    fn joined_at_any_offset_never_reports_wrong_paths() {
        for (name, f) in [
            ("concurrent", &CONCURRENT),
            ("dynamic", &DYNAMIC),
            ("grpc", &GRPC),
        ] {
            let paths: Vec<String> = replay(f)
                .exchanges
                .iter()
                .map(|e| req(e).path().unwrap_or_default().to_string())
                .collect();
            for cut in 1..f.req.len() {
                let events = [(Req, 1, &f.req[cut..]), (Resp, 2, f.resp)];
                let r = run_events(events, Limits::default());
                for e in &r.exchanges {
                    if let Some(p) = e.request.as_ref().and_then(Message::path) {
                        assert!(paths.iter().any(|k| k == p), "{name} cut {cut}: {p}");
                    }
                }
            }
        }
    }

    /// Pushes random splits of two byte streams with random gaps; checks memory.
    fn chaos(rng: &mut Rng, req_bytes: &[u8], resp_bytes: &[u8], gaps: bool) -> usize {
        let mut h2 = Http2Stream::new(Limits {
            max_body_capture: rng.below(3) * 100,
            ..Limits::default()
        });
        let (mut a, mut b) = (req_bytes, resp_bytes);
        let mut ts = 0;
        let mut produced = 0;
        while !a.is_empty() || !b.is_empty() {
            ts += 1;
            let side = if b.is_empty() || (!a.is_empty() && rng.below(2) == 0) {
                Req
            } else {
                Resp
            };
            let src = if side == Req { &mut a } else { &mut b };
            let max = if rng.below(4) == 0 { 4000 } else { 64 };
            let n = (1 + rng.below(max)).min(src.len());
            let (head, tail) = src.split_at(n);
            *src = tail;
            if gaps && rng.below(20) == 0 {
                h2.gap(side, ts, n as u64, GapCause::LostEvents);
            } else {
                h2.push(side, ts, head);
            }
            if gaps && rng.below(50) == 0 {
                h2.gap(side, ts, rng.below(100_000) as u64, GapCause::LostEvents);
            }
            assert!(h2.buffered() < 16 << 20, "memory bound: {}", h2.buffered());
            if rng.below(8) == 0 {
                produced += h2.drain().len();
            }
        }
        produced += h2.close(ts + 1).len();
        assert!(h2.close(ts + 2).is_empty());
        produced
    }

    /// A random but mostly well-formed frame sequence (valid headers, random payloads).
    fn random_frames(rng: &mut Rng, side: Side) -> Vec<u8> {
        let mut out = if side == Req && rng.below(4) != 0 {
            PREFACE.to_vec()
        } else {
            Vec::new()
        };
        for _ in 0..rng.below(40) {
            let kind = rng.below(12) as u8;
            let stream = match kind {
                SETTINGS | PING | GOAWAY => 0,
                _ => 1 + rng.below(12) as u32,
            };
            let payload = match kind {
                HEADERS if rng.below(2) == 0 => Enc::default()
                    .request("GET", "/r")
                    .add("x-r", "v")
                    .idx(62)
                    .done(),
                SETTINGS => {
                    let n = rng.below(4);
                    let mut p = Vec::new();
                    for _ in 0..n {
                        p.extend_from_slice(&(1 + rng.below(6) as u16).to_be_bytes());
                        p.extend_from_slice(&(rng.next() as u32 % 70_000).to_be_bytes());
                    }
                    p
                }
                _ => {
                    let max = if rng.below(10) == 0 { 3000 } else { 20 };
                    let len = rng.below(max);
                    rng.bytes(len)
                }
            };
            out.extend(frame(kind, rng.next() as u8 & 0x2d, stream, &payload));
        }
        out
    }

    #[test]
    fn random_input_never_panics_and_stays_bounded() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..1500 {
            let (la, lb) = (rng.below(3000), rng.below(3000));
            let (a, b) = (rng.bytes(la), rng.bytes(lb));
            chaos(&mut rng, &a, &b, true);
        }
        for _ in 0..1500 {
            let a = random_frames(&mut rng, Req);
            let b = random_frames(&mut rng, Resp);
            let gaps = rng.below(2) == 0;
            chaos(&mut rng, &a, &b, gaps);
        }
        let mut produced = 0;
        for _ in 0..400 {
            for (_, f) in all_fixtures() {
                let a = mutate(&mut rng, f.req);
                let b = mutate(&mut rng, f.resp);
                let gaps = rng.below(3) == 0;
                produced += chaos(&mut rng, &a, &b, gaps);
            }
        }
        assert!(
            produced > 1000,
            "mutated fixtures still yield exchanges: {produced}"
        );
        // Large payloads and frame lengths.
        let mut big = PREFACE.to_vec();
        big.extend(frame(DATA, 0, 1, &vec![7; 3 << 20]));
        big.extend(frame(0xfa, 0, 1, &vec![1; 2 << 20]));
        big.extend(frame(HEADERS, 0, 1, &vec![0x82; 300_000]));
        let noise = rng.bytes(5 << 20);
        chaos(&mut rng, &big, &noise, true);
    }
}
