//! Grafana dashboards: their panels, legend label references and `label_values(...)` variable queries.

use serde_json::Value;

use crate::value::at;

/// The dashboard, relative to the repository.
pub const DASHBOARD: &str = "examples/grafana-dashboard.json";

/// Every panel, rows' nested panels included.
pub fn panels(dash: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in at(dash, &["panels"]).as_array().expect("panels is a list") {
        out.push(p);
        if let Some(nested) = p.get("panels").and_then(Value::as_array) {
            out.extend(nested.iter());
        }
    }
    out
}

/// `{{label}}` references of a Grafana legend.
pub fn legend_labels(legend: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = legend;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        out.push(rest[start + 2..start + end].trim().to_string());
        rest = &rest[start + end + 2..];
    }
    out
}

/// A Grafana `label_values(...)` variable query: (selector expression, label).
pub fn label_values_query(q: &str) -> Option<(Option<String>, String)> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    match inner.rsplit_once(',') {
        Some((selector, label)) => {
            Some((Some(selector.trim().to_string()), label.trim().to_string()))
        }
        None => Some((None, inner.trim().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legend_and_variable_helpers() {
        assert_eq!(
            legend_labels("p99 {{service_name}} {{ le }}"),
            vec!["service_name", "le"]
        );
        assert!(legend_labels("request").is_empty());
        assert_eq!(
            label_values_query(
                r#"label_values(tap_exchanges_total{service_name=~"$service"}, host_name)"#
            ),
            Some((
                Some(r#"tap_exchanges_total{service_name=~"$service"}"#.to_string()),
                "host_name".to_string()
            ))
        );
        assert_eq!(
            label_values_query("label_values(job)"),
            Some((None, "job".into()))
        );
        assert_eq!(label_values_query("up"), None);
    }
}
