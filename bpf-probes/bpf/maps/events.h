/* `events`: the ring buffer every event goes through to userspace.
 * Its size is set by userspace before load (limits.ring_buffer_bytes). */
#pragma once
#include "include/common.h"
#include "maps/config.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/* Flags for a record of `size` bytes written to `events`: under load one
 * wakeup should drain many records, not one. The reader is woken by the
 * record that makes the waiting data cross a multiple of config.wakeup_bytes
 * — once a mark, not on every record while the reader catches up: each
 * wakeup raises an inter-processor interrupt, a VM exit on these machines.
 * Userspace also drains on a short timer, so a quiet ring never holds a
 * record longer than that. Records that make userspace read /proc (a
 * connection's announcement, an exec) wake it at once. */
static __always_inline __u64 ringbuf_flags(__u64 size)
{
	__u32 zero = 0;
	struct agent_config *cfg = bpf_map_lookup_elem(&agent_config, &zero);
	if (!cfg || !cfg->wakeup_bytes)
		return 0;
	__u64 mark = cfg->wakeup_bytes;
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	/* + 8: the record header the ring buffer adds. */
	return avail / mark != (avail + size + 8) / mark ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}
