//! Connected traces at a real collector (rotel): curl → A → B, where A is a
//! server (`fixtures/chain_server.{py,js,java,rb,php,c}`) that calls B
//! (nginx) for each request with a random token of its own and logs "<its
//! path> <token>". The agent sees every end: curl's CLIENT span, A's SERVER
//! span (its child by the connection), A's CLIENT span (the child of A's
//! SERVER span by the thread that serves it) and B's SERVER span (its child
//! by the connection). The checker ties the spans of one request together
//! only through A's log, never through the URLs, and counts wrong links: a
//! span whose parent is a span of another request, or no span at all.
//!
//! A in every runtime the issue names, under concurrent requests: Python
//! (`ThreadingHTTPServer`, a pool of pre-started workers), Java (a classic
//! `ServerSocket` thread pool; the JDK's `com.sun.net.httpserver` with an
//! executor), Ruby (a `Thread` per connection), PHP (`php -S`), C (a pthread
//! per connection); node's event loop links only while it serves one
//! request. Java's classes and the C binary are built at test time and
//! cached under `target/tmp/chain/` by the compiler's version and the
//! source's hash.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::harness::collector::Collector;
use crate::harness::{
    final_counter, free_port, run, self_signed_cert, wait_listening, Agent, Server, TempDir,
};

/// nginx as service B: plaintext on `port`, TLS (HTTP/1.1) on `tls_port`.
struct ServiceB {
    child: Child,
    port: u16,
    tls_port: u16,
    _dir: TempDir,
}

