/* The kernel ↔ userspace contract: every event written to the ring buffer and
 * every enum value it carries. The Rust mirror is bpf-probes/src/events.rs;
 * both sides pin the sizes and offsets below (here with _Static_assert, there
 * with unit tests), so a change on one side that is not made on the other
 * fails to build. No packed structs: padding is explicit (`_pad`). */
#pragma once

/* Payload bytes carried by one data event. */
#define MAX_PAYLOAD 16384
/* Events one buffer (or one iovec element) is split into before the rest
 * of it is counted as truncated (per-call cap: 4 x 16 KiB). */
#define MAX_CHUNKS_PER_BUF 4
/* iovec elements read per readv/writev/sendmsg/recvmsg call. */
#define MAX_IOVECS 128
/* Raw bytes streamed per direction of a TLS connection (handshake only). */
#define TLS_RAW_LIMIT 16384

enum event_kind {
	EVENT_CONN_OPEN = 1,
	EVENT_DATA = 2,
	EVENT_CONN_CLOSE = 3,
	EVENT_PROC_EXIT = 4,
	EVENT_PROC_EXEC = 5,
};

enum conn_role {
	ROLE_UNKNOWN = 0, /* adopted: existed before the agent started */
	ROLE_CLIENT = 1,  /* connect() */
	ROLE_SERVER = 2,  /* accept()/accept4() */
};

/* Direction of a data event, from the observed process's point of view. */
enum direction {
	DIR_EGRESS = 0,  /* the process wrote these bytes */
	DIR_INGRESS = 1, /* the process read these bytes */
};

enum data_source {
	SOURCE_SYSCALL = 0,
	SOURCE_OPENSSL = 1,
	SOURCE_GNUTLS = 2,
	SOURCE_GO = 3, /* Go crypto/tls */
};

/* The kernel's first guess at the protocol, from the first bytes. */
enum l7_hint {
	L7_UNKNOWN = 0,
	L7_HTTP1 = 1,
	L7_HTTP2 = 2,
	L7_TLS = 3,
	L7_OTHER = 4,
};

enum syscall_id {
	SYS_ID_READ = 1,
	SYS_ID_WRITE = 2,
	SYS_ID_READV = 3,
	SYS_ID_WRITEV = 4,
	SYS_ID_SENDTO = 5,
	SYS_ID_RECVFROM = 6,
	SYS_ID_SENDMSG = 7,
	SYS_ID_RECVMSG = 8,
	SYS_ID_SENDFILE = 9,
};

/* conn_open_event.flags */
#define CONN_FLAG_ADOPTED 1

/* data_event.flags */
#define DATA_FLAG_TRUNCATED 1 /* captured < len: the rest of the bytes is missing */
#define DATA_FLAG_RAW_TLS 2   /* ciphertext of a TLS connection (for the handshake) */
/* Skipped on purpose: body bytes userspace said it does not keep (map
 * `body_skip`); len is exact, captured is 0. Not truncated, not lost. */
#define DATA_FLAG_SKIPPED 4
/* The event's tail, past `captured`, was skipped on purpose: a vectored
 * call's last buffer, taken for the body of the message head copied before
 * it on a connection that keeps no body (BODY_SKIP_AFTER_HEAD). Not
 * truncated: userspace checks it against the framing as it does a
 * DATA_FLAG_SKIPPED event. */
#define DATA_FLAG_SKIPPED_TAIL 8

enum close_reason {
	CLOSE_SYSCALL = 1,
	CLOSE_PROCESS_EXIT = 2,
};

/* Per-CPU counters (map `counters`), summed by userspace. */
enum counter_id {
	CNT_RINGBUF_FULL = 0,     /* events lost: ring buffer full */
	CNT_TRUNCATED_EVENTS = 1, /* data events whose payload was cut */
	CNT_TRUNCATED_BYTES = 2,  /* bytes not captured because of the cut */
	CNT_CONN_MAP_FULL = 3,    /* connections not tracked: map full */
	CNT_DATA_EVENTS = 4,      /* data events sent */
	CNT_IGNORED_BYTES = 5,    /* bytes seen on non-HTTP connections */
	CNT_CONNS_TRACKED = 6,    /* connections announced to userspace */
	CNT_SELF_SKIPPED = 7,     /* syscalls of the agent itself, skipped */
	CNT_TLS_UNMAPPED = 8,     /* TLS plaintext dropped: its socket was never seen */
	CNT_UPROBE_HITS = 9,      /* TLS uprobe and uretprobe hits */
	CNT_SCRATCH_BUSY = 10,    /* data events lost: this CPU's event slot was held by a preempted program */
	/* Program runs the kernel skipped because another BPF program was
	 * running on that CPU (each program's recursion_misses). No program
	 * counts it: userspace fills the slot from the programs' fdinfo. */
	CNT_RECURSION_MISSES = 11,
	CNT_SKIPPED_BYTES = 12,   /* body bytes not copied on purpose (DATA_FLAG_SKIPPED events) */
	CNT_H2_WALKS_LOST = 13,   /* HTTP/2 frame walks given up (socket/h2_walk.h): copied as before */
	CNT_MAX = 14,
};

struct event_header {
	__u64 conn_id;
	__u64 timestamp_ns; /* CLOCK_MONOTONIC, bpf_ktime_get_ns() */
	__u32 kind;         /* enum event_kind */
	__u32 tgid;
	__u32 tid;
	__u32 fd;
};

struct conn_open_event {
	struct event_header hdr;
	__u64 opened_ns; /* connect/accept time, or first data when adopted */
	__u8 saddr[16];  /* local address (IPv4 in the first 4 bytes) */
	__u8 daddr[16];  /* remote address */
	__u16 family;    /* AF_INET / AF_INET6 */
	__u16 sport;     /* local port, host order */
	__u16 dport;     /* remote port, host order */
	__u8 role;       /* enum conn_role */
	__u8 l7;         /* enum l7_hint */
	__u32 flags;     /* CONN_FLAG_* */
	char comm[16];   /* task comm, in case the process is gone before userspace looks */
	__u32 _pad;
};

