#!/usr/bin/env bash
# The agent's eBPF programs one by one under load: runs per exchange, time per
# run and per exchange (kernel.bpf_stats_enabled=1; a tail-called program's
# time is in its caller's, so the data exit handlers show as exit_<syscall>).
# wrk -t1 -c16 for DUR s (5 unless set) against nginx PATH, the agent in the
# default mode unless ARGS are given; BASE=https://127.0.0.1:18443 for nginx
# over TLS (the uprobes' programs too).
# usage: sudo bench/bpf_programs.sh [PATH] [AGENT ARGS...]
#   e.g. sudo bench/bpf_programs.sh /tiny      sudo bench/bpf_programs.sh /body --capture-level summary
#        sudo BASE=https://127.0.0.1:18443 bench/bpf_programs.sh /tiny
set -euo pipefail
cd "$(dirname "$0")/.."
URL_PATH=${1:-/tiny}
shift || true
source bench/lib.sh
export WRK_THREADS=1 DUR=${DUR:-5}
bpf_stats_on
agent_start "$@"
read -r RPS _ _ N < <(wrk_run "${BASE:-http://127.0.0.1:18080}$URL_PATH")
EXCHANGES=$((2 * N))
echo "== eBPF programs, nginx $URL_PATH, $RPS req/s, $N requests ($EXCHANGES exchanges, both sides)"
# The agent's programs: the ids of its program descriptors.
IDS=$(for f in /proc/"$AGENT_PID"/fdinfo/*; do awk '/^prog_id:/ {print $2}' "$f" 2>/dev/null; done | sort -u | tr '\n' ' ')
bpftool prog show -j | python3 -c '
import json, sys
n = int(sys.argv[1])
ids = {int(i) for i in sys.argv[2].split()}
rows = [(p.get("run_time_ns", 0), p.get("run_cnt", 0), p.get("name", "?"))
        for p in json.load(sys.stdin) if p.get("run_cnt") and p.get("id") in ids]
for t, c, name in sorted(rows, reverse=True):
    if c * 100 >= n:  # programs run at least once per 100 exchanges
        print(f"{name:24s} {c / n:5.2f} runs per exchange {t / c:7.0f} ns per run {t / n:6.0f} ns per exchange")
print("{:24s} {:34s} {:6.0f} ns per exchange".format("all", "", sum(t for t, _, _ in rows) / n))
' "$EXCHANGES" "$IDS"
agent_stop
