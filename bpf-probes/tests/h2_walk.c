/* Host harness for bpf/socket/h2_walk.h, for tests/h2_walk.rs: the walk of
 * one direction's bytes, call by call, as emit_h2_call() (bpf/socket/emit.h)
 * sequences it. One case a line on stdin: the stream in hex, then the
 * calls' lengths. Out, a line each: "E offset covers copy skip" for an event
 * the walk planned, "N offset len" for bytes left to the per-buffer path,
 * then "M mode0" and "END". */
#include <stdio.h>
#include <stdlib.h>

#include "socket/h2_walk.h"

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
	size_t cap = 1 << 24;
	char *line = malloc(cap);
	unsigned char *bytes = malloc(cap / 2);
	if (!line || !bytes)
		return 1;
	while (fgets(line, (int)cap, stdin)) {
		size_t n = 0, i = 0;
		for (; line[i] && line[i + 1] && hex(line[i]) >= 0; i += 2)
			bytes[n++] = (unsigned char)(hex(line[i]) << 4 | hex(line[i + 1]));
		struct h2_state h = {};
		__u64 offset = 0;
		char *p = line + i;
		for (;;) {
			char *end;
			unsigned long long len = strtoull(p, &end, 10);
			if (end == p)
				break;
			p = end;
			if (offset + len > n)
				break;
			const unsigned char *buf = bytes + offset;
			/* A call sees its own bytes only. */
			host_end = buf + len;
			__u64 done = 0;
			if (h.mode[0] == H2_UNKNOWN &&
			    (offset || !h2_start(&h, (__u64)buf, len, 0, SOURCE_SYSCALL))) {
				printf("N %llu %llu\n", offset, len);
				offset += len;
				continue;
			}
			struct h2_step s = {};
			for (int e = 0; e < H2_EVENTS_PER_CALL && done < len; e++) {
				s.buf = (__u64)(buf + done);
				s.offset = offset + done;
				s.rest = len - done;
				h2_plan(&h, &s, 0);
				if (!s.ok)
					break;
				printf("E %llu %llu %llu %u\n", offset + done, s.covers, s.copy, s.skip);
				done += s.covers;
			}
			if (done < len) {
				h.mode[0] = H2_LOST;
				printf("N %llu %llu\n", offset + done, len - done);
			}
			offset += len;
		}
		printf("M %u\nEND\n", h.mode[0]);
		fflush(stdout);
	}
	return 0;
}
