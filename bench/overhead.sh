#!/usr/bin/env bash
# Overhead and completeness of otel-agent under load, all measured in one run on
# this machine (loopback only), printing ratios:
#   - plaintext HTTP/1.1 (wrk, keep-alive): baseline vs agent (level summary, OTLP to a local collector)
#   - TLS HTTP/1.1 (wrk) and HTTP/2 (h2load): baseline vs bare probes (--probes-only) vs full agent
#   - completeness: requests sent vs exchanges captured vs spans received, with drop counters
#   - uprobe hits per exchange
# usage: sudo bench/overhead.sh [SECONDS_PER_RUN]   (default 10)
set -euo pipefail
DUR=${1:-10}
cd "$(dirname "$0")/.."
./scripts/install-deps.sh test >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p otel-agent
AGENT=$PWD/target/release/otel-agent
WORK=$(mktemp -d /tmp/otel-agent-bench.XXXX)
trap 'kill $(jobs -p) 2>/dev/null; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; sleep 0.5; rm -rf "$WORK"' EXIT

# nginx: plaintext on :18080, TLS (1.3, h2) on :18443, a 2 KiB body.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
head -c 2048 /dev/zero | tr '\0' 'x' > "$WORK/body"
cat > "$WORK/nginx.conf" <<EOF
daemon on; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/error.log;
events { worker_connections 1024; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path $WORK/b; proxy_temp_path $WORK/p; fastcgi_temp_path $WORK/f;
  uwsgi_temp_path $WORK/u; scgi_temp_path $WORK/s;
  server { listen 127.0.0.1:18080; location / { root $WORK; try_files /body =404; } }
  server { listen 127.0.0.1:18443 ssl http2; ssl_protocols TLSv1.3;
           ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
           location / { root $WORK; try_files /body =404; } }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK"
sleep 0.5

# A local collector: rotel, discarding what it receives.
ROTEL=$(python3 -c "import rotel, os; print(os.path.dirname(rotel.__file__))")/rotel-agent
"$ROTEL" start --otlp-grpc-endpoint 127.0.0.1:24317 --otlp-http-endpoint 127.0.0.1:24318 \
  --exporter blackhole >"$WORK/rotel.log" 2>&1 &
sleep 1

agent_start() { # args...
  "$AGENT" --log-level info "$@" >"$WORK/agent.out" 2>"$WORK/agent.err" &
  AGENT_PID=$!
  RSS_MAX=0
  for _ in $(seq 1 200); do grep -q "otel-agent ready" "$WORK/agent.err" && return; sleep 0.1; done
  echo "agent did not start:"; cat "$WORK/agent.err"; exit 1
}
# CPU seconds (user+system) of the agent so far, and its RSS in MiB now.
agent_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$AGENT_PID/stat"; }
agent_rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$AGENT_PID/status"; }
agent_stop() {
  AGENT_CPU=$(agent_cpu); AGENT_RSS=$(agent_rss)
  kill -TERM "$AGENT_PID"; wait "$AGENT_PID" || true
  COUNTERS=$(grep "capture counters" "$WORK/agent.err" | tail -1)
}
counter() { echo "$COUNTERS" | grep -o "$1=[0-9.\"]*" | head -1 | cut -d= -f2 | tr -d '"'; }

# wrk → "req/s p50_ms p99_ms requests"
wrk_run() {
  wrk -t2 -c16 -d"${DUR}s" --latency "$1" >"$WORK/wrk.out"
  awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
       /Requests\/sec/ {rps=$2} /^ +50%/ {p50=ms($2)} /^ +99%/ {p99=ms($2)} /requests in/ {n=$1}
       END {printf "%s %.3f %.3f %s\n", rps, p50, p99, n}' "$WORK/wrk.out"
}
# h2load → "req/s requests"
h2_run() {
  h2load -D "$DUR" -c 4 -m 10 -t 1 "$1" >"$WORK/h2.out" 2>&1
  awk '/^finished in/ {gsub(",","",$4); rps=$4} /^status codes:/ {n=$3} END {print rps, n}' "$WORK/h2.out"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc
echo "== otel-agent overhead, $DUR s per run, $(nproc) cores, $(uname -r)"

read -r P_RPS P_P50 P_P99 _ < <(wrk_run http://127.0.0.1:18080/)
agent_start --capture-level summary
IDLE_RSS=$(agent_rss)
read -r A_RPS A_P50 A_P99 A_N < <(wrk_run http://127.0.0.1:18080/)
sleep 1; agent_stop
A_EX=$(counter exchanges)
echo "agent RSS idle: $IDLE_RSS MiB"
echo "plaintext HTTP/1.1  baseline ${P_RPS} req/s (p50 ${P_P50} ms, p99 ${P_P99} ms)"
echo "                    agent    ${A_RPS} req/s (p50 ${A_P50} ms, p99 ${A_P99} ms)  ratio $(ratio "$A_RPS" "$P_RPS")  p99 ratio $(ratio "$A_P99" "$P_P99")"
echo "                    completeness: ${A_N} requests, $A_EX exchanges captured (client and server side: expect 2×), ringbuf drops $(counter kernel_ringbuf_full), export-queue drops $(counter export_queue_full)"
echo "                    agent CPU $AGENT_CPU s for $A_EX exchanges ($(awk -v c="$AGENT_CPU" -v n="$A_EX" 'BEGIN{printf "%.3f", c * 10000 / n}') s per 10k), RSS under load $AGENT_RSS MiB"

read -r T_RPS T_P50 T_P99 _ < <(wrk_run https://127.0.0.1:18443/)
agent_start --probes-only
read -r B_RPS B_P50 B_P99 _ < <(wrk_run https://127.0.0.1:18443/)
agent_stop
B_HITS=$(counter kernel_uprobe_hits)
agent_start --capture-level summary
read -r F_RPS F_P50 F_P99 F_N < <(wrk_run https://127.0.0.1:18443/)
sleep 1; agent_stop
echo "TLS HTTP/1.1        baseline ${T_RPS} req/s (p50 ${T_P50} ms, p99 ${T_P99} ms)"
echo "                    bare probes ${B_RPS} req/s (p99 ${B_P99} ms)  vs baseline $(ratio "$B_RPS" "$T_RPS")"
echo "                    full agent  ${F_RPS} req/s (p99 ${F_P99} ms)  vs bare probes $(ratio "$F_RPS" "$B_RPS")  vs baseline $(ratio "$F_RPS" "$T_RPS")"
echo "                    uprobe hits per exchange $(counter uprobe_hits_per_exchange) (wrk and nginx both use the probed libssl), bare-probe hits $B_HITS; exchanges $(counter exchanges) for ${F_N} requests; agent CPU $AGENT_CPU s, RSS $AGENT_RSS MiB"

read -r H_RPS _ < <(h2_run https://127.0.0.1:18443/)
agent_start --probes-only
read -r HB_RPS _ < <(h2_run https://127.0.0.1:18443/)
agent_stop
agent_start --capture-level summary
read -r HF_RPS HF_N < <(h2_run https://127.0.0.1:18443/)
sleep 1; agent_stop
echo "TLS HTTP/2 (h2load) baseline ${H_RPS} req/s; bare probes ${HB_RPS} ($(ratio "$HB_RPS" "$H_RPS")); full agent ${HF_RPS} (vs bare $(ratio "$HF_RPS" "$HB_RPS"))"
echo "                    exchanges $(counter exchanges) for ${HF_N} requests (client and server side); ringbuf drops $(counter kernel_ringbuf_full); agent CPU $AGENT_CPU s, RSS $AGENT_RSS MiB"
