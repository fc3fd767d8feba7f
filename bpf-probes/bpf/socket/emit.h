/* Writing connection and data events to the ring buffer, counting every
 * event that could not be written and every byte that was not captured. */
#pragma once
#include "include/common.h"
#include "maps/events.h"
#include "maps/counters.h"
#include "maps/conns.h"
#include "maps/scratch.h"
#include "maps/config.h"
#include "maps/skip.h"
#include "socket/sock.h"
#include "socket/h2_walk.h"

static __always_inline void fill_header(struct event_header *h, struct conn_state *c,
					__u32 kind, __u64 key, __u32 tid)
{
	h->conn_id = c->id;
	h->timestamp_ns = bpf_ktime_get_ns();
	h->kind = kind;
	h->tgid = key >> 32;
	h->tid = tid;
	h->fd = (__u32)key;
}

static __always_inline void lost(struct conn_state *c)
{
	count(CNT_RINGBUF_FULL, 1);
	c->lost_events++;
}

/* Tell userspace about a connection, once, before its first data event. */
static __always_inline void announce(struct conn_state *c, __u64 key, __u32 tid)
{
	struct conn_open_event ev = {};
	fill_header(&ev.hdr, c, EVENT_CONN_OPEN, key, tid);
	struct sock *sk = tcp_sock_of_fd((__u32)key);
	if (sk)
		read_tuple(sk, &ev);
	ev.opened_ns = c->opened_ns;
	ev.role = c->role;
	ev.l7 = c->l7;
	ev.flags = c->adopted ? CONN_FLAG_ADOPTED : 0;
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	c->announced = 1;
	count(CNT_CONNS_TRACKED, 1);
	/* Wake the reader now: it reads the process's identity from /proc, which a
	 * short-lived process may not have for long. */
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), BPF_RB_FORCE_WAKEUP))
		lost(c);
	__u32 tgid = key >> 32;
	__u32 one = 1;
	bpf_map_update_elem(&proc_conns, &tgid, &one, BPF_ANY);
}

/* The connection is over (close() or, via userspace, process exit). */
static __always_inline void emit_close(struct conn_state *c, __u64 key, __u32 tid, __u8 reason)
{
	struct conn_close_event ev = {};
	fill_header(&ev.hdr, c, EVENT_CONN_CLOSE, key, tid);
	ev.bytes_sent = c->bytes[DIR_EGRESS];
	ev.bytes_received = c->bytes[DIR_INGRESS];
	ev.plain_sent = c->plain[DIR_EGRESS];
	ev.plain_received = c->plain[DIR_INGRESS];
	ev.truncated_bytes = c->truncated_bytes;
	ev.data_events = c->data_events;
	ev.lost_events = c->lost_events;
	ev.reason = reason;
	ev.l7 = c->l7;
	ev.role = c->role;
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), ringbuf_flags(sizeof(ev))))
		count(CNT_RINGBUF_FULL, 1);
}

/* Not DATA_FLAGs, never in an event. EMIT_SKIP_ALL asks emit_chunk() to
 * cover the call's rest as skipped (a body after its head,
 * BODY_SKIP_AFTER_HEAD). EMIT_MAY_SPLIT lets it end a copy at the end of the
 * message head the buffer starts with, when body follows in the same buffer
 * and the connection keeps no body: the caller then skips the rest.
 * EMIT_MAY_WALK: the bytes may be HTTP/2 frames to walk (emit_h2_call():
 * socket bytes of a connection sniffed as HTTP/2, and TLS plaintext); without
 * it the walk's look-ups are not paid. */
#define EMIT_SKIP_ALL 0x80
#define EMIT_MAY_SPLIT 0x40
#define EMIT_MAY_WALK 0x20

