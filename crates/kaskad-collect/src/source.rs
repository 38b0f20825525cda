//! Sources of batches: a file split into batches, a directory of files, or a
//! Redis stream.

use std::path::{Path, PathBuf};

use kaskad_core::{ColumnKind, Frame};
use sha2::{Digest, Sha256};

use crate::meta::hex_digest;
use crate::redis_stream::{Entry, RedisStream, entries_to_frame};
use crate::{BatchMeta, CollectError, describe, read_parquet, time_key};

/// Where batches come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// One CSV or Parquet file, ordered by time and split into batches of
    /// `batch_rows` rows: the stream emulation of a historical data set.
    File(PathBuf),
    /// A directory into which new CSV or Parquet files arrive; each file is
    /// one batch, taken in name order.
    Directory(PathBuf),
    /// A Redis stream read through a consumer group: one entry per
    /// application, `batch_rows` entries per batch.
    Redis(RedisStream),
}

/// A batch the source offers, with its meta-parameters.
#[derive(Debug, Clone)]
pub struct CandidateBatch {
    /// Where the batch came from, for people: `file.csv rows 1–1000`.
    pub origin: String,
    pub frame: Frame,
    pub meta: BatchMeta,
    /// Stream entries to acknowledge once the batch is stored (empty for
    /// files, which need no acknowledgement).
    pub entries: Vec<String>,
}

/// An input the source could not read as a batch: a file or a stream entry,
/// with why. It is set aside ([`Source::reject`]), never deleted.
#[derive(Debug)]
pub struct RejectedInput {
    /// The file's name, or `stream NAME entry ID`.
    pub origin: String,
    /// SHA-256 of the file's bytes or of the entry's fields: a file whose
    /// content changes is a new input.
    pub content_hash: String,
    pub error: CollectError,
    /// The stream entry, for the dead-letter stream.
    entry: Option<Entry>,
}

/// What a source offers for one input: a batch, or the input rejected.
pub type Offered = Result<CandidateBatch, Box<RejectedInput>>;

/// What shapes the batches: columns to drop, time order, batch size, and the
/// schema earlier batches established.
#[derive(Debug, Clone, Copy)]
pub struct BatchPlan<'a> {
    pub drop: &'a [String],
    pub time: Option<&'a str>,
    pub batch_rows: usize,
    pub schema: Option<&'a [(String, ColumnKind)]>,
}

impl Source {
    /// A file, a directory, or a `redis://host:port[/db]?stream=NAME` location.
    pub fn from_path(path: &Path) -> Result<Source, CollectError> {
        if let Some(stream) = path.to_str().and_then(RedisStream::parse) {
            Ok(Source::Redis(stream?))
        } else if path.is_dir() {
            Ok(Source::Directory(path.to_path_buf()))
        } else if path.is_file() {
            Ok(Source::File(path.to_path_buf()))
        } else {
            Err(CollectError::MissingSource {
                path: path.to_path_buf(),
            })
        }
    }

    /// Every batch the source offers now, in stream order, each input on its
    /// own: a file or stream entry that cannot be read as a batch is a
    /// [`RejectedInput`] in its place, so it hides none of the others. The
    /// caller skips the batches its catalog already holds, by content hash.
    /// The error is the source's own (unreachable, unreadable directory).
    pub fn batches(&self, plan: BatchPlan<'_>) -> Result<Vec<Offered>, CollectError> {
        match self {
            Source::File(path) => {
                let frame = match read_file(path, plan) {
                    Ok(frame) => frame,
                    Err(rejected) => return Ok(vec![Err(rejected)]),
                };
                let name = file_name(path);
                let n = frame.n_rows();
                Ok((0..n)
                    .step_by(plan.batch_rows)
                    .map(|start| {
                        let end = (start + plan.batch_rows).min(n);
                        let rows: Vec<usize> = (start..end).collect();
                        let batch = frame.take(&rows);
                        Ok(CandidateBatch {
                            origin: format!("{name} rows {}–{end}", start + 1),
                            meta: describe(&batch, plan.time),
                            frame: batch,
                            entries: Vec::new(),
                        })
                    })
                    .collect())
            }
            Source::Directory(dir) => {
                let mut files: Vec<PathBuf> = fs_err::read_dir(dir)
                    .map_err(CollectError::io(dir))?
                    .filter_map(|entry| entry.ok().map(|e| e.path()))
                    .filter(|p| matches!(extension(p).as_str(), "csv" | "parquet"))
                    .collect();
                files.sort();
                Ok(files
                    .iter()
                    .map(|path| {
                        let frame = read_file(path, plan)?;
                        Ok(CandidateBatch {
                            origin: file_name(path),
                            meta: describe(&frame, plan.time),
                            frame,
                            entries: Vec::new(),
                        })
                    })
                    .collect())
            }
            Source::Redis(stream) => stream_batches(stream, plan),
        }
    }

