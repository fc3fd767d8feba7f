#!/usr/bin/env bash
# What one uprobe costs on this machine, by where it sits: TLS HTTP/1.1 (wrk →
# nginx, both through the system libssl) with no probe, then with one tracefs
# uprobe (no eBPF program) on SSL_write's first instruction (`sub $0x18,%rsp`
# in Debian 12's OpenSSL: copied out of line and single-stepped), then on the
# first conditional jump of its entry block (emulated by the kernel: where
# otel-agent puts its SSL_write probe, see otel-agent/src/capture/tls/uprobe_sites.rs).
# usage: sudo bench/uprobe_cost.sh [SECONDS_PER_RUN]   (default 5)
set -euo pipefail
DUR=${1:-5}
cd "$(dirname "$0")/.."
source bench/lib.sh
T=/sys/kernel/tracing
[ -d "$T/events" ] || mount -t tracefs nodev "$T"
LIB=$(readlink -f /usr/lib/x86_64-linux-gnu/libssl.so.3)
FN=$(nm -D --defined-only "$LIB" | awk '$3 ~ /^SSL_write(@|$)/ {print $1}')
FIRST=$((0x$FN))
JCC=$(objdump -d --start-address=$FIRST --stop-address=$((FIRST + 64)) "$LIB" |
  awk -F'\t' '$3 ~ /^j[a-z]+ / && $3 !~ /^jmp/ {sub(":", "", $1); gsub(" ", "", $1); print $1; exit}')
[ -n "$JCC" ] || { echo "no conditional jump in SSL_write's first 64 bytes of $LIB"; exit 1; }
run() { read -r rps _ _ n < <(wrk_run https://127.0.0.1:18443/); echo "$rps"; }
probe() { # offset → req/s with one uprobe there
  echo "p:otel_agent_bench/ssl_write $LIB:$1" >>"$T/uprobe_events"
  echo 1 >"$T/events/otel_agent_bench/ssl_write/enable"
  run
  echo 0 >"$T/events/otel_agent_bench/ssl_write/enable"
  echo "-:otel_agent_bench/ssl_write" >>"$T/uprobe_events"
}
echo "== one uprobe on SSL_write, $DUR s per run, $(nproc) cores, $(uname -r), $LIB"
BASE=$(run)
STEP=$(probe "$(printf '0x%x' $FIRST)")
EMU=$(probe "0x$JCC")
# Per hit: both wrk and nginx call SSL_write once per request, on 2 cores.
cost() { awk -v b="$BASE" -v p="$1" -v c="$(nproc)" 'BEGIN { printf "%.1f", (1 / p - 1 / b) * 1e6 * c / 2 }'; }
printf '%-40s %s req/s\n' "no probe" "$BASE"
printf '%-40s %s req/s  %s of baseline, ~%s µs CPU per hit\n' \
  "first instruction (single-stepped)" "$STEP" "$(ratio "$STEP" "$BASE")" "$(cost "$STEP")" \
  "first jcc, at 0x$JCC (emulated)" "$EMU" "$(ratio "$EMU" "$BASE")" "$(cost "$EMU")"
