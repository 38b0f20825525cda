//! The request log's segment files, and their import into the catalog.
//!
//! A server appends every scored application to a segment file in the
//! home's `request-log/` folder (next to `kaskad.db`) instead of writing a
//! SQLite row per application: the cost per entry on the server is a copy
//! into a buffer and, a hundred times a second, one `write(2)`. Closed
//! segments are imported into the catalog's `requests` table in large
//! transactions ([`Catalog::import_request_log`]), by the server that wrote
//! them every few seconds and at shutdown, by the next server to start on
//! the home (a segment left by a killed process), and by readers such as
//! `kaskad summary`.
//!
//! A segment is `<unix nanoseconds>-<pid>.seg`: the magic `KSKRLOG1`, then
//! records, each a little-endian `u32` byte length followed by the arrival
//! time and the latency (`f64` seconds since the epoch, `f64`
//! milliseconds) and five `u32`-length-prefixed UTF-8 strings: request id,
//! route, model, input, output. The writer holds an exclusive lock
//! (`flock`) on its open segment, created under a `.tmp` name and renamed
//! once locked, so a segment that can be locked is closed: its writer
//! finished it or died. How far each segment was imported is stored in the
//! same transaction as its rows (`request_log_segments`), so an import
//! stopped at any point resumes without duplicating a row, and only then
//! is the file removed. A record cut short (a crash in the middle of a
//! write, a power cut) ends the segment: the bytes after the last whole
//! record are counted as lost.

use std::fs::{File, TryLockError};
use std::io::{BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::artifacts::io;
use crate::{Catalog, RegistryError, RequestRecord};

const MAGIC: &[u8; 8] = b"KSKRLOG1";
const EXTENSION: &str = "seg";
/// Arrival time, latency and the five strings' lengths.
const FIXED_BYTES: usize = 8 + 8 + 5 * 4;
/// Rows per import transaction: bounds how long an import holds the
/// catalog's write lock against `kaskad update` and the server's own writes
/// (about 10 ms of CPU, so well under a second even for an importer that
/// a saturated server leaves at the lowest priority). Larger ones were no
/// faster: one timing of 200k rows gave 5.8 µs per row at 20,000 against
/// 4.6 µs at 2,000 (the `request_log_import` bench measures this size).
const IMPORT_CHUNK: usize = 2_000;

/// Where the request log's segments of the catalog at `db_path` live.
pub fn request_log_dir(db_path: &Path) -> PathBuf {
    db_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("request-log")
}

/// Appends entries to the current segment of one process, opening a new
/// segment on the first entry after [`SegmentWriter::close`].
pub struct SegmentWriter {
    dir: PathBuf,
    open: Option<OpenSegment>,
}

struct OpenSegment {
    path: PathBuf,
    file: BufWriter<File>,
    opened: Instant,
}

impl SegmentWriter {
    pub fn new(dir: &Path) -> Result<SegmentWriter, RegistryError> {
        fs_err::create_dir_all(dir).map_err(io(dir))?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            open: None,
        })
    }

    /// Buffers entries made by [`LogEntry::encode`]; they reach the file
    /// at the next [`flush`](SegmentWriter::flush) (or when the buffer
    /// fills).
    pub fn append(&mut self, encoded: &[u8]) -> Result<(), RegistryError> {
        if self.open.is_none() {
            self.open = Some(self.create()?);
        }
        let segment = self.open.as_mut().expect("opened above");
        segment.file.write_all(encoded).map_err(io(&segment.path))
    }

    /// Since when the current segment is open, if one is.
    pub fn opened(&self) -> Option<Instant> {
        self.open.as_ref().map(|s| s.opened)
    }

    /// Hands what is buffered to the operating system (not synced to disk).
    pub fn flush(&mut self) -> Result<(), RegistryError> {
        match &mut self.open {
            Some(segment) => segment.file.flush().map_err(io(&segment.path)),
            None => Ok(()),
        }
    }

    /// Flushes and closes the current segment, which releases its lock and
    /// so makes it importable.
    pub fn close(&mut self) -> Result<(), RegistryError> {
        self.flush()?;
        self.open = None;
        Ok(())
    }

    fn create(&self) -> Result<OpenSegment, RegistryError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let stem = format!("{nanos:020}-{}", std::process::id());
        let tmp = self.dir.join(format!("{stem}.tmp"));
        let path = self.dir.join(format!("{stem}.{EXTENSION}"));
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.lock().map_err(io(&tmp))?;
        file.write_all(MAGIC).map_err(io(&tmp))?;
        fs_err::rename(&tmp, &path).map_err(io(&tmp))?;
        Ok(OpenSegment {
            path,
            file: BufWriter::with_capacity(1 << 20, file),
            opened: Instant::now(),
        })
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        // Errors were reported by the flushes that mattered; this one keeps
        // what a caller forgot to close.
        let _ = self.flush();
    }
}