/* One data event to emit: everything the global emit_chunk() needs, as scalars. */
struct chunk {
	__u64 key;      /* connection key (tgid << 32 | fd) */
	__u64 buf;      /* user address of the bytes; 0 = not visible (sendfile) */
	__u64 covers;   /* stream bytes this event covers when it copies */
	__u64 rest;     /* stream bytes of the call from here on (>= covers) */
	__u64 ts;       /* the event's timestamp; 0 = now */
	__u64 covered;  /* out: stream bytes the event covered (covers, or a skip) */
	__u32 tid;
	__u8 direction; /* enum direction */
	__u8 source;    /* enum data_source */
	__u8 syscall;   /* enum syscall_id */
	__u8 flags;     /* DATA_FLAG_* */
	__u8 last;      /* the call's last event: it covers `covers` whatever happens */
	__u64 skip_len; /* in: skip this many bytes (a body after its head in the
			 * same buffer); out: the copy ended at a head's end and
			 * this much body follows (the next event's skip_len) */
	__u8 skipped;   /* out: the event was a skip (DATA_FLAG_SKIPPED) */
	__u8 _pad[6];
	__u64 keep;     /* in (HTTP/2 walk): copy this many bytes and cover the
			 * rest of `covers` as the event's skipped tail; 0: not used */
};

/* Emit one data event of at most MAX_PAYLOAD captured bytes covering
 * ch->covers stream bytes (the rest counted as truncated), and advance the
 * connection's offset. Bytes userspace marked as body it does not keep
 * (maps/skip.h) are covered instead by an event with no payload flagged
 * DATA_FLAG_SKIPPED: all of the call's rest when the mark reaches past it,
 * else up to the mark (not on the call's last event, which must cover
 * everything it was given). With EMIT_MAY_SPLIT on a connection that keeps
 * no body, a copy starting with a message head that has body after it in the
 * same buffer (its Content-Length) ends with the head: when the rest of the
 * buffer is all body, the event covers it as its skipped tail
 * (DATA_FLAG_SKIPPED_TAIL), else ch->skip_len says how much body the next
 * event is to skip. ch->covered says how far the event reached.
 * A global function: the verifier checks it once, not once per call site,
 * which keeps the callers' loops cheap to verify. `split`: the variant that
 * may end a copy at a head's end (socket data and TLS plaintext; ~20 ms of
 * verification per program that holds it, its loops being global functions
 * of maps/skip.h). */
