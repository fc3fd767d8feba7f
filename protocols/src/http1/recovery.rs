//! Recovery of one side from broken input: parse errors, resynchronisation on the next message start, lost bytes (gaps) and close.

use std::mem;

use super::body::is_interim;
use super::head::{parse_head, salvage_request, salvage_response, RespHead};
use super::message::Side;
use super::pairing::{Conversation, Progress};
use super::side::{SideParser, State};

impl SideParser {
    pub(super) fn step_resync(&mut self, line_start: bool, data: &[u8]) -> usize {
        if line_start {
            self.state = State::Probe;
            return 0;
        }
        match data.iter().position(|b| *b == b'\n') {
            Some(i) => {
                self.state = State::Resync { line_start: true };
                i.saturating_add(1)
            }
            None => data.len(),
        }
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
            && parse_head(self.side, self.buf.bytes()).is_err();
        if invalid {
            self.parse_failed(conv);
        }
        invalid
    }

    /// The bytes buffered as a head are not a valid message.
    pub(super) fn parse_failed(&mut self, conv: &mut Conversation) {
        self.count_error(conv);
        self.reject_start();
    }

    /// Drops the first buffered byte and rescans the rest for a message start.
    pub(super) fn reject_start(&mut self) {
        let replay = self.buf.chunks(1, self.buf.len());
        self.buf.clear();
        self.staged.extend(replay);
        self.state = State::Resync { line_start: false };
    }

    /// Framing inside a body is broken: end the message and resync.
    pub(super) fn body_error(&mut self, conv: &mut Conversation, ts: u64, line_start: bool) {
        self.count_error(conv);
        self.abort(conv, ts, false);
        self.state = State::Resync { line_start };
    }

    /// Hunt for the next message start from the next byte.
    fn hunt(&mut self) {
        self.buf.clear();
        self.state = State::Resync { line_start: true };
    }

    pub(super) fn gap(&mut self, conv: &mut Conversation, ts: u64, len: u64) {
        if len == 0 {
            return;
        }
        match self.state {
            State::Opaque => {}
            State::Resync { .. } | State::Probe => self.hunt(),
            State::Head if !self.synced => self.hunt(),
            State::Head => {
                self.count_error(conv);
                self.salvage_head(conv, ts, true);
                self.hunt();
            }
            State::Hold { .. } => {
                self.count_error(conv);
                self.hunt();
            }
            State::Length { remaining } => self.gap_in_length(conv, ts, len, remaining),
            State::ChunkData { remaining } => self.gap_in_chunk(conv, ts, len, remaining),
            State::ChunkSize | State::ChunkEnd { .. } | State::Trailers => {
                self.count_error(conv);
                self.abort(conv, ts, true);
                self.hunt();
            }
            State::UntilClose => conv.add_lost(self.side, self.current, ts, len),
        }
    }

    fn gap_in_length(&mut self, conv: &mut Conversation, ts: u64, len: u64, remaining: u64) {
        let lost = len.min(remaining);
        conv.add_lost(self.side, self.current, ts, lost);
        let left = remaining.saturating_sub(lost);
        if left > 0 {
            self.state = State::Length { remaining: left };
            return;
        }
        self.complete(conv, ts);
        // The rest of the gap hid the start of the next message.
        let beyond = len.saturating_sub(lost);
        if beyond > 0 && matches!(self.state, State::Head | State::Hold { .. }) {
            self.gap(conv, ts, beyond);
        }
    }

    fn gap_in_chunk(&mut self, conv: &mut Conversation, ts: u64, len: u64, remaining: u64) {
        conv.add_lost(self.side, self.current, ts, len.min(remaining));
        if len > remaining {
            self.count_error(conv);
            self.abort(conv, ts, true);
            self.hunt();
        } else if len == remaining {
            self.state = State::ChunkEnd { cr: false };
        } else {
            self.state = State::ChunkData {
                remaining: remaining.saturating_sub(len),
            };
        }
    }

    /// Records the message whose head was cut short by a gap (`gap`) or by close.
    ///
    /// After a gap even an unreadable (or not yet started) head stands for a
    /// lost message, which keeps requests and responses paired.
    fn salvage_head(&mut self, conv: &mut Conversation, ts: u64, gap: bool) {
        let start_ns = self.buf.first_ts().unwrap_or(ts);
        let mut progress = Progress::new(start_ns, ts, conv.capture);
        progress.gap = gap;
        match self.side {
            Side::Request => {
                let head = salvage_request(self.buf.bytes());
                if head.is_some() || gap {
                    conv.cut_request(head.map(|h| (h, progress)), gap);
                }
            }
            Side::Response => {
                let head = salvage_response(self.buf.bytes());
                if head.as_ref().is_some_and(|h| is_interim(h.status)) {
                    return;
                }
                let informational = mem::take(&mut self.informational);
                if head.is_some() || gap {
                    let head = head.map(|h| (RespHead { informational, ..h }, progress));
                    conv.cut_response(head, gap);
                }
            }
        }
    }

    /// The connection closed: end whatever message is in progress.
    pub(super) fn close(&mut self, conv: &mut Conversation, ts: u64) {
        match self.state {
            State::Head if self.synced && !self.buf.is_empty() => {
                self.salvage_head(conv, ts, false)
            }
            State::UntilClose => conv.end(self.side, self.current.take(), true, None),
            State::Length { .. }
            | State::ChunkSize
            | State::ChunkData { .. }
            | State::ChunkEnd { .. }
            | State::Trailers => self.abort(conv, ts, false),
            _ => {}
        }
        self.go_opaque();
    }
}
