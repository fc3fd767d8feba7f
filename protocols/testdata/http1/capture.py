#!/usr/bin/env python3
"""Capture real HTTP/1.x byte streams for the http1 parser fixtures.

A recording TCP proxy on 127.0.0.1 sits between curl and a real Python
http.server based server; every byte curl sends is written to NAME.req and
every byte the server sends back to NAME.resp.  Loopback only.

Usage: python3 capture.py OUTDIR
"""
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

OUT = sys.argv[1] if len(sys.argv) > 1 else "."


class H11(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive server: Content-Length, chunked, HEAD, POST."""

    protocol_version = "HTTP/1.1"
    server_version = "FixtureServer/1.0"

    def log_message(self, *args):
        pass

    def _plain(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.end_headers()
            self.wfile.write(b"7;ext=one\r\nhello, \r\n")
            self.wfile.flush()
            self.wfile.write(b"6\r\nworld!\r\n")
            self.wfile.write(b"1a;name=\"quoted\"\r\n" + b"abcdefghijklmnopqrstuvwxyz" + b"\r\n")
            self.wfile.write(b"0\r\nX-Checksum: 1234\r\n\r\n")
            return
        self._plain(("you asked for %s\n" % self.path).encode())

    def do_HEAD(self):
        self._plain(b"this body is not sent for HEAD\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        self._plain(("got %d bytes\n" % len(data)).encode(), 201)


class CloseDelimited(http.server.BaseHTTPRequestHandler):
    """HTTP/1.0 response without Content-Length: body ends at close."""

    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        for i in range(3):
            self.wfile.write(b"line %d of a close-delimited body\n" % i)
            self.wfile.flush()


class Simple(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(handler, **kw):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, **kw))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def record(upstream_port, name):
    """Proxy one connection to upstream, return (listening port, thread)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)

    def pump(src, dst, path):
        with open(path, "wb") as f:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                f.write(b)
                dst.sendall(b)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def run():
        cli, _ = lst.accept()
        up = socket.create_connection(("127.0.0.1", upstream_port))
        t1 = threading.Thread(target=pump, args=(cli, up, os.path.join(OUT, name + ".req")))
        t2 = threading.Thread(target=pump, args=(up, cli, os.path.join(OUT, name + ".resp")))
        t1.start(); t2.start(); t1.join(); t2.join()
        cli.close(); up.close(); lst.close()

    t = threading.Thread(target=run)
    t.start()
    return lst.getsockname()[1], t


def curl(name, upstream, *args):
    port, t = record(upstream, name)
    urls = [a.replace("URL", "http://127.0.0.1:%d" % port) for a in args]
    subprocess.run(["curl", "-sS", "-o", "/dev/null"] + urls, check=True)
    t.join()


def main():
    os.makedirs(OUT, exist_ok=True)
    h11 = serve(H11).server_address[1]
    close = serve(CloseDelimited).server_address[1]
    docroot = tempfile.mkdtemp()
    with open(os.path.join(docroot, "index.txt"), "w") as f:
        f.write("static file served by python -m http.server\n")
    simple = serve(Simple, directory=docroot).server_address[1]

    curl("curl_get_keepalive", h11, "URL/first", "-o", "/dev/null", "URL/second")
    curl("curl_post", h11, "-d", "name=value&other=thing", "URL/form")
    big = "x" * 2000
    curl("curl_expect_100", h11, "-H", "Expect: 100-continue", "--data-binary", big, "URL/upload")
    curl("curl_head", h11, "-I", "URL/head")
    curl("chunked_trailer", h11, "URL/chunked")
    curl("python_http_server_get", simple, "URL/index.txt")
    curl("python_close_delimited", close, "URL/stream")
    shutil.rmtree(docroot)


if __name__ == "__main__":
    main()
