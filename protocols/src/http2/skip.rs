//! DATA payload bytes the kernel need not copy: how many follow the bytes pushed so far (the rest of the payload of an unpadded DATA frame, once its message keeps no more body), and taking them as skipped — counted, not seen, flagging nothing.

use super::frame::{DATA, FLAG_PADDED};
use super::side::{DataState, Mode, SideParser};
use super::streams::Conn;

impl SideParser {
    /// The progress through the DATA payload the pushed bytes end in, when
    /// bytes that follow them can only be that payload: an unpadded DATA
    /// frame with payload left, and nothing buffered or pending (no partial
    /// frame header, no resync buffer, no open header block). `None` in any
    /// other state.
    fn skippable_data(&self) -> Option<DataState> {
        let Mode::Data(st) = self.mode else {
            return None;
        };
        let clean = self.frame.kind == DATA
            && !self.frame.has(FLAG_PADDED)
            && !st.pad_pending
            && st.pad_left == 0
            && st.data_left > 0
            && self.hdr_len == 0
            && self.hunt.is_empty()
            && self.block.is_none();
        clean.then_some(st)
    }

    /// Bytes after those pushed so far that are certainly payload of the
    /// current (unpadded) DATA frame that its message does not keep.
    pub(super) fn skippable(&self, conn: &Conn) -> u64 {
        match self.skippable_data() {
            Some(st) if !conn.keeps_body(self.side, self.frame.stream) => u64::from(st.data_left),
            _ => 0,
        }
    }

    /// `len` bytes skipped on purpose at `ts`: taken as payload of the
    /// current unpadded DATA frame as far as it goes (ending the frame, and
    /// its stream side on END_STREAM, when its payload is done); returns how
    /// many did not fit (a gap for the caller).
    pub(super) fn skip(&mut self, conn: &mut Conn, ts: u64, len: u64) -> u64 {
        let Some(mut st) = self.skippable_data() else {
            return len;
        };
        let n = u32::try_from(len).map_or(st.data_left, |l| l.min(st.data_left));
        conn.skipped_body(self.side, self.frame.stream, ts, u64::from(n));
        st.data_left = st.data_left.saturating_sub(n);
        self.mode = Mode::Data(st);
        if st.left() == 0 {
            self.end_data(conn, ts);
        }
        len.saturating_sub(u64::from(n))
    }
}
