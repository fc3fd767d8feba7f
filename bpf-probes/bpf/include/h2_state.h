/* Where the kernel's walk of one connection's HTTP/2 frames stands
 * (socket/h2_walk.h): part of the connection's kernel state, on its own so
 * that the walk builds on the host too (bpf-probes/tests/h2_walk.c). */
#pragma once

struct h2_state {
	__u64 next[2]; /* by enum direction: the stream offset of the next frame
			* header (H2_HEADER), the end of the DATA payload being
			* skipped (H2_DATA), or the start of a split header
			* (H2_PARTIAL) */
	__u64 hdr[2];  /* H2_PARTIAL: the split header's first bytes (the low 5
			* at most) and their count (the top byte) */
	__u8 mode[2];  /* H2_* by enum direction */
	__u8 source;   /* enum data_source + 1 of the walked bytes; 0: none yet */
	__u8 _pad[5];
};
