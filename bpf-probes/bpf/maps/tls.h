/* `tls_threads`: what a thread's TLS calls leave for its next probes, in
 * the thread's own storage (no hashing, no bucket lock on every TLS call):
 * its last SSL_read-style and SSL_write-style call (entry probe → syscall →
 * return probe; kind 0: none), kept apart so a read does not erase a write
 * still waiting for its socket write (memory-BIO libraries such as node's
 * flush after SSL_write), and the TLS socket it last did I/O on (0: none):
 * the socket of a memory-BIO session, whose TLS calls nest no syscall.
 * `tls_sessions`: TLS session pointer (per process) → connection key, learnt
 * from the syscall nested in a TLS call; serves reads answered from the TLS
 * library's buffer without any syscall.
 * `tls_session_gaps`: see below. */
#pragma once
#include "include/common.h"

#define TLS_CALL_READ 1
#define TLS_CALL_WRITE 2
#define TLS_CALL_HANDSHAKE 3

struct tls_call {
	__u64 session; /* SSL* / gnutls_session_t */
	__u64 buf;
	__u64 len;     /* requested length (write: the plaintext length) */
	__u64 out_len; /* SSL_read_ex: size_t *readbytes */
	__u64 conn_key; /* write: the socket its nested syscall used */
	__u64 ts;      /* write: entry time, the plaintext's timestamp */
	__u8 kind;     /* TLS_CALL_* */
	__u8 source;   /* enum data_source */
	__u8 emitted;  /* write: plaintext already sent */
	__u8 accepted; /* write: the library took `len` bytes (its return said so) */
	__u8 _pad[4];
};

struct tls_session_key {
	__u64 session;
	__u32 tgid;
	__u32 _pad;
};

struct tls_thread {
	struct tls_call read;  /* TLS_CALL_READ or TLS_CALL_HANDSHAKE */
	struct tls_call write; /* TLS_CALL_WRITE */
	__u64 last_conn;       /* connection key */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tls_thread);
} tls_threads SEC(".maps");

/* The current thread's TLS state; created when `create`, else NULL when it
 * has none. */
static __always_inline struct tls_thread *tls_thread(bool create)
{
	return bpf_task_storage_get(&tls_threads, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_session_key);
	__type(value, __u64);
} tls_sessions SEC(".maps");

/* Plaintext bytes of a session that could not be attributed (its socket not
 * known yet), by direction: when the session is tied to its socket they
 * become a gap on that connection's plaintext stream, so the parser knows
 * bytes are missing before what comes next instead of pairing across them. */
struct tls_session_gap {
	__u64 bytes[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tls_session_key);
	__type(value, struct tls_session_gap);
} tls_session_gaps SEC(".maps");

/* A connection is closing: forget its session's mapping and unattributed
 * bytes. Libraries free the session at close and malloc hands the same
 * pointer to the next connection; a stale entry would make that
 * connection's handshake tie fail (it only fills an empty slot) and
 * send its first plaintext — a TLS 1.3 request read along with the client's
 * Finished, served later from the library's buffer without a syscall — to
 * the closed socket, where it became a gap. */
static __always_inline void forget_tls_session(struct conn_state *c, __u64 key)
{
	if (!c->tls_session)
		return;
	struct tls_session_key sk = { .session = c->tls_session, .tgid = key >> 32 };
	__u64 *mapped = bpf_map_lookup_elem(&tls_sessions, &sk);
	if (mapped && *mapped == key)
		bpf_map_delete_elem(&tls_sessions, &sk);
	bpf_map_delete_elem(&tls_session_gaps, &sk);
}
