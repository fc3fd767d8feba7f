//! The cost of connected traces per exchange, without the kernel: chains of
//! four exchanges (curl CLIENT → A SERVER → A CLIENT → B SERVER) with the
//! tracker's evidence, arriving children first (the order the ring buffer
//! gives), through the linker; and its memory at saturation (`max_held`
//! spans waiting for parents that never come), counted by the allocator.
//!
//! `cargo bench -p otel-agent --bench linker [-- --secs N]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use otel_agent::internal_events::CaptureStats;
use otel_agent::link::ids::IdSource;
use otel_agent::link::linker::{LinkBounds, Linker};
use semconv::model::{
    Candidate, Connection, Direction, Endpoints, Exchange, Header, L7Protocol, LinkEvidence,
    Output, Position, ProcessInfo, Request, Response, ServerRequest,
};

/// Counts the bytes live on the heap (the system allocator underneath).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: a pointer this allocator gave, with its layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn h(name: &str, value: &str) -> Header {
    Header {
        name: name.to_owned().into(),
        value: value.into(),
    }
}

/// An exchange as capture level `details` gives it (curl's headers).
fn exchange(
    process: &Arc<ProcessInfo>,
    direction: Direction,
    conn: u64,
    start: u64,
    end: u64,
    link: LinkEvidence,
) -> Box<Exchange> {
    Box::new(Exchange {
        connection: Connection {
            id: conn,
            process: process.clone(),
            direction,
            endpoints: Endpoints {
                local: "127.0.0.1:40000".parse().expect("addr"),
                remote: "127.0.0.1:8080".parse().expect("addr"),
            },
            protocol: L7Protocol::Http1,
            tls: None,
        },
        request: Some(Request {
            method: "GET".into(),
            target: "/api/orders/42".into(),
            authority: Some("127.0.0.1:8080".into()),
            scheme: "http".into(),
            version: "1.1".into(),
            headers: vec![
                h("host", "127.0.0.1:8080"),
                h("user-agent", "curl/7.88.1"),
                h("accept", "*/*"),
            ],
            user_agent: Some("curl/7.88.1".into()),
            wire_bytes: 80,
            ..Default::default()
        }),
        response: Some(Response {
            status: 200,
            headers: vec![
                h("server", "nginx/1.22.1"),
                h("content-type", "text/plain"),
                h("content-length", "2"),
            ],
            body_size: 2,
            wire_bytes: 150,
            content_type: Some("text/plain".into()),
            ..Default::default()
        }),
        start_unix_ns: start,
        end_unix_ns: end,
        partial: false,
        gap: false,
        gap_causes: Vec::new(),
        http2: None,
        grpc: None,
        link,
        ids: None,
    })
}

/// Chain `n`'s four exchanges, children first: B server, A client, A
/// server, curl client (connection ids 4n+1..4n+4).
fn chain(p: &Arc<ProcessInfo>, n: u64) -> [Box<Exchange>; 4] {
    let c = 4 * n;
    let t = 1_000_000 * n;
    let order = Some(Position::Order(0));
    let curl = exchange(
        p,
        Direction::EgressInternal,
        c + 1,
        t,
        t + 900,
        LinkEvidence {
            request_ns: t,
            tid: 1,
            position: order,
            ..Default::default()
        },
    );
    let a_server = exchange(
        p,
        Direction::Ingress,
        c + 2,
        t + 100,
        t + 800,
        LinkEvidence {
            request_ns: t + 100,
            tid: 2,
            position: order,
            peer: Candidate::One(c + 1),
            ..Default::default()
        },
    );
    let a_client = exchange(
        p,
        Direction::EgressInternal,
        c + 3,
        t + 200,
        t + 700,
        LinkEvidence {
            request_ns: t + 200,
            tid: 2,
            position: order,
            serving: Candidate::One(ServerRequest {
                connection: c + 2,
                start_ns: t + 100,
            }),
            ..Default::default()
        },
    );
    let b_server = exchange(
        p,
        Direction::Ingress,
        c + 4,
        t + 300,
        t + 600,
        LinkEvidence {
            request_ns: t + 300,
            tid: 3,
            position: order,
            peer: Candidate::One(c + 3),
            ..Default::default()
        },
    );
    [b_server, a_client, a_server, curl]
}

