//! Errors of the collect stage.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Core(#[from] kaskad_core::CoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: Parquet: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("{path}: unsupported file type (expected .csv or .parquet)")]
    UnsupportedFile { path: PathBuf },
    #[error("{path}: source does not exist")]
    MissingSource { path: PathBuf },
    #[error("{path}: column `{column}` to drop is not in the data")]
    UnknownDropColumn { path: PathBuf, column: String },
    #[error("{path}: time column `{column}`, row {row}: cannot read `{value}` as a date or number")]
    BadTime {
        path: PathBuf,
        column: String,
        row: usize,
        value: String,
    },
    #[error("{path}: columns {columns} are not in the schema of earlier batches ({known})")]
    UnknownColumns {
        path: PathBuf,
        columns: String,
        known: String,
    },
    #[error("{location}: {message}")]
    RedisLocation { location: String, message: String },
    #[error("{location}: Redis: {message}")]
    Redis { location: String, message: String },
    #[error("{path}: entry {entry}: {message}")]
    StreamEntry {
        path: PathBuf,
        entry: String,
        message: String,
    },
}

impl CollectError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| CollectError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
