//! The README links every example file, and docs/troubleshooting.md covers the checklist and its links resolve.

use examples_check::files::{example_files, read, repo};

/// Every example file must be linked from the README by its path (`examples/...`).
/// When this fails, the message lists the markdown lines to add.
///
/// Not linked yet when this test was written (README.md is edited separately): every
/// file under examples/ — Dockerfile, Dockerfile.dockerignore, compose.yaml,
/// grafana-dashboard.json, grafana/provisioning/dashboards/dashboards.yaml,
/// grafana/provisioning/datasources/datasources.yaml, kubernetes/daemonset.yaml,
/// otel-agent.yaml, otel-collector.yaml, prometheus.yml, systemd/otel-agent.service,
/// tempo.yaml.
#[test]
fn readme_links_every_example_file() {
    let readme = read("README.md");
    let missing: Vec<String> = example_files()
        .into_iter()
        .filter(|rel| !readme.contains(rel.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md does not mention these example files; add for example:\n{}",
        missing
            .iter()
            .map(|rel| format!("- [`{rel}`]({rel})"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn troubleshooting_covers_the_checklist_and_export() {
    let doc = read("docs/troubleshooting.md");
    for needle in [
        "got_tls_client_hello",
        "tls_version",
        "l7_protocol",
        "tls_probe_types",
        "data_events",
        "bytes_sent",
        "bytes_received",
        "got_protocol_event",
        "--trace-events",
        "module=tls",
        "pid=",
        "exe=",
        "tap.export.failures",
        "tap.dropped.events",
        "tap.dropped.spans",
        "queue_full",
        "No spans in Jaeger or Tempo",
    ] {
        assert!(
            doc.contains(needle),
            "docs/troubleshooting.md lacks {needle:?}"
        );
    }
    // Relative links to example files resolve.
    for (i, _) in doc.match_indices("](../examples/") {
        let rest = &doc[i + 5..];
        let end = rest.find(')').expect("closing parenthesis");
        let target = &rest[..end];
        assert!(repo().join(target).exists(), "broken link {target}");
    }
}
