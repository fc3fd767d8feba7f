//! Compose files: a service's environment and volumes.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::value::strings;

/// The compose file, relative to the repository.
pub const COMPOSE: &str = "examples/compose.yaml";

/// A compose service's `environment`, map or list form.
pub fn compose_env(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// (source, target, options) of a compose short-syntax volume.
pub fn compose_volumes(service: &Value) -> Vec<(String, String, String)> {
    strings(service.get("volumes").unwrap_or(&Value::Null))
        .iter()
        .map(|v| {
            let mut parts = v.splitn(3, ':');
            let source = parts.next().unwrap_or_default().to_string();
            let target = parts.next().unwrap_or_default().to_string();
            let opts = parts.next().unwrap_or_default().to_string();
            (source, target, opts)
        })
        .collect()
}
