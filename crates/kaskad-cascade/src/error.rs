//! Errors of compilation (each with the JSON path of the offending part) and
//! of a run (each naming the module or node that failed).

use crate::catalog::FieldKind;

/// One problem found while compiling a cascade. `compile` reports all of them.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct CascadeError {
    /// JSON path of the offending value, e.g. `$.nodes[0].output_rule.score.min`.
    pub path: String,
    pub kind: CascadeErrorKind,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CascadeErrorKind {
    #[error("unknown key `{key}` (expected one of: {})", allowed.join(", "))]
    UnknownKey {
        key: String,
        allowed: &'static [&'static str],
    },
    #[error("missing required key `{key}`")]
    MissingKey { key: &'static str },
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("unknown node type `{found}` (expected one of: module, chain, group, switch, split)")]
    UnknownNodeType { found: String },
    #[error("`{name}` is not a valid name: use letters, digits, `_` and `-`")]
    InvalidName { name: String },
    #[error("module name `{name}` is already used at {first}")]
    DuplicateModule { name: String, first: String },
    #[error("a module takes exactly one of `model` and `remote`")]
    ModelXorRemote,
    #[error("unknown model `{reference}`: {reason}")]
    UnknownModel { reference: String, reason: String },
    #[error("`{url}` is not an http:// or https:// URL")]
    InvalidUrl { url: String },
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("`{value}` is listed twice")]
    Duplicate { value: String },
    #[error("`{reference}` is not a reference of the form {expected}")]
    BadReference {
        reference: String,
        expected: &'static str,
    },
    #[error("no module named `{name}` in this cascade")]
    UnknownModule { name: String },
    #[error("module `{module}` does not output `{field}` (it outputs: {})", available.join(", "))]
    UnknownField {
        module: String,
        field: String,
        available: Vec<String>,
    },
    #[error("model `{model}` has no input `{input}` (its inputs: {})", available.join(", "))]
    UnknownInput {
        model: String,
        input: String,
        available: Vec<String>,
    },
    #[error("module `{module}` has not run at this point: {reason}")]
    NotEarlier { module: String, reason: String },
    #[error("on some path none of the modules {} has run at this point", modules.join(", "))]
    NoneEarlier { modules: Vec<String> },
    #[error(
        "the fallback of module `{module}` does not set `{field}`, so it is missing whenever `{module}` falls back"
    )]
    FallbackLacksField { module: String, field: String },
    #[error("input `{input}` of model `{model}` is numeric but `{reference}` is {found}")]
    TypeMismatch {
        input: String,
        model: String,
        reference: String,
        found: FieldKind,
    },
    #[error("output `{field}` is {kind}, so `min` and `max` do not apply")]
    RangeOnCategorical { field: String, kind: FieldKind },
    #[error("fallback value for numeric output `{field}` must be a number")]
    FallbackNotNumeric { field: String },
    #[error("invalid JSON Schema: {message}")]
    InvalidSchema { message: String },
    #[error("min {min} is greater than max {max}")]
    InvalidRange { min: f64, max: f64 },
    #[error("split weights must be positive and finite, found {weight}")]
    NonPositiveWeight { weight: f64 },
    #[error("timeout_ms must be between 1 and {max}, found {value}")]
    TimeoutOutOfRange { value: u64, max: u64 },
    #[error("nodes are nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("unknown op `{op}` (expected one of: lt, le, gt, ge, eq, ne, missing, present)")]
    UnknownOp { op: String },
    #[error("op `{op}` takes no `value`")]
    ValueForOp { op: &'static str },
    #[error(
        "a condition is either {{\"field\", \"op\", \"value\"}}, {{\"all\": [...]}} or {{\"any\": [...]}}"
    )]
    ConditionShape,
}

/// Why a module produced no usable result. Recorded in the module's run; it
/// becomes a [`RunError`] only when the module's `on_failure` is `fail`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModuleFailure {
    #[error("timed out after {ms} ms")]
    Timeout { ms: u64 },
    #[error("scorer failed: {message}")]
    Scorer { message: String },
    #[error("input violates input_rule: {}", errors.join("; "))]
    InputRule { errors: Vec<String> },
    #[error("output `{field}` violates output_rule: {violation}")]
    OutputRule {
        field: String,
        violation: OutputViolation,
    },
    #[error("reused `{reference}` (input `{input}`) is missing from that module's result")]
    MissingReuse { input: String, reference: String },
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OutputViolation {
    #[error("required but missing")]
    Missing,
    #[error("expected a number, found {found}")]
    NotNumber { found: &'static str },
    #[error("{value} is below the minimum {min}")]
    Below { value: f64, min: f64 },
    #[error("{value} is above the maximum {max}")]
    Above { value: f64, max: f64 },
}

/// Why a run returned no result. Every variant names the module or node and
/// its JSON path in the cascade, so the caller can tell the client which part
/// failed. Request-shape errors (`RequestNotObject`, `SourceNotObject`,
/// `SplitKey`) are the client's fault; `Module` and `MissingOutput` are not.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("the request must be a JSON object, found {found}")]
    RequestNotObject { found: &'static str },
    #[error(
        "module `{module}` at {path}: request field `{source_key}` must be an object, found {found}"
    )]
    SourceNotObject {
        module: String,
        path: String,
        source_key: String,
        found: &'static str,
    },
    #[error("split at {path}: key `{key}` must be a string or a number, found {found}")]
    SplitKey {
        path: String,
        key: String,
        found: &'static str,
    },
    #[error("module `{module}` at {path}: {failure}")]
    Module {
        module: String,
        path: String,
        failure: ModuleFailure,
    },
    #[error("output `{name}`: `{reference}` is missing from the module's result")]
    MissingOutput { name: String, reference: String },
}

impl RunError {
    /// The module that failed, when one did.
    pub fn module(&self) -> Option<&str> {
        match self {
            Self::SourceNotObject { module, .. } | Self::Module { module, .. } => Some(module),
            Self::RequestNotObject { .. } | Self::SplitKey { .. } | Self::MissingOutput { .. } => {
                None
            }
        }
    }

    /// JSON path, in the cascade, of the part that failed.
    pub fn path(&self) -> String {
        match self {
            Self::RequestNotObject { .. } => "$".to_owned(),
            Self::SourceNotObject { path, .. }
            | Self::SplitKey { path, .. }
            | Self::Module { path, .. } => path.clone(),
            Self::MissingOutput { name, .. } => crate::path::key("$.output", name),
        }
    }

    /// True when the request itself is malformed (a client error), as opposed
    /// to a module that could not produce a result.
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            Self::RequestNotObject { .. } | Self::SourceNotObject { .. } | Self::SplitKey { .. }
        )
    }
}

/// Name of a JSON value's type, for messages.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
