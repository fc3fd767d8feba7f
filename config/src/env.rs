//! The standard OpenTelemetry environment variables, over the file.
//!
//! Precedence, highest first: CLI flags (applied by the agent afterwards),
//! the environment, the file, the embedded default. Within one layer a
//! per-signal endpoint wins over the generic one; across layers the higher
//! layer wins, so `OTEL_EXPORTER_OTLP_ENDPOINT` replaces the file's generic
//! *and* per-signal endpoints, and `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`
//! then wins over it for its signal. An empty variable counts as unset.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::ConfigError;
use crate::exporters::{ExporterSettings, ResourceSettings, ServiceName, Signal, StdoutMode};
use crate::{Compression, Protocol, Settings};

/// Every variable [`apply_env`] reads.
pub const ENV_VARS: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
];

/// Apply the OpenTelemetry environment variables to `settings` (which holds
/// the file's values). `env` looks a variable up (`|k| std::env::var(k).ok()`
/// in the agent; a map in tests). A value that cannot be used is refused with
/// the variable's name and the expected form.
///
/// - `OTEL_SDK_DISABLED`: `true` turns all export off, `false` on.
/// - `OTEL_EXPORTER_OTLP_ENDPOINT` / `..._{TRACES,METRICS,LOGS}_ENDPOINT`:
///   see the module doc for precedence; resolve with
///   [`ExporterSettings::endpoint_for`](crate::ExporterSettings::endpoint_for).
/// - `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`.
/// - `OTEL_EXPORTER_OTLP_HEADERS`: `k=v,k2=v2`, percent-decoded, over the file's headers.
/// - `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), `..._COMPRESSION`, `..._CERTIFICATE`,
///   `..._CLIENT_CERTIFICATE`, `..._CLIENT_KEY`, `..._INSECURE`.
/// - `OTEL_SERVICE_NAME`: a fixed `service.name`, over the file and over a
///   `service.name` in `OTEL_RESOURCE_ATTRIBUTES`.
/// - `OTEL_RESOURCE_ATTRIBUTES`: `k=v,...`, percent-decoded, merged over the
///   file's attributes (a `service.name` there sets a fixed service name).
/// - `OTEL_{TRACES,METRICS,LOGS}_EXPORTER`: `otlp` turns the signal on, `none`
///   off, `console` turns stdout on.
/// - `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`: comma-separated, case-sensitive
///   HTTP methods that replace the known methods
///   ([`TelemetrySettings::known_methods`](crate::TelemetrySettings::known_methods))
///   entirely, as the semantic conventions ask (a full override, not an addition).
pub fn apply_env(
    settings: &mut Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    exporters_env(&mut settings.exporters, &get)?;
    resource_env(&mut settings.resource, &get)?;
    if let Some(v) = get("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS") {
        settings.telemetry.known_methods = crate::telemetry::parse_known_methods(&v)
            .map_err(|m| ConfigError::env("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", m))?;
    }
    Ok(())
}

