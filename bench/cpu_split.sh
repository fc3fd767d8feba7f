#!/usr/bin/env bash
# Where the two cores go at saturation: for each load of the throughput goals,
# run without the agent and with it, and split the machine's CPU time by who
# spent it — the server (nginx), the client (wrk or h2load), the agent, the
# local collector, and the rest (softirqs, kthreads, idle) — in µs per
# request, with the agent's eBPF programs' run time (kernel.bpf_stats_enabled;
# it runs inside the server's and the client's system time). A req/s ratio is
# what these add up to: two cores are 2e6 µs a second, so req/s = 2e6 / (µs
# per request, idle included). CPU times are the kernel's tick-based figures:
# a softirq (loopback delivery) that interrupts a process counts as that
# process's system time. With PERF=1 the agent's own time is profiled
# too (perf, DWARF stacks), split by pipeline stage.
# usage: sudo bench/cpu_split.sh [SECONDS_PER_RUN]   (default 8)
#        SETUPS="tiny body otlp tls h2 paced"   which loads (default: all six; paced:
#        the p99 goal's load, half the saturation rate, with the p99 latency)
set -euo pipefail
DUR=${1:-8}
cd "$(dirname "$0")/.."
source bench/lib.sh
bpf_stats_on
HZ=$(getconf CLK_TCK)
echo "== where the CPU goes at saturation, $DUR s per run, $(nproc) cores, $(uname -r), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

# "user system" CPU seconds of processes (pids...), threads included.
proc_cpu() { for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done |
  awk -v hz="$HZ" '{u += $14; s += $15} END {printf "%.2f %.2f\n", u / hz, s / hz}'; }
