//! Stage 2 of the pipeline: data quality, cleaning and drift of each batch.
//!
//! `kaskad-analyze` owns the checks a batch passes before anything learns
//! from it: per-column quality metrics measured against the configured
//! thresholds (each outcome a [`Finding`] at info, warn or fail level), the
//! cleaning those thresholds call for (missing targets, empty columns and
//! rows, duplicates, outliers clipped or flagged, numbers stored as text),
//! and drift of a batch against the [`Reference`] taken from the first clean
//! batch (PSI for every column, Kolmogorov–Smirnov for numbers, chi-square
//! for categories, Jensen–Shannon distance). Reports serialize to JSON so
//! the catalog records them as they are.

mod drift;
mod quality;
mod reference;
mod stats;

use serde::{Deserialize, Serialize};

pub use drift::{ColumnDrift, DriftReport, drift};
pub use quality::{ColumnQuality, QualityReport, assess_and_clean};
pub use reference::Reference;
pub use stats::{chi_square_p_value, score_psi};

/// How serious a finding is. `Fail` stops the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Fail,
}

/// One rule's outcome: what was measured, against which threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub level: Level,
    pub rule: String,
    pub column: Option<String>,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

impl Finding {
    fn new(
        level: Level,
        rule: &str,
        column: Option<&str>,
        value: f64,
        threshold: f64,
        message: String,
    ) -> Self {
        Self {
            level,
            rule: rule.into(),
            column: column.map(str::to_string),
            value: finite(value),
            threshold: finite(threshold),
            message,
        }
    }
}

/// Reports are stored as JSON, which has no NaN or infinity.
fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}