/// The `OTEL_EXPORTER_OTLP_*`, `OTEL_SDK_DISABLED` and `OTEL_*_EXPORTER` variables.
fn exporters_env(
    ex: &mut ExporterSettings,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if let Some(v) = get("OTEL_SDK_DISABLED") {
        ex.enabled = !parse_bool("OTEL_SDK_DISABLED", &v)?;
    }
    if let Some(v) = get("OTEL_EXPORTER_OTLP_PROTOCOL") {
        ex.protocol = v
            .parse::<Protocol>()
            .map_err(|m| ConfigError::env("OTEL_EXPORTER_OTLP_PROTOCOL", m))?;
    }
    if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        check_endpoint(&v).map_err(|m| ConfigError::env("OTEL_EXPORTER_OTLP_ENDPOINT", m))?;
        ex.override_endpoint(v.trim());
    }
    for signal in Signal::ALL {
        let var = format!(
            "OTEL_EXPORTER_OTLP_{}_ENDPOINT",
            signal.as_str().to_ascii_uppercase()
        );
        if let Some(v) = get(&var) {
            check_endpoint(&v).map_err(|m| ConfigError::env(&var, m))?;
            ex.signal_endpoints.set(signal, Some(v.trim().to_string()));
        }
    }
    if let Some(v) = get("OTEL_EXPORTER_OTLP_HEADERS") {
        for (k, val) in
            parse_key_values(&v).map_err(|m| ConfigError::env("OTEL_EXPORTER_OTLP_HEADERS", m))?
        {
            check_header_name(&k).map_err(|m| ConfigError::env("OTEL_EXPORTER_OTLP_HEADERS", m))?;
            ex.headers.insert(k.to_ascii_lowercase(), val);
        }
    }
    if let Some(v) = get("OTEL_EXPORTER_OTLP_TIMEOUT") {
        let ms: u64 = v.trim().parse().map_err(|_| {
            ConfigError::env(
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                format!("invalid timeout {v:?}: expected an integer number of milliseconds"),
            )
        })?;
        ex.timeout = std::time::Duration::from_millis(ms);
    }
    if let Some(v) = get("OTEL_EXPORTER_OTLP_COMPRESSION") {
        ex.compression = v
            .parse::<Compression>()
            .map_err(|m| ConfigError::env("OTEL_EXPORTER_OTLP_COMPRESSION", m))?;
    }
    if let Some(v) = get("OTEL_EXPORTER_OTLP_CERTIFICATE") {
        ex.tls.ca_file = Some(PathBuf::from(v));
    }
    let cert = get("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE");
    let key = get("OTEL_EXPORTER_OTLP_CLIENT_KEY");
    if let Some(v) = cert {
        ex.tls.cert_file = Some(PathBuf::from(v));
    }
    if let Some(v) = key {
        ex.tls.key_file = Some(PathBuf::from(v));
    }
    if ex.tls.cert_file.is_some() != ex.tls.key_file.is_some() {
        let var = if ex.tls.cert_file.is_some() {
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
        } else {
            "OTEL_EXPORTER_OTLP_CLIENT_KEY"
        };
        return Err(ConfigError::env(
            var,
            "a client certificate needs its key: set both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY",
        ));
    }
    if let Some(v) = get("OTEL_EXPORTER_OTLP_INSECURE") {
        ex.tls.insecure = parse_bool("OTEL_EXPORTER_OTLP_INSECURE", &v)?;
    }
    signal_exporters_env(ex, get)
}

/// `OTEL_{TRACES,METRICS,LOGS}_EXPORTER`.
fn signal_exporters_env(
    ex: &mut ExporterSettings,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for signal in Signal::ALL {
        let var = format!("OTEL_{}_EXPORTER", signal.as_str().to_ascii_uppercase());
        if let Some(v) = get(&var) {
            for item in v.split(',').map(str::trim) {
                match item {
                    "otlp" => ex.signals.set(signal, true),
                    "none" => ex.signals.set(signal, false),
                    "console" => ex.stdout = StdoutMode::On,
                    other => {
                        return Err(ConfigError::env(
                            &var,
                            format!(
                                "unsupported exporter {other:?}: expected otlp, console or none"
                            ),
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

/// `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME`.
fn resource_env(
    res: &mut ResourceSettings,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
        for (k, val) in
            parse_key_values(&v).map_err(|m| ConfigError::env("OTEL_RESOURCE_ATTRIBUTES", m))?
        {
            if k == "service.name" {
                if val.is_empty() {
                    return Err(ConfigError::env(
                        "OTEL_RESOURCE_ATTRIBUTES",
                        "empty service.name: expected a non-empty name",
                    ));
                }
                res.service_name = ServiceName::Fixed(val);
            } else {
                res.attributes.insert(k, val);
            }
        }
    }
    if let Some(v) = get("OTEL_SERVICE_NAME") {
        res.service_name = ServiceName::Fixed(v.trim().to_string());
    }
    Ok(())
}

/// `true`/`false`, case-insensitive.
fn parse_bool(var: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::env(
            var,
            format!("invalid boolean {v:?}: expected true or false"),
        )),
    }
}

/// An endpoint must be an `http://` or `https://` URL with a host.
pub(crate) fn check_endpoint(url: &str) -> Result<(), String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("invalid endpoint {url:?}: expected an http:// or https:// URL, e.g. http://localhost:4318")
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err(format!(
            "invalid endpoint {url:?}: expected a host after the scheme, e.g. http://localhost:4318"
        ));
    }
    Ok(())
}

/// An HTTP header name: a non-empty token.
pub(crate) fn check_header_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid header name {name:?}: expected letters, digits and !#$%&'*+-.^_`|~"
        ))
    }
}

/// `k=v,k2=v2` (W3C baggage-like, as OTel uses it): entries split on `,`,
/// key and value trimmed and percent-decoded; an entry without `=` or with
/// an empty key is refused; empty entries are skipped.
pub(crate) fn parse_key_values(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for entry in text.split(',') {
        if entry.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = entry.split_once('=') else {
            return Err(format!(
                "entry {:?} has no \"=\": expected key=value pairs separated by commas",
                entry.trim()
            ));
        };
        let k = percent_decode(k.trim());
        if k.is_empty() {
            return Err(format!(
                "entry {:?} has an empty key: expected key=value pairs separated by commas",
                entry.trim()
            ));
        }
        out.insert(k, percent_decode(v.trim()));
    }
    Ok(out)
}

