//! A real OTLP collector for the e2e tests: `rotel` (PyPI package `rotel`,
//! binary `<site-packages>/rotel/rotel-agent`) listening on OTLP/gRPC and
//! OTLP/HTTP, with `fixtures/rotel_processor.py` loaded as the traces, metrics
//! and logs processor. The processor appends one JSON line per received
//! resource to a capture file:
//!
//! ```text
//! {"signal": "traces"|"metrics"|"logs", "resource": {attr: value}, "items": [...]}
//! {"signal": ..., "error": "..."}            (processor failure, never raised)
//! ```
//!
//! See the processor's docstring for the item shapes (span `kind` and
//! `status_code` are upper-case names such as "CLIENT" / "ERROR", with the
//! numeric kind in `kind_code`; ids are lowercase hex; times are integer ns).
//!
//! The rotel binary is `$ROTEL_AGENT_BIN` if set, else found through
//! `python3 -c "import rotel"`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{fixture, free_port, TempDir};

/// A running rotel collector capturing everything it receives.
pub struct Collector {
    pub grpc_port: u16,
    pub http_port: u16,
    child: Mutex<Option<Child>>,
    capture: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

/// Path of the `rotel-agent` binary (located once per test process).
pub fn rotel_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("ROTEL_AGENT_BIN") {
            return PathBuf::from(p);
        }
        let out = Command::new("python3")
            .args([
                "-c",
                "import rotel, os; print(os.path.dirname(rotel.__file__))",
            ])
            .output()
            .expect("run python3 to locate the rotel package");
        assert!(
            out.status.success(),
            "cannot import rotel (pip install rotel==0.0.1a15): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("rotel-agent");
        assert!(bin.exists(), "{} not found", bin.display());
        bin
    })
    .clone()
}

/// Two distinct free loopback ports.
fn two_free_ports() -> (u16, u16) {
    let grpc = free_port();
    loop {
        let http = free_port();
        if http != grpc {
            return (grpc, http);
        }
    }
}

impl Collector {
    /// Start rotel on two free ports and wait until both accept TCP.
    pub fn start() -> Collector {
        // A port picked by free_port() can be taken by someone else before
        // rotel binds it: retry with fresh ports if rotel dies at startup.
        let mut last_err = String::new();
        for _ in 0..3 {
            let (grpc, http) = two_free_ports();
            match Collector::try_start(grpc, http) {
                Ok(c) => return c,
                Err(e) => last_err = e,
            }
        }
        panic!("rotel failed to start 3 times; last attempt:\n{last_err}");
    }

