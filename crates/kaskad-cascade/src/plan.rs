//! The compiled cascade: every name resolved to an index, every rule
//! compiled, every reference proven to point at a module that has run. Only
//! `compile` builds these, so the executor assumes them valid.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::catalog::ModelInfo;

/// A cascade that passed every check of [`compile`](crate::compile); run it
/// with [`CompiledCascade::run`].
#[derive(Debug)]
pub struct CompiledCascade {
    pub(crate) name: String,
    pub(crate) root: Node,
    pub(crate) modules: Vec<ModuleSpec>,
    pub(crate) output: Vec<(String, Vec<ResultRef>)>,
}

impl CompiledCascade {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every module, shadow ones included, in the order they appear in the
    /// JSON; a server can use it to load models before the first request.
    pub fn modules(&self) -> &[ModuleSpec] {
        &self.modules
    }

    /// Names of the fields of [`CascadeResult::output`](crate::CascadeResult::output).
    pub fn output_names(&self) -> impl Iterator<Item = &str> {
        self.output.iter().map(|(name, _)| name.as_str())
    }
}

#[derive(Debug)]
pub(crate) enum Node {
    Module(usize),
    Chain(Vec<Node>),
    Group(Vec<Node>),
    Switch {
        /// Pre-order number, to report the path taken in cascade order.
        id: usize,
        path: String,
        cases: Vec<(Condition, Node)>,
        default: Option<Box<Node>>,
    },
    Split {
        id: usize,
        path: String,
        key: FieldRef,
        key_text: String,
        /// Hashed with the key so that two splits on the same key do not
        /// put the same requests in their minority branches.
        salt: String,
        /// Upper bounds of each branch's share of `[0, total)`, in order.
        bounds: Vec<f64>,
        branches: Vec<Node>,
        shadow: Vec<Node>,
    },
}

/// Where a module gets its score from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModuleTarget {
    /// A registry model; `reference` as written (`name@champion`), so the
    /// server resolves aliases at run time and follows promotions.
    Model { reference: String, info: ModelInfo },
    /// An Open Inference Protocol (KServe V2) endpoint.
    Remote { url: String, model: String },
}

/// One leaf of the cascade, as the [`ModuleScorer`](crate::ModuleScorer) sees it.
#[derive(Debug)]
pub struct ModuleSpec {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) target: ModuleTarget,
    pub(crate) params: Map<String, Value>,
    pub(crate) sources: Vec<String>,
    pub(crate) reuse: Vec<(String, Vec<ResultRef>)>,
    pub(crate) input_rule: Option<jsonschema::Validator>,
    pub(crate) output_rule: Vec<OutputRule>,
    pub(crate) timeout: Duration,
    pub(crate) on_failure: OnFailure,
    pub(crate) shadow: bool,
}

impl ModuleSpec {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// JSON path of the module in the cascade, e.g. `$.nodes[0].nodes[1]`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn target(&self) -> &ModuleTarget {
        &self.target
    }

    /// The module's `params`, passed through untouched.
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// The request keys whose fields make up the module's input, in order
    /// (a later source's field wins over an earlier one's).
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True for modules inside a split's `shadow` branches.
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }
}

/// `module.field` of an earlier module, by module index.
#[derive(Debug)]
pub(crate) struct ResultRef {
    pub(crate) module: usize,
    pub(crate) field: String,
    pub(crate) text: String,
}

/// A value a condition or a split key reads: a field of the request (`source`
/// is a top-level key of the body) or of an earlier module's result.
#[derive(Debug)]
pub(crate) enum FieldRef {
    Request { source: String, rest: Vec<String> },
    Result { module: usize, rest: Vec<String> },
}

#[derive(Debug)]
pub(crate) enum Condition {
    Compare {
        field: FieldRef,
        op: Op,
        value: Value,
    },
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    Missing,
    Present,
}

impl Op {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "lt" => Self::Lt,
            "le" => Self::Le,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "missing" => Self::Missing,
            "present" => Self::Present,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Lt => "lt",
            Self::Le => "le",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Missing => "missing",
            Self::Present => "present",
        }
    }
}

#[derive(Debug)]
pub(crate) struct OutputRule {
    pub(crate) field: String,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) required: bool,
}

#[derive(Debug)]
pub(crate) enum OnFailure {
    Fail,
    Fallback(Map<String, Value>),
}
