use kaskad_core::ColumnKind;
use kaskad_core::config::Encoding;

/// Why a frame could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("no feature columns to learn from")]
    NoFeatures,
    #[error("no rows to learn from")]
    NoRows,
    #[error("the {variant} preprocessing is fitted against the labels, and none were given")]
    LabelsNeeded { variant: Encoding },
    #[error("{labels} labels were given for {rows} rows")]
    LabelCount { labels: usize, rows: usize },
    #[error("the data lacks column `{column}` the model was trained with")]
    MissingColumn { column: String },
    #[error(
        "column `{column}` holds {found:?} values, the model was trained on {expected:?} values"
    )]
    WrongKind {
        column: String,
        expected: ColumnKind,
        found: ColumnKind,
    },
}
