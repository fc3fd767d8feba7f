//! OTLP export to a real collector (rotel): spans, metrics and connection-report logs,
//! over gRPC and over HTTP/protobuf.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::harness::collector::Collector;
use crate::harness::{free_port, run, Agent, Nginx, Server};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN_ID: &str = "b7ad6b7169203331";

fn attr<'a>(item: &'a Value, key: &str) -> &'a Value {
    item.get("attributes")
        .and_then(|a| a.get(key))
        .unwrap_or(&Value::Null)
}

fn attr_s<'a>(item: &'a Value, key: &str) -> &'a str {
    attr(item, key).as_str().unwrap_or("")
}

fn attr_i(item: &Value, key: &str) -> i64 {
    attr(item, key).as_i64().unwrap_or(-1)
}

fn res_s<'a>(resource: &'a Value, key: &str) -> &'a str {
    resource.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The largest value any data point of the counter `name` reached (0 when
/// it was not received).
fn counter_max(c: &Collector, name: &str) -> i64 {
    c.metrics()
        .into_iter()
        .filter(|(_, m)| m["name"] == name)
        .flat_map(|(_, m)| m["data_points"].as_array().cloned().unwrap_or_default())
        .map(|dp| dp["value"].as_i64().unwrap_or(0))
        .max()
        .unwrap_or(0)
}

/// Sum of histogram counts of `name` over data points matching `pred`
/// (given the resource and the data point).
fn histogram_count(c: &Collector, name: &str, pred: impl Fn(&Value, &Value) -> bool) -> u64 {
    // Cumulative temporality: the last export of each data point holds the
    // total. A data point is its attributes under its resource (each
    // observed process has its own).
    let mut last: std::collections::HashMap<(String, String), u64> = Default::default();
    for (res, m) in c.metrics() {
        if m["name"] != name {
            continue;
        }
        for dp in m["data_points"].as_array().into_iter().flatten() {
            if pred(&res, dp) {
                last.insert(
                    (res.to_string(), dp["attributes"].to_string()),
                    dp["count"].as_u64().unwrap_or(0),
                );
            }
        }
    }
    last.values().sum()
}

fn roundtrip(protocol: &str) {
    let nginx = Nginx::start();
    let plain = Server::python("http_server.py", &[]);
    let collector = Collector::start();
    let endpoint = if protocol == "grpc" {
        collector.grpc_endpoint()
    } else {
        collector.http_endpoint()
    };
    let agent = Agent::start_env(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
            // gRPC plain, HTTP gzip-compressed: both paths are exercised.
            (
                "OTEL_EXPORTER_OTLP_COMPRESSION",
                if protocol == "grpc" { "none" } else { "gzip" },
            ),
        ],
    );
    assert!(
        agent.lines().is_empty(),
        "with an endpoint, stdout JSON is off by default"
    );

    // Three HTTPS requests from curl; the first carries a traceparent.
    let traceparent = format!("traceparent: 00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    let (curl_pid, _) = run(
        "curl",
        &[
            "-sk",
            "--http1.1",
            "-H",
            &traceparent,
            &nginx.url("/traced?a=1"),
        ],
    );
    for _ in 0..2 {
        run("curl", &["-sk", "--http1.1", &nginx.url("/more")]);
    }
    // The same over HTTP/2 (ALPN h2).
    let (h2_pid, _) = run("curl", &["-sk", "--http2", &nginx.url("/h2span")]);
    // A plaintext 404 (client error status) and a 503 from nginx (server error).
    let missing = format!("http://127.0.0.1:{}/status/404", plain.port);
    run("curl", &["-s", "-o", "/dev/null", &missing]);
    run(
        "curl",
        &[
            "-sk",
            "--http1.1",
            "-o",
            "/dev/null",
            &nginx.url("/status/503"),
        ],
    );

    let spans = collector.wait_for("CLIENT and SERVER spans of the traced request", 30, |c| {
        let spans = c.spans();
        let traced: Vec<_> = spans
            .iter()
            .filter(|(_, sp)| sp["trace_id"] == TRACE_ID)
            .cloned()
            .collect();
        (traced.len() >= 2).then_some(traced)
    });
    let (client_res, client) = spans
        .iter()
        .find(|(_, sp)| sp["kind"] == "CLIENT")
        .expect("CLIENT span");
    let (server_res, server) = spans
        .iter()
        .find(|(_, sp)| sp["kind"] == "SERVER")
        .expect("SERVER span");
    // The traceparent's parent-id is the caller's id of this request: the
    // client span is that request, the server span its child.
    assert_eq!(client["span_id"], PARENT_SPAN_ID);
    assert_eq!(client["parent_span_id"], "");
    assert_eq!(server["parent_span_id"], PARENT_SPAN_ID);
    for sp in [client, server] {
        assert_eq!(sp["name"], "GET");
        assert_eq!(attr_s(sp, "http.request.method"), "GET");
        assert_eq!(attr_i(sp, "http.response.status_code"), 200);
        assert_eq!(attr_s(sp, "url.scheme"), "https");
        assert_eq!(attr_s(sp, "network.protocol.name"), "http");
        assert_eq!(attr_s(sp, "network.protocol.version"), "1.1");
        assert_eq!(attr_s(sp, "tls.protocol.version"), "1.3");
        // The SNI's current name is server.address (tls.client.server_name
        // is deprecated); Host says the same here.
        assert_eq!(attr_s(sp, "server.address"), "localhost");
        assert_eq!(attr(sp, "tls.client.server_name"), &Value::Null);
        assert_eq!(attr_s(sp, "tap.tls.probe"), "openssl");
        assert_eq!(attr_s(sp, "tap.l7_protocol"), "http1");
        assert_eq!(sp["status_code"], "UNSET");
        assert!(
            attr_i(sp, "http.request.size") > 0 && attr_i(sp, "http.response.size") > 0,
            "{sp}"
        );
        let (start, end) = (
            sp["start_time_unix_nano"].as_u64().unwrap(),
            sp["end_time_unix_nano"].as_u64().unwrap(),
        );
        assert!(
            start > 1_700_000_000_000_000_000 && end >= start,
            "kernel timestamps as wall clock: {sp}"
        );
    }
    assert_eq!(attr_s(client, "url.full"), nginx.url("/traced?a=1"));
    assert_eq!(attr_s(client, "server.address"), "localhost");
    assert_eq!(attr_i(client, "server.port"), i64::from(nginx.port));
    assert_eq!(attr_s(client, "network.peer.address"), "127.0.0.1");
    assert_eq!(attr_s(client, "process.executable.path"), "/usr/bin/curl");
    assert_eq!(attr_i(client, "process.pid"), i64::from(curl_pid));
    assert_eq!(attr_s(client, "tap.direction"), "egress-internal");
    assert!(attr_s(client, "user_agent.original").starts_with("curl/"));
    assert_eq!(attr_s(server, "url.path"), "/traced");
    assert_eq!(attr_s(server, "url.query"), "a=1");
    assert_eq!(attr_s(server, "client.address"), "127.0.0.1");
    assert_eq!(attr_s(server, "process.executable.path"), "/usr/sbin/nginx");
    assert_eq!(attr_s(server, "tap.direction"), "ingress");
    // Each process is its own resource.
    assert_eq!(res_s(client_res, "service.name"), "curl");
    assert_eq!(
        res_s(client_res, "process.executable.path"),
        "/usr/bin/curl"
    );
    assert_eq!(
        client_res["process.pid"].as_i64(),
        Some(i64::from(curl_pid))
    );
    assert_eq!(res_s(client_res, "telemetry.distro.name"), "otel-agent");
    assert_eq!(res_s(client_res, "os.type"), "linux");
    assert!(!res_s(client_res, "host.name").is_empty());
    assert_eq!(res_s(client_res, "telemetry.sdk.language"), "rust");
    assert_eq!(res_s(server_res, "service.name"), "nginx");

    // The HTTP/2 exchange is a CLIENT span too.
    let h2 = collector.wait_for("the HTTP/2 CLIENT span", 30, |c| {
        c.spans().into_iter().find(|(_, sp)| {
            sp["kind"] == "CLIENT" && attr_i(sp, "process.pid") == i64::from(h2_pid)
        })
    });
    assert_eq!(attr_s(&h2.1, "network.protocol.version"), "2");
    assert_eq!(attr_s(&h2.1, "url.full"), nginx.url("/h2span"));
    assert_eq!(attr_i(&h2.1, "http.response.status_code"), 200);
    assert_eq!(attr_s(&h2.1, "tls.next_protocol"), "h2");
    assert_eq!(attr_s(&h2.1, "tap.l7_protocol"), "http2");
    assert!(attr_i(&h2.1, "tap.http2.stream_id") >= 1);

    // Error statuses: client 4xx, server 5xx.
    let errors = collector.wait_for("error spans", 30, |c| {
        let spans = c.spans();
        let client_404 = spans
            .iter()
            .find(|(_, sp)| {
                sp["kind"] == "CLIENT" && attr_i(sp, "http.response.status_code") == 404
            })?
            .1
            .clone();
        let server_503 = spans
            .iter()
            .find(|(_, sp)| {
                sp["kind"] == "SERVER" && attr_i(sp, "http.response.status_code") == 503
            })?
            .1
            .clone();
        Some((client_404, server_503))
    });
    assert_eq!(errors.0["status_code"], "ERROR");
    assert_eq!(attr_s(&errors.0, "error.type"), "404");
    assert_eq!(attr_s(&errors.0, "url.full"), missing);
    assert_eq!(errors.1["status_code"], "ERROR");
    assert_eq!(attr_s(&errors.1, "error.type"), "503");

    // Stop the agent: it flushes metrics and logs.
    let agent_pid = agent.pid();
    agent.stop();
    let count = histogram_count(&collector, "http.client.request.duration", |_, dp| {
        attr_i(dp, "server.port") == i64::from(nginx.port) && attr_s(dp, "url.scheme") == "https"
    });
    assert_eq!(
        count, 5,
        "one duration per HTTPS client request (3 × 200 + 1 × HTTP/2 + 1 × 503)"
    );
    // Under nginx's resource (the one of its spans): other tests' servers
    // on this host are not counted.
    let server_count = histogram_count(&collector, "http.server.request.duration", |res, dp| {
        res == server_res && attr_s(dp, "url.scheme") == "https"
    });
    assert_eq!(server_count, 5);
    let duration = collector
        .metrics()
        .into_iter()
        .find(|(_, m)| m["name"] == "http.client.request.duration")
        .expect("duration histogram")
        .1;
    assert_eq!(duration["unit"], "s");
    assert_eq!(duration["type"], "histogram");
    let bounds = &duration["data_points"][0]["explicit_bounds"];
    assert_eq!(bounds[0].as_f64(), Some(0.005), "semconv buckets: {bounds}");
    for dp in duration["data_points"].as_array().unwrap() {
        let keys: Vec<&str> = dp["attributes"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            keys.iter().all(|k| !k.starts_with("url.path")
                && !k.starts_with("url.full")
                && *k != "process.pid"),
            "{keys:?}"
        );
    }
    // server.address / server.port are opt-in on the server metrics (off by default).
    for (_, m) in collector.metrics() {
        if m["name"] != "http.server.request.duration" {
            continue;
        }
        for dp in m["data_points"].as_array().into_iter().flatten() {
            let attrs = &dp["attributes"];
            assert!(
                attrs.get("server.address").is_none() && attrs.get("server.port").is_none(),
                "{dp}"
            );
        }
    }
    let capture: Vec<String> = collector
        .metrics()
        .into_iter()
        .map(|(_, m)| m["name"].as_str().unwrap_or("").to_string())
        .collect();
    // What the collector received is the catalog the dashboard is checked
    // against (semconv::metrics::CAPTURE_METRICS): every metric in it that
    // is not opt-in, no opt-in one (the agent runs with the defaults), no
    // other, each data point with only the attribute keys its entry lists,
    // and the entry's unit.
    for def in semconv::metrics::CAPTURE_METRICS {
        let exported = capture.iter().any(|m| m == def.name);
        match def.opt_in {
            None => assert!(
                exported,
                "catalog metric {} exported: {capture:?}",
                def.name
            ),
            Some(switch) => assert!(
                !exported,
                "opt-in metric {} exported with {switch} off: {capture:?}",
                def.name
            ),
        }
    }
    for (_, m) in collector.metrics() {
        let name = m["name"].as_str().unwrap_or("");
        let def = semconv::metrics::metric_def(name)
            .unwrap_or_else(|| panic!("metric {name} is not in the catalog"));
        assert_eq!(m["unit"].as_str(), Some(def.unit), "unit of {name}");
        for dp in m["data_points"].as_array().into_iter().flatten() {
            for key in dp["attributes"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                assert!(
                    def.attributes.contains(&key.as_str()),
                    "{name} carries {key}, which the catalog does not list ({:?})",
                    def.attributes
                );
            }
        }
    }

    // The agent's own exports went through the kernel's probes and were
    // left out there, counted: none of them is a span, client or server.
    let collector_ports = [collector.grpc_port, collector.http_port].map(i64::from);
    for (_, sp) in collector.spans() {
        for key in [
            "server.port",
            "client.port",
            "network.peer.port",
            "network.local.port",
        ] {
            assert!(
                !collector_ports.contains(&attr_i(&sp, key)),
                "a span of the agent's own export: {sp}"
            );
        }
        assert_ne!(attr_i(&sp, "process.pid"), i64::from(agent_pid), "{sp}");
    }
    let self_skipped = counter_max(&collector, "tap.skipped.syscalls");
    assert!(
        self_skipped > 0,
        "the agent's own export syscalls are counted as skipped"
    );

    // One connection-report log per connection.
    let logs = collector.logs();
    let curl_logs: Vec<&Value> = logs
        .iter()
        .map(|(_, l)| l)
        .filter(|l| attr_i(l, "process.pid") == i64::from(curl_pid))
        .collect();
    assert_eq!(
        curl_logs.len(),
        1,
        "one report for curl's one connection: {curl_logs:?}"
    );
    let report = curl_logs[0];
    assert_eq!(report["event_name"], "tap.connection.report");
    assert_eq!(report["severity_text"], "INFO");
    assert_eq!(attr_s(report, "tap.l7_protocol"), "http1");
    assert_eq!(attr_s(report, "tap.role"), "client");
    assert_eq!(attr_s(report, "tap.direction"), "egress-internal");
    assert_eq!(attr_s(report, "tls.protocol.version"), "1.3");
    assert_eq!(attr_s(report, "server.address"), "localhost");
    assert_eq!(attr(report, "tls.client.server_name"), &Value::Null);
    assert_eq!(
        attr(report, "tap.tls.probes"),
        &serde_json::json!(["openssl"])
    );
    assert_eq!(attr(report, "tap.tls.client_hello"), &Value::Bool(true));
    assert_eq!(attr(report, "tap.protocol_event"), &Value::Bool(true));
    assert_eq!(attr_i(report, "tap.exchanges"), 1);
    assert!(attr_i(report, "tap.data_events") > 0);
    assert!(
        attr_i(report, "tap.wire_bytes_sent") > 0 && attr_i(report, "tap.wire_bytes_received") > 0
    );
    assert_eq!(attr_s(report, "tap.close_reason"), "close");
    assert!(report["body"].as_str().unwrap_or("").contains("http1"));
    assert!(
        collector.errors().is_empty(),
        "processor errors: {:?}",
        collector.errors()
    );
    collector.stop();
}

