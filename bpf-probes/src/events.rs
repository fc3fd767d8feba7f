//! `#[repr(C)]` mirrors of `bpf/include/events.h` and safe decoding of ring-buffer records.

use std::mem::size_of;

/// Payload bytes carried by one data event (`MAX_PAYLOAD`).
pub const MAX_PAYLOAD: usize = 16384;
/// Size of a data event without its payload (`DATA_HEADER_SIZE`).
pub const DATA_HEADER_SIZE: usize = 56;
/// `CONN_FLAG_ADOPTED`: the connection existed before the agent saw it open.
pub const CONN_FLAG_ADOPTED: u32 = 1;
/// `DATA_FLAG_TRUNCATED`: fewer bytes captured than the event covers.
pub const DATA_FLAG_TRUNCATED: u8 = 1;
/// `DATA_FLAG_RAW_TLS`: ciphertext of a TLS connection (for the handshake).
pub const DATA_FLAG_RAW_TLS: u8 = 2;
/// `DATA_FLAG_SKIPPED`: body bytes skipped on purpose (userspace said, in the
/// `body_skip` map, that it does not keep them): `len` is exact, nothing is
/// captured, and nothing is lost.
pub const DATA_FLAG_SKIPPED: u8 = 4;
/// `DATA_FLAG_SKIPPED_TAIL`: the bytes past `captured` were skipped on
/// purpose (a vectored call's last buffer, taken for the body of the head
/// copied before it): not truncated, to be checked against the framing as a
/// [`DATA_FLAG_SKIPPED`] event is.
pub const DATA_FLAG_SKIPPED_TAIL: u8 = 8;

