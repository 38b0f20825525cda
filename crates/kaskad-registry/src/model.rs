//! The servable model: preprocessing, model and input schema in one
//! self-describing, versioned file that `inference` and the server load.

use std::path::Path;

use kaskad_core::{ColumnKind, Frame};
use kaskad_prepare::{Cell, EncoderView, Matrix, Preprocessor};
use kaskad_train::{Hyperparams, Model, TrainMode};
use serde::{Deserialize, Serialize};

use crate::{RegistryError, read_artifact};

/// Name written into every artifact, so a stray JSON file is not taken for a model.
pub const FORMAT: &str = "kaskad-model";
/// Bumped when the artifact layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub format: String,
    pub format_version: u32,
    pub name: String,
    pub version: i64,
    pub target: String,
    pub positive: Vec<String>,
    /// Scores at or above this predict default.
    pub threshold: f64,
    pub params: Hyperparams,
    pub preprocessor: Preprocessor,
    pub model: Model,
    /// Raw batches (catalog ids) the model was trained on.
    pub trained_on: Vec<i64>,
    /// Training rows the model has learned from, in stream order: an
    /// incremental update learns from the rows after these.
    #[serde(default)]
    pub train_rows: usize,
    /// Whether this model was fitted from scratch or updated from the
    /// previous version of its family.
    #[serde(default = "full")]
    pub mode: TrainMode,
}

fn full() -> TrainMode {
    TrainMode::Full
}

impl ModelArtifact {
    /// Raw columns the model reads, with their kinds.
    pub fn input_columns(&self) -> &[(String, ColumnKind)] {
        self.preprocessor.input_columns()
    }

    /// Probability of default for every row of `frame`.
    pub fn score(&self, frame: &Frame) -> Result<Vec<f64>, RegistryError> {
        let x = self.preprocessor.transform(frame)?;
        Ok(self.model.predict_proba(&x))
    }

    /// For every row, up to `top` raw columns that pushed its score most
    /// towards default, strongest first (reason codes). Contributions of the
    /// features built from one column (levels, missing flags) are summed.
    /// kNN's are the features pulling the row towards its defaulting
    /// neighbours (see `NearestNeighbours::contributions`); the MLP's are
    /// integrated gradients against the mean training row.
    pub fn explain(&self, frame: &Frame, top: usize) -> Result<Vec<Vec<Reason>>, RegistryError> {
        let x = self.preprocessor.transform(frame)?;
        Ok(self.reasons(&x, top))
    }

    /// [`Self::explain`] of the features `x`.
    pub(crate) fn reasons(&self, x: &Matrix, top: usize) -> Vec<Vec<Reason>> {
        let contributions = self.model.contributions(x);
        let sources = self.preprocessor.feature_sources();
        let inputs = self.input_columns();
        (0..contributions.rows)
            .map(|i| {
                let mut per_column = vec![0.0; inputs.len()];
                for (c, &source) in contributions.row(i).iter().zip(&sources) {
                    per_column[source] += c;
                }
                let mut reasons: Vec<Reason> = per_column
                    .into_iter()
                    .enumerate()
                    .filter(|(_, c)| *c > 0.0)
                    .map(|(j, contribution)| Reason {
                        column: inputs[j].0.clone(),
                        contribution,
                    })
                    .collect();
                reasons.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
                reasons.truncate(top);
                reasons
            })
            .collect()
    }

    /// Why each row is unusual for this model, if it is (see
    /// [`Self::unusual_row`]); a column the frame lacks is missing.
    pub fn unusual_rows(
        &self,
        frame: &Frame,
        max_missing_share: f64,
        range_factor: f64,
    ) -> Vec<Option<String>> {
        let inputs = self.input_columns();
        let columns: Vec<Option<&kaskad_core::Column>> =
            inputs.iter().map(|(name, _)| frame.column(name)).collect();
        let mut cells = Vec::with_capacity(inputs.len());
        (0..frame.n_rows())
            .map(|row| {
                cells.clear();
                cells.extend(columns.iter().zip(inputs).map(|(column, (_, kind))| {
                    column.map_or(Cell::missing(*kind), |c| Cell::of(c, row))
                }));
                self.unusual_row(&cells, max_missing_share, range_factor)
            })
            .collect()
    }

    /// Why an application (one cell per input column) is unusual for this
    /// model, if it is: more than `max_missing_share` of the inputs missing,
    /// or a number beyond the training range by more than `range_factor`
    /// times the range's width.
    pub fn unusual_row(
        &self,
        row: &[Cell<'_>],
        max_missing_share: f64,
        range_factor: f64,
    ) -> Option<String> {
        let missing = row.iter().filter(|c| c.is_missing()).count();
        if let Some(why) = too_many_missing(missing, row.len(), max_missing_share) {
            return Some(why);
        }
        row.iter()
            .zip(self.preprocessor.encoders())
            .find_map(|(cell, (name, view))| {
                let (Cell::Number(value), EncoderView::Numeric { low, high, .. }) = (*cell, view)
                else {
                    return None;
                };
                let margin = range_factor * (high - low);
                (value.is_finite() && (value < low - margin || value > high + margin))
                    .then(|| format!("{name} = {value} is far outside the training range"))
            })
    }

    /// Reads an artifact folder and checks it is a model this build can serve.
    pub fn load(path: &Path) -> Result<ModelArtifact, RegistryError> {
        let artifact: ModelArtifact = read_artifact(path)?;
        if artifact.format != FORMAT || artifact.format_version > FORMAT_VERSION {
            return Err(RegistryError::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "not a kaskad model this version can read (format {:?} v{}, expected {FORMAT:?} ≤ v{FORMAT_VERSION})",
                    artifact.format, artifact.format_version
                ),
            });
        }
        Ok(artifact)
    }
}

/// Why a row with `missing` of `inputs` values missing is unusual, if more
/// than `max_share` of them are.
pub(crate) fn too_many_missing(missing: usize, inputs: usize, max_share: f64) -> Option<String> {
    let share = missing as f64 / inputs.max(1) as f64;
    (share > max_share).then(|| format!("{missing} of {inputs} inputs missing"))
}

/// A raw column and how much it raised the score (log-odds for LR, GBDT
/// and the MLP, probability for the tree, squared encoded distance for kNN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub column: String,
    pub contribution: f64,
}
