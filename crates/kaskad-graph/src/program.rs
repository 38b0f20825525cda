//! A decoded ONNX model, and the program compiled from it: the nodes an
//! output needs, each operator checked and its attributes parsed once.

use std::collections::{HashMap, HashSet};

use prost::Message;

use crate::GraphError;
use crate::attrs::Attrs;
use crate::error::node_name;
use crate::ml::{self, MlOp};
use crate::ops::{self, StdOp};
use crate::proto::{GraphProto, ModelProto, ValueInfoProto, tensor_shape_proto, type_proto};
use crate::tensor::{Data, Tensor};

/// The operator domain of the ONNX-ML operators.
pub const ML_DOMAIN: &str = "ai.onnx.ml";

/// A graph input or output as the model declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSpec {
    pub name: String,
    /// The element type ([`crate::proto::data_type`]), `None` when the
    /// value is not a tensor (ZipMap's sequence of maps).
    pub elem_type: Option<i32>,
    /// Dimensions, `None` where symbolic or unknown.
    pub dims: Vec<Option<usize>>,
}

fn spec(info: &ValueInfoProto) -> ValueSpec {
    let tensor = info
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .map(|type_proto::Value::TensorType(t)| t);
    ValueSpec {
        name: info.name.clone(),
        elem_type: tensor.map(|t| t.elem_type),
        dims: tensor
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(tensor_shape_proto::dimension::Value::DimValue(v)) => {
                            usize::try_from(v).ok()
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A decoded ONNX model.
#[derive(Debug)]
pub struct OnnxModel {
    graph: GraphProto,
    /// The standard domain's opset.
    opset: i64,
    producer: String,
}

impl OnnxModel {
    pub fn decode(bytes: &[u8]) -> Result<OnnxModel, GraphError> {
        let model = ModelProto::decode(bytes).map_err(|e| GraphError::Decode(e.to_string()))?;
        let graph = model.graph.ok_or(GraphError::NoGraph)?;
        if graph.node.is_empty() && graph.output.is_empty() {
            return Err(GraphError::NoGraph);
        }
        let opset = model
            .opset_import
            .iter()
            .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .max()
            .unwrap_or(1);
        let producer = format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string();
        Ok(OnnxModel {
            graph,
            opset,
            producer,
        })
    }

    /// The inputs a caller feeds: declared inputs that no initializer
    /// provides (IR < 4 lists initializers among the inputs).
    pub fn inputs(&self) -> Vec<ValueSpec> {
        let constants: HashSet<&str> = self
            .graph
            .initializer
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        self.graph
            .input
            .iter()
            .filter(|i| !constants.contains(i.name.as_str()))
            .map(spec)
            .collect()
    }

    pub fn outputs(&self) -> Vec<ValueSpec> {
        self.graph.output.iter().map(spec).collect()
    }

    /// The operator that writes `value`, if a node does.
    pub fn producer_of(&self, value: &str) -> Option<&str> {
        self.graph
            .node
            .iter()
            .find(|n| n.output.iter().any(|o| o == value))
            .map(|n| n.op_type.as_str())
    }

    /// `producer_name producer_version`, e.g. `skl2onnx 1.20.0`.
    pub fn producer(&self) -> &str {
        &self.producer
    }

    /// Compiles the nodes `outputs` depend on. Every operator among them
    /// is checked here, so an unsupported one fails now, naming its node,
    /// and never when rows are scored.
    pub fn compile(&self, outputs: &[&str]) -> Result<Program, GraphError> {
        let inputs = self.inputs();
        // The nodes the outputs need, found backwards from them.
        let mut wanted: HashSet<&str> = outputs.iter().copied().collect();
        let mut needed = vec![false; self.graph.node.len()];
        for (i, node) in self.graph.node.iter().enumerate().rev() {
            if node.output.iter().any(|o| wanted.contains(o.as_str())) {
                needed[i] = true;
                wanted.extend(node.input.iter().map(String::as_str));
            }
        }

        let mut slots: HashMap<String, usize> = HashMap::new();
        for input in &inputs {
            let next = slots.len();
            slots.insert(input.name.clone(), next);
        }
        let mut constants = Vec::new();
        for init in &self.graph.initializer {
            if !wanted.contains(init.name.as_str()) || slots.contains_key(&init.name) {
                continue;
            }
            let tensor = Tensor::from_proto(init).map_err(|message| GraphError::Initializer {
                name: init.name.clone(),
                message,
            })?;
            slots.insert(init.name.clone(), inputs.len() + constants.len());
            constants.push(tensor);
        }

        let mut steps = Vec::new();
        let mut pending: Vec<(usize, Vec<String>)> = Vec::new();
        for (node, _) in self.graph.node.iter().zip(&needed).filter(|(_, n)| **n) {
            let attrs = Attrs::new(node);
            let op = match node.domain.as_str() {
                "" | "ai.onnx" if node.op_type == "Constant" => {
                    let value = constant(&attrs)?;
                    let name = node.output.first().cloned().unwrap_or_default();
                    // Constants are numbered after the inputs, before the node outputs.
                    pending.push((constants.len(), vec![name]));
                    constants.push(value);
                    continue;
                }
                "" | "ai.onnx" => ops::compile(&attrs, self.opset)?.map(Op::Std),
                ML_DOMAIN => ml::compile(&attrs)?.map(Op::Ml),
                _ => None,
            };
            let Some(op) = op else {
                let (domain, supported) = if node.domain == ML_DOMAIN {
                    (format!("{ML_DOMAIN}."), ml::ML.join(", "))
                } else if node.domain.is_empty() || node.domain == "ai.onnx" {
                    (String::new(), ops::STANDARD.join(", "))
                } else {
                    (
                        format!("{}.", node.domain),
                        format!("no operator of domain `{}`", node.domain),
                    )
                };
                return Err(GraphError::Unsupported {
                    node: node_name(node),
                    domain,
                    op_type: node.op_type.clone(),
                    supported,
                });
            };
            steps.push(Step {
                node: node_name(node),
                op_type: node.op_type.clone(),
                op,
                inputs: node.input.clone(),
                outputs: node.output.clone(),
                input_slots: Vec::new(),
                output_slots: Vec::new(),
            });
        }
        // Slot numbers: inputs, constants (initializers, Constant nodes), node outputs.
        for (index, names) in pending {
            for name in names {
                slots.insert(name, inputs.len() + index);
            }
        }
        let first_computed = inputs.len() + constants.len();
        let mut next = first_computed;
        for step in &mut steps {
            for input in &step.inputs {
                if input.is_empty() {
                    step.input_slots.push(None);
                    continue;
                }
                let slot = *slots
                    .get(input)
                    .ok_or_else(|| GraphError::Undefined(input.clone()))?;
                step.input_slots.push(Some(slot));
            }
            for output in &step.outputs {
                if output.is_empty() {
                    step.output_slots.push(None);
                    continue;
                }
                slots.insert(output.clone(), next);
                step.output_slots.push(Some(next));
                next += 1;
            }
        }
        let outputs = outputs
            .iter()
            .map(|o| {
                slots
                    .get(*o)
                    .copied()
                    .ok_or_else(|| GraphError::Output(format!("no value is called `{o}`")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Program {
            inputs: inputs.into_iter().map(|i| i.name).collect(),
            constants,
            steps,
            slots: next,
            outputs,
        })
    }
}

fn constant(a: &Attrs<'_>) -> Result<Tensor, GraphError> {
    if let Some(t) = a.tensor("value")? {
        return Ok(t);
    }
    let floats = a.floats("value_floats");
    let ints = a.ints("value_ints");
    Ok(if a.has("value_float") {
        Tensor::floats(vec![], vec![a.float("value_float", 0.0)])
    } else if a.has("value_int") {
        Tensor::new(vec![], Data::Int64(vec![a.int("value_int", 0)]))
    } else if !floats.is_empty() {
        Tensor::floats(vec![floats.len()], floats)
    } else if !ints.is_empty() {
        Tensor::new(vec![ints.len()], Data::Int64(ints))
    } else {
        return Err(a.error("a Constant without a value, value_float(s) or value_int(s)"));
    })
}

#[derive(Debug)]
enum Op {
    Std(StdOp),
    Ml(MlOp),
}

#[derive(Debug)]
struct Step {
    node: String,
    op_type: String,
    op: Op,
    inputs: Vec<String>,
    outputs: Vec<String>,
    input_slots: Vec<Option<usize>>,
    output_slots: Vec<Option<usize>>,
}

/// The compiled nodes of a graph, in order, reading numbered slots.
#[derive(Debug)]
pub struct Program {
    inputs: Vec<String>,
    constants: Vec<Tensor>,
    steps: Vec<Step>,
    slots: usize,
    outputs: Vec<usize>,
}

impl Program {
    /// The input names, in the order [`Program::run`] takes them.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// Runs the graph on `feeds` (one per input, in order) and returns the
    /// outputs asked for at compile time.
    pub fn run(&self, feeds: Vec<Tensor>) -> Result<Vec<Tensor>, GraphError> {
        if feeds.len() != self.inputs.len() {
            return Err(GraphError::Input {
                input: self.inputs.join(", "),
                message: format!("{} inputs fed, {} expected", feeds.len(), self.inputs.len()),
            });
        }
        let mut values: Vec<Option<Tensor>> = feeds.into_iter().map(Some).collect();
        values.resize(self.slots, None);
        fn read<'a>(
            program: &'a Program,
            values: &'a [Option<Tensor>],
            slot: usize,
        ) -> Option<&'a Tensor> {
            let constants = program.inputs.len()..program.inputs.len() + program.constants.len();
            if constants.contains(&slot) {
                // Constants are read in place, never copied per run.
                program.constants.get(slot - constants.start)
            } else {
                values[slot].as_ref()
            }
        }
        for step in &self.steps {
            let args: Vec<Option<&Tensor>> = step
                .input_slots
                .iter()
                .map(|s| s.and_then(|s| read(self, &values, s)))
                .collect();
            let results = match &step.op {
                Op::Std(op) => op.run(&args),
                Op::Ml(op) => op.run(&args),
            }
            .map_err(|message| GraphError::Node {
                node: step.node.clone(),
                op_type: step.op_type.clone(),
                message,
            })?;
            for (slot, value) in step.output_slots.iter().zip(results) {
                if let Some(slot) = slot {
                    values[*slot] = Some(value);
                }
            }
        }
        self.outputs
            .iter()
            .map(|&slot| {
                read(self, &values, slot).cloned().ok_or_else(|| {
                    GraphError::Output(format!(
                        "slot {slot} was never written (an input or a node output the graph lacks)"
                    ))
                })
            })
            .collect()
    }
}
