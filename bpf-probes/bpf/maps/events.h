/* `events`: the ring buffer every event goes through to userspace.
 * Its size is set by userspace before load (limits.ring_buffer_bytes). */
#pragma once
#include "include/common.h"
#include "maps/config.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

/* Flags for a record written to `events`: the reader is woken only once
 * config.wakeup_bytes are waiting, so that under load one wakeup drains many
 * records instead of one; userspace also drains on a short timer, so a quiet
 * ring never holds a record longer than that. Records that make userspace
 * read /proc (a connection's announcement, an exec) wake it at once. */
static __always_inline __u64 ringbuf_flags(void)
{
	__u32 zero = 0;
	struct agent_config *cfg = bpf_map_lookup_elem(&agent_config, &zero);
	if (!cfg || !cfg->wakeup_bytes)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg->wakeup_bytes
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}