static __always_inline int emit_chunk_as(struct chunk *ch, const bool split, const bool h2)
{
	if (!ch)
		return 0;
	__u64 key = ch->key;
	__u64 covers = ch->covers;
	ch->covered = covers;
	ch->skipped = 0;
	struct conn_state *c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	__u8 dir = ch->direction & 1;
	__u64 offset = ch->source == SOURCE_SYSCALL ? c->bytes[dir] : c->plain[dir];
	__u8 flags = ch->flags & ~(EMIT_SKIP_ALL | EMIT_MAY_SPLIT | EMIT_MAY_WALK);
	__u64 skip_len = ch->skip_len;
	ch->skip_len = 0;
	/* Raw TLS records count socket bytes, not the parsed plaintext. */
	__u64 id = c->id;
	/* The HTTP/2 walk planned the event: no mark changes it. */
	struct body_skip *mark =
		h2 || (flags & DATA_FLAG_RAW_TLS) ? NULL : bpf_map_lookup_elem(&body_skip, &id);
	__u64 body = 0;
	if (mark && mark->until[dir] > offset)
		body = mark->until[dir] - offset;
	bool may_split = split && (ch->flags & EMIT_MAY_SPLIT) && mark &&
			 (mark->flags & BODY_SKIP_AFTER_HEAD);
	if (ch->flags & EMIT_SKIP_ALL)
		body = ch->rest;
	if (skip_len)
		body = skip_len < ch->rest ? skip_len : ch->rest;
	if (body && (body >= ch->rest || !ch->last)) {
		covers = body < ch->rest ? body : ch->rest;
		flags |= DATA_FLAG_SKIPPED;
		ch->covered = covers;
		ch->skipped = 1;
	}
	struct scratch_slot *slot = scratch_acquire();
	if (!slot) {
		/* Counted as CNT_SCRATCH_BUSY; the stream still advances, so
		 * userspace sees a gap (lost event), never foreign bytes. */
		c->lost_events++;
		if (ch->source == SOURCE_SYSCALL)
			c->bytes[dir] += covers;
		else
			c->plain[dir] += covers;
		return 0;
	}
	struct data_event *ev = &slot->ev;
	__u64 n = covers > MAX_PAYLOAD ? MAX_PAYLOAD : covers;
	__u64 tail = 0; /* body after a split head, skipped as the event's tail */
	if (!ch->buf || (flags & DATA_FLAG_SKIPPED))
		n = 0;
	/* HTTP/2 walk: the frames up to a DATA payload copied, the payload
	 * the skipped tail. */
	__u64 keep = h2 ? ch->keep : 0;
	if (keep && keep < covers && n) {
		tail = covers - keep;
		if (n > keep)
			n = keep;
	}
	fill_header(&ev->hdr, c, EVENT_DATA, key, ch->tid);
	if (ch->ts)
		ev->hdr.timestamp_ns = ch->ts;
	ev->offset = offset;
	ev->len = (__u32)covers;
	ev->direction = dir;
	ev->source = ch->source;
	ev->syscall = ch->syscall;
	ev->flags = flags;
	__u32 zero_key = 0;
	struct agent_config *cfg = bpf_map_lookup_elem(&agent_config, &zero_key);
	if (cfg && cfg->payload_cap && n > cfg->payload_cap)
		n = cfg->payload_cap;
	barrier_var(n);
	if (n > MAX_PAYLOAD)
		n = MAX_PAYLOAD;
	if (n && bpf_probe_read_user(ev->payload, n, (const void *)ch->buf))
		n = 0;
	/* The copy fell short of the frames before the tail (the payload
	 * cap, an unreadable buffer): all of it is missing, none skipped. */
	if (tail && n < keep)
		tail = 0;
	if (tail)
		ev->flags |= DATA_FLAG_SKIPPED_TAIL;
	if (may_split && n >= HEAD_SPLIT_MIN && starts_message(*(const __u64 *)ev->payload)) {
		__u32 h = head_end(slot, (__u32)n);
		__u64 length = slot->content_length; /* + 1; 0 when none */
		barrier_var(h);
		if (h > HEAD_SCAN_BYTES)
			h = 0;
		/* Body after the head, starting like one: copy the head only.
		 * When the rest of the buffer is all body, the event covers it as
		 * its skipped tail; else the next event skips the body. */
		bool all_body = ch->rest - h <= length - 1;
		/* The call's last event covers all of it: it may end with a
		 * skipped tail, not hand a skip to an event that will not come. */
		if (h && length > 1 && length != CL_CONFLICT && h + 8 <= n &&
		    (all_body || !ch->last) && starts_body(*(const __u64 *)(ev->payload + h))) {
			n = h;
			if (all_body) {
				tail = ch->rest - h;
				covers = ch->rest;
				ev->flags |= DATA_FLAG_SKIPPED_TAIL;
			} else {
				covers = h;
				ch->skip_len = length - 1;
			}
			ev->len = (__u32)covers;
			ch->covered = covers;
		}
	}
	__u64 missing = flags & DATA_FLAG_SKIPPED ? 0 : covers - n - tail;
	if (missing)
		ev->flags |= DATA_FLAG_TRUNCATED;
	ev->captured = (__u32)n;
	long err = bpf_ringbuf_output(&events, ev, DATA_HEADER_SIZE + n,
				      ringbuf_flags(DATA_HEADER_SIZE + n));
	scratch_release(slot);
	if (err) {
		lost(c);
	} else {
		c->data_events++;
		count(CNT_DATA_EVENTS, 1);
	}
	if (missing) {
		count(CNT_TRUNCATED_EVENTS, 1);
		count(CNT_TRUNCATED_BYTES, missing);
		c->truncated_bytes += missing;
	}
	if (flags & DATA_FLAG_SKIPPED)
		count(CNT_SKIPPED_BYTES, covers);
	if (tail)
		count(CNT_SKIPPED_BYTES, tail);
	if (ch->source == SOURCE_SYSCALL)
		c->bytes[dir] += covers;
	else
		c->plain[dir] += covers;
	return 0;
}

