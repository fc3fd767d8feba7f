//! Recovery of one side from broken input: parse errors, lost bytes (gaps) and close; after lost boundaries the side waits for the next capture event and probes it for a message start.

use std::mem;

use super::body::is_interim;
use super::head::{parse_head, salvage_request, salvage_response, RespHead};
use super::message::{GapCause, GapCauses, Side};
use super::pairing::{Conversation, Progress};
use super::side::{SideParser, State};
use crate::names::StaticNames;

impl SideParser {
    /// Skips bytes while waiting for the next capture event.
    pub(super) fn step_await(&mut self, conv: &mut Conversation, ts: u64, data: &[u8]) -> usize {
        if !data.is_empty() {
            self.lost_here(conv, ts, ts, GapCauses::NONE);
        }
        data.len()
    }

    fn count_error(&mut self, conv: &mut Conversation) {
        if self.synced {
            conv.parse_errors = conv.parse_errors.saturating_add(1);
            self.synced = false;
        }
    }

    /// Fails the buffered head if it already contains a syntax error.
    pub(super) fn fail_if_head_invalid(&mut self, conv: &mut Conversation) -> bool {
        let invalid = self.state == State::Head
            && !self.buf.is_empty()
            && parse_head(self.side, self.buf.bytes(), Some(StaticNames::new(&[]))).is_err();
        if invalid {
            self.parse_failed(conv);
        }
        invalid
    }

    /// The bytes buffered as a head are not a valid message: whatever message
    /// they began, its end is unknown.
    pub(super) fn parse_failed(&mut self, conv: &mut Conversation) {
        self.count_error(conv);
        let lower = self.buf.first_ts().or(self.last_push).unwrap_or(0);
        let until = self.last_push.unwrap_or(lower);
        self.lose_count(conv, lower, until, GapCauses::NONE);
    }

    /// A probed capture event does not start with a message: skip the rest of it.
    pub(super) fn skip_event(&mut self, conv: &mut Conversation, ts: u64) {
        let lower = self.buf.first_ts().unwrap_or(ts);
        self.buf.clear();
        self.state = State::Await;
        self.lost_here(conv, lower, ts, GapCauses::NONE);
    }

    /// Framing inside a body is broken: end the message, boundaries are lost.
    pub(super) fn body_error(&mut self, conv: &mut Conversation, ts: u64) {
        self.count_error(conv);
        self.abort(conv, ts, GapCauses::NONE);
        self.lose_count(conv, ts, ts, GapCauses::NONE);
    }

    /// Bytes of this side whose boundaries are unknown (lost, or skipped):
    /// they may hide messages, sent between `lower` and `until`.
    fn lost_here(&mut self, conv: &mut Conversation, lower: u64, until: u64, causes: GapCauses) {
        match self.side {
            Side::Request => conv.request_lost(lower, causes),
            Side::Response => conv.response_lost(causes, lower, until),
        }
    }

    /// Message boundaries are lost: record it and wait for the next capture event.
    fn lose_count(&mut self, conv: &mut Conversation, lower: u64, until: u64, causes: GapCauses) {
        self.lost_here(conv, lower, until, causes);
        self.buf.clear();
        self.current = None;
        self.hold_after = false;
        self.state = State::Await;
    }

    /// `len` bytes of this side were lost before `ts`, for `cause`.
    ///
    /// Inside a body of known length (or a chunk) they are counted as lost
    /// payload and the framing goes on; anywhere else the message in progress
    /// is cut, the message count is lost, and the side waits for the next
    /// capture event.
    pub(super) fn gap(&mut self, conv: &mut Conversation, ts: u64, len: u64, cause: GapCause) {
        if len == 0 {
            return;
        }
        self.gap_since_push = true;
        let causes = GapCauses::from(cause);
        // Lost bytes were sent after the last byte seen (or at any time
        // before, when none was seen: joined mid-stream).
        let lower = self.buf.first_ts().or(self.last_push).unwrap_or(0);
        match self.state {
            State::Opaque => {}
            State::Await | State::Probe => self.lose_count(conv, lower, ts, causes),
            State::Head => {
                self.count_error(conv);
                self.salvage_head(conv, ts, causes);
                self.lose_count(conv, lower, ts, causes);
            }
            State::Hold { .. } => {
                self.count_error(conv);
                self.lose_count(conv, lower, ts, causes);
            }
            State::Length { remaining } => self.gap_in_length(conv, ts, len, remaining, causes),
            State::ChunkData { remaining } => self.gap_in_chunk(conv, ts, len, remaining, causes),
            State::ChunkSize | State::ChunkEnd { .. } | State::Trailers => {
                self.count_error(conv);
                self.abort(conv, ts, causes);
                self.lose_count(conv, lower, ts, causes);
            }
            State::UntilClose => conv.add_lost(self.side, self.current, ts, len, causes),
        }
    }