#[test]
fn exchanges_reach_a_real_collector_over_grpc() {
    roundtrip("grpc");
}

#[test]
fn exchanges_reach_a_real_collector_over_http_protobuf() {
    roundtrip("http/protobuf");
}

/// The last cumulative value of every `http.server.request.duration` data
/// point, by (resource, data-point attributes).
fn server_duration_points(c: &Collector) -> BTreeMap<(String, String), (Value, Value, u64)> {
    let mut last = BTreeMap::new();
    for (res, m) in c.metrics() {
        if m["name"] != "http.server.request.duration" {
            continue;
        }
        for dp in m["data_points"].as_array().into_iter().flatten() {
            last.insert(
                (res.to_string(), dp["attributes"].to_string()),
                (
                    res.clone(),
                    dp["attributes"].clone(),
                    dp["count"].as_u64().unwrap_or(0),
                ),
            );
        }
    }
    last
}

/// The labels the collector's Prometheus exporter gives a data point with
/// `resource_to_telemetry_conversion` on (examples/otel-collector.yaml):
/// every attribute and resource attribute as a label (dots to underscores),
/// `job` from `service.name`, `instance` from `service.instance.id`.
fn prometheus_labels(resource: &Value, attributes: &Value) -> BTreeMap<String, String> {
    use examples_check::prometheus::prometheus_label;
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let mut labels = BTreeMap::new();
    for obj in [resource, attributes] {
        for (k, v) in obj.as_object().into_iter().flatten() {
            labels.insert(prometheus_label(k), text(v));
        }
    }
    labels.insert("job".into(), res_s(resource, "service.name").to_string());
    labels.insert(
        "instance".into(),
        res_s(resource, "service.instance.id").to_string(),
    );
    labels
}

