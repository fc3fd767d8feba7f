#!/usr/bin/env bash
# Cost of capturing Go crypto/tls (issue 17), all measured in one run on this machine
# (loopback only), with the Go 1.27 fixture of the e2e tests (integration/fixtures/go_tls):
#   - uprobe hits and agent CPU per Go TLS exchange: the Go client against the Go
#     server (both sides probed), HTTP/1.1 keep-alive and HTTP/2, full agent
#   - TLS req/s of the Go server under load (h2load, HTTP/1.1 and HTTP/2):
#     baseline vs bare probes (--probes-only) vs full agent
# usage: sudo bench/go_tls.sh [SECONDS_PER_RUN] [REQUESTS]   (default 10, 20000)
set -euo pipefail
DUR=${1:-10}
N=${2:-20000}
cd "$(dirname "$0")/.."
source bench/lib.sh

GO=${OTEL_AGENT_GO_TOOLCHAINS:-/opt/otel-agent-test}/go1.27/go/bin/go
GOBIN="$WORK/go_tls"
GO111MODULE=off GOPATH="$WORK/gopath" GOCACHE="$PWD/target/tmp/go-tls/gocache-1.27" \
  "$GO" build -o "$GOBIN" integration/fixtures/go_tls/main.go
PORT=18444
"$GOBIN" server "$WORK/cert.pem" "$WORK/key.pem" $PORT >/dev/null 2>"$WORK/go-server.err" &
sleep 1
URL=https://127.0.0.1:$PORT/size/2048
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc
echo "== Go crypto/tls capture cost, $("$GO" version | cut -d' ' -f3), $DUR s per load run, $N requests per client run, $(nproc) cores, $(uname -r)"

# The agent's CPU with no traffic over WALL seconds (its periodic rescans of
# every process), subtracted from the runs below.
idle_cpu() { # seconds
  agent_start --capture-level summary --exe "$GOBIN"
  local cpu0; cpu0=$(agent_cpu)
  sleep "$1"
  awk -v a="$(agent_cpu)" -v b="$cpu0" 'BEGIN{printf "%.2f", a - b}'
  agent_stop
}
# Per exchange: the Go client (16 at a time, keep-alive) against the Go server,
# only the Go binary captured (--exe), agent CPU net of idle over the same time.
per_exchange() { # h1|h2
  agent_start --capture-level summary --exe "$GOBIN"
  local cpu0 start end
  cpu0=$(agent_cpu)
  start=$(date +%s.%N)
  "$GOBIN" client "$1" "$URL" "$N" 16 >"$WORK/client.out"
  end=$(date +%s.%N)
  sleep 1; agent_stop
  local wall idle
  wall=$(awk -v s="$start" -v e="$end" 'BEGIN{printf "%.1f", e - s + 1}')
  idle=$(idle_cpu "$wall")
  local ok ex hits
  ok=$(grep -c "^200 " "$WORK/client.out" || true)
  ex=$(counter exchanges); hits=$(counter kernel_uprobe_hits)
  echo "Go client → Go server, $1: $ok/$N responses in $(awk -v s="$start" -v e="$end" 'BEGIN{printf "%.1f", e - s}') s; $ex exchanges captured (both sides: expect $((2 * N)))"
  echo "                    uprobe hits $hits = $(ratio "$hits" "$ex") per exchange (hits of every process; exchanges of the Go binary)"
  echo "                    agent CPU $(awk -v a="$AGENT_CPU" -v b="$(awk -v c="$cpu0" -v r="$AGENT_START_CPU" 'BEGIN{print c - r}')" -v i="$idle" -v w="$wall" -v n="$ex" 'BEGIN{printf "%.2f s (idle over %s s: %.2f s) = %.1f µs", a - b, w, i, (a - b - i) * 1e6 / n}') per exchange net of idle; ringbuf drops $(counter kernel_ringbuf_full), tls_unmapped $(counter kernel_tls_unmapped)"
}
per_exchange h1
per_exchange h2

# The Go server under load: h2load (its own OpenSSL is probed too, as on any host).
load() { # h2load-args... → "req/s requests"
  h2load -D "$DUR" "$@" "$URL" >"$WORK/h2.out" 2>&1
  awk '/^finished in/ {gsub(",","",$4); rps=$4} /^status codes:/ {n=$3} END {print rps, n}' "$WORK/h2.out"
}
for proto in h1 h2; do
  if [ $proto = h1 ]; then ARGS=(--h1 -c 16 -t 1); else ARGS=(-c 4 -m 10 -t 1); fi
  read -r BASE _ < <(load "${ARGS[@]}")
  agent_start --probes-only
  read -r BARE _ < <(load "${ARGS[@]}")
  agent_stop
  agent_start --capture-level summary
  read -r FULL FULL_N < <(load "${ARGS[@]}")
  sleep 1; agent_stop
  echo "Go server, h2load ${ARGS[*]}: baseline $BASE req/s; bare probes $BARE ($(ratio "$BARE" "$BASE")); full agent $FULL ($(ratio "$FULL" "$BASE") of baseline, $(ratio "$FULL" "$BARE") of bare)"
  echo "                    full agent: $(counter exchanges) exchanges for $FULL_N requests (client and server side), uprobe hits per exchange $(counter uprobe_hits_per_exchange), ringbuf drops $(counter kernel_ringbuf_full), agent CPU $AGENT_CPU s"
done
