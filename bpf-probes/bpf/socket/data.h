/* Data syscalls (read, write, readv, writev, sendto, recvfrom, sendmsg,
 * recvmsg, sendfile): arguments saved at sys_enter, bytes captured at
 * sys_exit once the kernel says how many moved. */
#pragma once
#include "include/common.h"
#include "maps/config.h"
#include "maps/active_io.h"
#include "socket/emit.h"
#include "socket/gather.h"
#include "socket/sniff.h"
#include "maps/tail_calls.h"
#include "tls/correlate.h"

/* A TCP socket that was open before we first saw it: track it from now on. */
static __always_inline struct conn_state *adopt(__u64 key)
{
	if (bpf_map_lookup_elem(&not_socket, &key))
		return NULL;
	struct sock *sk = tcp_sock_of_fd((__u32)key);
	struct sock_key peer = {};
	if (sk)
		sock_end_key(sk, false, &peer);
	if (!sk || bpf_map_lookup_elem(&self_socks, &peer)) {
		__u8 one = 1;
		bpf_map_update_elem(&not_socket, &key, &one, BPF_ANY);
		return NULL;
	}
	struct conn_state s = {};
	s.id = next_conn_id();
	s.opened_ns = bpf_ktime_get_ns();
	s.role = ROLE_UNKNOWN;
	s.adopted = 1;
	if (bpf_map_update_elem(&conns, &key, &s, BPF_NOEXIST)) {
		count(CNT_CONN_MAP_FULL, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&conns, &key);
}

static __always_inline int data_enter(__u32 fd, __u64 buf, __u32 vlen, __u8 syscall,
				      __u8 direction, __u8 kind)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!tgid_wanted(tgid))
		return 0;
	__u64 key = conn_key(tgid, fd);
	struct conn_state *c = bpf_map_lookup_elem(&conns, &key);
	if (!c && !adopt(key))
		return 0;
	struct io_args *a = bpf_task_storage_get(&active_io, bpf_get_current_task_btf(), 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a)
		return 0;
	a->conn_key = key;
	a->buf = buf;
	a->vlen = vlen;
	a->fd = fd;
	a->syscall = syscall;
	a->direction = direction;
	a->kind = kind;
	return 0;
}

/* First bytes of the call's data, for sniffing: the buffer or the first iovec. */
static __always_inline __u8 sniff_call(__u64 base, __u64 len, bool adopted, bool server_write)
{
	char head[SNIFF_BYTES] = {};
	__u32 n = len > SNIFF_BYTES ? SNIFF_BYTES : (__u32)len;
	barrier_var(n);
	if (n > SNIFF_BYTES)
		n = SNIFF_BYTES;
	if (!base || !n || bpf_probe_read_user(head, n, (const void *)base))
		return L7_UNKNOWN;
	return sniff_l7(head, n, adopted, server_write);
}

static __always_inline void stream_bytes(struct conn_state *c, __u64 key, __u32 tid,
					 struct io_args *a, __u64 base, __u64 len, __u8 skip_all)
{
	__u8 dir = a->direction & 1;
	bool http = c->l7 == L7_HTTP1 || c->l7 == L7_HTTP2;
	/* TLS: the first records, for the handshake, until plaintext shows it is over. */
	bool handshake = c->l7 == L7_TLS && c->bytes[dir] < TLS_RAW_LIMIT && !(c->plain[0] | c->plain[1]);
	if (!http && !handshake) {
		c->bytes[dir] += len;
		count(CNT_IGNORED_BYTES, len);
		return;
	}
	__u8 flags = handshake ? DATA_FLAG_RAW_TLS : (skip_all ? EMIT_SKIP_ALL : 0);
	/* Head and body in one buffer: the body may be skipped after the head. */
	if (c->l7 == L7_HTTP1 && !flags && len >= HEAD_SPLIT_MIN)
		flags = EMIT_MAY_SPLIT;
	if (c->l7 == L7_HTTP2 && !flags)
		flags = EMIT_MAY_WALK;
	emit_socket_data(key, tid, dir, a->syscall, base, len, flags, MAX_CHUNKS_PER_BUF);
}

