//! The attributes every span of a connection carries
//! (`semconv::spans::connection_attributes`: peer address and port, the
//! process, TLS, `tap.direction`, `tap.connection.id`, `tap.l7_protocol`),
//! encoded once per connection and copied into each of its spans. Writing
//! them was ~900 instructions per span (bench/instructions.sh, callgrind).
//!
//! An entry is used only while the connection is what it was when encoded:
//! the same process and TLS facts (the very `Arc`s, which the entry holds
//! so that their addresses cannot be reused), direction, protocol and
//! endpoints; otherwise it is encoded again. Entries go when their
//! connection's report comes (it is closed), or all at once past
//! [`MAX_CONNECTIONS`].

use std::sync::Arc;

use rustc_hash::FxHashMap;
use semconv::model::{Connection, Direction, Endpoints, L7Protocol, ProcessInfo, TlsInfo};
use semconv::spans::connection_attributes;

use super::span_proto::{AttributeWriter, SPAN_ATTRIBUTES};

/// Connections remembered at most; past that the cache starts over.
pub const MAX_CONNECTIONS: usize = 65_536;

/// What the encoded attributes were made from.
struct Made {
    process: Arc<ProcessInfo>,
    tls: Option<Arc<TlsInfo>>,
    direction: Direction,
    protocol: L7Protocol,
    endpoints: Endpoints,
}

impl Made {
    fn of(c: &Connection) -> Self {
        Made {
            process: c.process.clone(),
            tls: c.tls.clone(),
            direction: c.direction,
            protocol: c.protocol,
            endpoints: c.endpoints,
        }
    }

    fn is(&self, c: &Connection) -> bool {
        Arc::ptr_eq(&self.process, &c.process)
            && match (&self.tls, &c.tls) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
            && self.direction == c.direction
            && self.protocol == c.protocol
            && self.endpoints == c.endpoints
    }
}

/// The encoded connection attributes, by connection id.
#[derive(Default)]
pub struct ConnectionAttributes {
    by_id: FxHashMap<u64, (Made, Vec<u8>)>,
}

impl ConnectionAttributes {
    /// The span attributes of `connection`, encoded as an
    /// [`AttributeWriter`] for [`SPAN_ATTRIBUTES`] writes them (the process
    /// ones being `process_encoded`): kept, or encoded now.
    pub fn of(&mut self, connection: &Connection, process_encoded: &[u8]) -> &[u8] {
        if self.by_id.len() >= MAX_CONNECTIONS && !self.by_id.contains_key(&connection.id) {
            self.by_id.clear();
        }
        let entry = self
            .by_id
            .entry(connection.id)
            .or_insert_with(|| (Made::of(connection), Vec::new()));
        if entry.1.is_empty() || !entry.0.is(connection) {
            entry.0 = Made::of(connection);
            entry.1.clear();
            connection_attributes(
                connection,
                &mut AttributeWriter::new(SPAN_ATTRIBUTES, &mut entry.1)
                    .with_process(&connection.process, process_encoded),
            );
        }
        &entry.1
    }

    /// Forget connection `id` (closed).
    pub fn forget(&mut self, id: u64) {
        self.by_id.remove(&id);
    }

    /// Connections remembered now.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use semconv::model::TlsInfo;

    use super::super::spans::tests::{client, process, server};
    use super::*;

    /// What writing the attributes afresh gives.
    fn fresh(c: &Connection) -> Vec<u8> {
        let mut buf = Vec::new();
        connection_attributes(c, &mut AttributeWriter::new(SPAN_ATTRIBUTES, &mut buf));
        buf
    }

    #[test]
    fn kept_attributes_are_what_fresh_ones_are_and_follow_changes() {
        let p = process(10, "/usr/sbin/nginx");
        let mut cache = ConnectionAttributes::default();
        let mut ex = server(&p, 200);
        let process_encoded = {
            let mut b = Vec::new();
            semconv::resource::process_attributes(
                &ex.connection.process,
                &mut AttributeWriter::new(SPAN_ATTRIBUTES, &mut b),
            );
            b
        };
        let first = cache.of(&ex.connection, &process_encoded).to_vec();
        assert_eq!(first, fresh(&ex.connection));
        assert!(!first.is_empty());
        // The same connection again: the same bytes.
        assert_eq!(cache.of(&ex.connection, &process_encoded), &first[..]);
        // TLS facts learnt: encoded again.
        ex.connection.tls = Some(Arc::new(TlsInfo {
            server_name: Some("example.com".into()),
            ..Default::default()
        }));
        let with_tls = cache.of(&ex.connection, &process_encoded).to_vec();
        assert_eq!(with_tls, fresh(&ex.connection));
        assert_ne!(with_tls, first);
        // Another protocol (an upgrade): encoded again.
        ex.connection.protocol = L7Protocol::Http2;
        assert_eq!(
            cache.of(&ex.connection, &process_encoded),
            &fresh(&ex.connection)[..]
        );
        // Another connection: its own entry; a closed one is forgotten.
        let mut other = client(&p, 200);
        other.connection.id = ex.connection.id + 1;
        assert_eq!(
            cache.of(&other.connection, &process_encoded),
            &fresh(&other.connection)[..]
        );
        assert_eq!(cache.len(), 2);
        cache.forget(ex.connection.id);
        assert_eq!(cache.len(), 1);
    }
}
