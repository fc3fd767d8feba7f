//! Finds TLS library functions in an ELF file and their file offsets, for uprobes:
//! OpenSSL and GnuTLS by their symbols, Go's crypto/tls in Go executables
//! (`.go.buildinfo`) by `.symtab`, else by `.gopclntab` when stripped.

use std::fs::File;
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol};

use crate::capture::tls::go_binary::{self, BuildInfo};
use crate::capture::tls::go_layout::{self, GoLayout};
use crate::capture::tls::hooks::{self, TLS_HOOKS};
use crate::capture::tls::uprobe_sites::{self, Abi};

/// Which TLS library a set of symbols belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsLibrary {
    /// OpenSSL 1.1/3, BoringSSL, or a binary with them linked in statically.
    OpenSsl,
    /// GnuTLS.
    GnuTls,
    /// Go's crypto/tls, in a Go executable.
    Go,
}

impl TlsLibrary {
    /// The probe type name: `openssl`, `gnutls`, `go`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsLibrary::OpenSsl => "openssl",
            TlsLibrary::GnuTls => "gnutls",
            TlsLibrary::Go => "go",
        }
    }

    /// The calling convention of its functions.
    pub fn abi(self) -> Abi {
        match self {
            TlsLibrary::Go => Abi::Go,
            TlsLibrary::OpenSsl | TlsLibrary::GnuTls => Abi::SysV,
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
    /// A Go executable: what the Go probes need to know about it.
    pub go: Option<GoTarget>,
}

/// A Go executable's facts for its probes and the attach log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoTarget {
    /// Version and main module.
    pub build: BuildInfo,
    /// Where the functions were found.
    pub symbols: GoSymbols,
    /// Its release's struct layout (passed to the probes as their cookie).
    pub layout: GoLayout,
}

/// Where a Go executable's functions were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoSymbols {
    /// The ELF symbol table.
    Symtab,
    /// The Go function table (stripped binaries).
    Pclntab,
}

impl GoSymbols {
    /// `symtab`, `pclntab`.
    pub fn as_str(self) -> &'static str {
        match self {
            GoSymbols::Symtab => "symtab",
            GoSymbols::Pclntab => "pclntab",
        }
    }
}

/// One probed function, by file offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFunction {
    /// Its name.
    pub name: &'static str,
    /// Its first instruction.
    pub offset: u64,
    /// Where an entry probe runs without a single-step, if anywhere ([`uprobe_sites`]).
    pub entry_site: Option<u64>,
    /// Where a plain probe sees the return value, if anywhere ([`uprobe_sites`]).
    pub return_site: Option<u64>,
    /// Every `ret` (Go functions, probed on each: [`uprobe_sites::ret_sites`]).
    pub ret_sites: Vec<u64>,
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
    /// A Go executable whose TLS cannot be probed (the reason).
    #[error("{path}: Go executable ({version}) not probed: {reason}")]
    Go {
        /// The file.
        path: String,
        /// Its Go version.
        version: String,
        /// Why.
        reason: &'static str,
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

/// Look for OpenSSL-style, GnuTLS and Go TLS functions in `path`; `Ok(None)` when it has none.
pub fn find_tls_functions(path: &Path) -> Result<Option<TlsTarget>, ElfError> {
    let file = File::open(path).map_err(|source| ElfError::Io {
        path: path.display().to_string(),
        source,
    })?;
    find_tls_functions_in_file(&file, path)
}

/// [`find_tls_functions`] on an open file (`path`: for errors): probes are
/// then placed on this very file (through `/proc/self/fd`), not on whatever
/// the path names by the time they are attached.
pub fn find_tls_functions_in_file(file: &File, path: &Path) -> Result<Option<TlsTarget>, ElfError> {
    let io = |source| ElfError::Io {
        path: path.display().to_string(),
        source,
    };
    // SAFETY: the mapping is read-only and private; a concurrent truncation of
    // the file could fault, which is the accepted risk of mapping ELF files
    // (the kernel's uprobe code reads the same file).
    let map = unsafe { memmap2::Mmap::map(file) }.map_err(io)?;
    let elf = object::File::parse(&*map).map_err(|source| ElfError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    if let Some(build) = go_build_info(&elf) {
        return go_functions_in(&elf, &map, build).map_err(|(version, reason)| ElfError::Go {
            path: path.display().to_string(),
            version,
            reason,
        });
    }
    Ok(tls_functions_in(&elf, &map))
}

/// The build info of a Go executable; `None` for anything else.
fn go_build_info(elf: &object::File<'_>) -> Option<BuildInfo> {
    let section = elf.section_by_name(".go.buildinfo")?.data().ok()?;
    go_binary::build_info(section, |addr, len| read_virtual(elf, addr, len))
}

/// `len` bytes of the image at virtual address `addr`.
fn read_virtual<'a>(elf: &object::File<'a>, addr: u64, len: usize) -> Option<&'a [u8]> {
    elf.sections().find_map(|sec| {
        let from = addr.checked_sub(sec.address())?;
        let data = sec.data().ok()?;
        let from = usize::try_from(from).ok()?;
        data.get(from..from.checked_add(len)?)
    })
}

