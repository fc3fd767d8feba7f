/* Go crypto/tls uprobes: `crypto/tls.(*Conn).Read` and `(*Conn).Write` in Go
 * executables (Go >= 1.17 on amd64: the register ABI).
 *
 * The entry probe skips the hit of a call about to grow its stack, which Go
 * runs again from the start (go_tls_enter).
 *
 * Never a uretprobe on Go code: Go moves goroutine stacks, and a uretprobe's
 * rewritten return address on a moved stack crashes the program. The entry
 * program saves the call by (tgid, goroutine pointer in r14, kind) — a
 * goroutine can resume on another OS thread, so never by thread — and plain
 * uprobes on each `ret` of the function (otel-agent decodes the code) read
 * the results: n in rax. The plaintext is then in the caller's buffer: for a
 * read the n bytes returned, for a write the n bytes written.
 *
 * Writes on a connection whose handshake is proven done are emitted at entry
 * instead, like OpenSSL's: a write's return can be reached after another
 * goroutine has already read the response (net/http's writeLoop and
 * readLoop), and the request must reach the parser first. Proven done: the
 * tls.Conn's own handshake-complete flag is set (net/http completes the
 * handshake before its first request or response, so its first write is
 * emitted at entry too), or a Read or Write on the connection returned data.
 * Otherwise the write waits for its return: before the handshake is done a
 * Write can fail without sending anything.
 *
 * The socket comes from the Go structures, not from the thread: tls.Conn's
 * `conn net.Conn` (an interface: itab, data) must hold a *net.TCPConn —
 * checked by the type hash in the itab and in its type descriptor — whose
 * netFD's poll.FD holds Sysfd. Offsets and the type hash depend on the Go
 * version only; otel-agent passes them as the uprobe's attach cookie
 * (capture/tls/go_layout.rs, the one table of them). Anything else is not
 * attributable: counted as CNT_TLS_UNMAPPED, never put on a guessed socket. */
#pragma once
#include "include/common.h"
#include "maps/config.h"
#include "maps/counters.h"
#include "maps/conns.h"
#include "socket/emit.h"

#define GO_CALL_READ 1
#define GO_CALL_WRITE 2

struct go_call_key {
	__u64 goroutine; /* r14 */
	__u32 tgid;
	__u32 kind;      /* GO_CALL_* */
};

struct go_call {
	__u64 conn_key; /* tgid << 32 | Sysfd */
	__u64 buf;
	__u64 len;
};

/* Calls between their entry and their return; LRU: a goroutine that never
 * returns (killed process) leaves nothing behind for long. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_call_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

/* The attach cookie: the Go version's layout, six bits per offset in 8-byte
 * words and the type hash of *net.TCPConn in the high half (go_layout.rs:
 * GoLayout::cookie). */
#define GO_COOKIE_OFF(c, shift) ((((c) >> (shift)) & 0x3f) * 8)
#define GO_COOKIE_CONN(c) GO_COOKIE_OFF(c, 0)       /* tls.Conn.conn */
#define GO_COOKIE_ITAB_HASH(c) GO_COOKIE_OFF(c, 6)  /* itab.hash, _type.hash */
#define GO_COOKIE_FD(c) GO_COOKIE_OFF(c, 12)        /* net.TCPConn.conn.fd */
#define GO_COOKIE_SYSFD(c) GO_COOKIE_OFF(c, 18)     /* netFD.pfd.Sysfd */
#define GO_COOKIE_HANDSHAKE(c) GO_COOKIE_OFF(c, 24) /* tls.Conn handshake done */
#define GO_COOKIE_TYPE_HASH(c) ((__u32)((c) >> 32))

/* True when the tls.Conn at `tls_conn` says its handshake is complete. */
static __always_inline bool go_handshake_done(__u64 tls_conn, __u64 cookie)
{
	__u32 done = 0;
	if (bpf_probe_read_user(&done, sizeof(done),
				(const void *)(tls_conn + GO_COOKIE_HANDSHAKE(cookie))))
		return false;
	return done == 1;
}

/* go_conn_key() of a connection whose descriptor Go already closed: poll.FD
 * sets Sysfd to -1 when it closes the fd, and a goroutine may still call Read
 * on it (net/http's HTTP/2 server: its frame reader, once the connection is
 * done). Not a connection key (those have the tgid in the high half); such a
 * call gets an error and no data, so it is neither probed nor unmapped. */
#define GO_CONN_CLOSED 1

/* The connection key of the *tls.Conn at `tls_conn`; 0 when its net.Conn is
 * not a *net.TCPConn or anything cannot be read; GO_CONN_CLOSED. */