impl ServiceB {
    fn start() -> ServiceB {
        let dir = TempDir::new("chain-b");
        self_signed_cert(&dir);
        let (port, tls_port) = (free_port(), free_port());
        let d = dir.0.to_string_lossy().to_string();
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n\
             access_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
             server {{\nlisten 127.0.0.1:{port};\nlisten 127.0.0.1:{tls_port} ssl;\n\
             ssl_certificate {d}/cert.pem;\nssl_certificate_key {d}/key.pem;\n\
             location / {{ return 200 \"b\\n\"; }}\n}}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .args(["-c", conf_path.to_str().unwrap(), "-p", &d])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        wait_listening(port, 20);
        wait_listening(tls_port, 20);
        ServiceB {
            child,
            port,
            tls_port,
            _dir: dir,
        }
    }
}

impl Drop for ServiceB {
    fn drop(&mut self) {
        // SAFETY: kill with a pid we spawned and a valid signal number touches no memory.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// What service A is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Runtime {
    /// `fixtures/chain_server.py`: `ThreadingHTTPServer` (a thread per
    /// connection), or a pool with [`Shape::pool`].
    #[default]
    Python,
    /// node's event loop (`fixtures/chain_server.js`), plaintext.
    Node,
    /// `fixtures/chain_server.java`: a `ServerSocket` accepting on the main
    /// thread, a fixed pool of [`Shape::pool`] workers that read, call B
    /// (`HttpURLConnection`, keep-alive) and answer.
    JavaPool,
    /// `fixtures/chain_server.java`: the JDK's `com.sun.net.httpserver`
    /// with a fixed pool of [`Shape::pool`] workers as its executor.
    JavaHttpServer,
    /// `fixtures/chain_server.rb`: `TCPServer`, a `Thread` per connection,
    /// `Net::HTTP` to B.
    Ruby,
    /// `fixtures/chain_server.php` under `php -S` (one thread), php-curl to B.
    Php,
    /// `fixtures/chain_server.c`: a pthread per connection, a plain socket
    /// to B.
    C,
}

/// Which thread of A calls B (Python only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Calls {
    /// The thread serving the request.
    #[default]
    Serving,
    /// A thread the serving thread starts for the call, and joins.
    Spawned,
    /// A `concurrent.futures` pool of at most `n` threads shared by all
    /// requests, grown lazily by the serving threads that submit to it.
    LazyPool(usize),
}

/// How A serves and calls.
#[derive(Clone, Copy, Default)]
struct Shape {
    tls: bool,
    /// `Some(n)`: a pool of `n` workers behind an accepting thread.
    pool: Option<usize>,
    runtime: Runtime,
    calls: Calls,
}

/// `cmd`, waiting for its READY line (`READY <port>`).
fn ready_server(mut cmd: Command, what: &str) -> Server {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read READY");
    let port = line
        .strip_prefix("READY ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{what} did not print READY: {line:?}"));
    let exe = crate::harness::exe_of(child.id());
    Server { child, port, exe }
}

/// `fixtures/chain_server.java` compiled by `javac` (cached by the JDK's
/// version and the source): the class directory.
fn java_classes() -> PathBuf {
    let src = crate::harness::fixture("chain_server.java");
    let source = std::fs::read(&src).expect("read chain_server.java");
    let version = crate::harness::version_of("javac", &["-version"]);
    crate::harness::cached_build("chain", "java", &[&version, &source], |out| {
        run(
            "javac",
            &["-d", out.to_str().unwrap(), src.to_str().unwrap()],
        );
    })
}

/// `fixtures/chain_server.c` compiled by `cc` (cached by the compiler's
/// version and the source): the binary.
fn c_binary() -> PathBuf {
    let src = crate::harness::fixture("chain_server.c");
    let source = std::fs::read(&src).expect("read chain_server.c");
    let version = crate::harness::version_of("cc", &["--version"]);
    crate::harness::cached_build("chain", "c", &[&version, &source], |out| {
        let args = ["-O2", "-Wall", "-Werror", "-pthread", "-o"];
        let (src, out) = (src.to_str().unwrap(), out.to_str().unwrap());
        run("cc", &[&args[..], &[out, src]].concat());
    })
}

/// Service A of `shape`, logging to `log`, calling B on `b_port`.
fn start_a(shape: Shape, dir: &TempDir, log: &str, b_port: &str) -> Server {
    assert!(
        shape.calls == Calls::Serving || shape.runtime == Runtime::Python,
        "only the Python A calls from other threads"
    );
    let pool = shape.pool.unwrap_or(8).to_string();
    let java = |mode: &str| {
        let mut cmd = Command::new("java");
        // Startup in a fraction of the time of the default (C2, G1).
        cmd.args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp"])
            .arg(java_classes())
            .args(["ChainServer", log, b_port, mode, &pool]);
        ready_server(cmd, "java ChainServer")
    };
    match shape.runtime {
        Runtime::Python => {
            let (cert, key) = self_signed_cert(dir);
            let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
            let mut args: Vec<&str> = vec![log, b_port];
            if shape.tls {
                args.extend(["--b-tls", "--tls", &cert, &key]);
            }
            if shape.pool.is_some() {
                args.extend(["--pool", &pool]);
            }
            let lazy = match shape.calls {
                Calls::LazyPool(n) => n.to_string(),
                _ => String::new(),
            };
            match shape.calls {
                Calls::Serving => {}
                Calls::Spawned => args.push("--spawn"),
                Calls::LazyPool(_) => args.extend(["--lazy-pool", &lazy]),
            }
            Server::python("chain_server.py", &args)
        }
        Runtime::Node => {
            let mut cmd = Command::new("node");
            cmd.arg(crate::harness::fixture("chain_server.js"))
                .args([log, b_port]);
            ready_server(cmd, "node chain_server.js")
        }
        Runtime::JavaPool => java("pool"),
        Runtime::JavaHttpServer => java("httpserver"),
        Runtime::Ruby => {
            let mut cmd = Command::new("ruby");
            cmd.arg(crate::harness::fixture("chain_server.rb"))
                .args([log, b_port]);
            ready_server(cmd, "ruby chain_server.rb")
        }
        Runtime::C => {
            let mut cmd = Command::new(c_binary());
            cmd.args([log, b_port]);
            ready_server(cmd, "chain_server (C)")
        }
        Runtime::Php => {
            let port = free_port();
            let child = Command::new("php")
                .arg("-S")
                .arg(format!("127.0.0.1:{port}"))
                .arg(crate::harness::fixture("chain_server.php"))
                .env("CHAIN_LOG", log)
                .env("CHAIN_B_PORT", b_port)
                .stdout(Stdio::null())
                // A line per connection: kept out of the test's output.
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn php -S");
            wait_listening(port, 20);
            let exe = crate::harness::exe_of(child.id());
            Server { child, port, exe }
        }
    }
}

/// One service A and its log of calls.
struct ServiceA {
    server: Server,
    log: PathBuf,
}

/// B, the A's, the collector and the agent, started in that order (and
/// dropped in the other: the agent flushes to the collector before it
/// stops).
struct Chain {
    agent: Agent,
    collector: Collector,
    a: Vec<ServiceA>,
    b: ServiceB,
    _dir: TempDir,
    tls: bool,
}

impl Chain {
    fn start(shape: Shape) -> Chain {
        Chain::start_all(&[shape])
    }

    /// An A of each shape (all plaintext or all TLS), calling the same B,
    /// seen by one agent.
    fn start_all(shapes: &[Shape]) -> Chain {
        let tls = shapes.first().is_some_and(|s| s.tls);
        assert!(shapes.iter().all(|s| s.tls == tls), "one scheme for all");
        let b = ServiceB::start();
        let dir = TempDir::new("chain-a");
        let b_port = if tls { b.tls_port } else { b.port }.to_string();
        let a: Vec<ServiceA> = shapes
            .iter()
            .enumerate()
            .map(|(i, &shape)| {
                let log = dir.join(&format!("calls-{i}.log"));
                let server = start_a(shape, &dir, &log.to_string_lossy(), &b_port);
                ServiceA { server, log }
            })
            .collect();
        let a_ports: Vec<String> = a.iter().map(|a| a.server.port.to_string()).collect();
        let collector = Collector::start();
        let endpoint = collector.http_endpoint();
        // stdout too: the links must show there without a collector. Only
        // A's and B's ports (in the kernel): other traffic on the machine
        // (benchmarks of other tests) stays out of the counts and the queues.
        let config = dir.agent_config(&format!(
            "exporters:\n  stdout: on\nfilters:\n  ports:\n    include: [{}, {b_port}]\n",
            a_ports.join(", ")
        ));
        let config = config.to_string_lossy().to_string();
        let agent = Agent::start_env(
            &["--config", &config],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
        );
        Chain {
            b,
            a,
            _dir: dir,
            collector,
            agent,
            tls,
        }
    }

    /// `path` on the `i`th A.
    fn url(&self, i: usize, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.a[i].server.port)
    }

    /// `paths` requested from the first A by one curl, `parallel` at a time
    /// (each on its own connection), with extra headers.
    fn curl(&self, paths: &[String], parallel: usize, headers: &[&str]) {
        self.curl_at(0, paths, parallel, headers);
    }

    /// [`Chain::curl`] to the `i`th A.
    fn curl_at(&self, i: usize, paths: &[String], parallel: usize, headers: &[&str]) {
        let urls: Vec<String> = paths.iter().map(|p| self.url(i, p)).collect();
        let max = parallel.to_string();
        let mut args: Vec<&str> = vec!["-s", "-k", "--fail", "-H", "Connection: close"];
        if parallel > 1 {
            args.extend(["--parallel", "--parallel-immediate", "--parallel-max", &max]);
        }
        for h in headers {
            args.extend(["-H", h]);
        }
        for u in &urls {
            args.extend(["-o", "/dev/null", u.as_str()]);
        }
        run("curl", &args);
    }

    /// The `i`th A's log: incoming path → its own token for B.
    fn tokens(&self, i: usize) -> HashMap<String, String> {
        std::fs::read_to_string(&self.a[i].log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    /// [`Collector::wait_for`] for 30 s, failing with the agent's counters
    /// and warnings beside the collector's dump: whether a missing span was
    /// lost (and counted) or never made.
    fn wait_for_spans<T>(&self, what: &str, f: impl Fn(&Collector) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(found) = f(&self.collector) {
                return found;
            }
            if std::time::Instant::now() > deadline {
                let log = self.agent.stderr_text();
                let notable: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("capture counters") || l.contains("WARN"))
                    .collect();
                let from = notable.len().saturating_sub(5);
                panic!(
                    "waiting for {what} in the collector: timed out after 30 s\nagent:\n{}\n{}",
                    notable[from..].join("\n"),
                    self.collector.dump()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The four spans of each path through the first A, once all have
    /// arrived.
    fn chains(&self, paths: &[String]) -> Vec<Spans> {
        self.chains_at(0, paths)
    }

    /// [`Chain::chains`] through the `i`th A.
    fn chains_at(&self, i: usize, paths: &[String]) -> Vec<Spans> {
        let tokens = self.tokens(i);
        assert_eq!(tokens.len(), paths.len(), "A logged every call: {tokens:?}");
        let (a_port, b_port) = (
            i64::from(self.a[i].server.port),
            i64::from(if self.tls {
                self.b.tls_port
            } else {
                self.b.port
            }),
        );
        self.wait_for_spans(
            &format!("4 spans for each of {} requests", paths.len()),
            |c| {
                let spans: Vec<Value> = c.spans().into_iter().map(|(_, sp)| sp).collect();
                let mut out = Vec::new();
                for p in paths {
                    let token = tokens.get(p)?;
                    let b_path = format!("/b/{token}");
                    let one = |kind: &str, port: i64, f: &dyn Fn(&Value) -> bool| {
                        let found: Vec<&Value> = spans
                            .iter()
                            .filter(|sp| {
                                sp["kind"] == kind
                                    && sp["attributes"]["server.port"].as_i64() == Some(port)
                                    && f(sp)
                            })
                            .collect();
                        match found.as_slice() {
                            [one] => Some((*one).clone()),
                            _ => None,
                        }
                    };
                    let full = |want: String| {
                        move |sp: &Value| sp["attributes"]["url.full"].as_str() == Some(&want)
                    };
                    let path = |want: String| {
                        move |sp: &Value| sp["attributes"]["url.path"].as_str() == Some(&want)
                    };
                    out.push(Spans {
                        path: p.clone(),
                        curl: one("CLIENT", a_port, &full(self.url(i, p)))?,
                        a_server: one("SERVER", a_port, &path(p.clone()))?,
                        a_client: one(
                            "CLIENT",
                            b_port,
                            &full(format!(
                                "{}://127.0.0.1:{b_port}{b_path}",
                                if self.tls { "https" } else { "http" }
                            )),
                        )?,
                        b_server: one("SERVER", b_port, &path(b_path))?,
                    });
                }
                Some(out)
            },
        )
    }
}

/// The spans of one request through the chain.
#[derive(Debug)]
struct Spans {
    path: String,
    curl: Value,
    a_server: Value,
    a_client: Value,
    b_server: Value,
}

impl Spans {
    fn all(&self) -> [&Value; 4] {
        [&self.curl, &self.a_server, &self.a_client, &self.b_server]
    }

    /// Every parent is the span before it, all in one trace.
    fn fully_linked(&self) -> bool {
        let id = |sp: &Value| sp["span_id"].as_str().unwrap_or("").to_string();
        let parent = |sp: &Value| sp["parent_span_id"].as_str().unwrap_or("").to_string();
        let trace = self.curl["trace_id"].clone();
        self.all().iter().all(|sp| sp["trace_id"] == trace)
            && parent(&self.a_server) == id(&self.curl)
            && parent(&self.a_client) == id(&self.a_server)
            && parent(&self.b_server) == id(&self.a_client)
    }
}

/// Spans whose parent is not a span of their own request (another
/// request's, or one never exported), and traces shared by two requests.
fn wrong_links(chains: &[Spans], root_parent: Option<&str>) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut trace_of: HashMap<String, &str> = HashMap::new();
    for c in chains {
        let own: HashSet<&str> = c
            .all()
            .iter()
            .filter_map(|sp| sp["span_id"].as_str())
            .collect();
        for sp in c.all() {
            let parent = sp["parent_span_id"].as_str().unwrap_or("");
            if !parent.is_empty() && !own.contains(parent) && Some(parent) != root_parent {
                wrong.push(format!("{}: {} has parent {parent}", c.path, sp["name"]));
            }
            let trace = sp["trace_id"].as_str().unwrap_or("").to_string();
            if let Some(other) = trace_of.insert(trace.clone(), &c.path) {
                if other != c.path {
                    wrong.push(format!("{} and {other} share trace {trace}", c.path));
                }
            }
        }
    }
    wrong
}

fn t(sp: &Value, key: &str) -> i64 {
    sp[key].as_i64().unwrap_or(0)
}

/// Child inside parent. The kernel's timestamps of a plaintext write are
/// taken when the write returns, and the reader on the other end may return
/// first: the two ends of one connection agree within `slack_ns`.
fn assert_nested(parent: &Value, child: &Value, slack_ns: i64, what: &str) {
    let (ps, pe) = (
        t(parent, "start_time_unix_nano"),
        t(parent, "end_time_unix_nano"),
    );
    let (cs, ce) = (
        t(child, "start_time_unix_nano"),
        t(child, "end_time_unix_nano"),
    );
    assert!(
        cs + slack_ns >= ps && ce <= pe + slack_ns,
        "{what}: child [{cs}, {ce}] not inside parent [{ps}, {pe}]"
    );
}

fn attr<'a>(sp: &'a Value, key: &str) -> &'a str {
    sp["attributes"][key].as_str().unwrap_or("")
}

/// One request after another: each is exactly one trace of four spans.
fn sequential_chain(tls: bool) {
    let chain = Chain::start(Shape {
        tls,
        ..Default::default()
    });
    let paths: Vec<String> = (0..3).map(|i| format!("/a/{i}")).collect();
    for p in &paths {
        chain.curl(std::slice::from_ref(p), 1, &[]);
    }
    let chains = chain.chains(&paths);
    for c in &chains {
        assert!(c.fully_linked(), "{c:#?}");
        assert_eq!(c.curl["parent_span_id"], "", "curl's span is the root");
        let trace = &c.curl["trace_id"];
        let in_trace = chain
            .collector
            .spans()
            .iter()
            .filter(|(_, sp)| &sp["trace_id"] == trace)
            .count();
        assert_eq!(in_trace, 4, "one trace of four spans for {}", c.path);
        assert_eq!(attr(&c.curl, "tap.trace.link"), "root");
        assert_eq!(attr(&c.a_server, "tap.trace.link"), "connection");
        assert_eq!(attr(&c.a_client, "tap.trace.link"), "thread");
        assert_eq!(attr(&c.b_server, "tap.trace.link"), "connection");
        let slack = 2_000_000;
        assert_nested(&c.curl, &c.a_server, slack, "A server in curl");
        assert_nested(&c.a_server, &c.a_client, 0, "A client in A server");
        assert_nested(&c.a_client, &c.b_server, slack, "B server in A client");
    }
    assert_eq!(wrong_links(&chains, None), Vec::<String>::new());
    // stdout JSON shows the same ids.
    let lines = chain.agent.lines();
    for c in &chains {
        for sp in c.all() {
            let id = sp["span_id"].as_str().unwrap_or("");
            let line = lines
                .iter()
                .find(|l| l["trace"]["span_id"] == id)
                .unwrap_or_else(|| panic!("span {id} of {} not on stdout", c.path));
            assert_eq!(line["trace"]["trace_id"], sp["trace_id"]);
            let parent = sp["parent_span_id"].as_str().filter(|p| !p.is_empty());
            assert_eq!(line["trace"]["parent_span_id"].as_str(), parent);
            assert_eq!(line["trace"]["link"], attr(sp, "tap.trace.link"));
        }
    }
    let (_, log) = chain.agent.stop_with_log();
    assert!(final_counter(&log, "links_thread") >= 3, "{log}");
    assert!(final_counter(&log, "links_connection") >= 6, "{log}");
    assert_eq!(final_counter(&log, "links_root_timeout"), 0);
}

#[test]
fn a_request_through_two_services_is_one_trace() {
    sequential_chain(false);
}

#[test]
fn a_request_through_two_services_over_tls_is_one_trace() {
    sequential_chain(true);
}

/// Requests through one A: its shape, its name in paths and messages, how
/// many, how many at a time.
struct Load {
    shape: Shape,
    what: &'static str,
    n: usize,
    parallel: usize,
}

/// What the requests of one [`Load`] gave.
struct Outcome {
    what: &'static str,
    chains: Vec<Spans>,
    /// Chains fully linked.
    linked: usize,
    wrong: Vec<String>,
}

/// Every load's A behind one agent, one collector and one B (stopping an
/// agent takes seconds here, its uprobes' detach: one agent for several A's
/// keeps the tests short), loaded one after the other; each A's outcome,
/// and the agent's log (its final counters).
fn concurrent(loads: &[Load]) -> (Vec<Outcome>, String) {
    let started = std::time::Instant::now();
    let shapes: Vec<Shape> = loads.iter().map(|l| l.shape).collect();
    let chain = Chain::start_all(&shapes);
    let up = started.elapsed();
    let paths: Vec<Vec<String>> = loads
        .iter()
        .map(|l| (0..l.n).map(|i| format!("/a/{}-{i}", l.what)).collect())
        .collect();
    for (i, l) in loads.iter().enumerate() {
        chain.curl_at(i, &paths[i], l.parallel, &[]);
    }
    let sent = started.elapsed();
    let outcomes: Vec<Outcome> = loads
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let chains = chain.chains_at(i, &paths[i]);
            let linked = chains.iter().filter(|c| c.fully_linked()).count();
            let wrong = wrong_links(&chains, None);
            eprintln!(
                "{}: {} requests, {} at a time: {linked}/{} chains fully linked, {} wrong",
                l.what,
                l.n,
                l.parallel,
                chains.len(),
                wrong.len(),
            );
            Outcome {
                what: l.what,
                chains,
                linked,
                wrong,
            }
        })
        .collect();
    let collected = started.elapsed();
    let (_, log) = chain.agent.stop_with_log();
    eprintln!(
        "links: thread={} connection={} root={} root_ambiguous={} root_timeout={}; \
         started in {up:.1?}, sent by {sent:.1?}, collected by {collected:.1?}, stopped by {:.1?}",
        final_counter(&log, "links_thread"),
        final_counter(&log, "links_connection"),
        final_counter(&log, "links_root"),
        final_counter(&log, "links_root_ambiguous"),
        final_counter(&log, "links_root_timeout"),
        started.elapsed(),
    );
    (outcomes, log)
}

/// Each load's A under its concurrent requests: ≥ 99 % of the chains fully
/// linked, none linked wrong.
fn links_under_concurrency(loads: &[Load]) {
    let (outcomes, log) = concurrent(loads);
    for r in &outcomes {
        assert_eq!(r.wrong, Vec::<String>::new(), "{}: 0 wrong links", r.what);
        assert!(
            r.linked * 100 >= r.chains.len() * 99,
            "{}: {}/{} fully linked",
            r.what,
            r.linked,
            r.chains.len()
        );
    }
    assert_eq!(final_counter(&log, "links_root_timeout"), 0, "{log}");
}

/// A thread pool under 50 concurrent requests: ≥ 99 % of the chains fully
/// linked, none linked wrong.
#[test]
fn a_thread_pool_under_50_concurrent_requests_links_without_a_wrong_link() {
    let shape = Shape {
        pool: Some(8),
        ..Default::default()
    };
    links_under_concurrency(&[Load {
        shape,
        what: "pool",
        n: 50,
        parallel: 50,
    }]);
}

/// Thread-per-request servers in the other runtimes, each under concurrent
/// requests, behind one agent:
/// - Java's classic thread pool: a `ServerSocket` accepting on one thread, 8
///   pooled workers reading, calling B through the JDK's keep-alive cache (a
///   connection to B reused by whichever worker comes next) and answering;
/// - the JDK's `com.sun.net.httpserver.HttpServer` with a pool of 8 workers:
///   its dispatcher thread accepts and polls the connections, but the worker
///   that runs an exchange reads its request head itself (JDK 17:
///   `ServerImpl.Exchange.run`), calls B and answers, so the thread evidence
///   holds as in a classic pool (were the head read by the dispatcher, the
///   worker's call would name no request, a root, and the process would be
///   seen moving exchanges between threads: never a wrong link either way);
/// - Ruby: a `Thread` per connection;
/// - PHP's built-in server: one thread that reads a request, runs the script
///   (which calls B) and answers before it reads the next;
/// - C: a pthread per connection.
#[test]
fn thread_per_request_servers_in_java_ruby_php_and_c_link_without_a_wrong_link() {
    let shape = |runtime| Shape {
        pool: Some(8),
        runtime,
        ..Default::default()
    };
    let load = |runtime, what, n, parallel| Load {
        shape: shape(runtime),
        what,
        n,
        parallel,
    };
    links_under_concurrency(&[
        load(Runtime::JavaPool, "java-pool", 40, 40),
        load(Runtime::JavaHttpServer, "jdk-httpserver", 40, 40),
        load(Runtime::Ruby, "ruby", 40, 20),
        load(Runtime::Php, "php", 40, 20),
        load(Runtime::C, "c", 50, 50),
    ]);
}

/// A's calls made from another thread than the one serving the request
/// are not linked to it (see `link_evidence.rs`): A's client spans are
/// roots (`root`), the connections still linked (curl → A, A → B), and no
/// link is wrong:
/// - the handler starts a thread for its call to B and joins it (20
///   concurrent requests);
/// - a lazily grown pool (`concurrent.futures`, 4 threads, each started by a
///   serving thread and then reused by other requests; 40 concurrent).
#[test]
fn calls_from_threads_started_for_a_request_or_a_lazy_pool_stay_roots() {
    let load = |calls, what, n, parallel| Load {
        shape: Shape {
            calls,
            ..Default::default()
        },
        what,
        n,
        parallel,
    };
    let (outcomes, log) = concurrent(&[
        load(Calls::Spawned, "spawned", 20, 20),
        load(Calls::LazyPool(4), "lazy-pool", 40, 40),
    ]);
    let id = |sp: &Value| sp["span_id"].clone();
    for r in &outcomes {
        assert_eq!(r.wrong, Vec::<String>::new(), "{}: 0 wrong links", r.what);
        for c in &r.chains {
            assert_eq!(c.a_server["parent_span_id"], id(&c.curl), "{c:#?}");
            assert_eq!(c.b_server["parent_span_id"], id(&c.a_client), "{c:#?}");
            assert_eq!(c.a_client["parent_span_id"], "", "{c:#?}");
            assert_eq!(attr(&c.a_client, "tap.trace.link"), "root", "{c:#?}");
        }
    }
    assert_eq!(final_counter(&log, "links_thread"), 0, "{log}");
}

/// curl sends a `traceparent`: its trace id runs through the whole chain.
#[test]
fn a_traceparent_keeps_its_trace_through_the_chain() {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";
    let chain = Chain::start(Shape::default());
    let paths = vec!["/a/traced".to_string()];
    let header = format!("traceparent: 00-{TRACE}-{PARENT}-01");
    chain.curl(&paths, 1, &[&header]);
    let chains = chain.chains(&paths);
    let c = &chains[0];
    for sp in c.all() {
        assert_eq!(sp["trace_id"], TRACE, "{c:#?}");
    }
    assert_eq!(
        c.curl["span_id"], PARENT,
        "curl's span is the header's request"
    );
    assert!(c.fully_linked(), "{c:#?}");
    assert_eq!(attr(&c.curl, "tap.trace.link"), "traceparent");
    assert_eq!(attr(&c.a_server, "tap.trace.link"), "traceparent");
    assert_eq!(attr(&c.a_client, "tap.trace.link"), "thread");
    assert_eq!(attr(&c.b_server, "tap.trace.link"), "connection");
    assert_eq!(wrong_links(&chains, None), Vec::<String>::new());
    // Stopped, not killed: a killed agent leaves detaching its uprobes to
    // the kernel's exit path, seconds on this host.
    let (_, log) = chain.agent.stop_with_log();
    assert_eq!(final_counter(&log, "links_traceparent"), 2, "{log}");
}

/// An event loop (node): one request in flight on its thread is evidence;
/// several at once are not (their calls stay roots, counted as ambiguous).
/// Never a wrong link either way.
#[test]
fn an_event_loop_links_only_while_it_serves_one_request() {
    let chain = Chain::start(Shape {
        runtime: Runtime::Node,
        ..Default::default()
    });
    let one_by_one: Vec<String> = (0..3).map(|i| format!("/a/loop-{i}")).collect();
    for p in &one_by_one {
        chain.curl(std::slice::from_ref(p), 1, &[]);
    }
    let together: Vec<String> = (0..20).map(|i| format!("/a/loop-many-{i}")).collect();
    chain.curl(&together, 20, &[]);
    let all: Vec<String> = one_by_one.iter().chain(&together).cloned().collect();
    let chains = chain.chains(&all);
    let (alone, crowded) = chains.split_at(one_by_one.len());
    for c in alone {
        assert!(c.fully_linked(), "one request in flight: {c:#?}");
    }
    let linked = crowded.iter().filter(|c| c.fully_linked()).count();
    assert_eq!(wrong_links(&chains, None), Vec::<String>::new());
    for c in crowded {
        // The connections still link: curl → A server, A client → B server.
        let id = |sp: &Value| sp["span_id"].clone();
        assert_eq!(c.a_server["parent_span_id"], id(&c.curl), "{c:#?}");
        assert_eq!(c.b_server["parent_span_id"], id(&c.a_client), "{c:#?}");
    }
    let (_, log) = chain.agent.stop_with_log();
    eprintln!(
        "event loop: 20 concurrent requests, {linked} chains fully linked; links: thread={} \
         root_ambiguous={}",
        final_counter(&log, "links_thread"),
        final_counter(&log, "links_root_ambiguous"),
    );
    assert!(final_counter(&log, "links_root_ambiguous") > 0, "{log}");
}
