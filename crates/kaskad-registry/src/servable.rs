//! What a registered version is when it is served: a model kaskad trained
//! ([`ModelArtifact`]) or an ONNX model imported from elsewhere
//! ([`ImportedArtifact`]). `inference`, the server and cascades score both
//! the same way through [`Servable`].

use std::path::Path;
use std::sync::Arc;

use kaskad_core::{Column, ColumnKind, Frame};
use kaskad_graph::{ImportSpec, ImportedModel};
use kaskad_prepare::Cell;
use serde::{Deserialize, Serialize};

use crate::{ModelArtifact, Reason, RegistryError, ScoringPlan, read_artifact};

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
    /// Reads the artifact file and the graph beside it, and compiles the graph.
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

/// A registered version ready to score; a trained one compiled into its
/// [`ScoringPlan`].
#[derive(Debug)]
pub enum Servable {
    Trained(ScoringPlan),
    Imported(Box<ImportedArtifact>),
}

impl Servable {
    /// Loads the version whose artifact file is `path`: an imported one when
    /// its folder holds [`ONNX_FILE`], else a trained one.
    pub fn load(path: &Path) -> Result<Servable, RegistryError> {
        if path.with_file_name(ONNX_FILE).exists() {
            ImportedArtifact::load(path).map(|a| Servable::Imported(Box::new(a)))
        } else {
            let artifact = ModelArtifact::load(path)?;
            artifact.model.prepare_for_scoring();
            Ok(Servable::Trained(ScoringPlan::new(Arc::new(artifact))))
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Servable::Trained(p) => &p.artifact().name,
            Servable::Imported(a) => &a.record.name,
        }
    }

    pub fn version(&self) -> i64 {
        match self {
            Servable::Trained(p) => p.artifact().version,
            Servable::Imported(a) => a.record.version,
        }
    }

    /// Scores at or above this predict default.
    pub fn threshold(&self) -> f64 {
        match self {
            Servable::Trained(p) => p.artifact().threshold,
            Servable::Imported(a) => a.record.threshold,
        }
    }

    /// The model kaskad trained, if this is one (explanations, export).
    pub fn trained(&self) -> Option<&ModelArtifact> {
        match self {
            Servable::Trained(p) => Some(p.artifact()),
            Servable::Imported(_) => None,
        }
    }

    /// Raw columns the model reads, with their kinds.
    pub fn input_columns(&self) -> &[(String, ColumnKind)] {
        match self {
            Servable::Trained(p) => p.artifact().input_columns(),
            Servable::Imported(a) => a.model.input_columns(),
        }
    }

    /// Probability of default for every row of `frame`.
    pub fn score(&self, frame: &Frame) -> Result<Vec<f64>, RegistryError> {
        match self {
            Servable::Trained(p) => p.score(frame),
            Servable::Imported(a) => Ok(a.model.score(frame)?),
        }
    }

    /// Reason codes (see [`ModelArtifact::explain`]). An imported graph
    /// gives none: kaskad has no exact per-column contributions for an
    /// arbitrary graph, and approximating them would pass a guess off as
    /// the model's reasons, so every row gets an empty list.
    pub fn explain(&self, frame: &Frame, top: usize) -> Result<Vec<Vec<Reason>>, RegistryError> {
        match self {
            Servable::Trained(p) => p.artifact().explain(frame, top),
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
            Servable::Trained(p) => {
                p.artifact()
                    .unusual_rows(frame, max_missing_share, range_factor)
            }
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

    /// Where `column` is among [`Self::input_columns`], if it is one.
    pub fn input_position(&self, column: &str) -> Option<usize> {
        match self {
            Servable::Trained(p) => p.input_position(column),
            Servable::Imported(a) => a
                .model
                .input_columns()
                .iter()
                .position(|(c, _)| c == column),
        }
    }

    /// Probability of default of one application: one cell per input
    /// column (see [`ScoringPlan::score_row`]). An imported graph scores it
    /// as a frame of one row.
    pub fn score_row(&self, row: &[Cell<'_>]) -> Result<f64, RegistryError> {
        match self {
            Servable::Trained(p) => p.score_row(row),
            Servable::Imported(a) => {
                let frame = one_row_frame(a.model.input_columns(), row)?;
                Ok(a.model.score(&frame)?[0])
            }
        }
    }

    /// One application's reason codes (see [`Self::explain`]).
    pub fn explain_row(&self, row: &[Cell<'_>], top: usize) -> Result<Vec<Reason>, RegistryError> {
        match self {
            Servable::Trained(p) => p.explain_row(row, top),
            Servable::Imported(_) => Ok(Vec::new()),
        }
    }

    /// Why one application is unusual for this model (see
    /// [`Self::unusual_rows`]).
    pub fn unusual_row(
        &self,
        row: &[Cell<'_>],
        max_missing_share: f64,
        range_factor: f64,
    ) -> Option<String> {
        match self {
            Servable::Trained(p) => p
                .artifact()
                .unusual_row(row, max_missing_share, range_factor),
            Servable::Imported(_) => {
                let missing = row.iter().filter(|c| c.is_missing()).count();
                crate::model::too_many_missing(missing, row.len(), max_missing_share)
            }
        }
    }
}

/// The frame of one application given as cells of `inputs`.
fn one_row_frame(
    inputs: &[(String, ColumnKind)],
    row: &[Cell<'_>],
) -> Result<Frame, RegistryError> {
    let columns = inputs
        .iter()
        .zip(row)
        .map(|((name, _), cell)| match *cell {
            Cell::Number(v) => Column::numeric(name.clone(), vec![v]),
            Cell::Level(v) => Column::categorical(name.clone(), vec![v.map(str::to_string)]),
        })
        .collect();
    Ok(Frame::new(columns)?)
}
