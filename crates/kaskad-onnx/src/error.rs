use std::path::PathBuf;

/// Why a model could not be exported to ONNX.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("{family} models cannot be exported to ONNX: {reason}")]
    Unsupported {
        family: &'static str,
        reason: &'static str,
    },
    #[error(
        "column `{column}` has the empty string as a level, which the ONNX graph reserves for a missing value"
    )]
    EmptyLevel { column: String },
    #[error("column `{column}` has the name of the graph's output")]
    ReservedName { column: String },
    #[error(
        "the graph builds {built} features where the preprocessor makes {expected}: kaskad-onnx is out of step with kaskad-prepare"
    )]
    FeatureCount { built: usize, expected: usize },
    #[error("the {model} reads {found} features but the preprocessor makes {expected}")]
    ModelWidth {
        model: &'static str,
        found: usize,
        expected: usize,
    },
    #[error("{tree} is malformed: {reason}")]
    MalformedTree { tree: String, reason: String },
    #[error("the perceptron is malformed: {reason}")]
    MalformedMlp { reason: String },
    #[error("cannot write `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