/// nginx and a Python server observed at once: each one's HTTP server
/// metrics and connection reports go out under its own resource — the one
/// its spans carry — and the dashboard's per-service queries tell them
/// apart; the agent's capture-health metrics stay under the agent's.
#[test]
fn each_observed_server_has_its_own_metrics_and_logs_resource() {
    const NGINX_REQUESTS: u64 = 3;
    const PYTHON_REQUESTS: u64 = 2;
    let nginx = Nginx::start();
    let python = Server::python("http_server.py", &[]);
    let python_pid = python.child.id();
    let python_service = python
        .exe
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let collector = Collector::start();
    let endpoint = collector.http_endpoint();
    let agent = Agent::start_env(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
    );
    for _ in 0..NGINX_REQUESTS {
        run(
            "curl",
            &["-sk", "--http1.1", &nginx.url("/own-resource-nginx")],
        );
    }
    let python_url = format!("http://127.0.0.1:{}/own-resource-python", python.port);
    let mut curl_pids = Vec::new();
    for _ in 0..PYTHON_REQUESTS {
        curl_pids.push(run("curl", &["-s", "-o", "/dev/null", &python_url]).0);
    }

    // The SERVER spans, and the resource each server's spans carry.
    let span_resource = |path: &'static str, n: u64| {
        collector.wait_for(&format!("{n} SERVER spans for {path}"), 30, |c| {
            let spans: Vec<(Value, Value)> = c
                .spans()
                .into_iter()
                .filter(|(_, sp)| sp["kind"] == "SERVER" && attr_s(sp, "url.path") == path)
                .collect();
            (spans.len() as u64 == n).then(|| spans[0].0.clone())
        })
    };
    let nginx_res = span_resource("/own-resource-nginx", NGINX_REQUESTS);
    let python_res = span_resource("/own-resource-python", PYTHON_REQUESTS);
    assert_eq!(res_s(&nginx_res, "service.name"), "nginx");
    assert_eq!(res_s(&python_res, "service.name"), python_service);
    assert_eq!(
        python_res["process.pid"].as_i64(),
        Some(i64::from(python_pid))
    );
    let nginx_pid = nginx_res["process.pid"].as_i64().expect("nginx pid");
    assert_ne!(nginx_pid, i64::from(python_pid));
    let instance = |r: &Value| res_s(r, "service.instance.id").to_string();
    assert_ne!(instance(&nginx_res), instance(&python_res));
    assert_eq!(instance(&nginx_res).len(), 36, "a UUID");

    // Stop the agent: it flushes every process's metrics and the logs.
    agent.stop();

    // Metrics: one series set per server, under exactly its spans' resource,
    // with that server's request count. (The agent observes the whole host:
    // other tests' servers are left out by pid.)
    let ours = [nginx_pid, i64::from(python_pid)];
    let mut points = server_duration_points(&collector);
    points.retain(|_, (res, _, _)| {
        res["process.pid"]
            .as_i64()
            .is_some_and(|pid| ours.contains(&pid))
    });
    let mut by_resource: BTreeMap<String, (Value, u64)> = BTreeMap::new();
    for (res, _, count) in points.values() {
        by_resource
            .entry(res.to_string())
            .or_insert_with(|| (res.clone(), 0))
            .1 += count;
    }
    let counts: BTreeMap<String, u64> = by_resource
        .values()
        .map(|(r, n)| (res_s(r, "service.name").to_string(), *n))
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("nginx".to_string(), NGINX_REQUESTS),
            (python_service.clone(), PYTHON_REQUESTS),
        ]),
        "http.server.request.duration by service.name: {points:?}"
    );
    for (res, _) in by_resource.values() {
        let spans_res = if res_s(res, "service.name") == "nginx" {
            &nginx_res
        } else {
            &python_res
        };
        assert_eq!(res, spans_res, "metrics under the resource of the spans");
        assert_ne!(res_s(res, "service.name"), "otel-agent");
    }

    // As the collector's Prometheus exporter labels them, the dashboard's
    // per-service request-rate query (`sum by (service_name, ...)` over
    // http_server_request_duration_seconds_count) gets one line per server.
    let series = examples_check::prometheus::prometheus_series();
    let count_series = series
        .iter()
        .find(|(_, (def, s))| {
            def.name == "http.server.request.duration"
                && *s == examples_check::prometheus::Series::Count
        })
        .map(|(name, _)| name.clone())
        .expect("the count series");
    assert_eq!(count_series, "http_server_request_duration_seconds_count");
    let dash = examples_check::files::json(examples_check::grafana::DASHBOARD);
    let per_service = examples_check::grafana::panels(&dash)
        .into_iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .find(|e| {
            e.starts_with("sum by (service_name, http_request_method")
                && e.contains(&format!("rate({count_series}{{"))
        })
        .expect("the dashboard's per-service server request rate");
    assert!(per_service.contains(r#"service_name=~"$service""#));
    let mut by_label: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for (res, attrs, count) in points.values() {
        let labels = prometheus_labels(res, attrs);
        let key = |k: &str| labels.get(k).cloned().unwrap_or_default();
        *by_label
            .entry((key("service_name"), key("job"), key("instance")))
            .or_default() += count;
        assert_eq!(key("process_pid"), res["process.pid"].to_string());
    }
    assert_eq!(
        by_label,
        BTreeMap::from([
            (
                (
                    "nginx".to_string(),
                    "nginx".to_string(),
                    instance(&nginx_res)
                ),
                NGINX_REQUESTS
            ),
            (
                (
                    python_service.clone(),
                    python_service.clone(),
                    instance(&python_res)
                ),
                PYTHON_REQUESTS
            ),
        ])
    );

    // Connection reports: under the resource of the process they describe.
    let logs = collector.logs();
    let reports_of = |pid: i64| -> Vec<&(Value, Value)> {
        logs.iter()
            .filter(|(_, l)| attr_i(l, "process.pid") == pid)
            .collect()
    };
    let python_reports = reports_of(i64::from(python_pid));
    assert_eq!(
        python_reports.len() as u64,
        PYTHON_REQUESTS,
        "one report per connection python served"
    );
    let nginx_reports = reports_of(nginx_pid);
    assert_eq!(nginx_reports.len() as u64, NGINX_REQUESTS);
    for (res, report) in &python_reports {
        assert_eq!(res, &python_res, "{report}");
        assert_eq!(attr_s(report, "tap.role"), "server");
    }
    for (res, _) in &nginx_reports {
        assert_eq!(res, &nginx_res);
    }
    for pid in curl_pids {
        let reports = reports_of(i64::from(pid));
        assert_eq!(reports.len(), 1, "curl {pid}");
        let (res, _) = reports[0];
        assert_eq!(res_s(res, "service.name"), "curl");
        assert_eq!(res["process.pid"].as_i64(), Some(i64::from(pid)));
    }

    // The agent's own metrics stay under the agent's resource.
    let health: Vec<(Value, Value)> = collector
        .metrics()
        .into_iter()
        .filter(|(_, m)| m["name"].as_str().unwrap_or("").starts_with("tap."))
        .collect();
    assert!(!health.is_empty());
    for (res, m) in &health {
        assert_eq!(res_s(res, "service.name"), "otel-agent", "{}", m["name"]);
        assert_eq!(res.get("process.pid"), None, "{}", m["name"]);
    }
    // Two processes, far below the limit: nothing under the agent's resource.
    let unattributed = health
        .iter()
        .filter(|(_, m)| m["name"] == "tap.unattributed.exchanges")
        .flat_map(|(_, m)| m["data_points"].as_array().cloned().unwrap_or_default())
        .filter_map(|dp| dp["value"].as_u64())
        .next_back();
    assert_eq!(unattributed, Some(0));
    collector.stop();
}

/// With `limits.max_metric_processes: 1` the second server's HTTP metrics go
/// under the agent's resource, counted; none is lost.
#[test]
fn past_the_process_limit_metrics_go_under_the_agent_counted() {
    let first = Server::python("http_server.py", &[]);
    let second = Server::python("http_server.py", &[]);
    let collector = Collector::start();
    let endpoint = collector.http_endpoint();
    let dir = crate::harness::TempDir::new("limit");
    let config = dir.join("agent.yaml");
    std::fs::write(&config, "limits:\n  max_metric_processes: 1\n").expect("write config");
    let (first_pid, second_pid) = (first.child.id().to_string(), second.child.id().to_string());
    let agent = Agent::start_env(
        &[
            "--config",
            config.to_str().expect("utf-8 path"),
            "--pid",
            &first_pid,
            "--pid",
            &second_pid,
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
    );
    let get = |port: u16, n: usize| {
        for _ in 0..n {
            let url = format!("http://127.0.0.1:{port}/x");
            run("curl", &["-s", "-o", "/dev/null", &url]);
        }
    };
    get(first.port, 2);
    collector.wait_for("the first server's span", 30, |c| {
        c.spans().into_iter().find(|(r, sp)| {
            sp["kind"] == "SERVER" && r["process.pid"].as_i64() == Some(i64::from(first.child.id()))
        })
    });
    get(second.port, 3);
    collector.wait_for("the second server's spans", 30, |c| {
        let n = c
            .spans()
            .into_iter()
            .filter(|(r, sp)| {
                sp["kind"] == "SERVER"
                    && r["process.pid"].as_i64() == Some(i64::from(second.child.id()))
            })
            .count();
        (n == 3).then_some(())
    });
    agent.stop();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (res, _, count) in server_duration_points(&collector).values() {
        let who = match res["process.pid"].as_i64() {
            Some(pid) if pid == i64::from(first.child.id()) => "first",
            Some(_) => "another process",
            None => res_s(res, "service.name"),
        };
        *counts.entry(who.to_string()).or_default() += count;
    }
    assert_eq!(
        counts,
        BTreeMap::from([("first".to_string(), 2), ("otel-agent".to_string(), 3)])
    );
    let unattributed = collector
        .metrics()
        .into_iter()
        .filter(|(_, m)| m["name"] == "tap.unattributed.exchanges")
        .flat_map(|(_, m)| m["data_points"].as_array().cloned().unwrap_or_default())
        .filter_map(|dp| dp["value"].as_u64())
        .next_back();
    assert_eq!(unattributed, Some(3));
    collector.stop();
}

#[test]
fn collector_down_at_start_then_recovers() {
    let plain = Server::python("http_server.py", &[]);
    let (grpc_port, http_port) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{grpc_port}");
    let agent = Agent::start_env(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
    );
    // Nobody listens: exports fail, the agent keeps running and counts.
    run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{}/while-down", plain.port),
        ],
    );
    std::thread::sleep(Duration::from_secs(6));
    let collector = Collector::start_on(grpc_port, http_port);
    run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{}/after-recovery", plain.port),
        ],
    );
    collector.wait_for("the span sent after the collector came up", 30, |c| {
        c.spans().into_iter().find(|(_, sp)| {
            attr_s(sp, "url.path") == "/after-recovery"
                || attr_s(sp, "url.full").ends_with("/after-recovery")
        })
    });
    agent.stop();
    let failures = counter_max(&collector, "tap.export.failures");
    assert!(
        failures > 0,
        "export failures while the collector was down are counted"
    );
    collector.stop();
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, in `dir`.
fn make_pki(dir: &crate::harness::TempDir) {
    let script = r#"
set -e
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem
openssl req -newkey rsa:2048 -nodes -subj /CN=otel-agent -keyout client.key -out client.csr
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile client.ext -out client.pem
"#;
    let out = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(&dir.0)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn export_over_mutual_tls(protocol: &str) {
    let collector = Collector::start();
    let dir = crate::harness::TempDir::new("otlp-tls");
    make_pki(&dir);
    let (grpc_port, http_port) = (free_port(), free_port());
    let conf = std::fs::read_to_string(crate::harness::fixture("nginx-otlp-tls.conf.template"))
        .unwrap()
        .replace("@DIR@", dir.0.to_str().unwrap())
        .replace("@GRPC_PORT@", &grpc_port.to_string())
        .replace("@HTTP_PORT@", &http_port.to_string())
        .replace("@ROTEL_GRPC@", &collector.grpc_port.to_string())
        .replace("@ROTEL_HTTP@", &collector.http_port.to_string());
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let front = KillOnDrop(
        std::process::Command::new("nginx")
            .args([
                "-c",
                dir.join("nginx.conf").to_str().unwrap(),
                "-p",
                dir.0.to_str().unwrap(),
            ])
            .spawn()
            .expect("nginx"),
    );
    crate::harness::wait_listening(grpc_port, 20);
    crate::harness::wait_listening(http_port, 20);
    let port = if protocol == "grpc" {
        grpc_port
    } else {
        http_port
    };
    let d = dir.0.display();
    let yaml = format!(
        "exporters:\n  otlp:\n    endpoint: https://localhost:{port}\n    protocol: {protocol}\n    tls:\n      ca_file: {d}/ca.pem\n      cert_file: {d}/client.pem\n      key_file: {d}/client.key\nfilters:\n  processes:\n    exclude:\n      - exe: nginx\n"
    );
    std::fs::write(dir.join("agent.yaml"), yaml).unwrap();
    let plain = Server::python("http_server.py", &[]);
    let agent = Agent::start(&["--config", dir.join("agent.yaml").to_str().unwrap()]);
    let url = format!("http://127.0.0.1:{}/over-mtls", plain.port);
    let (pid, _) = run("curl", &["-sS", "-o", "/dev/null", &url]);
    let span = collector.wait_for("the span sent through the mutual-TLS front", 30, |c| {
        c.spans()
            .into_iter()
            .find(|(_, sp)| attr_i(sp, "process.pid") == i64::from(pid))
    });
    assert_eq!(attr_s(&span.1, "url.full"), url);
    agent.stop();
    drop(front);
    collector.stop();
}

/// A child process killed (and reaped) when the test ends, even on panic.
/// The front nginx: TERMed on drop, so that its master stops its workers
/// (a SIGKILLed master leaves them running, holding the test's output pipe).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill with a pid we spawned and a valid signal number touches no memory.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

#[test]
fn export_through_mutual_tls_over_grpc() {
    export_over_mutual_tls("grpc");
}

#[test]
fn export_through_mutual_tls_over_http() {
    export_over_mutual_tls("http/protobuf");
}

/// The span randomness of a trace id (hex): its last 56 bits.
fn trace_randomness(trace_id: &str) -> u64 {
    trace_id
        .get(18..)
        .and_then(|r| u64::from_str_radix(r, 16).ok())
        .unwrap_or_else(|| panic!("trace id {trace_id:?}"))
}

/// The rejection threshold in a trace state's `ot=th:…`, if any.
fn ot_threshold(state: &str) -> Option<u64> {
    let ot = state
        .split(',')
        .find_map(|e| e.trim().strip_prefix("ot="))?;
    let th = ot.split(';').find_map(|f| f.strip_prefix("th:"))?;
    let v = u64::from_str_radix(th, 16).ok()?;
    Some(v << (4 * (14 - th.len())))
}

#[test]
fn spans_are_shed_by_trace_while_the_collector_cannot_keep_up() {
    let nginx = Nginx::start();
    let collector = Collector::start();
    let endpoint = collector.grpc_endpoint();
    let dir = crate::harness::TempDir::new("shed");
    let config = dir.agent_config(&format!(
        "limits:\n  export_queue: 512\nfilters:\n  ports:\n    include: [{}]\n",
        nginx.port
    ));
    let agent = Agent::start_env(
        &["--config", config.to_str().expect("utf-8 path")],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
    );
    // The collector stops taking spans: 4 requests of 512 wait on it, then
    // the 512-span queue fills and the agent sheds.
    let signal = |sig| {
        // SAFETY: kill with the collector's pid and a valid signal touches no memory.
        unsafe { libc::kill(collector.pid() as i32, sig) };
    };
    signal(libc::SIGSTOP);
    // nginx ends an HTTP/2 connection after 1,000 requests.
    let burst = 6000;
    run(
        "h2load",
        &[
            "-n",
            &burst.to_string(),
            "-c",
            "6",
            "-m",
            "8",
            &nginx.url("/burst"),
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    signal(libc::SIGCONT);
    // The queue drains and the level falls back to nothing shed.
    std::thread::sleep(Duration::from_secs(4));
    run("h2load", &["-n", "50", "-c", "1", &nginx.url("/after")]);
    // Server spans have url.path, client spans url.full.
    let path = |sp: &Value| {
        let full = attr_s(sp, "url.full");
        let path = full
            .find("/after")
            .map_or(attr_s(sp, "url.path"), |i| &full[i..]);
        path.to_string()
    };
    let after = |c: &Collector| {
        c.spans()
            .iter()
            .filter(|(_, sp)| path(sp) == "/after")
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while after(&collector) < 100 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, log) = agent.stop_with_log();
    assert_eq!(
        after(&collector),
        100,
        "the spans sent after the pressure, all kept; agent log:\n{log}\n{}",
        collector.dump()
    );
    let counter = |name| crate::harness::final_counter(&log, name);
    let spans = collector.spans();
    let received = spans.len() as u64;
    let (shed, queue_full) = (counter("span_shed"), counter("span_queue_full"));
    let exchanges = counter("exchanges") + counter("partial_exchanges");
    eprintln!(
        "exchanges {exchanges}: spans received {received}, shed {shed}, queue full {queue_full}"
    );
    assert!(shed > 0, "spans were shed under pressure");
    assert_eq!(counter("span_export_failed"), 0);
    assert_eq!(counter("span_not_sampled"), 0);
    assert_eq!(
        received + shed + queue_full,
        exchanges,
        "every exchange's span is received, shed or dropped (counted)"
    );
    assert_eq!(exchanges, 2 * (burst + 50), "both sides of every request");
    // A kept span's trace state says the level it was kept at, and its
    // trace's randomness is past that threshold: shedding chose by trace.
    let mut marked = 0;
    let mut per_trace: BTreeMap<String, usize> = BTreeMap::new();
    for (_, sp) in &spans {
        let state = sp["trace_state"].as_str().unwrap_or("");
        let trace = sp["trace_id"].as_str().unwrap_or("").to_string();
        if path(sp) == "/after" {
            assert_eq!(ot_threshold(state), None, "nothing shed after: {sp}");
            continue;
        }
        if let Some(th) = ot_threshold(state) {
            marked += 1;
            assert!(
                trace_randomness(&trace) >= th,
                "kept against its threshold: {sp}"
            );
            *per_trace.entry(trace).or_default() += 1;
        }
    }
    // Both spans of a request (client and server, one trace) are kept or
    // shed together, but for a random queue-full drop or a level change
    // between the two.
    let broken = per_trace.values().filter(|&&n| n != 2).count() as u64;
    eprintln!(
        "{marked} spans kept with a threshold, {} traces, {broken} not whole",
        per_trace.len()
    );
    assert!(
        marked > 0,
        "spans kept under shedding carry their threshold"
    );
    assert!(
        broken <= queue_full + per_trace.len() as u64 / 10,
        "traces kept whole: {broken} broken of {}",
        per_trace.len()
    );
    collector.stop();
}