macro_rules! c_enum {
    ($(#[$m:meta])* $name:ident : $repr:ty { $($(#[$vm:meta])* $variant:ident = $value:expr,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name { $($(#[$vm])* $variant = $value,)* }
        impl $name {
            /// The variant for a raw value from the kernel, if it is one.
            pub fn from_raw(v: $repr) -> Option<Self> {
                match v { $($value => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

c_enum!(
    /// `enum event_kind`.
    EventKind: u32 {
        /// A connection is announced (before its first data event).
        ConnOpen = 1,
        /// Bytes of a connection.
        Data = 2,
        /// A connection was closed.
        ConnClose = 3,
        /// A process owning announced connections exited.
        ProcExit = 4,
        /// A process called execve (TLS library discovery looks at it).
        ProcExec = 5,
    }
);

c_enum!(
    /// `enum conn_role`.
    Role: u8 {
        /// Adopted: existed before the agent started.
        Unknown = 0,
        /// The process called `connect()`.
        Client = 1,
        /// The process called `accept()`.
        Server = 2,
    }
);

c_enum!(
    /// `enum direction`, from the observed process's point of view.
    Direction: u8 {
        /// The process wrote the bytes.
        Egress = 0,
        /// The process read the bytes.
        Ingress = 1,
    }
);

c_enum!(
    /// `enum data_source`: which probe delivered the bytes.
    Source: u8 {
        /// A socket syscall.
        Syscall = 0,
        /// An OpenSSL-compatible uprobe (plaintext).
        Openssl = 1,
        /// A GnuTLS uprobe (plaintext).
        Gnutls = 2,
        /// A Go `crypto/tls` uprobe (plaintext).
        Go = 3,
    }
);

c_enum!(
    /// `enum l7_hint`: the kernel's guess from the first bytes.
    L7Hint: u8 {
        /// Not decided yet.
        Unknown = 0,
        /// HTTP/1.x.
        Http1 = 1,
        /// The HTTP/2 client preface.
        Http2 = 2,
        /// A TLS record.
        Tls = 3,
        /// Anything else: not streamed.
        Other = 4,
    }
);

c_enum!(
    /// `enum syscall_id`.
    SyscallId: u8 {
        /// read(2)
        Read = 1,
        /// write(2)
        Write = 2,
        /// readv(2)
        Readv = 3,
        /// writev(2)
        Writev = 4,
        /// sendto(2) / send(2)
        Sendto = 5,
        /// recvfrom(2) / recv(2)
        Recvfrom = 6,
        /// sendmsg(2)
        Sendmsg = 7,
        /// recvmsg(2)
        Recvmsg = 8,
        /// sendfile(2): bytes not visible
        Sendfile = 9,
    }
);

c_enum!(
    /// `enum close_reason`.
    CloseReason: u8 {
        /// close(2).
        Syscall = 1,
        /// The owning process exited.
        ProcessExit = 2,
    }
);

c_enum!(
    /// `enum counter_id`: index into the per-CPU `counters` map.
    Counter: u32 {
        /// Events lost because the ring buffer was full.
        RingbufFull = 0,
        /// Data events whose payload was cut.
        TruncatedEvents = 1,
        /// Bytes not captured because of cuts.
        TruncatedBytes = 2,
        /// Connections not tracked because the map was full.
        ConnMapFull = 3,
        /// Data events sent.
        DataEvents = 4,
        /// Bytes seen on connections that are not streamed.
        IgnoredBytes = 5,
        /// Connections announced to userspace.
        ConnsTracked = 6,
        /// Syscalls of the agent itself, skipped.
        SelfSkipped = 7,
        /// TLS plaintext dropped: its socket was never seen.
        TlsUnmapped = 8,
        /// TLS uprobe and uretprobe hits.
        UprobeHits = 9,
        /// Data events lost: the CPU's scratch slot was held by a preempted
        /// program (`bpf/maps/scratch.h`).
        ScratchBusy = 10,
        /// Program runs the kernel skipped because another BPF program was
        /// running on that CPU (every program's `recursion_misses`, read by
        /// userspace from the programs' fdinfo; no program counts it).
        RecursionMisses = 11,
        /// Body bytes not copied on purpose ([`DATA_FLAG_SKIPPED`] events).
        SkippedBytes = 12,
        /// HTTP/2 frame walks the kernel gave up (a connection direction
        /// whose DATA payloads are copied from then on: nothing is lost).
        H2WalksLost = 13,
    }
);

/// Number of counters (`CNT_MAX`).
pub const COUNTER_COUNT: u32 = 14;

impl Counter {
    /// Every counter, in index order.
    pub const ALL: [Counter; COUNTER_COUNT as usize] = [
        Counter::RingbufFull,
        Counter::TruncatedEvents,
        Counter::TruncatedBytes,
        Counter::ConnMapFull,
        Counter::DataEvents,
        Counter::IgnoredBytes,
        Counter::ConnsTracked,
        Counter::SelfSkipped,
        Counter::TlsUnmapped,
        Counter::UprobeHits,
        Counter::ScratchBusy,
        Counter::RecursionMisses,
        Counter::SkippedBytes,
        Counter::H2WalksLost,
    ];
}

/// `struct event_header`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// Connection id (0 for process events).
    pub conn_id: u64,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub timestamp_ns: u64,
    /// [`EventKind`] as raw.
    pub kind: u32,
    /// Process id.
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    /// File descriptor.
    pub fd: u32,
}

/// `struct conn_open_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnOpenEvent {
    /// Common header.
    pub hdr: EventHeader,
    /// connect/accept time, or first data when adopted.
    pub opened_ns: u64,
    /// Local address (IPv4 in the first 4 bytes).
    pub saddr: [u8; 16],
    /// Remote address.
    pub daddr: [u8; 16],
    /// `AF_INET` (2) or `AF_INET6` (10).
    pub family: u16,
    /// Local port.
    pub sport: u16,
    /// Remote port.
    pub dport: u16,
    /// [`Role`] as raw.
    pub role: u8,
    /// [`L7Hint`] as raw.
    pub l7: u8,
    /// `CONN_FLAG_*`.
    pub flags: u32,
    /// Task comm (NUL-padded).
    pub comm: [u8; 16],
    /// Explicit padding.
    pub _pad: u32,
}

/// `struct data_event` without its payload (which follows it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataEventHeader {
    /// Common header.
    pub hdr: EventHeader,
    /// Stream offset of the first byte, per direction and source.
    pub offset: u64,
    /// Bytes of the stream this event covers.
    pub len: u32,
    /// Bytes present in the payload (≤ len).
    pub captured: u32,
    /// [`Direction`] as raw.
    pub direction: u8,
    /// [`Source`] as raw.
    pub source: u8,
    /// [`SyscallId`] as raw.
    pub syscall: u8,
    /// `DATA_FLAG_*`.
    pub flags: u8,
    /// Explicit padding.
    pub _pad: u32,
}

/// `struct conn_close_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnCloseEvent {
    /// Common header.
    pub hdr: EventHeader,
    /// Socket bytes written.
    pub bytes_sent: u64,
    /// Socket bytes read.
    pub bytes_received: u64,
    /// Bytes not captured (per-call cap, sendfile).
    pub truncated_bytes: u64,
    /// Data events sent.
    pub data_events: u32,
    /// Data events lost (ring buffer full).
    pub lost_events: u32,
    /// [`CloseReason`] as raw.
    pub reason: u8,
    /// [`L7Hint`] as raw.
    pub l7: u8,
    /// [`Role`] as raw.
    pub role: u8,
    /// Explicit padding.
    pub _pad: [u8; 5],
    /// TLS plaintext bytes streamed by the probes, sent (0 in recordings
    /// made before this field existed).
    pub plain_sent: u64,
    /// TLS plaintext bytes streamed by the probes, received.
    pub plain_received: u64,
}

/// Size of [`ConnCloseEvent`] before the plaintext totals were added: such
/// records (older recordings) decode with those totals 0.
pub const CONN_CLOSE_V1_SIZE: usize = 72;

/// Bytes of the exec'd path kept in an [`ExecEvent`].
pub const EXEC_PATH_LEN: usize = 256;
/// Bytes of the argument strings kept in an [`ExecEvent`].
pub const EXEC_ARGS_LEN: usize = 256;

/// `struct exec_event`: a new program image.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    /// Common header.
    pub hdr: EventHeader,
    /// The new comm (NUL-padded).
    pub comm: [u8; 16],
    /// Bytes of `filename` in use.
    pub filename_len: u32,
    /// Bytes of `args` in use.
    pub args_len: u32,
    /// The path given to exec.
    pub filename: [u8; EXEC_PATH_LEN],
    /// The first argument strings, NUL-separated (possibly cut).
    pub args: [u8; EXEC_ARGS_LEN],
}

impl ExecEvent {
    /// The exec'd path (lossy UTF-8), empty when unknown.
    pub fn filename(&self) -> String {
        let n = (self.filename_len as usize).min(EXEC_PATH_LEN);
        String::from_utf8_lossy(&self.filename[..n]).into_owned()
    }

    /// The argument strings, NUL-separated (possibly cut).
    pub fn args(&self) -> &[u8] {
        &self.args[..(self.args_len as usize).min(EXEC_ARGS_LEN)]
    }
}

/// `struct agent_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentConfig {
    /// The agent's own tgid: never captured.
    pub self_tgid: u32,
    /// 1: capture only tgids in the `pid_filter` map.
    pub filter_pids: u32,
    /// 1: every program returns at once (benchmarks: the cost of the traps alone).
    pub probes_only: u32,
    /// 1: accepted (ingress) connections are not captured.
    pub no_ingress: u32,
    /// 1: connected (egress) connections are not captured.
    pub no_egress: u32,
    /// 1: only connections whose service port is set in `port_filter`.
    pub filter_ports: u32,
    /// Bytes captured per data event, at most `MAX_PAYLOAD` (0: `MAX_PAYLOAD`).
    pub payload_cap: u32,
    /// Wake the reader once this many bytes wait in the ring buffer (0: every record).
    pub wakeup_bytes: u32,
    /// 1: no body is kept: the kernel walks HTTP/2 frames and skips DATA
    /// payloads (`DATA_FLAG_SKIPPED_TAIL`, `DATA_FLAG_SKIPPED`).
    pub h2_walk: u32,
    /// Explicit padding.
    pub _pad: u32,
}

// SAFETY: plain old data: repr(C), integer fields only, padding explicit.
unsafe impl aya::Pod for AgentConfig {}

/// `struct body_skip`: the value of the `body_skip` map (by connection id),
/// written by userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BodySkip {
    /// By [`Direction`]: the stream offset (socket bytes; TLS plaintext on a
    /// TLS connection) before which every byte is body userspace does not keep.
    pub until: [u64; 2],
    /// `BODY_SKIP_*`.
    pub flags: u32,
    /// Explicit padding.
    pub _pad: u32,
}

