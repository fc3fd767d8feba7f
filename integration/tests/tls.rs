//! TLS captured as plaintext from OpenSSL (shared and static) and GnuTLS uprobes.

use serde_json::Value;

use crate::harness::{
    exchanges_of, n, reports_of, run, run_env, s, self_signed_cert, Agent, Interactive, Nginx,
    Server, TempDir,
};

/// Wait for one exchange and one report of `pid`, and return them.
fn exchange_and_report(agent: &Agent, pid: u32, what: &str) -> (Value, Value) {
    let lines = agent.wait_for(what, 30, |ls| {
        !exchanges_of(ls, pid).is_empty() && !reports_of(ls, pid).is_empty()
    });
    let ex = exchanges_of(&lines, pid);
    assert_eq!(ex.len(), 1, "{what}: exactly one exchange: {ex:?}");
    (ex[0].clone(), reports_of(&lines, pid)[0].clone())
}

/// What every healthy HTTPS client capture against nginx shows.
fn assert_tls_client(e: &Value, r: &Value, nginx: &Nginx, path: &str, exe: &str, probe: &str) {
    assert_eq!(s(e, "/direction"), "egress-internal");
    assert_eq!(s(e, "/metadata/process_exe"), exe);
    assert_eq!(s(e, "/metadata/endpoint_id"), "localhost");
    assert_eq!(s(e, "/metadata/tls_server_name"), "localhost");
    assert_eq!(n(e, "/metadata/tls_version"), 772, "TLS 1.3");
    assert_eq!(s(e, "/metadata/tls_probe"), probe);
    assert_eq!(s(e, "/request/method"), "GET");
    assert_eq!(s(e, "/request/scheme"), "https");
    assert_eq!(s(e, "/request/path"), path);
    assert_eq!(s(e, "/request/url"), nginx.url(path));
    assert_eq!(s(e, "/request/protocol"), "http1");
    assert_eq!(n(e, "/response/status"), 200);
    assert_eq!(n(e, "/response/body_size"), 10, "\"hello tls\\n\"");
    assert_eq!(s(e, "/response/content_type"), "text/plain");
    assert_eq!(e["partial"], false);
    assert!(n(e, "/metadata/bytes_sent") > 0 && n(e, "/metadata/bytes_received") > 0);
    assert_eq!(r["got_tls_client_hello"], true);
    assert_eq!(n(r, "/tls_version"), 772);
    assert_eq!(s(r, "/tls_server_name"), "localhost");
    assert_eq!(r["tls_probe_types"], serde_json::json!([probe]));
    assert_eq!(s(r, "/l7_protocol"), "http1");
    assert_eq!(r["got_protocol_event"], true);
    assert_eq!(n(r, "/exchanges"), 1);
    assert!(n(r, "/data_events") > 0);
    // Socket bytes (ciphertext) exceed the plaintext exchange.
    assert!(n(r, "/bytes_sent") > n(e, "/metadata/bytes_sent"));
    assert!(n(r, "/bytes_received") > n(e, "/metadata/bytes_received"));
}

