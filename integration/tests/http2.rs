//! HTTP/2 and gRPC: frames, per-direction HPACK, concurrent streams.

use serde_json::Value;

use crate::harness::{
    exchanges_of, free_port, n, reports_of, run, s, wait_listening, Agent, Interactive, Nginx,
    Server, TempDir,
};

/// nghttpd serving a directory over h2c (prior knowledge) on a free port.
struct Nghttpd {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl Nghttpd {
    fn start() -> Nghttpd {
        let dir = TempDir::new("nghttpd");
        std::fs::write(dir.join("index.html"), "hello h2c\n").expect("write index");
        std::fs::create_dir_all(dir.join("after")).expect("mkdir");
        for f in ["before", "after/one", "after/two"] {
            std::fs::write(dir.join(f), format!("{f}\n")).expect("write file");
        }
        let port = free_port();
        let child = std::process::Command::new("nghttpd")
            .args(["--no-tls", "-d", dir.0.to_str().unwrap(), &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn nghttpd (apt-get install nghttp2-server)");
        wait_listening(port, 20);
        Nghttpd {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Nghttpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn curl_http2_over_tls_against_nginx() {
    let nginx = Nginx::start();
    let agent = Agent::start(&[]);
    let (pid, body) = run("curl", &["-sk", "--http2", &nginx.url("/h2?x=1")]);
    assert_eq!(body, "hello tls\n");
    let lines = agent.wait_for("curl's HTTP/2 exchange and report", 30, |ls| {
        !exchanges_of(ls, pid).is_empty() && !reports_of(ls, pid).is_empty()
    });
    let e = &exchanges_of(&lines, pid)[0];
    assert_eq!(s(e, "/request/protocol"), "http2");
    assert_eq!(s(e, "/request/version"), "2");
    assert_eq!(s(e, "/request/method"), "GET");
    assert_eq!(s(e, "/request/path"), "/h2");
    assert_eq!(s(e, "/request/query"), "x=1");
    assert_eq!(
        s(e, "/request/authority"),
        format!("localhost:{}", nginx.port)
    );
    assert_eq!(s(e, "/request/url"), nginx.url("/h2?x=1"));
    assert_eq!(
        s(e, "/request/headers/:path"),
        "/h2?x=1",
        "pseudo-headers kept: {e}"
    );
    assert_eq!(n(e, "/response/status"), 200);
    assert_eq!(n(e, "/response/body_size"), 10);
    assert_eq!(e["partial"], false);
    assert!(n(e, "/http2/stream_id") % 2 == 1, "client streams are odd");
    let r = &reports_of(&lines, pid)[0];
    assert_eq!(s(r, "/l7_protocol"), "http2");
    assert_eq!(s(r, "/tls_alpn"), "h2");
    assert_eq!(r["tls_probe_types"], serde_json::json!(["openssl"]));
    agent.stop();
}

#[test]
fn h2c_prior_knowledge_against_nghttpd() {
    let server = Nghttpd::start();
    let agent = Agent::start(&[]);
    let url = format!("http://127.0.0.1:{}/index.html", server.port);
    let (pid, body) = run("curl", &["-s", "--http2-prior-knowledge", &url]);
    assert_eq!(body, "hello h2c\n");
    let lines = agent.wait_for("the h2c exchange", 30, |ls| {
        !exchanges_of(ls, pid).is_empty()
    });
    let e = &exchanges_of(&lines, pid)[0];
    assert_eq!(s(e, "/request/protocol"), "http2");
    assert_eq!(s(e, "/request/scheme"), "http");
    assert_eq!(s(e, "/request/path"), "/index.html");
    assert_eq!(n(e, "/response/status"), 200);
    assert_eq!(n(e, "/response/body_size"), 10);
    // nghttpd's side, as a server.
    let lines = agent.wait_for("nghttpd's ingress exchange", 20, |ls| {
        ls.iter()
            .any(|l| s(l, "/direction") == "ingress" && s(l, "/request/path") == "/index.html")
    });
    let ingress = lines
        .iter()
        .find(|l| s(l, "/direction") == "ingress" && s(l, "/request/path") == "/index.html")
        .unwrap();
    assert_eq!(s(ingress, "/metadata/process_exe"), "/usr/sbin/nghttpd");
    assert_eq!(n(ingress, "/response/status"), 200);
    agent.stop();
}

#[test]
fn fifty_concurrent_streams_give_exactly_five_hundred_exchanges() {
    let nginx = Nginx::start();
    let agent = Agent::start(&[]);
    let (pid, out) = run(
        "h2load",
        &["-n", "500", "-c", "1", "-m", "50", &nginx.url("/load")],
    );
    assert!(out.contains("500 succeeded"), "h2load: {out}");
    let lines = agent.wait_for("500 exchanges from h2load", 60, |ls| {
        exchanges_of(ls, pid).len() >= 500
    });
    let ex = exchanges_of(&lines, pid);
    assert_eq!(ex.len(), 500, "exactly one exchange per request");
    assert!(ex.iter().all(|e| s(e, "/request/path") == "/load"
        && n(e, "/response/status") == 200
        && e["partial"] == false));
    let mut ids: Vec<u64> = ex.iter().map(|e| n(e, "/http2/stream_id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 500, "500 distinct streams");
    agent.stop();
}

#[test]
fn grpc_unary_calls_are_recognised() {
    grpc_unary_calls(&[]);
}

/// At level `summary` the HPACK decoder keeps only the fields the agent
/// reads (pseudo-headers, user-agent, content-type, grpc-status,
/// grpc-message): the same gRPC details, and no headers in the line.
#[test]
fn grpc_unary_calls_are_recognised_at_level_summary() {
    let ok = grpc_unary_calls(&["--capture-level", "summary"]);
    assert_eq!(ok["request"]["headers"], serde_json::json!({}));
    assert_eq!(ok["response"]["headers"], serde_json::json!({}));
    assert!(
        s(&ok, "/request/user_agent").starts_with("grpc-python/"),
        "{ok}"
    );
}

/// Two unary calls from grpcio's client to its server (one OK, one
/// NOT_FOUND), captured with `args`; returns the OK call's exchange line.
fn grpc_unary_calls(args: &[&str]) -> Value {
    let server = Server::python("grpc_server.py", &[]);
    let agent = Agent::start(args);
    let mut client = Interactive::python("grpc_client.py", &[&server.port.to_string()]);
    client.expect_line("REPLY hello otel");
    client.expect_line("FAILED NOT_FOUND");
    let pid = client.child.id();
    let lines = agent.wait_for("two gRPC exchanges", 30, |ls| {
        exchanges_of(ls, pid).len() >= 2
    });
    let ex = exchanges_of(&lines, pid);
    let find = |m: &str| {
        ex.iter()
            .find(|e| s(e, "/grpc/method") == m)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let ok = find("SayHello");
    assert_eq!(s(&ok, "/grpc/service"), "helloworld.Greeter");
    assert_eq!(n(&ok, "/grpc/status"), 0);
    assert_eq!(s(&ok, "/request/path"), "/helloworld.Greeter/SayHello");
    assert_eq!(s(&ok, "/request/method"), "POST");
    assert_eq!(n(&ok, "/response/status"), 200);
    let failed = find("Fail");
    assert_eq!(n(&failed, "/grpc/status"), 5, "NOT_FOUND");
    assert_eq!(s(&failed, "/grpc/message"), "no such thing");
    agent.stop();
    ok
}

#[test]
fn http2_connection_opened_before_the_agent_still_yields_exchanges() {
    let server = Nghttpd::start();
    let mut client =
        Interactive::python("h2c_client.py", &[&server.port.to_string(), "preexisting"]);
    client.expect_line("CONNECTED");
    let agent = Agent::start(&[]);
    client.send_line("go");
    client.expect_line("DONE");
    let pid = client.child.id();
    let lines = agent.wait_for("streams after the agent started", 30, |ls| {
        exchanges_of(ls, pid).len() >= 2
    });
    let ex = exchanges_of(&lines, pid);
    assert_eq!(ex.len(), 2, "{ex:?}");
    for e in &ex {
        assert_eq!(
            n(e, "/response/status"),
            200,
            "the status is a static-table or literal header: {e}"
        );
        assert_eq!(s(e, "/request/protocol"), "http2");
        // Headers indexed in the dynamic table before the agent started cannot be
        // decoded: the exchange says so instead of guessing.
        let degraded = e["http2"]["headers_degraded"] == true;
        let path = s(e, "/request/path");
        assert!(
            path.starts_with("/after/") || degraded,
            "path decoded or degradation flagged: {e}"
        );
    }
    agent.stop();
}
