/* `body_skip`: struct body_skip by connection id, written by userspace once
 * it has parsed a message head and knows how much of what follows is body it
 * will not keep (the capture level keeps no body, or the kept prefix is
 * full); read by emit_chunk(), which then covers those bytes with a
 * DATA_FLAG_SKIPPED event instead of copying them. LRU: an entry whose
 * connection ended without userspace removing it ages out. */
#pragma once
#include "include/common.h"
#include "maps/scratch.h"

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

/* Do these 8 bytes (`w`, the first in its low byte), the first after a
 * message head, start its body? True when they start like neither a
 * message (`HTTP/`, or an upper-case token and a space) nor a chunk-size
 * line (hex digits, then CR, `;`, space or tab): a chunked body, and a
 * message after a body-less one, are never skipped this way. A global
 * function: its loop verified once, not in every state of its callers
 * (inlined in emit_chunk(), ~150k instructions verified per program). */
__noinline int starts_body(__u64 w)
{
	if ((w & 0xffffffffffULL) == 0x2f50545448ULL) /* "HTTP/" */
		return 0;
	/* The lengths of the leading run of token bytes (upper case, `-`,
	 * `_`) and of hex digits: a loop each that only counts, which the
	 * verifier walks once per byte (one with both runs' state in it took
	 * ~30k verified instructions). */
	__u32 token = 8, hex = 8;
	for (__u32 i = 0; i < 8; i++) {
		__u8 ch = (w >> (8 * i)) & 0xff;
		if (!((ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_')) {
			token = i;
			break;
		}
	}
	for (__u32 i = 0; i < 8; i++) {
		__u8 ch = (w >> (8 * i)) & 0xff;
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))) {
			hex = i;
			break;
		}
	}
	if (token > 0 && token < 8 && ((w >> (8 * token)) & 0xff) == ' ')
		return 0; /* a method and a space: a request */
	if (hex > 0 && hex < 8) {
		__u8 sep = (w >> (8 * hex)) & 0xff;
		if (sep == '\r' || sep == ';' || sep == ' ' || sep == '\t')
			return 0; /* a chunk-size line */
	}
	/* Neither run reaches the 8th byte: something else starts here. */
	return token < 8 && hex < 8;
}

/* Is the buffer (base, len) the body of the message whose head ends the
 * buffer before it (prev_base, prev_len)? True when that buffer ends with
 * CRLF CRLF and this one (of at least 8 bytes) starts_body(). A global
 * function: checked once by the verifier, not in every turn of the callers'
 * iovec loops. */
__noinline int body_after_head(__u64 prev_base, __u64 prev_len, __u64 base, __u64 len)
{
	if (prev_len < 4 || len < 8)
		return 0;
	__u32 end = 0;
	if (bpf_probe_read_user(&end, sizeof(end), (const void *)(prev_base + prev_len - 4)))
		return 0;
	if (end != 0x0a0d0a0d) /* "\r\n\r\n", little-endian */
		return 0;
	__u64 w = 0;
	if (bpf_probe_read_user(&w, sizeof(w), (const void *)base))
		return 0;
	return starts_body(w);
}

/* Bytes of one buffer looked through for the end of the message head it
 * starts with (head and body in one read or write: curl, wrk, Go servers). */
#define HEAD_SCAN_BYTES 1024
/* Buffers shorter than this are not looked through: the body they could
 * hold is small, and a head alone (nginx writes it in a buffer of its own)
 * would be scanned for nothing. */
#define HEAD_SPLIT_MIN 512

/* Do these 8 bytes (`w`, the first in its low byte) start an HTTP/1
 * message: `HTTP/`, or an upper-case token and a space (a request line)? A
 * global function, like starts_body(). */
