//! The error type of the core crate: every variant names where the problem is.

use std::path::PathBuf;

/// Errors raised while reading data or configuration.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: the file holds no data rows")]
    EmptyFile { path: PathBuf },
    #[error("column `{column}` appears twice")]
    DuplicateColumn { column: String },
    #[error("column `{column}` has {found} rows, expected {expected}")]
    RaggedColumn {
        column: String,
        found: usize,
        expected: usize,
    },
    #[error("unknown column `{column}` (known: {known})")]
    UnknownColumn { column: String, known: String },
    #[error("column `{column}` is numeric in one batch and categorical in another")]
    KindMismatch { column: String },
    #[error("target column `{column}`: {message}")]
    Target { column: String, message: String },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
}
