//! Where a Go `*tls.Conn` keeps its socket, per Go version: the one table of
//! the struct offsets and type hash the Go probes (`bpf/tls/go.h`) use, passed
//! to them as the uprobe's attach cookie.
//!
//! The path: `tls.Conn.conn` (a `net.Conn` interface: itab, data) → the data
//! is a `*net.TCPConn` (`struct { conn }`, `conn` is `struct { fd *netFD }`)
//! → `netFD.pfd` (`poll.FD`, first field) → `poll.FD.Sysfd` after the 16-byte
//! `fdMutex`. That the interface holds a `*net.TCPConn` is checked by the type
//! hash in the itab and in its type descriptor — no symbol needed (stripped
//! binaries have none, and Go 1.27 no longer names its itabs even in
//! `.symtab`), and no address (PIE). The hash is the compiler's
//! `types.TypeHash("*net.TCPConn")`: MD5 up to Go 1.18, `notsha256` (SHA-256
//! with every bit flipped) from 1.19, `cmd/internal/hash.Sum32` (SHA-256 with
//! the first byte flipped) from 1.24.
//!
//! The handshake flag: `tls.Conn.handshakeStatus` (`uint32`, 1 = done) up to
//! Go 1.19, `isHandshakeComplete` (`atomic.Bool`, a `uint32`) from 1.20, after
//! `quic *quicState` from 1.21. A write on a `tls.Conn` whose flag is set
//! sends what it was given (or fails on a broken connection); the probes emit
//! such writes at entry, before the peer can answer.
//!
//! Keyed by Go version only, never by a binary. `tested`: checked here on real
//! binaries of that release (integration/tests/go_tls.rs and the unit tests
//! below); the other rows come from the Go sources. A wrong row cannot
//! attribute bytes to a wrong socket unless the hash matched too: a mismatch
//! makes the calls not attributable (counted as `tls_unmapped`).

/// The offsets and hash of one Go release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoLayout {
    /// `tls.Conn.conn` in `tls.Conn` (its first field).
    pub conn_in_tls_conn: u16,
    /// `hash` in the itab and in the type descriptor (`abi.Type.Hash`).
    pub type_hash_field: u16,
    /// `conn.fd` in `net.TCPConn`.
    pub fd_in_tcp_conn: u16,
    /// `pfd.Sysfd` in `net.netFD`.
    pub sysfd_in_net_fd: u16,
    /// The handshake-complete flag (a `uint32`) in `tls.Conn`.
    pub handshake_done_in_tls_conn: u16,
    /// `types.TypeHash` of `*net.TCPConn`.
    pub tcp_conn_type_hash: u32,
    /// Checked on real binaries of this release.
    pub tested: bool,
}

impl GoLayout {
    /// The attach cookie `bpf/tls/go.h` decodes (`GO_COOKIE_*`): six bits
    /// per offset, in 8-byte words (every offset is a multiple of 8 below
    /// 512: `every_offset_fits_the_cookie`), the type hash in the high half.
    pub fn cookie(&self) -> u64 {
        let word = |off: u16, shift: u32| u64::from(off / 8) << shift;
        word(self.conn_in_tls_conn, 0)
            | word(self.type_hash_field, 6)
            | word(self.fd_in_tcp_conn, 12)
            | word(self.sysfd_in_net_fd, 18)
            | word(self.handshake_done_in_tls_conn, 24)
            | u64::from(self.tcp_conn_type_hash) << 32
    }
}

const MD5: u32 = 0xb954_d952;
const NOTSHA256: u32 = 0xbc02_0cb9;
const SUM32: u32 = 0x43fd_f3b9;

const fn row(hash: u32, handshake_done: u16, tested: bool) -> GoLayout {
    GoLayout {
        conn_in_tls_conn: 0,
        handshake_done_in_tls_conn: handshake_done,
        type_hash_field: 16,
        fd_in_tcp_conn: 0,
        sysfd_in_net_fd: 16,
        tcp_conn_type_hash: hash,
        tested,
    }
}

/// (first minor, last minor, layout) of Go 1.x. Go 1.17 is the first release
/// with the register ABI the probes read; releases after the last row are
/// not probed until checked.
const LAYOUTS: &[(u32, u32, GoLayout)] = &[
    (17, 18, row(MD5, 32, false)),
    (19, 19, row(NOTSHA256, 32, true)),
    (20, 20, row(NOTSHA256, 32, false)),
    (21, 21, row(NOTSHA256, 40, true)),
    (22, 23, row(NOTSHA256, 40, false)),
    (24, 26, row(SUM32, 40, false)),
    (27, 27, row(SUM32, 40, true)),
];

/// The layout of Go `major.minor`, if known.
pub fn layout((major, minor): (u32, u32)) -> Option<GoLayout> {
    if major != 1 {
        return None;
    }
    LAYOUTS
        .iter()
        .find(|(from, to, _)| (*from..=*to).contains(&minor))
        .map(|&(_, _, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_releases_only() {
        assert_eq!(layout((1, 16)), None);
        assert_eq!(layout((1, 28)), None);
        assert_eq!(layout((2, 0)), None);
        assert!(layout((1, 19)).unwrap().tested);
        assert!(!layout((1, 22)).unwrap().tested);
        assert_eq!(layout((1, 27)).unwrap().tcp_conn_type_hash, SUM32);
    }

    #[test]
    fn the_cookie_packs_every_field() {
        let l = layout((1, 21)).unwrap();
        assert_eq!(l.cookie(), 0xbc02_0cb9_0508_0080);
    }

    #[test]
    fn every_offset_fits_the_cookie() {
        for (_, _, l) in LAYOUTS {
            for off in [
                l.conn_in_tls_conn,
                l.type_hash_field,
                l.fd_in_tcp_conn,
                l.sysfd_in_net_fd,
                l.handshake_done_in_tls_conn,
            ] {
                assert!(off % 8 == 0 && off < 512, "{l:?}");
            }
        }
    }

    #[test]
    fn rows_do_not_overlap() {
        for w in LAYOUTS.windows(2) {
            assert!(w[0].1 < w[1].0);
        }
    }
}
