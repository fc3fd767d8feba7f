/* In-kernel protocol sniffing on the first bytes of a connection, so that
 * only HTTP/1, HTTP/2 and TLS connections are streamed to userspace. */
#pragma once
#include "include/common.h"
#include "socket/http1_start.h"

/* Bytes of the first write (or read) copied for sniffing: enough for a
 * request line with an extension method (socket/http1_start.h). */
#define SNIFF_BYTES HTTP1_START_WINDOW

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

/* An HTTP/2 HEADERS frame header: what an adopted HTTP/2 connection (joined
 * after its preface) most likely carries first. Length 1..16384, type 1,
 * only END_STREAM/END_HEADERS/PADDED/PRIORITY flags, odd stream id. */
static __always_inline bool h2_headers_frame(const char *p, __u32 n)
{
	if (n < 9)
		return false;
	__u32 len = ((__u32)(__u8)p[0] << 16) | ((__u32)(__u8)p[1] << 8) | (__u8)p[2];
	__u8 type = p[3], flags = p[4];
	__u32 sid = (((__u32)(__u8)p[5] & 0x7f) << 24) | ((__u32)(__u8)p[6] << 16) |
		    ((__u32)(__u8)p[7] << 8) | (__u8)p[8];
	return len > 0 && len <= 16384 && type == 1 && (flags & ~0x2d) == 0 && (sid & 1);
}

/* An HTTP/2 SETTINGS frame on stream 0 (length a multiple of 6, no flags but
 * ACK): an HTTP/2 server writes its preface before reading the client's. */
static __always_inline bool h2_settings_frame(const char *p, __u32 n)
{
	if (n < 9)
		return false;
	__u32 len = ((__u32)(__u8)p[0] << 16) | ((__u32)(__u8)p[1] << 8) | (__u8)p[2];
	return len <= 16384 && len % 6 == 0 && p[3] == 4 && ((__u8)p[4] & ~1) == 0 &&
	       !p[5] && !p[6] && !p[7] && !p[8];
}

/* enum l7_hint for the first n (<= SNIFF_BYTES) bytes p of a stream. Frames
 * count only where the preface cannot come first: an adopted connection
 * (joined mid-stream), or a server's own first write (`frames`). */
static __always_inline __u8 sniff_l7(const char *p, __u32 n, bool adopted, bool server_write)
{
	if (adopted && h2_headers_frame(p, n))
		return L7_HTTP2;
	if ((adopted || server_write) && h2_settings_frame(p, n))
		return L7_HTTP2;
	/* A TLS record: handshake, or (joined late) alert / CCS / application data. */
	if (n >= 3 && p[0] >= 0x14 && p[0] <= 0x17 && p[1] == 0x03 && (__u8)p[2] <= 0x04)
		return L7_TLS;
	if (starts_with(p, n, "PRI * HTTP/2", 12))
		return L7_HTTP2;
	if (starts_with(p, n, "HTTP/1.", 7) || http1_request_start(p, n))
		return L7_HTTP1;
	return L7_OTHER;
}
