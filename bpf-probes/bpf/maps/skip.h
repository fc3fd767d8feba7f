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
