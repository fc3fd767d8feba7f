//! The hooked TLS functions, in one table: library, function, arity, and the
//! eBPF programs that probe it. Symbol lookup, probe placement and attaching
//! all derive from [`TLS_HOOKS`].

use crate::capture::tls::elf_symbols::{TlsFunction, TlsLibrary};

/// How one TLS function is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsHook {
    /// The library family the function belongs to.
    pub library: TlsLibrary,
    /// The exported function.
    pub function: &'static str,
    /// How many integer arguments it takes (registers that an entry site
    /// must not see overwritten).
    pub arity: usize,
    /// The program that reads the arguments, on entry.
    pub entry: &'static str,
    /// How the return value is read, if it is needed.
    pub ret: Returns,
}

/// How a hook reads its function's return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returns {
    /// Not needed (handshakes).
    Nothing,
    /// A uretprobe, or the same program as a plain uprobe on the return site
    /// of [`crate::capture::tls::uprobe_sites`].
    Uretprobe {
        /// The uretprobe program.
        uret: &'static str,
        /// The same as a plain uprobe.
        site: &'static str,
    },
    /// A plain uprobe on every `ret` of the function, never a uretprobe (Go:
    /// goroutine stacks move, and a uretprobe's return address on a moved
    /// stack crashes the program).
    EveryRet(&'static str),
}

/// Every hooked TLS function. Reads and writes need the entry (buffer) and
/// the return (length: a write is recorded only once the library accepted
/// it, so a call that fails and is retried is recorded once); the handshake
/// calls take the session alone. The C programs named here are checked to be in the eBPF
/// object (`loader` tests).
pub const TLS_HOOKS: &[TlsHook] = &[
    TlsHook::with_return(
        TlsLibrary::OpenSsl,
        "SSL_write",
        3,
        "ssl_write_entry",
        ("ssl_write_return", "ssl_write_return_site"),
    ),
    TlsHook::with_return(
        TlsLibrary::OpenSsl,
        "SSL_write_ex",
        4,
        "ssl_write_ex_entry",
        ("ssl_write_ex_return", "ssl_write_ex_return_site"),
    ),
    TlsHook::with_return(
        TlsLibrary::OpenSsl,
        "SSL_read",
        3,
        "ssl_read_entry",
        ("ssl_read_return", "ssl_read_return_site"),
    ),
    TlsHook::with_return(
        TlsLibrary::OpenSsl,
        "SSL_read_ex",
        4,
        "ssl_read_ex_entry",
        ("ssl_read_ex_return", "ssl_read_ex_return_site"),
    ),
    TlsHook::entry(
        TlsLibrary::OpenSsl,
        "SSL_do_handshake",
        1,
        "ssl_handshake_entry",
    ),
    TlsHook::entry(TlsLibrary::OpenSsl, "SSL_connect", 1, "ssl_handshake_entry"),
    TlsHook::entry(TlsLibrary::OpenSsl, "SSL_accept", 1, "ssl_handshake_entry"),
    TlsHook::with_return(
        TlsLibrary::GnuTls,
        "gnutls_record_send",
        3,
        "gnutls_send_entry",
        ("gnutls_send_return", "gnutls_send_return_site"),
    ),
    TlsHook::with_return(
        TlsLibrary::GnuTls,
        "gnutls_record_recv",
        3,
        "gnutls_recv_entry",
        ("gnutls_recv_return", "gnutls_recv_return_site"),
    ),
    TlsHook::entry(
        TlsLibrary::GnuTls,
        "gnutls_handshake",
        1,
        "gnutls_handshake_entry",
    ),
    // Go: func (c *Conn) Read(b []byte) (int, error), and Write; the slice
    // is (pointer, length, capacity).
    TlsHook::every_ret(
        TlsLibrary::Go,
        "crypto/tls.(*Conn).Read",
        4,
        "go_tls_read_entry",
        "go_tls_read_return",
    ),
    TlsHook::every_ret(
        TlsLibrary::Go,
        "crypto/tls.(*Conn).Write",
        4,
        "go_tls_write_entry",
        "go_tls_write_return",
    ),
];

impl TlsHook {
    const fn entry(
        library: TlsLibrary,
        function: &'static str,
        arity: usize,
        entry: &'static str,
    ) -> Self {
        Self {
            library,
            function,
            arity,
            entry,
            ret: Returns::Nothing,
        }
    }

    const fn with_return(
        library: TlsLibrary,
        function: &'static str,
        arity: usize,
        entry: &'static str,
        ret: (&'static str, &'static str),
    ) -> Self {
        Self {
            library,
            function,
            arity,
            entry,
            ret: Returns::Uretprobe {
                uret: ret.0,
                site: ret.1,
            },
        }
    }

    const fn every_ret(
        library: TlsLibrary,
        function: &'static str,
        arity: usize,
        entry: &'static str,
        ret: &'static str,
    ) -> Self {
        Self {
            library,
            function,
            arity,
            entry,
            ret: Returns::EveryRet(ret),
        }
    }

