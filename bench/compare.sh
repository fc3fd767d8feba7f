#!/usr/bin/env bash
# Two agent builds against each other under the same saturation load, run in
# turn ROUNDS times so that a drifting host affects both alike: wrk -t1 -c16
# (DUR s, 6 unless set) against nginx PATH, the agent at level LEVEL (summary
# unless set) exporting OTLP to the local collector, or in the default mode
# (details, JSON lines on stdout to a file) with MODE=default. Per run: req/s,
# exchanges and completeness (and ring-buffer drops), agent CPU per exchange, minor page faults,
# RSS (peak and end of load), spans shed; then the medians of each build.
# BASE=https://127.0.0.1:18443: nginx over TLS. CLIENT=h2load: h2load -c 4 -m 10
# (HTTP/2; over TLS with that BASE) instead of wrk.
# usage: sudo bench/compare.sh A_BIN B_BIN [ROUNDS] [PATH]
#   e.g. sudo bench/compare.sh /tmp/agent-before target/release/otel-agent 5 /tiny
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 ROUNDS=${3:-5} URL_PATH=${4:-/tiny}
[ -x "$A" ] && [ -x "$B" ] || { echo "usage: bench/compare.sh A_BIN B_BIN [ROUNDS] [PATH]" >&2; exit 1; }
source bench/lib.sh
export WRK_THREADS=1 DUR=${DUR:-6}
if [ "${MODE:-otlp}" = otlp ]; then
  export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc
  ARGS=(--capture-level "${LEVEL:-summary}")
else
  unset OTEL_EXPORTER_OTLP_ENDPOINT
  ARGS=()
fi
echo "== $A (A) against $B (B), ${MODE:-otlp} mode, $ROUNDS rounds of ${DUR} s, ${CLIENT:-wrk} against nginx ${BASE:-http://127.0.0.1:18080}$URL_PATH"
: >"$WORK/A.cpu"; : >"$WORK/B.cpu"; : >"$WORK/A.faults"; : >"$WORK/B.faults"
for _ in $(seq 1 "$ROUNDS"); do
  for build in A B; do
    AGENT=${!build}
    agent_start "${ARGS[@]}"
    C0=$(agent_cpu); F0=$(agent_minflt)
    (while sleep 0.3; do agent_rss 2>/dev/null || echo 0; echo; done >"$WORK/rss.samples") &
    SAMPLER=$!
    if [ "${CLIENT:-wrk}" = h2load ]; then
      read -r RPS N < <(h2_run "${BASE:-http://127.0.0.1:18080}$URL_PATH" </dev/null)
    else
      read -r RPS _ _ N < <(wrk_run "${BASE:-http://127.0.0.1:18080}$URL_PATH" </dev/null)
    fi
    C1=$(agent_cpu); F1=$(agent_minflt); END=$(agent_rss)
    kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true
    PEAK=$(sort -n "$WORK/rss.samples" | tail -1)
    sleep 1; agent_stop
    EX=$(counter exchanges)
    PER=$(awk -v a="$C0" -v b="$C1" -v n="$EX" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')
    echo "$PER" >>"$WORK/$build.cpu"; echo $((F1 - F0)) >>"$WORK/$build.faults"
    echo "$build: $RPS req/s; $EX exchanges for $N requests ($(ratio "$EX" $((2 * N))), ringbuf drops $(counter kernel_ringbuf_full)); agent CPU $PER µs per exchange; minor faults $((F1 - F0)); RSS peak $PEAK MiB, end of load $END MiB; spans shed $(counter span_shed)"
  done
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "medians: agent CPU per exchange A $(median "$WORK/A.cpu") µs, B $(median "$WORK/B.cpu") µs; minor faults A $(median "$WORK/A.faults"), B $(median "$WORK/B.faults")"
