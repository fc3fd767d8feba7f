//! Recordings of raw kernel events (`--record FILE`): every ring-buffer
//! record, in order, so that a capture can be replayed without the kernel —
//! by the pipeline benchmark (`cargo bench -p otel-agent --bench pipeline`)
//! and when reproducing a bug report.
//!
//! Format: the magic `OTELREC1`, then per record a little-endian `u32`
//! length and the record's bytes; a gzipped recording reads the same. A recording holds captured payloads
//! (plaintext of TLS traffic included): treat it like a packet capture.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// First bytes of every recording.
pub const MAGIC: &[u8; 8] = b"OTELREC1";
/// Largest record accepted when reading (a ring-buffer record is far smaller).
const MAX_RECORD: usize = 1 << 20;

/// Errors reading or writing a recording.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The recording.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file is not a recording.
    #[error("{path}: not an otel-agent recording (no OTELREC1 header)")]
    NotARecording {
        /// The file.
        path: PathBuf,
    },
    /// The file ends inside a record or holds an impossible length.
    #[error("{path}: corrupt recording at byte {offset}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: usize,
    },
}

/// Writes records to a file as they are read from the ring buffer.
pub struct Recorder {
    path: PathBuf,
    out: BufWriter<File>,
    records: u64,
}

impl Recorder {
    /// Create (or truncate) `path` and write the header.
    pub fn create(path: &Path) -> Result<Self, RecordingError> {
        let io_err = |source| RecordingError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(io_err)?);
        out.write_all(MAGIC).map_err(io_err)?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            records: 0,
        })
    }

    /// Append one record.
    pub fn write(&mut self, record: &[u8]) -> Result<(), RecordingError> {
        let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
        let record = &record[..len as usize];
        self.out
            .write_all(&len.to_le_bytes())
            .and_then(|()| self.out.write_all(record))
            .map_err(|source| RecordingError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.records += 1;
        Ok(())
    }

    /// Flush to disk; returns how many records were written.
    pub fn finish(mut self) -> Result<u64, RecordingError> {
        self.out.flush().map_err(|source| RecordingError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.records)
    }
}

/// Split a recording's bytes into its records.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Vec<u8>>, RecordingError> {
    let Some(mut rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Err(RecordingError::NotARecording {
            path: path.to_path_buf(),
        });
    };
    let mut records = Vec::new();
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let corrupt = || RecordingError::Corrupt {
            path: path.to_path_buf(),
            offset,
        };
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > MAX_RECORD || len > tail.len() {
            return Err(corrupt());
        }
        let (record, tail) = tail.split_at(len);
        records.push(record.to_vec());
        rest = tail;
    }
    Ok(records)
}

/// Read every record of the recording at `path`, gzipped or not.
pub fn read(path: &Path) -> Result<Vec<Vec<u8>>, RecordingError> {
    let io_err = |source| RecordingError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io_err)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return parse(path, &raw);
    }
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    parse(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let dir = std::env::temp_dir().join(format!("otel-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.rec");
        let mut r = Recorder::create(&path).unwrap();
        r.write(b"first").unwrap();
        r.write(b"").unwrap();
        r.write(&[7u8; 300]).unwrap();
        assert_eq!(r.finish().unwrap(), 3);
        let back = read(&path).unwrap();
        assert_eq!(back, vec![b"first".to_vec(), vec![], vec![7u8; 300]]);
        // Gzipped, it reads the same.
        let gz = dir.join("a.rec.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&std::fs::read(&path).unwrap()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read(&gz).unwrap(), back);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let p = Path::new("x.rec");
        assert!(matches!(
            parse(p, b"GARBAGE!"),
            Err(RecordingError::NotARecording { .. })
        ));
        let mut truncated = MAGIC.to_vec();
        truncated.extend_from_slice(&10u32.to_le_bytes());
        truncated.extend_from_slice(b"short");
        let e = parse(p, &truncated).unwrap_err();
        assert_eq!(e.to_string(), "x.rec: corrupt recording at byte 8");
        let mut half_len = MAGIC.to_vec();
        half_len.extend_from_slice(&[1, 0]);
        assert!(matches!(
            parse(p, &half_len),
            Err(RecordingError::Corrupt { offset: 8, .. })
        ));
        assert_eq!(parse(p, MAGIC).unwrap(), Vec::<Vec<u8>>::new());
    }
}