__noinline int emit_chunk(struct chunk *ch)
{
	return emit_chunk_as(ch, false, false);
}

__noinline int emit_chunk_split(struct chunk *ch)
{
	return emit_chunk_as(ch, true, false);
}

__noinline int emit_chunk_h2(struct chunk *ch)
{
	return emit_chunk_as(ch, false, true);
}

/* The events of a call on an HTTP/2 connection whose frames the kernel
 * walks (socket/h2_walk.h), planned one by one by h2_plan(). On return,
 * call->buf and call->rest say what is left of the call for the per-buffer
 * path: nothing, or (the walk not started, or given up) the rest. A
 * global function: verified once. */
__noinline int emit_h2_call(struct chunk *call)
{
	if (!call)
		return 0;
	__u32 zero_key = 0;
	struct agent_config *cfg = bpf_map_lookup_elem(&agent_config, &zero_key);
	if (!cfg || !cfg->h2_walk || !call->buf ||
	    call->flags & (DATA_FLAG_RAW_TLS | EMIT_SKIP_ALL))
		return 0;
	__u64 key = call->key;
	struct conn_state *c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	__u8 source = call->source;
	if (source == SOURCE_SYSCALL && c->l7 != L7_HTTP2)
		return 0;
	__u8 dir = call->direction & 1;
	__u64 offset = source == SOURCE_SYSCALL ? c->bytes[dir] : c->plain[dir];
	__u64 len = call->rest;
	__u64 buf = call->buf;
	if (c->h2.mode[dir] == H2_UNKNOWN) {
		if (offset || c->adopted || !h2_start(&c->h2, buf, len, dir, source))
			return 0;
	} else if (c->h2.source != source + 1 || c->h2.mode[dir] == H2_LOST) {
		return 0;
	}
	struct h2_step s = {};
	__u64 done = 0;
	for (int i = 0; i < H2_EVENTS_PER_CALL; i++) {
		if (done >= len)
			break;
		s.buf = buf + done;
		s.offset = offset + done;
		s.rest = len - done;
		h2_plan(&c->h2, &s, dir);
		if (!s.ok)
			break;
		call->buf = s.buf;
		call->rest = s.rest;
		call->covers = s.covers;
		call->last = 0;
		call->skip_len = s.skip && !s.copy ? s.covers : 0;
		call->keep = s.skip ? s.copy : 0;
		emit_chunk_h2(call);
		__u64 covered = call->covered;
		if (!covered || covered > s.rest)
			covered = s.rest;
		done += covered;
		/* Not the event planned: the walk no longer knows where it is. */
		if (covered != s.covers) {
			c->h2.mode[dir] = H2_LOST;
			break;
		}
	}
	if (done < len || c->h2.mode[dir] == H2_LOST) {
		c->h2.mode[dir] = H2_LOST;
		count(CNT_H2_WALKS_LOST, 1);
	}
	call->buf = buf + done;
	call->rest = len - done;
	call->skip_len = 0;
	call->keep = 0;
	call->last = 0;
	return 0;
}

/* The loop of emit_data(), a global function of its own so that the
 * verifier checks it once, not in every caller's loop (data_exit_main walks
 * up to MAX_IOVECS buffers). `call` holds the event template, `call->rest`
 * the call's length and `call->covers` its max_chunks. */
