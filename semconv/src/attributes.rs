//! Attribute keys: OpenTelemetry semantic conventions plus the agent's `tap.` namespace.
//!
//! **Pinned version: OpenTelemetry semantic conventions 1.42.0**
//! ([`SCHEMA_URL`]), as published by the `opentelemetry-semantic-conventions`
//! crate 0.33 (feature `semconv_experimental`). Every convention name below
//! is taken from that crate's `attribute` module rather than spelled out
//! here, so a name the pinned version deprecates fails the build (`-D
//! warnings` denies the use of a deprecated constant). Names the crate has
//! no constant for (the `http.*.header.` prefixes) are checked against it
//! in the tests; `tap.*` names are the agent's own.

use opentelemetry_semantic_conventions::attribute as sc;

/// The schema URL of the pinned semantic-conventions version (1.42.0).
pub const SCHEMA_URL: &str = opentelemetry_semantic_conventions::SCHEMA_URL;

/// `http.request.method`
pub const HTTP_REQUEST_METHOD: &str = sc::HTTP_REQUEST_METHOD;
/// `http.response.status_code`
pub const HTTP_RESPONSE_STATUS_CODE: &str = sc::HTTP_RESPONSE_STATUS_CODE;
/// `url.full`
pub const URL_FULL: &str = sc::URL_FULL;
/// `url.path`
pub const URL_PATH: &str = sc::URL_PATH;
/// `url.query`
pub const URL_QUERY: &str = sc::URL_QUERY;
/// `url.scheme`
pub const URL_SCHEME: &str = sc::URL_SCHEME;
/// `server.address`
pub const SERVER_ADDRESS: &str = sc::SERVER_ADDRESS;
/// `server.port`
pub const SERVER_PORT: &str = sc::SERVER_PORT;
/// `client.address`
pub const CLIENT_ADDRESS: &str = sc::CLIENT_ADDRESS;
/// `network.peer.address`
pub const NETWORK_PEER_ADDRESS: &str = sc::NETWORK_PEER_ADDRESS;
/// `network.peer.port`
pub const NETWORK_PEER_PORT: &str = sc::NETWORK_PEER_PORT;
/// `network.protocol.name`
pub const NETWORK_PROTOCOL_NAME: &str = sc::NETWORK_PROTOCOL_NAME;
/// `network.protocol.version`
pub const NETWORK_PROTOCOL_VERSION: &str = sc::NETWORK_PROTOCOL_VERSION;
/// `user_agent.original`
pub const USER_AGENT_ORIGINAL: &str = sc::USER_AGENT_ORIGINAL;
/// `http.request.size`: the request's HTTP bytes (request line, headers,
/// framing, body)
pub const HTTP_REQUEST_SIZE: &str = sc::HTTP_REQUEST_SIZE;
/// `http.response.size`: the response's HTTP bytes (status line, headers,
/// framing, body)
pub const HTTP_RESPONSE_SIZE: &str = sc::HTTP_RESPONSE_SIZE;
/// `http.request.body.size`
pub const HTTP_REQUEST_BODY_SIZE: &str = sc::HTTP_REQUEST_BODY_SIZE;
/// `http.response.body.size`
pub const HTTP_RESPONSE_BODY_SIZE: &str = sc::HTTP_RESPONSE_BODY_SIZE;
/// `error.type`
pub const ERROR_TYPE: &str = sc::ERROR_TYPE;
/// `process.pid`
pub const PROCESS_PID: &str = sc::PROCESS_PID;
/// `process.executable.path`
pub const PROCESS_EXECUTABLE_PATH: &str = sc::PROCESS_EXECUTABLE_PATH;
/// `process.executable.name`
pub const PROCESS_EXECUTABLE_NAME: &str = sc::PROCESS_EXECUTABLE_NAME;
/// `process.command_args` (string array)
pub const PROCESS_COMMAND_ARGS: &str = sc::PROCESS_COMMAND_ARGS;
/// `tls.protocol.version`
pub const TLS_PROTOCOL_VERSION: &str = sc::TLS_PROTOCOL_VERSION;
/// `tls.cipher`
pub const TLS_CIPHER: &str = sc::TLS_CIPHER;
/// `tls.next_protocol`
pub const TLS_NEXT_PROTOCOL: &str = sc::TLS_NEXT_PROTOCOL;
/// `tls.established`
pub const TLS_ESTABLISHED: &str = sc::TLS_ESTABLISHED;
/// `tap.direction`
pub const TAP_DIRECTION: &str = "tap.direction";
/// `tap.connection.id`
pub const TAP_CONNECTION_ID: &str = "tap.connection.id";
/// `tap.l7_protocol`
pub const TAP_L7_PROTOCOL: &str = "tap.l7_protocol";
/// `tap.tls.probe`
pub const TAP_TLS_PROBE: &str = "tap.tls.probe";
/// `tap.wire_bytes_sent`: bytes the process wrote to the connection's
/// socket (ciphertext on TLS), on the connection report
pub const TAP_WIRE_BYTES_SENT: &str = "tap.wire_bytes_sent";
/// `tap.wire_bytes_received`: bytes the process read from the connection's
/// socket (ciphertext on TLS), on the connection report
pub const TAP_WIRE_BYTES_RECEIVED: &str = "tap.wire_bytes_received";
/// `http.request.method_original` (set when the method was normalised to `_OTHER`)
pub const HTTP_REQUEST_METHOD_ORIGINAL: &str = sc::HTTP_REQUEST_METHOD_ORIGINAL;
/// Prefix of `http.request.header.<lowercase name>`
pub const HTTP_REQUEST_HEADER_PREFIX: &str = "http.request.header.";
/// Prefix of `http.response.header.<lowercase name>`
pub const HTTP_RESPONSE_HEADER_PREFIX: &str = "http.response.header.";
/// `network.local.address`
pub const NETWORK_LOCAL_ADDRESS: &str = sc::NETWORK_LOCAL_ADDRESS;
/// `network.local.port`
pub const NETWORK_LOCAL_PORT: &str = sc::NETWORK_LOCAL_PORT;
/// `network.io.direction` (`transmit` / `receive`)
pub const NETWORK_IO_DIRECTION: &str = sc::NETWORK_IO_DIRECTION;
/// `tls.protocol.name` (`tls` or `ssl`)
pub const TLS_PROTOCOL_NAME: &str = sc::TLS_PROTOCOL_NAME;
/// `service.name`
pub const SERVICE_NAME: &str = sc::SERVICE_NAME;
/// `service.instance.id`
pub const SERVICE_INSTANCE_ID: &str = sc::SERVICE_INSTANCE_ID;
/// `host.name`
pub const HOST_NAME: &str = sc::HOST_NAME;
/// `os.type`
pub const OS_TYPE: &str = sc::OS_TYPE;
/// `tap.partial` (the exchange is missing a side or is incomplete)
pub const TAP_PARTIAL: &str = "tap.partial";
/// `tap.gap` (bytes were missing inside the exchange)
pub const TAP_GAP: &str = "tap.gap";
/// `tap.request.body.truncated` (bytes of the captured request body are
/// missing: body limit, kernel copy cap or a gap; the size stays exact)
pub const TAP_REQUEST_BODY_TRUNCATED: &str = "tap.request.body.truncated";
/// `tap.response.body.truncated` (as for the request)
pub const TAP_RESPONSE_BODY_TRUNCATED: &str = "tap.response.body.truncated";
/// `tap.endpoint.id`
pub const TAP_ENDPOINT_ID: &str = "tap.endpoint.id";
/// `tap.role` (`client`, `server`, `unknown`)
pub const TAP_ROLE: &str = "tap.role";
/// `tap.tls.probes` (all probe types that delivered plaintext)
pub const TAP_TLS_PROBES: &str = "tap.tls.probes";
/// `tap.tls.client_hello` (a TLS ClientHello was seen)
pub const TAP_TLS_CLIENT_HELLO: &str = "tap.tls.client_hello";
/// `tap.protocol_event` (an application-protocol message was parsed)
pub const TAP_PROTOCOL_EVENT: &str = "tap.protocol_event";
/// `tap.data_events`
pub const TAP_DATA_EVENTS: &str = "tap.data_events";
/// `tap.duration_ms`
pub const TAP_DURATION_MS: &str = "tap.duration_ms";
/// `tap.exchanges`
pub const TAP_EXCHANGES: &str = "tap.exchanges";
/// `tap.partial_exchanges`
pub const TAP_PARTIAL_EXCHANGES: &str = "tap.partial_exchanges";
/// `tap.gap_exchanges` (exchanges of the connection flagged `gap`)
pub const TAP_GAP_EXCHANGES: &str = "tap.gap_exchanges";
/// `tap.gap.causes` (why bytes of the exchange are missing: `lost_bytes`,
/// `cut_by_kernel_cap`, `joined_mid_stream`, `not_visible`)
pub const TAP_GAP_CAUSES: &str = "tap.gap.causes";
/// `tap.parse_errors`
pub const TAP_PARSE_ERRORS: &str = "tap.parse_errors";
/// `tap.lost_events`
pub const TAP_LOST_EVENTS: &str = "tap.lost_events";
/// `tap.truncated_bytes`
pub const TAP_TRUNCATED_BYTES: &str = "tap.truncated_bytes";
/// `tap.skipped_bytes` (body bytes the kernel skipped on purpose: the
/// capture level does not keep them; set when not 0)
pub const TAP_SKIPPED_BYTES: &str = "tap.skipped_bytes";
/// `tap.adopted` (the connection existed before the agent saw it open)
pub const TAP_ADOPTED: &str = "tap.adopted";
/// `tap.close_reason`
pub const TAP_CLOSE_REASON: &str = "tap.close_reason";
/// `tap.capture.issues` (why a connection report is a warning)
pub const TAP_CAPTURE_ISSUES: &str = "tap.capture.issues";
/// `tap.drop.reason` (label of the `tap.dropped.*` metrics)
pub const TAP_DROP_REASON: &str = "tap.drop.reason";
/// `tap.skip.reason` (label of `tap.skipped.spans`: `not_sampled`,
/// `exported_by_program`)
pub const TAP_SKIP_REASON: &str = "tap.skip.reason";
/// `tap.signal` (`traces`, `metrics`, `logs`; label of `tap.export.failures`)
pub const TAP_SIGNAL: &str = "tap.signal";
/// `tap.trace.link`: how the span got its place in its trace
/// (`traceparent`, `connection`, `thread`, `root`, `root_ambiguous`,
/// `root_timeout`, `root_full`); also the label of `tap.trace.links`
pub const TAP_TRACE_LINK: &str = "tap.trace.link";
/// `container.id`
pub const CONTAINER_ID: &str = sc::CONTAINER_ID;
/// `k8s.pod.uid`
pub const K8S_POD_UID: &str = sc::K8S_POD_UID;
/// `rpc.system.name`
pub const RPC_SYSTEM_NAME: &str = sc::RPC_SYSTEM_NAME;
/// `rpc.method` (fully qualified: `service/method`)
pub const RPC_METHOD: &str = sc::RPC_METHOD;
/// `rpc.response.status_code` (for gRPC: the status name, e.g. `OK`)
pub const RPC_RESPONSE_STATUS_CODE: &str = sc::RPC_RESPONSE_STATUS_CODE;
/// `tap.http2.stream_id`
pub const TAP_HTTP2_STREAM_ID: &str = "tap.http2.stream_id";
/// `tap.http2.reset_code`: RST_STREAM error code.
pub const TAP_HTTP2_RESET_CODE: &str = "tap.http2.reset_code";
/// `tap.http2.headers_degraded`: HPACK state was missed, some headers are unknown.
pub const TAP_HTTP2_HEADERS_DEGRADED: &str = "tap.http2.headers_degraded";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_version_is_1_42_0() {
        assert_eq!(SCHEMA_URL, "https://opentelemetry.io/schemas/1.42.0");
    }

    #[test]
    fn header_prefixes_are_the_template_attributes() {
        assert_eq!(
            HTTP_REQUEST_HEADER_PREFIX,
            format!("{}.", sc::HTTP_REQUEST_HEADER)
        );
        assert_eq!(
            HTTP_RESPONSE_HEADER_PREFIX,
            format!("{}.", sc::HTTP_RESPONSE_HEADER)
        );
    }
}
