//! Bodies the capture level does not keep are not copied: at `summary`, 1 MiB
//! uploads and downloads on one keep-alive connection (plaintext and TLS)
//! come out with exact body sizes and no gap, the kernel skips body bytes on
//! purpose once the agent marks them, and the connection reports count those
//! bytes as skipped — not truncated, not lost. A head and its body in one
//! buffer (one read or write, of a socket or of a TLS library) are split by
//! the kernel: the head copied, the body skipped by its Content-Length,
//! pipelined messages after it intact.

use serde_json::Value;

use crate::harness::{
    exchanges_of, final_counter, n, reports_of, run, s, self_signed_cert, Agent, Interactive,
    Server, TempDir,
};

const BODY: u64 = 1 << 20;
const PATHS: [&str; 3] = ["/up/1", "/up/2", "/up/3"];

/// curl POSTs the file to each path on one connection; returns curl's pid.
fn post_all(base: &str, file: &std::path::Path, tls: bool) -> u32 {
    let data = format!("@{}", file.display());
    let mut args = vec![
        "-sS",
        "--http1.1",
        "--data-binary",
        &data,
        "-w",
        "%{http_code}\n",
    ];
    if tls {
        args.push("-k");
    }
    let urls: Vec<String> = PATHS.iter().map(|p| format!("{base}{p}")).collect();
    for u in &urls {
        args.extend(["-o", "/dev/null", u.as_str()]);
    }
    let (pid, out) = run("curl", &args);
    assert_eq!(out, "201\n201\n201\n", "every upload echoed");
    pid
}

/// Both sides of the three exchanges are exact, with nothing flagged, and
/// each side's connection report counts skipped bytes and nothing truncated.
fn assert_exact(lines: &[Value], pid: u32, what: &str) {
    let ex = exchanges_of(lines, pid);
    let mut paths: Vec<&str> = ex.iter().map(|e| s(e, "/request/path")).collect();
    paths.sort_unstable();
    assert_eq!(paths, PATHS, "{what}: one exchange per request: {ex:#?}");
    for e in &ex {
        assert_eq!(s(e, "/request/method"), "POST", "{what}: {e}");
        assert_eq!(n(e, "/request/body_size"), BODY, "{what}: {e}");
        assert_eq!(n(e, "/response/status"), 201, "{what}: {e}");
        assert_eq!(n(e, "/response/body_size"), BODY, "{what}: {e}");
        assert_eq!(
            (&e["partial"], &e["gap"]),
            (&Value::Bool(false), &Value::Bool(false)),
            "{what}: exact, not flagged: {e}"
        );
        assert!(
            e["response"]["body"].is_null(),
            "{what}: no body at summary"
        );
    }
    let reports = reports_of(lines, pid);
    assert_eq!(reports.len(), 1, "{what}: one connection: {reports:#?}");
    let r = &reports[0];
    assert_eq!(
        (n(r, "/exchanges"), n(r, "/gap_exchanges")),
        (3, 0),
        "{what}: {r}"
    );
    assert_eq!(
        n(r, "/truncated_bytes"),
        0,
        "{what}: nothing truncated: {r}"
    );
    // How much of a side's bodies the kernel skips depends on how soon the
    // agent's mark follows the head (a 3 MiB upload over loopback can be
    // over in 20 ms: the tests' debug agent, behind other tests' traffic,
    // then marks late); the totals are held below.
    assert!(
        n(r, "/skipped_bytes") > 0,
        "{what}: body bytes skipped on purpose: {r}"
    );
}

