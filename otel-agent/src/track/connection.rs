//! One live connection as the tracker sees it: the [`Connection`] its
//! exchanges and report carry, its role and how that is learnt, its stream
//! offsets and counters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bpf_probes::events::{BodySkip, ConnOpenEvent, Direction as KDirection, Role};
use protocols::detect::{detect, Detected};
use protocols::tls_handshake::TlsHandshakeParser;
use protocols::Side;
use semconv::model::{Connection, Direction, Endpoints, L7Protocol};

use crate::track::link_evidence::ConnLinks;
use crate::track::parser::Parser;
use crate::track::process::SystemView;
use crate::track::trace_events::Module;

/// One live connection: the [`Connection`] its exchanges and its report
/// carry, kept up to date as the connection is learnt, and the tracker's own
/// state (role, offsets, parsers, counters).
pub(crate) struct Conn {
    /// Id, process, direction, addresses, protocol and TLS facts. `direction`
    /// follows `role`: [`Conn::learn_role`] updates both.
    pub(crate) connection: Connection,
    pub(crate) pid: u32,
    pub(crate) fd: u32,
    pub(crate) role: Role,
    pub(crate) adopted: bool,
    pub(crate) opened_ns: u64,
    /// Kernel timestamp of the last event (for idle eviction).
    pub(crate) last_ns: u64,
    pub(crate) filtered: bool,
    pub(crate) parser: Option<Parser>,
    /// TLS handshake parsers, one per direction (fed on TLS connections only).
    pub(crate) handshake: [TlsHandshakeParser; 2],
    /// Next expected stream offset, by [socket bytes, TLS plaintext] and direction.
    pub(crate) next_offset: [[u64; 2]; 2],
    pub(crate) data_events: u64,
    pub(crate) gap_bytes: u64,
    /// Bytes the kernel skipped on purpose (body not kept): counted, not lost.
    pub(crate) skipped_bytes: u64,
    /// The kernel's skip marks, as last set (see `track::skip`).
    pub(crate) skip: BodySkip,
    /// Of `skipped_bytes`, those the kernel left uncopied for its own
    /// reasons (per-call cap, sendfile) and counted as truncated.
    pub(crate) uncopied_body: u64,
    pub(crate) exchanges: u64,
    pub(crate) partial_exchanges: u64,
    pub(crate) gap_exchanges: u64,
    pub(crate) got_protocol_event: bool,
    /// `--trace-events` modules selected for this connection's process.
    pub(crate) traced: Vec<Module>,
    /// What connected traces need from this connection.
    pub(crate) links: ConnLinks,
}

fn ip_from(family: u16, raw: &[u8; 16]) -> IpAddr {
    if family == 10 {
        let v6 = Ipv6Addr::from(*raw);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    } else {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    }
}

/// Ingress for a server; otherwise egress, internal or external by the remote address.
pub(crate) fn direction_of(role: Role, endpoints: &Endpoints) -> Direction {
    match role {
        Role::Server => Direction::Ingress,
        _ => Direction::egress_to(endpoints.remote.ip()),
    }
}

pub(crate) fn endpoints_of(ev: &ConnOpenEvent) -> Endpoints {
    Endpoints {
        local: SocketAddr::new(ip_from(ev.family, &ev.saddr), ev.sport),
        remote: SocketAddr::new(ip_from(ev.family, &ev.daddr), ev.dport),
    }
}

impl Conn {
    /// A connection with nothing seen on it yet.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        connection: Connection,
        pid: u32,
        fd: u32,
        role: Role,
        adopted: bool,
        opened_ns: u64,
        filtered: bool,
        traced: Vec<Module>,
    ) -> Self {
        Self {
            connection,
            pid,
            fd,
            role,
            adopted,
            opened_ns,
            last_ns: opened_ns,
            filtered,
            parser: None,
            handshake: Default::default(),
            next_offset: [[0; 2]; 2],
            data_events: 0,
            gap_bytes: 0,
            skipped_bytes: 0,
            skip: BodySkip::default(),
            uncopied_body: 0,
            exchanges: 0,
            partial_exchanges: 0,
            gap_exchanges: 0,
            got_protocol_event: false,
            traced,
            links: ConnLinks::default(),
        }
    }

    pub(crate) fn traces(&self, m: Module) -> bool {
        self.traced.contains(&m)
    }

    pub(crate) fn role_name(&self) -> &'static str {
        match self.role {
            Role::Client => "client",
            Role::Server => "server",
            Role::Unknown => "unknown",
        }
    }

    /// Which parser side bytes flowing in `dir` belong to, once the role is known.
    pub(crate) fn side(&self, dir: KDirection) -> Option<Side> {
        match (self.role, dir) {
            (Role::Client, KDirection::Egress) | (Role::Server, KDirection::Ingress) => {
                Some(Side::Request)
            }
            (Role::Client, KDirection::Ingress) | (Role::Server, KDirection::Egress) => {
                Some(Side::Response)
            }
            (Role::Unknown, _) => None,
        }
    }

    /// An adopted connection learns its role from the first plaintext it carries.
    pub(crate) fn learn_role(
        &mut self,
        dir: KDirection,
        first: &[u8],
        system: &dyn SystemView,
    ) -> Detected {
        let d = detect(first);
        if self.role == Role::Unknown {
            self.role = match (d, dir) {
                (Detected::Http1Request | Detected::Http2Preface, KDirection::Egress) => {
                    Role::Client
                }
                (Detected::Http1Request | Detected::Http2Preface, KDirection::Ingress) => {
                    Role::Server
                }
                (Detected::Http1Response, KDirection::Egress) => Role::Server,
                (Detected::Http1Response, KDirection::Ingress) => Role::Client,
                // Both peers send HEADERS on odd streams: the side on an
                // ephemeral port is the client.
                (Detected::Http2Frame | Detected::Http2Settings, _) => {
                    role_from_ports(system, self.pid, &self.connection.endpoints)
                }
                _ => Role::Unknown,
            };
            self.connection.direction = direction_of(self.role, &self.connection.endpoints);
        }
        d
    }
}

/// The role of a connection joined mid-stream, from its ports: our local
/// port is listening (in the process's network namespace) → server; else the
/// side on Linux's ephemeral range is the client.
fn role_from_ports(system: &dyn SystemView, pid: u32, e: &Endpoints) -> Role {
    if system.listening(pid, e.local.port()) {
        return Role::Server;
    }
    let ephemeral = |p: u16| (32768..=60999).contains(&p);
    match (ephemeral(e.local.port()), ephemeral(e.remote.port())) {
        (_, false) | (true, true) => Role::Client,
        (false, true) => Role::Server,
    }
}

/// The model's protocol for what detection found.
pub(crate) fn l7_of(p: protocols::detect::Protocol) -> L7Protocol {
    match p {
        protocols::detect::Protocol::Http1 => L7Protocol::Http1,
        protocols::detect::Protocol::Http2 => L7Protocol::Http2,
        protocols::detect::Protocol::Other => L7Protocol::Other,
    }
}

/// Totals the kernel keeps per connection, delivered with its close event.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KernelTotals {
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
    /// TLS plaintext the probes streamed (0 when unknown: older recordings).
    pub(crate) plain_sent: u64,
    pub(crate) plain_received: u64,
    pub(crate) lost_events: u64,
    pub(crate) truncated_bytes: u64,
}
