//! The bounded byte buffer of one side, which remembers the timestamp of each push so that replayed bytes keep their capture time.

/// Timestamp marks kept per buffer; later bytes share the last mark.
const MAX_MARKS: usize = 64;
/// Buffer capacity kept once a buffer is emptied.
const IDLE_CAPACITY: usize = 4096;

/// Replayed bytes with the timestamp of the push that carried them.
#[derive(Debug)]
pub(super) struct Chunk {
    pub(super) ts: u64,
    pub(super) bytes: Vec<u8>,
}

/// A bounded byte buffer that remembers push timestamps.
#[derive(Debug)]
pub(super) struct TsBuf {
    pub(super) bytes: Vec<u8>,
    marks: Vec<(usize, u64)>,
    limit: usize,
}

impl TsBuf {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            marks: Vec::new(),
            limit,
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(super) fn first_ts(&self) -> Option<u64> {
        self.marks.first().map(|m| m.1)
    }

    /// Appends bytes; capacity grows geometrically but never past the limit.
    pub(super) fn push(&mut self, ts: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.marks.last().map(|m| m.1) != Some(ts) && self.marks.len() < MAX_MARKS {
            self.marks.push((self.bytes.len(), ts));
        }
        let need = self.bytes.len().saturating_add(data.len());
        if need > self.bytes.capacity() {
            let target = need.saturating_mul(2).min(self.limit.max(need));
            self.bytes
                .reserve_exact(target.saturating_sub(self.bytes.len()));
        }
        self.bytes.extend_from_slice(data);
    }

    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.marks.clear();
        if self.bytes.capacity() > IDLE_CAPACITY {
            self.bytes.shrink_to(IDLE_CAPACITY);
        }
    }

    /// Copies `bytes[from..to]` as chunks tagged with their push timestamps.
    pub(super) fn chunks(&self, from: usize, to: usize) -> Vec<Chunk> {
        let mut out = Vec::new();
        for (i, &(start, ts)) in self.marks.iter().enumerate() {
            let end = self
                .marks
                .get(i.saturating_add(1))
                .map_or(self.bytes.len(), |m| m.0);
            let (lo, hi) = (start.max(from), end.min(to));
            if let Some(bytes) = self.bytes.get(lo..hi).filter(|b| !b.is_empty()) {
                out.push(Chunk {
                    ts,
                    bytes: bytes.to_vec(),
                });
            }
        }
        out
    }

    /// Moves all bytes out as chunks.
    pub(super) fn take_all(&mut self) -> Vec<Chunk> {
        let out = self.chunks(0, self.len());
        self.clear();
        out
    }
}
