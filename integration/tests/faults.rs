//! Fault tests: shutdown under load, ring-buffer overflow, process churn, a
//! collector outage, pid reuse, and a TLS library that goes away.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::collector::Collector;
use crate::harness::uprobes::uprobe_files_of;
use crate::harness::{
    exchanges_of, final_counter, n, port_filter_yaml, reports, reports_of, run, s, Agent,
    Interactive, Nginx, Server, TempDir,
};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn sigterm_under_load_flushes_every_completed_exchange() {
    let server = Server::python("http_server.py", &[]);
    let agent = Agent::start(&[]);
    let url = format!("http://127.0.0.1:{}/load", server.port);
    // Keep-alive load from two clients while the agent is stopped.
    let mut load: Vec<_> = (0..2)
        .map(|_| {
            Command::new("h2load")
                .args(["--h1", "-n", "100000", "-c", "2", &url])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn h2load")
        })
        .collect();
    agent.wait_for("exchanges under load", 30, |ls| ls.len() > 200);
    let started = Instant::now();
    let (lines, log) = agent.stop_with_log();
    let took = started.elapsed();
    for l in &mut load {
        let _ = l.kill();
        let _ = l.wait();
    }
    assert!(
        took < Duration::from_secs(15),
        "exit within a bounded time: {took:?}"
    );
    let printed = lines.iter().filter(|l| l.get("request").is_some()).count() as u64;
    let counted = final_counter(&log, "exchanges") + final_counter(&log, "partial_exchanges");
    assert!(printed > 200);
    assert_eq!(
        printed, counted,
        "every exchange the agent completed was written before it exited"
    );
    assert_eq!(final_counter(&log, "exporter_stopped"), 0);
    assert!(log.contains("capture stopped"), "{log}");
}

#[test]
fn ring_buffer_overflow_is_counted_and_capture_resumes() {
    let server = Server::python("http_server.py", &[]);
    let dir = TempDir::new("tiny-ring");
    let config = dir.join("tiny.yaml");
    // 32 KiB: room for one or two full data events (16 KiB payload each).
    std::fs::write(&config, "limits:\n  ring_buffer: 32KiB\n").unwrap();
    // Every body byte copied (bodies the level does not keep are skipped
    // otherwise, and the answer would fit).
    let agent = Agent::start(&["--config", config.to_str().unwrap(), "--copy-all-bodies"]);
    // 16 MB: hundreds of reads by curl, each a full event, in a few tens
    // of milliseconds. A 200 KB answer (a handful of events) overflowed the
    // ring only when the reader woke late: one run in many did not.
    let big = format!("http://127.0.0.1:{}/huge", server.port);
    let (big_pid, body) = run("curl", &["-sS", &big]);
    assert_eq!(body.len(), 16_000_000);
    let small = format!("http://127.0.0.1:{}/small-after-overflow", server.port);
    let (small_pid, _) = run("curl", &["-sS", "-o", "/dev/null", &small]);
    let lines = agent.wait_for("the small exchange and the big one's report", 30, |ls| {
        !exchanges_of(ls, small_pid).is_empty() && !reports_of(ls, big_pid).is_empty()
    });
    let report = &reports_of(&lines, big_pid)[0];
    assert!(
        n(report, "/lost_events") > 0,
        "dropped events are counted per connection: {report}"
    );
    let e = &exchanges_of(&lines, small_pid)[0];
    assert_eq!(
        s(e, "/request/path"),
        "/small-after-overflow",
        "capture resumes after the overflow"
    );
    assert_eq!(n(e, "/response/status"), 200);
    let (_, log) = agent.stop_with_log();
    assert!(
        final_counter(&log, "kernel_ringbuf_full") > 0,
        "and in the kernel counters"
    );
}

