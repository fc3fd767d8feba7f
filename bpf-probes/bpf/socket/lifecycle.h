/* Socket lifecycle: connect (client), accept/accept4 (server), close, and
 * process exit (whose implicit closes no syscall tracepoint sees); process
 * exec, for TLS library discovery. */
#pragma once
#include "include/common.h"
#include "maps/config.h"
#include "maps/active_io.h"
#include "maps/tls.h"
#include "socket/emit.h"

#define EINPROGRESS 115

/* Is sk's peer a socket of the agent itself (an OTLP export on this host)? */
static __always_inline bool peer_is_self(struct sock *sk)
{
	struct sock_key k = {};
	sock_end_key(sk, false, &k);
	return bpf_map_lookup_elem(&self_socks, &k) != NULL;
}

static __always_inline void track_new(__u32 tgid, __u32 tid, __u32 fd, __u8 role)
{
	struct sock *sk = tcp_sock_of_fd(fd);
	if (!sk)
		return;
	__u64 key = conn_key(tgid, fd);
	__u16 service_port = role == ROLE_SERVER ? BPF_CORE_READ(sk, __sk_common.skc_num)
						 : bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!role_port_wanted(role, service_port)) {
		/* Filtered in the kernel: its syscalls cost one lookup from now on. */
		__u8 one = 1;
		bpf_map_delete_elem(&conns, &key);
		bpf_map_update_elem(&not_socket, &key, &one, BPF_ANY);
		return;
	}
	if (peer_is_self(sk)) {
		__u8 one = 1;
		bpf_map_update_elem(&not_socket, &key, &one, BPF_ANY);
		count(CNT_SELF_SKIPPED, 1);
		return;
	}
	struct conn_state *old = bpf_map_lookup_elem(&conns, &key);
	if (old) {
		forget_tls_session(old, key);
		if (old->announced)
			emit_close(old, key, tid, CLOSE_SYSCALL);
	}
	bpf_map_delete_elem(&not_socket, &key);
	struct conn_state s = {};
	s.id = next_conn_id();
	s.opened_ns = bpf_ktime_get_ns();
	s.role = role;
	if (bpf_map_update_elem(&conns, &key, &s, BPF_ANY))
		count(CNT_CONN_MAP_FULL, 1);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!tgid_wanted(pid_tgid >> 32) && !is_self(pid_tgid >> 32))
		return 0;
	__u32 tid = (__u32)pid_tgid;
	__u32 fd = ctx->args[0];
	bpf_map_update_elem(&connecting, &tid, &fd, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	__u32 *fd = bpf_map_lookup_elem(&connecting, &tid);
	if (!fd)
		return 0;
	__u32 f = *fd;
	bpf_map_delete_elem(&connecting, &tid);
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	if (is_self(pid_tgid >> 32)) {
		/* The agent's own connection: remember its local end. */
		struct sock *sk = tcp_sock_of_fd(f);
		if (sk) {
			struct sock_key k = {};
			__u8 one = 1;
			sock_end_key(sk, true, &k);
			bpf_map_update_elem(&self_socks, &k, &one, BPF_ANY);
		}
		return 0;
	}
	track_new(pid_tgid >> 32, tid, f, ROLE_CLIENT);
	return 0;
}

static __always_inline int accepted(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (ret < 0 || !tgid_wanted(pid_tgid >> 32))
		return 0;
	track_new(pid_tgid >> 32, (__u32)pid_tgid, (__u32)ret, ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx) { return accepted(ctx->ret); }

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx) { return accepted(ctx->ret); }

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 key = conn_key(pid_tgid >> 32, (__u32)ctx->args[0]);
	struct conn_state *c = bpf_map_lookup_elem(&conns, &key);
	if (c) {
		forget_tls_session(c, key);
		if (c->announced)
			emit_close(c, key, (__u32)pid_tgid, CLOSE_SYSCALL);
		bpf_map_delete_elem(&conns, &key);
	} else if (bpf_map_lookup_elem(&not_socket, &key)) {
		/* Looked up first: nearly every close is of an fd in neither map
		 * (a file nginx served), and a delete takes the bucket's lock even
		 * when the key is missing. */
		bpf_map_delete_elem(&not_socket, &key);
	}
	return 0;
}

struct exit_ctx {
	__u32 tgid;
	__u32 tid;
};

/* bpf_for_each_map_elem callback: close every connection of the exiting process. */
static long close_on_exit(void *map, __u64 *key, struct conn_state *c, struct exit_ctx *x)
{
	if ((*key >> 32) != x->tgid)
		return 0;
	forget_tls_session(c, *key);
	if (c->announced)
		emit_close(c, *key, x->tid, CLOSE_PROCESS_EXIT);
	bpf_map_delete_elem(map, key);
	return 0;
}

/* The fds of an exiting process are closed without close(2): report its
 * connections here. Only processes that own announced connections pay for
 * the walk over `conns`. */
SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if ((__u32)pid_tgid != tgid || !bpf_map_lookup_elem(&proc_conns, &tgid))
		return 0;
	bpf_map_delete_elem(&proc_conns, &tgid);
	struct exit_ctx x = { .tgid = tgid, .tid = (__u32)pid_tgid };
	bpf_for_each_map_elem(&conns, close_on_exit, &x, 0);
	struct process_event ev = {};
	ev.hdr.timestamp_ns = bpf_ktime_get_ns();
	ev.hdr.kind = EVENT_PROC_EXIT;
	ev.hdr.tgid = tgid;
	ev.hdr.tid = tgid;
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), ringbuf_flags(sizeof(ev))))
		count(CNT_RINGBUF_FULL, 1);
	return 0;
}

/* A new program image: userspace looks for TLS libraries in it, and keeps
 * its identity (path, comm, arguments) for the process's connections even if
 * the process is gone before userspace could read /proc. */
SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!tgid_wanted(tgid))
		return 0;
	struct exec_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count(CNT_RINGBUF_FULL, 1);
		return 0;
	}
	ev->hdr.conn_id = 0;
	ev->hdr.timestamp_ns = bpf_ktime_get_ns();
	ev->hdr.kind = EVENT_PROC_EXEC;
	ev->hdr.tgid = tgid;
	ev->hdr.tid = (__u32)pid_tgid;
	ev->hdr.fd = 0;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));

	unsigned int loc = BPF_CORE_READ(ctx, __data_loc_filename);
	long n = bpf_probe_read_kernel_str(ev->filename, sizeof(ev->filename),
					   (void *)ctx + (loc & 0xFFFF));
	ev->filename_len = n > 0 ? n - 1 : 0;

	/* The new image's argument strings, just copied onto its stack. */
	struct task_struct *task = bpf_get_current_task_btf();
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	__u32 len = end > start ? end - start : 0;
	if (len > EXEC_ARGS_LEN)
		len = EXEC_ARGS_LEN;
	ev->args_len = 0;
	if (len > 0 && bpf_probe_read_user(ev->args, len & (EXEC_ARGS_LEN - 1) ?: EXEC_ARGS_LEN,
					    (void *)start) == 0)
		ev->args_len = len;
	/* At once, like a connection's announcement: /proc is read while it lives. */
	bpf_ringbuf_submit(ev, BPF_RB_FORCE_WAKEUP);
	return 0;
}
