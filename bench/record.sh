#!/usr/bin/env bash
# Records real captures for the pipeline benchmark (cargo bench -p otel-agent
# --bench pipeline): the agent runs with --record while h2load drives nginx on
# loopback, and the raw kernel events are written, gzipped, to
# otel-agent/benches/recordings/{http1,http2}.rec.gz.
#   http1: 1,000 HTTP/1.1 keep-alive requests (h2load --h1, 4 connections), 256 B bodies
#   http2: 1,000 HTTP/2 requests over TLS 1.3 (4 connections × 10 streams), 256 B bodies
# usage: sudo bench/record.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
OUT=otel-agent/benches/recordings
mkdir -p "$OUT"

record() { # name url h2load-args...
  local name=$1 url=$2; shift 2
  agent_start --capture-level summary --record "$WORK/$name.rec"
  h2load -n 1000 "$@" "$url" >"$WORK/h2.out" 2>&1
  sleep 1; agent_stop
  grep -q "succeeded, 0 failed" "$WORK/h2.out" || sed -n '/^requests:/p' "$WORK/h2.out"
  gzip -9 -c "$WORK/$name.rec" >"$OUT/$name.rec.gz"
  echo "$name: $(counter exchanges) exchanges, $(stat -c %s "$WORK/$name.rec") bytes of events → $OUT/$name.rec.gz ($(stat -c %s "$OUT/$name.rec.gz") bytes)"
}
record http1 http://127.0.0.1:18080/small --h1 -c 4
record http2 https://127.0.0.1:18443/small -c 4 -m 10