#[test]
fn two_thousand_short_lived_curls_are_all_captured_with_flat_memory() {
    let server = Server::python("http_server.py", &[]);
    let agent = Agent::start(&[]);
    let agent_pid = agent_pid(&agent);
    let url = format!("http://127.0.0.1:{}/churn", server.port);
    // Warm up, then measure memory around the churn.
    run("curl", &["-sS", "-o", "/dev/null", &url]);
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = rss_kib(agent_pid);
    let mut pids = Vec::with_capacity(2000);
    for _ in 0..500 {
        let batch: Vec<_> = (0..4)
            .map(|_| {
                Command::new("curl")
                    .args(["-sS", "-o", "/dev/null", &url])
                    .spawn()
                    .expect("spawn curl")
            })
            .collect();
        for mut c in batch {
            pids.push(c.id());
            assert!(c.wait().expect("wait").success());
        }
    }
    let lines = agent.wait_for("a report for each of the 2000 curls", 120, |ls| {
        let reported: std::collections::HashSet<String> = reports(ls)
            .iter()
            .map(|r| s(r, "/process_id").to_string())
            .collect();
        pids.iter().all(|p| reported.contains(&p.to_string()))
    });
    let with_exe = pids
        .iter()
        .filter(|p| {
            exchanges_of(&lines, **p).first().is_some_and(|e| {
                s(e, "/metadata/process_exe") == "/usr/bin/curl"
                    && s(e, "/metadata/process_cmdline").starts_with("curl -sS ")
            })
        })
        .count();
    // Read from /proc when the exec event is handled, or — the process being
    // gone by then — taken from the exec event itself (path and arguments).
    assert_eq!(
        with_exe, 2000,
        "executable and command line known for every short-lived process"
    );
    for pid in &pids {
        assert_eq!(exchanges_of(&lines, *pid).len(), 1, "curl {pid}");
    }
    let rss_after = rss_kib(agent_pid);
    assert!(
        rss_after < rss_before + 20 * 1024,
        "memory flat across 2000 processes: {rss_before} KiB → {rss_after} KiB"
    );
    let (_, log) = agent.stop_with_log();
    assert!(
        log.contains("live_connections_reported=0"),
        "no connection left behind: {log}"
    );
}

fn agent_pid(agent: &Agent) -> u32 {
    agent.pid()
}

#[test]
fn ten_thousand_idle_connections_keep_the_tracker_bounded() {
    let server = Server::python("idle_connections.py", &["server"]);
    let agent = Agent::start(&[]);
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = rss_kib(agent.pid());
    let mut client = crate::harness::Interactive::python(
        "idle_connections.py",
        &["client", &server.port.to_string(), "10000"],
    );
    client.expect_line("OPEN 10000");
    let pid = client.child.id();
    agent.wait_for("10000 exchanges on 10000 connections", 120, |ls| {
        exchanges_of(ls, pid).len() >= 10000
    });
    let rss_open = rss_kib(agent.pid());
    client.send_line("close");
    client.expect_line("CLOSED");
    // Every connection ends in a report: at its close, or — if the close event
    // was lost in a burst (counted as kernel_ringbuf_full) — at shutdown.
    std::thread::sleep(Duration::from_secs(3));
    let (lines, log) = agent.stop_with_log();
    let closed = |p: u32| reports_of(&lines, p).len();
    // A burst of 20,000 reports can outrun the exporter (here: the test reading
    // stdout); what the export queue could not hold is dropped and counted.
    let queue_drops = final_counter(&log, "exporter_stopped");
    eprintln!(
        "reports: client {} server {}; ringbuf drops {}; export-queue drops {queue_drops}",
        closed(pid),
        closed(server.pid()),
        final_counter(&log, "kernel_ringbuf_full")
    );
    assert_eq!(
        final_counter(&log, "kernel_ringbuf_full"),
        0,
        "nothing lost in the kernel"
    );
    assert_eq!(
        (closed(pid) + closed(server.pid())) as u64 + queue_drops,
        20000,
        "one report per connection, or a counted export-queue drop"
    );
    assert_eq!(exchanges_of(&lines, pid).len(), 10000, "waited for above");
    let grown_mib = rss_open.saturating_sub(rss_before) / 1024;
    eprintln!("agent RSS: {rss_before} KiB idle, {rss_open} KiB with 20000 open connections");
    assert!(
        grown_mib < 200,
        "tracker memory bounded: +{grown_mib} MiB for 20000 tracked connections"
    );
    let at_close = reports(&lines)
        .iter()
        .filter(|r| s(r, "/close_reason") == "close")
        .count() as u64;
    assert!(
        at_close + queue_drops >= 20000,
        "reports at close plus counted drops cover every connection: {at_close}"
    );
}

