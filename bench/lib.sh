# Shared by the bench scripts (sourced): builds the release agent, starts nginx
# (plaintext :18080, TLS 1.3 + h2 :18443; /body is 2 KiB, /small 256 B, /tiny 2 B, /large 64 KiB) and a
# blackhole rotel collector (:24317 gRPC), and defines the agent helpers.
# shellcheck shell=bash
./scripts/install-deps.sh bench >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p otel-agent
# AGENT_BIN: another agent binary to measure (an older build, for A/B runs).
AGENT=${AGENT_BIN:-$PWD/target/release/otel-agent}
WORK=$(mktemp -d /tmp/otel-agent-bench.XXXX)
chmod 755 "$WORK" # nginx workers (nobody) serve the bodies from here
trap 'kill $(jobs -p) 2>/dev/null; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; sleep 0.5; rm -rf "$WORK"' EXIT

# nginx: plaintext on :18080, TLS (1.3, h2) on :18443, a 2 KiB body.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
head -c 2048 /dev/zero | tr '\0' 'x' > "$WORK/body"
head -c 256 /dev/zero | tr '\0' 'y' > "$WORK/small"
printf ok > "$WORK/tiny"
head -c 65536 /dev/zero | tr '\0' 'z' > "$WORK/large"
cat > "$WORK/nginx.conf" <<EOF
daemon on; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/error.log;
events { worker_connections 1024; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path $WORK/b; proxy_temp_path $WORK/p; fastcgi_temp_path $WORK/f;
  uwsgi_temp_path $WORK/u; scgi_temp_path $WORK/s;
  server { listen 127.0.0.1:18080; location / { root $WORK; try_files /body =404; }
           location = /small { root $WORK; try_files /small =404; }
           location = /tiny { root $WORK; try_files /tiny =404; }
           location = /large { root $WORK; try_files /large =404; } }
  server { listen 127.0.0.1:18443 ssl http2; ssl_protocols TLSv1.3;
           ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
           location / { root $WORK; try_files /body =404; }
           location = /small { root $WORK; try_files /small =404; }
           location = /tiny { root $WORK; try_files /tiny =404; } }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK"
sleep 0.5

# A local collector: rotel, discarding what it receives.
ROTEL=$(python3 -c "import rotel, os; print(os.path.dirname(rotel.__file__))")/rotel-agent
"$ROTEL" start --otlp-grpc-endpoint 127.0.0.1:24317 --otlp-http-endpoint 127.0.0.1:24318 \
  --exporter blackhole >"$WORK/rotel.log" 2>&1 &
ROTEL_PID=$!
# CPU seconds (user+system) of the collector so far: it shares the cores too.
rotel_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$ROTEL_PID/stat"; }
sleep 1

agent_start() { # args...   (AGENT_ENV="NAME=VALUE ...": extra environment)
  # Emptied here, not by the redirection below: that runs in the background
  # job, and the wait for "ready" must not find the previous agent's line.
  : >"$WORK/agent.out"; : >"$WORK/agent.err"
  # shellcheck disable=SC2086 # AGENT_ENV is a list of assignments
  env ${AGENT_ENV:-} "$AGENT" --log-level info "$@" >"$WORK/agent.out" 2>"$WORK/agent.err" </dev/null &
  AGENT_PID=$!
  RSS_MAX=0
  for _ in $(seq 1 200); do
    if grep -q "otel-agent ready" "$WORK/agent.err"; then
      AGENT_START_CPU=$(agent_cpu)
      return
    fi
    sleep 0.1
  done
  echo "agent did not start:"; cat "$WORK/agent.err"; exit 1
}
# CPU seconds (user+system) of the agent since it started, and its RSS in MiB now.
agent_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$AGENT_PID/stat"; }
# Minor page faults of the agent so far (pages faulted in: fresh heap pages included).
agent_minflt() { awk '{print $10}' "/proc/$AGENT_PID/stat"; }
agent_rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$AGENT_PID/status"; }
# "anon A MiB + file F MiB": the agent's heap vs file-backed pages (the executable, and the
# kernel ring buffer's pages mapped for reading — kernel memory sized by limits.ring_buffer).
agent_mem() { awk '/RssAnon/ {a=$2} /RssFile/ {f=$2} /RssShmem/ {m=$2} END {printf "anon %.0f MiB + file %.0f MiB", a / 1024, (f + m) / 1024}' "/proc/$AGENT_PID/status"; }
# "run_time_ns run_cnt" of the agent's eBPF programs so far, from the fdinfo of
# its program descriptors (counted while kernel.bpf_stats_enabled=1; a
# tail-called program's time is in its caller's): the work done in the kernel.
# Summed with %.0f: mawk's %d stops at 2^31 - 1 (2.1 s of run time). The
# programs' figures of the last call are left in $WORK/bpf_run.last.
bpf_run() {
  for f in /proc/"$AGENT_PID"/fdinfo/*; do
    awk '/^prog_id:/ {id=$2} /^run_time_ns:/ {t=$2} /^run_cnt:/ {c=$2} END {if (id != "" && t != "") print id, t, c}' "$f" 2>/dev/null
  done | sort -u -k1,1 | tee "$WORK/bpf_run.last" | awk '{t += $2; c += $3} END {printf "%.0f %.0f\n", t, c}'
}
# Turn the kernel's BPF run-time statistics on for the bench (restored on exit).
bpf_stats_on() {
  BPF_STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
  sysctl -qw kernel.bpf_stats_enabled=1
  trap 'sysctl -qw kernel.bpf_stats_enabled="$BPF_STATS_WAS"; kill $(jobs -p) 2>/dev/null; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; sleep 0.5; rm -rf "$WORK"' EXIT
}
# AGENT_CPU: CPU seconds since the agent was ready (what the load cost; its
# start-up — loading and verifying the eBPF programs, ~0.8 s — is
# AGENT_START_CPU, not counted per exchange).
agent_stop() {
  AGENT_CPU=$(awk -v a="$(agent_cpu)" -v b="$AGENT_START_CPU" 'BEGIN{printf "%.2f", a - b}')
  AGENT_RSS=$(agent_rss)
  read -r BPF_NS BPF_RUNS < <(bpf_run)
  # When no run was counted (seen now and then in overhead.sh, cause not
  # found): what the next look needs.
  BPF_DIAG=""
  if [ "${BPF_RUNS:-0}" = 0 ]; then
    BPF_DIAG="program fds $(grep -l '^prog_id:' /proc/"$AGENT_PID"/fdinfo/* 2>/dev/null | wc -l), kernel.bpf_stats_enabled=$(sysctl -n kernel.bpf_stats_enabled)"
  fi
  kill -TERM "$AGENT_PID"; wait "$AGENT_PID" || true
  COUNTERS=$(grep "capture counters" "$WORK/agent.err" | tail -1)
}
counter() { echo "$COUNTERS" | grep -o "$1=[0-9.\"]*" | head -1 | cut -d= -f2 | tr -d '"'; }

# wrk → "req/s p50_ms p99_ms requests"   (WRK_THREADS: wrk's -t, 2 unless set)
wrk_run() {
  wrk -t"${WRK_THREADS:-2}" -c16 -d"${DUR}s" --latency "$1" >"$WORK/wrk.out"
  if grep -q "Non-2xx" "$WORK/wrk.out"; then echo "!! wrk saw non-2xx responses: $(grep Non-2xx "$WORK/wrk.out")" >&2; fi
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