# "busy idle" CPU seconds of the whole machine.
machine_cpu() { awk -v hz="$HZ" '/^cpu / {printf "%.2f %.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz, ($5 + $6) / hz}' /proc/stat; }
nginx_pids() { pgrep -x nginx | tr '\n' ' '; }
# "run_ns timeslices" of the agent's threads so far (a timeslice: one run on a CPU).
agent_slices() { cat /proc/"$AGENT_PID"/task/*/schedstat 2>/dev/null | awk '{t += $1; n += $3} END {printf "%.0f %.0f\n", t, n}'; }
# Seconds the nginx workers waited in a run queue, runnable but not running.
nginx_queued() { for p in $(pgrep -f "nginx: worker"); do cat "/proc/$p/schedstat"; done | awk '{w += $2} END {printf "%.3f\n", w / 1e9}'; }

# Every counter a row needs, on one line: nginx user, system; machine busy,
# idle; agent user, system; collector; nginx queued; eBPF run ns, runs; the
# agent's run ns, timeslices (agent fields 0 without an agent).
snapshot() {
  local agent="0 0" bpf="0 0" slices="0 0"
  if [ -n "${AGENT_PID:-}" ]; then
    agent=$(proc_cpu "$AGENT_PID"); bpf=$(bpf_run); slices=$(agent_slices)
  fi
  # shellcheck disable=SC2086 # a list of pids
  echo "$(proc_cpu $1) $(machine_cpu) $agent $(rotel_cpu) $(nginx_queued) $bpf $slices"
}

# One load with its CPU split; prints a row. label client url [collector]
#   client: wrk, h2load (-c 4 -m 10), or paced:RATE (h2load over 16 HTTP/1.1
#   connections at RATE req/s in all, with the p99 latency); collector:
#   "rotel" to count the local collector. Sets ROW_RPS and ROW_P99.
split_run() {
  local label=$1 client=$2 url=$3 collector=${4:-}
  local np before after times n rps
  np=$(nginx_pids)
  ROW_P99=
  before=$(snapshot "$np")
  if [ "$client" = wrk ]; then
    times=$( { TIMEFORMAT='%U %S'; time wrk -t1 -c16 -d"${DUR}s" "$url" >"$WORK/load.out"; } 2>&1 )
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/load.out")
    n=$(awk '/requests in/ {print $1}' "$WORK/load.out")
  else
    local args=(-c 4 -m 10)
    [ "${client%%:*}" = paced ] &&
      args=(--h1 -c 16 --rps $(( (${client#paced:} + 15) / 16 )) --log-file "$WORK/lat.log")
    times=$( { TIMEFORMAT='%U %S'; time h2load -t 1 -D "$DUR" "${args[@]}" "$url" >"$WORK/load.out" 2>&1; } 2>&1 )
    rps=$(awk '/^finished in/ {gsub(",","",$4); print $4}' "$WORK/load.out")
    n=$(awk '/^status codes:/ {print $3}' "$WORK/load.out")
    if [ -f "$WORK/lat.log" ]; then
      ROW_P99=$(sort -n -k3 "$WORK/lat.log" | awk '{v[NR]=$3} END {i=int(NR*0.99); if (i < 1) i = 1; printf "%.3f", v[i] / 1000}')
      rm -f "$WORK/lat.log"
    fi
  fi
  after=$(snapshot "$np")
  ROW_RPS=$rps
  awk -v label="$label" -v rps="$rps" -v n="$n" -v t="$times" -v before="$before" -v after="$after" \
    -v count_collector="$([ "$collector" = rotel ] && echo 1 || echo 0)" -v dur="$DUR" -v p99="$ROW_P99" '
    function us(s) { return s * 1e6 / n }
    BEGIN {
      split(t, c, " "); cu = c[1]; cs = c[2]
      split(before, x, " "); split(after, y, " ")
      for (i in y) d[i] = y[i] - x[i]
      su = d[1]; ss = d[2]; busy = d[3]; idle = d[4]; au = d[5]; as = d[6]
      col = count_collector ? d[7] : 0; queued = d[8]; bpf = d[9] / 1e9; ran = d[11]; slices = d[12]
      other = busy - (su + ss) - (cu + cs) - (au + as) - col; if (other < 0) other = 0
      printf "  %-22s %9.0f req/s  %6.2f %6.2f  %6.2f %6.2f  %6.2f  %6.2f %6.2f  %6.2f  %6.2f %6.2f  %6.2f\n",
        label, rps, us(su), us(ss), us(cu), us(cs), us(bpf), us(au), us(as), us(col), us(other), us(idle),
        us(busy + idle)
      printf "  %-22s %15s  nginx runnable but waiting for a CPU: %.0f %% of the run (%.2f µs per request); the machine idle: %.0f %%\n",
        "", "", queued * 100 / dur, us(queued), idle * 100 / (busy + idle)
      if (slices > 0)
        printf "  %-22s %15s  the agent ran %d times (all threads), %.0f µs each on average\n", "", "", slices, ran / slices / 1e3
      if (p99 != "")
        printf "  %-22s %15s  p99 latency %s ms\n", "", "", p99
    }'
}
header() {
  echo "$1"
  printf "  %-22s %15s  %13s  %13s  %6s  %13s  %6s  %6s %6s  %6s\n" "" "" "server" "client" "eBPF" "agent" "coll." "other" "idle" "total"
  printf "  %-22s %15s  %6s %6s  %6s %6s  %6s  %6s %6s  %6s  %6s %6s  %6s\n" "µs per request" "" user sys user sys "" user sys "" "" "" ""
}
ratio_line() { echo "  req/s ratio: $1 $(ratio "$2" "$3")"; }
# The agent's userspace by stage (perf, DWARF stacks, 3 s of the load): share
# of the agent's samples in each stage, callees included.
perf_agent() {
  [ "${PERF:-0}" = 1 ] || return 0
  ( sleep 2; perf record -q -F 999 --call-graph dwarf,16384 -o "$WORK/perf.data" -p "$AGENT_PID" -- sleep 3 >/dev/null 2>&1 ) &
  PERF_PID=$!
}
perf_report() {
  [ "${PERF:-0}" = 1 ] || return 0
  wait "$PERF_PID"
  perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none --percent-limit 0.5 2>/dev/null |
    awk '/%/ {print}' >"$WORK/perf.txt"
  share() { awk -v f="$1" 'index($0, f) {print $1; found = 1; exit} END {if (!found) print "<0.5%"}' "$WORK/perf.txt"; }
  echo "  the agent's time by stage (perf, callees included; share of its samples):"
  echo "    ring buffer $(share 'aya::maps::ring_buf::'), tracker $(share 'Tracker::handle_record') (HTTP/1 heads $(share 'http1::head::parse_head'), HTTP/2 $(share 'Http2Stream'), exchange assembly $(share 'track::assemble::assemble')), linker $(share 'Linker::link'), stdout JSON $(share 'Stdout::write_batch') (its write calls $(share 'ksys_write')), OTLP spans and metrics $(share 'Otlp::exchange'), yields $(share 'sched_yield'); inside those, the allocator: $(share '_mi_theap_malloc_zero') malloc, $(share 'mi_free') free"
  [ -n "${PERF_KEEP:-}" ] && cp "$WORK/perf.data" "$PERF_KEEP.$setup" && cp "$WORK/perf.txt" "$PERF_KEEP.$setup.txt"
  rm -f "$WORK/perf.data"
}

for setup in ${SETUPS:-tiny body otlp tls h2 paced}; do
  case $setup in
    tiny|body)
      header "plaintext HTTP/1.1 /$setup, wrk -t1 -c16, default mode (details, stdout to a file)"
      split_run "without the agent" wrk "http://127.0.0.1:18080/$setup"; B=$ROW_RPS
      agent_start; perf_agent
      split_run "agent" wrk "http://127.0.0.1:18080/$setup"; A=$ROW_RPS
      sleep 1; agent_stop; perf_report; rm -f "$WORK/agent.out"
      ratio_line "agent / without" "$A" "$B" ;;
    otlp)
      header "plaintext HTTP/1.1 /tiny, wrk -t1 -c16, summary, OTLP to the local collector (blackhole rotel)"
      split_run "without the agent" wrk http://127.0.0.1:18080/tiny; B=$ROW_RPS
      OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
        agent_start --capture-level summary; perf_agent
      split_run "agent" wrk http://127.0.0.1:18080/tiny rotel; A=$ROW_RPS
      sleep 1; agent_stop; perf_report
      echo "  spans shed $(counter span_shed) of $(counter exchanges) exchanges; span queue full $(counter span_queue_full)"
      ratio_line "agent / without" "$A" "$B" ;;
    paced)
      header "plaintext HTTP/1.1 /tiny, h2load --h1 -c16 paced at half the rate wrk -t1 -c16 reaches without the agent, default mode"
      split_run "saturated, no agent" wrk http://127.0.0.1:18080/tiny
      HALF=$(awk -v r="$ROW_RPS" 'BEGIN{printf "%d", r / 2}')
      split_run "without the agent" "paced:$HALF" http://127.0.0.1:18080/tiny; BP=$ROW_P99
      agent_start
      split_run "agent" "paced:$HALF" http://127.0.0.1:18080/tiny; AP=$ROW_P99
      sleep 1; agent_stop; rm -f "$WORK/agent.out"
      echo "  p99 ratio: agent / without $(ratio "$AP" "$BP") at $HALF req/s asked" ;;
    tls|h2)
      client=wrk; name="TLS HTTP/1.1 /body (2 KiB), wrk -t1 -c16"
      [ "$setup" = h2 ] && client=h2load && name="TLS HTTP/2 /body (2 KiB), h2load -c4 -m10"
      header "$name, default mode"
      split_run "without the agent" $client https://127.0.0.1:18443/; B=$ROW_RPS
      agent_start --probes-only
      split_run "probes only" $client https://127.0.0.1:18443/; P=$ROW_RPS
      agent_stop
      agent_start; perf_agent
      split_run "agent" $client https://127.0.0.1:18443/; A=$ROW_RPS
      sleep 1; agent_stop; perf_report; rm -f "$WORK/agent.out"
      ratio_line "agent / probes only" "$A" "$P" ;;
  esac
  AGENT_PID=""
done
