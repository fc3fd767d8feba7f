/* Tying TLS plaintext to its socket: the socket I/O of the thread that made
 * the TLS call names the socket — nested inside the call for socket-BIO
 * libraries (OpenSSL's default, GnuTLS), around it for memory-BIO ones
 * (node) — and the session → socket mapping is kept for later calls served
 * from the library's buffer. */
#pragma once
#include "include/common.h"
#include "maps/tls.h"
#include "socket/emit.h"

/* Plaintext of `session` that no socket could be named for: kept as a gap
 * for the connection the session is tied to later. */
static __always_inline void session_gap(__u64 session, __u32 tgid, __u8 direction, __u64 bytes)
{
	count(CNT_TLS_UNMAPPED, 1);
	struct tls_session_key sk = { .session = session, .tgid = tgid };
	struct tls_session_gap *g = bpf_map_lookup_elem(&tls_session_gaps, &sk);
	if (g) {
		__sync_fetch_and_add(&g->bytes[direction & 1], bytes);
		return;
	}
	struct tls_session_gap fresh = {};
	fresh.bytes[direction & 1] = bytes;
	bpf_map_update_elem(&tls_session_gaps, &sk, &fresh, BPF_NOEXIST);
}

/* Tie a TLS session to a socket. `replace`: a read's nested syscall is
 * authoritative; a handshake's only fills a gap (its pending entry can be
 * stale by the time another socket is used). Plaintext of the session lost
 * before this becomes a gap on the connection's plaintext offsets. */
static __always_inline void tie_session(struct conn_state *c, __u64 key, __u64 session, bool replace)
{
	struct tls_session_key sk = { .session = session, .tgid = key >> 32 };
	/* Looked up first: an update of the LRU map takes a node from its free
	 * list even when the key is there already (every socket read nested in
	 * an SSL_read, every write in an SSL_write, ties again). */
	__u64 *tied = bpf_map_lookup_elem(&tls_sessions, &sk);
	if (tied && !replace)
		return; /* what an update with BPF_NOEXIST would say */
	if (!tied || *tied != key) {
		if (bpf_map_update_elem(&tls_sessions, &sk, &key, replace ? BPF_ANY : BPF_NOEXIST) != 0)
			return;
	}
	c->tls_session = session;
	struct tls_session_gap *g = bpf_map_lookup_elem(&tls_session_gaps, &sk);
	if (!g)
		return;
	c->plain[DIR_EGRESS] += g->bytes[DIR_EGRESS];
	c->plain[DIR_INGRESS] += g->bytes[DIR_INGRESS];
	c->lost_events++;
	bpf_map_delete_elem(&tls_session_gaps, &sk);
}

/* Called from the exit of a data syscall on a TLS socket: remember it as
 * this thread's last TLS socket, tie the thread's pending TLS handshake,
 * read or write to it, and confirm an accepted write whose socket was not
 * known at its return (memory-BIO libraries flush after the call). True when
 * that write's plaintext should be emitted (by tls_write_emit, after a tail
 * call). */
static __always_inline bool tls_socket_io(struct conn_state *c, __u64 key, __u8 direction)
{
	struct tls_thread *t = tls_thread(true);
	if (!t)
		return false;
	t->last_conn = key;
	struct tls_call *rd = &t->read;
	if (rd->kind) {
		if (rd->kind == TLS_CALL_HANDSHAKE)
			tie_session(c, key, rd->session, false);
		else if (direction == DIR_INGRESS)
			tie_session(c, key, rd->session, true);
	}
	struct tls_call *wr = &t->write;
	if (!wr->kind || direction != DIR_EGRESS || wr->emitted)
		return false;
	struct tls_session_key sk = { .session = wr->session, .tgid = key >> 32 };
	__u64 *known = bpf_map_lookup_elem(&tls_sessions, &sk);
	if (known && *known != key)
		return false; /* this thread's write flushes another session */
	tie_session(c, key, wr->session, false);
	wr->conn_key = key;
	/* Inside the call (socket BIO): its return emits what it accepted. */
	if (!wr->accepted)
		return false;
	wr->emitted = 1;
	return true;
}

/* The socket of a session at a TLS call's entry: the session map, else — for
 * a memory-BIO library whose calls nest no syscall — the thread's last TLS
 * socket if no session claimed it yet. 0 when unknown. */
static __always_inline __u64 session_socket(__u64 session, __u32 tgid)
{
	struct tls_session_key sk = { .session = session, .tgid = tgid };
	__u64 *key = bpf_map_lookup_elem(&tls_sessions, &sk);
	if (key) {
		/* The socket's slot may hold another connection by now (its fd
		 * reused): only a connection tied to this session is its socket. */
		__u64 k = *key;
		struct conn_state *c = bpf_map_lookup_elem(&conns, &k);
		if (c && c->tls_session == session)
			return k;
		bpf_map_delete_elem(&tls_sessions, &sk);
		return 0; /* unknown: a gap, never a guess */
	}
	struct tls_thread *t = tls_thread(false);
	if (!t || !t->last_conn)
		return 0;
	__u64 k = t->last_conn;
	struct conn_state *c = bpf_map_lookup_elem(&conns, &k);
	if (!c || c->tls_session)
		return 0;
	tie_session(c, k, session, false);
	return k;
}

/* Emit the plaintext of the confirmed write pending on this thread. */
static __always_inline int tls_write_emit(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct tls_thread *t = tls_thread(false);
	if (!t || !t->write.kind)
		return 0;
	struct tls_call call = t->write;
	t->write.kind = 0;
	__u64 key = call.conn_key;
	struct conn_state *c = bpf_map_lookup_elem(&conns, &key);
	if (!c || !c->announced)
		return 0;
	emit_plain_data(key, tid, DIR_EGRESS, call.buf, call.len, call.source, MAX_CHUNKS_PER_BUF,
			call.ts);
	return 0;
}
