//! Metadata and artifacts: the catalog of batches (and rejected inputs), runs, stage results,
//! model versions, cascades, and the server's API keys, request log and
//! outcomes; the request log's segment files (see [`SegmentWriter`]); and
//! the files that hold models.
//!
//! `kaskad-registry` owns `kaskad.db` (SQLite, WAL mode, one transaction per
//! recorded fact, schema versioned by `user_version`) and the `models/`
//! folder (one folder per version, written under a temporary name and renamed).
//! Stages hand it serializable values; it never interprets their contents
//! beyond the columns it indexes, except for [`ModelArtifact`]: the servable
//! model (preprocessor, model, schema, threshold, lineage) that every
//! consumer of a version — `inference`, the server, cascades — loads the same way,
//! compiled into its [`ScoringPlan`] for fast scoring.
//! A version may also be an ONNX model imported from elsewhere (its graph
//! evaluated by `kaskad-graph`); [`Servable`] is either kind, scored alike.

mod artifacts;
mod catalog;
mod error;
mod model;
mod plan;
mod request_log;
mod servable;

pub use artifacts::{read_artifact, write_artifact, write_artifact_with};
pub use catalog::{
    ApiKeyRecord, BatchRecord, CandidateRecord, CascadeRecord, Catalog, InferenceRecord, NewBatch,
    NewVersion, RejectedInputRecord, RequestRecord, Role, RunRecord, SearchRecord, StageRecord,
    VersionRecord,
};
pub use error::RegistryError;
pub use model::{FORMAT, FORMAT_VERSION, ModelArtifact, Reason};
pub use plan::ScoringPlan;
pub use request_log::{ImportReport, LogEntry, SegmentWriter, request_log_dir};
pub use servable::{
    IMPORTED_FORMAT, IMPORTED_FORMAT_VERSION, ImportedArtifact, ImportedRecord, ONNX_FILE, Servable,
};