fn main() {
    let mut secs = 3.0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--secs" {
            secs = args.next().and_then(|v| v.parse().ok()).expect("--secs N");
        }
    }
    let p = Arc::new(ProcessInfo {
        pid: 1,
        exe: "/usr/bin/python3".into(),
        comm: "python3".into(),
        ..Default::default()
    });
    let bounds = LinkBounds {
        wait_ns: 1_000_000_000,
        max_held: 10_000,
    };

    // Cost: chains of four, children first, in batches of 64 chains as the
    // reader forwards them; the exchanges are built outside the timing.
    let stats = Arc::new(CaptureStats::default());
    let mut linker = Linker::new(bounds, IdSource::default(), stats.clone());
    let (mut n, mut cpu, mut linked) = (0u64, Duration::ZERO, 0u64);
    let mut out = Vec::with_capacity(256);
    while cpu.as_secs_f64() < secs {
        let batch: Vec<Output> = (n..n + 64)
            .flat_map(|i| chain(&p, i))
            .map(Output::Exchange)
            .collect();
        n += 64;
        out.extend(batch);
        let now = n * 1_000_000;
        let start = thread_cpu();
        linker.link(&mut out, now);
        linker.expire(now, &mut out);
        cpu += thread_cpu() - start;
        linked += out.len() as u64;
        out.clear();
    }
    let s = stats.snapshot();
    assert_eq!(
        (linker.held(), linker.waiting_entries()),
        (0, 0),
        "nothing left held or waited for"
    );
    assert_eq!(linked, 4 * n, "every exchange out");
    assert_eq!(
        (
            s.trace_links_connection,
            s.trace_links_thread,
            s.trace_links_root
        ),
        (2 * n, n, n),
        "every chain linked"
    );
    println!(
        "linker: {linked} exchanges in chains of 4, children first: {:.0} ns per exchange \
         ({:.2} M exchanges/s/core)",
        cpu.as_nanos() as f64 / linked as f64,
        linked as f64 / cpu.as_secs_f64() / 1e6,
    );

    // Memory at saturation: max_held children whose parents never come.
    let stats = Arc::new(CaptureStats::default());
    let mut linker = Linker::new(bounds, IdSource::default(), stats.clone());
    let exchanges: Vec<Output> = (0..bounds.max_held as u64 + 100)
        .map(|i| {
            let [b_server, ..] = chain(&p, i + 1_000_000);
            Output::Exchange(b_server)
        })
        .collect();
    let one = {
        let before = LIVE.load(Ordering::Relaxed);
        let e = chain(&p, 1);
        let after = LIVE.load(Ordering::Relaxed);
        drop(e);
        (after - before) / 4
    };
    let before = LIVE.load(Ordering::Relaxed);
    let mut out = exchanges;
    linker.link(&mut out, 0);
    // The exchanges were allocated before: what grows is the linker's own.
    let maps = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(linker.held(), bounds.max_held);
    assert_eq!(stats.snapshot().trace_links_root_full, 100);
    let held = bounds.max_held as isize;
    println!(
        "linker at saturation: {held} spans held (max_held), {} sent at once as root_full; \
         {:.1} MiB live for them: {} B each = the exchange (level details, curl's \
         headers) {one} B + the linker's maps {} B",
        out.len(),
        ((one + maps / held) * held) as f64 / (1 << 20) as f64,
        one + maps / held,
        maps / held,
    );
    let mut rest = Vec::new();
    linker.flush(&mut rest);
    assert_eq!(rest.len(), bounds.max_held);
}
