/* A vectored call (readv, writev, sendmsg, recvmsg) of a few small buffers
 * on a plaintext HTTP connection goes out as one data event: its buffers
 * copied one after the other, and — on a connection that keeps no body — a
 * last buffer that is the body of the head before it (body_after_head())
 * left out as the event's skipped tail (DATA_FLAG_SKIPPED_TAIL). nginx
 * answers with writev(head, body): one ring-buffer record a response where
 * the per-buffer path (emit_call()) made two, each a reservation, a copy and
 * a wakeup check here and a record to handle in userspace.
 * Anything else takes the per-buffer path, which has every rule (skip marks,
 * heads split from their body, chunks, caps): a body mark still running at
 * the call's offset, more than GATHER_IOVECS buffers, more than GATHER_MAX
 * bytes to copy (or the payload cap), a buffer of HEAD_SPLIT_MIN bytes or
 * more on a connection that keeps no body, a body buffer that is not the
 * last, a buffer that cannot be read, HTTP/2 frames the kernel walks. */
#pragma once
#include "include/common.h"
#include "maps/conns.h"
#include "maps/config.h"
#include "maps/skip.h"
#include "maps/scratch.h"
#include "socket/emit.h"

/* Buffers of one call gathered at most. */
#define GATHER_IOVECS 8
/* Bytes copied into one gathered event at most (a power of two: the
 * verifier's bound on each copy is 2 * GATHER_MAX - 1). */
#define GATHER_MAX 4096

_Static_assert(4 * GATHER_MAX <= MAX_PAYLOAD, "a gathered copy stays inside the payload");

/* The call to gather, as scalars (a global function's argument). */
struct gather {
	__u64 key;   /* connection key (tgid << 32 | fd) */
	__u64 iov;   /* user address of the iovec array */
	__u64 total; /* bytes the call moved */
	__u32 vlen;  /* iovecs in the array */
	__u32 tid;
	__u8 direction;
	__u8 syscall;
	__u8 _pad[6];
};

/* Emit the call as one event: 1 when done (or its loss counted), 0 when the
 * caller is to take the per-buffer path — nothing emitted, nothing counted. A
 * global function: verified once. */
__noinline int gather_call(struct gather *g)
{
	if (!g)
		return 0;
	__u64 key = g->key;
	struct conn_state *c = bpf_map_lookup_elem(&conns, &key);
	if (!c || (c->l7 != L7_HTTP1 && c->l7 != L7_HTTP2) || g->vlen > GATHER_IOVECS)
		return 0;
	__u8 dir = g->direction & 1;
	__u64 offset = c->bytes[dir];
	__u64 total = g->total;
	__u64 id = c->id;
	struct body_skip *mark = bpf_map_lookup_elem(&body_skip, &id);
	if (mark && mark->until[dir] > offset)
		return 0;
	bool after_head = mark && (mark->flags & BODY_SKIP_AFTER_HEAD) && c->l7 == L7_HTTP1;
	__u32 zero = 0;
	struct agent_config *cfg = bpf_map_lookup_elem(&agent_config, &zero);
	/* HTTP/2 frames the kernel walks, or may start walking (the
	 * direction's first bytes): every buffer goes through the walk. */
	__u8 h2 = c->h2.mode[dir];
	if (cfg && cfg->h2_walk && c->l7 == L7_HTTP2 &&
	    (h2 == H2_HEADER || h2 == H2_DATA || h2 == H2_PARTIAL || (h2 == H2_UNKNOWN && !offset)))
		return 0;
	__u64 cap = cfg && cfg->payload_cap && cfg->payload_cap < GATHER_MAX ? cfg->payload_cap
									   : GATHER_MAX;
	struct scratch_slot *slot = scratch_acquire();
	if (!slot) {
		/* Counted as CNT_SCRATCH_BUSY: the stream advances past a gap. */
		c->lost_events++;
		c->bytes[dir] += total;
		return 1;
	}
	struct data_event *ev = &slot->ev;
	__u64 copied = 0, tail = 0, rest = total;
	__u64 prev_base = 0, prev_len = 0;
	bool whole = true;
	for (int i = 0; i < GATHER_IOVECS; i++) {
		if (!rest || i >= g->vlen)
			break;
		struct iovec v = {};
		if (bpf_probe_read_user(&v, sizeof(v), (const void *)(g->iov + i * sizeof(v)))) {
			whole = false;
			break;
		}
		__u64 n = v.iov_len < rest ? v.iov_len : rest;
		if (after_head && i > 0 &&
		    body_after_head(prev_base, prev_len, (__u64)v.iov_base, n)) {
			/* The body of the head before it: the event's tail, if last. */
			whole = n == rest;
			tail = n;
			rest -= n;
			break;
		}
		if (copied + n > cap || (after_head && n >= HEAD_SPLIT_MIN)) {
			whole = false;
			break;
		}
		__u64 at = copied & (2 * GATHER_MAX - 1);
		__u64 len = n & (2 * GATHER_MAX - 1);
		if (len && bpf_probe_read_user(ev->payload + at, len, (const void *)v.iov_base)) {
			whole = false;
			break;
		}
		copied += n;
		prev_base = (__u64)v.iov_base;
		prev_len = n;
		rest -= n;
	}
	bool emit = whole && !rest;
	long err = 0;
	if (emit) {
		fill_header(&ev->hdr, c, EVENT_DATA, key, g->tid);
		ev->offset = offset;
		ev->len = (__u32)total;
		ev->captured = (__u32)copied;
		ev->direction = dir;
		ev->source = SOURCE_SYSCALL;
		ev->syscall = g->syscall;
		ev->flags = tail ? DATA_FLAG_SKIPPED_TAIL : 0;
		__u64 n = copied;
		barrier_var(n);
		if (n > GATHER_MAX)
			n = GATHER_MAX;
		err = bpf_ringbuf_output(&events, ev, DATA_HEADER_SIZE + n,
					 ringbuf_flags(DATA_HEADER_SIZE + n));
	}
	scratch_release(slot);
	if (!emit)
		return 0;
	if (err) {
		lost(c);
	} else {
		c->data_events++;
		count(CNT_DATA_EVENTS, 1);
	}
	if (tail)
		count(CNT_SKIPPED_BYTES, tail);
	c->bytes[dir] += total;
	return 1;
}
