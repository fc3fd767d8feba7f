//! Plaintext HTTP/1.x captured from socket syscalls.

use serde_json::Value;

use crate::harness::{n, reports, run, s, Agent, Interactive, Server};

fn on_port(port: u16) -> impl Fn(&Value) -> bool {
    let p = format!(":{port}");
    move |l: &Value| {
        s(l, "/metadata/remote_address").ends_with(&p)
            || s(l, "/metadata/local_address").ends_with(&p)
    }
}

#[test]
fn curl_against_python_server_captures_both_sides() {
    let server = Server::python("http_server.py", &[]);
    let agent = Agent::start(&[]);
    let url = format!("http://127.0.0.1:{}/hello?who=otel", server.port);
    let (curl_pid, body) = run("curl", &["-sS", "-A", "otel-test/1.0", &url]);
    assert_eq!(body, "{\"hello\":\"world\"}\n");
    let port = server.port;
    let lines = agent.wait_for("egress and ingress exchanges", 20, |ls| {
        ls.iter()
            .filter(|l| l.get("request").is_some() && on_port(port)(l))
            .count()
            >= 2
    });
    let ex: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("request").is_some() && on_port(port)(l))
        .collect();
    let egress = ex
        .iter()
        .find(|l| s(l, "/direction") == "egress-internal")
        .expect("egress exchange");
    let ingress = ex
        .iter()
        .find(|l| s(l, "/direction") == "ingress")
        .expect("ingress exchange");
    for e in [egress, ingress] {
        assert_eq!(s(e, "/request/method"), "GET");
        assert_eq!(s(e, "/request/path"), "/hello");
        assert_eq!(s(e, "/request/query"), "who=otel");
        assert_eq!(s(e, "/request/protocol"), "http1");
        assert_eq!(s(e, "/request/version"), "1.1");
        assert_eq!(s(e, "/request/user_agent"), "otel-test/1.0");
        assert_eq!(s(e, "/request/authority"), format!("127.0.0.1:{port}"));
        assert_eq!(
            s(e, "/request/url"),
            format!("http://127.0.0.1:{port}/hello?who=otel")
        );
        assert_eq!(n(e, "/response/status"), 200);
        assert_eq!(s(e, "/response/content_type"), "application/json");
        assert_eq!(n(e, "/response/body_size"), 18);
        assert!(
            n(e, "/metadata/bytes_sent") > 0 && n(e, "/metadata/bytes_received") > 0,
            "{e}"
        );
        assert_eq!(e["partial"], false);
    }
    assert_eq!(s(egress, "/metadata/process_id"), curl_pid.to_string());
    assert_eq!(s(egress, "/metadata/process_exe"), "/usr/bin/curl");
    assert_eq!(s(ingress, "/metadata/process_id"), server.pid().to_string());
    assert_eq!(s(ingress, "/metadata/process_exe"), server.exe);
    // The client sent the request bytes and received the response bytes; the server the reverse.
    assert_eq!(
        n(egress, "/metadata/bytes_sent"),
        n(ingress, "/metadata/bytes_received")
    );
    assert_eq!(
        n(egress, "/metadata/bytes_received"),
        n(ingress, "/metadata/bytes_sent")
    );

    // curl exits: its connection report arrives.
    let lines = agent.wait_for("curl's connection report", 20, |ls| {
        reports(ls)
            .iter()
            .any(|r| s(r, "/process_id") == curl_pid.to_string())
    });
    let report = reports(&lines)
        .into_iter()
        .find(|r| s(r, "/process_id") == curl_pid.to_string())
        .unwrap();
    assert_eq!(s(&report, "/l7_protocol"), "http1");
    assert_eq!(s(&report, "/role"), "client");
    assert_eq!(s(&report, "/direction"), "egress-internal");
    assert_eq!(report["got_protocol_event"], true);
    assert_eq!(n(&report, "/exchanges"), 1);
    assert!(n(&report, "/data_events") >= 2);
    assert_eq!(n(&report, "/bytes_sent"), n(egress, "/metadata/bytes_sent"));
    assert_eq!(
        n(&report, "/bytes_received"),
        n(egress, "/metadata/bytes_received")
    );
    assert_eq!(n(&report, "/lost_events"), 0);
    agent.stop();
}