    /// Start rotel on the given ports (e.g. a collector that comes up after
    /// the agent already tries to export to it) and wait until both accept TCP.
    pub fn start_on(grpc_port: u16, http_port: u16) -> Collector {
        Collector::try_start(grpc_port, http_port).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start(grpc_port: u16, http_port: u16) -> Result<Collector, String> {
        assert_ne!(grpc_port, http_port, "rotel needs two different ports");
        let dir = TempDir::new("rotel");
        let capture = dir.join("capture.jsonl");
        let log = dir.join("rotel.out");
        File::create(&capture).expect("create capture file");
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("create rotel log");
        let processor = fixture("rotel_processor.py");
        let processor = processor.to_str().expect("utf-8 fixture path");
        let mut cmd = Command::new(rotel_bin());
        // Keep the test's environment from reconfiguring rotel or its
        // embedded Python (Debian's libpython3.11).
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ROTEL_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH")
            .env("ROTEL_CAPTURE_FILE", &capture)
            .env("NO_COLOR", "1")
            .arg("start")
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc_port}")])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http_port}")])
            .args(["--exporter", "blackhole"])
            .args(["--pid-file", dir.join("rotel.pid").to_str().unwrap()])
            // Only used with --daemon; keep it out of the shared /tmp anyway.
            .args(["--log-file", dir.join("rotel-agent.log").to_str().unwrap()])
            .args(["--otlp-with-trace-processor", processor])
            .args(["--otlp-with-metrics-processor", processor])
            .args(["--otlp-with-logs-processor", processor])
            // One summary line per received payload, for the failure dumps.
            .args(["--debug-log", "traces", "--debug-log", "metrics"])
            .args(["--debug-log", "logs"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().expect("dup log")))
            .stderr(Stdio::from(log_file));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", rotel_bin().display()));
        let collector = Collector {
            grpc_port,
            http_port,
            child: Mutex::new(Some(child)),
            capture,
            log,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [grpc_port, http_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = collector.exit_status() {
                    return Err(format!(
                        "rotel exited during startup ({status}) on grpc {grpc_port} / http {http_port}; log:\n{}",
                        collector.log_text()
                    ));
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "rotel not listening on grpc {grpc_port} / http {http_port} after 30 s; log:\n{}",
                        collector.log_text()
                    ));
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(collector)
    }

    /// `http://127.0.0.1:GRPC_PORT`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// `http://127.0.0.1:HTTP_PORT` (OTLP/HTTP paths are /v1/traces, /v1/metrics, /v1/logs).
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Process id of rotel (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.slot().as_ref().map(Child::id).unwrap_or(0)
    }

    /// Temp directory holding the capture file and rotel's log.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// rotel's stdout + stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Exit status if rotel is no longer running.
    fn exit_status(&self) -> Option<std::process::ExitStatus> {
        self.slot()
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Every complete line the processor wrote so far, in order.
    pub fn batches(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.capture).unwrap_or_default();
        // A line still being written has no trailing newline yet: skip it.
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    json!({"signal": null, "error": format!("unparsable capture line: {e}: {l}")})
                })
            })
            .collect()
    }

    /// (resource, item) pairs of one signal.
    fn items(&self, signal: &str) -> Vec<(Value, Value)> {
        self.batches()
            .into_iter()
            .filter(|b| b["signal"] == signal)
            .flat_map(|b| {
                let resource = b.get("resource").cloned().unwrap_or(Value::Null);
                b.get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |item| (resource.clone(), item))
            })
            .collect()
    }

    /// Every span received so far, with its resource attributes.
    pub fn spans(&self) -> Vec<(Value, Value)> {
        self.items("traces")
    }

    /// Every metric received so far, with its resource attributes.
    pub fn metrics(&self) -> Vec<(Value, Value)> {
        self.items("metrics")
    }

    /// Every log record received so far, with its resource attributes.
    pub fn logs(&self) -> Vec<(Value, Value)> {
        self.items("logs")
    }

    /// Lines the processor wrote because it failed (`{"signal", "error"}`).
    pub fn errors(&self) -> Vec<Value> {
        self.batches()
            .into_iter()
            .filter(|b| b.get("error").is_some())
            .collect()
    }

    /// Poll `f` every 200 ms until it returns `Some`; after `secs` (or as soon
    /// as rotel dies) panic with everything captured and rotel's log.
    pub fn wait_for<T>(&self, what: &str, secs: u64, f: impl Fn(&Collector) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            let exited = self.exit_status();
            if exited.is_some() || Instant::now() > deadline {
                // One last look: the data may have landed just now.
                if let Some(v) = f(self) {
                    return v;
                }
                let why = match exited {
                    Some(status) => format!("rotel exited ({status})"),
                    None => format!("timed out after {secs} s"),
                };
                panic!(
                    "waiting for {what} in the collector: {why}\n{}",
                    self.dump()
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Human-readable dump of everything captured and rotel's log.
    pub fn dump(&self) -> String {
        let batches = self.batches();
        let mut s = format!(
            "collector grpc {} / http {}: {} captured lines:\n",
            self.grpc_port,
            self.http_port,
            batches.len()
        );
        for b in &batches {
            s.push_str(&b.to_string());
            s.push('\n');
        }
        let log = self.log_text();
        let lines: Vec<&str> = log.lines().collect();
        let skip = lines.len().saturating_sub(200);
        s.push_str(&format!(
            "rotel log (last {} of {} lines):\n",
            lines.len() - skip,
            lines.len()
        ));
        for l in &lines[skip..] {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL; reaps rotel.
    pub fn stop(self) {
        let child = self.slot().take();
        if let Some(mut child) = child {
            if let Ok(None) = child.try_wait() {
                // SAFETY: kill with a pid we spawned and a valid signal number touches no memory.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let slot = match self.child.get_mut() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(mut child) = slot.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