/// `BODY_SKIP_AFTER_HEAD`: an HTTP/1 connection that keeps no body at all:
/// in a writev/sendmsg, a buffer after one that ends a message head is
/// skipped as that message's body (unless it starts like a message or a
/// chunk-size line); in a buffer of 512 bytes or more that starts with a
/// message head, the `Content-Length` bytes after the head are skipped
/// (same exception). Userspace checks each such skip against the framing.
pub const BODY_SKIP_AFTER_HEAD: u32 = 1;

// SAFETY: `BodySkip` is `#[repr(C)]`, made of integers only, without padding.
unsafe impl aya::Pod for BodySkip {}

/// Marker for the event structs that may be read from raw bytes.
///
/// # Safety
/// Implementors are `repr(C)` with integer fields only, so every bit pattern is valid.
pub unsafe trait Plain: Copy {}
// SAFETY: see the trait.
unsafe impl Plain for EventHeader {}
// SAFETY: see the trait.
unsafe impl Plain for ConnOpenEvent {}
// SAFETY: see the trait.
unsafe impl Plain for DataEventHeader {}
// SAFETY: see the trait.
unsafe impl Plain for ConnCloseEvent {}
// SAFETY: see the trait.
unsafe impl Plain for ExecEvent {}

/// Read a `T` from the start of `bytes`, or None if there are too few.
pub fn read<T: Plain>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: length checked above; `T: Plain` accepts any bit pattern;
    // read_unaligned copes with any alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// A close event, also in its shorter first layout (totals it lacks are 0).
