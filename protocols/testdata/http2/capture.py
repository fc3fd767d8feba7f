#!/usr/bin/env python3
"""Capture real HTTP/2 (h2c, prior knowledge) byte streams for the http2 parser fixtures.

A recording TCP proxy on 127.0.0.1 sits between a client (curl, or a client
written with the Python `h2` library) and an h2c server written with the same
library.  For each fixture NAME it writes every byte the client sent to
NAME.req, every byte the server sent to NAME.resp, and NAME.order: one line
per chunk the proxy relayed, in relay order, "C <len>" (client) or "S <len>"
(server), so that tests can replay both directions interleaved as the kernel
would see them.  Loopback only.

Usage: python3 -m venv /tmp/venv && /tmp/venv/bin/pip install h2
       /tmp/venv/bin/python capture.py OUTDIR
"""
import os
import socket
import subprocess
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
SERVER = [("server", "fixture-h2/1.0")]


# ---------------------------------------------------------------- server


def respond(conn, sid, headers, body, state):
    """Answers one finished request, by path."""
    path = headers.get(":path", "/")
    ctype = headers.get("content-type", "")
    if ctype.startswith("application/grpc"):
        if path.endswith("/SayHello"):
            msg = b"\x0a\x0bhello world"
            conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
            conn.send_data(sid, b"\x00" + len(msg).to_bytes(4, "big") + msg)
            conn.send_headers(sid, [("grpc-status", "0"), ("grpc-message", "")], end_stream=True)
        else:
            # Trailers-only response: one HEADERS frame with END_STREAM.
            conn.send_headers(
                sid,
                [(":status", "200"), ("content-type", "application/grpc"),
                 ("grpc-status", "12"), ("grpc-message", "unknown%20method")],
                end_stream=True,
            )
        return
    if path == "/slow":
        # Headers only; the client resets the stream.
        conn.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")] + SERVER)
        return
    if path == "/trailers":
        conn.send_headers(
            sid,
            [(":status", "200"), ("content-type", "text/plain"), ("trailer", "x-checksum")] + SERVER,
        )
        conn.send_data(sid, b"first part, ", pad_length=8)
        conn.send_data(sid, b"second part\n")
        conn.send_headers(sid, [("x-checksum", "1234")], end_stream=True)
        return
    if headers.get(":method") == "POST":
        out = ("got %d bytes\n" % len(body)).encode()
        status = "201"
    else:
        out = ("you asked for %s\n" % path).encode()
        status = "200"
    conn.send_headers(
        sid,
        [(":status", status), ("content-type", "text/plain"),
         ("content-length", str(len(out))), ("cache-control", "no-store")] + SERVER,
    )
    conn.send_data(sid, out, end_stream=True)
    state["answered"] = state.get("answered", 0) + 1
    if state.get("shrink_after") == state["answered"]:
        # Tell the client's HPACK encoder to use a smaller table from now on.
        conn.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 256})


def serve_one(sock, settings):
    cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    conn = h2.connection.H2Connection(config=cfg)
    conn.initiate_connection()
    if settings.get("table"):
        # A second SETTINGS frame: the table size applies once the client acks it.
        conn.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: settings["table"]})
    sock.sendall(conn.data_to_send())
    heads, bodies = {}, {}
    while True:
        data = sock.recv(65535)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                heads[ev.stream_id] = dict(ev.headers)
                bodies[ev.stream_id] = b""
                if heads[ev.stream_id].get(":path") == "/slow":
                    respond(conn, ev.stream_id, heads[ev.stream_id], b"", settings)
                    continue
            elif isinstance(ev, h2.events.DataReceived):
                bodies[ev.stream_id] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if isinstance(ev, (h2.events.RequestReceived, h2.events.DataReceived)):
                if ev.stream_ended is not None:
                    sid = ev.stream_id
                    respond(conn, sid, heads[sid], bodies[sid], settings)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                pass
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    sock.close()


def server(settings):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)

    def run():
        s, _ = lst.accept()
        serve_one(s, settings)
        lst.close()

    threading.Thread(target=run, daemon=True).start()
    return lst.getsockname()[1]


# ---------------------------------------------------------------- proxy