static __always_inline __u64 go_conn_key(__u64 tls_conn, __u64 cookie, __u32 tgid)
{
	__u64 iface[2] = {}; /* itab, data */
	if (!tls_conn || bpf_probe_read_user(iface, sizeof(iface),
					     (const void *)(tls_conn + GO_COOKIE_CONN(cookie))))
		return 0;
	if (!iface[0] || !iface[1])
		return 0;
	__u32 hash = 0;
	__u64 type = 0;
	if (bpf_probe_read_user(&hash, sizeof(hash),
				(const void *)(iface[0] + GO_COOKIE_ITAB_HASH(cookie))) ||
	    hash != GO_COOKIE_TYPE_HASH(cookie))
		return 0;
	/* itab.Type (just after itab.Inter) must carry the same hash. */
	if (bpf_probe_read_user(&type, sizeof(type), (const void *)(iface[0] + 8)) || !type)
		return 0;
	hash = 0;
	if (bpf_probe_read_user(&hash, sizeof(hash),
				(const void *)(type + GO_COOKIE_ITAB_HASH(cookie))) ||
	    hash != GO_COOKIE_TYPE_HASH(cookie))
		return 0;
	__u64 netfd = 0;
	if (bpf_probe_read_user(&netfd, sizeof(netfd),
				(const void *)(iface[1] + GO_COOKIE_FD(cookie))) || !netfd)
		return 0;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd),
				(const void *)(netfd + GO_COOKIE_SYSFD(cookie))))
		return 0;
	if (sysfd == -1)
		return GO_CONN_CLOSED;
	if (sysfd < 0 || sysfd > 0x7fffffff)
		return 0;
	return conn_key(tgid, (__u32)sysfd);
}

/* x86 flags the prologue's compare sets: carry (below), zero (equal). */
#define GO_EFLAGS_CF 0x01
#define GO_EFLAGS_ZF 0x40

static __always_inline int go_tls_enter(struct pt_regs *ctx, __u32 kind)
{
	count(CNT_UPROBE_HITS, 1);
	/* This probe sits on the prologue's `jbe runtime.morestack`, after the
	 * compare of the stack pointer with g.stackguard0 (otel-agent checks the
	 * code: capture/tls/uprobe_sites.rs). Taken (CF or ZF set), Go grows the
	 * stack or yields, then runs the function again from its first
	 * instruction, through here once more: only the run that goes on is the
	 * call. Without this, a write emitted at entry was emitted twice. */
	if (ctx->flags & (GO_EFLAGS_CF | GO_EFLAGS_ZF))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!tgid_wanted(tgid))
		return 0;
	/* func (c *Conn) Read(b []byte) / Write(b []byte): c in rax, b's
	 * pointer and length in rbx and rcx. */
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 key = go_conn_key(ctx->ax, cookie, tgid);
	struct go_call_key ck = { .goroutine = ctx->r14, .tgid = tgid, .kind = kind };
	if (key == GO_CONN_CLOSED || !key || !bpf_map_lookup_elem(&conns, &key)) {
		/* Not attributable (or a socket not tracked): forget any stale call. */
		bpf_map_delete_elem(&go_calls, &ck);
		if (!key)
			count(CNT_TLS_UNMAPPED, 1);
		return 0;
	}
	struct go_call call = { .conn_key = key, .buf = ctx->bx, .len = ctx->cx };
	struct conn_state *c = bpf_map_lookup_elem(&conns, &key);
	if (kind == GO_CALL_WRITE && c && c->announced &&
	    (c->go_ready || go_handshake_done(ctx->ax, cookie))) {
		bpf_map_delete_elem(&go_calls, &ck);
		__s64 len = (__s64)call.len;
		if (len > 0)
			emit_plain_data(key, (__u32)pid_tgid, DIR_EGRESS, call.buf, (__u64)len,
					SOURCE_GO, MAX_CHUNKS_PER_BUF, 0);
		return 0;
	}
	bpf_map_update_elem(&go_calls, &ck, &call, BPF_ANY);
	return 0;
}

static __always_inline int go_tls_return(struct pt_regs *ctx, __u32 kind)
{
	count(CNT_UPROBE_HITS, 1);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_call_key ck = { .goroutine = ctx->r14, .tgid = pid_tgid >> 32, .kind = kind };
	struct go_call *p = bpf_map_lookup_elem(&go_calls, &ck);
	if (!p)
		return 0;
	struct go_call call = *p;
	bpf_map_delete_elem(&go_calls, &ck);
	/* n, err: n in rax, at most len(b). */
	__s64 n = (__s64)ctx->ax;
	if (n <= 0 || (__u64)n > call.len)
		return 0;
	__u64 key = call.conn_key;
	struct conn_state *c = bpf_map_lookup_elem(&conns, &key);
	if (!c || !c->announced) {
		count(CNT_TLS_UNMAPPED, 1);
		return 0;
	}
	c->go_ready = 1;
	__u8 dir = kind == GO_CALL_READ ? DIR_INGRESS : DIR_EGRESS;
	emit_plain_data(key, (__u32)pid_tgid, dir, call.buf, (__u64)n, SOURCE_GO,
			MAX_CHUNKS_PER_BUF, 0);
	return 0;
}

SEC("uprobe")
int go_tls_read_entry(struct pt_regs *ctx)
{
	return go_tls_enter(ctx, GO_CALL_READ);
}

SEC("uprobe")
int go_tls_write_entry(struct pt_regs *ctx)
{
	return go_tls_enter(ctx, GO_CALL_WRITE);
}

SEC("uprobe")
int go_tls_read_return(struct pt_regs *ctx)
{
	return go_tls_return(ctx, GO_CALL_READ);
}

SEC("uprobe")
int go_tls_write_return(struct pt_regs *ctx)
{
	return go_tls_return(ctx, GO_CALL_WRITE);
}
