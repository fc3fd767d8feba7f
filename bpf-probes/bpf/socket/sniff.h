/* In-kernel protocol sniffing on the first bytes of a connection, so that
 * only HTTP/1, HTTP/2 and TLS connections are streamed to userspace. */
#pragma once
#include "include/common.h"

#define SNIFF_BYTES 16

static __always_inline bool starts_with(const char *p, __u32 n, const char *tok, __u32 len)
{
	if (n < len)
		return false;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (i >= len)
			break;
		if (p[i] != tok[i])
			return false;
	}
	return true;
}

/* enum l7_hint for the first n (<= SNIFF_BYTES) bytes p of a stream. */
static __always_inline __u8 sniff_l7(const char *p, __u32 n)
{
	/* A TLS record: handshake, or (joined late) alert / CCS / application data. */
	if (n >= 3 && p[0] >= 0x14 && p[0] <= 0x17 && p[1] == 0x03 && (__u8)p[2] <= 0x04)
		return L7_TLS;
	if (starts_with(p, n, "PRI * HTTP/2", 12))
		return L7_HTTP2;
	if (starts_with(p, n, "HTTP/1.", 7) || starts_with(p, n, "GET ", 4) ||
	    starts_with(p, n, "POST ", 5) || starts_with(p, n, "PUT ", 4) ||
	    starts_with(p, n, "HEAD ", 5) || starts_with(p, n, "DELETE ", 7) ||
	    starts_with(p, n, "OPTIONS ", 8) || starts_with(p, n, "PATCH ", 6) ||
	    starts_with(p, n, "CONNECT ", 8) || starts_with(p, n, "TRACE ", 6))
		return L7_HTTP1;
	return L7_OTHER;
}
