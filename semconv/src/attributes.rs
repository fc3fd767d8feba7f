//! Attribute keys: OpenTelemetry semantic conventions plus the agent's `tap.` namespace.

/// `http.request.method`
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// `http.response.status_code`
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// `url.full`
pub const URL_FULL: &str = "url.full";
/// `url.path`
pub const URL_PATH: &str = "url.path";
/// `url.query`
pub const URL_QUERY: &str = "url.query";
/// `url.scheme`
pub const URL_SCHEME: &str = "url.scheme";
/// `server.address`
pub const SERVER_ADDRESS: &str = "server.address";
/// `server.port`
pub const SERVER_PORT: &str = "server.port";
/// `client.address`
pub const CLIENT_ADDRESS: &str = "client.address";
/// `network.peer.address`
pub const NETWORK_PEER_ADDRESS: &str = "network.peer.address";
/// `network.peer.port`
pub const NETWORK_PEER_PORT: &str = "network.peer.port";
/// `network.protocol.name`
pub const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
/// `network.protocol.version`
pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
/// `user_agent.original`
pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";
/// `http.request.body.size`
pub const HTTP_REQUEST_BODY_SIZE: &str = "http.request.body.size";
/// `http.response.body.size`
pub const HTTP_RESPONSE_BODY_SIZE: &str = "http.response.body.size";
/// `error.type`
pub const ERROR_TYPE: &str = "error.type";
/// `process.pid`
pub const PROCESS_PID: &str = "process.pid";
/// `process.executable.path`
pub const PROCESS_EXECUTABLE_PATH: &str = "process.executable.path";
/// `process.executable.name`
pub const PROCESS_EXECUTABLE_NAME: &str = "process.executable.name";
/// `process.command_line`
pub const PROCESS_COMMAND_LINE: &str = "process.command_line";
/// `tls.protocol.version`
pub const TLS_PROTOCOL_VERSION: &str = "tls.protocol.version";
/// `tls.client.server_name`
pub const TLS_CLIENT_SERVER_NAME: &str = "tls.client.server_name";
/// `tls.cipher`
pub const TLS_CIPHER: &str = "tls.cipher";
/// `tls.next_protocol`
pub const TLS_NEXT_PROTOCOL: &str = "tls.next_protocol";
/// `tls.established`
pub const TLS_ESTABLISHED: &str = "tls.established";
/// `tap.direction`
pub const TAP_DIRECTION: &str = "tap.direction";
/// `tap.connection.id`
pub const TAP_CONNECTION_ID: &str = "tap.connection.id";
/// `tap.l7_protocol`
pub const TAP_L7_PROTOCOL: &str = "tap.l7_protocol";
/// `tap.tls.probe`
pub const TAP_TLS_PROBE: &str = "tap.tls.probe";
/// `tap.bytes_sent`
pub const TAP_BYTES_SENT: &str = "tap.bytes_sent";
/// `tap.bytes_received`
pub const TAP_BYTES_RECEIVED: &str = "tap.bytes_received";
/// `http.request.method_original` (set when the method was normalised to `_OTHER`)
pub const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
/// Prefix of `http.request.header.<lowercase name>`
pub const HTTP_REQUEST_HEADER_PREFIX: &str = "http.request.header.";
/// Prefix of `http.response.header.<lowercase name>`
pub const HTTP_RESPONSE_HEADER_PREFIX: &str = "http.response.header.";
/// `network.local.address`
pub const NETWORK_LOCAL_ADDRESS: &str = "network.local.address";
/// `network.local.port`
pub const NETWORK_LOCAL_PORT: &str = "network.local.port";
/// `network.io.direction` (`transmit` / `receive`)
pub const NETWORK_IO_DIRECTION: &str = "network.io.direction";
/// `tls.protocol.name` (`tls` or `ssl`)
pub const TLS_PROTOCOL_NAME: &str = "tls.protocol.name";
/// `service.name`
pub const SERVICE_NAME: &str = "service.name";
/// `service.instance.id`
pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";
/// `host.name`
pub const HOST_NAME: &str = "host.name";
/// `os.type`
pub const OS_TYPE: &str = "os.type";
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
/// `tap.adopted` (the connection existed before the agent saw it open)
pub const TAP_ADOPTED: &str = "tap.adopted";
/// `tap.close_reason`
pub const TAP_CLOSE_REASON: &str = "tap.close_reason";
/// `tap.capture.issues` (why a connection report is a warning)
pub const TAP_CAPTURE_ISSUES: &str = "tap.capture.issues";
/// `tap.drop.reason` (label of the `tap.drops` metric)
pub const TAP_DROP_REASON: &str = "tap.drop.reason";
/// `tap.signal` (`traces`, `metrics`, `logs`; label of `tap.export.failures`)
pub const TAP_SIGNAL: &str = "tap.signal";
/// `container.id`
pub const CONTAINER_ID: &str = "container.id";
/// `k8s.pod.uid`
pub const K8S_POD_UID: &str = "k8s.pod.uid";
/// `rpc.system`
pub const RPC_SYSTEM: &str = "rpc.system";
/// `rpc.service`
pub const RPC_SERVICE: &str = "rpc.service";
/// `rpc.method`
pub const RPC_METHOD: &str = "rpc.method";
/// `rpc.grpc.status_code`
pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";
/// `tap.http2.stream_id`
pub const TAP_HTTP2_STREAM_ID: &str = "tap.http2.stream_id";
/// `tap.http2.reset_code`: RST_STREAM error code.
pub const TAP_HTTP2_RESET_CODE: &str = "tap.http2.reset_code";
/// `tap.http2.headers_degraded`: HPACK state was missed, some headers are unknown.
pub const TAP_HTTP2_HEADERS_DEGRADED: &str = "tap.http2.headers_degraded";
