/// Why a model could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{rows} feature rows but {labels} labels")]
    LengthMismatch { rows: usize, labels: usize },
    #[error("all {rows} training rows have the same label: both classes are needed")]
    SingleClass { rows: usize },
    #[error("logistic regression did not converge: {reason}")]
    NotConverged { reason: String },
    #[error("{name} = {value}: expected {expected}")]
    InvalidHyperparameter {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{family} cannot be quantized to INT8: {reason}")]
    NotQuantizable {
        family: &'static str,
        reason: &'static str,
    },
}
