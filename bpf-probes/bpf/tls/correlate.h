/* Tying TLS plaintext to its socket: the socket I/O of the thread that made
 * the TLS call names the socket — nested inside the call for socket-BIO
 * libraries (OpenSSL's default, GnuTLS), around it for memory-BIO ones
 * (node) — and the session → socket mapping is kept for later calls served
 * from the library's buffer. */
#pragma once
#include "include/common.h"
#include "maps/tls.h"
#include "socket/emit.h"

/* Tie a TLS session to a socket. `replace`: a read's nested syscall is
 * authoritative; a handshake's only fills a gap (its pending entry can be
 * stale by the time another socket is used). */
static __always_inline void tie_session(struct conn_state *c, __u64 key, __u64 session, bool replace)
{
	struct tls_session_key sk = { .session = session, .tgid = key >> 32 };
	if (bpf_map_update_elem(&tls_sessions, &sk, &key, replace ? BPF_ANY : BPF_NOEXIST) == 0)
		c->tls_session = session;
}

/* Called from the exit of a data syscall on a TLS socket: remember it as
 * this thread's last TLS socket, tie the thread's pending TLS handshake or
 * read to it, and confirm a pending first write on an egress syscall. True
 * when that write's plaintext should be emitted (by tls_write_emit, after a
 * tail call). */
static __always_inline bool tls_socket_io(struct conn_state *c, __u64 key, __u32 tid, __u8 direction)
{
	bpf_map_update_elem(&last_tls_conn, &tid, &key, BPF_ANY);
	struct tls_call *rd = bpf_map_lookup_elem(&tls_pending_read, &tid);
	if (rd) {
		if (rd->kind == TLS_CALL_HANDSHAKE)
			tie_session(c, key, rd->session, false);
		else if (direction == DIR_INGRESS)
			tie_session(c, key, rd->session, true);
	}
	struct tls_call *wr = bpf_map_lookup_elem(&tls_pending_write, &tid);
	if (!wr || direction != DIR_EGRESS || wr->emitted)
		return false;
	struct tls_session_key sk = { .session = wr->session, .tgid = key >> 32 };
	__u64 *known = bpf_map_lookup_elem(&tls_sessions, &sk);
	if (known && *known != key)
		return false; /* this thread's write flushes another session */
	tie_session(c, key, wr->session, false);
	wr->emitted = 1;
	wr->conn_key = key;
	return true;
}

/* The socket of a session at a TLS call's entry: the session map, else — for
 * a memory-BIO library whose calls nest no syscall — the thread's last TLS
 * socket if no session claimed it yet. 0 when unknown. */
static __always_inline __u64 session_socket(__u64 session, __u32 tgid, __u32 tid)
{
	struct tls_session_key sk = { .session = session, .tgid = tgid };
	__u64 *key = bpf_map_lookup_elem(&tls_sessions, &sk);
	if (key)
		return *key;
	__u64 *last = bpf_map_lookup_elem(&last_tls_conn, &tid);
	if (!last)
		return 0;
	__u64 k = *last;
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
	struct tls_call *tc = bpf_map_lookup_elem(&tls_pending_write, &tid);
	if (!tc)
		return 0;
	__u64 key = tc->conn_key;
	struct conn_state *c = bpf_map_lookup_elem(&conns, &key);
	if (!c || !c->announced)
		return 0;
	emit_data(key, tid, DIR_EGRESS, 0, tc->buf, tc->len, 0, tc->source, MAX_CHUNKS_PER_BUF);
	return 0;
}