    /// What a data set looks like before a home is built on it: like
    /// [`Source::batches`], except that a stream is only looked at (its
    /// first `plan.batch_rows` entries, or 100 000), not read as the group,
    /// and any input that would be rejected is an error.
    pub fn preview(&self, plan: BatchPlan<'_>) -> Result<Vec<CandidateBatch>, CollectError> {
        let Source::Redis(stream) = self else {
            return self
                .batches(plan)?
                .into_iter()
                .map(|offered| offered.map_err(|rejected| rejected.error))
                .collect();
        };
        let entries = stream.peek(plan.batch_rows.min(100_000))?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let frame = shape(
            entries_to_frame(&entries, &stream.path(), plan.schema)?,
            &stream.path(),
            plan,
        )?;
        Ok(vec![CandidateBatch {
            origin: format!("stream {}", stream.stream),
            meta: describe(&frame, plan.time),
            frame,
            entries: Vec::new(),
        }])
    }

    /// Tells the source a batch is stored, so a stream stops offering its
    /// entries.
    pub fn acknowledge(&self, batch: &CandidateBatch) -> Result<(), CollectError> {
        match self {
            Source::Redis(stream) => stream.acknowledge(&batch.entries),
            Source::File(_) | Source::Directory(_) => Ok(()),
        }
    }

    /// Sets a rejected input aside so the stream goes on without it: a
    /// stream entry is copied, with an `error` field, to the dead-letter
    /// stream `<stream>:rejected` and acknowledged; a file stays where it
    /// is, byte for byte.
    pub fn reject(&self, rejected: &RejectedInput) -> Result<(), CollectError> {
        match (self, &rejected.entry) {
            (Source::Redis(stream), Some(entry)) => {
                stream.dead_letter(entry, &rejected.error.to_string())
            }
            _ => Ok(()),
        }
    }
}

/// A file's table with the plan applied, or the file rejected.
fn read_file(path: &Path, plan: BatchPlan<'_>) -> Result<Frame, Box<RejectedInput>> {
    read_table(path, plan.schema)
        .and_then(|frame| shape(frame, path, plan))
        .map_err(|error| {
            Box::new(RejectedInput {
                origin: file_name(path),
                content_hash: file_hash(path),
                error,
                entry: None,
            })
        })
}

/// SHA-256 of a file's bytes; `unreadable` when they cannot be read, so an
/// unreadable file is rejected once, not once per update.
fn file_hash(path: &Path) -> String {
    std::fs::read(path).map_or_else(
        |_| "unreadable".to_string(),
        |bytes| hex_digest(Sha256::new_with_prefix(bytes)),
    )
}

/// The stream's full batches in stream order. A bad entry is rejected on
/// its own and the batch it was in is completed by the entries after it;
/// an error that names no entry (a column to drop that no entry of a batch
/// has) stops the stream, as it would stop every batch.
fn stream_batches(stream: &RedisStream, plan: BatchPlan<'_>) -> Result<Vec<Offered>, CollectError> {
    offer_entries(stream, stream.read()?, plan)
}

