#!/usr/bin/env bash
# Seeds the fuzz corpora from real captures: protocols/testdata/ for the
# parsers, and the recorded kernel events (otel-agent/benches/recordings/) cut
# into the `events` target's input format (2-byte little-endian length, record).
# usage: otel-agent/fuzz/seed.sh   then   cargo +nightly fuzz run -O <target> corpus/<target>
set -euo pipefail
cd "$(dirname "$0")"
data=../../protocols/testdata
mkdir -p corpus/http1 corpus/http2 corpus/tls_handshake corpus/events corpus/uprobe_sites corpus/http1_gaps corpus/http2_gaps
cp "$data"/http1/*.req "$data"/http1/*.resp corpus/http1/
cp "$data"/http2/*.req "$data"/http2/*.resp corpus/http2/
cp "$data"/tls/*.client "$data"/tls/*.server corpus/tls_handshake/ 2>/dev/null || true
python3 - ../benches/recordings/*.rec.gz <<'PY'
import gzip, struct, sys
for path in sys.argv[1:]:
    raw = gzip.open(path).read()
    assert raw[:8] == b"OTELREC1", path
    records, i = [], 8
    while i < len(raw):
        (n,) = struct.unpack_from("<I", raw, i)
        records.append(raw[i + 4 : i + 4 + n])
        i += 4 + n
    name = path.rsplit("/", 1)[-1].split(".")[0]
    # Inputs of ~64 records each, every record ≤ 65535 bytes (the target's length prefix).
    for k in range(0, min(len(records), 64 * 40), 64):
        chunk = b"".join(struct.pack("<H", min(len(r), 65535)) + r[:65535] for r in records[k : k + 64])
        open(f"corpus/events/{name}-{k // 64:03}", "wb").write(chunk)
PY
# uprobe_sites: the probed functions of the system's TLS libraries (arity byte,
# then the code; in these libraries a text address is its file offset).
for lib in /usr/lib/x86_64-linux-gnu/libssl.so.3 /usr/lib/x86_64-linux-gnu/libgnutls.so.30; do
  [ -e "$lib" ] || continue
  nm -D -S --defined-only "$lib" | grep -E ' T (SSL_(read|write)(_ex)?|gnutls_record_(send|recv))(@|$)' |
    while read -r addr size _ name; do
      { printf '\x04'; tail -c +$((0x$addr + 1)) "$lib" | head -c $((0x$size)); } >"corpus/uprobe_sites/${name%%@*}"
    done
done
for t in corpus/*; do echo "$t: $(ls "$t" | wc -l) inputs"; done