#[test]
fn summary_skips_large_bodies_and_keeps_every_size_exact() {
    let dir = TempDir::new("body-skip");
    let file = dir.join("upload.bin");
    let pattern: Vec<u8> = (0..BODY).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&file, pattern).unwrap();
    let (cert, key) = self_signed_cert(&dir);
    let plain = Server::python("http_server.py", &[]);
    let tls = Server::python(
        "tls_server.py",
        &[cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    let agent = Agent::start(&["--capture-level", "summary"]);

    let plain_client = post_all(&format!("http://127.0.0.1:{}", plain.port), &file, false);
    let tls_client = post_all(&format!("https://localhost:{}", tls.port), &file, true);
    let servers = [plain.pid(), tls.pid()];
    agent.wait_for("both sides' connection reports", 30, |ls| {
        [plain_client, tls_client]
            .iter()
            .chain(&servers)
            .all(|pid| !reports_of(ls, *pid).is_empty())
    });
    let (lines, log) = agent.stop_with_log();
    assert_exact(&lines, plain_client, "plaintext, curl");
    assert_exact(&lines, plain.pid(), "plaintext, python server");
    assert_exact(&lines, tls_client, "TLS, curl");
    assert_exact(&lines, tls.pid(), "TLS, python server");
    for e in exchanges_of(&lines, tls_client) {
        assert_eq!(s(&e, "/metadata/tls_probe"), "openssl", "{e}");
    }
    // The kernel itself skipped bytes (not only the per-call cap's tails).
    assert!(
        final_counter(&log, "kernel_skipped_bytes") > 0,
        "the kernel skipped body bytes on purpose:\n{log}"
    );
    assert!(final_counter(&log, "skip_marks") > 0);
    assert!(final_counter(&log, "bytes_skipped") >= 4 * BODY);
}

/// At the default level (`details`, no bodies kept), POSTs whose head and
/// body go out in one write and arrive in one read: after the connection's
/// first exchange, the kernel copies each head and skips its body by its
/// Content-Length, on the client's writes and on the server's reads — and
/// two requests pipelined in one write both come out exact.
#[test]
fn head_and_body_in_one_buffer_are_split_at_the_head() {
    let run = RawClientRun::of("posts", Transport::Plain);
    for (pid, what) in run.sides() {
        let r = assert_exact_posts(&run.lines, pid, what, &POSTS);
        // Requests 2, 3 and 4 (the first of the pipelined pair): split on the
        // client's writes and on the server's reads.
        assert!(
            n(&r, "/skipped_bytes") >= 2000 + 3000 + 900,
            "{what}: the bodies after their heads skipped: {r}"
        );
    }
    assert!(
        final_counter(&run.log, "kernel_skipped_bytes") >= 2 * (2000 + 3000 + 900),
        "the kernel skipped the bodies:\n{}",
        run.log
    );
    // The client's write of /post/2 is all head and body: one event, the
    // head copied and the body its skipped tail (flags 8).
    run.assert_egress_event_with_skipped_tail("/post/2", 2000);
}

/// The same POSTs over TLS: the kernel splits the plaintext of one
/// `SSL_write` (the client's) or `SSL_read` (the Python server's) of a head
/// and its body as it splits a socket buffer — the head copied, the body
/// skipped — and every exchange comes out exact on both sides.
#[test]
fn a_tls_call_of_head_and_body_is_split_at_the_head() {
    let run = RawClientRun::of("posts", Transport::Tls);
    for (pid, what) in run.sides() {
        assert_exact_posts(&run.lines, pid, what, &POSTS);
        for e in exchanges_of(&run.lines, pid) {
            assert_eq!(s(&e, "/metadata/tls_probe"), "openssl", "{what}: {e}");
        }
    }
    // The client's writes of /post/2 and /post/3, and the first of the
    // pipelined pair; the server reads each of the first two whole (one TLS
    // record) — the pair's read holds more than the body, and is copied.
    let client = &reports_of(&run.lines, run.client)[0];
    assert!(
        n(client, "/skipped_bytes") >= 2000 + 3000 + 900,
        "the client's bodies after their heads skipped: {client}"
    );
    let server = &reports_of(&run.lines, run.server)[0];
    assert!(
        n(server, "/skipped_bytes") >= 2000 + 3000,
        "the bodies the server read with their heads skipped: {server}"
    );
    run.assert_egress_event_with_skipped_tail("/post/2", 2000);
}

/// A vectored write of a head and its body goes out of the kernel as one
/// event: the head copied, the body its skipped tail (`DATA_FLAG_SKIPPED_TAIL`),
/// with the exact byte counts. Python's `sendmsg` of several buffers is the
/// vectored call here, as nginx's `writev` of head and body is: after the
/// connection's first exchange, /vec/2 (head + 2000 bytes) is one event that
/// copies the head alone, /vec/3 (head + 2 bytes) one event that copies both,
/// and the calls gathering cannot take (a pipelined pair, a body in two
/// buffers) take the per-buffer path — every exchange exact on both sides.
#[test]
fn a_vectored_head_and_body_are_one_event_with_the_body_skipped() {
    const SIZES: [(&str, u64); 6] = [
        ("/vec/1", 1000),
        ("/vec/2", 2000),
        ("/vec/3", 2),
        ("/vec/4", 900),
        ("/vec/5", 800),
        ("/vec/6", 1500),
    ];
    let run = RawClientRun::of("vectored", Transport::Plain);
    for (pid, what) in run.sides() {
        assert_exact_posts(&run.lines, pid, what, &SIZES);
    }
    // The client's sendmsg of /vec/2: one event of the head and its
    // 2000-byte body, the body skipped (flags 8), nothing truncated.
    run.assert_egress_event_with_skipped_tail("/vec/2", 2000);
    let r = &reports_of(&run.lines, run.client)[0];
    assert!(
        n(r, "/skipped_bytes") >= 2000 + 900 + 800 + 500,
        "the client's bodies after their heads skipped: {r}"
    );
}

/// The POSTs of `raw_client.py posts`: path and body size.
const POSTS: [(&str, u64); 5] = [
    ("/post/1", 1000),
    ("/post/2", 2000),
    ("/post/3", 3000),
    ("/post/4", 900),
    ("/post/5", 800),
];

/// How `raw_client.py` talks to its Python server.
#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Plain,
    /// Python's ssl on both sides (`tls_server.py`, `raw_client.py ... tls`).
    Tls,
}

