//! Buffers that one thread fills and another empties, given back to be
//! filled again: the encoded spans the reader queues for the export task, and
//! the request bodies the export task hands to the transport.
//!
//! Freed on the other thread instead, each was a fresh allocation on its next
//! use: with mimalloc purging freed pages at once (see `allocator`), the pages
//! they had emptied went back to the kernel and were faulted in again. In a
//! 6 s saturation run (level `summary`, OTLP to a local collector, nginx
//! `/tiny`) the agent took ~110k minor faults, 71 % of them in these buffers
//! (perf, `page-faults` with call graphs).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// A bounded stack of emptied buffers, shared by the threads that use them.
#[derive(Clone, Debug)]
pub struct BufferPool {
    free: Arc<Mutex<Free>>,
    /// Bytes of capacity kept at most (what the pool may hold resident
    /// while the agent is idle); buffers given back past it are freed.
    max_bytes: usize,
}

/// The pooled buffers and their capacity in all.
#[derive(Debug, Default)]
struct Free {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
}

impl BufferPool {
    /// A pool keeping buffers of at most `max_bytes` of capacity in all.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            free: Arc::default(),
            max_bytes,
        }
    }

    /// Gives `bufs` back, emptied; those past the pool's bytes are freed.
    pub fn give_back(&self, bufs: impl IntoIterator<Item = Vec<u8>>) {
        // A poisoned lock (a panic elsewhere while it was held): the
        // buffers are freed instead.
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        for mut buf in bufs {
            let bytes = free.bytes + buf.capacity();
            if bytes > self.max_bytes {
                continue;
            }
            buf.clear();
            free.bufs.push(buf);
            free.bytes = bytes;
        }
    }

    /// Moves every pooled buffer into `stash` (one lock for many buffers).
    fn take_all(&self, stash: &mut Vec<Vec<u8>>) {
        if let Ok(mut free) = self.free.lock() {
            stash.append(&mut free.bufs);
            free.bytes = 0;
        }
    }

    /// Buffers pooled now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.free.lock().map_or(0, |free| free.bufs.len())
    }
}

/// A buffer on its way back to its pool.
struct Pooled {
    buf: Vec<u8>,
    pool: BufferPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back([std::mem::take(&mut self.buf)]);
    }
}

/// The buffers one thread takes from a pool (the reader's span buffers, the
/// export task's request bodies): taken from it a stash at a time, so that
/// the pool's lock is taken once for many buffers.
#[derive(Debug)]
pub struct BufferSource {
    pool: BufferPool,
    stash: Vec<Vec<u8>>,
}

impl BufferSource {
    /// Buffers from `pool`.
    pub fn new(pool: BufferPool) -> Self {
        Self {
            pool,
            stash: Vec::new(),
        }
    }

    /// An empty buffer with room for at least `len` bytes: a pooled one if
    /// there is one, else a new one.
    pub fn take(&mut self, len: usize) -> Vec<u8> {
        if self.stash.is_empty() {
            self.pool.take_all(&mut self.stash);
        }
        let mut buf = self.stash.pop().unwrap_or_default();
        buf.reserve(len);
        buf
    }

    /// `buf` as `Bytes` that give the buffer back to the pool once the last
    /// of their clones is dropped (a request body: kept for retries, then
    /// reused).
    pub fn bytes(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: self.pool.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_given_back_are_reused_up_to_the_pools_bytes() {
        let pool = BufferPool::new(150);
        let mut source = BufferSource::new(pool.clone());
        let a = source.take(100);
        assert!(a.capacity() >= 100);
        let a_ptr = a.as_ptr();
        pool.give_back([a, Vec::with_capacity(100), Vec::with_capacity(10)]);
        assert_eq!(pool.len(), 2, "the second is past the pool's bytes");
        // Both come out in one take of the stash; the first given back last.
        let b = source.take(5);
        assert_eq!(pool.len(), 0);
        let c = source.take(50);
        assert_eq!(c.as_ptr(), a_ptr, "the buffer came back, emptied");
        assert!(c.is_empty() && c.capacity() >= 100);
        assert!(b.capacity() >= 10);
    }

    #[test]
    fn bytes_go_back_to_the_pool_when_their_last_clone_is_dropped() {
        let pool = BufferPool::new(1024);
        let mut source = BufferSource::new(pool.clone());
        let body = source.bytes(b"request".to_vec());
        let retry = body.clone();
        assert_eq!(&retry[..], b"request");
        drop(body);
        assert_eq!(pool.len(), 0, "a clone is still held");
        drop(retry);
        assert_eq!(pool.len(), 1);
        let back = source.take(0);
        assert!(back.is_empty() && back.capacity() >= 7);
    }
}