fn offer_entries(
    stream: &RedisStream,
    entries: Vec<Entry>,
    plan: BatchPlan<'_>,
) -> Result<Vec<Offered>, CollectError> {
    // Entries deleted from the stream while pending have no fields left to
    // store: acknowledged with the first batch.
    let (gone, live): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.fields.is_none());
    let mut gone: Vec<String> = gone.into_iter().map(|e| e.id).collect();
    let path = stream.path();
    let mut live = live.into_iter();
    let mut chunk: Vec<Entry> = Vec::new();
    let mut offered = Vec::new();
    loop {
        chunk.extend(live.by_ref().take(plan.batch_rows - chunk.len()));
        if chunk.len() < plan.batch_rows {
            // An incomplete tail stays pending until enough entries arrive.
            return Ok(offered);
        }
        match entries_to_frame(&chunk, &path, plan.schema).and_then(|f| shape(f, &path, plan)) {
            Ok(frame) => {
                let origin = format!(
                    "stream {} entries {}–{}",
                    stream.stream,
                    chunk[0].id,
                    chunk[chunk.len() - 1].id
                );
                let mut ids: Vec<String> = std::mem::take(&mut gone);
                ids.extend(chunk.drain(..).map(|e| e.id));
                offered.push(Ok(CandidateBatch {
                    origin,
                    meta: describe(&frame, plan.time),
                    frame,
                    entries: ids,
                }));
            }
            Err(error) => {
                let Some(bad) = culprit(&error, &chunk, plan) else {
                    return Err(error);
                };
                let entry = chunk.remove(bad);
                let mut hasher = Sha256::new();
                for (name, value) in entry.fields.iter().flatten() {
                    hasher.update(name.as_bytes());
                    hasher.update([0x1f]);
                    hasher.update(value.as_bytes());
                    hasher.update([0x1e]);
                }
                offered.push(Err(Box::new(RejectedInput {
                    origin: format!("stream {} entry {}", stream.stream, entry.id),
                    content_hash: hex_digest(hasher),
                    error,
                    entry: Some(entry),
                })));
            }
        }
    }
}