/// A string attribute of a span from the collector ("" when absent).
fn span_attr<'a>(span: &'a Value, key: &str) -> &'a str {
    span["attributes"][key].as_str().unwrap_or("")
}

/// `url.path` of every server span the collector received for a `GET <prefix>…`
/// answered 200, in arrival order (a path appears twice if its span did).
fn server_paths(spans: &[(Value, Value)], prefix: &str) -> Vec<String> {
    spans
        .iter()
        .map(|(_, sp)| sp)
        .filter(|sp| {
            sp["kind"] == "SERVER"
                && span_attr(sp, "http.request.method") == "GET"
                && sp["attributes"]["http.response.status_code"].as_i64() == Some(200)
                && span_attr(sp, "url.path").starts_with(prefix)
        })
        .map(|sp| span_attr(sp, "url.path").to_string())
        .collect()
}

/// `n` sequential curls to `http://127.0.0.1:PORT<prefix><i>`; the paths requested.
fn curl_paths(port: u16, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let path = format!("{prefix}{i}");
            let (_, body) = run("curl", &["-sS", &format!("http://127.0.0.1:{port}{path}")]);
            assert_eq!(body, "{\"hello\":\"world\"}\n", "{path}");
            path
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn collector_goes_down_mid_run_and_comes_back() {
    const N: usize = 5;
    const M: usize = 6;
    const K: usize = 4;
    let server = Server::python("http_server.py", &[]);
    // Only the server's side of this test's port: one span per request, and
    // nothing else on the machine reaches the counters.
    let dir = TempDir::new("collector-restart");
    let config = dir.agent_config(&port_filter_yaml("ingress", server.port));
    let collector = Collector::start();
    let (grpc_port, http_port) = (collector.grpc_port, collector.http_port);
    let endpoint = collector.grpc_endpoint();
    let mut agent = Agent::start_env(
        &["--config", config.to_str().unwrap()],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
    );

    // Phase 1: the collector is up, every span arrives.
    let phase1 = curl_paths(server.port, "/phase1/", N);
    let got1 = collector.wait_for("the phase 1 spans", 30, |c| {
        let got = server_paths(&c.spans(), "/phase1/");
        (got.len() >= N).then_some(got)
    });
    assert_eq!(sorted(got1), phase1, "each phase 1 span exactly once");

    // Phase 2: the collector is down; the agent retries with backoff, then gives up.
    collector.stop();
    let phase2 = curl_paths(server.port, "/phase2/", M);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !agent
        .stderr_text()
        .contains("span export failed after retries")
    {
        assert!(
            Instant::now() < deadline,
            "no span batch given up within 60 s of the collector going down:\n{}",
            agent.stderr_text()
        );
        assert!(agent.running(), "agent alive while the collector is down");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(agent.running(), "agent alive while the collector is down");

    // Phase 3: the collector is back on the same ports.
    let collector = Collector::start_on(grpc_port, http_port);
    let phase3 = curl_paths(server.port, "/phase3/", K);
    let got3 = collector.wait_for("the phase 3 spans", 60, |c| {
        let got = server_paths(&c.spans(), "/phase3/");
        (got.len() >= K).then_some(got)
    });
    assert_eq!(sorted(got3), phase3, "each phase 3 span exactly once");
    assert!(agent.running(), "agent alive after the collector came back");

    let (_, log) = agent.stop_with_log();
    let spans = collector.spans();
    let got2 = server_paths(&spans, "/phase2/");
    let mut distinct = got2.clone();
    distinct.dedup();
    assert_eq!(
        sorted(distinct),
        sorted(got2.clone()),
        "no phase 2 span twice"
    );
    assert!(
        got2.iter().all(|p| phase2.contains(p)),
        "only requested paths: {got2:?}"
    );
    assert_eq!(
        server_paths(&spans, "/phase").len(),
        got2.len() + K,
        "nothing but phase 2 and 3 spans after recovery"
    );
    let failed = final_counter(&log, "span_export_failed");
    let queue_full = final_counter(&log, "span_queue_full");
    eprintln!(
        "phase 2: {} of {M} spans delivered after recovery, {failed} lost with failed batches, {queue_full} dropped for a full queue",
        got2.len()
    );
    assert!(failed > 0, "the given-up batch is counted per span");
    assert_eq!(
        got2.len() as u64 + failed + queue_full,
        M as u64,
        "every phase 2 span was delivered or counted as lost\n{log}"
    );
    // The same count reaches the collector as the tap.dropped.spans metric.
    collector.wait_for(
        "tap.dropped.spans{export_failed} at its final value",
        30,
        |c| {
            let last = c
                .metrics()
                .into_iter()
                .filter(|(_, m)| m["name"] == "tap.dropped.spans")
                .flat_map(|(_, m)| m["data_points"].as_array().cloned().unwrap_or_default())
                .filter(|dp| dp["attributes"]["tap.drop.reason"] == "export_failed")
                .filter_map(|dp| dp["value"].as_u64())
                .next_back();
            (last == Some(failed)).then_some(())
        },
    );
    collector.stop();
}

/// The real python interpreter behind `python3` (not a pyenv shim, which forks).
fn python_exe() -> String {
    let (_, out) = run(
        "python3",
        &[
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ],
    );
    out.trim().to_string()
}

/// Spawn `cmd args` as pid `want`: set the pid namespace's last pid to
/// `want - 1` right before the fork. Returns the child whatever pid it got.
fn spawn_as_pid(want: u32, cmd: &str, args: &[&str]) -> std::process::Child {
    use std::io::Write;
    let mut ns_last_pid = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/kernel/ns_last_pid")
        .expect("open /proc/sys/kernel/ns_last_pid (root in the init pid namespace)");
    ns_last_pid
        .write_all((want - 1).to_string().as_bytes())
        .expect("write ns_last_pid");
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd}: {e}"))
}

#[test]
fn pid_reuse_attributes_the_new_process() {
    let server = Server::python("http_server.py", &[]);
    let dir = TempDir::new("pid-reuse");
    let config = dir.agent_config(&port_filter_yaml("egress", server.port));
    let collector = Collector::start();
    let endpoint = collector.grpc_endpoint();
    let agent = Agent::start_env(
        &["--config", config.to_str().unwrap()],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_TRACES_EXPORTER", "otlp,console"),
        ],
    );
    let python = python_exe();
    let get = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1]).read()";
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", server.port);

    let mut reused = None;
    let mut misses = Vec::new();
    for attempt in 0..10 {
        // A python client with pid X, whose identity the agent caches...
        let first = format!("/first-python-{attempt}");
        let (pid, _) = run(&python, &["-c", get, &url(&first)]);
        agent.wait_for("the python exchange", 30, |ls| {
            exchanges_of(ls, pid)
                .iter()
                .any(|e| s(e, "/request/path") == first)
        });
        // ...has exited; curl is forked as the very next pid after X - 1.
        let second = format!("/second-curl-{attempt}");
        let child = spawn_as_pid(pid, "curl", &["-sS", &url(&second)]);
        let got = child.id();
        let out = child.wait_with_output().expect("wait for curl");
        assert!(out.status.success(), "curl: {out:?}");
        if got == pid {
            reused = Some((pid, first, second));
            break;
        }
        // Another fork on the machine took the pid between the write and ours.
        misses.push(format!("wanted {pid}, curl got {got}"));
    }
    let Some((pid, first, second)) = reused else {
        panic!("could not get a reused pid for curl in 10 attempts: {misses:?}");
    };

    // The exchange and, once the connection closes, its report (written a
    // little later: a close does not wake the reader at once).
    let lines = agent.wait_for(
        "curl's exchange and report under the reused pid",
        30,
        |ls| {
            exchanges_of(ls, pid)
                .iter()
                .any(|e| s(e, "/request/path") == second)
                && reports_of(ls, pid)
                    .iter()
                    .any(|r| s(r, "/process_exe") == "/usr/bin/curl")
        },
    );
    let mine = exchanges_of(&lines, pid);
    let by_path = |p: &str| {
        mine.iter()
            .find(|e| s(e, "/request/path") == p)
            .cloned()
            .unwrap()
    };
    let (py, curl) = (by_path(&first), by_path(&second));
    assert_eq!(s(&py, "/metadata/process_exe"), python, "{py}");
    assert_eq!(
        s(&curl, "/metadata/process_exe"),
        "/usr/bin/curl",
        "the new process, not the cached python identity: {curl}"
    );
    assert!(
        s(&curl, "/metadata/process_cmdline").starts_with("curl -sS "),
        "{curl}"
    );
    assert_eq!(n(&curl, "/response/status"), 200);
    let curl_reports: Vec<_> = reports_of(&lines, pid)
        .into_iter()
        .filter(|r| s(r, "/process_exe") == "/usr/bin/curl")
        .collect();
    assert_eq!(curl_reports.len(), 1, "{:?}", reports_of(&lines, pid));

    // The spans carry the same identities as their resource.
    let span_of = |path: &str| {
        let url = url(path);
        collector.wait_for(&format!("the span of {path}"), 30, move |c| {
            c.spans()
                .into_iter()
                .find(|(_, sp)| sp["kind"] == "CLIENT" && span_attr(sp, "url.full") == url)
        })
    };
    let python_name = python.rsplit('/').next().unwrap();
    for ((res, span), exe, name) in [
        (span_of(&first), python.as_str(), python_name),
        (span_of(&second), "/usr/bin/curl", "curl"),
    ] {
        for attrs in [&res, &span["attributes"]] {
            assert_eq!(
                attrs["process.pid"].as_u64(),
                Some(u64::from(pid)),
                "{attrs}"
            );
            assert_eq!(attrs["process.executable.path"], exe, "{attrs}");
            assert_eq!(attrs["process.executable.name"], name, "{attrs}");
        }
        assert_eq!(res["service.name"], name, "{res}");
    }

    // A fork reports no exec: a python child reusing the pid of an exec'd
    // `sleep` that exited without a connection (so without an exit event).
    // The child stays a moment after its request: a fork reports no exec,
    // so its identity can only come from /proc while it lives (a child gone
    // before the agent reads it is reported with its task name alone).
    let fork = "import os, sys, time, urllib.request\n\
        want = int(sys.argv[1])\n\
        open('/proc/sys/kernel/ns_last_pid', 'w').write(str(want - 1))\n\
        child = os.fork()\n\
        if child == 0:\n\
        \x20   if os.getpid() == want:\n\
        \x20       urllib.request.urlopen(sys.argv[2]).read()\n\
        \x20       time.sleep(1)\n\
        \x20   os._exit(0)\n\
        os.waitpid(child, 0)\n\
        print(child)\n";
    let mut forked = None;
    let mut misses = Vec::new();
    for attempt in 0..10 {
        let (pid, _) = run("sleep", &["0.3"]);
        let path = format!("/forked-python-{attempt}");
        let (_, out) = run(&python, &["-c", fork, &pid.to_string(), &url(&path)]);
        let got: u32 = out.trim().parse().expect("child pid");
        if got == pid {
            forked = Some((pid, path));
            break;
        }
        misses.push(format!("wanted {pid}, the fork got {got}"));
    }
    let Some((pid, path)) = forked else {
        panic!("could not get a reused pid for the fork in 10 attempts: {misses:?}");
    };
    let lines = agent.wait_for("the forked child's exchange", 30, |ls| {
        exchanges_of(ls, pid)
            .iter()
            .any(|e| s(e, "/request/path") == path)
    });
    let e = exchanges_of(&lines, pid)
        .into_iter()
        .find(|e| s(e, "/request/path") == path)
        .unwrap();
    assert_eq!(
        s(&e, "/metadata/process_exe"),
        python,
        "the forked python, not the cached sleep: {e}"
    );
    agent.stop();
    collector.stop();
}

