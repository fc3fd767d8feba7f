#!/usr/bin/env bash
# Uprobe hits per TLS exchange: the agent at level summary while curl fetches
# N URLs over one keep-alive TLS connection from nginx, both sides through the
# system libssl (each exchange is seen twice: client and server). Prints the
# agent's final counters: exchanges, kernel_uprobe_hits and their ratio.
# usage: sudo bench/tls_uprobe_hits.sh [N]   (default 200)
set -euo pipefail
N=${1:-200}
cd "$(dirname "$0")/.."
AGENT=${AGENT:-target/debug/otel-agent}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -keyout "$D/key.pem" -out "$D/cert.pem" 2>/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$D/nginx.conf" <<CONF
daemon off; master_process off; pid $D/nginx.pid; error_log $D/error.log;
events {}
http {
  access_log off; client_body_temp_path $D/b; proxy_temp_path $D/p;
  fastcgi_temp_path $D/f; uwsgi_temp_path $D/u; scgi_temp_path $D/s;
  server {
    listen 127.0.0.1:$PORT ssl;
    ssl_certificate $D/cert.pem; ssl_certificate_key $D/key.pem;
    location / { return 200 "ok\n"; }
  }
}
CONF
nginx -c "$D/nginx.conf" -p "$D" & NGINX=$!
"$AGENT" --capture-level summary >/dev/null 2>"$D/agent.log" & AGENT_PID=$!
until grep -q "otel-agent ready" "$D/agent.log"; do sleep 0.2; done
ARGS=()
for i in $(seq 1 "$N"); do ARGS+=(-o /dev/null "https://localhost:$PORT/r$i"); done
curl -sk --http1.1 "${ARGS[@]}"
sleep 2
kill -TERM "$AGENT_PID"; wait "$AGENT_PID" || true
kill "$NGINX"; wait "$NGINX" 2>/dev/null || true
grep "capture counters" "$D/agent.log" | tail -1 \
  | grep -o ' exchanges=[0-9]*\| kernel_uprobe_hits=[0-9]*\| uprobe_hits_per_exchange="[0-9.]*"'
