/* `counters`: per-CPU capture counters indexed by enum counter_id (drops,
 * truncations, ...), summed and exported by userspace. */
#pragma once
#include "include/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* An atomic add: a preempted uprobe program and another program on the same
 * CPU may count at once (see maps/scratch.h). */
static __always_inline void count(__u32 id, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &id);
	if (v)
		__sync_fetch_and_add(v, n);
}
