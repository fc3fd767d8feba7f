/* Does a stream start with an HTTP/1 request line? The one rule, in C for the
 * kernel's sniffing; `protocols/src/http1/start.rs` is its userspace twin, and
 * both are tested against the cases of `protocols/testdata/http1/starts.txt`
 * (the C side by `bpf-probes/tests/http1_start.rs`, on the host).
 *
 * Within the first HTTP1_START_WINDOW bytes: a standard method (RFC 9110,
 * PATCH, QUERY) followed by a space; or any method token (1 to
 * HTTP1_MAX_METHOD tchars) followed by a space, a request target (visible
 * bytes, no space or control byte) and " HTTP/1.". TLS records, the HTTP/2
 * preface and binary protocols fail: their first bytes are control bytes or
 * not followed by "HTTP/1.".
 *
 * Self-contained (the includer provides __u8, __u32, bool, __always_inline),
 * so the host test can compile it. The loop keeps no position but the loop
 * counter, so the verifier's states at each iteration differ only by phase
 * and are pruned. */
#pragma once

/* Bytes looked at: the kernel copies this many of the first write. */
#define HTTP1_START_WINDOW 64
/* Longest method token recognised. */
#define HTTP1_MAX_METHOD 20

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~", digits, letters. */
static __always_inline bool http1_tchar(__u8 c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return true;
	}
	return false;
}

/* A request-target byte: visible ASCII or a non-ASCII byte (no space, no control). */
static __always_inline bool http1_target_byte(__u8 c)
{
	return c > 0x20 && c != 0x7f;
}

static __always_inline bool http1_prefix(const char *p, __u32 n, const char *tok, __u32 len)
{
	if (n < len)
		return false;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i >= len)
			break;
		if (p[i] != tok[i])
			return false;
	}
	return true;
}

static __always_inline bool http1_standard_method(const char *p, __u32 n)
{
	return http1_prefix(p, n, "GET ", 4) || http1_prefix(p, n, "POST ", 5) ||
	       http1_prefix(p, n, "PUT ", 4) || http1_prefix(p, n, "HEAD ", 5) ||
	       http1_prefix(p, n, "DELETE ", 7) || http1_prefix(p, n, "OPTIONS ", 8) ||
	       http1_prefix(p, n, "PATCH ", 6) || http1_prefix(p, n, "CONNECT ", 8) ||
	       http1_prefix(p, n, "TRACE ", 6) || http1_prefix(p, n, "QUERY ", 6);
}

enum http1_phase {
	HTTP1_METHOD,       /* in the method token */
	HTTP1_TARGET_START, /* after the space: the target's first byte */
	HTTP1_TARGET,       /* in the target */
};

/* The first n (<= HTTP1_START_WINDOW) bytes p of a stream: a request line? */
static __always_inline bool http1_request_start(const char *p, __u32 n)
{
	if (http1_standard_method(p, n))
		return true;
	__u8 phase = HTTP1_METHOD;
	for (int i = 0; i < HTTP1_START_WINDOW; i++) {
		if (i >= n)
			return false;
		__u8 c = p[i];
		if (phase == HTTP1_METHOD) {
			if (c == ' ' && i > 0)
				phase = HTTP1_TARGET_START;
			else if (!http1_tchar(c) || i >= HTTP1_MAX_METHOD)
				return false;
		} else if (phase == HTTP1_TARGET_START) {
			if (!http1_target_byte(c))
				return false;
			phase = HTTP1_TARGET;
		} else if (c == ' ') {
			/* The version must be in the window: " HTTP/1." */
			if (i + 7 >= n)
				return false;
			return p[i + 1] == 'H' && p[i + 2] == 'T' && p[i + 3] == 'T' &&
			       p[i + 4] == 'P' && p[i + 5] == '/' && p[i + 6] == '1' &&
			       p[i + 7] == '.';
		} else if (!http1_target_byte(c)) {
			return false;
		}
	}
	return false;
}
