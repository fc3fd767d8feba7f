//! What an exporter writes the same for every output of a connection (the
//! JSON line's connection metadata, the span's connection attributes),
//! written once per connection and copied after.
//!
//! An entry is used only while the connection is what it was written from:
//! the same process (the very `Arc`, which the entry holds so that its
//! address cannot be reused), TLS facts, direction, protocol and endpoints;
//! otherwise it is written again. Entries go when their connection's report
//! comes (it is closed), or all at once past [`CACHED_CONNECTIONS`].

use std::sync::Arc;

use rustc_hash::FxHashMap;
use semconv::model::{Connection, Direction, Endpoints, L7Protocol, ProcessInfo, TlsInfo};

/// Connections whose bytes are kept written; past this many (reports lost,
/// or a flood of short connections still open) the cache starts over.
pub const CACHED_CONNECTIONS: usize = 16 * 1024;

/// One connection's bytes and what they were written from.
struct Entry {
    process: Arc<ProcessInfo>,
    tls: Option<Arc<TlsInfo>>,
    direction: Direction,
    protocol: L7Protocol,
    endpoints: Endpoints,
    bytes: Vec<u8>,
}

impl Entry {
    fn written_for(&self, c: &Connection) -> bool {
        Arc::ptr_eq(&self.process, &c.process)
            && self.tls == c.tls
            && self.direction == c.direction
            && self.protocol == c.protocol
            && self.endpoints == c.endpoints
    }
}

/// Bytes written once per connection, by connection id.
#[derive(Default)]
pub struct ConnectionCache {
    by_id: FxHashMap<u64, Entry>,
}

impl ConnectionCache {
    /// The bytes of `c`: kept, or written now by `write` (into an empty
    /// buffer) when there are none or `c` changed since.
    pub fn get_or_write(
        &mut self,
        c: &Connection,
        write: impl FnOnce(&Connection, &mut Vec<u8>),
    ) -> &[u8] {
        if self.by_id.len() >= CACHED_CONNECTIONS && !self.by_id.contains_key(&c.id) {
            self.by_id.clear();
        }
        let entry = self.by_id.entry(c.id).or_insert_with(|| Entry {
            process: c.process.clone(),
            tls: c.tls.clone(),
            direction: c.direction,
            protocol: c.protocol,
            endpoints: c.endpoints,
            bytes: Vec::new(),
        });
        if entry.bytes.is_empty() || !entry.written_for(c) {
            entry.process = c.process.clone();
            entry.tls = c.tls.clone();
            entry.direction = c.direction;
            entry.protocol = c.protocol;
            entry.endpoints = c.endpoints;
            entry.bytes.clear();
            write(c, &mut entry.bytes);
        }
        &entry.bytes
    }

    /// Forget connection `id` (closed).
    pub fn forget(&mut self, id: u64) {
        self.by_id.remove(&id);
    }

    /// Connections with bytes kept now.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none has bytes kept.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use semconv::model::TlsInfo;
    use semconv::spans::connection_attributes;

    use super::super::otlp::span_proto::{AttributeWriter, SPAN_ATTRIBUTES};
    use super::super::otlp::spans::tests::{client, process, server};
    use super::*;

    /// The span attributes of `c`, as the OTLP span writer writes them.
    fn span_attributes(c: &Connection, buf: &mut Vec<u8>) {
        connection_attributes(c, &mut AttributeWriter::new(SPAN_ATTRIBUTES, buf));
    }

    fn fresh(c: &Connection) -> Vec<u8> {
        let mut buf = Vec::new();
        span_attributes(c, &mut buf);
        buf
    }

    #[test]
    fn kept_bytes_are_what_fresh_ones_are_and_follow_changes() {
        let p = process(10, "/usr/sbin/nginx");
        let mut cache = ConnectionCache::default();
        let mut ex = server(&p, 200);
        let first = cache.get_or_write(&ex.connection, span_attributes).to_vec();
        assert_eq!(first, fresh(&ex.connection));
        assert!(!first.is_empty());
        // The same connection again: the same bytes, not written again.
        let again = cache.get_or_write(&ex.connection, |_, _| panic!("written again"));
        assert_eq!(again, &first[..]);
        // TLS facts learnt: written again.
        ex.connection.tls = Some(Arc::new(TlsInfo {
            server_name: Some("example.com".into()),
            ..Default::default()
        }));
        let with_tls = cache.get_or_write(&ex.connection, span_attributes).to_vec();
        assert_eq!(with_tls, fresh(&ex.connection));
        assert_ne!(with_tls, first);
        // Another protocol (an upgrade): written again.
        ex.connection.protocol = L7Protocol::Http2;
        assert_eq!(
            cache.get_or_write(&ex.connection, span_attributes),
            &fresh(&ex.connection)[..]
        );
        // Another connection: its own entry; a closed one is forgotten.
        let mut other = client(&p, 200);
        other.connection.id = ex.connection.id + 1;
        assert_eq!(
            cache.get_or_write(&other.connection, span_attributes),
            &fresh(&other.connection)[..]
        );
        assert_eq!(cache.len(), 2);
        cache.forget(ex.connection.id);
        assert_eq!(cache.len(), 1);
    }
}
