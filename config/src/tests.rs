//! Loading: defaults, positions of every kind of error, garbage, the example file.

use super::*;

/// `(line, column, message)` of a refused file.
fn err(yaml: &str) -> (u64, u64, String) {
    match from_yaml_str(yaml, "config.yaml") {
        Ok(s) => panic!("accepted: {yaml:?} -> {s:?}"),
        Err(e) => {
            let text = e.to_string();
            let (line, column) = e
                .position()
                .unwrap_or_else(|| panic!("no position: {text}"));
            assert!(
                text.starts_with(&format!("config.yaml:{line}:{column}: ")),
                "{text}"
            );
            assert!(!text.contains('\n'), "one line: {text}");
            (line, column, e.message())
        }
    }
}

fn ok(yaml: &str) -> Settings {
    from_yaml_str(yaml, "config.yaml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn defaults_round_trip() {
    assert_eq!(default_settings(), Settings::default());
    assert_eq!(ok(""), Settings::default());
    assert_eq!(ok("# nothing\n"), Settings::default());
    assert_eq!(ok("~\n"), Settings::default());
    assert_eq!(ok("capture:\nfilters: ~\n"), Settings::default());
}

#[test]
fn defaults_are_usable() {
    let s = Settings::default();
    assert!(s.exporters.stdout_enabled() && !s.exporters.otlp_enabled());
    assert_eq!(s.capture.level, CaptureLevel::Details);
    assert!(s.capture.is_redacted("Cookie"));
    assert!(s.filter.process_allowed(1, "/usr/bin/curl", "curl"));
    assert!(s.filter.kernel_pids().is_empty());
    assert_eq!(
        check_ring_buffer(u64::from(s.limits.ring_buffer_bytes)),
        Ok(s.limits.ring_buffer_bytes)
    );
}

#[test]
fn unknown_key_top_level() {
    let (l, c, m) = err("capture:\n  level: full\nexporter:\n  stdout: on\n");
    assert_eq!((l, c), (3, 1));
    assert_eq!(
        m,
        "unknown field \"exporter\", expected one of exporters, resource, capture, filters, redaction, limits, telemetry"
    );
}

#[test]
fn unknown_key_nested() {
    let yaml = "capture:\n  level: full\n  levl: none\n";
    let e = from_yaml_str(yaml, "config.yaml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.yaml:3:3: unknown field \"levl\", expected one of level, body_limit, decompress, sample, rules"
    );
    let (l, c, m) =
        err("filters:\n  processes:\n    include:\n      - exe: curl\n        cmd: x\n");
    assert_eq!((l, c), (5, 9));
    assert!(
        m.contains("unknown field \"cmd\", expected one of exe, comm, pid"),
        "{m}"
    );
    let (l, c, m) = err("capture:\n  rules:\n    - when:\n        path: {glob: \"/a*\"}\n");
    assert_eq!((l, c), (4, 16));
    assert!(
        m.contains("expected one of exact, prefix, suffix, regex"),
        "{m}"
    );
}

#[test]
fn wrong_type() {
    // A list where a scalar belongs: reported at its key.
    let (l, c, m) = err("capture:\n  body_limit: [1, 2]\n");
    assert_eq!((l, c), (2, 3));
    assert!(m.contains("expected") && m.contains("size"), "{m}");
    let (l, c, m) = err("limits:\n  export_queue: lots\n");
    assert_eq!((l, c), (2, 17));
    assert!(m.contains("expected a non-negative integer"), "{m}");
    let (l, c, m) = err("filters:\n  ignore_loopback: yes\n");
    assert_eq!((l, c), (2, 20));
    assert!(m.contains("true or false"), "{m}");
    let (l, c, m) = err("exporters: 3\n");
    assert_eq!((l, c), (1, 12));
    assert!(m.contains("expected a mapping"), "{m}");
    let (l, c, m) = err("filters:\n  processes:\n    include: curl\n");
    assert_eq!((l, c), (3, 14));
    assert!(m.contains("expected a list"), "{m}");
}

#[test]
fn bad_regex() {
    let yaml = "capture:\n  rules:\n    - when:\n        path:\n          regex: \"^/api/(v1|v2\"\n      level: full\n";
    let (l, c, m) = err(yaml);
    assert_eq!((l, c), (5, 18));
    assert!(m.starts_with("invalid regex \"^/api/(v1|v2\": "), "{m}");
    let (l, c, _) = err("filters:\n  processes:\n    exclude:\n      - comm: {regex: \"[\"}\n");
    assert_eq!((l, c), (4, 23));
}

#[test]
fn ratio_out_of_range() {
    let (l, c, m) = err("capture:\n  rules:\n    - level: full\n      sample: 2.0\n");
    assert_eq!((l, c), (4, 15));
    assert!(
        m.contains("sampling ratio 2 is out of range: expected a number from 0.0"),
        "{m}"
    );
    let (l, c, _) = err("capture:\n  sample: -0.5\n");
    assert_eq!((l, c), (2, 11));
    let (l, c, m) = err("capture:\n  sample: .nan\n");
    assert_eq!((l, c), (2, 11));
    assert!(m.contains("out of range"), "{m}");
}

#[test]
fn bad_status_range() {
    let (l, c, m) = err("capture:\n  rules:\n    - when: {status: [404, \"600-100\"]}\n");
    assert_eq!((l, c), (3, 28));
    assert!(
        m.contains("status 600 in \"600-100\" is not an HTTP status code"),
        "{m}"
    );
    let (l, c, m) = err("capture:\n  rules:\n    - when:\n        status: 599-500\n");
    assert_eq!((l, c), (4, 17));
    assert!(m.contains("is empty (599 > 500)"), "{m}");
    let (l, c, _) = err("capture:\n  rules:\n    - when:\n        status: 1000\n");
    assert_eq!((l, c), (4, 17));
}

#[test]
fn bad_level() {
    let (l, c, m) = err("capture:\n  level: verbose\n");
    assert_eq!((l, c), (2, 10));
    assert_eq!(
        m,
        "unknown capture level \"verbose\": expected one of none, summary, details, full"
    );
    let (l, c, _) = err("capture:\n  rules:\n    - level: everything\n");
    assert_eq!((l, c), (3, 14));
}

#[test]
fn ring_buffer_not_power_of_two() {
    let (l, c, m) = err("limits:\n  ring_buffer: 3MiB\n");
    assert_eq!((l, c), (2, 16));
    assert!(
        m.contains("is not a power of two") && m.contains("2MiB or 4MiB"),
        "{m}"
    );
    let (l, c, _) = err("limits:\n  ring_buffer: 2048\n");
    assert_eq!((l, c), (2, 16));
    let (l, c, m) = err("limits:\n  max_event_payload: 16KiB\n  ring_buffer: 16KiB\n");
    assert_eq!((l, c), (3, 16));
    assert!(m.contains("expected at least 32KiB"), "{m}");
    assert_eq!(
        ok("limits:\n  ring_buffer: 4MiB\n")
            .limits
            .ring_buffer_bytes,
        4 << 20
    );
    assert_eq!(
        ok("limits:\n  ring_buffer: 65536\n")
            .limits
            .ring_buffer_bytes,
        65536
    );
}

#[test]
fn other_impossible_values() {
    let cases: &[(&str, (u64, u64), &str)] = &[
        (
            "exporters:\n  otlp:\n    protocol: http/json\n",
            (3, 15),
            "not supported",
        ),
        (
            "exporters:\n  otlp:\n    endpoint: localhost:4317\n",
            (3, 15),
            "http:// or https://",
        ),
        (
            "exporters:\n  otlp:\n    compression: zstd\n",
            (3, 18),
            "expected gzip or none",
        ),
        (
            "exporters:\n  otlp:\n    timeout: 0\n",
            (3, 14),
            "positive duration",
        ),
        (
            "exporters:\n  otlp:\n    timeout: soon\n",
            (3, 14),
            "expected a duration",
        ),
        (
            "telemetry:\n  known_methods: [GET, \"NOT A METHOD\"]\n",
            (2, 24),
            "invalid HTTP method",
        ),
        (
            "exporters:\n  stdout: sometimes\n",
            (2, 11),
            "auto, on, off",
        ),
        (
            "exporters:\n  otlp:\n    tls:\n      cert_file: /c.pem\n",
            (4, 7),
            "needs its key",
        ),
        (
            "exporters:\n  otlp:\n    headers:\n      \"bad header\": x\n",
            (4, 7),
            "invalid header name",
        ),
        (
            "resource:\n  service_name: checkout\n",
            (2, 17),
            "{fixed: NAME}",
        ),
        (
            "resource:\n  service_name: {fixed: \"\"}\n",
            (2, 25),
            "empty string",
        ),
        (
            "resource:\n  attributes:\n    service.name: x\n",
            (3, 5),
            "resource.service_name",
        ),
        ("capture:\n  body_limit: 2GiB\n", (2, 15), "out of range"),
        (
            "capture:\n  body_limit: 12 parsecs\n",
            (2, 15),
            "invalid size",
        ),
        (
            "capture:\n  rules:\n    - when: {method: []}\n",
            (3, 22),
            "empty list for \"method\"",
        ),
        (
            "capture:\n  rules:\n    - when: {method: \"GE T\"}\n",
            (3, 22),
            "invalid method",
        ),
        (
            "filters:\n  direction: inbound\n",
            (2, 14),
            "ingress, egress, all",
        ),
        (
            "filters:\n  processes:\n    include:\n      - {}\n",
            (4, 9),
            "empty process matcher",
        ),
        (
            "filters:\n  processes:\n    include:\n      - pid: 0\n",
            (4, 14),
            "pid 0 is out of range",
        ),
        (
            "filters:\n  ports:\n    include: [80, 70000]\n",
            (3, 19),
            "invalid port",
        ),
        (
            "filters:\n  ports:\n    exclude: [\"90-80\"]\n",
            (3, 15),
            "is empty",
        ),
        (
            "redaction:\n  headers: [\"x-ok\", \"\"]\n",
            (2, 21),
            "invalid header name",
        ),
        (
            "redaction:\n  query_params: [\"a=b\"]\n",
            (2, 18),
            "invalid query parameter",
        ),
        (
            "limits:\n  max_event_payload: 32KiB\n",
            (2, 22),
            "out of range",
        ),
        ("limits:\n  max_connections: 10\n", (2, 20), "out of range"),
        ("limits:\n  export_queue: 0\n", (2, 17), "out of range"),
        ("limits:\n  max_header_bytes: 10\n", (2, 21), "out of range"),
        (
            "limits:\n  max_metric_processes: 70000\n",
            (2, 25),
            "out of range",
        ),
        (
            "limits:\n  metric_process_idle: 500ms\n",
            (2, 24),
            "at least 1s",
        ),
        (
            "capture:\n  level: full\n  level: none\n",
            (3, 3),
            "duplicate",
        ),
    ];
    for (yaml, pos, needle) in cases {
        let (l, c, m) = err(yaml);
        assert_eq!((l, c), *pos, "{yaml:?}: {m}");
        assert!(m.contains(needle), "{yaml:?}: {m:?} lacks {needle:?}");
    }
}

#[test]
fn rules_and_filters_from_yaml() {
    let s = ok(r#"
capture:
  level: summary
  rules:
    - name: health
      when: {path: /health}
      level: none
    - when:
        host: {suffix: .Example.COM}
        method: [post, PUT]
        status: 5xx
      level: full
      sample: 0.25
    - when:
        exe: {regex: "python3\\.\\d+$"}
        path: {regex: "^/v[0-9]+/"}
      level: details
filters:
  direction: egress
  processes:
    include:
      - pid: [10, 11]
      - exe: /usr/bin/curl
        comm: curl
    exclude:
      - comm: {prefix: kube}
  ports:
    include: [80, 443, "8000-8099"]
    exclude: [8081]
  ignore_loopback: true
"#);
    let c = &s.capture;
    let ctx = |host, path, method, status, exe| RuleContext {
        host: Some(host),
        path,
        method,
        status,
        exe,
    };
    assert_eq!(c.rules[0].name.as_deref(), Some("health"));
    assert_eq!(
        c.level_for(&ctx("a", "/healthz", "GET", None, "")),
        (CaptureLevel::None, 1.0)
    );
    assert_eq!(
        s.level_for(|| ctx("api.example.com:8443", "/x", "POST", Some(502), "")),
        (CaptureLevel::Full, 0.25)
    );
    assert_eq!(
        c.level_for(&ctx("api.example.com", "/x", "GET", Some(502), ""))
            .0,
        CaptureLevel::Summary
    );
    assert_eq!(
        c.level_for(&ctx("h", "/v2/x", "GET", None, "/usr/bin/python3.12"))
            .0,
        CaptureLevel::Details
    );
    assert_eq!(
        c.level_for(&ctx("h", "/v2/x", "GET", None, "/usr/bin/python3"))
            .0,
        CaptureLevel::Summary
    );

    // Without rules the context is never built.
    let mut plain = Settings::default();
    plain.capture.sample_ratio = 0.5;
    assert_eq!(
        plain.level_for(|| unreachable!("no rule to match")),
        (plain.capture.level, 0.5)
    );

    let f = &s.filter;
    assert_eq!(f.direction, DirectionFilter::Egress);
    assert!(f.ignore_loopback);
    assert!(f.process_allowed(10, "/bin/sh", "sh"));
    assert!(f.process_allowed(99, "/usr/bin/curl", "curl"));
    assert!(!f.process_allowed(99, "/usr/bin/curl", "curl-wrapper"));
    assert!(!f.process_allowed(11, "/bin/kubelet", "kubelet"));
    assert!(f.kernel_pids().is_empty(), "include is not pid-only");
    assert!(f.port_allowed(8050) && !f.port_allowed(8081) && !f.port_allowed(22));
}

#[test]
fn known_methods_from_yaml_replace_the_defaults() {
    let s = ok("telemetry:\n  known_methods: [GET, PROPFIND, GET]\n");
    assert_eq!(s.telemetry.known_methods, ["GET", "PROPFIND"]);
    let s = ok("telemetry:\n  known_methods: []\n");
    assert!(s.telemetry.known_methods.is_empty());
    assert!(Settings::default()
        .telemetry
        .known_methods
        .contains(&"QUERY".to_string()));
}

#[test]
fn opt_in_telemetry_is_off_by_default_and_switchable() {
    let d = Settings::default().telemetry;
    assert!(d.span_request_headers.is_empty() && d.span_response_headers.is_empty());
    assert!(!d.body_size_metrics && !d.server_address_on_server_metrics);
    let s = ok(r#"
telemetry:
  span_headers:
    request: [Content-Type, X-Request-Id, content-type]
    response: [Content-Length]
  metrics:
    body_size: true
    server_address: true
"#);
    let t = s.telemetry;
    assert_eq!(t.span_request_headers, ["content-type", "x-request-id"]);
    assert_eq!(t.span_response_headers, ["content-length"]);
    assert!(t.body_size_metrics && t.server_address_on_server_metrics);
    // One switch alone leaves the other at its default.
    let t = ok("telemetry:\n  metrics: {body_size: true}\n").telemetry;
    assert!(t.body_size_metrics && !t.server_address_on_server_metrics);
    let (l, c, m) = err("telemetry:\n  span_headers:\n    request: [\"bad header\"]\n");
    assert_eq!((l, c), (3, 15));
    assert!(m.contains("invalid header name"), "{m}");
    let (l, _, m) = err("telemetry:\n  metrics:\n    body_sizes: true\n");
    assert_eq!(l, 3);
    assert!(m.contains("unknown field"), "{m}");
}

#[test]
fn client_spans_from_a_traceparent_are_exported_unless_skipped() {
    use crate::ClientSpanFromTraceparent as P;
    assert_eq!(
        Settings::default().telemetry.client_span_from_traceparent,
        P::Export
    );
    let t = ok("telemetry:\n  client_span_from_traceparent: skip\n").telemetry;
    assert_eq!(t.client_span_from_traceparent, P::Skip);
    let t = ok("telemetry:\n  client_span_from_traceparent: export\n").telemetry;
    assert_eq!(t.client_span_from_traceparent, P::Export);
    let (l, c, m) = err("telemetry:\n  client_span_from_traceparent: drop\n");
    assert_eq!((l, c), (2, 33));
    assert!(m.contains("expected export or skip"), "{m}");
}

#[test]
fn redaction_extends_or_replaces() {
    let s = ok("redaction:\n  headers: [X-Secret]\n  query_params: [session]\n");
    assert!(s.capture.is_redacted("x-secret") && s.capture.is_redacted("authorization"));
    assert_eq!(
        s.redact_query("session=1&token=2&q=3"),
        "session=REDACTED&token=REDACTED&q=3"
    );
    let s = ok("redaction:\n  replace_defaults: true\n  headers: [x-secret]\n");
    assert!(s.capture.is_redacted("x-secret") && !s.capture.is_redacted("authorization"));
    assert_eq!(s.redact_query("token=2"), "token=2");
}

#[test]
fn exporters_from_yaml() {
    let s = ok(r#"
exporters:
  stdout: on
  signals: {logs: false}
  otlp:
    endpoint: https://collector.example:4317
    protocol: grpc
    headers: {Authorization: "Bearer x", x-tenant: 42}
    tls: {ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem}
    timeout: 1500ms
    compression: gzip
resource:
  service_name: {fixed: checkout}
  attributes: {deployment.environment: prod}
"#);
    let e = &s.exporters;
    assert_eq!(e.protocol, Protocol::Grpc);
    assert_eq!(
        e.export_endpoint(Signal::Traces).as_deref(),
        Some("https://collector.example:4317")
    );
    assert_eq!(e.export_endpoint(Signal::Logs), None);
    assert_eq!(
        e.headers.get("authorization").map(String::as_str),
        Some("Bearer x")
    );
    assert_eq!(e.headers.get("x-tenant").map(String::as_str), Some("42"));
    assert_eq!(e.timeout, std::time::Duration::from_millis(1500));
    assert_eq!(e.compression, Compression::Gzip);
    assert!(e.stdout_enabled() && e.otlp_enabled());
    assert_eq!(s.resource.service_name_for("/usr/bin/x"), "checkout");
    assert_eq!(
        s.resource
            .attributes
            .get("deployment.environment")
            .map(String::as_str),
        Some("prod")
    );
}

#[test]
fn garbage_never_panics() {
    // Truncations of a valid file, and a deterministic stream of random bytes.
    let example = include_str!("../../examples/otel-agent.yaml");
    for cut in (0..example.len()).step_by(7) {
        if example.is_char_boundary(cut) {
            let _ = from_yaml_str(&example[..cut], "cut.yaml");
        }
    }
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"abc:-[]{}#&*!|>'\"%@`,? \n\t0123456789.~\\";
    for _ in 0..400 {
        let len = (next() % 200) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| (next() & 0xff) as u8).collect();
        if let Ok(text) = utf8(&bytes, "r.yaml") {
            let _ = from_yaml_str(text, "r.yaml");
        }
        let text: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
            .collect();
        if let Err(e) = from_yaml_str(&text, "r.yaml") {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
    for nasty in [
        "a: &a [*a]\n",
        "x: !!binary AAAA\n",
        "capture: {level: full\n",
        "---\n---\n",
        "capture:\n  rules:\n    - when: {status: [\"5xx\", -1]}\n",
        "limits: {ring_buffer: 99999999999999999999999}\n",
        "\u{feff}capture: {level: full}\n",
    ] {
        let _ = from_yaml_str(nasty, "n.yaml");
    }
}

#[test]
fn invalid_utf8_has_a_position() {
    let dir = std::env::temp_dir().join(format!("otel-agent-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(&path, b"capture:\n  level: f\xffull\n").unwrap();
    let e = load_file(&path).unwrap_err();
    assert_eq!(e.position(), Some((2, 11)), "{e}");
    let missing = load_file(dir.join("missing.yaml")).unwrap_err();
    assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
    std::fs::write(&path, "filters:\n  direction: ingress\n").unwrap();
    assert_eq!(
        load_file(&path).unwrap().filter.direction,
        DirectionFilter::Ingress
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn example_file_parses() {
    let s = from_yaml_str(
        include_str!("../../examples/otel-agent.yaml"),
        "otel-agent.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!s.capture.rules.is_empty());
    assert!(!s.filter.include.is_empty() || !s.filter.exclude.is_empty());
    assert!(s.telemetry.known_methods.contains(&"PROPFIND".to_string()));
    assert_eq!(
        s.telemetry.span_request_headers,
        ["content-type", "x-request-id"]
    );
    assert!(s.telemetry.body_size_metrics && !s.telemetry.server_address_on_server_metrics);
    assert_eq!(
        s.telemetry.trace_links,
        crate::TraceLinks {
            wait: std::time::Duration::from_secs(2),
            max_held: 20_000
        }
    );
    assert_ne!(s, Settings::default());
}

#[test]
fn per_process_metric_limits() {
    let d = Settings::default();
    assert_eq!(d.limits.max_metric_processes, 256);
    assert_eq!(
        d.limits.metric_process_idle,
        std::time::Duration::from_secs(600)
    );
    let s = ok("limits:\n  max_metric_processes: 2\n  metric_process_idle: 3s\n");
    assert_eq!(s.limits.max_metric_processes, 2);
    assert_eq!(
        s.limits.metric_process_idle,
        std::time::Duration::from_secs(3)
    );
    // 0: every process's metrics under the agent's resource.
    assert_eq!(
        ok("limits:\n  max_metric_processes: 0\n")
            .limits
            .max_metric_processes,
        0
    );
}

#[test]
fn trace_links_wait_and_hold_bounds() {
    let d = Settings::default().telemetry.trace_links;
    assert_eq!(
        (d.wait, d.max_held),
        (std::time::Duration::from_secs(1), 2_000)
    );
    let t = ok("telemetry:\n  trace_links:\n    wait: 250ms\n    max_held: 7\n").telemetry;
    assert_eq!(
        (t.trace_links.wait, t.trace_links.max_held),
        (std::time::Duration::from_millis(250), 7)
    );
    let (l, _, m) = err("telemetry:\n  trace_links:\n    wait: 5m\n");
    assert_eq!(l, 3);
    assert!(m.contains("at most 60s"), "{m}");
    let (l, _, _) = err("telemetry:\n  trace_links:\n    hold: 1\n");
    assert_eq!(l, 3);
}

#[test]
fn span_shedding_is_on_by_default_and_can_be_turned_off() {
    assert!(Settings::default().limits.shed_spans);
    assert!(!ok("limits:\n  shed_spans: false\n").limits.shed_spans);
    let (_, _, m) = err("limits:\n  shed_spans: sometimes\n");
    assert!(m.contains("expected true or false"), "{m}");
}
