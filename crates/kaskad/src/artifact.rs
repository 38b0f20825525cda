//! The servable model: preprocessing, model and input schema in one
//! self-describing, versioned file that `inference` loads.

use std::path::Path;

use anyhow::Context;
use kaskad_core::{ColumnKind, Frame};
use kaskad_prepare::Preprocessor;
use kaskad_train::{Hyperparams, Model};
use serde::{Deserialize, Serialize};

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
}

impl ModelArtifact {
    /// Raw columns the model reads, with their kinds.
    pub fn input_columns(&self) -> &[(String, ColumnKind)] {
        self.preprocessor.input_columns()
    }

    /// Probability of default for every row of `frame`.
    pub fn score(&self, frame: &Frame) -> anyhow::Result<Vec<f64>> {
        let x = self.preprocessor.transform(frame)?;
        Ok(self.model.predict_proba(&x))
    }

    pub fn load(path: &Path) -> anyhow::Result<ModelArtifact> {
        let artifact: ModelArtifact = kaskad_registry::read_artifact(path)
            .with_context(|| format!("loading model {}", path.display()))?;
        if artifact.format != FORMAT || artifact.format_version > FORMAT_VERSION {
            anyhow::bail!(
                "{}: not a kaskad model this version can read (format {:?} v{}, expected {FORMAT:?} ≤ v{FORMAT_VERSION})",
                path.display(),
                artifact.format,
                artifact.format_version
            );
        }
        Ok(artifact)
    }
}
