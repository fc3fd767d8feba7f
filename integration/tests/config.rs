//! Configuration: capture levels, redaction, rules and process filters from a
//! YAML file, applied by the real agent.

use serde_json::Value;

use crate::harness::{
    exchanges_of, final_counter, n, port_filter_yaml, run, s, Agent, Server, TempDir,
};

/// Start the agent with `yaml` as its --config file.
fn agent_with(dir: &TempDir, yaml: &str) -> Agent {
    let path = dir.agent_config(yaml);
    Agent::start(&["--config", path.to_str().unwrap()])
}

/// POST a 2000-byte body with an Authorization header and a secret query; return curl's exchange.
fn post(agent: &Agent, port: u16, query: &str) -> Value {
    let body = "b".repeat(2000);
    let url = format!("http://127.0.0.1:{port}/echo?{query}");
    let (pid, _) = run(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-H",
            "Authorization: Bearer s3cr3t",
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            &body,
            &url,
        ],
    );
    let lines = agent.wait_for("curl's exchange", 20, |ls| {
        !exchanges_of(ls, pid).is_empty()
    });
    exchanges_of(&lines, pid).remove(0)
}

#[test]
fn capture_levels_summary_details_full() {
    let server = Server::python("http_server.py", &[]);
    let dir = TempDir::new("config-levels");

    let agent = agent_with(&dir, "capture:\n  level: summary\n");
    let e = post(&agent, server.port, "a=1");
    assert_eq!(s(&e, "/request/method"), "POST");
    assert_eq!(n(&e, "/response/status"), 201);
    assert_eq!(
        e["request"]["headers"],
        serde_json::json!({}),
        "summary: no headers"
    );
    assert_eq!(e["response"]["headers"], serde_json::json!({}));
    assert!(e["request"]["body"].is_null());
    assert_eq!(n(&e, "/request/body_size"), 2000);
    agent.stop();

    let agent = agent_with(
        &dir,
        "capture:\n  level: details\nredaction:\n  query_params: [token]\n",
    );
    let e = post(&agent, server.port, "token=abc&keep=1");
    assert_eq!(s(&e, "/request/headers/authorization"), "[REDACTED]");
    assert_eq!(s(&e, "/request/headers/content-type"), "text/plain");
    assert_eq!(s(&e, "/response/headers/content-type"), "text/plain");
    assert!(e["request"]["body"].is_null(), "details: no bodies");
    let query = s(&e, "/request/query");
    assert!(
        !query.contains("abc") && query.contains("keep=1"),
        "query param masked: {query}"
    );
    // The command line carries the same secrets: masked there too.
    let cmdline = s(&e, "/metadata/process_cmdline");
    assert!(
        cmdline.starts_with(
            "curl -sS -o /dev/null -H Authorization: [REDACTED] -H Content-Type: text/plain"
        ),
        "{cmdline}"
    );
    assert!(
        !cmdline.contains("s3cr3t") && cmdline.contains("token=REDACTED&keep=1"),
        "{cmdline}"
    );
    agent.stop();

    let agent = agent_with(&dir, "capture:\n  level: full\n  body_limit: 1KiB\n");
    let e = post(&agent, server.port, "a=1");
    assert_eq!(
        s(&e, "/request/body").len(),
        1024,
        "body kept up to the limit"
    );
    assert!(s(&e, "/request/body").chars().all(|c| c == 'b'));
    assert_eq!(
        n(&e, "/request/body_size"),
        2000,
        "the size is the real one"
    );
    assert_eq!(s(&e, "/response/body").len(), 1024);
    assert_eq!(
        s(&e, "/request/headers/authorization"),
        "[REDACTED]",
        "full still redacts"
    );
    agent.stop();
}

#[test]
fn rules_set_the_level_per_path_first_match_wins() {
    let server = Server::python("http_server.py", &[]);
    let dir = TempDir::new("config-rules");
    let yaml = "capture:\n  level: details\n  rules:\n    - when: {path: /hidden}\n      level: none\n    - when: {path: /hidden-but-later}\n      level: full\n    - when: {path: /brief}\n      level: summary\n";
    let agent = agent_with(&dir, yaml);
    let base = format!("http://127.0.0.1:{}", server.port);
    let (hidden, _) = run(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            &format!("{base}/hidden-but-later"),
        ],
    );
    let (brief, _) = run(
        "curl",
        &["-sS", "-o", "/dev/null", &format!("{base}/brief")],
    );
    let (plain, _) = run(
        "curl",
        &["-sS", "-o", "/dev/null", &format!("{base}/other")],
    );
    let lines = agent.wait_for("the reports of all three", 20, |ls| {
        [hidden, brief, plain]
            .iter()
            .all(|p| crate::harness::reports_of(ls, *p).len() == 1)
    });
    assert!(
        exchanges_of(&lines, hidden).is_empty(),
        "prefix rule /hidden (none) matched first"
    );
    assert_eq!(
        crate::harness::reports_of(&lines, hidden)[0]["exchanges"],
        1,
        "still counted"
    );
    let b = &exchanges_of(&lines, brief)[0];
    assert_eq!(b["request"]["headers"], serde_json::json!({}));
    let o = &exchanges_of(&lines, plain)[0];
    assert!(!s(o, "/request/headers/user-agent").is_empty());
    agent.stop();
}

