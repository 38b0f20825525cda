//! Why a graph could not be loaded, bound to columns, or run.

/// An ONNX model kaskad cannot import, or a run that failed.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("not an ONNX model: {0}")]
    Decode(String),
    #[error("the model has no graph")]
    NoGraph,
    #[error("node `{node}` ({op_type}): {message}")]
    Node {
        node: String,
        op_type: String,
        message: String,
    },
    #[error(
        "node `{node}` uses operator {domain}{op_type}, which kaskad does not evaluate (supported: {supported})"
    )]
    Unsupported {
        node: String,
        domain: String,
        op_type: String,
        supported: String,
    },
    #[error("initializer `{name}`: {message}")]
    Initializer { name: String, message: String },
    #[error("input `{input}`: {message}")]
    Input { input: String, message: String },
    #[error("output: {0}")]
    Output(String),
    #[error("value `{0}` is read before any node writes it")]
    Undefined(String),
}

impl GraphError {
    pub(crate) fn node(node: &crate::proto::NodeProto, message: impl Into<String>) -> GraphError {
        GraphError::Node {
            node: node_name(node),
            op_type: node.op_type.clone(),
            message: message.into(),
        }
    }
}

/// A node's name, or its first output when the exporter left it unnamed.
pub(crate) fn node_name(node: &crate::proto::NodeProto) -> String {
    if node.name.is_empty() {
        node.output.first().cloned().unwrap_or_default()
    } else {
        node.name.clone()
    }
}
