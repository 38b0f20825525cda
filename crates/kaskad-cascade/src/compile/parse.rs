//! First pass: JSON to a draft tree, checking keys, types, models, rules and
//! module names. References between modules are only recorded here; the
//! second pass (`refs`) resolves them once every module name is known.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::catalog::ModelCatalog;
use crate::error::{CascadeError, CascadeErrorKind as Kind, json_type};
use crate::path;
use crate::plan::{ModuleTarget, OnFailure, Op, OutputRule};

/// Deeper trees are rejected: the executor recurses once per level, and no
/// sensible cascade needs more.
pub(crate) const MAX_DEPTH: usize = 32;

const MODULE_KEYS: &[&str] = &[
    "type",
    "name",
    "model",
    "remote",
    "params",
    "sources",
    "reuse",
    "input_rule",
    "output_rule",
    "timeout_ms",
    "on_failure",
];
const ROOT_MODULE_KEYS: &[&str] = &[
    "type",
    "name",
    "model",
    "remote",
    "params",
    "sources",
    "reuse",
    "input_rule",
    "output_rule",
    "timeout_ms",
    "on_failure",
    "output",
];
const LIST_KEYS: &[&str] = &["type", "nodes"];
const ROOT_LIST_KEYS: &[&str] = &["type", "nodes", "name", "output"];
const SWITCH_KEYS: &[&str] = &["type", "cases", "default"];
const ROOT_SWITCH_KEYS: &[&str] = &["type", "cases", "default", "name", "output"];
const SPLIT_KEYS: &[&str] = &["type", "key", "branches", "shadow"];
const ROOT_SPLIT_KEYS: &[&str] = &["type", "key", "branches", "shadow", "name", "output"];
const CASE_KEYS: &[&str] = &["when", "node"];
const BRANCH_KEYS: &[&str] = &["weight", "node"];
const COMPARE_KEYS: &[&str] = &["field", "op", "value"];
const ALL_KEYS: &[&str] = &["all"];
const ANY_KEYS: &[&str] = &["any"];

/// Which child of an inner node a path went into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Branch {
    /// Child of a chain.
    Child(usize),
    /// Child of a group.
    Member(usize),
    Case(usize),
    Default,
    Split(usize),
    Shadow(usize),
}

/// One step from the root towards a node: "at inner node `node` (at `path`),
/// into `branch`". A module's trail locates it relative to a reader of its
/// result, to explain why that result is not available there.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) node: usize,
    pub(crate) path: String,
    pub(crate) branch: Branch,
}

impl PartialEq for Step {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node && self.branch == other.branch
    }
}

pub(crate) struct ModuleDraft {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) trail: Vec<Step>,
    /// `None` when the model or remote was invalid; the error is recorded.
    pub(crate) target: Option<ModuleTarget>,
    pub(crate) params: Map<String, Value>,
    pub(crate) sources: Vec<String>,
    pub(crate) reuse: Vec<ReuseDraft>,
    pub(crate) input_rule: Option<jsonschema::Validator>,
    pub(crate) output_rule: Vec<OutputRule>,
    pub(crate) timeout: Duration,
    pub(crate) on_failure: OnFailure,
    pub(crate) shadow: bool,
}

pub(crate) struct ReuseDraft {
    pub(crate) input: String,
    pub(crate) path: String,
    /// `(reference, its path)`; more than one when the value is a list of
    /// alternatives (the first module that ran is used).
    pub(crate) refs: Vec<(String, String)>,
}

pub(crate) enum Draft {
    Module(usize),
    Chain {
        id: usize,
        path: String,
        nodes: Vec<Draft>,
    },
    Group {
        id: usize,
        path: String,
        nodes: Vec<Draft>,
    },
    Switch {
        id: usize,
        path: String,
        cases: Vec<(CondDraft, Draft)>,
        default: Option<Box<Draft>>,
    },
    Split {
        id: usize,
        path: String,
        key: Option<(String, String)>,
        weights: Vec<f64>,
        branches: Vec<Draft>,
        shadow: Vec<Draft>,
    },
    /// A node whose errors are already recorded.
    Invalid,
}