/// `%XX` decoded (invalid escapes kept as written; invalid UTF-8 replaced).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporters::Signal;
    use crate::from_yaml_str;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn with(yaml: &str, env: &[(&str, &str)]) -> Settings {
        let mut s = from_yaml_str(yaml, "t.yaml").unwrap();
        apply_env(&mut s, &env_of(env)).unwrap();
        s
    }

    fn env_err(env: &[(&str, &str)]) -> String {
        let mut s = Settings::default();
        apply_env(&mut s, &env_of(env)).unwrap_err().to_string()
    }

    const FILE: &str = "exporters:\n  otlp:\n    endpoint: http://file:4318\n    protocol: http/protobuf\n    headers: {x-team: web, x-env: file}\nresource:\n  service_name: {fixed: from-file}\n  attributes: {deployment.environment: file, team: web}\n";

    #[test]
    fn precedence_table() {
        // File only.
        let s = with(FILE, &[]);
        assert_eq!(
            s.exporters.endpoint_for(Signal::Traces).as_deref(),
            Some("http://file:4318/v1/traces")
        );
        assert_eq!(
            s.resource.service_name,
            ServiceName::Fixed("from-file".into())
        );
        // Env only.
        let s = with(
            "",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
        );
        assert_eq!(
            s.exporters.endpoint_for(Signal::Metrics).as_deref(),
            Some("http://env:4318")
        );
        assert_eq!(s.exporters.protocol, Protocol::Grpc);
        // Both: env wins.
        let s = with(
            FILE,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318/"),
                ("OTEL_SERVICE_NAME", "from-env"),
            ],
        );
        assert_eq!(
            s.exporters.endpoint_for(Signal::Logs).as_deref(),
            Some("http://env:4318/v1/logs")
        );
        assert_eq!(
            s.resource.service_name,
            ServiceName::Fixed("from-env".into())
        );
        // Empty values count as unset.
        let s = with(
            FILE,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
                ("OTEL_SERVICE_NAME", " "),
            ],
        );
        assert_eq!(s.exporters.endpoint.as_deref(), Some("http://file:4318"));
        assert_eq!(
            s.resource.service_name,
            ServiceName::Fixed("from-file".into())
        );
    }

    #[test]
    fn per_signal_over_generic() {
        let s = with(
            "",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://gen:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://traces:4318/custom/path",
                ),
            ],
        );
        let e = s.exporters.resolved_endpoints();
        assert_eq!(
            e.traces.as_deref(),
            Some("http://traces:4318/custom/path"),
            "per-signal: as is"
        );
        assert_eq!(e.metrics.as_deref(), Some("http://gen:4318/v1/metrics"));
        assert_eq!(e.logs.as_deref(), Some("http://gen:4318/v1/logs"));
        // A per-signal endpoint alone: only that signal goes out.
        let s = with(
            "",
            &[(
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "https://logs.example/v1/logs",
            )],
        );
        assert_eq!(
            s.exporters.export_endpoint(Signal::Logs).as_deref(),
            Some("https://logs.example/v1/logs")
        );
        assert_eq!(s.exporters.export_endpoint(Signal::Traces), None);
        assert!(!s.exporters.stdout_enabled());
        // The file's per-signal endpoint is below the env's generic one.
        let file = "exporters:\n  otlp:\n    traces_endpoint: http://file/traces\n";
        let s = with(file, &[]);
        assert_eq!(
            s.exporters.endpoint_for(Signal::Traces).as_deref(),
            Some("http://file/traces")
        );
        let s = with(
            file,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
        );
        assert_eq!(
            s.exporters.endpoint_for(Signal::Traces).as_deref(),
            Some("http://env:4317")
        );
    }

    #[test]
    fn headers_parsing() {
        let s = with(
            FILE,
            &[(
                "OTEL_EXPORTER_OTLP_HEADERS",
                "X-Env=env%20value , api-key=a%3Db%2Cc,,",
            )],
        );
        let h = &s.exporters.headers;
        assert_eq!(
            h.get("x-env").map(String::as_str),
            Some("env value"),
            "env wins"
        );
        assert_eq!(h.get("api-key").map(String::as_str), Some("a=b,c"));
        assert_eq!(
            h.get("x-team").map(String::as_str),
            Some("web"),
            "file kept"
        );
        assert!(env_err(&[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")])
            .contains("OTEL_EXPORTER_OTLP_HEADERS: entry \"novalue\" has no \"=\""));
        assert!(env_err(&[("OTEL_EXPORTER_OTLP_HEADERS", "=v")]).contains("empty key"));
        assert!(env_err(&[("OTEL_EXPORTER_OTLP_HEADERS", "bad name=v")])
            .contains("invalid header name"));
    }

    #[test]
    fn sdk_disabled() {
        let s = with(FILE, &[("OTEL_SDK_DISABLED", "TRUE")]);
        assert!(!s.exporters.enabled);
        assert!(!s.exporters.otlp_enabled() && !s.exporters.stdout_enabled());
        let s = with(
            "exporters: {enabled: false}\n",
            &[("OTEL_SDK_DISABLED", "false")],
        );
        assert!(s.exporters.enabled);
        assert!(env_err(&[("OTEL_SDK_DISABLED", "yes")]).contains("expected true or false"));
    }

    #[test]
    fn resource_attributes_merge() {
        let s = with(
            FILE,
            &[(
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod,region=eu%2Dwest",
            )],
        );
        let a = &s.resource.attributes;
        assert_eq!(
            a.get("deployment.environment").map(String::as_str),
            Some("prod")
        );
        assert_eq!(a.get("team").map(String::as_str), Some("web"));
        assert_eq!(a.get("region").map(String::as_str), Some("eu-west"));
        // service.name in the attributes: a fixed name, below OTEL_SERVICE_NAME.
        let s = with("", &[("OTEL_RESOURCE_ATTRIBUTES", "service.name=attr")]);
        assert_eq!(s.resource.service_name, ServiceName::Fixed("attr".into()));
        assert!(!s.resource.attributes.contains_key("service.name"));
        let s = with(
            "",
            &[
                ("OTEL_RESOURCE_ATTRIBUTES", "service.name=attr"),
                ("OTEL_SERVICE_NAME", "svc"),
            ],
        );
        assert_eq!(s.resource.service_name, ServiceName::Fixed("svc".into()));
    }

    #[test]
    fn other_variables() {
        let s = with(
            "",
            &[
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"),
                ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/c.pem"),
                ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/k.pem"),
                ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
                ("OTEL_METRICS_EXPORTER", "none"),
                ("OTEL_LOGS_EXPORTER", "console"),
            ],
        );
        let e = &s.exporters;
        assert_eq!(e.timeout, std::time::Duration::from_millis(2500));
        assert_eq!(e.compression, Compression::Gzip);
        assert_eq!(
            e.tls.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert!(e.tls.insecure && e.tls.key_file.is_some());
        assert!(!e.signals.metrics && e.signals.logs);
        assert_eq!(e.stdout, StdoutMode::On);
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(
            env_err(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]),
            "environment variable OTEL_EXPORTER_OTLP_PROTOCOL: OTLP protocol \"http/json\" is not supported: expected grpc or http/protobuf"
        );
        assert!(
            env_err(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")])
                .contains("expected an http:// or https:// URL")
        );
        assert!(
            env_err(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://")])
                .starts_with("environment variable OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        );
        assert!(env_err(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]).contains("milliseconds"));
        assert!(env_err(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem")]).contains("needs its key"));
        assert!(env_err(&[("OTEL_TRACES_EXPORTER", "zipkin")]).contains("unsupported exporter"));
    }

    #[test]
    fn known_http_methods_variable_replaces_the_list() {
        let s = with("", &[]);
        assert_eq!(s.telemetry.known_methods, crate::DEFAULT_KNOWN_HTTP_METHODS);
        let s = with(
            "",
            &[(
                "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
                "GET, PROPFIND,MKCOL",
            )],
        );
        // A full override, case kept: POST is no longer known.
        assert_eq!(s.telemetry.known_methods, ["GET", "PROPFIND", "MKCOL"]);
        // Over the file's list.
        let s = with(
            "telemetry:\n  known_methods: [GET, POST]\n",
            &[("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", "purge")],
        );
        assert_eq!(s.telemetry.known_methods, ["purge"]);
        // Empty counts as unset, like every variable.
        let s = with(
            "telemetry:\n  known_methods: [GET]\n",
            &[("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", " ")],
        );
        assert_eq!(s.telemetry.known_methods, ["GET"]);
        assert!(
            env_err(&[("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", "GET,NOT A METHOD")])
                .starts_with("environment variable OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS: invalid HTTP method \"NOT A METHOD\"")
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