fn read_close(record: &[u8]) -> Option<Event<'_>> {
    if record.len() < CONN_CLOSE_V1_SIZE {
        return None;
    }
    let mut full = [0u8; size_of::<ConnCloseEvent>()];
    let n = record.len().min(full.len());
    full.get_mut(..n)?.copy_from_slice(record.get(..n)?);
    read(&full).map(Event::ConnClose)
}

/// A ring-buffer record decoded into its typed form, borrowing the payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// [`EventKind::ConnOpen`].
    ConnOpen(ConnOpenEvent),
    /// [`EventKind::Data`] with its captured payload.
    Data(DataEventHeader, &'a [u8]),
    /// [`EventKind::ConnClose`].
    ConnClose(ConnCloseEvent),
    /// [`EventKind::ProcExit`].
    ProcExit(EventHeader),
    /// [`EventKind::ProcExec`].
    ProcExec(Box<ExecEvent>),
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its header says.
    Short,
    /// Unknown event kind.
    UnknownKind(u32),
    /// `captured` larger than the payload limit or the record.
    BadLength,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Short => write!(f, "record shorter than its event header"),
            Self::UnknownKind(k) => write!(f, "unknown event kind {k}"),
            Self::BadLength => write!(f, "payload length out of bounds"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decode one ring-buffer record. Never panics.
pub fn decode(record: &[u8]) -> Result<Event<'_>, DecodeError> {
    let hdr: EventHeader = read(record).ok_or(DecodeError::Short)?;
    match EventKind::from_raw(hdr.kind) {
        Some(EventKind::ConnOpen) => read(record).map(Event::ConnOpen).ok_or(DecodeError::Short),
        Some(EventKind::ConnClose) => read_close(record).ok_or(DecodeError::Short),
        Some(EventKind::ProcExit) => Ok(Event::ProcExit(hdr)),
        Some(EventKind::ProcExec) => read(record)
            .map(|e| Event::ProcExec(Box::new(e)))
            .ok_or(DecodeError::Short),
        Some(EventKind::Data) => {
            let d: DataEventHeader = read(record).ok_or(DecodeError::Short)?;
            let n = d.captured as usize;
            if n > MAX_PAYLOAD || n > d.len as usize {
                return Err(DecodeError::BadLength);
            }
            let payload = record
                .get(DATA_HEADER_SIZE..DATA_HEADER_SIZE + n)
                .ok_or(DecodeError::Short)?;
            Ok(Event::Data(d, payload))
        }
        None => Err(DecodeError::UnknownKind(hdr.kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    /// The same numbers as the `_Static_assert`s in `bpf/include/events.h`.
    #[test]
    fn layout_matches_the_c_header() {
        assert_eq!(size_of::<EventHeader>(), 32);
        assert_eq!(size_of::<ConnOpenEvent>(), 104);
        assert_eq!(offset_of!(ConnOpenEvent, comm), 84);
        assert_eq!(offset_of!(ConnOpenEvent, saddr), 40);
        assert_eq!(offset_of!(ConnOpenEvent, family), 72);
        assert_eq!(offset_of!(ConnOpenEvent, role), 78);
        assert_eq!(offset_of!(ConnOpenEvent, flags), 80);
        assert_eq!(size_of::<DataEventHeader>(), DATA_HEADER_SIZE);
        assert_eq!(offset_of!(DataEventHeader, direction), 48);
        assert_eq!(size_of::<ConnCloseEvent>(), 88);
        assert_eq!(offset_of!(ConnCloseEvent, reason), 64);
        assert_eq!(size_of::<AgentConfig>(), 40);
        assert_eq!(size_of::<BodySkip>(), 24);
        assert_eq!(
            size_of::<ExecEvent>(),
            32 + 16 + 8 + EXEC_PATH_LEN + EXEC_ARGS_LEN
        );
        assert_eq!(offset_of!(ExecEvent, filename), 56);
    }

    #[test]
    fn a_close_event_of_the_first_layout_decodes_with_zero_plaintext_totals() {
        let ev = ConnCloseEvent {
            hdr: EventHeader {
                kind: EventKind::ConnClose as u32,
                ..EventHeader::default()
            },
            bytes_sent: 7,
            plain_sent: 5,
            plain_received: 9,
            ..ConnCloseEvent::default()
        };
        // SAFETY: `ConnCloseEvent` is `Plain`: any byte view of it is valid.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&ev as *const ConnCloseEvent).cast::<u8>(),
                size_of::<ConnCloseEvent>(),
            )
        };
        assert_eq!(decode(bytes), Ok(Event::ConnClose(ev)));
        let Ok(Event::ConnClose(old)) = decode(&bytes[..CONN_CLOSE_V1_SIZE]) else {
            panic!("the first layout must decode");
        };
        assert_eq!(
            (old.bytes_sent, old.plain_sent, old.plain_received),
            (7, 0, 0)
        );
        assert_eq!(
            decode(&bytes[..CONN_CLOSE_V1_SIZE - 1]),
            Err(DecodeError::Short)
        );
    }

    #[test]
    fn constants_match_the_c_header() {
        let header = include_str!("../bpf/include/events.h");
        let define = |name: &str| -> u64 {
            header
                .lines()
                .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("#define {name} not found"))
        };
        assert_eq!(define("MAX_PAYLOAD"), MAX_PAYLOAD as u64);
        assert_eq!(define("EXEC_PATH_LEN"), EXEC_PATH_LEN as u64);
        assert_eq!(define("EXEC_ARGS_LEN"), EXEC_ARGS_LEN as u64);
        assert_eq!(define("DATA_HEADER_SIZE"), DATA_HEADER_SIZE as u64);
        assert_eq!(define("CONN_FLAG_ADOPTED"), u64::from(CONN_FLAG_ADOPTED));
        assert_eq!(
            define("DATA_FLAG_TRUNCATED"),
            u64::from(DATA_FLAG_TRUNCATED)
        );
        assert_eq!(define("DATA_FLAG_RAW_TLS"), u64::from(DATA_FLAG_RAW_TLS));
        assert_eq!(define("DATA_FLAG_SKIPPED"), u64::from(DATA_FLAG_SKIPPED));
        assert_eq!(
            define("DATA_FLAG_SKIPPED_TAIL"),
            u64::from(DATA_FLAG_SKIPPED_TAIL)
        );
        assert_eq!(
            define("BODY_SKIP_AFTER_HEAD"),
            u64::from(BODY_SKIP_AFTER_HEAD)
        );
        let enum_value = |name: &str| -> u64 {
            header
                .lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{name} = ")))
                .and_then(|v| v.trim_end_matches(',').split_whitespace().next())
                .and_then(|v| v.trim_end_matches(',').parse().ok())
                .unwrap_or_else(|| panic!("enum value {name} not found"))
        };
        assert_eq!(enum_value("EVENT_PROC_EXIT"), EventKind::ProcExit as u64);
        assert_eq!(enum_value("EVENT_PROC_EXEC"), EventKind::ProcExec as u64);
        assert_eq!(enum_value("CNT_UPROBE_HITS"), Counter::UprobeHits as u64);
        assert_eq!(enum_value("CNT_SCRATCH_BUSY"), Counter::ScratchBusy as u64);
        assert_eq!(
            enum_value("CNT_SKIPPED_BYTES"),
            Counter::SkippedBytes as u64
        );
        assert_eq!(enum_value("CNT_H2_WALKS_LOST"), Counter::H2WalksLost as u64);
        assert_eq!(enum_value("CNT_MAX"), u64::from(COUNTER_COUNT));
        assert_eq!(enum_value("ROLE_SERVER"), Role::Server as u64);
        assert_eq!(enum_value("DIR_INGRESS"), Direction::Ingress as u64);
        assert_eq!(enum_value("SOURCE_GNUTLS"), Source::Gnutls as u64);
        assert_eq!(enum_value("SOURCE_GO"), Source::Go as u64);
        assert_eq!(enum_value("L7_OTHER"), L7Hint::Other as u64);
        assert_eq!(enum_value("SYS_ID_SENDFILE"), SyscallId::Sendfile as u64);
        assert_eq!(
            enum_value("CLOSE_PROCESS_EXIT"),
            CloseReason::ProcessExit as u64
        );
        assert_eq!(enum_value("CNT_MAX"), u64::from(COUNTER_COUNT));
        for c in Counter::ALL {
            assert_eq!(Counter::from_raw(c as u32), Some(c));
        }
    }

    #[test]
    fn decode_never_panics_on_short_or_bad_records() {
        assert_eq!(decode(&[]), Err(DecodeError::Short));
        let mut rec = vec![0u8; DATA_HEADER_SIZE + 4];
        rec[16..20].copy_from_slice(&2u32.to_ne_bytes());
        rec[40..44].copy_from_slice(&4u32.to_ne_bytes()); // len
        rec[44..48].copy_from_slice(&4u32.to_ne_bytes()); // captured
        assert!(matches!(decode(&rec), Ok(Event::Data(_, p)) if p.len() == 4));
        rec[44..48].copy_from_slice(&5u32.to_ne_bytes());
        assert_eq!(decode(&rec), Err(DecodeError::BadLength));
        rec[16..20].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(decode(&rec), Err(DecodeError::UnknownKind(99)));
        for n in 0..rec.len() {
            let _ = decode(&rec[..n]);
        }
    }

    #[test]
    fn exec_event_carries_path_and_arguments() {
        let mut rec = vec![0u8; size_of::<ExecEvent>()];
        rec[16..20].copy_from_slice(&(EventKind::ProcExec as u32).to_ne_bytes());
        rec[20..24].copy_from_slice(&42u32.to_ne_bytes());
        rec[32..36].copy_from_slice(b"curl");
        let path = b"/usr/bin/curl";
        rec[48..52].copy_from_slice(&(path.len() as u32).to_ne_bytes());
        let args = b"curl\0-s\0http://x/\0";
        rec[52..56].copy_from_slice(&(args.len() as u32).to_ne_bytes());
        rec[56..56 + path.len()].copy_from_slice(path);
        rec[56 + EXEC_PATH_LEN..56 + EXEC_PATH_LEN + args.len()].copy_from_slice(args);
        let Ok(Event::ProcExec(ev)) = decode(&rec) else {
            panic!("not an exec event");
        };
        assert_eq!(ev.hdr.tgid, 42);
        assert_eq!(ev.filename(), "/usr/bin/curl");
        assert_eq!(ev.args(), b"curl\0-s\0http://x/\0");
        // Lengths beyond the arrays are clamped, never trusted.
        rec[48..52].copy_from_slice(&u32::MAX.to_ne_bytes());
        rec[52..56].copy_from_slice(&u32::MAX.to_ne_bytes());
        let Ok(Event::ProcExec(ev)) = decode(&rec) else {
            panic!("not an exec event");
        };
        assert_eq!(ev.filename().len(), EXEC_PATH_LEN);
        assert!(decode(&rec[..rec.len() - 1]).is_err(), "short exec record");
    }
}
