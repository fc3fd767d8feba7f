//! Resynchronisation of one direction joined mid-stream or after lost bytes: hunting for two consecutive plausible frame headers.

use std::mem;

use super::frame::{
    FrameHeader, CONTINUATION, FLAG_END_HEADERS, FRAME_HEADER_LEN, HEADERS, HUNT_MAX_FRAME,
    PUSH_PROMISE,
};
use super::side::{Mode, SideParser, Step, IDLE_CAPACITY};
use super::streams::Conn;
use super::GapCauses;

/// Bytes appended to the resync buffer per step.
const HUNT_CHUNK: usize = 64 * 1024;
/// Scan offset past which the resync buffer is compacted.
const HUNT_COMPACT: usize = 4096;

impl SideParser {
    /// The side was joined after its start (`causes` say how it is known):
    /// frame boundaries and HPACK state are unknown, and streams whose frames
    /// on this side are missing carry `causes`.
    pub(super) fn joined_mid_stream(&mut self, conn: &mut Conn, causes: GapCauses) {
        conn.lose_frames(self.side, causes);
        self.hpack_lost |= causes;
        self.mode = Mode::Hunt;
        self.joined = true;
        self.hunt_scan = 0;
        self.hpack.joined_mid_stream();
    }

    pub(super) fn step_hunt(&mut self, data: &[u8]) -> Step {
        let n = data.len().min(HUNT_CHUNK);
        self.hunt
            .extend_from_slice(data.get(..n).unwrap_or_default());
        let max_len = HUNT_MAX_FRAME;
        loop {
            let i = self.hunt_scan;
            let Some(h) = self.hunt.get(i..).and_then(FrameHeader::parse) else {
                break;
            };
            if !h.plausible(self.side, max_len) {
                self.hunt_scan = i.saturating_add(1);
                continue;
            }
            let next = i
                .saturating_add(FRAME_HEADER_LEN)
                .saturating_add(h.len as usize);
            let Some(n2) = self.hunt.get(next..).and_then(FrameHeader::parse) else {
                // Wait for the next header (bounded by max_len).
                break;
            };
            let chained = n2.plausible(self.side, max_len)
                && (h.has(FLAG_END_HEADERS)
                    || !matches!(h.kind, HEADERS | PUSH_PROMISE | CONTINUATION)
                    || (n2.kind == CONTINUATION && n2.stream == h.stream));
            if chained {
                let mut rest = mem::take(&mut self.hunt);
                rest.drain(..i.min(rest.len()));
                self.hunt_scan = 0;
                self.mode = Mode::Header;
                self.hdr_len = 0;
                return Step {
                    used: n,
                    replay: Some(rest),
                };
            }
            self.hunt_scan = i.saturating_add(1);
        }
        if self.hunt_scan >= HUNT_COMPACT && self.hunt_scan.saturating_mul(2) >= self.hunt.len() {
            let cut = self.hunt_scan.min(self.hunt.len());
            self.hunt.drain(..cut);
            self.hunt_scan = 0;
            if self.hunt.capacity() > 4 * IDLE_CAPACITY && self.hunt.len() < IDLE_CAPACITY {
                self.hunt.shrink_to(IDLE_CAPACITY);
            }
        }
        Step::used(n)
    }

    /// Framing is lost: look for the next frame boundary; HPACK state becomes unreliable.
    pub(super) fn desync(&mut self, conn: &mut Conn) {
        self.mode = Mode::Hunt;
        self.hunt.clear();
        self.hunt_scan = 0;
        self.hdr_len = 0;
        self.payload.clear();
        self.lose_block(conn);
        self.hpack.mark_unknown();
    }
}

#[cfg(test)]
mod tests {
    use crate::http2::frame::PING;
    use crate::http2::testutil::*;
    use crate::http2::Side::{Request as Req, Response as Resp};
    use crate::http2::{GapCause, Http2Stream, Limits};

    #[test]
    fn gap_over_a_header_block_desyncs_then_recovers() {
        let mut h2 = Http2Stream::new(Limits::default());
        open(&mut h2);
        h2.push(
            Req,
            10,
            &headers(
                1,
                true,
                &Enc::default().request("GET", "/a").add("x-k", "v").done(),
            ),
        );
        h2.push(
            Resp,
            11,
            &headers(1, true, &Enc::default().status(200).done()),
        );
        // Stream 3's HEADERS frame is lost entirely, with the start of stream 5's.
        let lost = headers(
            3,
            true,
            &Enc::default().request("GET", "/b").add("x-l", "w").done(),
        );
        let h5 = headers(
            5,
            true,
            &Enc::default().request("GET", "/c").idx(62).idx(63).done(),
        );
        h2.gap(Req, 12, (lost.len() + 4) as u64, GapCause::LostEvents);
        h2.push(Req, 13, &h5[4..]);
        // Stream 7's frames are found again; x-m is a new entry.
        h2.push(
            Req,
            14,
            &headers(
                7,
                true,
                &Enc::default().request("GET", "/d").add("x-m", "u").done(),
            ),
        );
        h2.push(
            Req,
            15,
            &headers(
                9,
                true,
                &Enc::default().request("GET", "/e").idx(62).idx(64).done(),
            ),
        );
        h2.push(Req, 15, &frame(PING, 0, 0, &[0; 8]));
        for id in [3, 5, 7, 9] {
            h2.push(
                Resp,
                16,
                &headers(id, true, &Enc::default().status(200).done()),
            );
        }
        let out = h2.close(17);
        assert!(h2.parse_errors() >= 1);
        let e7 = out.iter().find(|e| e.stream_id == 7).expect("stream 7");
        assert_eq!(req(e7).path(), Some("/d"));
        assert!(!req(e7).headers_degraded);
        let e9 = out.iter().find(|e| e.stream_id == 9).expect("stream 9");
        assert_eq!(req(e9).path(), Some("/e"));
        assert_eq!(
            req(e9).header("x-m"),
            Some("u"),
            "entry added after the resync"
        );
        assert!(
            req(e9).headers_degraded,
            "index 64 is in the unknown part of the table"
        );
        let e3 = out.iter().find(|e| e.stream_id == 3).expect("stream 3");
        assert!(e3.request.is_none() && e3.partial && resp(e3).status() == Some(200));
    }
}
