/* HTTP/2 frames walked in the kernel, so that the payload of a DATA frame
 * is not copied on a connection whose capture level keeps no body
 * (agent_config.h2_walk). Per connection and direction, conn_state holds
 * where the next frame header is (h2_next, a stream offset of the source
 * that started the walk: socket bytes, or TLS plaintext). The walk starts
 * at the direction's first byte, from the client preface or a server's
 * first SETTINGS frame, and follows every call of that source from then
 * on: each event of a call copies the frames up to and including the
 * header of an unpadded DATA frame and covers that frame's payload as its
 * skipped tail (DATA_FLAG_SKIPPED_TAIL); a payload that runs on into the
 * next calls is covered there by skip events (DATA_FLAG_SKIPPED); a frame
 * header split across two calls is put together from both. Whatever the
 * walk cannot follow (more events in one call than it plans, a call shorter
 * than the rest of a split header, an unreadable buffer) ends it for that
 * direction (H2_LOST): the bytes are copied as before.
 * Userspace checks every skip against its own framing: one that does not
 * fall inside a DATA payload is a gap (skipped_outside_body), never bytes
 * taken for others. */
#pragma once
#include "include/common.h"

/* conn_state.h2_mode[direction] */
#define H2_UNKNOWN 0 /* not walked (yet) */
#define H2_HEADER 1  /* the next frame header is at h2_next; bytes before it are
		      * the rest of a frame that is copied */
#define H2_DATA 2    /* bytes before h2_next are the payload of an unpadded DATA
		      * frame, skipped; a frame header follows */
#define H2_LOST 3    /* the walk gave up: copied as before */
#define H2_PARTIAL 4 /* the call ended inside the frame header at h2_next: its
		      * first bytes (the low 5 at most) and their count (the top
		      * byte) are in h2_hdr, the rest starts the next call */

#define H2_FRAME_HEADER 9
#define H2_TYPE_DATA 0
#define H2_TYPE_SETTINGS 4
#define H2_FLAG_PADDED 0x8
/* Frame headers read for one event at most. */
#define H2_FRAMES_PER_EVENT 32
/* Events one call is walked into at most (then H2_LOST). */
#define H2_EVENTS_PER_CALL 24
/* DATA payloads shorter than this are copied: an event of their own (a
 * ring-buffer record and a header of 56 bytes) costs about what the copy
 * saves. */
#define H2_SKIP_MIN 128

/* The client connection preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", as
 * three little-endian words. */
#define H2_PREFACE_A 0x5448202a20495250ULL
#define H2_PREFACE_B 0x0a0d302e322f5054ULL
#define H2_PREFACE_C 0x0a0d0a0d4d530a0dULL
#define H2_PREFACE_LEN 24

/* One event of a walked call, in and out of h2_plan(). */
struct h2_step {
	__u64 buf;    /* in: user address of the event's first byte */
	__u64 offset; /* in: its stream offset */
	__u64 rest;   /* in: bytes of the call from there on */
	__u64 covers; /* out: stream bytes the event covers */
	__u64 copy;   /* out: bytes it copies; with `skip`, the rest of covers is
		       * skipped (all of it when copy is 0) */
	__u8 skip;    /* out: covers ends with (or is) a DATA payload, skipped */
	__u8 ok;      /* out: 0 when the walk gave up (H2_LOST): the caller copies */
	__u8 _pad[6];
};

/* A direction's first bytes (len of them at user address buf, stream
 * offset 0): the client preface, or a SETTINGS frame header (no flags,
 * stream 0, a whole number of settings) as a server's first frame, start
 * the walk: 1 when they do. A global function: verified once. */
__noinline int h2_start(struct h2_state *h, __u64 buf, __u64 len, __u32 dir, __u32 source)
{
	if (!h || !buf)
		return 0;
	dir &= 1;
	__u64 w[3] = {};
	__u64 next;
	if (len >= H2_PREFACE_LEN && !bpf_probe_read_user(w, sizeof(w), (const void *)buf) &&
	    w[0] == H2_PREFACE_A && w[1] == H2_PREFACE_B && w[2] == H2_PREFACE_C) {
		next = H2_PREFACE_LEN;
	} else {
		__u8 fh[16] = {};
		if (len < H2_FRAME_HEADER ||
		    bpf_probe_read_user(fh, H2_FRAME_HEADER, (const void *)buf))
			return 0;
		__u32 flen = ((__u32)fh[0] << 16) | ((__u32)fh[1] << 8) | fh[2];
		if (fh[3] != H2_TYPE_SETTINGS || fh[4] || fh[5] | fh[6] | fh[7] | fh[8] ||
		    flen % 6 || flen > 16384)
			return 0;
		next = 0;
	}
	h->next[dir] = next;
	h->mode[dir] = H2_HEADER;
	h->source = source + 1;
	return 1;
}

/* Plan the next event of a walked call (s->buf, s->offset, s->rest) from
 * the direction's walk state, and move the state past it: a skip event for
 * a DATA payload running on from an earlier call; else the frames up to
 * the first unpadded DATA frame of H2_SKIP_MIN bytes or more, copied to
 * the end of its header, with its payload (to the call's end at most) as
 * the skipped tail; else the frames walked copied (up to the call's end,
 * the next frame header, or MAX_PAYLOAD). s->ok is 0 when the walk gives
 * up. A global function: its loop verified once. */
