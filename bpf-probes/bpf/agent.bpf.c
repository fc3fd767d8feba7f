/* otel-agent's eBPF programs: socket lifecycle and data capture on syscall
 * tracepoints (this kernel family has no kprobes/fentry), and TLS plaintext
 * capture on uprobes. */
#include "include/common.h"
#include "socket/lifecycle.h"
#include "socket/data.h"
#include "tls/probes.h"
#include "tls/go.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