/// Go's crypto/tls functions in a Go executable; `Err((version, reason))`
/// when it has them but they cannot be probed.
fn go_functions_in(
    elf: &object::File<'_>,
    image: &[u8],
    build: BuildInfo,
) -> Result<Option<TlsTarget>, (String, &'static str)> {
    let hooks: Vec<_> = TLS_HOOKS
        .iter()
        .filter(|h| h.library == TlsLibrary::Go)
        .collect();
    let names: Vec<&str> = hooks.iter().map(|h| h.function).collect();
    let from_symtab = defined_functions(elf);
    let (found, symbols): (Vec<Option<(u64, u64)>>, _) = if names
        .iter()
        .all(|n| from_symtab.iter().any(|(f, _, _)| f == n))
    {
        let found = names
            .iter()
            .map(|n| {
                from_symtab
                    .iter()
                    .find(|(f, _, _)| f == n)
                    .map(|&(_, addr, size)| (addr, size))
            })
            .collect();
        (found, GoSymbols::Symtab)
    } else {
        let text = elf.section_by_name(".text").map_or(0, |s| s.address());
        let pclntab = [".gopclntab", ".data.rel.ro.gopclntab"]
            .iter()
            .find_map(|n| elf.section_by_name(n)?.data().ok());
        let Some(found) = pclntab.and_then(|tab| go_binary::find_functions(tab, text, &names))
        else {
            return Err((build.version, "no readable symbol table or pclntab"));
        };
        let found = found
            .into_iter()
            .map(|f| f.map(|f| (f.entry, f.end - f.entry)))
            .collect();
        (found, GoSymbols::Pclntab)
    };
    if found.iter().all(Option::is_none) {
        return Ok(None); // a Go program without crypto/tls
    }
    if elf.architecture() != object::Architecture::X86_64 {
        return Err((build.version, "not x86-64"));
    }
    let Some(layout) = build.release().and_then(go_layout::layout) else {
        return Err((build.version, "no struct layout known for this Go release"));
    };
    let mut functions = Vec::new();
    for (h, f) in hooks.iter().zip(found) {
        let Some((addr, size)) = f else {
            return Err((build.version, "crypto/tls.(*Conn) Read or Write missing"));
        };
        let Some(offset) = file_offset(elf, addr) else {
            return Err((build.version, "function outside the file"));
        };
        let code = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(from, len)| image.get(from..from.checked_add(len)?))
            .unwrap_or_default();
        let sites = uprobe_sites::find(code, addr, Abi::Go, h.arity);
        let ret_sites = uprobe_sites::ret_sites(code, addr);
        // Anywhere but at the stack check, a call Go restarts after growing
        // the stack would be seen twice (uprobe_sites.rs).
        if sites.entry.is_none() {
            return Err((build.version, "no stack-check prologue found to probe"));
        }
        if ret_sites.is_empty() {
            return Err((build.version, "no return sites found (code not decodable)"));
        }
        let at = |site: u64| offset + (site - addr);
        functions.push(TlsFunction {
            name: h.function,
            offset,
            entry_site: sites.entry.map(at),
            return_site: None,
            ret_sites: ret_sites.into_iter().map(at).collect(),
        });
    }
    Ok(Some(TlsTarget {
        library: TlsLibrary::Go,
        functions,
        go: Some(GoTarget {
            build,
            symbols,
            layout,
        }),
    }))
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
                    .map(|code| uprobe_sites::find(code, addr, library.abi(), h.arity))
                    .unwrap_or_default();
                // Sites are addresses in the same section as the function.
                let at = |site: u64| offset + (site - addr);
                Some(TlsFunction {
                    name,
                    offset,
                    entry_site: sites.entry.map(at),
                    return_site: sites.ret.map(at),
                    ret_sites: Vec::new(),
                })
            })
            .collect();
        // The write and read entry points must both be there to be useful.
        if functions.len() >= 2 {
            return Some(TlsTarget {
                library,
                functions,
                go: None,
            });
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

    /// The Go toolchains `scripts/install-deps.sh test` installs: (release, go).
    fn go_toolchains() -> Vec<((u32, u32), std::path::PathBuf)> {
        let root = std::env::var("OTEL_AGENT_GO_TOOLCHAINS")
            .unwrap_or_else(|_| "/opt/otel-agent-test".into());
        [
            ((1, 19), "/usr/lib/go-1.19/bin/go".to_string()),
            ((1, 21), format!("{root}/go1.21/go/bin/go")),
            ((1, 27), format!("{root}/go1.27/go/bin/go")),
        ]
        .into_iter()
        .map(|(v, p)| (v, std::path::PathBuf::from(p)))
        .filter(|(_, p)| p.exists())
        .collect()
    }

    /// Real Go executables, built now with each installed toolchain: plain,
    /// stripped (`-s -w`) and PIE. The functions are found (symtab or
    /// pclntab), at the same offsets either way, with their `ret`s.
    #[test]
    fn finds_go_crypto_tls_in_real_go_binaries() {
        let toolchains = go_toolchains();
        assert!(
            !toolchains.is_empty(),
            "no Go toolchain: run scripts/install-deps.sh test"
        );
        let dir = std::env::temp_dir().join(format!("go-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("main.go");
        std::fs::write(
            &src,
            "package main\nimport (\"crypto/tls\"; \"fmt\")\nfunc main() { c, err := tls.Dial(\"tcp\", \"127.0.0.1:1\", nil); fmt.Println(c, err) }\n",
        )
        .unwrap();
        for ((major, minor), go) in toolchains {
            let build = |name: &str, flags: &[&str]| {
                let out = dir.join(name);
                let status = std::process::Command::new(&go)
                    .arg("build")
                    .args(flags)
                    .arg("-o")
                    .arg(&out)
                    .arg(&src)
                    .env("GO111MODULE", "off")
                    // Kept between runs: a cold build of crypto/tls takes a minute.
                    .env(
                        "GOCACHE",
                        Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join(format!("../target/go-cache/go1.{minor}")),
                    )
                    .env("GOPATH", dir.join("gopath"))
                    .current_dir(&dir)
                    .status()
                    .unwrap();
                assert!(status.success(), "{go:?} build {flags:?}");
                find_tls_functions(&out)
                    .unwrap()
                    .unwrap_or_else(|| panic!("go1.{minor} {flags:?}: no target"))
            };
            let plain = build(&format!("plain{minor}"), &[]);
            let stripped = build(&format!("stripped{minor}"), &["-ldflags=-s -w"]);
            let pie = build(
                &format!("pie{minor}"),
                &["-buildmode=pie", "-ldflags=-s -w"],
            );
            for (t, symbols) in [
                (&plain, GoSymbols::Symtab),
                (&stripped, GoSymbols::Pclntab),
                (&pie, GoSymbols::Pclntab),
            ] {
                assert_eq!(t.library, TlsLibrary::Go);
                let go = t.go.as_ref().unwrap();
                assert_eq!(go.symbols, symbols, "go1.{minor}");
                assert_eq!(go.build.release(), Some((major, minor)));
                assert_eq!(go.layout, go_layout::layout((major, minor)).unwrap());
                assert_eq!(t.functions.len(), 2);
                for f in &t.functions {
                    assert!(!f.ret_sites.is_empty(), "go1.{minor}: {f:?}");
                    assert!(f.ret_sites.iter().all(|&r| r > f.offset), "{f:?}");
                    // Go's prologue: the stack check's branch is the entry site.
                    assert!(
                        f.entry_site
                            .is_some_and(|e| e > f.offset && e < f.offset + 16),
                        "go1.{minor}: {f:?}"
                    );
                }
            }
            // The stripped binary is the same code: the same offsets.
            assert_eq!(plain.functions, stripped.functions, "go1.{minor}");
            // The type hash of the release's row is the one in the binary's
            // itab for *net.TCPConn (named in .symtab up to Go 1.26).
            let image = std::fs::read(dir.join(format!("plain{minor}"))).unwrap();
            let elf = object::File::parse(&*image).unwrap();
            let itab = elf.symbols().find(|s| {
                s.name()
                    .is_ok_and(|n| n.ends_with("itab.*net.TCPConn,net.Conn"))
            });
            let hash = go_layout::layout((major, minor))
                .unwrap()
                .tcp_conn_type_hash;
            match itab {
                Some(sym) => {
                    let off = file_offset(&elf, sym.address()).unwrap() as usize;
                    let at = off + 16;
                    let got = u32::from_le_bytes(image[at..at + 4].try_into().unwrap());
                    assert_eq!(got, hash, "go1.{minor}: itab hash");
                }
                None => {
                    let count = image
                        .windows(4)
                        .filter(|w| *w == hash.to_le_bytes())
                        .count();
                    assert!(
                        count >= 2,
                        "go1.{minor}: type hash {hash:#x} not in the image"
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
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