__noinline int starts_message(__u64 w)
{
	if ((w & 0xffffffffffULL) == 0x2f50545448ULL) /* "HTTP/" */
		return 1;
	for (int i = 0; i < 8; i++) {
		__u8 ch = (w >> (8 * i)) & 0xff;
		if (i > 0 && ch == ' ')
			return 1;
		if (!((ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_'))
			return 0;
	}
	return 0;
}

/* "content-" and "length:" as little-endian words, lower case. */
#define CL_NAME_A 0x2d746e65746e6f63ULL
#define CL_NAME_B 0x003a6874676e656cULL
/* scratch_slot.content_length when two Content-Length fields disagree. */
#define CL_CONFLICT (~0ULL)

/* If the payload line of slot starting at offset s (< n) is a
 * `Content-Length` field (the name in any case, then up to 4 blanks, 1 to 12
 * digits, and a CR or blank), note its value plus one in
 * slot->content_length (CL_CONFLICT when another disagrees). A global
 * function, verified once for any s. */
__noinline int note_content_length(struct scratch_slot *slot, __u32 s, __u32 n)
{
	if (!slot || n > HEAD_SCAN_BYTES || s >= HEAD_SCAN_BYTES || s + 16 > n)
		return 0;
	const __u8 *p = slot->ev.payload;
	__u64 a = *(const __u64 *)(p + s) | 0x2020202020202020ULL;
	__u64 b = (*(const __u64 *)(p + s + 8) | 0x0020202020202020ULL) & 0x00ffffffffffffffULL;
	if (a != CL_NAME_A || b != CL_NAME_B)
		return 0;
	__u32 at = s + 15;
	for (int i = 0; i < 4; i++) {
		if (at >= n || at >= HEAD_SCAN_BYTES || (p[at] != ' ' && p[at] != '\t'))
			break;
		at++;
	}
	__u64 v = 0;
	int digits = 0;
	for (int i = 0; i < 12; i++) {
		if (at >= n || at >= HEAD_SCAN_BYTES)
			return 0;
		__u8 ch = p[at];
		if (ch < '0' || ch > '9')
			break;
		v = v * 10 + (ch - '0');
		digits++;
		at++;
	}
	if (!digits || at >= n || at >= HEAD_SCAN_BYTES)
		return 0;
	__u8 end = p[at];
	if (end != '\r' && end != ' ' && end != '\t')
		return 0;
	__u64 seen = slot->content_length;
	slot->content_length = seen && seen != v + 1 ? CL_CONFLICT : v + 1;
	return 0;
}

/* Eight payload bytes of slot at offset i (a multiple of 8, i + 8 <= n):
 * the offset just past a CRLF CRLF ending among them, else 0, noting every
 * line that starts after one of their LFs (note_content_length()). Only
 * words holding a LF are looked at byte by byte, about one per header line,
 * and in registers only: offsets computed from i inside the loop would give
 * the verifier a state for every path through it. A global function,
 * verified once for any i. */
__noinline __u32 scan_word(struct scratch_slot *slot, __u32 i, __u32 n)
{
	if (!slot || n > HEAD_SCAN_BYTES || i >= HEAD_SCAN_BYTES || i + 8 > n)
		return 0;
	const __u8 *p = slot->ev.payload;
	__u64 cur = *(const __u64 *)(p + i);
	__u64 x = cur ^ 0x0a0a0a0a0a0a0a0aULL;
	if (!((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL))
		return 0; /* no LF in these 8 bytes */
	__u64 prev = i >= 8 ? *(const __u64 *)(p + i - 8) : 0;
#pragma unroll
	for (int j = 0; j < 8; j++) {
		if (((cur >> (8 * j)) & 0xff) != '\n')
			continue;
		/* The 4 bytes ending with this LF, from prev and cur. */
		__u32 last4 = j >= 3 ? (__u32)(cur >> (8 * (j - 3)))
				     : (__u32)((prev >> (8 * (j + 5))) | (cur << (8 * (3 - j))));
		if (last4 == 0x0a0d0a0d) /* "\r\n\r\n", little-endian */
			return i + j + 1;
		note_content_length(slot, i + j + 1, n);
	}
	return 0;
}

/* The offset just past the first CRLF CRLF within the first n
 * (<= HEAD_SCAN_BYTES, rounded down to 8) payload bytes of slot, 0 if there
 * is none: the end of the message head the payload starts with. Its
 * Content-Length is left in slot->content_length (plus one; 0 when none,
 * CL_CONFLICT when two disagree). A global function, verified once: inlined,
 * its loop would be verified anew for every state emit_chunk() reaches it in. */
__noinline __u32 head_end(struct scratch_slot *slot, __u32 n)
{
	if (!slot)
		return 0;
	slot->content_length = 0;
	if (n > HEAD_SCAN_BYTES)
		n = HEAD_SCAN_BYTES;
	for (__u32 i = 0; i < HEAD_SCAN_BYTES; i += 8) {
		if (i + 8 > n)
			break;
		__u32 h = scan_word(slot, i, n);
		if (h)
			return h;
	}
	return 0;
}