/// The entry of `chunk` an error is about, when it is about one.
fn culprit(error: &CollectError, chunk: &[Entry], plan: BatchPlan<'_>) -> Option<usize> {
    match error {
        CollectError::StreamEntry { entry, .. } => chunk.iter().position(|e| &e.id == entry),
        // Rows are counted before the time order, so in entry order.
        CollectError::BadTime { row, .. } => row.checked_sub(1).filter(|&i| i < chunk.len()),
        CollectError::UnknownColumns { .. } => {
            let schema = plan.schema?;
            chunk.iter().position(|e| {
                e.fields.iter().flatten().any(|(name, _)| {
                    !plan.drop.contains(name) && !schema.iter().any(|(s, _)| s == name)
                })
            })
        }
        _ => None,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads a CSV or Parquet file. With `schema`, CSV columns take the kinds of
/// earlier batches, so a word in a numeric column is an error with its line.
pub fn read_table(
    path: &Path,
    schema: Option<&[(String, ColumnKind)]>,
) -> Result<Frame, CollectError> {
    match extension(path).as_str() {
        "csv" => {
            let file = std::fs::File::open(path).map_err(CollectError::io(path))?;
            Ok(kaskad_core::read_csv_reader(
                std::io::BufReader::new(file),
                path,
                schema,
            )?)
        }
        "parquet" => read_parquet(path),
        _ => Err(CollectError::UnsupportedFile {
            path: path.to_path_buf(),
        }),
    }
}

/// Drops configured columns, checks the schema, and orders rows by time.
fn shape(mut frame: Frame, path: &Path, plan: BatchPlan<'_>) -> Result<Frame, CollectError> {
    for column in plan.drop {
        if frame.remove(column).is_none() {
            return Err(CollectError::UnknownDropColumn {
                path: path.to_path_buf(),
                column: column.clone(),
            });
        }
    }
    if let Some(schema) = plan.schema {
        let unknown: Vec<&str> = frame
            .names()
            .into_iter()
            .filter(|n| !schema.iter().any(|(s, _)| s == n))
            .collect();
        if !unknown.is_empty() {
            return Err(CollectError::UnknownColumns {
                path: path.to_path_buf(),
                columns: unknown.join(", "),
                known: schema
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let Some(time) = plan.time else {
        return Ok(frame);
    };
    let column = frame.require(time)?;
    let mut keys = Vec::with_capacity(column.len());
    for row in 0..column.len() {
        let value = column.display_value(row);
        let key = time_key(&value).ok_or_else(|| CollectError::BadTime {
            path: path.to_path_buf(),
            column: time.to_string(),
            row: row + 1,
            value: value.clone(),
        })?;
        keys.push(key);
    }
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    Ok(frame.take(&order))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn file_source_orders_by_time_and_splits() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "d.csv",
            "m,x,leak\nMar-2018,3,a\nJan-2018,1,b\nFeb-2018,2,c\n",
        );
        let drop = vec!["leak".to_string()];
        let plan = BatchPlan {
            drop: &drop,
            time: Some("m"),
            batch_rows: 2,
            schema: None,
        };
        let batches: Vec<CandidateBatch> = Source::from_path(&p)
            .unwrap()
            .batches(plan)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(batches.len(), 2);
        assert_eq!(
            batches[0].frame.column("x").unwrap().as_numeric().unwrap(),
            &[1.0, 2.0]
        );
        assert!(batches[0].frame.column("leak").is_none());
        assert_eq!(
            batches[0].meta.time_range,
            Some(("Jan-2018".into(), "Feb-2018".into()))
        );
        assert_eq!(batches[1].origin, "d.csv rows 3–3");
    }

    #[test]
    fn a_bad_file_is_rejected_in_its_place_with_the_hash_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.csv", "m,x\nJan-2018,1\n");
        let bad = write(dir.path(), "b.csv", "m,x\nJan-2018,1\nlater,2\n");
        write(dir.path(), "c.csv", "m,x,y\nFeb-2018,2,3\n");
        write(dir.path(), "d.csv", "m,x\nMar-2018,3\n");
        let schema = vec![
            ("m".to_string(), ColumnKind::Categorical),
            ("x".to_string(), ColumnKind::Numeric),
        ];
        let plan = BatchPlan {
            drop: &[],
            time: Some("m"),
            batch_rows: 2,
            schema: Some(&schema),
        };
        let offered = Source::Directory(dir.path().into()).batches(plan).unwrap();
        assert_eq!(offered.len(), 4);
        assert_eq!(offered[0].as_ref().unwrap().origin, "a.csv");
        let time = offered[1].as_ref().unwrap_err();
        assert_eq!(time.origin, "b.csv");
        let err = time.error.to_string();
        assert!(err.contains("row 2") && err.contains("later"), "{err}");
        let bytes = std::fs::read(&bad).unwrap();
        assert_eq!(
            time.content_hash,
            hex_digest(Sha256::new_with_prefix(bytes))
        );
        let columns = offered[2].as_ref().unwrap_err().error.to_string();
        assert!(
            columns.contains("columns y are not in the schema"),
            "{columns}"
        );
        assert_eq!(offered[3].as_ref().unwrap().origin, "d.csv");
        let whole = Source::File(bad).batches(plan).unwrap();
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].as_ref().unwrap_err().origin, "b.csv");
        let err = Source::Directory(dir.path().into())
            .preview(plan)
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.csv") && err.contains("later"), "{err}");
    }

    fn entry(id: &str, income: &str) -> Entry {
        Entry {
            id: id.into(),
            fields: Some(vec![("income".into(), income.into())]),
        }
    }

    #[test]
    fn a_bad_entry_is_rejected_alone_and_later_entries_complete_its_batch() {
        let stream = RedisStream::parse("redis://127.0.0.1/0?stream=apps")
            .unwrap()
            .unwrap();
        let schema = vec![("income".to_string(), ColumnKind::Numeric)];
        let plan = BatchPlan {
            drop: &[],
            time: None,
            batch_rows: 2,
            schema: Some(&schema),
        };
        let entries = vec![
            entry("1-0", "10"),
            entry("2-0", "lots"),
            entry("3-0", "12"),
            entry("4-0", "13"),
            entry("5-0", "many"),
        ];
        let offered = offer_entries(&stream, entries, plan).unwrap();
        assert_eq!(offered.len(), 3, "the tail entry 4-0 waits for another");
        let rejected = offered[0].as_ref().unwrap_err();
        assert_eq!(rejected.origin, "stream apps entry 2-0");
        assert!(rejected.error.to_string().contains("entry 2-0"));
        let batch = offered[1].as_ref().unwrap();
        assert_eq!(batch.entries, ["1-0", "3-0"]);
        assert_eq!(
            batch.frame.column("income").unwrap().as_numeric().unwrap(),
            &[10.0, 12.0]
        );
        assert_eq!(
            offered[2].as_ref().unwrap_err().origin,
            "stream apps entry 5-0"
        );
        let with_extra = vec![Entry {
            id: "6-0".into(),
            fields: Some(vec![
                ("income".into(), "1".into()),
                ("x".into(), "2".into()),
            ]),
        }];
        let offered = offer_entries(
            &stream,
            with_extra,
            BatchPlan {
                batch_rows: 1,
                ..plan
            },
        )
        .unwrap();
        let err = offered[0].as_ref().unwrap_err().error.to_string();
        assert!(err.contains("columns x are not in the schema"), "{err}");
    }
}
