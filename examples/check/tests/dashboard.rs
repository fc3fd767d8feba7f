//! The Grafana dashboard queries only the agent's metrics and labels, and shows what it is for.

use std::collections::BTreeSet;

use serde_json::Value;

use examples_check::files::{json, read};
use examples_check::grafana::{label_values_query, legend_labels, panels, DASHBOARD};
use examples_check::prometheus::RESOURCE_LABELS;
use examples_check::promql::check_expr;
use examples_check::value::{at, str_at};

#[test]
fn dashboard_queries_use_only_the_agents_metrics_and_labels() {
    let dash = json(DASHBOARD);
    let mut errors = Vec::new();
    let mut used: BTreeSet<&'static str> = BTreeSet::new();
    let mut exprs = 0;
    for p in panels(&dash) {
        let title = p.get("title").and_then(Value::as_str).unwrap_or("?");
        for t in p
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // Tempo's service map reads the servicegraph metrics itself.
            if t["datasource"]["type"] == "tempo" {
                assert_eq!(t["queryType"], "serviceMap", "panel {title:?}");
                continue;
            }
            let Some(expr) = t.get("expr").and_then(Value::as_str) else {
                errors.push(format!("panel {title:?}: a target without expr"));
                continue;
            };
            exprs += 1;
            match check_expr(expr) {
                Ok(checked) => {
                    used.extend(checked.metrics.iter().copied());
                    let legend = t.get("legendFormat").and_then(Value::as_str).unwrap_or("");
                    for l in legend_labels(legend) {
                        if !checked.allowed.contains(&l) {
                            errors.push(format!(
                                "panel {title:?}: legend label `{l}` is not on {expr:?}"
                            ));
                        }
                    }
                }
                Err(e) => errors.extend(e.into_iter().map(|e| format!("panel {title:?}: {e}"))),
            }
        }
    }
    for v in at(&dash, &["templating", "list"])
        .as_array()
        .expect("templating.list")
    {
        if v.get("type").and_then(Value::as_str) != Some("query") {
            continue;
        }
        let q = v
            .get("query")
            .and_then(|q| q.get("query").and_then(Value::as_str).or(q.as_str()))
            .unwrap_or_else(|| panic!("variable {v} has no query"));
        let Some((selector, label)) = label_values_query(q) else {
            errors.push(format!("variable query {q:?} is not label_values(...)"));
            continue;
        };
        match selector {
            Some(sel) => match check_expr(&sel) {
                Ok(c) if c.allowed.contains(&label) => {}
                Ok(c) => errors.push(format!("variable {q:?}: `{label}` not in {:?}", c.allowed)),
                Err(e) => errors.extend(e),
            },
            None if RESOURCE_LABELS.contains(&label.as_str()) => {}
            None => errors.push(format!("variable {q:?}: `{label}` is not a resource label")),
        }
    }
    assert!(
        errors.is_empty(),
        "dashboard errors:\n{}",
        errors.join("\n")
    );
    assert!(exprs >= 20, "only {exprs} queries");
    // What the dashboard is for: HTTP rate/errors/latency and capture health.
    for required in [
        "http.server.request.duration",
        "http.client.request.duration",
        "tap.exchanges",
        "tap.connections",
        "tap.dropped.events",
        "tap.dropped.connections",
        "tap.dropped.spans",
        "tap.parse_errors",
        "tap.uprobe.count",
        "tap.uprobe.hits",
        "tap.export.failures",
        "tap.trace.links",
        "traces_service_graph_request_total",
    ] {
        assert!(
            used.contains(required),
            "the dashboard does not show {required}"
        );
    }
}

#[test]
fn dashboard_draws_the_service_graph() {
    let dash = json(DASHBOARD);
    let graph = panels(&dash)
        .into_iter()
        .find(|p| p["type"] == "nodeGraph")
        .expect("a node graph panel");
    assert_eq!(graph["datasource"]["uid"], "tempo");
    assert_eq!(graph["targets"][0]["queryType"], "serviceMap");
    // Tempo draws it from Prometheus: its data source says which.
    let ds = read("examples/grafana/provisioning/datasources/datasources.yaml");
    assert!(ds.contains("serviceMap:") && ds.contains("datasourceUid: prometheus"));
}

#[test]
fn dashboard_shows_percentiles_errors_and_breakdowns() {
    let text = read(DASHBOARD);
    let dash = json(DASHBOARD);
    let exprs: Vec<String> = panels(&dash)
        .iter()
        .flat_map(|p| {
            p.get("targets")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|t| t.get("expr").and_then(Value::as_str).map(str::to_string))
        .collect();
    for q in [
        "histogram_quantile(0.5,",
        "histogram_quantile(0.9,",
        "histogram_quantile(0.99,",
    ] {
        assert!(exprs.iter().any(|e| e.contains(q)), "no {q} query");
    }
    for label in [
        "service_name",
        "http_request_method",
        "http_response_status_code",
        "server_address",
        "error_type",
        "tap_l7_protocol",
        "tap_tls_probe",
        "tap_drop_reason",
        "tap_signal",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(label)),
            "no query uses {label}"
        );
    }
    // Panel ids are unique; every data panel has a query.
    let mut ids = BTreeSet::new();
    for p in panels(&dash) {
        let id = at(p, &["id"]).as_i64().expect("numeric panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        let kind = str_at(p, &["type"]);
        if !["row", "text"].contains(&kind) {
            let n = p
                .get("targets")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            assert!(n > 0, "panel {} has no query", p["title"]);
        }
    }
    assert_eq!(str_at(&dash, &["uid"]), "otel-agent");
    assert!(
        !text.contains("\"uid\": \"${DS_"),
        "export placeholders must be resolved"
    );
}
