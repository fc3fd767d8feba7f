//! Parsing `/proc/PID/maps`: the files a process maps, with device and inode.

/// One file-backed line of `/proc/PID/maps`.
#[derive(Debug, PartialEq, Eq)]
pub struct MappedFile<'a> {
    /// Device of the mapped file, encoded as `st_dev`.
    pub dev: u64,
    /// Inode of the mapped file.
    pub ino: u64,
    /// Path as the kernel prints it, without the ` (deleted)` mark.
    pub path: &'a str,
    /// The file was unlinked after it was mapped.
    pub deleted: bool,
}

impl MappedFile<'_> {
    /// Device and inode: the file's identity.
    pub fn key(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// The last path component.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

/// Every file-backed mapping (one per line, so a file usually appears several times).
pub fn mapped_files(maps: &str) -> impl Iterator<Item = MappedFile<'_>> {
    maps.lines().filter_map(parse_line)
}

/// `start-end perms offset major:minor inode    path`; `None` for anonymous
/// and special mappings (`[heap]`, `[vdso]`) and malformed lines.
fn parse_line(line: &str) -> Option<MappedFile<'_>> {
    let mut fields = [""; 5];
    let mut rest = line;
    for field in &mut fields {
        rest = rest.trim_start();
        let end = rest.find(' ')?;
        *field = &rest[..end];
        rest = &rest[end..];
    }
    let path = rest.trim_start();
    if !path.starts_with('/') {
        return None;
    }
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    let (major, minor) = fields[3].split_once(':')?;
    let dev = libc::makedev(
        u32::from_str_radix(major, 16).ok()?,
        u32::from_str_radix(minor, 16).ok()?,
    );
    Some(MappedFile {
        dev,
        ino: fields[4].parse().ok()?,
        path,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn parses_file_lines_and_skips_the_rest() {
        let maps = "\
7f1c2a000000-7f1c2a021000 r--p 00000000 fd:01 1835033                    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2b000000-7f1c2b001000 r-xp 00001000 08:02 42                         /tmp/x/libssl.so.3 (deleted)
7f1c2c000000-7f1c2c021000 rw-p 00000000 00:00 0 
7ffd1000-7ffd2000 r-xp 00000000 00:00 0                                  [vdso]
garbage";
        let files: Vec<_> = mapped_files(maps).collect();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
        assert_eq!(files[0].key(), (libc::makedev(0xfd, 1), 1835033));
        assert!(!files[0].deleted);
        assert_eq!(files[1].file_name(), "libssl.so.3");
        assert_eq!(files[1].key(), (libc::makedev(8, 2), 42));
        assert!(files[1].deleted);
    }

    #[test]
    fn own_executable_matches_its_metadata() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe = std::fs::metadata("/proc/self/exe").unwrap();
        assert!(mapped_files(&maps).any(|m| m.key() == (exe.dev(), exe.ino())));
    }
}
