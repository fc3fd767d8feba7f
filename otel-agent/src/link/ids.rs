//! Span ids of a span that starts its own place in a trace: a new trace, or
//! the place a captured `traceparent` gives (the one home of its semantics).

use std::collections::VecDeque;
use std::sync::Arc;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use rustc_hash::FxHashSet;
use semconv::trace_context::{LinkKind, SpanIds, TraceContext, TracePlace};

use crate::internal_events::{incr, CaptureStats};

/// Client span ids taken from a `traceparent` remembered, to see a repeat.
const MAX_TAKEN_IDS: usize = 16_384;

/// The client span ids recently taken from `traceparent` headers: a request
/// sent again with the same header (a retry) must not give a second span with
/// the same id. Bounded: the oldest are forgotten first.
#[derive(Debug, Default)]
struct TakenIds {
    set: FxHashSet<([u8; 16], [u8; 8])>,
    order: VecDeque<([u8; 16], [u8; 8])>,
}

impl TakenIds {
    /// Take `(trace, span)`; false when it was taken already.
    fn take(&mut self, id: ([u8; 16], [u8; 8])) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > MAX_TAKEN_IDS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// Makes span ids: new ones from a generator, or the ones a `traceparent`
/// gives.
pub struct IdSource {
    gen: Box<dyn IdGenerator>,
    taken: TakenIds,
    repeated_client_ids: u64,
    stats: Option<Arc<CaptureStats>>,
}

impl Default for IdSource {
    fn default() -> Self {
        Self::new(Box::new(RandomIdGenerator::default()))
    }
}

impl IdSource {
    /// Ids from `gen` (tests give fixed ones).
    pub fn new(gen: Box<dyn IdGenerator>) -> Self {
        Self {
            gen,
            taken: TakenIds::default(),
            repeated_client_ids: 0,
            stats: None,
        }
    }

    /// Also count repeated client span ids in `stats`
    /// (`client_span_ids_repeated`).
    pub fn counting_in(mut self, stats: Arc<CaptureStats>) -> Self {
        self.stats = Some(stats);
        self
    }

    /// A new span id.
    pub fn span_id(&mut self) -> [u8; 8] {
        self.gen.new_span_id().to_bytes()
    }

    /// The ids of a span at `place`, linked as `root` says when the place is
    /// [`TracePlace::Root`]: a new trace; a client span whose request carries
    /// a `traceparent` *is* that request (span id = the header's parent-id),
    /// unless that id was taken already (a retry): then it is its child with
    /// an id of its own; a server span is the header's child.
    pub fn place(&mut self, place: &TracePlace, root: LinkKind) -> SpanIds {
        let state = |c: &TraceContext| c.state.clone();
        match place {
            TracePlace::Root => SpanIds {
                trace_id: self.gen.new_trace_id().to_bytes(),
                span_id: self.span_id(),
                parent_span_id: None,
                parent_is_remote: false,
                sampled: true,
                state: None,
                link: root,
            },
            TracePlace::Is(c) if self.taken.take((c.parent.trace_id, c.parent.span_id)) => {
                SpanIds {
                    trace_id: c.parent.trace_id,
                    span_id: c.parent.span_id,
                    parent_span_id: None,
                    parent_is_remote: false,
                    sampled: c.parent.sampled,
                    state: state(c),
                    link: LinkKind::Traceparent,
                }
            }
            TracePlace::Is(c) | TracePlace::ChildOf(c) => {
                if matches!(place, TracePlace::Is(_)) {
                    self.repeated_client_ids += 1;
                    if let Some(s) = &self.stats {
                        incr(&s.client_span_ids_repeated);
                    }
                }
                SpanIds {
                    trace_id: c.parent.trace_id,
                    span_id: self.span_id(),
                    parent_span_id: Some(c.parent.span_id),
                    parent_is_remote: true,
                    sampled: c.parent.sampled,
                    state: state(c),
                    link: LinkKind::Traceparent,
                }
            }
        }
    }

    /// Client spans whose `traceparent` id had been taken already (a request
    /// sent again with the same header): each got an id of its own, as a
    /// child of that id.
    pub fn repeated_client_span_ids(&self) -> u64 {
        self.repeated_client_ids
    }
}

/// OTel ids from the bytes of [`SpanIds`].
pub fn otel_ids(ids: &SpanIds) -> (TraceId, SpanId, SpanId) {
    (
        TraceId::from_bytes(ids.trace_id),
        SpanId::from_bytes(ids.span_id),
        ids.parent_span_id
            .map_or(SpanId::INVALID, SpanId::from_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_ids_are_bounded_oldest_first() {
        let mut t = TakenIds::default();
        let id = |n: u64| ([1; 16], n.to_be_bytes());
        for n in 0..=MAX_TAKEN_IDS as u64 {
            assert!(t.take(id(n)));
        }
        assert_eq!(t.set.len(), MAX_TAKEN_IDS);
        assert!(t.take(id(0)), "the oldest was forgotten");
        assert!(
            !t.take(id(MAX_TAKEN_IDS as u64)),
            "the newest is remembered"
        );
    }
}
