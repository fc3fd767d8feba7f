/* `conns`: tracked TCP connections by (tgid << 32 | fd); LRU so sockets whose
 * close we never see (exec, fd passing) age out instead of filling the map.
 * `not_socket`: fds known not to be TCP sockets, so file and pipe I/O costs
 * one lookup; cleared on close. `conn_seq`: the connection id sequence.
 * `proc_conns`: tgids that own announced connections (for process exit). */
#pragma once
#include "include/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct conn_state);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} not_socket SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} conn_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} proc_conns SEC(".maps");

static __always_inline __u64 next_conn_id(void)
{
	__u32 zero = 0;
	__u64 *seq = bpf_map_lookup_elem(&conn_seq, &zero);
	if (!seq)
		return 0;
	return __sync_fetch_and_add(seq, 1) + 1;
}
