//! A small PromQL scanner and the check that an expression uses only the agent's metrics, with labels they carry.

use std::collections::BTreeSet;

use crate::prometheus::{
    allowed_labels, diagnose_unknown, prometheus_series, SERVICE_GRAPH_SERIES,
};

/// PromQL functions and aggregation operators the dashboard may use.
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "count_values",
    "delta",
    "deriv",
    "exp",
    "floor",
    "group",
    "histogram_quantile",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "predict_linear",
    "quantile",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev",
    "stdvar",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "vector",
];

/// Keywords that are not names.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// A PromQL token; strings, numbers, ranges and Grafana variables carry no name.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str,
    Number,
    Op(String),
}

/// The tokens of an expression.
fn tokenize(expr: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            let quote = c;
            i += 1;
            while i < chars.len() && chars[i] != quote {
                if chars[i] == '\\' && quote != '`' {
                    i += 1;
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("unterminated string in {expr:?}"));
            }
            i += 1;
            toks.push(Tok::Str);
        } else if c == '[' {
            // A range or subquery: durations and Grafana variables, no names.
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("unterminated range in {expr:?}"));
            }
            i += 1;
            toks.push(Tok::Number);
        } else if c == '$' {
            // A Grafana variable: $name, ${name}, ${name:format}.
            i += 1;
            if i < chars.len() && chars[i] == '{' {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            toks.push(Tok::Number);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            toks.push(Tok::Number);
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["=~", "!~", "!=", "==", ">=", "<="].contains(&two.as_str()) {
                toks.push(Tok::Op(two));
                i += 2;
            } else {
                toks.push(Tok::Op(c.to_string()));
                i += 1;
            }
        }
    }
    Ok(toks)
}

/// The metric names and label names an expression uses.
#[derive(Debug, Default, PartialEq)]
struct Names {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
}

/// The metric and label names of an expression, or why it cannot be read.
fn scan(expr: &str) -> Result<Names, String> {
    let toks = tokenize(expr)?;
    let mut names = Names::default();
    let mut brace = false;
    let mut label_list = false;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Op(o) if o == "{" => brace = true,
            Tok::Op(o) if o == "}" => brace = false,
            Tok::Op(o) if o == ")" && label_list => label_list = false,
            Tok::Op(o) if o == "." => {
                return Err(format!(
                    "{expr:?}: `.` in a name: the exporter turns dots into underscores"
                ))
            }
            Tok::Ident(id) if brace => {
                let matcher = matches!(toks.get(i + 1), Some(Tok::Op(o)) if ["=", "!=", "=~", "!~"].contains(&o.as_str()));
                if !matcher {
                    return Err(format!(
                        "{expr:?}: `{id}` in a selector is not followed by a matcher"
                    ));
                }
                names.labels.insert(id.clone());
            }
            Tok::Ident(id) if label_list => {
                names.labels.insert(id.clone());
            }
            Tok::Ident(id) if LABEL_LIST_KEYWORDS.contains(&id.as_str()) => {
                if matches!(toks.get(i + 1), Some(Tok::Op(o)) if o == "(") {
                    label_list = true;
                    i += 1;
                }
            }
            Tok::Ident(id) if KEYWORDS.contains(&id.as_str()) => {}
            Tok::Ident(id) if FUNCTIONS.contains(&id.as_str()) => {}
            Tok::Ident(id) => {
                if matches!(toks.get(i + 1), Some(Tok::Op(o)) if o == "(") {
                    return Err(format!("{expr:?}: unknown function `{id}`"));
                }
                names.metrics.insert(id.clone());
            }
            _ => {}
        }
        i += 1;
    }
    if brace || label_list {
        return Err(format!("{expr:?}: unbalanced braces or label list"));
    }
    Ok(names)
}

/// What a checked expression uses.
#[derive(Debug)]
pub struct Checked {
    /// OpenTelemetry names of the metrics.
    pub metrics: BTreeSet<&'static str>,
    /// Labels valid on every metric of the expression.
    pub allowed: BTreeSet<String>,
}

