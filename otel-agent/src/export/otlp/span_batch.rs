//! Spans encoded one after another into one buffer, each with the resource
//! of its process: what the reader hands the span export task at once, and
//! the pool the export task gives the emptied buffers back through.
//!
//! One hand-off and no allocation per span: a buffer of its own per span,
//! sent through the queue one by one and freed by the export task's
//! thread, kept the allocator mapping fresh pages for the reader (page
//! faults and page clearing ~5 % of the agent's CPU at saturation with
//! OTLP, perf; its minor faults fell from ~95k to ~30k in a 6 s run of
//! `wrk -t1 -c16` against nginx `/tiny` at level `summary`).

use std::sync::{Arc, Mutex};

use opentelemetry_sdk::Resource;

/// Encoded `Span` messages and their resources, in order.
#[derive(Debug, Default)]
pub struct SpanBatch {
    bytes: Vec<u8>,
    /// Each span's resource and the end of its bytes.
    spans: Vec<(Arc<Resource>, usize)>,
}

impl SpanBatch {
    /// Spans held.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// No span held.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Append a span: `encode` appends its `Span` message to the buffer
    /// and returns its resource; or returns why not, and nothing is kept.
    pub fn push<E>(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<Arc<Resource>, E>,
    ) -> Result<(), E> {
        let start = self.bytes.len();
        match encode(&mut self.bytes) {
            Ok(resource) => {
                self.spans.push((resource, self.bytes.len()));
                Ok(())
            }
            Err(e) => {
                self.bytes.truncate(start);
                Err(e)
            }
        }
    }

    /// Take back the last span pushed.
    pub fn pop(&mut self) {
        self.spans.pop();
        self.bytes
            .truncate(self.spans.last().map_or(0, |(_, end)| *end));
    }

    /// Each span's resource and `Span` message, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<Resource>, &[u8])> + Clone {
        let starts = std::iter::once(0).chain(self.spans.iter().map(|(_, end)| *end));
        self.spans
            .iter()
            .zip(starts)
            .map(|((resource, end), start)| (resource, self.bytes.get(start..*end).unwrap_or(&[])))
    }

    /// Empty it, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }
}

/// Emptied batches, handed back by the export task for the reader to fill
/// again.
#[derive(Clone, Debug, Default)]
pub struct BatchPool(Arc<Mutex<Vec<SpanBatch>>>);

impl BatchPool {
    /// Batches kept at most.
    const MAX_KEPT: usize = 16;
    /// A batch whose buffer grew past this (spans with large attributes) is
    /// freed rather than kept.
    const MAX_KEPT_BYTES: usize = 256 * 1024;

    /// An empty batch: one given back, or a new one.
    pub fn take(&self) -> SpanBatch {
        self.0
            .lock()
            .ok()
            .and_then(|mut kept| kept.pop())
            .unwrap_or_default()
    }

    /// Give `batch` back, emptied.
    pub fn give(&self, mut batch: SpanBatch) {
        if batch.bytes.capacity() > Self::MAX_KEPT_BYTES {
            return;
        }
        batch.clear();
        if let Ok(mut kept) = self.0.lock() {
            if kept.len() < Self::MAX_KEPT {
                kept.push(batch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(name: &'static str) -> Arc<Resource> {
        Arc::new(Resource::builder_empty().with_service_name(name).build())
    }

    #[test]
    fn spans_keep_their_bytes_and_resources_and_a_refused_one_leaves_nothing() {
        let (a, b) = (resource("a"), resource("b"));
        let mut batch = SpanBatch::default();
        assert!(batch
            .push(|buf| {
                buf.extend_from_slice(b"one");
                Ok::<_, ()>(a.clone())
            })
            .is_ok());
        assert_eq!(
            batch.push(|buf| {
                buf.extend_from_slice(b"half written");
                Err("refused")
            }),
            Err("refused")
        );
        assert!(batch
            .push(|buf| {
                buf.extend_from_slice(b"two");
                Ok::<_, ()>(b.clone())
            })
            .is_ok());
        assert!(batch
            .push(|buf| {
                buf.extend_from_slice(b"three");
                Ok::<_, ()>(a.clone())
            })
            .is_ok());
        batch.pop();
        let got: Vec<_> = batch
            .iter()
            .map(|(r, bytes)| (Arc::ptr_eq(r, &a), bytes.to_vec()))
            .collect();
        assert_eq!(got, [(true, b"one".to_vec()), (false, b"two".to_vec())]);
        assert_eq!(batch.len(), 2);

        let pool = BatchPool::default();
        pool.give(batch);
        let again = pool.take();
        assert!(again.is_empty() && again.iter().next().is_none());
        assert!(again.bytes.capacity() >= 6, "the buffer is kept");
    }
}
