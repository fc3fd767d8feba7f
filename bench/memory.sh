#!/usr/bin/env bash
# Agent memory and CPU under saturation, for several configurations in one run:
# each starts the agent (level summary, OTLP to the local collector), reads its
# RSS idle, samples it every 0.5 s during a 10 s wrk load, and prints requests/s,
# agent CPU, exchanges, drops and the RSS split (anon + file-backed) at the end
# of the load, at its peak and 2 s after it, and the minor page faults taken during the load.
# usage: sudo bench/memory.sh URL 'ENV=V ...|AGENT ARGS' ...
#   e.g. sudo bench/memory.sh https://127.0.0.1:18443/ '|' 'MIMALLOC_PURGE_DELAY=1000|' '|--ring-buffer-mib 4'
set -euo pipefail
DUR=10
cd "$(dirname "$0")/.."
URL=$1; shift
source bench/lib.sh
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc
for config in "$@"; do
  ARGS=${config#*|}
  # shellcheck disable=SC2086 # word splitting of the arguments is wanted
  AGENT_ENV=${config%%|*} agent_start --capture-level summary $ARGS
  sleep 2; IDLE=$(agent_mem)
  (while sleep 0.5; do agent_rss 2>/dev/null || echo 0; echo; done >"$WORK/rss.samples") &
  SAMPLER=$!
  F0=$(agent_minflt)
  read -r RPS _ P99 _ < <(wrk_run "$URL" </dev/null)
  FAULTS=$(($(agent_minflt) - F0))
  LOAD=$(agent_mem)
  kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true
  PEAK=$(sort -n "$WORK/rss.samples" | tail -1)
  sleep 2; AFTER=$(agent_mem); agent_stop
  EX=$(counter exchanges)
  echo "[$config] $RPS req/s, p99 $P99 ms; agent CPU $AGENT_CPU s for $EX exchanges ($(awk -v c="$AGENT_CPU" -v n="$EX" 'BEGIN{printf "%.2f", c * 1e6 / n}') µs each); drops ringbuf $(counter kernel_ringbuf_full), exporter stopped $(counter exporter_stopped); minor faults $FAULTS; RSS idle $IDLE, end of load $LOAD, peak $PEAK MiB, idle after load $AFTER"
done