#[test]
fn exe_filter_captures_one_client_and_not_another() {
    let server = Server::python("http_server.py", &[]);
    let dir = TempDir::new("config-filter");
    let agent = agent_with(
        &dir,
        "filters:\n  processes:\n    include:\n      - exe: curl\n",
    );
    let url = format!("http://127.0.0.1:{}/filtered", server.port);
    let (curl, _) = run("curl", &["-sS", "-o", "/dev/null", &url]);
    let (wget, _) = run("wget", &["-q", "-O", "/dev/null", &url]);
    let lines = agent.wait_for("curl's exchange", 20, |ls| {
        !exchanges_of(ls, curl).is_empty()
    });
    std::thread::sleep(std::time::Duration::from_secs(1));
    let lines = [lines, agent.lines()].concat();
    assert_eq!(
        s(&exchanges_of(&lines, curl)[0], "/request/path"),
        "/filtered"
    );
    assert!(
        exchanges_of(&lines, wget).is_empty(),
        "wget is not in the include list"
    );
    assert!(crate::harness::reports_of(&lines, wget).is_empty());
    assert!(
        lines
            .iter()
            .all(|l| s(l, "/metadata/process_exe") != server.exe),
        "the python server is not included either"
    );
    agent.stop();
}

#[test]
fn a_bad_config_is_refused_with_file_line_and_column() {
    let dir = TempDir::new("config-bad");
    let path = dir.join("bad.yaml");
    std::fs::write(&path, "capture:\n  level: loud\n").unwrap();
    let out = std::process::Command::new(crate::harness::agent_bin())
        .args(["--check-config", path.to_str().unwrap()])
        .output()
        .expect("run the agent");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2:10:", path.display())), "{err}");
    assert!(err.contains("none, summary, details, full"), "{err}");
    let ok = std::process::Command::new(crate::harness::agent_bin())
        .args([
            "--check-config",
            crate::harness::fixture("../../examples/otel-agent.yaml")
                .to_str()
                .unwrap(),
        ])
        .output()
        .expect("run the agent");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn direction_and_port_filters_are_enforced_in_the_kernel() {
    let allowed = Server::python("http_server.py", &[]);
    let other = Server::python("http_server.py", &[]);
    let dir = TempDir::new("config-kernel-filters");
    let agent = agent_with(&dir, &port_filter_yaml("egress", allowed.port));
    let (to_allowed, _) = run(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{}/in", allowed.port),
        ],
    );
    let (to_other, _) = run(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{}/out", other.port),
        ],
    );
    agent.wait_for("the allowed exchange", 20, |ls| {
        !exchanges_of(ls, to_allowed).is_empty()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (lines, log) = agent.stop_with_log();
    assert!(
        exchanges_of(&lines, to_other).is_empty(),
        "port not included"
    );
    assert!(
        exchanges_of(&lines, allowed.pid()).is_empty(),
        "ingress filtered by direction"
    );
    // The kernel announced exactly one connection: curl → the allowed port.
    assert_eq!(
        final_counter(&log, "connections"),
        1,
        "filtered in the kernel, not in user space"
    );
}

#[test]
fn a_small_payload_cap_truncates_events_but_keeps_sizes_exact() {
    let server = Server::python("http_server.py", &[]);
    let dir = TempDir::new("config-payload");
    let agent = agent_with(&dir, "limits:\n  max_event_payload: 512\n");
    let e = post(&agent, server.port, "cap=1");
    assert_eq!(
        n(&e, "/request/body_size"),
        2000,
        "sizes survive truncation"
    );
    assert_eq!(n(&e, "/response/body_size"), 2000);
    assert_eq!(n(&e, "/response/status"), 201);
    let pid: u32 = s(&e, "/metadata/process_id").parse().unwrap();
    let lines = agent.wait_for("curl's report", 20, |ls| {
        !crate::harness::reports_of(ls, pid).is_empty()
    });
    let r = &crate::harness::reports_of(&lines, pid)[0];
    // The cut bytes are body, which level details does not keep: counted as
    // skipped, not truncated, and the exchange is exact.
    assert!(
        n(r, "/skipped_bytes") >= 2 * (2000 - 512),
        "the cut bytes are counted: {r}"
    );
    assert_eq!(n(r, "/truncated_bytes"), 0, "{r}");
    assert_eq!(e["gap"], false, "{e}");
    agent.stop();
}