/// One entry of the request log as the server logs it, borrowed from the
/// answer it logs; read back as a [`RequestRecord`].
#[derive(Debug, Clone, Copy)]
pub struct LogEntry<'a> {
    pub request_id: &'a str,
    /// Seconds since the Unix epoch when the request arrived.
    pub at_unix: f64,
    pub route: &'a str,
    pub model: &'a str,
    /// JSON text.
    pub input: &'a str,
    /// JSON text.
    pub output: &'a str,
    pub latency_ms: f64,
}

impl LogEntry<'_> {
    /// Appends the entry as one segment record to `out`; `false` (and
    /// nothing appended) when it is over the format's 4 GiB.
    pub fn encode(&self, out: &mut Vec<u8>) -> bool {
        let strings = [
            self.request_id,
            self.route,
            self.model,
            self.input,
            self.output,
        ];
        let len = FIXED_BYTES + strings.iter().map(|s| s.len()).sum::<usize>();
        let Ok(len) = u32::try_from(len) else {
            return false;
        };
        out.reserve(4 + len as usize);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.at_unix.to_le_bytes());
        out.extend_from_slice(&self.latency_ms.to_le_bytes());
        for s in strings {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        true
    }
}

impl RequestRecord {
    /// The record as an entry to log.
    pub fn entry(&self) -> LogEntry<'_> {
        LogEntry {
            request_id: &self.request_id,
            at_unix: self.at_unix,
            route: &self.route,
            model: &self.model,
            input: &self.input,
            output: &self.output,
            latency_ms: self.latency_ms,
        }
    }
}

/// One record's bytes (after its length) back into an entry; `None` when
/// they do not hold one.
fn decode(bytes: &[u8]) -> Option<RequestRecord> {
    let f64_at = |at: usize| Some(f64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let at_unix = f64_at(0)?;
    let latency_ms = f64_at(8)?;
    let mut rest = &bytes[16..];
    let mut next = || {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let text = std::str::from_utf8(rest.get(4..4 + len)?).ok()?.to_string();
        rest = &rest[4 + len..];
        Some(text)
    };
    let record = RequestRecord {
        request_id: next()?,
        route: next()?,
        model: next()?,
        input: next()?,
        output: next()?,
        at_unix,
        latency_ms,
    };
    rest.is_empty().then_some(record)
}

/// What [`Catalog::import_request_log`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Segments read to their end (and removed).
    pub segments: usize,
    /// Entries added to the `requests` table.
    pub entries: u64,
    /// Bytes after the last whole record of a segment (a write cut short).
    pub lost_bytes: u64,
}

impl Catalog {
    /// Imports every closed segment in `dir` (oldest first) into the
    /// `requests` table, [`IMPORT_CHUNK`] entries per transaction, and
    /// removes each once done. Segments a live writer holds are left alone;
    /// a missing `dir` has nothing to import.
    pub fn import_request_log(&mut self, dir: &Path) -> Result<ImportReport, RegistryError> {
        self.import_request_log_reporting(dir, |_| {})
    }

