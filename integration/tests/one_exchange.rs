//! One request, one exchange per side, for every TLS client the suite
//! runs, against TLS 1.2 and TLS 1.3: node (https.get with its default agent
//! and with keep-alive, fetch, http2), curl, Python and wget. A TLS write is
//! recorded when the library accepted it, so node's first `SSL_write` on a
//! TLS 1.2 connection — which finishes the handshake, fails with "try
//! again" and is retried with the same bytes — is one exchange, and two
//! identical requests back to back on one connection are two.

use std::time::Duration;

use crate::harness::{
    assert_each_request_once, exchanges_of, fixture, run, run_env, served_on, Agent, Nginx,
};

/// Every client's requests against nginx offering `tls` only.
fn every_client_once(tls: &str, tag: &str) {
    let nginx = Nginx::start_tls(tls);
    let agent = Agent::start(&[]);
    let base = format!("https://localhost:{}", nginx.port);
    let script = fixture("node_clients.js");
    let node_prefix = format!("/{tag}/node");
    let (node, out) = run_env(
        "node",
        &[script.to_str().unwrap(), &base, &node_prefix],
        &[("NODE_TLS_REJECT_UNAUTHORIZED", "0")],
    );
    assert_eq!(
        out.trim(),
        "200 200 200 200 200 200 200 200",
        "node's statuses"
    );
    let node_paths: Vec<String> = [
        "default-1",
        "default-2",
        "keepalive-1",
        "same",
        "same",
        "fetch-1",
        "h2-1",
        "h2-2",
    ]
    .iter()
    .map(|p| format!("{node_prefix}/{p}"))
    .collect();

    // curl and wget: two requests on one connection each.
    let (c1, c2) = (format!("/{tag}/curl-1"), format!("/{tag}/curl-2"));
    let (curl, _) = run(
        "curl",
        &[
            "-sk",
            "--http1.1",
            &format!("{base}{c1}"),
            &format!("{base}{c2}"),
        ],
    );
    let (w1, w2) = (format!("/{tag}/wget-1"), format!("/{tag}/wget-2"));
    let (wget, _) = run(
        "wget",
        &[
            "-q",
            "--no-check-certificate",
            "-O",
            "/dev/null",
            &format!("{base}{w1}"),
            &format!("{base}{w2}"),
        ],
    );
    let p1 = format!("/{tag}/python-1");
    let (python, out) = run(
        "python3",
        &[
            fixture("tls_client.py").to_str().unwrap(),
            &format!("{base}{p1}"),
        ],
    );
    assert!(out.contains("STATUS 200"), "python: {out}");

    let clients: Vec<(&str, u32, Vec<String>)> = vec![
        ("node", node, node_paths.clone()),
        ("curl", curl, vec![c1.clone(), c2.clone()]),
        ("wget", wget, vec![w1.clone(), w2.clone()]),
        ("python", python, vec![p1.clone()]),
    ];
    let served: Vec<String> = clients.iter().flat_map(|c| c.2.clone()).collect();
    agent.wait_for("every request on both sides", 30, |ls| {
        clients
            .iter()
            .all(|(_, pid, paths)| exchanges_of(ls, *pid).len() >= paths.len())
            && served_on(ls, nginx.port).len() >= served.len()
    });
    // Anything late (a duplicate, a partial at close) has time to come out.
    std::thread::sleep(Duration::from_secs(2));
    let lines = agent.stop();
    for (name, pid, paths) in &clients {
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        assert_each_request_once(
            &exchanges_of(&lines, *pid),
            &paths,
            &format!("{name} over {tls}, client side"),
        );
    }
    let served: Vec<&str> = served.iter().map(String::as_str).collect();
    assert_each_request_once(
        &served_on(&lines, nginx.port),
        &served,
        &format!("nginx over {tls}, server side"),
    );
}

#[test]
fn every_tls_client_gives_one_exchange_per_request_over_tls_1_2() {
    every_client_once("TLSv1.2", "tls12");
}

#[test]
fn every_tls_client_gives_one_exchange_per_request_over_tls_1_3() {
    every_client_once("TLSv1.3", "tls13");
}
