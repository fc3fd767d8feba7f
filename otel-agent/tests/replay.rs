//! Real captures replayed without the kernel (`bench/record.sh` recorded them
//! from h2load against nginx on loopback): every exchange comes out, with the
//! right method, path, status, sizes and TLS facts. Guards the parsers on
//! real traffic, and the recordings the pipeline benchmark uses.

use std::path::Path;
use std::sync::Arc;

use otel_agent::internal_events::CaptureStats;
use otel_agent::track::clock::Clock;
use otel_agent::track::tracker::Tracker;
use otel_agent_config::Settings;
use semconv::model::Output;
use semconv::model::{Exchange, L7Protocol};

fn replay(name: &str) -> (Vec<Exchange>, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/recordings")
        .join(name);
    let records = otel_agent::capture::recording::read(&path).unwrap();
    let stats = Arc::new(CaptureStats::default());
    let mut tracker = Tracker::new(
        Arc::new(Settings::default()),
        Clock::with_offset(0),
        stats.clone(),
    );
    let mut out = Vec::new();
    for r in &records {
        tracker.handle_record(r, &mut out);
    }
    tracker.shutdown(&mut out);
    assert_eq!(stats.snapshot().decode_errors, 0);
    let mut exchanges = Vec::new();
    let mut reports = 0;
    for o in out {
        match o {
            Output::Exchange(e) => exchanges.push(*e),
            Output::Report(_) => reports += 1,
        }
    }
    (exchanges, reports)
}

fn check_get_small(exchanges: &[Exchange], protocol: L7Protocol) {
    // 1,000 requests, each seen from h2load (client) and nginx (server).
    assert_eq!(exchanges.len(), 2000);
    let egress = exchanges
        .iter()
        .filter(|e| e.connection.direction.is_egress())
        .count();
    assert_eq!(egress, 1000, "client side");
    for e in exchanges {
        assert_eq!(e.connection.protocol, protocol);
        assert!(!e.partial && !e.gap, "{e:?}");
        let req = e.request.as_ref().unwrap();
        let resp = e.response.as_ref().unwrap();
        assert_eq!((req.method.as_str(), req.path()), ("GET", "/small"));
        assert_eq!((resp.status, resp.body_size), (200, 256));
        assert!(e.end_unix_ns >= e.start_unix_ns);
    }
}

#[test]
fn recorded_http1_keepalive_replays_to_every_exchange() {
    let (exchanges, reports) = replay("http1.rec.gz");
    check_get_small(&exchanges, L7Protocol::Http1);
    assert_eq!(reports, 8, "4 connections, both sides");
    for e in &exchanges {
        assert_eq!(e.request.as_ref().unwrap().version, "1.1");
        assert!(e.connection.tls.is_none());
    }
}

#[test]
fn recorded_http2_over_tls_replays_to_every_stream() {
    let (exchanges, reports) = replay("http2.rec.gz");
    check_get_small(&exchanges, L7Protocol::Http2);
    assert_eq!(reports, 8, "4 connections, both sides");
    for e in &exchanges {
        assert!(e.http2.is_some());
        let tls = e.connection.tls.as_ref().expect("TLS facts");
        assert_eq!(tls.version, Some(0x0304), "TLS 1.3: {tls:?}");
        assert_eq!(tls.alpn.as_deref(), Some("h2"), "{tls:?}");
    }
}
