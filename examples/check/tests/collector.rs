//! The collector config: consistent pipelines, OTLP in, Jaeger, Tempo, Prometheus and debug out.

use serde_json::Value;

use examples_check::collector::{collector_errors, component_type, COLLECTOR};
use examples_check::value::{at, str_at, strings};
use examples_check::yaml::yaml;

#[test]
fn collector_pipelines_reference_declared_components() {
    let cfg = yaml(COLLECTOR);
    let errors = collector_errors(&cfg);
    assert!(errors.is_empty(), "{COLLECTOR}:\n{}", errors.join("\n"));
}

#[test]
fn collector_check_catches_broken_configs() {
    let cfg = yaml(COLLECTOR);
    let broken = |edit: &dyn Fn(&mut Value), why: &str| {
        let mut c = cfg.clone();
        edit(&mut c);
        let errors = collector_errors(&c);
        assert!(
            errors.iter().any(|e| e.contains(why)),
            "expected {why:?} in {errors:?}"
        );
    };
    broken(
        &|c| c["service"]["pipelines"]["traces"]["exporters"] = serde_json::json!(["otlp/zipkin"]),
        "otlp/zipkin is not declared",
    );
    broken(
        &|c| c["service"]["pipelines"]["traces"]["exporters"] = serde_json::json!(["prometheus"]),
        "prometheus does not handle traces",
    );
    broken(
        &|c| c["exporters"]["otlp/unused"] = serde_json::json!({"endpoint": "x:4317"}),
        "otlp/unused is declared but used nowhere",
    );
    broken(
        &|c| c["service"]["extensions"] = serde_json::json!(["pprof"]),
        "pprof is not declared",
    );
    broken(
        &|c| c["service"]["pipelines"]["metrics"]["receivers"] = serde_json::json!(["otlp"]),
        "connector servicegraph is not used as an receiver",
    );
    broken(
        &|c| c["service"]["pipelines"]["logs"]["exporters"] = serde_json::json!(["servicegraph"]),
        "connector servicegraph is not a logs exporters entry",
    );
    broken(
        &|c| c["service"]["pipelines"]["logs"]["receivers"] = serde_json::json!([]),
        "pipeline logs: no receivers",
    );
}

#[test]
fn collector_receives_otlp_and_feeds_jaeger_tempo_prometheus_debug() {
    let cfg = yaml(COLLECTOR);
    assert_eq!(
        str_at(
            &cfg,
            &["receivers", "otlp", "protocols", "grpc", "endpoint"]
        ),
        "0.0.0.0:4317"
    );
    assert_eq!(
        str_at(
            &cfg,
            &["receivers", "otlp", "protocols", "http", "endpoint"]
        ),
        "0.0.0.0:4318"
    );
    let exporters = at(&cfg, &["exporters"]);
    let otlp_to = |host: &str| {
        exporters
            .as_object()
            .expect("exporters")
            .iter()
            .filter(|(id, _)| component_type(id) == "otlp")
            .find(|(_, e)| e.get("endpoint").and_then(Value::as_str) == Some(host))
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no otlp exporter to {host}"))
    };
    let jaeger = otlp_to("jaeger:4317");
    let tempo = otlp_to("tempo:4317");
    assert_eq!(
        str_at(&cfg, &["exporters", "prometheus", "endpoint"]),
        "0.0.0.0:8889"
    );
    assert_eq!(
        at(
            &cfg,
            &[
                "exporters",
                "prometheus",
                "resource_to_telemetry_conversion",
                "enabled"
            ]
        ),
        &Value::Bool(true),
        "the dashboard filters on service_name/host_name"
    );
    // The dashboard's names assume the exporter's default suffixing.
    assert_ne!(
        exporters["prometheus"].get("add_metric_suffixes"),
        Some(&Value::Bool(false))
    );
    assert!(exporters["prometheus"]
        .get("translation_strategy")
        .is_none());
    assert!(exporters.get("debug").is_some());

    let pipeline =
        |name: &str, section: &str| strings(at(&cfg, &["service", "pipelines", name, section]));
    for signal in ["traces", "metrics", "logs"] {
        let receivers = pipeline(signal, "receivers");
        assert_eq!(
            receivers.first().map(String::as_str),
            Some("otlp"),
            "{signal}"
        );
        let procs = pipeline(signal, "processors");
        assert!(
            procs.contains(&"batch".to_string()),
            "{signal}: no batch processor"
        );
        if let Some(pos) = procs.iter().position(|p| p == "memory_limiter") {
            assert_eq!(pos, 0, "{signal}: memory_limiter must come first");
        }
        assert!(
            pipeline(signal, "exporters").contains(&"debug".to_string()),
            "{signal}"
        );
    }
    let traces = pipeline("traces", "exporters");
    assert!(
        traces.contains(&jaeger) && traces.contains(&tempo),
        "{traces:?}"
    );
    assert!(pipeline("metrics", "exporters").contains(&"prometheus".to_string()));
    // The service graph: spans in, edge metrics out to Prometheus (the dashboard's
    // service-graph panels and Tempo's service map read them).
    assert!(traces.contains(&"servicegraph".to_string()), "{traces:?}");
    assert_eq!(pipeline("metrics", "receivers"), ["otlp", "servicegraph"]);
    assert_eq!(pipeline("logs", "receivers"), ["otlp"]);
}
