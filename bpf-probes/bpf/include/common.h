/* Includes and small definitions every probe needs. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "include/events.h"
#include "include/h2_state.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define MSG_PEEK 2

/* The kernel-side state of one tracked connection (not shared with userspace). */
struct conn_state {
	__u64 id;
	__u64 opened_ns;
	__u64 bytes[2];   /* socket bytes by enum direction: the stream offsets */
	__u64 plain[2];   /* TLS plaintext bytes by enum direction (uprobe offsets) */
	__u64 truncated_bytes;
	__u64 tls_session; /* the TLS session tied to this socket, once known */
	__u32 data_events;
	__u32 lost_events;
	__u8 role;        /* enum conn_role */
	__u8 l7;          /* enum l7_hint */
	__u8 adopted;
	__u8 announced;   /* conn_open_event sent */
	__u8 go_ready;    /* a Go crypto/tls Read or Write returned data: handshake done */
	__u8 _pad[3];
	struct h2_state h2; /* HTTP/2 frames walked (socket/h2_walk.h) */
};

/* Arguments of a data syscall, saved at sys_enter for sys_exit. */
struct io_args {
	__u64 conn_key;
	__u64 buf;    /* buffer, iovec array, or user_msghdr */
	__u32 vlen;   /* iovec count for IO_KIND_IOVEC */
	__u32 fd;
	__u8 syscall; /* enum syscall_id */
	__u8 direction;
	__u8 kind;    /* IO_KIND_* */
	__u8 _pad[5];
};

#define IO_KIND_BUF 0
#define IO_KIND_IOVEC 1
#define IO_KIND_MSGHDR 2
#define IO_KIND_NONE 3 /* sendfile: the bytes never pass through user memory */

static __always_inline __u64 conn_key(__u32 tgid, __u32 fd)
{
	return ((__u64)tgid << 32) | fd;
}
