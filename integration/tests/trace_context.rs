//! W3C trace context at a real collector (rotel): curl sends `traceparent` and
//! `tracestate` to a Python server; the agent sees both ends of each request.
//! The client span is the request the header names (span id = parent-id),
//! the server span its child; a not-sampled parent exports no span but the
//! exchange still counts in the metrics; `tracestate` arrives as sent.

use serde_json::Value;

use crate::harness::collector::Collector;
use crate::harness::{final_counter, run, Agent, Server, TempDir};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const STATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
const UNSAMPLED_TRACE: &str = "5bf92f3577b34da6a3ce929d0e0e4736";
const RETRIED_TRACE: &str = "6bf92f3577b34da6a3ce929d0e0e4736";
const RETRIED_PARENT: &str = "10f067aa0ba902b7";

fn attr_s<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get("attributes")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The spans of `trace`, once `n` of them arrived.
fn trace_spans(c: &Collector, trace: &str, n: usize) -> Vec<Value> {
    c.wait_for(&format!("{n} spans of trace {trace}"), 30, |c| {
        let spans: Vec<Value> = c
            .spans()
            .into_iter()
            .map(|(_, sp)| sp)
            .filter(|sp| sp["trace_id"] == trace)
            .collect();
        (spans.len() >= n).then_some(spans)
    })
}

fn of_kind<'a>(spans: &'a [Value], kind: &str) -> Vec<&'a Value> {
    spans.iter().filter(|sp| sp["kind"] == kind).collect()
}

/// Data points of `http.client.request.duration` towards `port`: their count.
fn client_duration_count(c: &Collector, port: u16) -> u64 {
    // One series per process (each curl is a resource of its own): the last
    // count of each (resource, attributes).
    let mut last: std::collections::HashMap<String, u64> = Default::default();
    for (resource, m) in c.metrics() {
        if m["name"] != "http.client.request.duration" {
            continue;
        }
        for dp in m["data_points"].as_array().into_iter().flatten() {
            if dp["attributes"]["server.port"].as_i64() == Some(i64::from(port)) {
                last.insert(
                    format!("{resource} {}", dp["attributes"]),
                    dp["count"].as_u64().unwrap_or(0),
                );
            }
        }
    }
    last.values().sum()
}

fn curl(port: u16, path: &str, headers: &[String]) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut args = vec!["-s", "-o", "/dev/null"];
    for h in headers {
        args.extend(["-H", h.as_str()]);
    }
    args.push(&url);
    run("curl", &args);
}

#[test]
fn client_span_is_the_traceparent_request_and_the_server_span_its_child() {
    let server = Server::python("http_server.py", &[]);
    let collector = Collector::start();
    let endpoint = collector.http_endpoint();
    let agent = Agent::start_env(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
    );

    // Sampled, with a tracestate.
    curl(
        server.port,
        "/traced",
        &[
            format!("traceparent: 00-{TRACE}-{PARENT}-01"),
            format!("tracestate: {STATE}"),
        ],
    );
    // Not sampled (flags 00).
    curl(
        server.port,
        "/unsampled",
        &[format!("traceparent: 00-{UNSAMPLED_TRACE}-{PARENT}-00")],
    );
    // The same request sent twice with the same header (one curl, keep-alive).
    let retried = format!("traceparent: 00-{RETRIED_TRACE}-{RETRIED_PARENT}-01");
    let url = format!("http://127.0.0.1:{}/retried", server.port);
    run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-H",
            &retried,
            &url,
            &url,
        ],
    );

    let spans = trace_spans(&collector, TRACE, 2);
    let (clients, servers) = (of_kind(&spans, "CLIENT"), of_kind(&spans, "SERVER"));
    assert_eq!((clients.len(), servers.len()), (1, 1), "{spans:?}");
    let (client, srv) = (clients[0], servers[0]);
    assert_eq!(client["span_id"], PARENT, "the client span is the request");
    assert_eq!(client["parent_span_id"], "", "its parent is not known");
    assert_eq!(
        srv["parent_span_id"], PARENT,
        "the server span is its child"
    );
    assert_ne!(srv["span_id"], PARENT);
    for sp in [client, srv] {
        assert_eq!(sp["trace_state"], STATE, "tracestate arrives: {sp}");
        assert_eq!(sp["name"], "GET");
        assert_eq!(attr_s(sp, "url.scheme"), "http");
    }
    assert_eq!(attr_s(srv, "url.path"), "/traced");

    // The retried request: two client spans, two ids, the second under the first.
    let retried = trace_spans(&collector, RETRIED_TRACE, 4);
    let clients = of_kind(&retried, "CLIENT");
    assert_eq!(clients.len(), 2, "{retried:?}");
    let first = clients
        .iter()
        .find(|sp| sp["span_id"] == RETRIED_PARENT)
        .expect("one client span takes the header's id");
    let again = clients
        .iter()
        .find(|sp| sp["span_id"] != RETRIED_PARENT)
        .expect("the other has its own id");
    assert_eq!(first["parent_span_id"], "");
    assert_eq!(again["parent_span_id"], RETRIED_PARENT);
    for sp in of_kind(&retried, "SERVER") {
        assert_eq!(sp["parent_span_id"], RETRIED_PARENT);
    }
    let mut ids: Vec<&str> = retried
        .iter()
        .filter_map(|sp| sp["span_id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "no span id twice: {retried:?}");

    // All four requests count in the client metrics, the unsampled one too.
    collector.wait_for("4 client requests in the duration histogram", 30, |c| {
        (client_duration_count(c, server.port) == 4).then_some(())
    });
    let (_, log) = agent.stop_with_log();
    assert!(
        collector
            .spans()
            .iter()
            .all(|(_, sp)| sp["trace_id"] != UNSAMPLED_TRACE),
        "a not-sampled parent exports no span"
    );
    assert_eq!(
        final_counter(&log, "span_not_sampled"),
        2,
        "client and server"
    );
    assert_eq!(final_counter(&log, "client_span_ids_repeated"), 1);
    assert_eq!(final_counter(&log, "span_client_skipped"), 0);
}

#[test]
fn skip_leaves_client_spans_with_a_traceparent_to_the_program() {
    let server = Server::python("http_server.py", &[]);
    let collector = Collector::start();
    let endpoint = collector.http_endpoint();
    let dir = TempDir::new("trace-context-skip");
    let config = dir.agent_config("telemetry:\n  client_span_from_traceparent: skip\n");
    let config = config.to_string_lossy();
    let agent = Agent::start_env(
        &["--config", &config],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    curl(
        server.port,
        "/instrumented",
        &[format!("traceparent: 00-{TRACE}-{PARENT}-01")],
    );
    curl(server.port, "/plain", &[]);

    trace_spans(&collector, TRACE, 1);
    // A client span without traceparent is still exported.
    collector.wait_for("the client span of /plain", 30, |c| {
        c.spans()
            .into_iter()
            .find(|(_, sp)| sp["kind"] == "CLIENT" && attr_s(sp, "url.full").ends_with("/plain"))
    });
    let (_, log) = agent.stop_with_log();
    let spans: Vec<Value> = collector
        .spans()
        .into_iter()
        .map(|(_, sp)| sp)
        .filter(|sp| sp["trace_id"] == TRACE)
        .collect();
    assert!(!spans.is_empty());
    assert!(
        spans.iter().all(|sp| sp["kind"] == "SERVER"),
        "only the server span: {spans:?}"
    );
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0]["parent_span_id"], PARENT);
    assert_eq!(final_counter(&log, "span_client_skipped"), 1);
}
