/* `scratch`: a per-CPU data_event too large for the BPF stack, filled and then
 * copied into the ring buffer with only its used length.
 *
 * Per-CPU is not private: since Linux 6.x uprobe programs run with migration
 * disabled but preemption enabled (on `preempt=full`, real-time and
 * low-latency kernels), so a uprobe program can be preempted between filling
 * the slot and copying it out, and a program of another task on the same CPU
 * (a syscall tracepoint, another uprobe) would overwrite it: a wrong payload.
 * So the slot is only ever used through scratch_acquire()/scratch_release():
 * an atomic exchange on `busy` takes it, and a program that finds it taken
 * drops its event, counted as CNT_SCRATCH_BUSY (a counted gap, never a
 * wrong byte). bpf-probes' tests check that nothing else touches `scratch`. */
#pragma once
#include "include/common.h"
#include "maps/counters.h"

struct scratch_slot {
	__u64 busy; /* 1 while a program fills and copies `ev` */
	struct data_event ev;
	/* Content-Length of the head in ev's payload, plus one (maps/skip.h) */
	__u64 content_length;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_slot);
} scratch SEC(".maps");

/* This CPU's slot, taken; NULL when another program holds it (counted). */
static __always_inline struct scratch_slot *scratch_acquire(void)
{
	__u32 zero = 0;
	struct scratch_slot *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return NULL;
	if (__sync_lock_test_and_set(&s->busy, 1)) {
		count(CNT_SCRATCH_BUSY, 1);
		return NULL;
	}
	return s;
}

/* Give the slot back, after its event was copied out (a helper call, so the
 * copy is done before this store). */
static __always_inline void scratch_release(struct scratch_slot *s)
{
	__sync_lock_test_and_set(&s->busy, 0);
}
