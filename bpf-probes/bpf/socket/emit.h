/* Writing connection and data events to the ring buffer, counting every
 * event that could not be written and every byte that was not captured. */
#pragma once
#include "include/common.h"
#include "maps/events.h"
#include "maps/counters.h"
#include "maps/conns.h"
#include "maps/scratch.h"
#include "socket/sock.h"

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
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0))
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
	ev.truncated_bytes = c->truncated_bytes;
	ev.data_events = c->data_events;
	ev.lost_events = c->lost_events;
	ev.reason = reason;
	ev.l7 = c->l7;
	ev.role = c->role;
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0))
		count(CNT_RINGBUF_FULL, 1);
}

/* Stream `len` bytes at user address `buf` as data events of at most
 * MAX_PAYLOAD bytes; past MAX_CHUNKS_PER_BUF events the rest is covered by
 * the last event as truncated. buf == 0 means the bytes are not visible
 * (sendfile): one event with no payload keeps the stream offsets right. */
static __always_inline void emit_data(struct conn_state *c, __u64 key, __u32 tid,
				      struct io_args *a, __u64 buf, __u64 len, __u8 flags)
{
	__u32 zero = 0;
	struct data_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	if (!ev)
		return;
	__u8 dir = a->direction & 1;
	__u64 done = 0;
	for (int i = 0; i < MAX_CHUNKS_PER_BUF; i++) {
		if (done >= len)
			break;
		__u64 rest = len - done;
		__u32 n = rest > MAX_PAYLOAD ? MAX_PAYLOAD : (__u32)rest;
		if (!buf)
			n = 0;
		__u64 covers = n;
		if (i == MAX_CHUNKS_PER_BUF - 1 || !buf)
			covers = rest;
		fill_header(&ev->hdr, c, EVENT_DATA, key, tid);
		ev->offset = c->bytes[dir];
		ev->len = (__u32)covers;
		ev->direction = dir;
		ev->source = SOURCE_SYSCALL;
		ev->syscall = a->syscall;
		ev->flags = flags | (covers > n ? DATA_FLAG_TRUNCATED : 0);
		barrier_var(n);
		if (n > MAX_PAYLOAD)
			n = MAX_PAYLOAD;
		if (n && bpf_probe_read_user(ev->payload, n, (const void *)(buf + done)))
			n = 0, ev->flags |= DATA_FLAG_TRUNCATED;
		ev->captured = n;
		if (bpf_ringbuf_output(&events, ev, DATA_HEADER_SIZE + n, 0)) {
			lost(c);
		} else {
			c->data_events++;
			count(CNT_DATA_EVENTS, 1);
		}
		if (covers > n) {
			count(CNT_TRUNCATED_EVENTS, 1);
			count(CNT_TRUNCATED_BYTES, covers - n);
			c->truncated_bytes += covers - n;
		}
		c->bytes[dir] += covers;
		done += covers;
	}
}
