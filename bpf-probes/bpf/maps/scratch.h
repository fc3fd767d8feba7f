/* `scratch`: a per-CPU data_event too large for the BPF stack, filled and then
 * copied into the ring buffer with only its used length. */
#pragma once
#include "include/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct data_event);
} scratch SEC(".maps");
