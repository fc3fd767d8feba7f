//! Go executables, read from their bytes: the build info (`.go.buildinfo`:
//! Go version, main module) and the function table of `.gopclntab`, which
//! `-ldflags='-s -w'` keeps (the runtime needs it for stack traces), so that
//! functions are found in stripped binaries too.
//!
//! Everything here is bounded by the input and never panics: any malformed
//! table gives `None`.

/// What `.go.buildinfo` says about the executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    /// The toolchain, e.g. `go1.21.13`.
    pub version: String,
    /// The main module's path, when the binary was built in module mode.
    pub module: Option<String>,
}

impl BuildInfo {
    /// (major, minor) of a release version (`go1.21.13` → (1, 21)); `None`
    /// for development builds.
    pub fn release(&self) -> Option<(u32, u32)> {
        let v = self.version.strip_prefix("go")?;
        let v = v.split([' ', '-']).next()?;
        let mut parts = v.split('.');
        let major = parts.next()?.parse().ok()?;
        // "1.21rc2" → 21
        let minor: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some((major, minor.parse().ok()?))
    }
}

const BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";
/// Flag bit: version and module info follow the header inline (Go ≥ 1.18).
const BUILDINFO_INLINE: u8 = 0x2;
const BUILDINFO_HEADER: usize = 32;

/// Parse the `.go.buildinfo` section `section`. Go < 1.18 stores pointers to
/// the strings: `read(vaddr, len)` reads the image at a virtual address.
pub fn build_info<'a>(
    section: &'a [u8],
    read: impl Fn(u64, usize) -> Option<&'a [u8]>,
) -> Option<BuildInfo> {
    if !section.starts_with(BUILDINFO_MAGIC) {
        return None;
    }
    let ptr_size = usize::from(*section.get(14)?);
    let flags = *section.get(15)?;
    let (version, modinfo) = if flags & BUILDINFO_INLINE != 0 {
        let rest = section.get(BUILDINFO_HEADER..)?;
        let (version, rest) = varint_string(rest)?;
        let modinfo = varint_string(rest).map(|(m, _)| m).unwrap_or(&[]);
        (version, modinfo)
    } else {
        if ptr_size != 8 || flags & 0x1 != 0 {
            return None; // only little-endian 64-bit images are probed
        }
        let string_at = |at: usize| -> Option<&'a [u8]> {
            let header_addr = word(section, at)?;
            let header = read(header_addr, 16)?;
            let (data, len) = (word(header, 0)?, word(header, 8)?);
            read(data, usize::try_from(len).ok().filter(|&l| l < 1 << 20)?)
        };
        (string_at(16)?, string_at(24).unwrap_or(&[]))
    };
    let version = std::str::from_utf8(version).ok()?;
    if !version.starts_with("go") && !version.starts_with("devel") {
        return None;
    }
    // The module info sits between two 16-byte sentinels.
    let modinfo = match modinfo.len() {
        32.. => &modinfo[16..modinfo.len() - 16],
        _ => modinfo,
    };
    let module = String::from_utf8_lossy(modinfo)
        .lines()
        .find_map(|l| l.strip_prefix("path\t").map(str::to_string));
    Some(BuildInfo {
        version: version.to_string(),
        module,
    })
}

/// A uvarint length, then that many bytes.
fn varint_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let from = i + 1;
            let to = from.checked_add(usize::try_from(len).ok()?)?;
            return Some((b.get(from..to)?, b.get(to..)?));
        }
    }
    None
}

fn word(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The pclntab formats: by the magic number its header starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pcln {
    /// Go 1.16–1.17: absolute entry PCs.
    Go116,
    /// Go 1.18–1.19 (0xfffffff0) and 1.20+ (0xfffffff1, same layout):
    /// entry PCs as 32-bit offsets from the text start.
    Go118,
}

/// A function found in the pclntab: its address range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoFunc {
    /// Entry address (virtual).
    pub entry: u64,
    /// End address (the next function's entry).
    pub end: u64,
}