struct data_event {
	struct event_header hdr;
	__u64 offset;   /* stream offset of the first byte, per direction and source */
	__u32 len;      /* bytes of the stream this event covers */
	__u32 captured; /* bytes present in payload (<= len) */
	__u8 direction; /* enum direction */
	__u8 source;    /* enum data_source */
	__u8 syscall;   /* enum syscall_id */
	__u8 flags;     /* DATA_FLAG_* */
	__u32 _pad;
	__u8 payload[MAX_PAYLOAD];
};

struct conn_close_event {
	struct event_header hdr;
	__u64 bytes_sent;     /* socket bytes written */
	__u64 bytes_received; /* socket bytes read */
	__u64 truncated_bytes;
	__u32 data_events;
	__u32 lost_events; /* data events of this connection lost (ring buffer full) */
	__u8 reason;       /* enum close_reason */
	__u8 l7;           /* enum l7_hint */
	__u8 role;         /* enum conn_role */
	__u8 _pad[5];
	/* TLS plaintext bytes the probes streamed (sent, received): the
	 * plaintext offsets' totals, so userspace sees events lost at the end. */
	__u64 plain_sent;
	__u64 plain_received;
};

struct process_event {
	struct event_header hdr;
};

#define EXEC_PATH_LEN 256
#define EXEC_ARGS_LEN 256

/* A new program image, with what userspace cannot read once the process is
 * gone (short-lived clients): the path given to exec, the new comm and the
 * start of the argument strings (NUL-separated). */
struct exec_event {
	struct event_header hdr;
	char comm[16];
	__u32 filename_len; /* bytes in filename, NUL excluded */
	__u32 args_len;     /* bytes in args */
	char filename[EXEC_PATH_LEN];
	char args[EXEC_ARGS_LEN];
};

/* Written by userspace into the `agent_config` array map before attaching. */
struct agent_config {
	__u32 self_tgid;   /* the agent: never captured */
	__u32 filter_pids; /* 1: only tgids present in `pid_filter` */
	__u32 probes_only; /* 1: every program returns at once (benchmarks: trap cost alone) */
	__u32 no_ingress;  /* 1: accepted connections are not captured */
	__u32 no_egress;   /* 1: connected connections are not captured */
	__u32 filter_ports; /* 1: only service ports set in `port_filter` */
	__u32 payload_cap;  /* bytes captured per data event, <= MAX_PAYLOAD (0: MAX_PAYLOAD) */
	__u32 wakeup_bytes; /* wake the reader once this much waits in `events` (0: every record) */
	__u32 h2_walk;      /* 1: no body is kept: HTTP/2 DATA payloads are skipped (socket/h2_walk.h) */
	__u32 _pad;
};

/* Written by userspace into the `body_skip` map, by connection id: per
 * enum direction, the stream offset (socket bytes; TLS plaintext on a TLS
 * connection) before which every byte is message body the capture level does
 * not keep. The kernel emits such bytes as DATA_FLAG_SKIPPED events without
 * copying them. A late update only means some body bytes are copied anyway. */
struct body_skip {
	__u64 until[2];
	__u32 flags; /* BODY_SKIP_* */
	__u32 _pad;
};

/* body_skip.flags: an HTTP/1 connection whose bodies are not kept at all.
 * In a writev/sendmsg, a buffer that follows one ending a message head
 * (CRLF CRLF) is taken for that message's body and skipped — unless its
 * first bytes look like a message start or a chunk-size line. In a buffer
 * (HEAD_SPLIT_MIN bytes or more) that starts with a message head whose end
 * is within its first HEAD_SCAN_BYTES, the head is copied and the next
 * Content-Length bytes skipped, with the same exception. Userspace
 * checks every such skip against the framing: one that does not fit the
 * body is a gap (skipped_outside_body), never bytes taken for others. */
#define BODY_SKIP_AFTER_HEAD 1

#define DATA_HEADER_SIZE 56

_Static_assert(sizeof(struct event_header) == 32, "event_header size");
_Static_assert(sizeof(struct conn_open_event) == 104, "conn_open_event size");
_Static_assert(__builtin_offsetof(struct conn_open_event, comm) == 84, "comm");
_Static_assert(__builtin_offsetof(struct conn_open_event, saddr) == 40, "saddr");
_Static_assert(__builtin_offsetof(struct conn_open_event, family) == 72, "family");
_Static_assert(__builtin_offsetof(struct conn_open_event, role) == 78, "role");
_Static_assert(__builtin_offsetof(struct conn_open_event, flags) == 80, "flags");
_Static_assert(__builtin_offsetof(struct data_event, payload) == DATA_HEADER_SIZE, "payload");
_Static_assert(__builtin_offsetof(struct data_event, direction) == 48, "direction");
_Static_assert(sizeof(struct data_event) == DATA_HEADER_SIZE + MAX_PAYLOAD, "data_event size");
_Static_assert(sizeof(struct conn_close_event) == 88, "conn_close_event size");
_Static_assert(__builtin_offsetof(struct conn_close_event, reason) == 64, "reason");
_Static_assert(sizeof(struct agent_config) == 40, "agent_config size");
_Static_assert(sizeof(struct body_skip) == 24, "body_skip size");
_Static_assert(sizeof(struct exec_event) == 32 + 16 + 8 + EXEC_PATH_LEN + EXEC_ARGS_LEN, "exec_event size");
_Static_assert(__builtin_offsetof(struct exec_event, filename) == 56, "filename");
