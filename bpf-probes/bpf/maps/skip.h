/* `body_skip`: struct body_skip by connection id, written by userspace once
 * it has parsed a message head and knows how much of what follows is body it
 * will not keep (the capture level keeps no body, or the kept prefix is
 * full); read by emit_chunk(), which then covers those bytes with a
 * DATA_FLAG_SKIPPED event instead of copying them. LRU: an entry whose
 * connection ended without userspace removing it ages out. */
#pragma once
#include "include/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct body_skip);
} body_skip SEC(".maps");

/* True when userspace said the connection keeps no body at all
 * (BODY_SKIP_AFTER_HEAD). */
static __always_inline bool skip_after_head(__u64 id)
{
	struct body_skip *s = bpf_map_lookup_elem(&body_skip, &id);
	return s && (s->flags & BODY_SKIP_AFTER_HEAD);
}

/* Is the buffer (base, len) the body of the message whose head ends the
 * buffer before it (prev_base, prev_len)? True when that buffer ends with
 * CRLF CRLF and this one (of at least 8 bytes) starts like neither a message
 * (`HTTP/`, or an upper-case token and a space) nor a chunk-size line (hex
 * digits, then CR, `;`, space or tab). A global function: checked once by
 * the verifier, not in every turn of the callers' iovec loops. */
__noinline int body_after_head(__u64 prev_base, __u64 prev_len, __u64 base, __u64 len)
{
	if (prev_len < 4 || len < 8)
		return 0;
	__u32 end = 0;
	if (bpf_probe_read_user(&end, sizeof(end), (const void *)(prev_base + prev_len - 4)))
		return 0;
	if (end != 0x0a0d0a0d) /* "\r\n\r\n", little-endian */
		return 0;
	__u8 b[8] = {};
	if (bpf_probe_read_user(b, sizeof(b), (const void *)base))
		return 0;
	if (b[0] == 'H' && b[1] == 'T' && b[2] == 'T' && b[3] == 'P' && b[4] == '/')
		return 0;
	bool token = true, hex = true;
	for (int i = 0; i < 8; i++) {
		__u8 ch = b[i];
		bool up = (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_';
		bool hx = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
		bool sep = ch == '\r' || ch == ';' || ch == ' ' || ch == '\t';
		if (i > 0 && token && ch == ' ')
			return 0; /* a method and a space: a request */
		if (i > 0 && hex && sep)
			return 0; /* a chunk-size line */
		token = token && up;
		hex = hex && hx;
		if (!token && !hex)
			return 1;
	}
	return 0; /* still a token or hex after 8 bytes: maybe a start */
}

/* Bytes from stream offset `offset` (direction `dir`) of connection `id`
 * that userspace said are body it does not keep; 0 when none. */
static __always_inline __u64 skippable_at(__u64 id, __u8 dir, __u64 offset)
{
	struct body_skip *s = bpf_map_lookup_elem(&body_skip, &id);
	if (!s)
		return 0;
	__u64 until = s->until[dir & 1];
	return until > offset ? until - offset : 0;
}
