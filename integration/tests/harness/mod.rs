//! The test harness: the real agent binary, real servers and clients, and
//! helpers to wait for the JSON lines the agent prints.

#![allow(dead_code)]

pub mod collector;
pub mod uprobes;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Path of a file under `integration/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The agent binary: `$OTEL_AGENT_BIN`, else the workspace's `target/debug/otel-agent`.
pub fn agent_bin() -> PathBuf {
    if let Ok(p) = std::env::var("OTEL_AGENT_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/otel-agent");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p otel-agent) or set OTEL_AGENT_BIN",
        bin.display()
    );
    bin
}

/// A running agent whose stdout JSON lines are collected.
pub struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Reads stdout to its end: joined at stop, so no line is missed.
    out_reader: Option<thread::JoinHandle<()>>,
    /// Reads stderr to its end.
    err_reader: Option<thread::JoinHandle<()>>,
}

impl Agent {
    /// Start the agent with extra arguments and wait until it is capturing.
    pub fn start(args: &[&str]) -> Agent {
        Agent::start_env(args, &[])
    }

    /// Start the agent with extra arguments and environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Agent {
        assert_eq!(
            // SAFETY: geteuid has no preconditions.
            unsafe { libc::geteuid() },
            0,
            "integration tests load eBPF: run them as root"
        );
        // The tests' log level, unless a test sets its own.
        let log_level: &[&str] = if args.contains(&"--log-level") {
            &[]
        } else {
            &["--log-level", "info,otel_agent=debug"]
        };
        let mut child = Command::new(agent_bin())
            .args(log_level)
            .args(args)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn otel-agent");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let l = lines.clone();
        let out_reader = thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => l.lock().unwrap().push(v),
                    Err(e) => panic!("agent printed a non-JSON line on stdout: {e}: {line}"),
                }
            }
        });
        let err = child.stderr.take().expect("stderr");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let s = stderr_lines.clone();
        let err_reader = thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("otel-agent ready") {
                    let _ = ready_tx.send(());
                }
                s.lock().unwrap().push(line);
            }
        });
        let mut agent = Agent {
            child,
            lines,
            stderr: stderr_lines,
            out_reader: Some(out_reader),
            err_reader: Some(err_reader),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if ready_rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                return agent;
            }
            let exited = agent.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "agent not ready (exit: {exited:?}); stderr:\n{}",
                    agent.stderr_text()
                );
            }
        }
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the agent process has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the agent logged so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Copy of the JSON lines so far.
    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Wait until `pred` holds for the collected lines (or panic after `secs`).
    pub fn wait_for<F: Fn(&[Value]) -> bool>(&self, what: &str, secs: u64, pred: F) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let lines = self.lines();
            if pred(&lines) {
                return lines;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; {} lines:\n{}\nagent stderr:\n{}",
                    lines.len(),
                    lines
                        .iter()
                        .map(|l| l.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    self.stderr_text()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Exchanges (not reports) matching `pred`.
    pub fn exchanges<F: Fn(&Value) -> bool>(&self, pred: F) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l.get("request").is_some() && pred(l))
            .collect()
    }

    /// SIGTERM, wait for exit, and return all lines and everything logged.
    pub fn stop_with_log(self) -> (Vec<Value>, String) {
        let stderr = self.stderr.clone();
        let lines = self.stop();
        let log = stderr.lock().unwrap().join("\n");
        (lines, log)
    }

    /// SIGTERM, wait for exit, and return all lines.
    pub fn stop(mut self) -> Vec<Value> {
        // SAFETY: kill with a pid we spawned and a valid signal number touches no memory.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        // Detaching uprobes is slow: the kernel waits for an RCU grace period
        // in each one's unregistration, one at a time (under event_mutex): the
        // ~70 uprobes on this host's TLS files (Go binaries have one per `ret`)
        // took 7-9 s at stop, 20 s with other tests running (measured: the
        // agent's close() of the uprobe links, strace).
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "agent exited with {status}; stderr:\n{}",
                    self.stderr_text()
                );
                // The process is gone: read its output to the end.
                for reader in [self.out_reader.take(), self.err_reader.take()]
                    .into_iter()
                    .flatten()
                {
                    let _ = reader.join();
                }
                return self.lines();
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!(
            "agent did not exit within 60 s of SIGTERM; stderr:\n{}",
            self.stderr_text()
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A background process started from a fixture script that prints `READY <port>`.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub exe: String,
}

impl Server {
    /// `python3 fixtures/<script> [args]`, waiting for its READY line.
    pub fn python(script: &str, args: &[&str]) -> Server {
        let mut child = Command::new("python3")
            .arg(fixture(script))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read READY");
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("{script} did not print READY: {line:?}"));
        let exe = exe_of(child.id());
        Server { child, port, exe }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/proc/PID/exe` of a live process.
