/* TLS library uprobes: OpenSSL/BoringSSL (SSL_read, SSL_write, SSL_read_ex,
 * SSL_write_ex, and the handshake calls) and GnuTLS (gnutls_record_recv,
 * gnutls_record_send, gnutls_handshake).
 *
 * A uprobe hit whose instruction the kernel single-steps costs ~13 µs here
 * (a debug trap through the hypervisor), one it emulates ~2 µs; otel-agent
 * puts the probes on emulated instructions where the code allows it
 * (uprobe_sites.rs). Both reads and writes take two probes: the entry saves
 * the buffer, the return says how many bytes the library actually took or
 * gave. A write's plaintext is emitted at its return when the session's
 * socket is known, else confirmed by the thread's next socket write. */
#pragma once
#include "include/common.h"
#include "maps/config.h"
#include "maps/counters.h"
#include "maps/tls.h"
#include "tls/correlate.h"

static __always_inline int tls_enter(__u64 session, __u64 buf, __u64 len, __u64 out_len,
				     __u8 kind, __u8 source)
{
	count(CNT_UPROBE_HITS, 1);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!tgid_wanted(pid_tgid >> 32))
		return 0;
	struct tls_call tc = {};
	tc.session = session;
	tc.buf = buf;
	tc.len = len;
	tc.out_len = out_len;
	tc.kind = kind;
	tc.source = source;
	struct tls_thread *t = tls_thread(true);
	if (!t)
		return 0;
	if (kind != TLS_CALL_WRITE) {
		t->read = tc;
		return 0;
	}
	/* An accepted write still waiting for its socket: the thread moved on
	 * without a socket write naming it. Its bytes become a gap of the
	 * session. */
	struct tls_call *old = &t->write;
	if (old->kind && old->accepted && !old->emitted)
		session_gap(old->session, pid_tgid >> 32, DIR_EGRESS, old->len);
	tc.ts = bpf_ktime_get_ns();
	t->write = tc;
	return 0;
}

/* Return of a write: the library took `ret` bytes (SSL_write_ex: 1 and
 * *written), and only then is the plaintext emitted — a call that fails
 * (a TLS 1.2 handshake still under way, WANT_WRITE on a full socket) emits
 * nothing, and its retry is a call of its own. One accepted call, one
 * emission: no de-duplication by content. The entry time stays the stamp. */
static __always_inline int tls_write_return(long ret, bool ex)
{
	count(CNT_UPROBE_HITS, 1);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct tls_thread *t = tls_thread(false);
	struct tls_call *p = t ? &t->write : NULL;
	if (!p || !p->kind || p->accepted)
		return 0;
	__u64 n = 0;
	if (ex) {
		if (ret == 1 && p->out_len)
			bpf_probe_read_user(&n, sizeof(n), (const void *)p->out_len);
	} else if (ret > 0) {
		n = (__u64)ret;
	}
	if (n > p->len)
		n = p->len;
	if (!n) {
		p->kind = 0;
		return 0;
	}
	__u64 k = session_socket(p->session, pid_tgid >> 32);
	struct conn_state *c = k ? bpf_map_lookup_elem(&conns, &k) : NULL;
	if (c && c->announced) {
		struct tls_call tc = *p;
		p->kind = 0;
		emit_plain_data(k, tid, DIR_EGRESS, tc.buf, n, tc.source, MAX_CHUNKS_PER_BUF, tc.ts);
		return 0;
	}
	/* No socket yet (a memory-BIO library flushes after the call): the
	 * thread's next socket write confirms it (tls_socket_io). */
	p->len = n;
	p->accepted = 1;
	return 0;
}

