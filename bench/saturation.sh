#!/usr/bin/env bash
# The default mode at saturation, as a new user runs it: default settings
# (capture level `details`, JSON lines on stdout redirected to a file on the
# root filesystem), `wrk -t1 -c16` against nginx on loopback, plaintext, with a
# 2-byte and a 2 KiB body. Prints the req/s ratio (agent / no agent) and the
# completeness: exchanges written as JSON lines / (2 × requests: client and
# server side are both captured).
# usage: sudo bench/saturation.sh [SECONDS_PER_RUN]   (default 8)
#        PERF=1 also records the agent's userspace with `perf record -g` (report in the output)
set -euo pipefail
DUR=${1:-8}
cd "$(dirname "$0")/.."
source bench/lib.sh
export WRK_THREADS=1
OUT_DIR=$(mktemp -d "$PWD/target/saturation.XXXX") # the root filesystem, not a tmpfs
echo "== default mode at saturation (details, stdout JSON to a file), $DUR s per run, $(nproc) cores, $(uname -r)"
for body in tiny body; do
  read -r B_RPS B_P50 B_P99 _ < <(wrk_run "http://127.0.0.1:18080/$body")
  agent_start
  read -r A_RPS A_P50 A_P99 A_N < <(
    if [ "${PERF:-0}" = 1 ]; then
      perf record -q -g -o "$OUT_DIR/perf.$body.data" -p "$AGENT_PID" -- sleep "$DUR" >/dev/null 2>&1 &
    fi
    wrk_run "http://127.0.0.1:18080/$body"
    wait
  )
  sleep 1; agent_stop
  LINES=$(grep -c '"transaction_time"' "$WORK/agent.out" || true)
  mv "$WORK/agent.out" "$OUT_DIR/agent.$body.jsonl"
  echo "/$body  baseline ${B_RPS} req/s (p99 ${B_P99} ms); agent ${A_RPS} req/s (p99 ${A_P99} ms); ratio $(ratio "$A_RPS" "$B_RPS")"
  echo "        completeness: ${A_N} requests, $LINES JSON exchange lines (expect 2× = $((2 * A_N))): $(ratio "$LINES" $((2 * A_N)))"
  echo "        ringbuf drops $(counter kernel_ringbuf_full), export queue waits $(counter export_queue_waits), agent CPU $AGENT_CPU s ($(awk -v c="$AGENT_CPU" -v n="$LINES" 'BEGIN{ if (n > 0) printf "%.2f", c * 1e6 / n; else print "n/a"}') µs per exchange written), RSS $AGENT_RSS MiB"
  if [ "${PERF:-0}" = 1 ]; then
    perf report -i "$OUT_DIR/perf.$body.data" --no-children --percent-limit 1.5 --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
  fi
done
rm -rf "$OUT_DIR"
