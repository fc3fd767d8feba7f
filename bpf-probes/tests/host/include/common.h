/* Host stand-in for bpf/include/common.h, found first on the host harnesses'
 * include path: the kernel's integer types, attributes and the one helper
 * socket/h2_walk.h calls, given their host meaning. User memory is host
 * memory; a read past `host_end` fails as an unreadable user page would. */
#pragma once
#include <stdbool.h>
#include <string.h>

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define __noinline static
#define barrier_var(x) ((void)(x))

static const unsigned char *host_end;

static inline long bpf_probe_read_user(void *dst, __u32 n, const void *src)
{
	if ((const unsigned char *)src + n > host_end)
		return -14;
	memcpy(dst, src, n);
	return 0;
}

#include "include/events.h"
#include "include/h2_state.h"
