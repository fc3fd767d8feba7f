/* From a file descriptor of the current task to its TCP `struct sock`, and
 * the connection 4-tuple from that sock (CO-RE reads, IPv4 and IPv6). */
#pragma once
#include "include/common.h"
#include "maps/config.h"

/* The struct sock behind fd if it is an IPv4/IPv6 TCP socket, else NULL. */
static __always_inline struct sock *tcp_sock_of_fd(__u32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
	if (fd >= max_fds)
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	if (BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return NULL;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return NULL;
	return sk;
}

/* Fill the tuple fields of an open event from sk. */
static __always_inline void read_tuple(struct sock *sk, struct conn_open_event *ev)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ev->family = family;
	ev->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(ev->saddr, &s, 4);
		__builtin_memcpy(ev->daddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO(&ev->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&ev->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

/* One end of sk: local when `local`, else the peer. */
static __always_inline void sock_end(struct sock *sk, bool local, __u8 (*addr)[16], __u16 *port)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (local)
		*port = BPF_CORE_READ(sk, __sk_common.skc_num);
	else
		*port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__u32 a = local ? BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr)
				: BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(*addr, &a, 4);
	} else if (local) {
		BPF_CORE_READ_INTO(addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO(addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

/* The `self_socks` key of sk's connection, the agent's end being sk's local
 * end when `local` (the agent's own socket), else sk's peer (the other side
 * of one of the agent's connections). */
static __always_inline void sock_end_key(struct sock *sk, bool local, struct sock_key *k)
{
	k->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	sock_end(sk, local, &k->addr, &k->port);
	sock_end(sk, !local, &k->peer_addr, &k->peer_port);
}
