//! Errors of the registry.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{path}: database: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("model `{reference}` not found: {reason}")]
    UnknownModel { reference: String, reason: String },
    #[error(transparent)]
    Core(#[from] kaskad_core::CoreError),
    #[error(transparent)]
    Prepare(#[from] kaskad_prepare::PrepareError),
    /// Scoring an imported ONNX model failed.
    #[error(transparent)]
    Graph(#[from] kaskad_graph::GraphError),
    #[error("unknown role `{role}` (expected admin, scorer or viewer)")]
    UnknownRole { role: String },
    #[error("batch with content hash {hash} is already stored as batch {id}")]
    DuplicateBatch { hash: String, id: i64 },
}
