//! Sources of batches: a file split into batches, a directory of files, or a
//! Redis stream.

use std::path::{Path, PathBuf};

use kaskad_core::{ColumnKind, Frame};

use crate::redis_stream::{RedisStream, entries_to_frame};
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

    /// Every batch the source offers now, in stream order. The caller skips
    /// those its catalog already holds, by content hash.
    pub fn batches(&self, plan: BatchPlan<'_>) -> Result<Vec<CandidateBatch>, CollectError> {
        match self {
            Source::File(path) => {
                let frame = shape(read_table(path, plan.schema)?, path, plan)?;
                let name = file_name(path);
                let n = frame.n_rows();
                Ok((0..n)
                    .step_by(plan.batch_rows)
                    .map(|start| {
                        let end = (start + plan.batch_rows).min(n);
                        let rows: Vec<usize> = (start..end).collect();
                        let batch = frame.take(&rows);
                        CandidateBatch {
                            origin: format!("{name} rows {}–{end}", start + 1),
                            meta: describe(&batch, plan.time),
                            frame: batch,
                            entries: Vec::new(),
                        }
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
                files
                    .iter()
                    .map(|path| {
                        let frame = shape(read_table(path, plan.schema)?, path, plan)?;
                        Ok(CandidateBatch {
                            origin: file_name(path),
                            meta: describe(&frame, plan.time),
                            frame,
                            entries: Vec::new(),
                        })
                    })
                    .collect()
            }
            Source::Redis(stream) => {
                let entries = stream.read()?;
                // Entries deleted from the stream while pending have no
                // fields left to store: acknowledged with the first batch.
                let (gone, live): (Vec<_>, Vec<_>) =
                    entries.into_iter().partition(|e| e.fields.is_none());
                let mut gone: Vec<String> = gone.into_iter().map(|e| e.id).collect();
                live.chunks_exact(plan.batch_rows)
                    .map(|chunk| {
                        let frame = shape(
                            entries_to_frame(chunk, &stream.path(), plan.schema)?,
                            &stream.path(),
                            plan,
                        )?;
                        let mut ids: Vec<String> = std::mem::take(&mut gone);
                        ids.extend(chunk.iter().map(|e| e.id.clone()));
                        Ok(CandidateBatch {
                            origin: format!(
                                "stream {} entries {}–{}",
                                stream.stream,
                                chunk[0].id,
                                chunk[chunk.len() - 1].id
                            ),
                            meta: describe(&frame, plan.time),
                            frame,
                            entries: ids,
                        })
                    })
                    .collect()
            }
        }
    }

    /// What a data set looks like before a home is built on it: like
    /// [`Source::batches`], except that a stream is only looked at (its
    /// first `plan.batch_rows` entries, or 100 000), not read as the group.
    pub fn preview(&self, plan: BatchPlan<'_>) -> Result<Vec<CandidateBatch>, CollectError> {
        let Source::Redis(stream) = self else {
            return self.batches(plan);
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
        let batches = Source::from_path(&p).unwrap().batches(plan).unwrap();
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
    fn bad_time_and_unknown_columns_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "d.csv", "m,x\nJan-2018,1\nlater,2\n");
        let plan = BatchPlan {
            drop: &[],
            time: Some("m"),
            batch_rows: 2,
            schema: None,
        };
        let err = Source::File(p.clone())
            .batches(plan)
            .unwrap_err()
            .to_string();
        assert!(err.contains("row 2") && err.contains("later"), "{err}");
        let schema = vec![("m".to_string(), ColumnKind::Categorical)];
        let plan = BatchPlan {
            drop: &[],
            time: None,
            batch_rows: 2,
            schema: Some(&schema),
        };
        let err = Source::Directory(dir.path().into())
            .batches(plan)
            .unwrap_err()
            .to_string();
        assert!(err.contains("columns x are not in the schema"), "{err}");
    }
}
