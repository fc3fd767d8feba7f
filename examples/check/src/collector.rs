//! OpenTelemetry Collector configs checked structurally: declared components, pipelines, signals.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::value::{object_keys, strings};

/// The collector config, relative to the repository.
pub const COLLECTOR: &str = "examples/otel-collector.yaml";

/// `type` of a component id `type[/name]`.
pub fn component_type(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

/// Component types this config may use, per section, with the signals each handles.
fn known_component(section: &str, ty: &str) -> Option<&'static [&'static str]> {
    const ALL: &[&str] = &["traces", "metrics", "logs"];
    match (section, ty) {
        ("receivers", "otlp") => Some(ALL),
        ("processors", "batch" | "memory_limiter") => Some(ALL),
        ("exporters", "otlp" | "otlphttp" | "debug") => Some(ALL),
        ("exporters", "prometheus" | "prometheusremotewrite") => Some(&["metrics"]),
        ("extensions", "health_check" | "pprof" | "zpages") => Some(&[]),
        _ => None,
    }
}

/// Connector types this config may use: (the signal they take as an exporter, the
/// signal they give as a receiver).
fn known_connector(ty: &str) -> Option<(&'static str, &'static str)> {
    match ty {
        // Spans in, request metrics per client → server edge out.
        "servicegraph" => Some(("traces", "metrics")),
        "spanmetrics" => Some(("traces", "metrics")),
        _ => None,
    }
}

/// Errors of a collector config: references to undeclared components, unused
/// declarations, components in pipelines of a signal they do not handle; a
/// connector must be the exporter of a pipeline of the signal it takes and the
/// receiver of one of the signal it gives.
pub fn collector_errors(cfg: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    for key in object_keys(cfg) {
        if ![
            "receivers",
            "processors",
            "exporters",
            "extensions",
            "connectors",
            "service",
        ]
        .contains(&key.as_str())
        {
            errors.push(format!("unknown top-level key {key}"));
        }
    }
    let declared = |section: &str| -> BTreeSet<String> {
        cfg.get(section)
            .map(object_keys)
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let Some(pipelines) = cfg
        .get("service")
        .and_then(|s| s.get("pipelines"))
        .and_then(Value::as_object)
    else {
        return vec!["no service.pipelines".into()];
    };
    for (pipeline, p) in pipelines {
        let signal = component_type(pipeline);
        if !["traces", "metrics", "logs"].contains(&signal) {
            errors.push(format!("pipeline {pipeline}: unknown signal {signal}"));
        }
        for section in ["receivers", "processors", "exporters"] {
            let ids = p.get(section).map(strings).unwrap_or_default();
            if section != "processors" && ids.is_empty() {
                errors.push(format!("pipeline {pipeline}: no {section}"));
            }
            for id in ids {
                if section != "processors" && declared("connectors").contains(&id) {
                    let (takes, gives) = known_connector(component_type(&id)).unwrap_or(("?", "?"));
                    let want = if section == "exporters" { takes } else { gives };
                    if want != signal {
                        errors.push(format!(
                            "pipeline {pipeline}: connector {id} is not a {signal} {section} entry"
                        ));
                    }
                    used.entry(if section == "exporters" {
                        "connectors as exporter"
                    } else {
                        "connectors as receiver"
                    })
                    .or_default()
                    .insert(id);
                    continue;
                }
                if !declared(section).contains(&id) {
                    errors.push(format!(
                        "pipeline {pipeline}: {section} {id} is not declared"
                    ));
                }
                match known_component(section, component_type(&id)) {
                    Some(signals) if signals.contains(&signal) => {}
                    Some(_) => errors.push(format!(
                        "pipeline {pipeline}: {id} does not handle {signal}"
                    )),
                    None => errors.push(format!(
                        "pipeline {pipeline}: unknown {section} type of {id}"
                    )),
                }
                used.entry(section).or_default().insert(id);
            }
        }
    }
    for id in cfg["service"]
        .get("extensions")
        .map(strings)
        .unwrap_or_default()
    {
        if !declared("extensions").contains(&id) {
            errors.push(format!("service.extensions: {id} is not declared"));
        }
        used.entry("extensions").or_default().insert(id);
    }
    for id in declared("connectors") {
        if known_connector(component_type(&id)).is_none() {
            errors.push(format!("connectors {id}: unknown type"));
        }
        for (role, key) in [
            ("exporter", "connectors as exporter"),
            ("receiver", "connectors as receiver"),
        ] {
            if !used.get(key).is_some_and(|u| u.contains(&id)) {
                errors.push(format!("connector {id} is not used as an {role}"));
            }
        }
    }
    for section in ["receivers", "processors", "exporters", "extensions"] {
        for id in declared(section) {
            if !used.get(section).is_some_and(|u| u.contains(&id)) {
                errors.push(format!("{section} {id} is declared but used nowhere"));
            }
            if known_component(section, component_type(&id)).is_none() {
                errors.push(format!("{section} {id}: unknown type"));
            }
        }
    }
    errors
}