static __always_inline int emit_call_as(struct chunk *call, const bool split)
{
	if (!call)
		return 0;
	/* `call` itself is the event template, changed chunk by chunk: a copy
	 * here would take stack the frames below emit_chunk() need. */
	__u64 len = call->rest;
	__u64 buf = call->buf;
	__u64 max_chunks = call->covers;
	__u64 done = 0;
	__u64 copies = 0;
	for (int i = 0; i < MAX_CHUNKS_PER_BUF + 1; i++) {
		if (done >= len)
			break;
		__u64 rest = len - done;
		__u64 covers = rest > MAX_PAYLOAD ? MAX_PAYLOAD : rest;
		__u8 last = i == MAX_CHUNKS_PER_BUF || copies + 1 >= max_chunks || !buf;
		if (last)
			covers = rest;
		call->buf = buf ? buf + done : 0;
		call->covers = covers;
		call->rest = rest;
		call->last = last;
		if (split)
			emit_chunk_split(call);
		else
			emit_chunk(call);
		__u64 covered = call->covered;
		/* Never backwards, never past the call. */
		if (!covered || covered > rest)
			covered = rest;
		if (!call->skipped)
			copies++;
		/* After a head copied alone, its body (skip_len) is skipped. */
		call->flags &= ~EMIT_MAY_SPLIT;
		done += covered;
	}
	return 0;
}

__noinline int emit_call(struct chunk *call)
{
	return emit_call_as(call, false);
}

__noinline int emit_call_split(struct chunk *call)
{
	return emit_call_as(call, true);
}

/* Stream `len` bytes at user address `buf` as data events of at most
 * MAX_PAYLOAD bytes, stamped `ts` (0 = now); past `max_chunks` events that
 * copy, the rest is covered by the last event as truncated. Body bytes
 * userspace does not keep are covered by skip events (emit_chunk), which take
 * one more turn of the loop at most: a skip reaching past the call ends it,
 * one ending inside it is followed by copies. buf == 0 means the bytes are
 * not visible (sendfile): one event with no payload keeps the stream offsets
 * right. `split`: with EMIT_MAY_SPLIT in `flags`, a head and the body after
 * it in one buffer may be split (emit_chunk_as()). */
static __always_inline void emit_data(__u64 key, __u32 tid, __u8 direction, __u8 syscall,
				      __u64 buf, __u64 len, __u8 flags, __u8 source,
				      int max_chunks, __u64 ts, const bool split)
{
	struct chunk call = {};
	call.key = key;
	call.ts = ts;
	call.tid = tid;
	call.direction = direction;
	call.source = source;
	call.syscall = syscall;
	call.flags = flags;
	call.buf = buf;
	call.rest = len;
	/* HTTP/2: DATA payloads skipped, frame by frame, when no body is kept. */
	if (split && (flags & EMIT_MAY_WALK)) {
		emit_h2_call(&call);
		if (!call.rest)
			return;
	}
	call.covers = max_chunks > 0 ? max_chunks : 1;
	if (split)
		emit_call_split(&call);
	else
		emit_call(&call);
}

/* emit_data() for socket bytes. */
static __always_inline void emit_socket_data(__u64 key, __u32 tid, __u8 direction, __u8 syscall,
					     __u64 buf, __u64 len, __u8 flags, int max_chunks)
{
	emit_data(key, tid, direction, syscall, buf, len, flags, SOURCE_SYSCALL, max_chunks, 0, true);
}

/* emit_data() for the plaintext of one call of a TLS library (SSL_write,
 * SSL_read, Go's Conn.Write, ...), stamped `ts` (0 = now): a head and the
 * body after it in one buffer may be split as on a socket, so that a
 * response written or read whole covers its body as the head's skipped
 * tail. */
static __always_inline void emit_plain_data(__u64 key, __u32 tid, __u8 direction, __u64 buf,
					    __u64 len, __u8 source, int max_chunks, __u64 ts)
{
	__u8 flags = EMIT_MAY_WALK | (len >= HEAD_SPLIT_MIN ? EMIT_MAY_SPLIT : 0);
	emit_data(key, tid, direction, 0, buf, len, flags, source, max_chunks, ts, true);
}
