/* `data_exit_jmp`: slot 0 holds `data_exit_main`, the heavy sys_exit handler
 * every data syscall's exit program tail-calls, so the verifier checks that
 * code once instead of once per syscall (seconds at start-up); slot 1 holds
 * `tls_write_main`, which data_exit_main tail-calls to emit TLS plaintext. */
#pragma once
#include "include/common.h"

#define JMP_DATA_EXIT 0
#define JMP_TLS_WRITE 1

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} data_exit_jmp SEC(".maps");
