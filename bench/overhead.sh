#!/usr/bin/env bash
# Overhead and completeness of otel-agent under load, all measured in one run on
# this machine (loopback only), printing ratios:
#   - plaintext HTTP/1.1 (wrk, keep-alive), 2-byte and 2 KiB bodies: baseline vs agent (level
#     summary, OTLP to a local collector) and vs the default mode (details, stdout to a file;
#     over TLS too), with the agent's CPU, its eBPF programs' run time
#     (kernel.bpf_stats_enabled) and the collector's CPU per exchange
#   - p99 latency at a paced half of the /tiny saturation rate, without and with the agent
#   - TLS HTTP/1.1 (wrk) and HTTP/2 (h2load), 2 KiB bodies: baseline vs bare probes
#     (--probes-only) vs full agent, in the default mode
#   - completeness: requests sent vs exchanges captured vs spans received, with drop counters
#   - uprobe hits per exchange, and which libssl functions are probed without a single-step
# usage: sudo bench/overhead.sh [SECONDS_PER_RUN]   (default 10)
set -euo pipefail
DUR=${1:-10}
cd "$(dirname "$0")/.."
source bench/lib.sh
bpf_stats_on

export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc
echo "== otel-agent overhead, $DUR s per run, $(nproc) cores, $(uname -r)"

# µs of `$1` seconds per exchange among `$2`.
us_per() { awk -v c="$1" -v n="$2" 'BEGIN{ if (n > 0) printf "%.2f", c * 1e6 / n; else print "n/a"}'; }
# (n/a when the kernel counted no run: seen twice in the first row of a run, cause not found)
bpf_us_per() { awk -v t="$BPF_NS" -v r="$BPF_RUNS" -v n="$1" -v d="$BPF_DIAG" 'BEGIN{ if (n > 0 && r > 0) printf "%.2f", t / 1e3 / n; else printf "n/a (%s)", d}'; }

# Plaintext HTTP/1.1 at saturation, both body sizes: level summary, OTLP to the
# local collector (whose CPU is shown: work moved there is not saved).
for body in tiny body; do
  read -r P_RPS P_P50 P_P99 _ < <(wrk_run "http://127.0.0.1:18080/$body")
  agent_start --capture-level summary
  IDLE_RSS=$(agent_rss)
  IDLE_MEM=$(agent_mem)
  ROTEL_BEFORE=$(rotel_cpu)
  read -r A_RPS A_P50 A_P99 A_N < <(wrk_run "http://127.0.0.1:18080/$body")
  LOAD_MEM=$(agent_mem)
  sleep 1; agent_stop
  ROTEL_USED=$(awk -v a="$ROTEL_BEFORE" -v b="$(rotel_cpu)" 'BEGIN{printf "%.2f", b - a}')
  A_EX=$(counter exchanges)
  [ "$body" = body ] && AGENT_CPU_P=$AGENT_CPU && P_EX=$A_EX && BASE_RPS=$P_RPS
  [ "$body" = tiny ] && TINY_RPS=${P_RPS%.*}
  echo "agent RSS idle: $IDLE_RSS MiB ($IDLE_MEM); start-up CPU $AGENT_START_CPU s (not counted below)"
  echo "plaintext HTTP/1.1 /$body, summary, OTLP  baseline ${P_RPS} req/s (p50 ${P_P50} ms, p99 ${P_P99} ms)"
  echo "                    agent    ${A_RPS} req/s (p50 ${A_P50} ms, p99 ${A_P99} ms)  ratio $(ratio "$A_RPS" "$P_RPS")  p99 ratio $(ratio "$A_P99" "$P_P99")"
  echo "                    completeness: ${A_N} requests, $A_EX exchanges captured (client and server side: expect 2×): $(ratio "$A_EX" $((2 * A_N))); ringbuf drops $(counter kernel_ringbuf_full), span queue full $(counter span_queue_full), spans shed by trace $(counter span_shed); body bytes skipped $(counter bytes_skipped)"
  echo "                    agent CPU $AGENT_CPU s for $A_EX exchanges ($(us_per "$AGENT_CPU" "$A_EX") µs each), eBPF programs $(bpf_us_per "$A_EX") µs each, collector CPU $ROTEL_USED s ($(us_per "$ROTEL_USED" "$A_EX") µs each); RSS under load $AGENT_RSS MiB ($LOAD_MEM)"