#[test]
fn hundred_keepalive_requests_on_one_connection_in_order() {
    let server = Server::python("http_server.py", &[]);
    let agent = Agent::start(&[]);
    let url = format!("http://127.0.0.1:{}/seq?i=[1-100]", server.port);
    let (curl_pid, _) = run("curl", &["-sS", "-o", "/dev/null", &url]);
    let pid = curl_pid.to_string();
    agent.wait_for("100 egress exchanges", 30, |ls| {
        ls.iter()
            .filter(|l| l.get("request").is_some() && s(l, "/metadata/process_id") == pid)
            .count()
            >= 100
    });
    let ex = agent.exchanges(|l| s(l, "/metadata/process_id") == pid);
    assert_eq!(ex.len(), 100);
    let conn = s(&ex[0], "/metadata/connection_id").to_string();
    for (i, e) in ex.iter().enumerate() {
        assert_eq!(
            s(e, "/request/query"),
            format!("i={}", i + 1),
            "exchange {i} out of order"
        );
        assert_eq!(
            s(e, "/metadata/connection_id"),
            conn,
            "all on one connection"
        );
        assert_eq!(n(e, "/response/status"), 200);
    }
    // The server side saw the same 100, in the same order.
    let server_pid = server.pid().to_string();
    agent.wait_for("100 ingress exchanges", 30, |ls| {
        ls.iter()
            .filter(|l| l.get("request").is_some() && s(l, "/metadata/process_id") == server_pid)
            .count()
            >= 100
    });
    let ingress = agent.exchanges(|l| s(l, "/metadata/process_id") == server_pid);
    let queries: Vec<&str> = ingress.iter().map(|e| s(e, "/request/query")).collect();
    let want: Vec<String> = (1..=100).map(|i| format!("i={i}")).collect();
    assert_eq!(queries, want.iter().map(String::as_str).collect::<Vec<_>>());
    agent.stop();
}

#[test]
fn chunked_response_and_pipelined_requests_are_parsed() {
    let server = Server::python("http_server.py", &[]);
    let agent = Agent::start(&[]);
    let url = format!("http://127.0.0.1:{}/chunked", server.port);
    let (curl_pid, body) = run("curl", &["-sS", &url]);
    assert_eq!(body.len(), 12 + 13 + 3000);
    let mut client = Interactive::python("raw_client.py", &[&server.port.to_string(), "pipelined"]);
    client.expect_line("DONE");
    let client_pid = client.child.id().to_string();
    let curl = curl_pid.to_string();
    agent.wait_for("chunked and pipelined exchanges", 20, |ls| {
        let c = ls
            .iter()
            .any(|l| l.get("request").is_some() && s(l, "/metadata/process_id") == curl);
        let p = ls
            .iter()
            .filter(|l| l.get("request").is_some() && s(l, "/metadata/process_id") == client_pid)
            .count();
        c && p >= 2
    });
    let chunked = &agent.exchanges(|l| s(l, "/metadata/process_id") == curl)[0];
    assert_eq!(s(chunked, "/request/path"), "/chunked");
    assert_eq!(n(chunked, "/response/status"), 200);
    assert_eq!(n(chunked, "/response/body_size"), 3025);
    assert_eq!(chunked["partial"], false);
    let piped = agent.exchanges(|l| s(l, "/metadata/process_id") == client_pid);
    let paths: Vec<&str> = piped.iter().map(|e| s(e, "/request/path")).collect();
    assert_eq!(paths, ["/pipe/one", "/pipe/two"]);
    assert!(piped.iter().all(|e| n(e, "/response/status") == 200));
    assert!(piped
        .iter()
        .all(|e| s(e, "/request/user_agent") == "raw-client/1"));
    agent.stop();
}

#[test]
fn connection_opened_before_the_agent_is_adopted() {
    let server = Server::python("http_server.py", &[]);
    let mut client =
        Interactive::python("raw_client.py", &[&server.port.to_string(), "preexisting"]);
    client.expect_line("CONNECTED");
    let agent = Agent::start(&[]);
    client.send_line("go");
    client.expect_line("DONE");
    let pid = client.child.id().to_string();
    agent.wait_for("requests on the adopted connection", 20, |ls| {
        ls.iter()
            .filter(|l| l.get("request").is_some() && s(l, "/metadata/process_id") == pid)
            .count()
            >= 2
    });
    let ex = agent.exchanges(|l| s(l, "/metadata/process_id") == pid);
    let paths: Vec<&str> = ex.iter().map(|e| s(e, "/request/path")).collect();
    assert_eq!(paths, ["/after/one", "/after/two"]);
    assert!(ex
        .iter()
        .all(|e| n(e, "/response/status") == 200 && s(e, "/direction") == "egress-internal"));
    let lines = agent.wait_for("the adopted connection's report", 20, |ls| {
        reports(ls).iter().any(|r| s(r, "/process_id") == pid)
    });
    let report = reports(&lines)
        .into_iter()
        .find(|r| s(r, "/process_id") == pid)
        .unwrap();
    assert_eq!(report["adopted"], true);
    assert_eq!(s(&report, "/role"), "client");
    assert_eq!(s(&report, "/l7_protocol"), "http1");
    assert_eq!(n(&report, "/exchanges"), 2);
    agent.stop();
}