def record(upstream_port, name):
    """Proxy one connection to upstream, return (listening port, thread)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    lock = threading.Lock()
    order = []

    def pump(src, dst, path, tag):
        with open(path, "wb") as f:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                with lock:
                    order.append("%s %d" % (tag, len(b)))
                    f.write(b)
                    dst.sendall(b)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def run():
        cli, _ = lst.accept()
        up = socket.create_connection(("127.0.0.1", upstream_port))
        t1 = threading.Thread(target=pump, args=(cli, up, os.path.join(OUT, name + ".req"), "C"))
        t2 = threading.Thread(target=pump, args=(up, cli, os.path.join(OUT, name + ".resp"), "S"))
        t1.start(); t2.start(); t1.join(); t2.join()
        cli.close(); up.close(); lst.close()
        with open(os.path.join(OUT, name + ".order"), "w") as f:
            f.write("\n".join(order) + "\n")

    t = threading.Thread(target=run)
    t.start()
    return lst.getsockname()[1], t


# ---------------------------------------------------------------- clients


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.flush()
        self.ended = set()
        self.responded = set()

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def pump_until(self, done):
        while not done():
            data = self.sock.recv(65535)
            if not data:
                return
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.StreamEnded):
                    self.ended.add(ev.stream_id)
                elif isinstance(ev, h2.events.ResponseReceived):
                    self.responded.add(ev.stream_id)
                elif isinstance(ev, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            self.flush()

    def finish(self):
        self.conn.close_connection()
        self.flush()
        time.sleep(0.05)
        self.sock.shutdown(socket.SHUT_WR)
        while self.sock.recv(65535):
            pass
        self.sock.close()


def req(path, method="GET", extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1"),
            (":path", path)] + list(extra)


def h2_concurrent(port):
    """Four concurrent streams: GET (HEADERS with PRIORITY), POST with a padded
    body in two DATA frames, GET with response trailers, GET reset by the client."""
    c = Client(port)
    conn = c.conn
    conn.send_headers(1, req("/first", extra=[("user-agent", "h2-fixture/1.0")]),
                      end_stream=True, priority_weight=200, priority_depends_on=0,
                      priority_exclusive=False)
    body = bytes((i * 7) % 251 for i in range(3000))
    conn.send_headers(3, req("/upload", "POST", [("user-agent", "h2-fixture/1.0"),
                                                ("content-type", "application/octet-stream"),
                                                ("content-length", str(len(body)))]))
    conn.send_data(3, body[:1000], pad_length=16)
    conn.send_headers(5, req("/trailers", extra=[("user-agent", "h2-fixture/1.0"), ("te", "trailers")]),
                      end_stream=True)
    conn.send_headers(7, req("/slow", extra=[("user-agent", "h2-fixture/1.0")]), end_stream=True)
    c.flush()
    conn.send_data(3, body[1000:], end_stream=True)
    c.flush()
    c.pump_until(lambda: {1, 3, 5} <= c.ended and 7 in c.responded)
    conn.reset_stream(7, 8)  # CANCEL
    conn.ping(b"fixture!")
    c.flush()
    c.finish()


def h2_dynamic_table(port):
    """Twelve sequential requests with repeated headers on one connection: both
    encoders index heavily.  The server starts with SETTINGS_HEADER_TABLE_SIZE
    8192 and lowers it to 256 after the sixth response."""
    c = Client(port)
    conn = c.conn
    cookie = "session=" + "abcdef0123456789" * 8
    for i in range(12):
        sid = 1 + 2 * i
        conn.send_headers(sid, req("/item/%d" % i, extra=[
            ("user-agent", "h2-fixture/1.0 (dynamic table)"),
            ("accept", "application/json"),
            ("cookie", cookie),
            ("x-request-id", "req-%04d" % i),
            ("x-tenant", "tenant-alpha"),
        ]), end_stream=True)
        c.flush()
        c.pump_until(lambda: sid in c.ended)
    c.finish()


def h2_grpc(port):
    """gRPC over h2c: a unary call with response trailers, then a call the
    server answers trailers-only (UNIMPLEMENTED)."""
    c = Client(port)
    conn = c.conn
    grpc_headers = [("content-type", "application/grpc"), ("te", "trailers"),
                    ("grpc-timeout", "1S"), ("user-agent", "grpc-python-fixture/1.0")]
    msg = b"\x0a\x05world"
    conn.send_headers(1, req("/helloworld.Greeter/SayHello", "POST", grpc_headers))
    conn.send_data(1, b"\x00" + len(msg).to_bytes(4, "big") + msg, end_stream=True)
    c.flush()
    c.pump_until(lambda: 1 in c.ended)
    conn.send_headers(3, req("/helloworld.Greeter/Missing", "POST", grpc_headers))
    conn.send_data(3, b"\x00\x00\x00\x00\x00", end_stream=True)
    c.flush()
    c.pump_until(lambda: 3 in c.ended)
    c.finish()


def curl(port, *args):
    subprocess.run(["curl", "-s", "--http2-prior-knowledge", *args], check=True,
                   stdout=subprocess.DEVNULL)


NGINX_CONF = """
worker_processes 1;
daemon on;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 16; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} http2;
    root {d}/html;
  }}
}}
"""


def nginx():
    """Starts nginx (h2c on a free port) serving a static file; returns the port."""
    import tempfile
    d = tempfile.mkdtemp(prefix="h2nginx")
    os.chmod(d, 0o755)  # nginx workers run as another user
    os.makedirs(os.path.join(d, "html"))
    with open(os.path.join(d, "html", "index.html"), "w") as f:
        f.write("<html><body>" + "hello from nginx over h2c. " * 40 + "</body></html>\n")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port))
    subprocess.run(["nginx", "-c", conf], check=True)
    time.sleep(0.3)
    STOP.append(lambda: subprocess.run(["nginx", "-c", conf, "-s", "stop"], check=False))
    return port


STOP = []


def main():
    os.makedirs(OUT, exist_ok=True)
    jobs = [
        ("h2c_concurrent", {}, h2_concurrent),
        ("h2c_dynamic_table", {"table": 8192, "shrink_after": 6}, h2_dynamic_table),
        ("h2c_grpc", {}, h2_grpc),
        # One URL per curl run: curl 7.88.1 fails ("Error in the HTTP2 framing
        # layer") when it reuses an h2c prior-knowledge connection.
        ("curl_get", {}, lambda p: curl(p, "-o", "/dev/null", "http://127.0.0.1:%d/index?x=1" % p)),
        ("curl_post", {}, lambda p: curl(p, "-d", "name=value&other=thing",
                                         "http://127.0.0.1:%d/form" % p)),
        ("nginx_curl_get", {"nginx": True}, lambda p: curl(p, "-o", "/dev/null",
                                                          "-H", "accept-language: en",
                                                          "http://127.0.0.1:%d/index.html" % p)),
    ]
    for name, settings, client in jobs:
        up = nginx() if settings.get("nginx") else server(settings)
        port, t = record(up, name)
        client(port)
        t.join()
        print("recorded", name)
    for stop in STOP:
        stop()


if __name__ == "__main__":
    main()
