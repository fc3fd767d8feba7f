/* `active_io`: arguments of the data syscall a thread is inside, in the
 * thread's own storage, saved at sys_enter and consumed at sys_exit
 * (`conn_key` 0: none). Task storage instead of a hash by tid: no hashing,
 * no bucket lock, no delete, on the path every read and write of an observed
 * process takes (eBPF run time per exchange: BENCHMARKS.md). `connecting`:
 * the fd a thread is connecting, by tid. */
#pragma once
#include "include/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct io_args);
} active_io SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} connecting SEC(".maps");