    /// An unknown number of bytes may have been lost at the end of this
    /// side (see [`super::Http1Stream::tail_lost`]).
    pub(super) fn tail_lost(&mut self, conv: &mut Conversation, ts: u64, cause: GapCause) {
        self.gap_since_push = true;
        let causes = GapCauses::from(cause);
        let lower = self.buf.first_ts().or(self.last_push).unwrap_or(0);
        match self.state {
            State::Opaque => {}
            State::Await | State::Probe => self.lose_count(conv, lower, ts, causes),
            State::Head => {
                self.salvage_head(conv, ts, causes);
                self.lose_count(conv, lower, ts, causes);
            }
            State::UntilClose => conv.add_lost(self.side, self.current, ts, 0, causes),
            State::Hold { .. }
            | State::Length { .. }
            | State::ChunkSize
            | State::ChunkData { .. }
            | State::ChunkEnd { .. }
            | State::Trailers => {
                self.abort(conv, ts, causes);
                self.lose_count(conv, lower, ts, causes);
            }
        }
    }

    fn gap_in_length(
        &mut self,
        conv: &mut Conversation,
        ts: u64,
        len: u64,
        remaining: u64,
        causes: GapCauses,
    ) {
        let lost = len.min(remaining);
        conv.add_lost(self.side, self.current, ts, lost, causes);
        let left = remaining.saturating_sub(lost);
        if left > 0 {
            self.state = State::Length { remaining: left };
            return;
        }
        self.complete(conv, ts);
        if len > lost {
            // The rest of the gap hid the start of what came next.
            let lower = self.last_push.unwrap_or(0);
            match self.state {
                State::Head | State::Hold { .. } => {
                    self.count_error(conv);
                    self.lose_count(conv, lower, ts, causes);
                }
                State::Await => self.lose_count(conv, lower, ts, causes),
                _ => {}
            }
        }
    }

    fn gap_in_chunk(
        &mut self,
        conv: &mut Conversation,
        ts: u64,
        len: u64,
        remaining: u64,
        causes: GapCauses,
    ) {
        conv.add_lost(self.side, self.current, ts, len.min(remaining), causes);
        if len > remaining {
            self.count_error(conv);
            self.abort(conv, ts, causes);
            let lower = self.last_push.unwrap_or(0);
            self.lose_count(conv, lower, ts, causes);
        } else if len == remaining {
            self.state = State::ChunkEnd { cr: false };
        } else {
            self.state = State::ChunkData {
                remaining: remaining.saturating_sub(len),
            };
        }
    }

    /// Records the message whose head was cut short by a gap (`causes`) or by
    /// close, if at least its start line's first fields were received.
    fn salvage_head(&mut self, conv: &mut Conversation, ts: u64, causes: GapCauses) {
        let start_ns = self.buf.first_ts().unwrap_or(ts);
        let mut progress = Progress::new(start_ns, ts, conv.capture);
        progress.gaps = causes;
        progress.wire_bytes = super::len_u64(self.buf.len());
        match self.side {
            Side::Request => {
                if let Some(head) = salvage_request(self.buf.bytes()) {
                    conv.cut_request(head, progress);
                }
            }
            Side::Response => {
                let Some(head) = salvage_response(self.buf.bytes()) else {
                    return;
                };
                if is_interim(head.status) {
                    return;
                }
                let informational = mem::take(&mut self.informational);
                let kind = conv.response_kind(start_ns);
                let head = RespHead {
                    informational,
                    ..head
                };
                conv.add_response(head, progress, kind, false);
            }
        }
    }

    /// The connection closed: end whatever message is in progress.
    pub(super) fn close(&mut self, conv: &mut Conversation, ts: u64) {
        match self.state {
            State::Head if !self.buf.is_empty() => self.salvage_head(conv, ts, GapCauses::NONE),
            State::UntilClose => {
                conv.end(self.side, self.current.take(), true, None);
            }
            State::Length { .. }
            | State::ChunkSize
            | State::ChunkData { .. }
            | State::ChunkEnd { .. }
            | State::Trailers => self.abort(conv, ts, GapCauses::NONE),
            _ => {}
        }
        self.go_opaque();
    }
}
