//! The Kubernetes DaemonSet, the systemd unit and the Dockerfile run the agent with what eBPF capture needs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use examples_check::files::read;
use examples_check::systemd::unit_entries;
use examples_check::value::{at, str_at, strings};
use examples_check::yaml::yaml_documents;

#[test]
fn daemonset_runs_the_agent_on_every_node() {
    let rel = "examples/kubernetes/daemonset.yaml";
    let docs = yaml_documents(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let of_kind = |kind: &str| -> &Value {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("{rel}: no {kind}"))
    };
    let ns = str_at(of_kind("Namespace"), &["metadata", "name"]);
    for d in docs.iter().filter(|d| d["kind"] != "Namespace") {
        assert_eq!(str_at(d, &["metadata", "namespace"]), ns, "{}", d["kind"]);
    }
    let ds = of_kind("DaemonSet");
    assert_eq!(str_at(ds, &["apiVersion"]), "apps/v1");
    let pod = at(ds, &["spec", "template", "spec"]);
    assert_eq!(pod["hostPID"], Value::Bool(true));
    assert_eq!(
        str_at(pod, &["serviceAccountName"]),
        str_at(of_kind("ServiceAccount"), &["metadata", "name"])
    );
    let selector = at(ds, &["spec", "selector", "matchLabels"])
        .as_object()
        .expect("matchLabels");
    for (k, v) in selector {
        assert_eq!(
            &ds["spec"]["template"]["metadata"]["labels"][k], v,
            "selector {k}"
        );
    }
    let tolerations = at(pod, &["tolerations"]).as_array().expect("tolerations");
    assert!(
        tolerations
            .iter()
            .any(|t| t["operator"] == "Exists" && t.get("key").is_none()),
        "tolerate every taint"
    );

    let containers = at(pod, &["containers"]).as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = at(c, &["securityContext"]);
    let caps: BTreeSet<String> = strings(&sc["capabilities"]["add"]).into_iter().collect();
    assert!(
        sc["privileged"] == Value::Bool(true)
            || ["BPF", "PERFMON", "SYS_ADMIN"]
                .iter()
                .all(|k| caps.contains(*k)),
        "needs privileged or CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN: {sc}"
    );
    assert!(at(c, &["resources", "limits"]).get("memory").is_some());

    // Environment: explicit env plus the ConfigMaps it loads.
    let mut env: BTreeMap<String, Value> = BTreeMap::new();
    for from in c
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(from, &["configMapRef", "name"]);
        let cm = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("envFrom: no ConfigMap {name}"));
        for (k, v) in at(cm, &["data"]).as_object().expect("data") {
            env.insert(k.clone(), v.clone());
        }
    }
    for e in at(c, &["env"]).as_array().expect("env") {
        let value = e
            .get("value")
            .cloned()
            .unwrap_or_else(|| e["valueFrom"].clone());
        env.insert(str_at(e, &["name"]).to_string(), value);
    }
    assert_eq!(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            .and_then(Value::as_str),
        Some("http://otel-collector.observability.svc:4318")
    );
    assert_eq!(
        env["K8S_NODE_NAME"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    assert_eq!(
        env["K8S_POD_NAME"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );

    let volumes = at(pod, &["volumes"]).as_array().expect("volumes");
    let host_paths: BTreeSet<&str> = volumes
        .iter()
        .filter_map(|v| v["hostPath"]["path"].as_str())
        .collect();
    for p in ["/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/bpf"] {
        assert!(
            host_paths.contains(p),
            "hostPath {p} missing: {host_paths:?}"
        );
    }
    let names: BTreeSet<&str> = volumes.iter().filter_map(|v| v["name"].as_str()).collect();
    for m in at(c, &["volumeMounts"]).as_array().expect("volumeMounts") {
        assert!(
            names.contains(str_at(m, &["name"])),
            "mount of unknown volume {m}"
        );
    }
    // The comment block on pod metadata.
    let text = read(rel);
    assert!(
        text.contains("container.id") && text.contains("cgroup"),
        "{rel}: explain container.id"
    );
}

#[test]
fn systemd_unit_runs_the_agent_with_hardening_that_keeps_ebpf() {
    let units = unit_entries(&read("examples/systemd/otel-agent.service"));
    let get = |section: &str, key: &str| -> Option<String> {
        units.get(section).and_then(|e| {
            e.iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        })
    };
    assert!(units.contains_key("Unit") && units.contains_key("Install"));
    let exec = get("Service", "ExecStart").expect("ExecStart");
    assert!(exec.starts_with("/usr/local/bin/otel-agent"), "{exec}");
    assert_eq!(
        get("Service", "EnvironmentFile").as_deref(),
        Some("-/etc/otel-agent/env")
    );
    assert_eq!(get("Service", "Restart").as_deref(), Some("on-failure"));
    assert!(get("Install", "WantedBy").is_some());
    // Root (the agent checks uid 0) with the eBPF capabilities in the bounding set.
    let user = get("Service", "User");
    assert!(
        user.is_none() || user.as_deref() == Some("root"),
        "{user:?}"
    );
    let caps = get("Service", "CapabilityBoundingSet").unwrap_or_default();
    for cap in ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"] {
        assert!(
            caps.split_whitespace().any(|c| c == cap),
            "{cap} not in {caps}"
        );
    }
    // Settings that would break capture.
    for (key, bad) in [
        ("ProtectKernelTunables", "yes"),
        ("ProtectProc", "invisible"),
        ("ProcSubset", "pid"),
        ("PrivateNetwork", "yes"),
        ("PrivatePIDs", "yes"),
        ("ProtectHome", "yes"),
    ] {
        assert_ne!(
            get("Service", key).as_deref(),
            Some(bad),
            "{key}={bad} breaks eBPF capture"
        );
    }
    assert!(
        get("Service", "SystemCallFilter").is_none(),
        "bpf()/perf_event_open() must stay allowed"
    );
}

#[test]
fn dockerfile_builds_the_agent_on_debian() {
    let text = read("examples/Dockerfile");
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(
        froms
            .first()
            .is_some_and(|f| f.contains("bookworm") || f.contains("debian")),
        "{froms:?}"
    );
    for needle in [
        "clang",
        "libbpf-dev",
        "bpftool",
        "cargo build --release",
        "-p otel-agent",
        "ENTRYPOINT",
    ] {
        assert!(text.contains(needle), "Dockerfile lacks {needle:?}");
    }
    let ignore = read("examples/Dockerfile.dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "target/"),
        "the build context must skip target/"
    );
}