pub fn exe_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Run a command to completion; returns (pid, stdout). Panics on failure.
pub fn run(cmd: &str, args: &[&str]) -> (u32, String) {
    run_env(cmd, args, &[])
}

/// A client process kept running with piped stdin/stdout (for step-by-step scripts).
pub struct Interactive {
    pub child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Interactive {
    /// Start `python3 fixtures/<script> args`.
    pub fn python(script: &str, args: &[&str]) -> Interactive {
        let mut child = Command::new("python3")
            .arg(fixture(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Interactive {
            child,
            stdin,
            stdout,
        }
    }

    /// Wait for a line equal to `want`.
    pub fn expect_line(&mut self, want: &str) {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read");
        assert_eq!(line.trim(), want);
    }

    /// Send one line.
    pub fn send_line(&mut self, s: &str) {
        writeln!(self.stdin, "{s}").expect("write");
        self.stdin.flush().expect("flush");
    }
}

/// String field at a JSON pointer, or "".
pub fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// Number at a JSON pointer, or 0.
pub fn n(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr).and_then(Value::as_u64).unwrap_or(0)
}

/// Connection reports.
pub fn reports(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| l.get("connection_report").cloned())
        .collect()
}

/// FNV-1a, for cache keys of fixtures built at test time.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A fixture built at test time, cached as `target/tmp/<dir>/<label>-<key>`
/// where the key hashes `inputs` (the tool's version and the sources):
/// `build(out)` makes `out` (a file or a directory) when it is not there
/// yet, in a partial path first, so an interrupted build is never used.
pub fn cached_build(
    dir: &str,
    label: &str,
    inputs: &[&[u8]],
    build: impl FnOnce(&std::path::Path),
) -> PathBuf {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let out = cache.join(format!("{label}-{:016x}", fnv(&inputs.concat())));
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(&cache).expect("create the build cache");
    let partial = cache.join(format!("{label}.partial.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    build(&partial);
    std::fs::rename(&partial, &out).expect("move the build in place");
    out
}

/// The combined stdout and stderr of `cmd args` (a tool's version, for a
/// cache key).
pub fn version_of(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} missing ({e}): run scripts/install-deps.sh test"));
    [out.stdout, out.stderr].concat()
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Wait until something accepts TCP connections on 127.0.0.1:port.
pub fn wait_listening(port: u16, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listening on 127.0.0.1:{port} after {secs} s"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh directory under /tmp, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Create `/tmp/otel-agent-<name>-<pid>-<n>`.
    pub fn new(name: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("otel-agent-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Write `yaml` as an agent configuration file inside it; its path.
    pub fn agent_config(&self, yaml: &str) -> PathBuf {
        let path = self.join("otel-agent.yaml");
        std::fs::write(&path, yaml).expect("write the agent configuration");
        path
    }
}

/// Agent configuration capturing only `direction` (`ingress`, `egress`)
/// traffic on `port`: filters the kernel enforces, so that nothing else on the
/// machine reaches a test's counters.
pub fn port_filter_yaml(direction: &str, port: u16) -> String {
    format!("filters:\n  direction: {direction}\n  ports:\n    include: [{port}]\n")
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for CN=localhost, made with the openssl CLI.
pub fn self_signed_cert(dir: &TempDir) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    (cert, key)
}

/// nginx with TLS (1.2/1.3) and HTTP/2 on a free loopback port.
pub struct Nginx {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
}

impl Nginx {
    /// Start nginx from `fixtures/nginx.conf.template` and wait until it listens.
    pub fn start() -> Nginx {
        Nginx::start_tls("TLSv1.2 TLSv1.3")
    }

    /// The same, offering only the TLS versions `protocols` (nginx's
    /// `ssl_protocols` syntax, e.g. `TLSv1.2`).
    pub fn start_tls(protocols: &str) -> Nginx {
        let dir = TempDir::new("nginx");
        self_signed_cert(&dir);
        let port = free_port();
        let conf = std::fs::read_to_string(fixture("nginx.conf.template"))
            .expect("nginx template")
            .replace("@DIR@", dir.0.to_str().unwrap())
            .replace("@PORT@", &port.to_string())
            .replace("TLSv1.2 TLSv1.3", protocols);
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .args([
                "-c",
                conf_path.to_str().unwrap(),
                "-p",
                dir.0.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx (apt-get install nginx)");
        wait_listening(port, 20);
        Nginx { child, port, dir }
    }

    /// `https://localhost:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT-free shutdown: TERM the master, which stops its worker.
        // SAFETY: kill with a pid we spawned and a valid signal number touches no memory.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Run a command with extra environment to completion; returns (pid, stdout).
pub fn run_env(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> (u32, String) {
    let child = Command::new(cmd)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd}: {e}"));
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (pid, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Exchanges of one process.
pub fn exchanges_of(lines: &[Value], pid: u32) -> Vec<Value> {
    let pid = pid.to_string();
    lines
        .iter()
        .filter(|l| l.get("request").is_some() && s(l, "/metadata/process_id") == pid)
        .cloned()
        .collect()
}

/// One request, one exchange: `exchanges` (one side of the conversation)
/// are exactly the requests `paths` names — each as often as it was sent,
/// with status 200 and none partial. Fails the test on any duplicate, on any
/// missing request, and on any exchange that is not one of them (a stray
/// partial included). Requests are told apart by path only, so two
/// identical requests sent back to back must come out as two exchanges.
pub fn assert_each_request_once(exchanges: &[Value], paths: &[&str], what: &str) {
    use std::collections::BTreeMap;
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for p in paths {
        *want.entry(p.to_string()).or_default() += 1;
    }
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for e in exchanges {
        *got.entry(s(e, "/request/path").to_string()).or_default() += 1;
    }
    let shown = exchanges
        .iter()
        .map(|e| {
            format!(
                "{:?} status={} partial={} conn={}",
                e.pointer("/request/path"),
                e.pointer("/response/status").unwrap_or(&Value::Null),
                e["partial"],
                s(e, "/metadata/connection_id")
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ");
    assert_eq!(got, want, "{what}: exchanges per path:\n  {shown}");
    for e in exchanges {
        assert_eq!(e["partial"], false, "{what}: {e}");
        assert_eq!(n(e, "/response/status"), 200, "{what}: {e}");
    }
}

/// Server-side exchanges on local `port`.
pub fn served_on(lines: &[Value], port: u16) -> Vec<Value> {
    let suffix = format!(":{port}");
    lines
        .iter()
        .filter(|l| {
            l.get("request").is_some()
                && s(l, "/direction") == "ingress"
                && s(l, "/metadata/local_address").ends_with(&suffix)
        })
        .cloned()
        .collect()
}

/// The exchanges of `pid` whose request path starts with `prefix`.
pub fn exchanges_under(lines: &[Value], pid: u32, prefix: &str) -> Vec<Value> {
    exchanges_of(lines, pid)
        .into_iter()
        .filter(|e| s(e, "/request/path").starts_with(prefix))
        .collect()
}

/// Connection reports of one process.
pub fn reports_of(lines: &[Value], pid: u32) -> Vec<Value> {
    let pid = pid.to_string();
    reports(lines)
        .into_iter()
        .filter(|r| s(r, "/process_id") == pid)
        .collect()
}

/// A counter from the agent's final "capture counters" log line.
pub fn final_counter(log: &str, name: &str) -> u64 {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("capture counters"))
        .unwrap_or("");
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("{name} not in the counters line: {line}"))
}