static __always_inline int data_exit(void *ctx, long ret)
{
	struct io_args *ap = bpf_task_storage_get(&active_io, bpf_get_current_task_btf(), 0, 0);
	if (!ap || !ap->conn_key)
		return 0;
	struct io_args a = *ap;
	ap->conn_key = 0;
	if (ret <= 0)
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct conn_state *c = bpf_map_lookup_elem(&conns, &a.conn_key);
	if (!c)
		return 0;
	__u64 total = (__u64)ret;

	/* Where the bytes are: one buffer, or an iovec array. */
	__u64 iov = 0;
	__u32 vlen = 0;
	__u64 first = a.buf;
	__u64 first_len = total;
	if (a.kind == IO_KIND_NONE) {
		first = 0;
	} else if (a.kind != IO_KIND_BUF) {
		if (a.kind == IO_KIND_MSGHDR) {
			struct user_msghdr msg = {};
			if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)a.buf))
				return 0;
			iov = (__u64)msg.msg_iov;
			vlen = (__u32)msg.msg_iovlen;
		} else {
			iov = a.buf;
			vlen = a.vlen;
		}
		if (!vlen)
			return 0;
		/* The first iovec is read below only to sniff a new connection:
		 * the loop over the iovecs reads it anyway. */
		first = 0;
	}

	if (!c->announced) {
		if (iov) {
			struct iovec v = {};
			if (bpf_probe_read_user(&v, sizeof(v), (const void *)iov))
				return 0;
			first = (__u64)v.iov_base;
			first_len = v.iov_len < total ? v.iov_len : total;
		}
		/* The agent's connect may have been recorded after this side's
		 * accept: check the peer again before the first event. */
		struct sock *sk = tcp_sock_of_fd(a.fd);
		struct sock_key peer = {};
		if (sk)
			sock_end_key(sk, false, &peer);
		if (sk && bpf_map_lookup_elem(&self_socks, &peer)) {
			__u8 one = 1;
			bpf_map_delete_elem(&conns, &a.conn_key);
			bpf_map_update_elem(&not_socket, &a.conn_key, &one, BPF_ANY);
			count(CNT_SELF_SKIPPED, 1);
			return 0;
		}
		if (first)
			c->l7 = sniff_call(first, first_len, c->adopted,
					   c->role == ROLE_SERVER && a.direction == DIR_EGRESS);
		if (c->l7 == L7_UNKNOWN) {
			c->bytes[a.direction & 1] += total;
			return 0;
		}
		announce(c, a.conn_key, tid);
	}

	/* I/O on a TLS socket: tie this thread's TLS calls to it; a confirmed
	 * plaintext write is emitted last, by tail call. */
	bool tls_write = c->l7 == L7_TLS && tls_socket_io(c, a.conn_key, a.direction);

	if (!iov) {
		stream_bytes(c, a.conn_key, tid, &a, first, total, 0);
		goto out;
	}
	/* A few small buffers: one event (socket/gather.h). */
	if (vlen > 1) {
		struct gather g = {};
		g.key = a.conn_key;
		g.iov = iov;
		g.total = total;
		g.vlen = vlen;
		g.tid = tid;
		g.direction = a.direction;
		g.syscall = a.syscall;
		if (gather_call(&g))
			goto out;
	}
	/* A body buffer written after its head in the same call (nginx, node:
	 * writev of head and body) is skipped when userspace keeps no body. */
	bool after_head = vlen > 1 && c->l7 == L7_HTTP1 && skip_after_head(c->id);
	__u64 prev_base = 0, prev_len = 0;
	__u64 rest = total;
	for (int i = 0; i < MAX_IOVECS; i++) {
		if (!rest || i >= vlen)
			break;
		struct iovec v = {};
		if (bpf_probe_read_user(&v, sizeof(v), (const void *)(iov + i * sizeof(v))))
			break;
		__u64 n = v.iov_len < rest ? v.iov_len : rest;
		__u8 skip_all = after_head && i > 0 &&
				body_after_head(prev_base, prev_len, (__u64)v.iov_base, n);
		stream_bytes(c, a.conn_key, tid, &a, (__u64)v.iov_base, n, skip_all);
		prev_base = (__u64)v.iov_base;
		prev_len = n;
		rest -= n;
	}
	if (rest)
		stream_bytes(c, a.conn_key, tid, &a, 0, rest, 0);
