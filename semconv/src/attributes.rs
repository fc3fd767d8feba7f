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
