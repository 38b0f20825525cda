//! A small builder for one ONNX graph: unique value names, constants as
//! initializers, one node per call.

use std::collections::HashSet;

use crate::proto::{AttributeProto, NodeProto, TensorProto, attribute_type, data_type};

/// Nodes and initializers of a graph under construction.
///
/// Every value gets a fresh name derived from a hint, never one already in
/// use, so user column names (the graph inputs) cannot clash with the
/// values the export creates, whatever they are called.
pub(crate) struct Graph {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    used: HashSet<String>,
}

impl Graph {
    /// A graph whose inputs and outputs carry `reserved` names.
    pub fn new<'a>(reserved: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            nodes: Vec::new(),
            initializers: Vec::new(),
            used: reserved.into_iter().map(str::to_string).collect(),
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        let mut name = hint.to_string();
        let mut n = 1;
        while self.used.contains(&name) {
            name = format!("{hint}_{n}");
            n += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// Adds `op_type(inputs)` and returns the name of its single output.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], hint: &str) -> String {
        self.op_with(op_type, inputs, Vec::new(), hint)
    }

    pub fn op_with(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
        hint: &str,
    ) -> String {
        let output = self.fresh(hint);
        self.push(op_type, inputs, attribute, &output);
        output
    }

    /// Adds a node that writes a name chosen by the caller: a graph output.
    pub fn op_into(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
        output: &str,
    ) {
        self.push(op_type, inputs, attribute, output);
    }

    fn push(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
        output: &str,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: output.to_string(),
            op_type: op_type.to_string(),
            attribute,
            domain: String::new(),
        });
    }

    /// `Cast(v, to = double)`: booleans become 0/1.
    pub fn cast_double(&mut self, v: &str, hint: &str) -> String {
        self.cast(v, data_type::DOUBLE, hint)
    }

    /// `Cast(v, to)`, `to` a [`data_type`] value.
    pub fn cast(&mut self, v: &str, to: i32, hint: &str) -> String {
        self.op_with("Cast", &[v], vec![int("to", to.into())], hint)
    }

    pub fn doubles(&mut self, hint: &str, dims: &[usize], values: Vec<f64>) -> String {
        self.constant(hint, dims, |t| {
            t.data_type = data_type::DOUBLE;
            t.double_data = values;
        })
    }

    pub fn floats(&mut self, hint: &str, dims: &[usize], values: Vec<f32>) -> String {
        self.constant(hint, dims, |t| {
            t.data_type = data_type::FLOAT;
            t.float_data = values;
        })
    }

    pub fn int64s(&mut self, hint: &str, dims: &[usize], values: Vec<i64>) -> String {
        self.constant(hint, dims, |t| {
            t.data_type = data_type::INT64;
            t.int64_data = values;
        })
    }

    pub fn strings(&mut self, hint: &str, dims: &[usize], values: &[String]) -> String {
        self.constant(hint, dims, |t| {
            t.data_type = data_type::STRING;
            t.string_data = values.iter().map(|s| s.as_bytes().to_vec()).collect();
        })
    }

    fn constant(
        &mut self,
        hint: &str,
        dims: &[usize],
        fill: impl FnOnce(&mut TensorProto),
    ) -> String {
        let name = self.fresh(hint);
        let mut tensor = TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            ..TensorProto::default()
        };
        fill(&mut tensor);
        self.initializers.push(tensor);
        name
    }
}

pub(crate) fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: attribute_type::INT,
        i,
        ..AttributeProto::default()
    }
}

pub(crate) fn ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: attribute_type::INTS,
        ints,
        ..AttributeProto::default()
    }
}
