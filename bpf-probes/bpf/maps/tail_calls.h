/* `data_exit_jmp`: one slot holding `data_exit_main`, the heavy sys_exit
 * handler every data syscall's exit program tail-calls. The verifier then
 * checks that code once instead of once per syscall (seconds at start-up). */
#pragma once
#include "include/common.h"

#define JMP_DATA_EXIT 0

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} data_exit_jmp SEC(".maps");