out:
	if (tls_write)
		bpf_tail_call(ctx, &data_exit_jmp, JMP_TLS_WRITE);
	return 0;
}

#define ENTER(name) SEC("tracepoint/syscalls/sys_enter_" #name) \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)
/* The shared exit handler: loaded (as a tracepoint program) but attached only
 * through `data_exit_jmp`. All sys_exit tracepoints share one context layout. */
SEC("tracepoint/syscalls/sys_exit_read")
int data_exit_main(struct trace_event_raw_sys_exit *ctx)
{
	return data_exit(ctx, ctx->ret);
}

/* The plaintext of a confirmed SSL_write-style call (tail-called by data_exit_main). */
SEC("tracepoint/syscalls/sys_exit_write")
int tls_write_main(struct trace_event_raw_sys_exit *ctx)
{
	return tls_write_emit();
}

#define EXIT(name) SEC("tracepoint/syscalls/sys_exit_" #name) \
	int exit_##name(struct trace_event_raw_sys_exit *ctx) \
	{ \
		bpf_tail_call(ctx, &data_exit_jmp, JMP_DATA_EXIT); \
		return 0; \
	}

ENTER(read) { return data_enter(ctx->args[0], ctx->args[1], 0, SYS_ID_READ, DIR_INGRESS, IO_KIND_BUF); }
EXIT(read)
ENTER(write) { return data_enter(ctx->args[0], ctx->args[1], 0, SYS_ID_WRITE, DIR_EGRESS, IO_KIND_BUF); }
EXIT(write)
ENTER(readv) { return data_enter(ctx->args[0], ctx->args[1], ctx->args[2], SYS_ID_READV, DIR_INGRESS, IO_KIND_IOVEC); }
EXIT(readv)
ENTER(writev) { return data_enter(ctx->args[0], ctx->args[1], ctx->args[2], SYS_ID_WRITEV, DIR_EGRESS, IO_KIND_IOVEC); }
EXIT(writev)
ENTER(sendto) { return data_enter(ctx->args[0], ctx->args[1], 0, SYS_ID_SENDTO, DIR_EGRESS, IO_KIND_BUF); }
EXIT(sendto)
ENTER(recvfrom)
{
	if (ctx->args[3] & MSG_PEEK)
		return 0;
	return data_enter(ctx->args[0], ctx->args[1], 0, SYS_ID_RECVFROM, DIR_INGRESS, IO_KIND_BUF);
}
EXIT(recvfrom)
ENTER(sendmsg) { return data_enter(ctx->args[0], ctx->args[1], 0, SYS_ID_SENDMSG, DIR_EGRESS, IO_KIND_MSGHDR); }
EXIT(sendmsg)
ENTER(recvmsg)
{
	if (ctx->args[2] & MSG_PEEK)
		return 0;
	return data_enter(ctx->args[0], ctx->args[1], 0, SYS_ID_RECVMSG, DIR_INGRESS, IO_KIND_MSGHDR);
}
EXIT(recvmsg)
ENTER(sendfile64) { return data_enter(ctx->args[0], 0, 0, SYS_ID_SENDFILE, DIR_EGRESS, IO_KIND_NONE); }
EXIT(sendfile64)
