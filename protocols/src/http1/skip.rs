//! Body bytes the kernel need not copy: how many follow the bytes pushed so far (a body of known length, a chunk, a body read until close, once the message keeps no more of it), and taking them as skipped — counted, not seen, flagging nothing.

use super::pairing::Conversation;
use super::side::{SideParser, State};

impl SideParser {
    /// Bytes after those pushed so far that are certainly body of the
    /// current message and that it does not keep (`u64::MAX`: until close).
    pub(super) fn skippable(&self, conv: &Conversation) -> u64 {
        // Replays pending: the state is not yet that of the pushed bytes' end.
        if !self.queue.is_empty() || !self.staged.is_empty() {
            return 0;
        }
        let body = match self.state {
            State::Length { remaining } | State::ChunkData { remaining } => remaining,
            State::UntilClose => u64::MAX,
            _ => return 0,
        };
        // The kept prefix comes first: until it is full, nothing is skipped.
        if conv.body_room(self.side, self.current) > 0 {
            return 0;
        }
        body
    }

    /// `len` bytes skipped on purpose at `ts`: taken as body where the state
    /// allows; returns how many did not fit (a gap for the caller).
    pub(super) fn skip(&mut self, conv: &mut Conversation, ts: u64, len: u64) -> u64 {
        match self.state {
            State::Length { remaining } => {
                let n = len.min(remaining);
                conv.add_skipped(self.side, self.current, ts, n);
                let left = remaining.saturating_sub(n);
                if left == 0 {
                    self.complete(conv, ts);
                } else {
                    self.state = State::Length { remaining: left };
                }
                len.saturating_sub(n)
            }
            State::ChunkData { remaining } => {
                let n = len.min(remaining);
                conv.add_skipped(self.side, self.current, ts, n);
                let left = remaining.saturating_sub(n);
                self.state = if left == 0 {
                    State::ChunkEnd { cr: false }
                } else {
                    State::ChunkData { remaining: left }
                };
                len.saturating_sub(n)
            }
            State::UntilClose => {
                conv.add_skipped(self.side, self.current, ts, len);
                0
            }
            State::Opaque => 0,
            _ => len,
        }
    }
}