/// Look up `wanted` function names in the pclntab bytes `tab` (the
/// `.gopclntab` section); `text_start`: the `.text` address, used when the
/// header's own text start is zero (PIE before relocation). One result per
/// wanted name, `None` where absent.
pub fn find_functions(tab: &[u8], text_start: u64, wanted: &[&str]) -> Option<Vec<Option<GoFunc>>> {
    let format = match u32_at(tab, 0)? {
        0xffff_fffa => Pcln::Go116,
        0xffff_fff0 | 0xffff_fff1 => Pcln::Go118,
        _ => return None,
    };
    // pad, pad, instruction quantum (1 on x86), pointer size.
    if tab.get(4..8)? != [0, 0, 1, 8] {
        return None;
    }
    let nfunc = usize::try_from(word(tab, 8)?).ok()?;
    let (funcname_off, pcln_off, text) = match format {
        Pcln::Go116 => (word(tab, 24)?, word(tab, 56)?, 0),
        Pcln::Go118 => {
            let header_text = word(tab, 24)?;
            let text = if header_text == 0 {
                text_start
            } else {
                header_text
            };
            (word(tab, 32)?, word(tab, 64)?, text)
        }
    };
    let funcnames = tab.get(usize::try_from(funcname_off).ok()?..)?;
    let functab = tab.get(usize::try_from(pcln_off).ok()?..)?;
    let entry_size = match format {
        Pcln::Go116 => 16,
        Pcln::Go118 => 8,
    };
    // nfunc entries and the sentinel (the end of the last function).
    if functab.len() / entry_size <= nfunc {
        return None;
    }
    // (entry, offset of the _func from functab)
    let entry_at = |i: usize| -> Option<(u64, usize)> {
        let at = i.checked_mul(entry_size)?;
        match format {
            Pcln::Go116 => Some((
                word(functab, at)?,
                usize::try_from(word(functab, at + 8)?).ok()?,
            )),
            Pcln::Go118 => Some((
                text.checked_add(u64::from(u32_at(functab, at)?))?,
                usize::try_from(u32_at(functab, at + 4)?).ok()?,
            )),
        }
    };
    let name_off_in_func = match format {
        Pcln::Go116 => 8,
        Pcln::Go118 => 4,
    };
    let mut found = vec![None; wanted.len()];
    for i in 0..nfunc {
        let (entry, func_off) = entry_at(i)?;
        let Some(name_off) = func_off
            .checked_add(name_off_in_func)
            .and_then(|at| u32_at(functab, at))
        else {
            continue;
        };
        let Some(name) = funcnames.get(name_off as usize..) else {
            continue;
        };
        let name = name.split(|&b| b == 0).next().unwrap_or(&[]);
        if let Some(w) = wanted.iter().position(|w| w.as_bytes() == name) {
            let (end, _) = entry_at(i + 1)?;
            if end > entry && found[w].is_none() {
                found[w] = Some(GoFunc { entry, end });
            }
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_versions() {
        let v = |s: &str| {
            BuildInfo {
                version: s.into(),
                module: None,
            }
            .release()
        };
        assert_eq!(v("go1.21.13"), Some((1, 21)));
        assert_eq!(v("go1.19.8"), Some((1, 19)));
        assert_eq!(v("go1.27.3 X:nocoverageredesign"), Some((1, 27)));
        assert_eq!(v("go1.22rc1"), Some((1, 22)));
        assert_eq!(v("devel go1.23-abcdef"), None);
        assert_eq!(v("go"), None);
    }

    #[test]
    fn inline_build_info() {
        let mut s = BUILDINFO_MAGIC.to_vec();
        s.extend([8, BUILDINFO_INLINE]);
        s.resize(BUILDINFO_HEADER, 0);
        s.push(9);
        s.extend(b"go1.21.13");
        let modinfo =
            b"0123456789abcdefpath\texample.com/app\nmod\texample.com/app\t(devel)\t\n0123456789abcdef";
        s.push(modinfo.len() as u8);
        s.extend(modinfo);
        let b = build_info(&s, |_, _| None).unwrap();
        assert_eq!(b.version, "go1.21.13");
        assert_eq!(b.module.as_deref(), Some("example.com/app"));
    }

    #[test]
    fn pointer_build_info_reads_the_image() {
        let mut s = BUILDINFO_MAGIC.to_vec();
        s.extend([8, 0]);
        s.extend(0x1000u64.to_le_bytes()); // version string header
        s.extend(0u64.to_le_bytes()); // no modinfo
        let mut image = [0u8; 0x40];
        image[..8].copy_from_slice(&0x1020u64.to_le_bytes());
        image[8..16].copy_from_slice(&8u64.to_le_bytes());
        image[0x20..0x28].copy_from_slice(b"go1.17.9");
        let read = |addr: u64, len: usize| {
            let at = usize::try_from(addr.checked_sub(0x1000)?).ok()?;
            image.get(at..at + len)
        };
        let b = build_info(&s, read).unwrap();
        assert_eq!(b.version, "go1.17.9");
        assert_eq!(b.module, None);
    }

    /// A 1.20-style pclntab with functions `a` at text+0x10..0x40 and
    /// `crypto/tls.(*Conn).Read` at text+0x40..0x90.
    fn pclntab(magic: u32, header_text: u64) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend(magic.to_le_bytes());
        t.extend([0, 0, 1, 8]);
        let names = b"a\0crypto/tls.(*Conn).Read\0";
        let funcname_off = 72u64;
        let pcln_off = funcname_off + names.len() as u64;
        for w in [2, 0, header_text, funcname_off, 0, 0, 0, pcln_off] {
            t.extend(u64::to_le_bytes(w));
        }
        t.extend(names);
        // functab: 3 entries (2 + sentinel), then two _func (entryOff, nameOff).
        let funcs: u32 = 3 * 8;
        for (entry, func) in [(0x10u32, funcs), (0x40, funcs + 8), (0x90, 0)] {
            t.extend(entry.to_le_bytes());
            t.extend(func.to_le_bytes());
        }
        for (entry, name) in [(0x10u32, 0u32), (0x40, 2)] {
            t.extend(entry.to_le_bytes());
            t.extend(name.to_le_bytes());
        }
        t
    }

    #[test]
    fn finds_functions_in_a_pclntab() {
        let wanted = ["crypto/tls.(*Conn).Read", "crypto/tls.(*Conn).Write"];
        for magic in [0xffff_fff0, 0xffff_fff1] {
            let t = pclntab(magic, 0x40_1000);
            let got = find_functions(&t, 0, &wanted).unwrap();
            assert_eq!(
                got,
                [
                    Some(GoFunc {
                        entry: 0x40_1040,
                        end: 0x40_1090
                    }),
                    None
                ]
            );
        }
        // PIE: the header's text start is relocated at run time.
        let t = pclntab(0xffff_fff1, 0);
        let got = find_functions(&t, 0x2000, &wanted).unwrap();
        assert_eq!(got[0].map(|f| f.entry), Some(0x2040));
    }

    #[test]
    fn malformed_pclntabs_give_none_never_a_panic() {
        let wanted = ["crypto/tls.(*Conn).Read"];
        assert_eq!(find_functions(&[], 0, &wanted), None);
        assert_eq!(find_functions(&[0xf1, 0xff, 0xff, 0xff], 0, &wanted), None);
        let good = pclntab(0xffff_fff1, 0x1000);
        for cut in 0..good.len() {
            let _ = find_functions(&good[..cut], 0, &wanted);
        }
        for i in 8..good.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut t = good.clone();
                t[i] = v;
                let _ = find_functions(&t, 0, &wanted);
            }
        }
        let mut s = BUILDINFO_MAGIC.to_vec();
        s.extend([8, BUILDINFO_INLINE]);
        s.resize(BUILDINFO_HEADER, 0);
        s.extend([0xff; 12]);
        assert_eq!(build_info(&s, |_, _| None), None);
    }
}
