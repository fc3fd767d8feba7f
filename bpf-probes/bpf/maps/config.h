/* `agent_config`: one struct agent_config written by userspace before attaching;
 * `pid_filter`: the tgids to capture when config.filter_pids is set. */
#pragma once
#include "include/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct agent_config);
} agent_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

/* `self_socks`: every TCP connection the agent itself opens (its OTLP
 * exports), by both ends: the agent's (address, port), then the peer's. A
 * connection seen from its peer — the collector's side of an export on this
 * host — is never captured either, or every export would be captured and
 * exported again. Both ends, not the agent's alone: Linux gives one
 * ephemeral port to connections to different destinations, so another
 * program's connection can share the agent's local port, and its server side
 * was skipped as the agent's (a server exchange and its report missing). */
struct sock_key {
	__u8 addr[16];      /* the agent's end */
	__u8 peer_addr[16]; /* the other end */
	__u16 port;
	__u16 peer_port;
	__u16 family;
	__u16 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct sock_key);
	__type(value, __u8);
} self_socks SEC(".maps");

static __always_inline bool is_self(__u32 tgid)
{
	__u32 zero = 0;
	struct agent_config *cfg = bpf_map_lookup_elem(&agent_config, &zero);
	return cfg && cfg->self_tgid == tgid;
}

/* `port_filter`: one bit per TCP port, set for the service ports to capture
 * when config.filter_ports is set (word = port / 64, bit = port % 64). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} port_filter SEC(".maps");

/* May a new connection of this role, with this service port, be tracked? */
static __always_inline bool role_port_wanted(__u8 role, __u16 service_port)
{
	__u32 zero = 0;
	struct agent_config *cfg = bpf_map_lookup_elem(&agent_config, &zero);
	if (!cfg)
		return false;
	if ((role == ROLE_SERVER && cfg->no_ingress) || (role == ROLE_CLIENT && cfg->no_egress))
		return false;
	if (!cfg->filter_ports)
		return true;
	__u32 word = service_port / 64;
	__u64 *bits = bpf_map_lookup_elem(&port_filter, &word);
	return bits && (*bits & (1ULL << (service_port % 64)));
}

/* Should syscalls of this tgid be looked at? Never the agent's own. */
static __always_inline bool tgid_wanted(__u32 tgid)
{
	__u32 zero = 0;
	struct agent_config *cfg = bpf_map_lookup_elem(&agent_config, &zero);
	if (!cfg || cfg->self_tgid == tgid || cfg->probes_only)
		return false;
	if (cfg->filter_pids && !bpf_map_lookup_elem(&pid_filter, &tgid))
		return false;
	return true;
}
