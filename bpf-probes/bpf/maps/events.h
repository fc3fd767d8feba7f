/* `events`: the ring buffer every event goes through to userspace.
 * Its size is set by userspace before load (limits.ring_buffer_bytes). */
#pragma once
#include "include/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");
