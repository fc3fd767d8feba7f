/* Host harness for bpf/socket/http1_start.h: one case a line on stdin (the
 * bytes in hex), "1" or "0" a line on stdout, for tests/http1_start.rs. The
 * kernel's types and attributes are given their host meaning. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef unsigned char __u8;
typedef unsigned int __u32;
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#include "socket/http1_start.h"

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int main(void)
{
	static char line[4096];
	while (fgets(line, sizeof line, stdin)) {
		char buf[HTTP1_START_WINDOW];
		__u32 n = 0;
		for (size_t i = 0; line[i] && line[i + 1] && hex(line[i]) >= 0; i += 2) {
			/* The kernel copies at most the window. */
			if (n < HTTP1_START_WINDOW)
				buf[n++] = (char)(hex(line[i]) << 4 | hex(line[i + 1]));
		}
		printf("%d\n", http1_request_start(buf, n) ? 1 : 0);
	}
	return 0;
}