__noinline int h2_plan(struct h2_state *h, struct h2_step *s, __u32 dir)
{
	if (!s)
		return 0;
	s->ok = 0;
	s->skip = 0;
	s->copy = 0;
	s->covers = 0;
	if (!h)
		return 0;
	dir &= 1;
	__u64 off = s->offset;
	__u64 rest = s->rest;
	__u64 next = h->next[dir];
	__u8 mode = h->mode[dir];
	if (mode != H2_HEADER && mode != H2_DATA && mode != H2_PARTIAL)
		return 0;
	/* A split header started before the call; anything else lies ahead. */
	if (!rest || !s->buf || (mode != H2_PARTIAL && next < off)) {
		h->mode[dir] = H2_LOST;
		return 0;
	}
	if (mode == H2_DATA && next > off) {
		__u64 n = next - off;
		s->covers = n < rest ? n : rest;
		s->skip = 1;
		s->ok = 1;
		if (n <= rest)
			h->mode[dir] = H2_HEADER;
		return 0;
	}
	__u64 p = next - off;
	if (mode == H2_PARTIAL) {
		/* The call starts with the rest of a frame header. */
		__u64 saved = h->hdr[dir];
		__u64 have = saved >> 56;
		__u64 need = H2_FRAME_HEADER - have;
		__u64 x = 0;
		if (!have || have >= H2_FRAME_HEADER || off != next + have || need > rest) {
			h->mode[dir] = H2_LOST;
			return 0;
		}
		barrier_var(need);
		if (need < 1 || need > 8 || bpf_probe_read_user(&x, need, (const void *)s->buf)) {
			h->mode[dir] = H2_LOST;
			return 0;
		}
		/* The header's first 5 bytes (length, type, flags). */
		__u64 hv = saved & 0xffffffffffULL;
		if (have < 5)
			hv |= x << (8 * have);
		__u64 flen = ((hv & 0xff) << 16) | (hv & 0xff00) | ((hv >> 16) & 0xff);
		__u8 type = (hv >> 24) & 0xff, fl = (hv >> 32) & 0xff;
		__u64 end = need + flen;
		h->mode[dir] = H2_HEADER;
		h->next[dir] = off + end;
		if (type == H2_TYPE_DATA && !(fl & H2_FLAG_PADDED) && flen >= H2_SKIP_MIN) {
			s->copy = need;
			s->covers = end < rest ? end : rest;
			s->skip = 1;
			s->ok = 1;
			if (end > rest)
				h->mode[dir] = H2_DATA;
			return 0;
		}
		p = end;
	}
	h->mode[dir] = H2_HEADER;
	for (int i = 0; i < H2_FRAMES_PER_EVENT; i++) {
		if (p >= rest || p >= MAX_PAYLOAD)
			break;
		__u8 fh[16] = {};
		if (p + H2_FRAME_HEADER > rest) {
			/* The call ends inside this header: keep its first bytes
			 * for the next call (in an event of its own when this one
			 * would not hold them). */
			__u64 k = rest - p;
			__u64 v = 0;
			barrier_var(k);
			if (rest > MAX_PAYLOAD)
				break;
			if (k < 1 || k > 8 || bpf_probe_read_user(&v, k, (const void *)(s->buf + p))) {
				h->mode[dir] = H2_LOST;
				return 0;
			}
			h->hdr[dir] = (v & 0xffffffffffULL) | (k << 56);
			h->next[dir] = off + p;
			h->mode[dir] = H2_PARTIAL;
			s->covers = rest;
			s->copy = rest;
			s->ok = 1;
			return 0;
		}
		if (bpf_probe_read_user(fh, H2_FRAME_HEADER, (const void *)(s->buf + p))) {
			h->mode[dir] = H2_LOST;
			return 0;
		}
		__u64 flen = ((__u64)fh[0] << 16) | ((__u64)fh[1] << 8) | fh[2];
		__u64 pay = p + H2_FRAME_HEADER;
		__u64 end = pay + flen;
		if (fh[3] == H2_TYPE_DATA && !(fh[4] & H2_FLAG_PADDED) && flen >= H2_SKIP_MIN) {
			/* The copy would not fit one event: the next one starts
			 * with this frame. */
			if (pay > MAX_PAYLOAD)
				break;
			s->copy = pay;
			s->covers = end < rest ? end : rest;
			s->skip = 1;
			s->ok = 1;
			h->next[dir] = off + end;
			h->mode[dir] = end > rest ? H2_DATA : H2_HEADER;
			return 0;
		}
		p = end;
		h->next[dir] = off + end;
	}
	__u64 n = p < rest ? p : rest;
	if (n > MAX_PAYLOAD)
		n = MAX_PAYLOAD;
	s->covers = n;
	s->copy = n;
	s->ok = n > 0;
	if (!n)
		h->mode[dir] = H2_LOST;
	return 0;
}