done

# The default mode (details, JSON lines on stdout to a file on the root
# filesystem, no collector in the path), both body sizes; TLS with the 2-byte
# body here, with the 2 KiB one in the TLS section below.
unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL
for target in "plaintext http://127.0.0.1:18080 tiny" "plaintext http://127.0.0.1:18080 body" \
  "TLS https://127.0.0.1:18443 tiny"; do
  read -r transport base body <<<"$target"
  read -r D_RPS _ D_P99 _ < <(wrk_run "$base/$body")
  agent_start
  read -r S_RPS _ S_P99 S_N < <(wrk_run "$base/$body")
  sleep 1; agent_stop
  LINES=$(grep -c '"transaction_time"' "$WORK/agent.out" || true)
  echo "$transport HTTP/1.1 /$body, default mode (details, stdout to a file)  baseline ${D_RPS} req/s (p99 ${D_P99} ms); agent ${S_RPS} req/s (p99 ${S_P99} ms) ratio $(ratio "$S_RPS" "$D_RPS")"
  echo "                    completeness: ${S_N} requests, $LINES JSON exchange lines: $(ratio "$LINES" $((2 * S_N))); ringbuf drops $(counter kernel_ringbuf_full); exporter stopped $(counter exporter_stopped); connections $(counter connections) (wrk's 16 and nginx's: expect 32); agent warnings $(grep -c ' WARN ' "$WORK/agent.err" || true); body bytes skipped $(counter bytes_skipped)"
  echo "                    agent CPU $AGENT_CPU s ($(us_per "$AGENT_CPU" "$LINES") µs per exchange written), eBPF programs $(bpf_us_per "$LINES") µs each, RSS $AGENT_RSS MiB"
  rm -f "$WORK/agent.out"
done

