#!/usr/bin/env bash
# Instructions per exchange of the agent's pipeline, by stage: counted, not
# timed, so two builds compare exactly on a noisy host. The pipeline bench
# (cargo bench -p otel-agent --bench pipeline) replays the recordings a fixed
# number of times under valgrind (cachegrind, no cache simulation); the count
# of a run with 1 pass is taken from that of a run with 1 + PASSES, which
# leaves out loading the recording and the warm-up, and the difference is
# divided by the exchanges replayed. Stages are differences of sinks:
#   tracker  decode, connection tracking, HTTP/1 and HTTP/2 parsing, the exchange records  (sink none, --no-link)
#   linker   span ids and connected traces                                               (sink none − tracker)
#   stdout   the JSON lines                                                               (sink stdout − sink none)
#   otlp     span + HTTP metrics + OTLP protobuf                                          (sink otlp − sink none)
# usage: bench/instructions.sh [PASSES]   (default 3; no root needed)
set -euo pipefail
cd "$(dirname "$0")/.."
PASSES=${1:-3}
command -v valgrind >/dev/null || { echo "valgrind missing: scripts/install-deps.sh bench" >&2; exit 1; }
export PATH="$HOME/.cargo/bin:$PATH"
BIN=$(cargo bench -p otel-agent --bench pipeline --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("target", {}).get("name") == "pipeline" and m.get("executable"):
        print(m["executable"])')
[ -x "$BIN" ] || { echo "pipeline bench binary not found" >&2; exit 1; }
REC=otel-agent/benches/recordings

# Instructions of one run: args...
irefs() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$BIN" "$@" 2>&1 >"$OUT" |
    awk '/I *refs:/ {gsub(",", "", $NF); print $NF}'
}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
# Instructions per exchange of a configuration: recording level args...
per_exchange() {
  local rec=$1 level=$2; shift 2
  local one many n
  one=$(irefs --level "$level" --passes 1 "$@" "$REC/$rec.rec.gz")
  many=$(irefs --level "$level" --passes $((1 + PASSES)) "$@" "$REC/$rec.rec.gz")
  n=$(sed -n 's/.*→ \([0-9]*\) exchanges.*/\1/p' "$OUT" | head -1)
  awk -v a="$one" -v b="$many" -v n="$n" -v p="$PASSES" 'BEGIN {printf "%.0f", (b - a) / (p * n)}'
}

echo "== instructions per exchange (valgrind cachegrind, $PASSES passes over each recording), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
printf "%-6s %-8s %8s %8s %8s %8s   %14s %12s\n" recording level tracker linker stdout otlp "total stdout" "total otlp"
for rec in http1 http2; do
  for level in summary details; do
    t=$(per_exchange $rec $level --sink none --no-link)
    tl=$(per_exchange $rec $level --sink none)
    s=$(per_exchange $rec $level --sink stdout)
    o=$(per_exchange $rec $level --sink otlp)
    printf "%-6s %-8s %8d %8d %8d %8d   %14d %12d\n" "$rec" "$level" "$t" $((tl - t)) $((s - tl)) $((o - tl)) "$s" "$o"
  done
done
