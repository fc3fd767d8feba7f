/* `active_io`: arguments of the data syscall a thread is inside, by tid,
 * saved at sys_enter and consumed at sys_exit. `connecting`: the fd a thread
 * is connecting, by tid. */
#pragma once
#include "include/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct io_args);
} active_io SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} connecting SEC(".maps");