/// Checks an expression: every metric is one of the agent's, with a suffix that fits
/// its kind, and every label is carried by every metric of the expression.
pub fn check_expr(expr: &str) -> Result<Checked, Vec<String>> {
    let names = scan(expr).map_err(|e| vec![e])?;
    let series = prometheus_series();
    let mut errors = Vec::new();
    let mut metrics = BTreeSet::new();
    let mut allowed: Option<BTreeSet<String>> = None;
    for m in &names.metrics {
        match series.get(m) {
            Some((def, kind)) => {
                metrics.insert(def.name);
                let mine = allowed_labels(def, *kind);
                allowed = Some(match allowed {
                    None => mine,
                    Some(a) => a.intersection(&mine).cloned().collect(),
                });
            }
            None => match SERVICE_GRAPH_SERIES.iter().find(|(name, _)| name == m) {
                Some((name, labels)) => {
                    metrics.insert(*name);
                    let mine: BTreeSet<String> = labels.iter().map(|l| l.to_string()).collect();
                    allowed = Some(match allowed {
                        None => mine,
                        Some(a) => a.intersection(&mine).cloned().collect(),
                    });
                }
                None => errors.push(diagnose_unknown(m, &series)),
            },
        }
    }
    if names.metrics.is_empty() {
        errors.push(format!("{expr:?}: no metric"));
    }
    let allowed = allowed.unwrap_or_default();
    if errors.is_empty() {
        for l in &names.labels {
            if !allowed.contains(l) {
                errors.push(format!(
                    "{expr:?}: label `{l}` is not carried by {:?} (allowed: {allowed:?})",
                    names.metrics
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(Checked { metrics, allowed })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_accepts_valid_queries() {
        for expr in [
            r#"sum by (service_name, http_request_method, http_response_status_code) (rate(http_server_request_duration_seconds_count{service_name=~"$service"}[$__rate_interval]))"#,
            r#"histogram_quantile(0.99, sum by (le, server_address) (rate(http_client_request_duration_seconds_bucket[5m])))"#,
            r#"sum by (tap_drop_reason) (increase(tap_dropped_events_total{tap_drop_reason=~"ring.*|x{y}"}[$__range]))"#,
            r#"sum(rate(tap_uprobe_hits_total[5m])) / sum(rate(tap_exchanges_total[5m]))"#,
            r#"max without (instance) (tap_uprobe_count{job="otel-agent"})"#,
            r#"rate(tap_export_failures_total{tap_signal="traces"}[${__rate_interval}]) > 0"#,
        ] {
            check_expr(expr).unwrap_or_else(|e| panic!("{expr}: {e:?}"));
        }
    }

    #[test]
    fn the_checker_rejects_wrong_names_kinds_and_labels() {
        let cases: &[(&str, &str)] = &[
            ("rate(tap_exchange_total[5m])", "no metric of the agent"),
            ("rate(tap_exchanges[5m])", "is a Counter"),
            ("tap_uprobe_count_total", "not a counter"),
            ("rate(tap_drops_total[5m])", "no metric of the agent"),
            ("rate(tap_dropped_spans_bucket[5m])", "histogram suffix _bucket"),
            ("rate(http_server_request_duration_bucket[5m])", "no metric of the agent"),
            ("rate(http_server_request_duration_seconds_total[5m])", "not a counter"),
            ("rate(http.server.request.duration[5m])", "dots into underscores"),
            ("sum by (tap_drop_reasons) (rate(tap_dropped_events_total[5m]))", "label `tap_drop_reasons`"),
            ("sum by (http_request_method) (rate(tap_dropped_events_total[5m]))", "label `http_request_method`"),
            ("sum by (le) (rate(tap_dropped_events_total[5m]))", "label `le`"),
            ("sum by (le) (rate(http_server_request_duration_seconds_count[5m]))", "label `le`"),
            (r#"rate(http_server_request_duration_seconds_count{http_method="GET"}[5m])"#, "label `http_method`"),
            (
                "sum by (tap_signal) (rate(tap_export_failures_total[5m])) / sum by (tap_signal) (rate(tap_dropped_events_total[5m]))",
                "label `tap_signal`",
            ),
            ("rates(tap_dropped_events_total[5m])", "unknown function `rates`"),
            ("sum(rate(tap_dropped_events_total{tap_drop_reason=\"x\"[5m]))", "unbalanced"),
            ("vector(1)", "no metric"),
        ];
        for (expr, why) in cases {
            match check_expr(expr) {
                Ok(c) => panic!("{expr}: accepted ({c:?}), expected {why:?}"),
                Err(errors) => assert!(
                    errors.iter().any(|e| e.contains(why)),
                    "{expr}: errors {errors:?} do not mention {why:?}"
                ),
            }
        }
    }
}