/* Return of a read: `ret` plaintext bytes are in the buffer saved at entry. */
static __always_inline int tls_read_return(long ret, bool ex)
{
	count(CNT_UPROBE_HITS, 1);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct tls_thread *t = tls_thread(false);
	struct tls_call *p = t ? &t->read : NULL;
	if (!p || !p->kind)
		return 0;
	struct tls_call tc = *p;
	p->kind = 0;
	__u64 n = 0;
	if (ex) {
		if (ret != 1 || !tc.out_len)
			return 0;
		bpf_probe_read_user(&n, sizeof(n), (const void *)tc.out_len);
	} else {
		if (ret <= 0)
			return 0;
		n = (__u64)ret;
	}
	if (!n)
		return 0;
	__u64 k = session_socket(tc.session, pid_tgid >> 32);
	struct conn_state *c = k ? bpf_map_lookup_elem(&conns, &k) : NULL;
	if (!c) {
		session_gap(tc.session, pid_tgid >> 32, DIR_INGRESS, n);
		return 0;
	}
	if (!c->announced) {
		/* Known but not announced yet: the first event shows the gap. */
		count(CNT_TLS_UNMAPPED, 1);
		c->plain[DIR_INGRESS] += n;
		c->lost_events++;
		return 0;
	}
	/* One TLS record is at most 16 KiB: one event, the rest counted as truncated. */
	emit_plain_data(k, tid, DIR_INGRESS, tc.buf, n, tc.source, 1, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_entry, void *ssl, const void *buf, int num)
{
	return tls_enter((__u64)ssl, (__u64)buf, num > 0 ? num : 0, 0, TLS_CALL_WRITE, SOURCE_OPENSSL);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_entry, void *ssl, const void *buf, size_t num, size_t *written)
{
	return tls_enter((__u64)ssl, (__u64)buf, num, (__u64)written, TLS_CALL_WRITE, SOURCE_OPENSSL);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_return, int ret)
{
	return tls_write_return(ret, false);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_ex_return, int ret)
{
	return tls_write_return(ret, true);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_return_site)
{
	return tls_write_return((int)PT_REGS_RC(ctx), false);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_return_site)
{
	return tls_write_return((int)PT_REGS_RC(ctx), true);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_entry, void *ssl, void *buf, int num)
{
	return tls_enter((__u64)ssl, (__u64)buf, num > 0 ? num : 0, 0, TLS_CALL_READ, SOURCE_OPENSSL);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_entry, void *ssl, void *buf, size_t num, size_t *readbytes)
{
	return tls_enter((__u64)ssl, (__u64)buf, num, (__u64)readbytes, TLS_CALL_READ, SOURCE_OPENSSL);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_return, int ret)
{
	return tls_read_return(ret, false);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_ex_return, int ret)
{
	return tls_read_return(ret, true);
}

/* The same as plain uprobes on the instruction before the function's only
 * `ret`, where rax already holds the return value (otel-agent's uprobe_sites):
 * unlike a uretprobe, which needs a breakpoint on the first instruction, the
 * kernel emulates that instruction instead of single-stepping it. */
SEC("uprobe")
int BPF_KPROBE(ssl_read_return_site)
{
	return tls_read_return((int)PT_REGS_RC(ctx), false);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_return_site)
{
	return tls_read_return((int)PT_REGS_RC(ctx), true);
}

SEC("uprobe")
int BPF_KPROBE(gnutls_recv_return_site)
{
	return tls_read_return((long)PT_REGS_RC(ctx), false);
}

SEC("uprobe")
int BPF_KPROBE(gnutls_send_entry, void *session, const void *data, size_t size)
{
	return tls_enter((__u64)session, (__u64)data, size, 0, TLS_CALL_WRITE, SOURCE_GNUTLS);
}

SEC("uretprobe")
int BPF_KRETPROBE(gnutls_send_return, long ret)
{
	return tls_write_return(ret, false);
}

SEC("uprobe")
int BPF_KPROBE(gnutls_send_return_site)
{
	return tls_write_return((long)PT_REGS_RC(ctx), false);
}

SEC("uprobe")
int BPF_KPROBE(gnutls_recv_entry, void *session, void *data, size_t size)
{
	return tls_enter((__u64)session, (__u64)data, size, 0, TLS_CALL_READ, SOURCE_GNUTLS);
}

SEC("uretprobe")
int BPF_KRETPROBE(gnutls_recv_return, long ret)
{
	return tls_read_return(ret, false);
}

/* Handshakes: the syscalls nested in them tie the session to its socket
 * before the first SSL_write (a few hits per connection, none per exchange). */
SEC("uprobe")
int BPF_KPROBE(ssl_handshake_entry, void *ssl)
{
	return tls_enter((__u64)ssl, 0, 0, 0, TLS_CALL_HANDSHAKE, SOURCE_OPENSSL);
}

SEC("uprobe")
int BPF_KPROBE(gnutls_handshake_entry, void *session)
{
	return tls_enter((__u64)session, 0, 0, 0, TLS_CALL_HANDSHAKE, SOURCE_GNUTLS);
}