/// Wait until the agent logged a line containing every one of `parts`; returns it.
fn wait_log_line(agent: &mut Agent, what: &str, secs: u64, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let log = agent.stderr_text();
        if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_string();
        }
        assert!(
            agent.running(),
            "the agent exited waiting for {what}:\n{log}"
        );
        assert!(
            Instant::now() < deadline,
            "no log line for {what} within {secs} s:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn unmapped_tls_library_is_survived_and_detached() {
    let nginx = Nginx::start();
    let mut agent = Agent::start(&[]);
    let agent_pid = agent.pid();
    // The agent's uprobe links, by the file name the kernel keeps for each
    // (probes are attached through `/proc/self/fd/N` of the decoded file, so
    // that name does not tell the files apart: the links are counted).
    let all_probes = || {
        let mut v = uprobe_files_of(agent_pid);
        v.sort();
        v
    };
    // A copy of the system libssl: the same code under another inode.
    let dir = TempDir::new("libssl-copy");
    let copy = dir.join("libssl.so.3");
    std::fs::copy("/usr/lib/x86_64-linux-gnu/libssl.so.3", &copy).expect("copy libssl.so.3");
    let copy = copy.to_str().unwrap().to_string();
    let before = all_probes();
    assert!(
        !before.is_empty(),
        "the system TLS libraries are probed at start"
    );

    // A process maps it: discovery attaches to it.
    let mut client = Interactive::python("dlopen_tls.py", &[&copy]);
    client.expect_line("LOADED");
    let attached = wait_log_line(
        &mut agent,
        "the probes on the copy",
        30,
        &["TLS probes attached", &copy, "from_process=true"],
    );
    let uprobes: usize = attached
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("uprobes="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no uprobes= in {attached}"));
    assert!(uprobes > 0, "{attached}");
    assert_eq!(
        all_probes().len(),
        before.len() + uprobes,
        "one kernel link per uprobe logged"
    );

    // The process unloads it and the file is deleted: nothing maps the inode.
    client.send_line("close");
    client.expect_line("CLOSED");
    std::fs::remove_file(&copy).expect("delete the copy");
    wait_log_line(
        &mut agent,
        "the probes on the unmapped copy to be detached",
        60,
        &["TLS probes detached", &copy],
    );
    assert_eq!(
        all_probes(),
        before,
        "no uprobe left on the deleted inode, and the system libraries keep theirs"
    );

    // TLS through the system libssl is still captured.
    let (pid, body) = run("curl", &["-sk", "--http1.1", &nginx.url("/after-unmap")]);
    assert_eq!(body, "hello tls\n");
    let lines = agent.wait_for("curl's HTTPS exchange after the detach", 30, |ls| {
        !exchanges_of(ls, pid).is_empty()
    });
    let e = &exchanges_of(&lines, pid)[0];
    assert_eq!(s(e, "/metadata/process_exe"), "/usr/bin/curl");
    assert_eq!(s(e, "/metadata/tls_server_name"), "localhost");
    assert_eq!(s(e, "/metadata/tls_probe"), "openssl");
    assert_eq!(s(e, "/request/method"), "GET");
    assert_eq!(s(e, "/request/path"), "/after-unmap");
    assert_eq!(n(e, "/response/status"), 200);

    client.send_line("exit");
    let _ = client.child.wait();
    assert!(agent.running(), "the agent is still running");
    let (_, log) = agent.stop_with_log();
    // (Other files on the machine may refuse probes; this one must not.)
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("ERROR")
                || (l.contains("WARN") && l.contains(copy.as_str()))
                || l.contains("detaching a TLS uprobe failed")
        })
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}