# p99 latency of the observed server at half its saturation rate (the /tiny
# baseline above), paced by h2load over 16 keep-alive connections, each
# request's latency from h2load's log: without and with the agent (default mode).
paced_p99() { # url total-rps -> "p99_ms achieved_rps requests"
  local per=$(( ($2 + 15) / 16 ))
  h2load --h1 -c 16 -t 1 -D "$DUR" --rps "$per" --log-file "$WORK/lat.log" "$1" >"$WORK/h2p.out" 2>&1
  local rps; rps=$(awk '/^finished in/ {gsub(",","",$4); print $4}' "$WORK/h2p.out")
  sort -n -k3 "$WORK/lat.log" | awk -v r="$rps" '{v[NR]=$3} END {i=int(NR*0.99); if (i < 1) i = 1; printf "%.3f %s %d\n", v[i] / 1000, r, NR}'
  rm -f "$WORK/lat.log"
}
HALF=$(( TINY_RPS / 2 ))
read -r L_P99 L_RPS L_N < <(paced_p99 http://127.0.0.1:18080/tiny "$HALF")
agent_start
read -r LA_P99 LA_RPS LA_N < <(paced_p99 http://127.0.0.1:18080/tiny "$HALF")
sleep 1; agent_stop
rm -f "$WORK/agent.out"
echo "paced at half the /tiny saturation rate ($HALF req/s asked), default mode: p99 ${L_P99} ms without ($L_RPS req/s, $L_N requests), ${LA_P99} ms with the agent ($LA_RPS req/s, $LA_N requests): p99 ratio $(ratio "$LA_P99" "$L_P99"); ringbuf drops $(counter kernel_ringbuf_full)"
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc
P_RPS=$BASE_RPS

# What users would pick instead: tshark. dumpcap records the same plaintext load
# from loopback (3 s), then tshark decodes the capture; CPU per exchange and
# exchanges seen, next to the agent's (which decodes both sides, live).
DUR_SAVED=$DUR; DUR=3
dumpcap -q -i lo -f "tcp port 18080" -B 256 -w "$WORK/lo.pcapng" 2>"$WORK/dumpcap.err" &
DUMPCAP=$!; sleep 2
read -r C_RPS _ _ C_N < <(wrk_run http://127.0.0.1:18080/)
sleep 0.5; C_CPU=$(awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$DUMPCAP/stat")
kill -INT "$DUMPCAP"; wait "$DUMPCAP" || true
DUR=$DUR_SAVED
TS_START=$(date +%s.%N)
/usr/bin/time -o "$WORK/tshark.time" -f "%U %S" tshark -n -r "$WORK/lo.pcapng" -Y http.response \
  -T fields -e http.response.code >"$WORK/tshark.out" 2>/dev/null
TS_TIMES=$(tail -1 "$WORK/tshark.time")
TS_WALL=$(awk -v s="$TS_START" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
TS_CPU=$(echo "$TS_TIMES" | awk '{printf "%.2f", $1 + $2}')
TS_N=$(wc -l <"$WORK/tshark.out")
TS_DROPS=$(grep -o "[0-9]* packets dropped" "$WORK/dumpcap.err" | head -1 || true)
echo "tshark (same plaintext load, 3 s): wrk ${C_RPS} req/s while dumpcap recorded ($(ratio "$C_RPS" "$P_RPS") of baseline, dumpcap CPU $C_CPU s, ${TS_DROPS:-no drop count reported}); $(du -m "$WORK/lo.pcapng" | cut -f1) MiB pcap"
echo "                    tshark decoded ${TS_N} responses of ${C_N} requests in ${TS_CPU} CPU-s (${TS_WALL} s wall): $(awk -v c="$TS_CPU" -v n="$TS_N" 'BEGIN{ if (n > 0) printf "%.3f", c * 10000 / n; else print "n/a"}') s per 10k exchanges (one side) vs the agent's $(awk -v c="$AGENT_CPU_P" -v n="$P_EX" 'BEGIN{printf "%.3f", c * 10000 / n}') (both sides, live, exported, /body)"
rm -f "$WORK/lo.pcapng"

# Completeness at a sustained rate: h2load paces the requests (--rps per
# connection) and a second rotel counts the spans it receives.
echo 0 >"$WORK/spans.count"
env -u PYTHONHOME -u PYTHONPATH ROTEL_COUNT_FILE="$WORK/spans.count" "$ROTEL" start \
  --otlp-grpc-endpoint 127.0.0.1:25317 --otlp-http-endpoint 127.0.0.1:25318 --exporter blackhole \
  --otlp-with-trace-processor "$PWD/bench/count_spans.py" >"$WORK/rotel-count.log" 2>&1 &
sleep 1
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:25317 agent_start --capture-level summary
spans() { cat "$WORK/spans.count"; }
paced() { # label url h2load-args...
  local label=$1 url=$2; shift 2
  local before; before=$(spans)
  h2load -D "$DUR" "$@" "$url" >"$WORK/paced.out" 2>&1
  local n rps started; n=$(awk '/^status codes:/ {print $3}' "$WORK/paced.out")
  # Requests sent but not answered before h2load's deadline are not in its
  # status codes; the server still answers them (their spans come too).
  started=$(awk '/^requests:/ {print $4}' "$WORK/paced.out")
  rps=$(awk '/^finished in/ {gsub(",","",$4); print $4}' "$WORK/paced.out")
  local got=$before
  for _ in $(seq 1 40); do sleep 0.5; got=$(spans); [ $((got - before)) -ge $((2 * n)) ] && break; done
  echo "                    $label: $n requests at $rps req/s ($started started) → $((got - before)) spans received (expect 2× = $((2 * n)), at most $((2 * started))): $(ratio $((got - before)) $((2 * n)))"
}
echo "completeness at a sustained rate (spans counted by the collector):"
paced "plaintext HTTP/1.1, 10 connections" http://127.0.0.1:18080/ --h1 -c 10 --rps 500
paced "HTTPS HTTP/1.1,     10 connections" https://127.0.0.1:18443/ --h1 -c 10 --rps 500
paced "HTTP/2 over TLS, 50 streams       " https://127.0.0.1:18443/ -c 1 -m 50 --rps 5000
agent_stop
echo "                    drops: ringbuf $(counter kernel_ringbuf_full), exporter stopped $(counter exporter_stopped), span queue $(counter span_queue_full), shed $(counter span_shed), span export failed $(counter span_export_failed)"

# TLS: the probes alone against the full agent, both in the default mode (the
# req/s ratios are the default mode's: no collector on the box).
unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL
read -r T_RPS T_P50 T_P99 _ < <(wrk_run https://127.0.0.1:18443/)
agent_start --probes-only
read -r B_RPS B_P50 B_P99 _ < <(wrk_run https://127.0.0.1:18443/)
agent_stop
B_HITS=$(counter kernel_uprobe_hits)
agent_start
read -r F_RPS F_P50 F_P99 F_N < <(wrk_run https://127.0.0.1:18443/)
sleep 1; agent_stop
F_LINES=$(grep -c '"transaction_time"' "$WORK/agent.out" || true)
rm -f "$WORK/agent.out"
echo "TLS HTTP/1.1 /body (2 KiB), default mode  baseline ${T_RPS} req/s (p50 ${T_P50} ms, p99 ${T_P99} ms)"
echo "                    bare probes ${B_RPS} req/s (p99 ${B_P99} ms)  vs baseline $(ratio "$B_RPS" "$T_RPS")"
echo "                    full agent  ${F_RPS} req/s (p99 ${F_P99} ms)  vs bare probes $(ratio "$F_RPS" "$B_RPS")  vs baseline $(ratio "$F_RPS" "$T_RPS")"
echo "                    completeness: ${F_N} requests, $F_LINES JSON exchange lines: $(ratio "$F_LINES" $((2 * F_N))); ringbuf drops $(counter kernel_ringbuf_full); body bytes skipped $(counter bytes_skipped)"
echo "                    uprobe hits per exchange $(counter uprobe_hits_per_exchange) (wrk and nginx both use the probed libssl), bare-probe hits $B_HITS; agent CPU $AGENT_CPU s ($(us_per "$AGENT_CPU" "$F_LINES") µs per exchange written), eBPF programs $(bpf_us_per "$F_LINES") µs each, RSS $AGENT_RSS MiB"
# Which libssl functions are probed without a single-step (otel-agent/src/capture/tls/uprobe_sites.rs).
echo "                    libssl functions probed on emulated instructions: $(grep "TLS probes attached" "$WORK/agent.err" | grep "/libssl.so" | head -1 | grep -o 'emulated=\[[^]]*\]' || echo "none found in the log")"

read -r H_RPS _ < <(h2_run https://127.0.0.1:18443/)
agent_start --probes-only
read -r HB_RPS _ < <(h2_run https://127.0.0.1:18443/)
agent_stop
agent_start
read -r HF_RPS HF_N < <(h2_run https://127.0.0.1:18443/)
sleep 1; agent_stop
HF_LINES=$(grep -c '"transaction_time"' "$WORK/agent.out" || true)
rm -f "$WORK/agent.out"
echo "TLS HTTP/2 (h2load) /body (2 KiB), default mode  baseline ${H_RPS} req/s; bare probes ${HB_RPS} ($(ratio "$HB_RPS" "$H_RPS")); full agent ${HF_RPS} (vs bare $(ratio "$HF_RPS" "$HB_RPS"))"
echo "                    completeness: ${HF_N} requests, $HF_LINES JSON exchange lines (client and server side): $(ratio "$HF_LINES" $((2 * HF_N))); ringbuf drops $(counter kernel_ringbuf_full); agent CPU $AGENT_CPU s ($(us_per "$AGENT_CPU" "$HF_LINES") µs per exchange written), eBPF programs $(bpf_us_per "$HF_LINES") µs each, RSS $AGENT_RSS MiB"
