//! Finds TLS library functions in an ELF file and their file offsets, for uprobes.

use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol};

use crate::capture::tls::hooks::{self, TLS_HOOKS};
use crate::capture::tls::uprobe_sites;

/// Which TLS library a set of symbols belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsLibrary {
    /// OpenSSL 1.1/3, BoringSSL, or a binary with them linked in statically.
    OpenSsl,
    /// GnuTLS.
    GnuTls,
}

impl TlsLibrary {
    /// The probe type name: `openssl`, `gnutls`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsLibrary::OpenSsl => "openssl",
            TlsLibrary::GnuTls => "gnutls",
        }
    }
}

/// A TLS library (or static binary) with the file offsets of its functions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsTarget {
    /// Library family.
    pub library: TlsLibrary,
    /// Each function found.
    pub functions: Vec<TlsFunction>,
}

/// One probed function, by file offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsFunction {
    /// Its name.
    pub name: &'static str,
    /// Its first instruction.
    pub offset: u64,
    /// Where an entry probe runs without a single-step, if anywhere ([`uprobe_sites`]).
    pub entry_site: Option<u64>,
    /// Where a plain probe sees the return value, if anywhere ([`uprobe_sites`]).
    pub return_site: Option<u64>,
}

impl TlsTarget {
    /// The function called `name`, if found.
    pub fn function(&self, name: &str) -> Option<&TlsFunction> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// Errors reading an ELF file.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file could not be opened or mapped.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a parsable ELF file.
    #[error("{path}: not an ELF file: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's error.
        source: object::Error,
    },
}

/// Look for OpenSSL-style and GnuTLS functions in `path`; `Ok(None)` when it has none.
pub fn find_tls_functions(path: &Path) -> Result<Option<TlsTarget>, ElfError> {
    let io = |source| ElfError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // SAFETY: the mapping is read-only and private; a concurrent truncation of
    // the file could fault, which is the accepted risk of mapping ELF files
    // (the kernel's uprobe code reads the same file).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    let elf = object::File::parse(&*map).map_err(|source| ElfError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    Ok(tls_functions_in(&elf, &map))
}

/// The TLS functions defined in an already parsed ELF image (`image`: its bytes).
pub fn tls_functions_in(elf: &object::File<'_>, image: &[u8]) -> Option<TlsTarget> {
    let addresses = defined_functions(elf);
    for library in [TlsLibrary::OpenSsl, TlsLibrary::GnuTls] {
        let functions: Vec<TlsFunction> = TLS_HOOKS
            .iter()
            .filter(|h| h.library == library)
            .filter_map(|h| {
                let name = h.function;
                let &(_, addr, size) = addresses.iter().find(|(n, _, _)| *n == name)?;
                let offset = file_offset(elf, addr)?;
                let sites = usize::try_from(offset)
                    .ok()
                    .zip(usize::try_from(size).ok())
                    .and_then(|(from, len)| image.get(from..from.checked_add(len)?))
                    .filter(|_| elf.architecture() == object::Architecture::X86_64)
                    .map(|code| uprobe_sites::find(code, addr, h.arity))
                    .unwrap_or_default();
                // Sites are addresses in the same section as the function.
                let at = |site: u64| offset + (site - addr);
                Some(TlsFunction {
                    name,
                    offset,
                    entry_site: sites.entry.map(at),
                    return_site: sites.ret.map(at),
                })
            })
            .collect();
        // The write and read entry points must both be there to be useful.
        if functions.len() >= 2 {
            return Some(TlsTarget { library, functions });
        }
    }
    None
}

/// Addresses of the hooked functions defined in the image, in one pass over
/// the dynamic symbols and then the symbol table: (name, address, size).
fn defined_functions(elf: &object::File<'_>) -> Vec<(&'static str, u64, u64)> {
    let mut found: Vec<(&'static str, u64, u64)> = Vec::new();
    for sym in elf.dynamic_symbols().chain(elf.symbols()) {
        if !sym.is_definition() || sym.kind() != object::SymbolKind::Text {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        if let Some(w) = hooks::hook(name).map(|h| h.function) {
            if !found.iter().any(|(n, _, _)| *n == w) {
                found.push((w, sym.address(), sym.size()));
            }
        }
    }
    found
}

/// File offset of a virtual address, through the section that contains it.
fn file_offset(elf: &object::File<'_>, addr: u64) -> Option<u64> {
    elf.sections().find_map(|sec| {
        let start = sec.address();
        let end = start.checked_add(sec.size())?;
        if addr < start || addr >= end {
            return None;
        }
        let (file_off, _) = sec.file_range()?;
        file_off.checked_add(addr - start)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_existing(paths: &[&str]) -> Option<std::path::PathBuf> {
        paths
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
    }

    #[test]
    fn finds_openssl_functions_in_the_system_libssl() {
        let lib = first_existing(&[
            "/usr/lib/x86_64-linux-gnu/libssl.so.3",
            "/lib/x86_64-linux-gnu/libssl.so.3",
        ])
        .expect("libssl.so.3 is installed on Debian machines (curl depends on it)");
        let t = find_tls_functions(&lib)
            .unwrap()
            .expect("libssl has SSL_write");
        assert_eq!(t.library, TlsLibrary::OpenSsl);
        let names: Vec<&str> = t.functions.iter().map(|f| f.name).collect();
        let hooked: Vec<&str> = hooks::functions(TlsLibrary::OpenSsl).collect();
        assert_eq!(names, hooked);
        assert!(t.functions.iter().all(|f| f.offset > 0));
        // Debian 12's OpenSSL 3.0: SSL_write and SSL_read begin with `sub $0x18,%rsp`
        // (single-stepped); both have emulated sites, SSL_read a return site too.
        for name in ["SSL_write", "SSL_read"] {
            let f = t.function(name).unwrap();
            let entry = f
                .entry_site
                .unwrap_or_else(|| panic!("{name}: no entry site"));
            assert!(entry > f.offset && entry < f.offset + 64, "{name}: {f:?}");
        }
        let read = t.function("SSL_read").unwrap();
        assert!(
            read.return_site
                .is_some_and(|r| r > read.entry_site.unwrap()),
            "{read:?}"
        );
    }

    #[test]
    fn a_binary_without_tls_has_none() {
        assert_eq!(find_tls_functions(Path::new("/bin/true")).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("elf-garbage-{}", std::process::id()));
        std::fs::write(&dir, b"\x7fELF\x02\x01\x01garbage").unwrap();
        assert!(find_tls_functions(&dir).is_err());
        let _ = std::fs::remove_file(&dir);
    }
}