    /// Every program this hook may use.
    pub fn programs(&self) -> impl Iterator<Item = &'static str> {
        let (a, b) = match self.ret {
            Returns::Nothing => (None, None),
            Returns::Uretprobe { uret, site } => (Some(uret), Some(site)),
            Returns::EveryRet(site) => (Some(site), None),
        };
        std::iter::once(self.entry).chain(a).chain(b)
    }

    /// Whether every probe of `f` sits on an emulated instruction (a
    /// uretprobe's breakpoint is on the first instruction, emulated when that
    /// is the entry site).
    pub fn emulated(&self, f: &TlsFunction) -> bool {
        f.entry_site.is_some()
            && match self.ret {
                Returns::Nothing => true,
                Returns::Uretprobe { .. } => {
                    f.return_site.is_some() || f.entry_site == Some(f.offset)
                }
                // A `ret` is single-stepped.
                Returns::EveryRet(_) => f.ret_sites.is_empty(),
            }
    }

    /// (program, file offset) to attach for `f`: on emulated instructions
    /// where [`crate::capture::tls::uprobe_sites`] found them (a read needs both sites: its
    /// uretprobe shares the breakpoint on the first instruction with the
    /// entry program), else on the first instruction. A hook on every `ret`
    /// needs them all: without any, nothing is placed.
    pub fn placements(&self, f: &TlsFunction) -> Vec<(&'static str, u64)> {
        match self.ret {
            Returns::Nothing => vec![(self.entry, f.entry_site.unwrap_or(f.offset))],
            Returns::Uretprobe { uret, site } => match (f.entry_site, f.return_site) {
                (Some(entry), Some(ret)) => vec![(self.entry, entry), (site, ret)],
                _ => vec![(self.entry, f.offset), (uret, f.offset)],
            },
            Returns::EveryRet(_) if f.ret_sites.is_empty() => Vec::new(),
            Returns::EveryRet(site) => {
                std::iter::once((self.entry, f.entry_site.unwrap_or(f.offset)))
                    .chain(f.ret_sites.iter().map(|&r| (site, r)))
                    .collect()
            }
        }
    }
}

/// The hook of `function`, if it is hooked.
pub fn hook(function: &str) -> Option<&'static TlsHook> {
    TLS_HOOKS.iter().find(|h| h.function == function)
}

/// The hooked functions of one library, in table order.
pub fn functions(library: TlsLibrary) -> impl Iterator<Item = &'static str> {
    TLS_HOOKS
        .iter()
        .filter(move |h| h.library == library)
        .map(|h| h.function)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(function: &str) -> &'static TlsHook {
        super::hook(function).unwrap()
    }

    fn function(entry_site: Option<u64>, return_site: Option<u64>) -> TlsFunction {
        TlsFunction {
            name: "f",
            offset: 0x1000,
            entry_site,
            return_site,
            ret_sites: Vec::new(),
        }
    }

    #[test]
    fn a_handshake_goes_on_its_entry_site_when_there_is_one() {
        let handshake = hook("SSL_do_handshake");
        let f = function(Some(0x1016), None);
        assert_eq!(handshake.placements(&f), [("ssl_handshake_entry", 0x1016)]);
        assert!(handshake.emulated(&f));
        let f = function(None, None);
        assert_eq!(handshake.placements(&f), [("ssl_handshake_entry", 0x1000)]);
        assert!(!handshake.emulated(&f));
    }

    #[test]
    fn a_write_is_probed_at_its_return_too() {
        let write = hook("SSL_write_ex");
        let f = function(Some(0x1016), Some(0x1040));
        assert_eq!(
            write.placements(&f),
            [
                ("ssl_write_ex_entry", 0x1016),
                ("ssl_write_ex_return_site", 0x1040)
            ]
        );
        let f = function(None, None);
        assert_eq!(
            write.placements(&f),
            [
                ("ssl_write_ex_entry", 0x1000),
                ("ssl_write_ex_return", 0x1000)
            ]
        );
    }

    #[test]
    fn a_read_needs_both_sites_else_keeps_its_uretprobe() {
        let read = hook("SSL_read");
        let f = function(Some(0x1016), Some(0x1038));
        assert_eq!(
            read.placements(&f),
            [("ssl_read_entry", 0x1016), ("ssl_read_return_site", 0x1038)]
        );
        assert!(read.emulated(&f));
        // An entry site alone: both programs on the first instruction, which
        // is single-stepped unless it is the (emulated) entry site itself.
        let f = function(Some(0x1004), None);
        assert_eq!(
            read.placements(&f),
            [("ssl_read_entry", 0x1000), ("ssl_read_return", 0x1000)]
        );
        assert!(!read.emulated(&f));
        assert!(read.emulated(&function(Some(0x1000), None)));
    }

    #[test]
    fn every_hooked_function_has_one_row() {
        for h in TLS_HOOKS {
            let rows = TLS_HOOKS
                .iter()
                .filter(|o| o.function == h.function)
                .count();
            assert_eq!(rows, 1, "{}", h.function);
            assert!((1..=4).contains(&h.arity), "{}", h.function);
        }
        assert_eq!(functions(TlsLibrary::GnuTls).count(), 3);
        assert_eq!(functions(TlsLibrary::Go).count(), 2);
    }

    #[test]
    fn a_go_hook_goes_on_every_ret_and_never_on_a_uretprobe() {
        let read = hook("crypto/tls.(*Conn).Read");
        let mut f = function(Some(0x1004), None);
        // No ret found: nothing at all (an entry alone would never be paired).
        assert!(read.placements(&f).is_empty());
        f.ret_sites = vec![0x1100, 0x1180];
        assert_eq!(
            read.placements(&f),
            [
                ("go_tls_read_entry", 0x1004),
                ("go_tls_read_return", 0x1100),
                ("go_tls_read_return", 0x1180)
            ]
        );
        assert!(!read.emulated(&f));
        for h in TLS_HOOKS.iter().filter(|h| h.library == TlsLibrary::Go) {
            assert!(matches!(h.ret, Returns::EveryRet(_)), "{}", h.function);
        }
    }

    #[test]
    fn every_hook_program_is_in_the_object() {
        use object::{Object, ObjectSymbol};
        let elf = object::File::parse(bpf_probes::PROBES).unwrap();
        let names: Vec<&str> = elf.symbols().filter_map(|s| s.name().ok()).collect();
        for h in TLS_HOOKS {
            for p in h.programs() {
                assert!(names.contains(&p), "{p} of {}", h.function);
            }
        }
    }
}