#[test]
fn non_http_traffic_is_reported_as_other_and_not_parsed() {
    let echo = Server::python("echo_server.py", &[]);
    let agent = Agent::start(&[]);
    let mut client = Interactive::python("raw_client.py", &[&echo.port.to_string(), "garbage"]);
    client.expect_line("DONE");
    let pid = client.child.id().to_string();
    let lines = agent.wait_for("the garbage connection's report", 20, |ls| {
        reports(ls).iter().any(|r| s(r, "/process_id") == pid)
    });
    let report = reports(&lines)
        .into_iter()
        .find(|r| s(r, "/process_id") == pid)
        .unwrap();
    assert_eq!(s(&report, "/l7_protocol"), "other");
    assert_eq!(report["got_protocol_event"], false);
    assert_eq!(n(&report, "/bytes_sent"), 1024);
    assert_eq!(n(&report, "/bytes_received"), 1024);
    assert_eq!(
        n(&report, "/data_events"),
        0,
        "non-HTTP bytes are counted, not streamed"
    );
    assert!(agent
        .exchanges(|l| s(l, "/metadata/process_id") == pid)
        .is_empty());
    agent.stop();
}

#[test]
fn large_response_body_is_accounted_beyond_the_per_call_cap() {
    let server = Server::python("http_server.py", &[]);
    let agent = Agent::start(&[]);
    let url = format!("http://127.0.0.1:{}/big", server.port);
    let (curl_pid, body) = run("curl", &["-sS", &url]);
    assert_eq!(body.len(), 200_000);
    let pid = curl_pid.to_string();
    let lines = agent.wait_for("the big exchange", 20, |ls| {
        ls.iter()
            .any(|l| l.get("request").is_some() && s(l, "/metadata/process_id") == pid)
    });
    let e = lines
        .iter()
        .find(|l| l.get("request").is_some() && s(l, "/metadata/process_id") == pid)
        .unwrap();
    assert_eq!(n(e, "/response/status"), 200);
    assert_eq!(n(e, "/response/body_size"), 200_000);
    assert_eq!(s(e, "/response/content_type"), "application/octet-stream");
    agent.stop();
}

#[test]
fn process_killed_mid_exchange_gives_a_partial_exchange_and_a_report() {
    let server = Server::python("http_server.py", &[]);
    let agent = Agent::start(&[]);
    let mut client = Interactive::python("raw_client.py", &[&server.port.to_string(), "hang"]);
    client.expect_line("SENT");
    let pid = client.child.id();
    std::thread::sleep(std::time::Duration::from_millis(300));
    client.child.kill().expect("kill the client");
    let _ = client.child.wait();
    let pid_s = pid.to_string();
    let lines = agent.wait_for("the killed client's report", 20, |ls| {
        reports(ls).iter().any(|r| s(r, "/process_id") == pid_s)
    });
    let report = reports(&lines)
        .into_iter()
        .find(|r| s(r, "/process_id") == pid_s)
        .unwrap();
    assert_eq!(s(&report, "/close_reason"), "process_exit");
    assert_eq!(s(&report, "/l7_protocol"), "http1");
    assert_eq!(n(&report, "/exchanges"), 0);
    assert_eq!(n(&report, "/partial_exchanges"), 1);
    let ex = agent.exchanges(|l| s(l, "/metadata/process_id") == pid_s);
    assert_eq!(
        ex.len(),
        1,
        "the request without a response is still reported"
    );
    assert_eq!(ex[0]["partial"], true);
    assert_eq!(s(&ex[0], "/request/path"), "/slow");
    assert!(ex[0]["response"].is_null());
    agent.stop();
}

#[test]
fn ipv6_loopback_exchange_has_ipv6_addresses() {
    let server = Server::python("http_server.py", &["0", "::1"]);
    let agent = Agent::start(&[]);
    let url = format!("http://[::1]:{}/v6", server.port);
    let (curl_pid, _) = run("curl", &["-sS", "-o", "/dev/null", &url]);
    let pid = curl_pid.to_string();
    let lines = agent.wait_for("the IPv6 exchange", 20, |ls| {
        ls.iter()
            .any(|l| l.get("request").is_some() && s(l, "/metadata/process_id") == pid)
    });
    let e = lines
        .iter()
        .find(|l| l.get("request").is_some() && s(l, "/metadata/process_id") == pid)
        .unwrap();
    assert_eq!(
        s(e, "/metadata/remote_address"),
        format!("[::1]:{}", server.port)
    );
    assert!(s(e, "/metadata/local_address").starts_with("[::1]:"));
    assert_eq!(s(e, "/direction"), "egress-internal");
    assert_eq!(s(e, "/request/path"), "/v6");
    assert_eq!(n(e, "/response/status"), 200);
    agent.stop();
}