    /// [`Catalog::import_request_log`], telling `committed` how many
    /// entries each transaction added as it commits (a long import's
    /// progress).
    pub fn import_request_log_reporting(
        &mut self,
        dir: &Path,
        mut committed: impl FnMut(u64),
    ) -> Result<ImportReport, RegistryError> {
        let mut names = Vec::new();
        match fs_err::read_dir(dir) {
            Ok(entries) => {
                for entry in entries {
                    let path = entry.map_err(io(dir))?.path();
                    if path.extension().is_some_and(|e| e == EXTENSION) {
                        names.push(path);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io(dir)(e)),
        }
        names.sort();
        let mut report = ImportReport::default();
        for path in names {
            self.import_segment(&path, &mut report, &mut committed)?;
        }
        Ok(report)
    }

    fn import_segment(
        &mut self,
        path: &Path,
        report: &mut ImportReport,
        committed: &mut impl FnMut(u64),
    ) -> Result<(), RegistryError> {
        let file = match File::open(path) {
            Ok(file) => file,
            // Another importer finished it meanwhile.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(path)(e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(()),
            Err(TryLockError::Error(e)) => return Err(io(path)(e)),
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = file.metadata().map_err(io(path))?.len();
        let mut offset = match self.segment_progress(&name)? {
            Some(offset) => offset,
            // Shorter than its header: its writer died creating it.
            None if size < MAGIC.len() as u64 => size,
            None => {
                let mut magic = [0u8; 8];
                (&file).read_exact(&mut magic).map_err(io(path))?;
                if &magic != MAGIC {
                    return Err(RegistryError::Corrupt {
                        path: path.to_path_buf(),
                        message: "not a request-log segment (no KSKRLOG1 header)".into(),
                    });
                }
                MAGIC.len() as u64
            }
        };
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        reader.seek(SeekFrom::Start(offset)).map_err(io(path))?;
        let mut chunk = Vec::with_capacity(IMPORT_CHUNK.min(4096));
        let mut bytes = Vec::new();
        loop {
            let mut len = [0u8; 4];
            let record = match reader.read_exact(&mut len) {
                Ok(()) => {
                    let len = u32::from_le_bytes(len) as u64;
                    let fits = len >= FIXED_BYTES as u64 && offset + 4 + len <= size;
                    bytes.resize(if fits { len as usize } else { 0 }, 0);
                    (fits && reader.read_exact(&mut bytes).is_ok())
                        .then(|| decode(&bytes))
                        .flatten()
                        .map(|r| (r, 4 + len))
                }
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => None,
                Err(e) => return Err(io(path)(e)),
            };
            let end = record.is_none();
            if let Some((record, bytes)) = record {
                chunk.push(record);
                offset += bytes;
            }
            if chunk.len() == IMPORT_CHUNK || (end && !chunk.is_empty()) {
                self.import_requests(&name, &chunk, offset)?;
                report.entries += chunk.len() as u64;
                committed(chunk.len() as u64);
                chunk.clear();
            }
            if end {
                break;
            }
        }
        report.lost_bytes += size - offset;
        report.segments += 1;
        match fs_err::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io(path)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> RequestRecord {
        RequestRecord {
            request_id: format!("r{i}"),
            at_unix: 1_700_000_000.0 + i as f64,
            route: "/v1/models/{name}/score".into(),
            model: "m@1".into(),
            input: format!("{{\"Income\": {i}, \"Home\": \"rent ü\"}}"),
            output: format!("{{\"score\": 0.{i}}}"),
            latency_ms: 0.25,
        }
    }

    fn encoded(i: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        assert!(record(i).entry().encode(&mut bytes));
        bytes
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs_err::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        found.sort();
        found
    }

    #[test]
    fn entries_round_trip_through_a_segment_and_an_open_segment_waits() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open(&dir.path().join("kaskad.db")).unwrap();
        let logs = request_log_dir(&dir.path().join("kaskad.db"));
        let mut writer = SegmentWriter::new(&logs).unwrap();
        for i in 0..3 {
            writer.append(&encoded(i)).unwrap();
        }
        writer.flush().unwrap();
        // Flushed but still open: locked by its writer, so not imported.
        let report = catalog.import_request_log(&logs).unwrap();
        assert_eq!(report, ImportReport::default());
        assert!(catalog.logged_requests().unwrap().is_empty());

        writer.close().unwrap();
        writer.append(&encoded(3)).unwrap();
        let report = catalog.import_request_log(&logs).unwrap();
        assert_eq!((report.segments, report.entries), (1, 3));
        assert_eq!(segments(&logs).len(), 1, "the open one stays");
        writer.close().unwrap();
        assert_eq!(catalog.import_request_log(&logs).unwrap().entries, 1);
        assert!(segments(&logs).is_empty());

        let logged = catalog.logged_requests().unwrap();
        assert_eq!(logged.len(), 4);
        for (i, got) in logged.iter().enumerate() {
            let want = record(i);
            assert_eq!(
                (&got.request_id, &got.input, &got.output, &got.model),
                (&want.request_id, &want.input, &want.output, &want.model)
            );
            assert_eq!((got.at_unix, got.latency_ms), (want.at_unix, 0.25));
        }
    }

    #[test]
    fn a_cut_record_ends_the_segment_and_an_import_never_repeats_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open(&dir.path().join("kaskad.db")).unwrap();
        let logs = dir.path().join("request-log");
        let mut writer = SegmentWriter::new(&logs).unwrap();
        for i in 0..5 {
            writer.append(&encoded(i)).unwrap();
        }
        writer.close().unwrap();
        let path = segments(&logs).remove(0);
        let whole = fs_err::read(&path).unwrap();
        // A kill in the middle of the last write: 7 bytes of it are lost.
        fs_err::write(&path, &whole[..whole.len() - 7]).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let size = |i| encoded(i).len() as u64;
        // A first import that committed two rows and died before the rest.
        let first_two = MAGIC.len() as u64 + size(0) + size(1);
        catalog
            .import_requests(&name, &[record(0), record(1)], first_two)
            .unwrap();

        let report = catalog.import_request_log(&logs).unwrap();
        assert_eq!(
            (report.segments, report.entries, report.lost_bytes),
            (1, 2, size(4) - 7)
        );
        let ids: Vec<String> = catalog
            .logged_requests()
            .unwrap()
            .into_iter()
            .map(|r| r.request_id)
            .collect();
        assert_eq!(ids, ["r0", "r1", "r2", "r3"]);
        assert!(segments(&logs).is_empty());

        // A file that is not a segment is refused by name, not imported.
        fs_err::write(logs.join("x.seg"), b"hello, not a segment").unwrap();
        let e = catalog.import_request_log(&logs).unwrap_err().to_string();
        assert!(e.contains("x.seg") && e.contains("KSKRLOG1"), "{e}");
    }
}