#[test]
fn curl_https_http1_via_openssl() {
    let nginx = Nginx::start();
    let agent = Agent::start(&[]);
    let (pid, body) = run("curl", &["-sk", "--http1.1", &nginx.url("/curl")]);
    assert_eq!(body, "hello tls\n");
    let (e, r) = exchange_and_report(&agent, pid, "curl's HTTPS exchange");
    assert_tls_client(&e, &r, &nginx, "/curl", "/usr/bin/curl", "openssl");
    assert_eq!(s(&r, "/tls_alpn"), "http/1.1");
    // nginx's side of the same exchange, as a server.
    let lines = agent.wait_for("nginx's ingress exchange", 20, |ls| {
        ls.iter()
            .any(|l| s(l, "/direction") == "ingress" && s(l, "/request/path") == "/curl")
    });
    let ingress = lines
        .iter()
        .find(|l| s(l, "/direction") == "ingress" && s(l, "/request/path") == "/curl")
        .unwrap();
    assert_eq!(s(ingress, "/metadata/process_exe"), "/usr/sbin/nginx");
    assert_eq!(s(ingress, "/metadata/tls_probe"), "openssl");
    assert_eq!(n(ingress, "/response/status"), 200);
    assert_eq!(
        n(ingress, "/metadata/bytes_received"),
        n(&e, "/metadata/bytes_sent")
    );
    // Both sides went through probes on instructions the kernel emulates
    // (Debian 12's libssl: SSL_write/SSL_read begin with a single-stepped
    // `sub`; the probes sit on later branches, SSL_read's return on the
    // stack-protector check before its `ret`, SSL_write's likewise).
    // SSL_write_ex has no emulated instruction between its call and its
    // `ret` that leaves rax alone, so it keeps its uretprobe.
    let log = agent.stderr_text();
    let attached = log
        .lines()
        .find(|l| l.contains("TLS probes attached") && l.contains("/libssl.so"))
        .unwrap_or_else(|| panic!("no libssl attach line in:\n{log}"));
    assert!(
        attached.contains(r#"emulated=["SSL_write", "SSL_read""#),
        "{attached}"
    );
    agent.stop();
}

#[test]
fn python_urllib_https_via_openssl() {
    let nginx = Nginx::start();
    let agent = Agent::start(&[]);
    let mut client = Interactive::python("tls_client.py", &[&nginx.url("/python")]);
    client.expect_line("STATUS 200");
    let pid = client.child.id();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let (e, r) = exchange_and_report(&agent, pid, "python's HTTPS exchange");
    assert_tls_client(&e, &r, &nginx, "/python", &exe, "openssl");
    assert_eq!(s(&e, "/request/user_agent"), "py-tls/1");
    agent.stop();
}

#[test]
fn wget_https_via_gnutls() {
    let nginx = Nginx::start();
    let agent = Agent::start(&[]);
    let (pid, _) = run(
        "wget",
        &[
            "-q",
            "--no-check-certificate",
            "-O",
            "-",
            &nginx.url("/wget"),
        ],
    );
    let (e, r) = exchange_and_report(&agent, pid, "wget's HTTPS exchange");
    assert_tls_client(&e, &r, &nginx, "/wget", "/usr/bin/wget", "gnutls");
    assert!(s(&e, "/request/user_agent").starts_with("Wget/"));
    agent.stop();
}

#[test]
fn node_https_via_its_static_openssl() {
    let nginx = Nginx::start();
    let agent = Agent::start(&[]);
    assert!(
        agent.stderr_text().contains("path=/usr/bin/node"),
        "the node binary (static OpenSSL) is probed at start:\n{}",
        agent.stderr_text()
    );
    let script = format!(
        "require('https').get('{}', r => {{ r.resume(); r.on('end', () => console.log('STATUS', r.statusCode)); }});",
        nginx.url("/node")
    );
    let (pid, out) = run_env(
        "node",
        &["-e", &script],
        &[("NODE_TLS_REJECT_UNAUTHORIZED", "0")],
    );
    assert_eq!(out.trim(), "STATUS 200");
    let (e, r) = exchange_and_report(&agent, pid, "node's HTTPS exchange");
    assert_tls_client(&e, &r, &nginx, "/node", "/usr/bin/node", "openssl");
    agent.stop();
}

#[test]
fn python_tls_server_ingress() {
    let dir = TempDir::new("pytls");
    let (cert, key) = self_signed_cert(&dir);
    let server = Server::python(
        "tls_server.py",
        &[cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    let agent = Agent::start(&[]);
    let url = format!("https://localhost:{}/served?by=python", server.port);
    let (curl_pid, body) = run("curl", &["-sk", "--http1.1", &url]);
    assert_eq!(body, "python tls\n");
    let lines = agent.wait_for("python's ingress exchange", 30, |ls| {
        !exchanges_of(ls, server.pid()).is_empty()
    });
    let e = &exchanges_of(&lines, server.pid())[0];
    assert_eq!(s(e, "/direction"), "ingress");
    assert_eq!(s(e, "/metadata/process_exe"), server.exe);
    assert_eq!(s(e, "/metadata/tls_probe"), "openssl");
    assert_eq!(n(e, "/metadata/tls_version"), 772);
    assert_eq!(s(e, "/request/path"), "/served");
    assert_eq!(s(e, "/request/query"), "by=python");
    assert_eq!(s(e, "/request/scheme"), "https");
    assert!(s(e, "/request/user_agent").starts_with("curl/"));
    assert_eq!(n(e, "/response/status"), 200);
    assert_eq!(n(e, "/response/body_size"), 11);
    // And curl's side, as a client, on the same loopback connection.
    let lines = agent.wait_for("curl's side", 20, |ls| {
        !exchanges_of(ls, curl_pid).is_empty()
    });
    let c = &exchanges_of(&lines, curl_pid)[0];
    assert_eq!(
        n(c, "/metadata/bytes_sent"),
        n(e, "/metadata/bytes_received")
    );
    assert_eq!(
        n(c, "/metadata/bytes_received"),
        n(e, "/metadata/bytes_sent")
    );
    agent.stop();
}

#[test]
fn process_started_after_the_agent_that_dlopens_libssl_is_captured() {
    let nginx = Nginx::start();
    let agent = Agent::start(&[]);
    // Python maps libssl only when `import ssl` dlopens _ssl (and with it libssl).
    let mut client = Interactive::python("tls_client.py", &[&nginx.url("/late"), "late"]);
    client.expect_line("NO_SSL_YET");
    client.send_line("go");
    client.expect_line("STATUS 200");
    let pid = client.child.id();
    let (e, r) = exchange_and_report(&agent, pid, "the late process's HTTPS exchange");
    assert_eq!(s(&e, "/request/path"), "/late");
    assert_eq!(n(&e, "/response/status"), 200);
    assert_eq!(s(&e, "/metadata/tls_probe"), "openssl");
    assert_eq!(r["tls_probe_types"], serde_json::json!(["openssl"]));
    agent.stop();
}
