//! Reading a node's attributes, with the operator's defaults.

use crate::GraphError;
use crate::proto::{AttributeProto, NodeProto};
use crate::tensor::Tensor;

pub(crate) struct Attrs<'a> {
    pub node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a NodeProto) -> Attrs<'a> {
        Attrs { node }
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }

    pub fn ints(&self, name: &str) -> Vec<i64> {
        self.get(name).map_or_else(Vec::new, |a| a.ints.clone())
    }

    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }

    pub fn floats(&self, name: &str) -> Vec<f32> {
        self.get(name).map_or_else(Vec::new, |a| a.floats.clone())
    }

    /// A float list that ai.onnx.ml 3 may also give as a double tensor,
    /// `{name}_as_tensor`.
    pub fn floats_or_tensor(&self, name: &str) -> Result<Vec<f64>, GraphError> {
        match self.tensor(&format!("{name}_as_tensor"))? {
            Some(t) => t
                .to_f64()
                .map_err(|e| self.error(format!("{name}_as_tensor: {e}"))),
            None => Ok(self.floats(name).into_iter().map(f64::from).collect()),
        }
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).map_or_else(
            || default.to_string(),
            |a| String::from_utf8_lossy(&a.s).into_owned(),
        )
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        self.get(name).map_or_else(Vec::new, |a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
    }

    pub fn tensor(&self, name: &str) -> Result<Option<Tensor>, GraphError> {
        self.get(name)
            .and_then(|a| a.t.as_ref())
            .map(|t| Tensor::from_proto(t).map_err(|e| self.error(format!("{name}: {e}"))))
            .transpose()
    }

    pub fn error(&self, message: impl Into<String>) -> GraphError {
        GraphError::node(self.node, message)
    }
}
