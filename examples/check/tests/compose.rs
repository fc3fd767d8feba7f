//! The compose stack, Prometheus scraping the collector, and Grafana's provisioning fit together.

use serde_json::Value;

use examples_check::collector::COLLECTOR;
use examples_check::compose::{compose_env, compose_volumes, COMPOSE};
use examples_check::files::{examples_dir, json, repo};
use examples_check::grafana::DASHBOARD;
use examples_check::value::{at, str_at, strings};
use examples_check::yaml::yaml;

#[test]
fn compose_runs_the_whole_stack() {
    let compose = yaml(COMPOSE);
    let services = at(&compose, &["services"]);
    let image = |s: &str| str_at(services, &[s, "image"]).to_string();
    for (service, repo_prefix) in [
        ("otel-collector", "otel/opentelemetry-collector-contrib:"),
        ("jaeger", "jaegertracing/all-in-one:"),
        ("tempo", "grafana/tempo:"),
        ("prometheus", "prom/prometheus:"),
        ("grafana", "grafana/grafana:"),
    ] {
        let img = image(service);
        assert!(img.starts_with(repo_prefix), "{service}: {img}");
        assert!(
            !img.ends_with(":latest"),
            "{service}: pin a version, not {img}"
        );
    }

    let agent = at(services, &["otel-agent"]);
    assert_eq!(agent["privileged"], Value::Bool(true));
    assert_eq!(str_at(agent, &["pid"]), "host");
    assert_eq!(
        compose_env(agent)
            .get("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(String::as_str),
        Some("http://otel-collector:4318")
    );
    let volumes = compose_volumes(agent);
    let mounted = |src: &str| volumes.iter().find(|(s, _, _)| s == src);
    for host in ["/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/bpf"] {
        assert!(mounted(host).is_some(), "agent: {host} not mounted");
    }
    for lib in ["/lib", "/usr/lib"] {
        let (_, target, opts) = mounted(lib).unwrap_or_else(|| panic!("agent: {lib} not mounted"));
        assert_eq!(
            target, lib,
            "{lib} must be mounted at its own path for TLS discovery"
        );
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "{lib} must be read-only"
        );
    }
    let context = repo()
        .join("examples")
        .join(str_at(agent, &["build", "context"]));
    let dockerfile = context.join(str_at(agent, &["build", "dockerfile"]));
    assert!(dockerfile.is_file(), "{}", dockerfile.display());

    // Every file mounted from examples/ exists.
    for (name, service) in services.as_object().expect("services") {
        for (source, _, _) in compose_volumes(service) {
            if let Some(rel) = source.strip_prefix("./") {
                let path = examples_dir().join(rel);
                assert!(
                    path.exists(),
                    "{name}: {source} does not exist ({})",
                    path.display()
                );
            }
        }
    }
    // The collector runs examples/otel-collector.yaml.
    let collector = at(services, &["otel-collector"]);
    let config_target = compose_volumes(collector)
        .into_iter()
        .find(|(s, _, _)| s == "./otel-collector.yaml")
        .map(|(_, t, _)| t)
        .expect("otel-collector.yaml mounted into the collector");
    let command = strings(at(collector, &["command"])).join(" ");
    assert!(
        command.contains(&config_target),
        "{command} does not use {config_target}"
    );
    // Grafana gets the dashboard where the provisioning provider looks for it.
    let grafana = at(services, &["grafana"]);
    let dash_target = compose_volumes(grafana)
        .into_iter()
        .find(|(s, _, _)| s == "./grafana-dashboard.json")
        .map(|(_, t, _)| t)
        .expect("dashboard mounted into grafana");
    let providers = yaml("examples/grafana/provisioning/dashboards/dashboards.yaml");
    let dir = str_at(&providers["providers"][0], &["options", "path"]);
    assert!(
        dash_target.starts_with(&format!("{dir}/")),
        "{dash_target} is not under {dir}"
    );
    assert!(compose_volumes(grafana)
        .iter()
        .any(|(s, t, _)| s == "./grafana/provisioning" && t == "/etc/grafana/provisioning"));
}

#[test]
fn prometheus_scrapes_the_collectors_exporter() {
    let prom = yaml("examples/prometheus.yml");
    let collector = yaml(COLLECTOR);
    let port = str_at(&collector, &["exporters", "prometheus", "endpoint"])
        .rsplit(':')
        .next()
        .expect("port")
        .to_string();
    let jobs = at(&prom, &["scrape_configs"])
        .as_array()
        .expect("scrape_configs");
    let targets: Vec<String> = jobs
        .iter()
        .flat_map(|j| j["static_configs"].as_array().cloned().unwrap_or_default())
        .flat_map(|s| strings(&s["targets"]))
        .collect();
    assert!(
        targets.contains(&format!("otel-collector:{port}")),
        "{targets:?}"
    );
    let job = jobs
        .iter()
        .find(|j| {
            strings(&j["static_configs"][0]["targets"]).contains(&format!("otel-collector:{port}"))
        })
        .expect("job");
    assert_eq!(
        job["honor_labels"],
        Value::Bool(true),
        "keep the exporter's job/instance"
    );
}

#[test]
fn grafana_provisions_prometheus_tempo_and_jaeger() {
    let ds = yaml("examples/grafana/provisioning/datasources/datasources.yaml");
    let list = at(&ds, &["datasources"]).as_array().expect("datasources");
    let by_type = |t: &str| {
        list.iter()
            .find(|d| d["type"] == t)
            .unwrap_or_else(|| panic!("no {t} data source"))
    };
    assert_eq!(
        str_at(by_type("prometheus"), &["url"]),
        "http://prometheus:9090"
    );
    assert_eq!(str_at(by_type("tempo"), &["url"]), "http://tempo:3200");
    assert_eq!(str_at(by_type("jaeger"), &["url"]), "http://jaeger:16686");
    // The dashboard's data source variable defaults to the provisioned Prometheus.
    let dash = json(DASHBOARD);
    let var = at(&dash, &["templating", "list"])
        .as_array()
        .expect("variables")
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(var["query"], "prometheus");
    assert_eq!(var["current"]["value"], by_type("prometheus")["uid"]);
    // Tempo listens where the collector sends.
    let tempo = yaml("examples/tempo.yaml");
    assert_eq!(
        str_at(
            &tempo,
            &[
                "distributor",
                "receivers",
                "otlp",
                "protocols",
                "grpc",
                "endpoint"
            ]
        ),
        "0.0.0.0:4317"
    );
    assert_eq!(
        at(&tempo, &["server", "http_listen_port"]),
        &Value::from(3200)
    );
}
