//! Methods outside the standard set are HTTP too: `curl -X FOO`, a WebDAV
//! `PROPFIND` and a `QUERY` to a Python server are captured (the kernel's
//! sniffing recognises any method token followed by a target and `HTTP/1.`),
//! and reported as the semantic conventions ask: span name `HTTP`,
//! `http.request.method` `_OTHER`, the method in
//! `http.request.method_original`; `QUERY` is a known method.

use serde_json::Value;

use crate::harness::collector::Collector;
use crate::harness::{run, s, Agent, Server};

fn attr<'a>(item: &'a Value, key: &str) -> &'a Value {
    item.get("attributes")
        .and_then(|a| a.get(key))
        .unwrap_or(&Value::Null)
}

#[test]
fn foo_propfind_and_query_are_captured_with_their_methods() {
    let server = Server::python("http_server.py", &[]);
    let collector = Collector::start();
    let endpoint = collector.http_endpoint();
    let agent = Agent::start_env(
        &["--stdout"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let base = format!("http://127.0.0.1:{}", server.port);
    let (foo_pid, _) = run("curl", &["-s", "-X", "FOO", &format!("{base}/foo")]);
    let (propfind_pid, _) = run(
        "curl",
        &[
            "-s",
            "-X",
            "PROPFIND",
            "-H",
            "Depth: 1",
            &format!("{base}/dav/"),
        ],
    );
    let (query_pid, _) = run(
        "curl",
        &[
            "-s",
            "-X",
            "QUERY",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "{\"q\":1}",
            &format!("{base}/search"),
        ],
    );

    // (curl pid, method, http.request.method, span name, status, path)
    let expected = [
        (foo_pid, "FOO", "_OTHER", "HTTP", 200, "/foo"),
        (propfind_pid, "PROPFIND", "_OTHER", "HTTP", 207, "/dav/"),
        (query_pid, "QUERY", "QUERY", "QUERY", 200, "/search"),
    ];
    let spans = collector.wait_for("client and server spans of the three requests", 30, |c| {
        let spans: Vec<Value> = c
            .spans()
            .into_iter()
            .map(|(_, sp)| sp)
            .filter(|sp| {
                attr(sp, "network.peer.port").as_i64() == Some(i64::from(server.port))
                    || attr(sp, "server.port").as_i64() == Some(i64::from(server.port))
            })
            .collect();
        (spans.len() >= 6).then_some(spans)
    });
    for (pid, method, semconv_method, name, status, path) in expected {
        let client = spans
            .iter()
            .find(|sp| {
                sp["kind"] == "CLIENT" && attr(sp, "process.pid").as_i64() == Some(i64::from(pid))
            })
            .unwrap_or_else(|| panic!("CLIENT span of {method}: {spans:?}"));
        let server_span = spans
            .iter()
            .find(|sp| sp["kind"] == "SERVER" && attr(sp, "url.path") == path)
            .unwrap_or_else(|| panic!("SERVER span of {method}: {spans:?}"));
        for sp in [client, server_span] {
            assert_eq!(sp["name"], name, "{sp}");
            assert_eq!(attr(sp, "http.request.method"), semconv_method, "{sp}");
            let original = attr(sp, "http.request.method_original");
            if semconv_method == "_OTHER" {
                assert_eq!(original, method, "{sp}");
            } else {
                assert_eq!(original, &Value::Null, "{sp}");
            }
            assert_eq!(attr(sp, "http.response.status_code"), status, "{sp}");
        }
        assert_eq!(
            attr(client, "url.full"),
            &Value::from(format!("{base}{path}"))
        );
    }

    // stdout JSON: the method as sent.
    let lines = agent.wait_for("stdout exchanges of the three curls", 30, |lines| {
        expected.iter().all(|(pid, ..)| {
            lines
                .iter()
                .any(|l| s(l, "/metadata/process_id") == pid.to_string())
        })
    });
    for (pid, method, _, _, status, path) in expected {
        let ex = lines
            .iter()
            .find(|l| s(l, "/metadata/process_id") == pid.to_string())
            .expect("exchange");
        assert_eq!(s(ex, "/request/method"), method);
        assert_eq!(s(ex, "/request/path"), path);
        assert_eq!(
            ex.pointer("/response/status").and_then(Value::as_u64),
            Some(status)
        );
    }
    agent.stop();
}
