//! TLS on a connection: the handshake read from its raw records (SNI,
//! versions, cipher, ALPN), and which probe delivered its plaintext.

use bpf_probes::events::{Direction as KDirection, Source};
use protocols::tls_handshake::{self, HandshakeMessage};
use std::sync::Arc;

use semconv::model::L7Protocol;
use tracing::debug;

use crate::internal_events::{incr, CaptureStats};
use crate::track::connection::Conn;
use crate::track::trace_events::Module;

/// Plaintext arrived from a TLS probe: remember the probe type on the
/// connection (counted the first time a probe delivers on it).
pub(crate) fn note_probe(conn: &mut Conn, source: Source, stats: &CaptureStats) {
    incr(&stats.tls_plaintext_events);
    let (probe, counter) = match source {
        Source::Gnutls => ("gnutls", &stats.tls_connections_gnutls),
        Source::Go => ("go", &stats.tls_connections_go),
        _ => ("openssl", &stats.tls_connections_openssl),
    };
    let tls = conn.connection.tls.get_or_insert_with(Default::default);
    let first = !tls.probes.iter().any(|p| p == probe);
    if first {
        // Written only when it changes: exchanges still share the old facts.
        Arc::make_mut(tls).probes.push(probe.to_string());
        incr(counter);
        debug!(conn = conn.connection.id, probe, "TLS plaintext");
        tev!(conn, Tls, probe, "first TLS plaintext from a probe");
    }
}

/// TLS 1.3 sends the chosen ALPN encrypted: infer it from the plaintext
/// protocol when the client offered it.
pub(crate) fn infer_alpn(conn: &mut Conn) {
    let Some(tls) = conn.connection.tls.as_mut() else {
        return;
    };
    if tls.alpn.is_some() {
        return;
    }
    let id = match conn.connection.protocol {
        L7Protocol::Http1 => "http/1.1",
        L7Protocol::Http2 => "h2",
        _ => return,
    };
    if tls.alpn_offered.iter().any(|a| a == id) {
        Arc::make_mut(tls).alpn = Some(id.to_string());
    }
}

/// Raw bytes of a TLS connection: look for the ClientHello / ServerHello.
pub(crate) fn tls_bytes(conn: &mut Conn, dir: KDirection, payload: &[u8]) {
    let (traced, id) = (conn.traces(Module::Tls), conn.connection.id);
    let tls = conn.connection.tls.get_or_insert_with(Default::default);
    let Some(parser) = conn.handshake.get_mut(dir as usize) else {
        return;
    };
    if parser.is_done() {
        return;
    }
    // Copied first only if an exchange still holds the facts (a handshake
    // is parsed before the connection's first exchange).
    let tls = Arc::make_mut(tls);
    match parser.push(payload) {
        Ok(Some(HandshakeMessage::ClientHello(ch))) => {
            debug!(conn = id, sni = ?ch.server_name, alpn = ?ch.alpn, "TLS ClientHello");
            if traced {
                tracing::info!(target: "otel_agent::track::trace_events", conn = id, module = "Tls",
                    sni = ?ch.server_name, alpn = ?ch.alpn, versions = ?ch.supported_versions, "TLS ClientHello");
            }
            tls.got_client_hello = true;
            tls.server_name = ch.server_name;
            tls.alpn_offered = ch.alpn;
        }
        Ok(Some(HandshakeMessage::ServerHello(sh))) => {
            debug!(
                conn = id,
                version = sh.version(),
                cipher = sh.cipher_suite,
                "TLS ServerHello"
            );
            if traced {
                tracing::info!(target: "otel_agent::track::trace_events", conn = id, module = "Tls",
                    version = sh.version(), cipher = sh.cipher_suite, alpn = ?sh.alpn, "TLS ServerHello");
            }
            tls.version = Some(sh.version());
            tls.cipher = tls_handshake::cipher_suite_name(sh.cipher_suite)
                .map(str::to_string)
                .or_else(|| Some(format!("0x{:04x}", sh.cipher_suite)));
            if sh.alpn.is_some() {
                tls.alpn = sh.alpn;
            }
        }
        Ok(None) => {}
        Err(e) => debug!(conn = id, error = %e, "TLS handshake not parsed"),
    }
}
