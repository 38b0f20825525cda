//! What a registered version is when it is served: a model kaskad trained
//! ([`ModelArtifact`]) or an ONNX model imported from elsewhere
//! ([`ImportedArtifact`]). `inference`, the server and cascades score both
//! the same way through [`Servable`].

use std::path::Path;

use kaskad_core::{ColumnKind, Frame};
use kaskad_graph::{ImportSpec, ImportedModel};
use serde::{Deserialize, Serialize};

use crate::{ModelArtifact, Reason, RegistryError, read_artifact};

/// `format` of an imported version's `model.json`.
pub const IMPORTED_FORMAT: &str = "kaskad-imported-onnx";
/// Bumped when the imported layout changes incompatibly.
pub const IMPORTED_FORMAT_VERSION: u32 = 1;
/// The ONNX model, byte for byte as imported, beside its `model.json`.
pub const ONNX_FILE: &str = "model.onnx";

/// The `model.json` of an imported version: how the graph in
/// [`ONNX_FILE`] is bound to columns, and the decision threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportedRecord {
    pub format: String,
    pub format_version: u32,
    pub name: String,
    pub version: i64,
    /// Scores at or above this predict default.
    pub threshold: f64,
    /// The file it was imported from, for the record.
    pub source: String,
    #[serde(flatten)]
    pub spec: ImportSpec,
}

/// An imported version, its graph compiled.
#[derive(Debug)]
pub struct ImportedArtifact {
    pub record: ImportedRecord,
    pub model: ImportedModel,
}

impl ImportedArtifact {
    /// Reads `model.json` and the graph beside it, and compiles the graph.
    pub fn load(path: &Path) -> Result<ImportedArtifact, RegistryError> {
        let record: ImportedRecord = read_artifact(path)?;
        if record.format != IMPORTED_FORMAT || record.format_version > IMPORTED_FORMAT_VERSION {
            return Err(RegistryError::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "not an imported model this version can read (format {:?} v{}, expected {IMPORTED_FORMAT:?} ≤ v{IMPORTED_FORMAT_VERSION})",
                    record.format, record.format_version
                ),
            });
        }
        let onnx = path.with_file_name(ONNX_FILE);
        let bytes = fs_err::read(&onnx).map_err(|e| RegistryError::Io {
            path: onnx.clone(),
            source: std::io::Error::new(e.kind(), e.to_string()),
        })?;
        let model =
            ImportedModel::new(&bytes, &record.spec).map_err(|e| RegistryError::Corrupt {
                path: onnx,
                message: e.to_string(),
            })?;
        Ok(ImportedArtifact { record, model })
    }
}

/// A registered version ready to score.
#[derive(Debug)]
pub enum Servable {
    Trained(ModelArtifact),
    Imported(ImportedArtifact),
}

impl Servable {
    /// Loads the version whose `model.json` is `path`: an imported one when
    /// its folder holds [`ONNX_FILE`], else a trained one.
    pub fn load(path: &Path) -> Result<Servable, RegistryError> {
        if path.with_file_name(ONNX_FILE).exists() {
            ImportedArtifact::load(path).map(Servable::Imported)
        } else {
            ModelArtifact::load(path).map(Servable::Trained)
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Servable::Trained(a) => &a.name,
            Servable::Imported(a) => &a.record.name,
        }
    }

    pub fn version(&self) -> i64 {
        match self {
            Servable::Trained(a) => a.version,
            Servable::Imported(a) => a.record.version,
        }
    }

    /// Scores at or above this predict default.
    pub fn threshold(&self) -> f64 {
        match self {
            Servable::Trained(a) => a.threshold,
            Servable::Imported(a) => a.record.threshold,
        }
    }

    /// The model kaskad trained, if this is one (explanations, export).
    pub fn trained(&self) -> Option<&ModelArtifact> {
        match self {
            Servable::Trained(a) => Some(a),
            Servable::Imported(_) => None,
        }
    }

    /// Raw columns the model reads, with their kinds.
    pub fn input_columns(&self) -> &[(String, ColumnKind)] {
        match self {
            Servable::Trained(a) => a.input_columns(),
            Servable::Imported(a) => a.model.input_columns(),
        }
    }

    /// Probability of default for every row of `frame`.
    pub fn score(&self, frame: &Frame) -> Result<Vec<f64>, RegistryError> {
        match self {
            Servable::Trained(a) => a.score(frame),
            Servable::Imported(a) => Ok(a.model.score(frame)?),
        }
    }

    /// Reason codes (see [`ModelArtifact::explain`]). An imported graph
    /// gives none: kaskad has no exact per-column contributions for an
    /// arbitrary graph, and approximating them would pass a guess off as
    /// the model's reasons, so every row gets an empty list.
    pub fn explain(&self, frame: &Frame, top: usize) -> Result<Vec<Vec<Reason>>, RegistryError> {
        match self {
            Servable::Trained(a) => a.explain(frame, top),
            Servable::Imported(_) => Ok(vec![Vec::new(); frame.n_rows()]),
        }
    }

    /// Why each row is unusual for this model (see
    /// [`ModelArtifact::unusual_rows`]). An imported model has no training
    /// ranges, so only the share of missing inputs can make a row unusual.
    pub fn unusual_rows(
        &self,
        frame: &Frame,
        max_missing_share: f64,
        range_factor: f64,
    ) -> Vec<Option<String>> {
        match self {
            Servable::Trained(a) => a.unusual_rows(frame, max_missing_share, range_factor),
            Servable::Imported(a) => {
                let inputs = a.model.input_columns();
                (0..frame.n_rows())
                    .map(|row| {
                        let missing = inputs
                            .iter()
                            .filter(|(name, _)| {
                                frame.column(name).is_none_or(|c| c.is_missing(row))
                            })
                            .count();
                        crate::model::too_many_missing(missing, inputs.len(), max_missing_share)
                    })
                    .collect()
            }
        }
    }
}
