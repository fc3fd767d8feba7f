#!/usr/bin/env bash
# The default mode at saturation, as a new user runs it: default settings
# (capture level `details`, JSON lines on stdout redirected to a file on the
# root filesystem), `wrk -t1 -c16` against nginx on loopback, plaintext, with a
# 2-byte and a 2 KiB body. Prints the req/s ratio (agent / no agent) and the
# completeness: exchanges written as JSON lines / (2 × requests: client and
# server side are both captured), with the agent's CPU and its eBPF programs'
# run time (kernel.bpf_stats_enabled) per exchange.
# usage: sudo bench/saturation.sh [SECONDS_PER_RUN]   (default 8)
#        BODIES="tiny body"  which nginx paths: tiny (2 bytes), body (2 KiB), large (64 KiB)
#        LEVELS="details"    capture levels to run the agent at (e.g. "summary details")
#        MODES="skip"        skip: the agent as it is; copy: --copy-all-bodies (the kernel
#                            copies every body byte, as before it skipped bodies not kept);
#                            "copy skip" compares both in the same run
#        ROUNDS=1            repeat the agent runs (modes alternate, so that load from
#                            elsewhere on a shared machine hits both alike)
#        PERF=1 also records the agent's userspace with `perf record -g` (report in the output)
set -euo pipefail
DUR=${1:-8}
cd "$(dirname "$0")/.."
source bench/lib.sh
bpf_stats_on
export WRK_THREADS=1
OUT_DIR=$(mktemp -d "$PWD/target/saturation.XXXX") # the root filesystem, not a tmpfs
echo "== default mode at saturation (stdout JSON to a file), $DUR s per run, $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for body in ${BODIES:-tiny body}; do
  read -r B_RPS B_P50 B_P99 _ < <(wrk_run "http://127.0.0.1:18080/$body")
  echo "/$body  baseline ${B_RPS} req/s (p99 ${B_P99} ms)"
  for round in $(seq 1 "${ROUNDS:-1}"); do
  for level in ${LEVELS:-details}; do
    for mode in ${MODES:-skip}; do
      args=(--capture-level "$level")
      [ "$mode" = copy ] && args+=(--copy-all-bodies)
      agent_start "${args[@]}"
      read -r A_RPS A_P50 A_P99 A_N < <(
        if [ "${PERF:-0}" = 1 ]; then
          perf record -q -g -o "$OUT_DIR/perf.$body.data" -p "$AGENT_PID" -- sleep "$DUR" >/dev/null 2>&1 &
        fi
        wrk_run "http://127.0.0.1:18080/$body"
        wait
      )
      sleep 1; agent_stop
      LINES=$(grep -c '"transaction_time"' "$WORK/agent.out" || true)
      GAPS=$(grep -c '"gap":true' "$WORK/agent.out" || true)
      SKIP_MISFITS=$(grep -c 'skipped_outside_body' "$WORK/agent.out" || true)
      SKIP_MISFITS_ALONE=$(grep 'skipped_outside_body' "$WORK/agent.out" | grep -vc 'lost_bytes' || true)
      mv "$WORK/agent.out" "$OUT_DIR/agent.$body.$level.$mode.jsonl"
      per() { awk -v c="$1" -v n="$LINES" -v k="$2" 'BEGIN{ if (n > 0) printf "%.2f", c * k / n; else print "n/a"}'; }
      OTHERS=$(pgrep -f "otel-agent --log-level" | grep -vcx "$AGENT_PID" || true)
      echo "  $level, $mode: agent ${A_RPS} req/s (p99 ${A_P99} ms); ratio $(ratio "$A_RPS" "$B_RPS")  [other agents running at the end: $OTHERS; load $(cut -d' ' -f1 /proc/loadavg)]"
      echo "        completeness: ${A_N} requests, $LINES JSON exchange lines (expect 2× = $((2 * A_N))): $(ratio "$LINES" $((2 * A_N))); flagged gap $GAPS (of which a skip that did not fit the body: $SKIP_MISFITS, $SKIP_MISFITS_ALONE of them without lost bytes)"
      echo "        ringbuf drops $(counter kernel_ringbuf_full), export queue waits $(counter export_queue_waits); bytes copied $(counter bytes_captured), skipped $(counter bytes_skipped) (by the kernel $(counter kernel_skipped_bytes))"
      echo "        agent CPU $AGENT_CPU s ($(per "$AGENT_CPU" 1e6) µs per exchange written), eBPF programs $(awk -v t="$BPF_NS" 'BEGIN{printf "%.2f", t / 1e9}') s in $BPF_RUNS runs ($(per "$BPF_NS" 1e-3) µs per exchange written), RSS $AGENT_RSS MiB"
      if [ "${PERF:-0}" = 1 ]; then
        echo "        self time:"
        perf report -i "$OUT_DIR/perf.$body.data" --no-children --percent-limit 1.5 --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
        echo "        with callees (the agent's own functions):"
        perf report -i "$OUT_DIR/perf.$body.data" --children --sort symbol --percent-limit 3 --stdio -g none 2>/dev/null | grep 'otel_agent::\|semconv::\|protocols::' | head -40
      fi
    done
  done
  done
done
rm -rf "$OUT_DIR"