/// `raw_client.py MODE` against the Python server, with the agent logging
/// every data event: the client's first exchange, then (once the agent has
/// it on both sides, which lets the kernel skip bodies after their heads:
/// BODY_SKIP_AFTER_HEAD) the rest, until both sides' connection reports.
struct RawClientRun {
    lines: Vec<Value>,
    log: String,
    client: u32,
    server: u32,
}

impl RawClientRun {
    fn of(mode: &str, transport: Transport) -> Self {
        let dir = TempDir::new("raw-client");
        let server = match transport {
            Transport::Plain => Server::python("http_server.py", &[]),
            Transport::Tls => {
                let (cert, key) = self_signed_cert(&dir);
                Server::python(
                    "tls_server.py",
                    &[cert.to_str().unwrap(), key.to_str().unwrap()],
                )
            }
        };
        let agent = Agent::start(&[
            "--log-level",
            "info,otel_agent=debug,otel_agent::track::tracker=trace",
        ]);
        let port = server.port.to_string();
        let mut args = vec![port.as_str(), mode];
        if transport == Transport::Tls {
            args.push("tls");
        }
        let mut client = Interactive::python("raw_client.py", &args);
        let client_pid = client.child.id();
        client.expect_line("FIRST");
        agent.wait_for("the first exchange", 20, |ls| {
            !exchanges_of(ls, client_pid).is_empty() && !exchanges_of(ls, server.pid()).is_empty()
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        client.send_line("go");
        client.expect_line("DONE");
        agent.wait_for("both sides' connection reports", 20, |ls| {
            !reports_of(ls, client_pid).is_empty() && !reports_of(ls, server.pid()).is_empty()
        });
        let (lines, log) = agent.stop_with_log();
        RawClientRun {
            lines,
            log,
            client: client_pid,
            server: server.pid(),
        }
    }

    fn sides(&self) -> [(u32, &'static str); 2] {
        [(self.client, "client"), (self.server, "server")]
    }

    /// The client wrote the POST of `path` and its `body`-byte body as one
    /// event: the head copied, the body its skipped tail (flags 8).
    fn assert_egress_event_with_skipped_tail(&self, path: &str, body: usize) {
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {body}\r\n\r\n")
                .len();
        let want = format!("len={} captured={head} flags=8", head + body);
        let pid_field = format!("pid={} ", self.client);
        let tails: Vec<&str> = self
            .log
            .lines()
            .filter(|l| {
                l.contains("data event") && l.contains(&pid_field) && l.contains("dir=Egress")
            })
            .filter(|l| l.contains(" flags=8"))
            .collect();
        assert!(
            tails.iter().any(|l| l.contains(&want)),
            "the client's head and body in one event, the body skipped ({want}): {tails:#?}"
        );
    }
}

/// `pid`'s side: one exact exchange per POST of `sizes`, in order (status
/// 201, the body echoed), nothing flagged, no body kept; one connection
/// report with as many exchanges, no gap, nothing truncated — returned.
fn assert_exact_posts(lines: &[Value], pid: u32, what: &str, sizes: &[(&str, u64)]) -> Value {
    let ex = exchanges_of(lines, pid);
    let got: Vec<(&str, u64, u64, u64)> = ex
        .iter()
        .map(|e| {
            (
                s(e, "/request/path"),
                n(e, "/request/body_size"),
                n(e, "/response/status"),
                n(e, "/response/body_size"),
            )
        })
        .collect();
    let want: Vec<(&str, u64, u64, u64)> = sizes
        .iter()
        .map(|&(p, size)| (p, size, 201, size))
        .collect();
    assert_eq!(got, want, "{what}: one exact exchange per request: {ex:#?}");
    for e in &ex {
        assert_eq!(s(e, "/request/method"), "POST", "{what}: {e}");
        assert_eq!(
            (&e["partial"], &e["gap"]),
            (&Value::Bool(false), &Value::Bool(false)),
            "{what}: exact, not flagged: {e}"
        );
        assert!(e["request"]["body"].is_null(), "{what}: no body kept");
    }
    let reports = reports_of(lines, pid);
    assert_eq!(reports.len(), 1, "{what}: one connection: {reports:#?}");
    let r = reports[0].clone();
    assert_eq!(
        (
            n(&r, "/exchanges"),
            n(&r, "/gap_exchanges"),
            n(&r, "/truncated_bytes")
        ),
        (sizes.len() as u64, 0, 0),
        "{what}: {r}"
    );
    r
}