pub(crate) enum CondDraft {
    Compare {
        field: String,
        path: String,
        op: Op,
        value: Value,
    },
    All(Vec<CondDraft>),
    Any(Vec<CondDraft>),
    Invalid,
}

pub(crate) struct Parser<'c> {
    pub(crate) catalog: &'c dyn ModelCatalog,
    pub(crate) errors: Vec<CascadeError>,
    pub(crate) modules: Vec<ModuleDraft>,
    pub(crate) names: HashMap<String, usize>,
    pub(crate) trail: Vec<Step>,
    next_node: usize,
    pub(crate) in_shadow: bool,
}

impl<'c> Parser<'c> {
    pub(crate) fn new(catalog: &'c dyn ModelCatalog) -> Self {
        Self {
            catalog,
            errors: Vec::new(),
            modules: Vec::new(),
            names: HashMap::new(),
            trail: Vec::new(),
            next_node: 0,
            in_shadow: false,
        }
    }

    pub(crate) fn error(&mut self, path: impl Into<String>, kind: Kind) {
        self.errors.push(CascadeError {
            path: path.into(),
            kind,
        });
    }

    pub(crate) fn object<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.wrong_type(path, "an object", other);
                None
            }
        }
    }

    pub(crate) fn string<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v str> {
        match value {
            Value::String(text) => Some(text),
            other => {
                self.wrong_type(path, "a string", other);
                None
            }
        }
    }

    pub(crate) fn number(&mut self, value: &Value, path: &str) -> Option<f64> {
        match value.as_f64() {
            Some(number) => Some(number),
            None => {
                self.wrong_type(path, "a number", value);
                None
            }
        }
    }

    pub(crate) fn wrong_type(&mut self, path: &str, expected: &'static str, found: &Value) {
        self.error(
            path,
            Kind::WrongType {
                expected,
                found: json_type(found),
            },
        );
    }

    pub(crate) fn check_keys(
        &mut self,
        map: &Map<String, Value>,
        allowed: &'static [&'static str],
        path: &str,
    ) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error(
                    path::key(path, key),
                    Kind::UnknownKey {
                        key: key.clone(),
                        allowed,
                    },
                );
            }
        }
    }

    /// A name that can sit before the dot of a `module.field` reference.
    pub(crate) fn valid_name(&mut self, name: &str, path: &str) -> bool {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            self.error(
                path,
                Kind::InvalidName {
                    name: name.to_owned(),
                },
            );
        }
        valid
    }

    pub(crate) fn required<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        key: &'static str,
        path: &str,
    ) -> Option<&'v Value> {
        let value = map.get(key);
        if value.is_none() {
            self.error(path, Kind::MissingKey { key });
        }
        value
    }

    fn new_node_id(&mut self) -> usize {
        self.next_node += 1;
        self.next_node - 1
    }

    /// Parses the node at `path`; `root` admits the cascade's own `name` and
    /// `output` beside the root node's keys.
    pub(crate) fn node(&mut self, value: &Value, path: &str, depth: usize, root: bool) -> Draft {
        if depth > MAX_DEPTH {
            self.error(path, Kind::TooDeep { max: MAX_DEPTH });
            return Draft::Invalid;
        }
        let Some(map) = self.object(value, path) else {
            return Draft::Invalid;
        };
        let Some(kind) = self.required(map, "type", path) else {
            return Draft::Invalid;
        };
        let Some(kind) = self.string(kind, &path::key(path, "type")) else {
            return Draft::Invalid;
        };
        match kind {
            "module" => {
                self.check_keys(map, if root { ROOT_MODULE_KEYS } else { MODULE_KEYS }, path);
                self.module(map, path)
            }
            "chain" | "group" => {
                self.check_keys(map, if root { ROOT_LIST_KEYS } else { LIST_KEYS }, path);
                let id = self.new_node_id();
                let branch = if kind == "chain" {
                    Branch::Child
                } else {
                    Branch::Member
                };
                let nodes = self.children(map, id, path, depth, branch);
                let path = path.to_owned();
                if kind == "chain" {
                    Draft::Chain { id, path, nodes }
                } else {
                    Draft::Group { id, path, nodes }
                }
            }
            "switch" => {
                self.check_keys(map, if root { ROOT_SWITCH_KEYS } else { SWITCH_KEYS }, path);
                self.switch(map, path, depth)
            }
            "split" => {
                self.check_keys(map, if root { ROOT_SPLIT_KEYS } else { SPLIT_KEYS }, path);
                self.split(map, path, depth)
            }
            other => {
                self.error(
                    path::key(path, "type"),
                    Kind::UnknownNodeType {
                        found: other.to_owned(),
                    },
                );
                Draft::Invalid
            }
        }
    }

    /// Parses `value` as the child `branch` of inner node `id`.
    fn child(
        &mut self,
        value: &Value,
        path: &str,
        depth: usize,
        id: usize,
        parent: &str,
        branch: Branch,
    ) -> Draft {
        self.trail.push(Step {
            node: id,
            path: parent.to_owned(),
            branch,
        });
        let draft = self.node(value, path, depth + 1, false);
        self.trail.pop();
        draft
    }

    fn array<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        key: &'static str,
        path: &str,
        what: &'static str,
    ) -> &'v [Value] {
        let key_path = path::key(path, key);
        match self.required(map, key, path) {
            Some(Value::Array(items)) if items.is_empty() => {
                self.error(key_path, Kind::Empty { what });
                &[]
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.wrong_type(&key_path, "an array", other);
                &[]
            }
            None => &[],
        }
    }

    fn children(
        &mut self,
        map: &Map<String, Value>,
        id: usize,
        path: &str,
        depth: usize,
        branch: fn(usize) -> Branch,
    ) -> Vec<Draft> {
        let nodes_path = path::key(path, "nodes");
        let items = self.array(map, "nodes", path, "`nodes`");
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                self.child(
                    item,
                    &path::index(&nodes_path, i),
                    depth,
                    id,
                    path,
                    branch(i),
                )
            })
            .collect()
    }

    fn switch(&mut self, map: &Map<String, Value>, path: &str, depth: usize) -> Draft {
        let id = self.new_node_id();
        let cases_path = path::key(path, "cases");
        let mut cases = Vec::new();
        for (i, case) in self.array(map, "cases", path, "`cases`").iter().enumerate() {
            let case_path = path::index(&cases_path, i);
            let Some(case) = self.object(case, &case_path) else {
                continue;
            };
            self.check_keys(case, CASE_KEYS, &case_path);
            let when = match self.required(case, "when", &case_path) {
                Some(when) => self.condition(when, &path::key(&case_path, "when")),
                None => CondDraft::Invalid,
            };
            let node = match self.required(case, "node", &case_path) {
                Some(node) => self.child(
                    node,
                    &path::key(&case_path, "node"),
                    depth,
                    id,
                    path,
                    Branch::Case(i),
                ),
                None => Draft::Invalid,
            };
            cases.push((when, node));
        }
        let default = map.get("default").map(|node| {
            Box::new(self.child(
                node,
                &path::key(path, "default"),
                depth,
                id,
                path,
                Branch::Default,
            ))
        });
        Draft::Switch {
            id,
            path: path.to_owned(),
            cases,
            default,
        }
    }

    fn split(&mut self, map: &Map<String, Value>, path: &str, depth: usize) -> Draft {
        let id = self.new_node_id();
        let key = self.required(map, "key", path).and_then(|key| {
            let key_path = path::key(path, "key");
            self.string(key, &key_path)
                .map(|key| (key.to_owned(), key_path))
        });
        let branches_path = path::key(path, "branches");
        let mut weights = Vec::new();
        let mut branches = Vec::new();
        for (i, branch) in self
            .array(map, "branches", path, "`branches`")
            .iter()
            .enumerate()
        {
            let branch_path = path::index(&branches_path, i);
            let Some(branch) = self.object(branch, &branch_path) else {
                continue;
            };
            self.check_keys(branch, BRANCH_KEYS, &branch_path);
            let weight = self
                .required(branch, "weight", &branch_path)
                .and_then(|weight| {
                    let weight_path = path::key(&branch_path, "weight");
                    let weight = self.number(weight, &weight_path)?;
                    if weight > 0.0 && weight.is_finite() {
                        Some(weight)
                    } else {
                        self.error(weight_path, Kind::NonPositiveWeight { weight });
                        None
                    }
                });
            let node = match self.required(branch, "node", &branch_path) {
                Some(node) => self.child(
                    node,
                    &path::key(&branch_path, "node"),
                    depth,
                    id,
                    path,
                    Branch::Split(i),
                ),
                None => Draft::Invalid,
            };
            // A bad weight is recorded and compilation fails; a stand-in
            // keeps the branch so its modules raise no further errors.
            weights.push(weight.unwrap_or(1.0));
            branches.push(node);
        }
        let mut shadow = Vec::new();
        if let Some(value) = map.get("shadow") {
            let shadow_path = path::key(path, "shadow");
            match value {
                Value::Array(items) => {
                    let outer = self.in_shadow;
                    self.in_shadow = true;
                    for (i, item) in items.iter().enumerate() {
                        let draft = self.child(
                            item,
                            &path::index(&shadow_path, i),
                            depth,
                            id,
                            path,
                            Branch::Shadow(i),
                        );
                        shadow.push(draft);
                    }
                    self.in_shadow = outer;
                }
                other => self.wrong_type(&shadow_path, "an array", other),
            }
        }
        Draft::Split {
            id,
            path: path.to_owned(),
            key,
            weights,
            branches,
            shadow,
        }
    }

    fn condition(&mut self, value: &Value, path: &str) -> CondDraft {
        let Some(map) = self.object(value, path) else {
            return CondDraft::Invalid;
        };
        let shapes = [
            map.contains_key("field") || map.contains_key("op"),
            map.contains_key("all"),
            map.contains_key("any"),
        ];
        if shapes.iter().filter(|present| **present).count() != 1 {
            self.error(path, Kind::ConditionShape);
            return CondDraft::Invalid;
        }
        for (key, keys) in [("all", ALL_KEYS), ("any", ANY_KEYS)] {
            if let Some(list) = map.get(key) {
                self.check_keys(map, keys, path);
                let list_path = path::key(path, key);
                let conditions = match list {
                    Value::Array(items) if items.is_empty() => {
                        self.error(
                            list_path,
                            Kind::Empty {
                                what: "a condition list",
                            },
                        );
                        return CondDraft::Invalid;
                    }
                    Value::Array(items) => items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| self.condition(item, &path::index(&list_path, i)))
                        .collect(),
                    other => {
                        self.wrong_type(&list_path, "an array", other);
                        return CondDraft::Invalid;
                    }
                };
                return if key == "all" {
                    CondDraft::All(conditions)
                } else {
                    CondDraft::Any(conditions)
                };
            }
        }
        self.check_keys(map, COMPARE_KEYS, path);
        let field = self
            .required(map, "field", path)
            .and_then(|field| self.string(field, &path::key(path, "field")));
        let op_path = path::key(path, "op");
        let op = self
            .required(map, "op", path)
            .and_then(|op| self.string(op, &op_path))
            .and_then(|op| {
                let parsed = Op::parse(op);
                if parsed.is_none() {
                    self.error(op_path.clone(), Kind::UnknownOp { op: op.to_owned() });
                }
                parsed
            });
        let value_path = path::key(path, "value");
        let value = match (op, map.get("value")) {
            (Some(op @ (Op::Missing | Op::Present)), Some(_)) => {
                self.error(value_path, Kind::ValueForOp { op: op.name() });
                None
            }
            (Some(Op::Missing | Op::Present), None) => Some(Value::Null),
            (Some(Op::Lt | Op::Le | Op::Gt | Op::Ge), Some(value))
                if !(value.is_number() || value.is_string()) =>
            {
                self.wrong_type(&value_path, "a number or a string", value);
                None
            }
            (Some(_), Some(value)) => Some(value.clone()),
            (Some(_), None) => {
                self.error(path, Kind::MissingKey { key: "value" });
                None
            }
            (None, _) => None,
        };
        match (field, op, value) {
            (Some(field), Some(op), Some(value)) => CondDraft::Compare {
                field: field.to_owned(),
                path: path::key(path, "field"),
                op,
                value,
            },
            _ => CondDraft::Invalid,
        }
    }
}
