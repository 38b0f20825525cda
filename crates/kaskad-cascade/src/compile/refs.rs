//! Second pass: resolves every reference between modules and proves that the
//! module it reads has run, on every path, before the reader. A reference to
//! a module that runs later, concurrently, in another branch or in a shadow
//! branch is what a cycle looks like in a tree; it is rejected with the
//! reason.

use std::collections::HashMap;

use crate::catalog::FieldKind;
use crate::error::{CascadeError, CascadeErrorKind as Kind};
use crate::plan::{Condition, FieldRef, ModuleTarget, Node, OnFailure, ResultRef};

use super::parse::{Branch, CondDraft, Draft, ModuleDraft, Step};

/// Who reads a result; decides how "not earlier" is explained.
#[derive(Clone, Copy)]
pub(crate) enum Reader<'t> {
    Module(&'t [Step]),
    /// The conditions of a switch or the key of a split, read before any of
    /// its branches runs.
    Node(usize, &'t [Step]),
    Output,
}

pub(crate) struct Resolver<'a> {
    pub(crate) salt_prefix: &'a str,
    pub(crate) modules: &'a [ModuleDraft],
    pub(crate) names: &'a HashMap<String, usize>,
    pub(crate) errors: Vec<CascadeError>,
    /// Resolved `reuse` of each module, by module index.
    pub(crate) reuse: Vec<Vec<(String, Vec<ResultRef>)>>,
}

impl<'a> Resolver<'a> {
    fn error(&mut self, path: &str, kind: Kind) {
        self.errors.push(CascadeError {
            path: path.to_owned(),
            kind,
        });
    }

    /// Resolves the references inside `draft`; `prefix` holds the nodes
    /// that have completed before it on every path (earlier chain siblings
    /// of it and of its ancestors).
    pub(crate) fn walk(
        &mut self,
        draft: &'a Draft,
        trail: &mut Vec<Step>,
        prefix: &mut Vec<&'a Draft>,
    ) -> Option<Node> {
        match draft {
            Draft::Invalid => None,
            Draft::Module(id) => {
                self.module(*id, trail, prefix);
                Some(Node::Module(*id))
            }
            Draft::Chain { id, path, nodes } => {
                let before = prefix.len();
                let mut children = Vec::with_capacity(nodes.len());
                for (i, node) in nodes.iter().enumerate() {
                    children.push(self.step(node, *id, path, Branch::Child(i), trail, prefix));
                    prefix.push(node);
                }
                prefix.truncate(before);
                children.into_iter().collect::<Option<_>>().map(Node::Chain)
            }
            Draft::Group { id, path, nodes } => {
                let children: Vec<_> = nodes
                    .iter()
                    .enumerate()
                    .map(|(i, node)| self.step(node, *id, path, Branch::Member(i), trail, prefix))
                    .collect();
                children.into_iter().collect::<Option<_>>().map(Node::Group)
            }
            Draft::Switch {
                id,
                path,
                cases,
                default,
            } => {
                let mut compiled = Vec::with_capacity(cases.len());
                for (i, (when, node)) in cases.iter().enumerate() {
                    let when = self.condition(when, Reader::Node(*id, trail.as_slice()), prefix);
                    let node = self.step(node, *id, path, Branch::Case(i), trail, prefix);
                    compiled.push(when.zip(node));
                }
                let default = match default {
                    Some(node) => Some(Box::new(self.step(
                        node,
                        *id,
                        path,
                        Branch::Default,
                        trail,
                        prefix,
                    )?)),
                    None => None,
                };
                Some(Node::Switch {
                    id: *id,
                    path: path.clone(),
                    cases: compiled.into_iter().collect::<Option<_>>()?,
                    default,
                })
            }
            Draft::Split {
                id,
                path,
                key,
                weights,
                branches,
                shadow,
            } => {
                let key = key.as_ref().and_then(|(text, key_path)| {
                    Some((
                        self.field(text, key_path, Reader::Node(*id, trail.as_slice()), prefix)?,
                        text,
                    ))
                });
                let branches: Vec<_> = branches
                    .iter()
                    .enumerate()
                    .map(|(i, node)| self.step(node, *id, path, Branch::Split(i), trail, prefix))
                    .collect();
                let shadow: Vec<_> = shadow
                    .iter()
                    .enumerate()
                    .map(|(i, node)| self.step(node, *id, path, Branch::Shadow(i), trail, prefix))
                    .collect();
                let (key, key_text) = key?;
                let bounds = weights
                    .iter()
                    .scan(0.0, |total, weight| {
                        *total += weight;
                        Some(*total)
                    })
                    .collect();
                Some(Node::Split {
                    id: *id,
                    path: path.clone(),
                    key,
                    key_text: key_text.clone(),
                    salt: format!("{}{path}", self.salt_prefix),
                    bounds,
                    branches: branches.into_iter().collect::<Option<_>>()?,
                    shadow: shadow.into_iter().collect::<Option<_>>()?,
                })
            }
        }
    }

    fn step(
        &mut self,
        draft: &'a Draft,
        node: usize,
        path: &str,
        branch: Branch,
        trail: &mut Vec<Step>,
        prefix: &mut Vec<&'a Draft>,
    ) -> Option<Node> {
        trail.push(Step {
            node,
            path: path.to_owned(),
            branch,
        });
        let compiled = self.walk(draft, trail, prefix);
        trail.pop();
        compiled
    }

    fn module(&mut self, id: usize, trail: &[Step], prefix: &[&'a Draft]) {
        let module = &self.modules[id];
        let mut resolved = Vec::with_capacity(module.reuse.len());
        for reuse in &module.reuse {
            let Some(refs) = self.results(&reuse.refs, &reuse.path, Reader::Module(trail), prefix)
            else {
                continue;
            };
            if let Some(ModuleTarget::Model { reference, info }) = &module.target {
                match info.input(&reuse.input) {
                    None => self.error(
                        &reuse.path,
                        Kind::UnknownInput {
                            model: reference.clone(),
                            input: reuse.input.clone(),
                            available: info.input_names(),
                        },
                    ),
                    Some(input) if input.kind == FieldKind::Numeric => {
                        for (result, (_, ref_path)) in refs.iter().zip(&reuse.refs) {
                            let found = self.output_kind(result.module, &result.field);
                            if let Some(found @ FieldKind::Categorical) = found {
                                self.error(
                                    ref_path,
                                    Kind::TypeMismatch {
                                        input: reuse.input.clone(),
                                        model: reference.clone(),
                                        reference: result.text.clone(),
                                        found,
                                    },
                                );
                            }
                        }
                    }
                    Some(_) => {}
                }
            }
            resolved.push((reuse.input.clone(), refs));
        }
        self.reuse[id] = resolved;
    }

    fn output_kind(&self, module: usize, field: &str) -> Option<FieldKind> {
        match &self.modules[module].target {
            Some(ModuleTarget::Model { info, .. }) => info.output(field).map(|output| output.kind),
            _ => None,
        }
    }

    /// Resolves a list of alternative `module.field` references written at
    /// `path`; at least one of their modules must have run for the reader.
    pub(crate) fn results(
        &mut self,
        refs: &[(String, String)],
        path: &str,
        reader: Reader<'_>,
        prefix: &[&Draft],
    ) -> Option<Vec<ResultRef>> {
        let mut resolved = Vec::with_capacity(refs.len());
        for (text, ref_path) in refs {
            let Some((module, field)) = text.split_once('.').filter(|(module, field)| {
                !module.is_empty() && !field.is_empty() && !field.contains('.')
            }) else {
                self.error(
                    ref_path,
                    Kind::BadReference {
                        reference: text.clone(),
                        expected: "`module.field`",
                    },
                );
                continue;
            };
            let Some(&id) = self.names.get(module) else {
                self.error(
                    ref_path,
                    Kind::UnknownModule {
                        name: module.to_owned(),
                    },
                );
                continue;
            };
            if self.known_field(id, field, ref_path) {
                resolved.push(ResultRef {
                    module: id,
                    field: field.to_owned(),
                    text: text.clone(),
                });
            }
        }
        if resolved.len() != refs.len() {
            return None;
        }
        let ids: Vec<usize> = resolved.iter().map(|result| result.module).collect();
        if prefix.iter().any(|node| covers(node, &ids)) {
            return Some(resolved);
        }
        match resolved.as_slice() {
            [single] => {
                let modules = self.modules;
                let target = &modules[single.module];
                let reason = explain(&target.trail, &target.path, reader);
                self.error(
                    &refs[0].1,
                    Kind::NotEarlier {
                        module: target.name.clone(),
                        reason,
                    },
                );
            }
            _ => {
                let modules = ids
                    .iter()
                    .map(|id| format!("`{}`", self.modules[*id].name))
                    .collect();
                self.error(path, Kind::NoneEarlier { modules });
            }
        }
        None
    }

    /// Checks that module `id` outputs `field`, also when it falls back.
    fn known_field(&mut self, id: usize, field: &str, path: &str) -> bool {
        let module = &self.modules[id];
        if let Some(ModuleTarget::Model { info, .. }) = &module.target
            && info.output(field).is_none()
        {
            self.error(
                path,
                Kind::UnknownField {
                    module: module.name.clone(),
                    field: field.to_owned(),
                    available: info.output_names(),
                },
            );
            return false;
        }
        if let OnFailure::Fallback(fallback) = &module.on_failure
            && !fallback.contains_key(field)
        {
            self.error(
                path,
                Kind::FallbackLacksField {
                    module: module.name.clone(),
                    field: field.to_owned(),
                },
            );
            return false;
        }
        true
    }

    /// A condition field or split key: `module.field[.more]` when the first
    /// segment names a module, else `source.field[.more]` of the request.
    fn field(
        &mut self,
        text: &str,
        path: &str,
        reader: Reader<'_>,
        prefix: &[&Draft],
    ) -> Option<FieldRef> {
        let segments: Vec<&str> = text.split('.').collect();
        if segments.len() < 2 || segments.iter().any(|segment| segment.is_empty()) {
            self.error(
                path,
                Kind::BadReference {
                    reference: text.to_owned(),
                    expected: "`source.field` or `module.field`",
                },
            );
            return None;
        }
        let rest = segments[1..]
            .iter()
            .map(|segment| (*segment).to_owned())
            .collect();
        match self.names.get(segments[0]) {
            None => Some(FieldRef::Request {
                source: segments[0].to_owned(),
                rest,
            }),
            Some(_) => {
                let head = format!("{}.{}", segments[0], segments[1]);
                let resolved = self.results(&[(head, path.to_owned())], path, reader, prefix)?;
                let module = resolved.first()?.module;
                Some(FieldRef::Result { module, rest })
            }
        }
    }

    fn condition(
        &mut self,
        draft: &CondDraft,
        reader: Reader<'_>,
        prefix: &[&Draft],
    ) -> Option<Condition> {
        match draft {
            CondDraft::Invalid => None,
            CondDraft::Compare {
                field,
                path,
                op,
                value,
            } => Some(Condition::Compare {
                field: self.field(field, path, reader, prefix)?,
                op: *op,
                value: value.clone(),
            }),
            CondDraft::All(list) | CondDraft::Any(list) => {
                let conditions: Vec<_> = list
                    .iter()
                    .map(|c| self.condition(c, reader, prefix))
                    .collect();
                let conditions = conditions.into_iter().collect::<Option<Vec<_>>>()?;
                Some(if matches!(draft, CondDraft::All(_)) {
                    Condition::All(conditions)
                } else {
                    Condition::Any(conditions)
                })
            }
        }
    }
}

/// True when, on every path through `node`, one of `modules` runs (as a main
/// module, not a shadow one). Switch conditions and split keys are taken as
/// independent, so this errs on the side of rejecting.
fn covers(node: &Draft, modules: &[usize]) -> bool {
    match node {
        Draft::Module(id) => modules.contains(id),
        Draft::Chain { nodes, .. } | Draft::Group { nodes, .. } => {
            nodes.iter().any(|node| covers(node, modules))
        }
        Draft::Switch { cases, default, .. } => {
            default.as_ref().is_some_and(|node| covers(node, modules))
                && cases.iter().all(|(_, node)| covers(node, modules))
        }
        Draft::Split { branches, .. } => {
            !branches.is_empty() && branches.iter().all(|node| covers(node, modules))
        }
        Draft::Invalid => false,
    }
}

/// Why a module at `target` has not run, on every path, before `reader`.
fn explain(target: &[Step], target_path: &str, reader: Reader<'_>) -> String {
    let (own, node) = match reader {
        Reader::Module(trail) => (trail, None),
        Reader::Node(id, trail) => (trail, Some(id)),
        Reader::Output => (&[][..], None),
    };
    let common = target.iter().zip(own).take_while(|(a, b)| a == b).count();
    match (target.get(common), own.get(common)) {
        (None, _) => "a module cannot read its own result".to_owned(),
        (Some(theirs), Some(mine)) => match (theirs.branch, mine.branch) {
            (Branch::Child(a), Branch::Child(b)) if a < b => conditional(&target[common + 1..]),
            (Branch::Child(_), _) => format!(
                "it runs later, at {target_path}, in the chain at {}",
                theirs.path
            ),
            (Branch::Member(_), _) => {
                format!("it runs concurrently, in the same group at {}", theirs.path)
            }
            (Branch::Shadow(_), _) => shadow(&theirs.path),
            (_, Branch::Shadow(_)) => format!(
                "shadow branches run beside the branches of the split at {}, not after them",
                theirs.path
            ),
            (Branch::Case(_) | Branch::Default, _) => format!(
                "it is in another branch of the switch at {}, and only one branch runs",
                theirs.path
            ),
            (Branch::Split(_), _) => format!(
                "it is in another branch of the split at {}, and only one branch runs",
                theirs.path
            ),
        },
        (Some(theirs), None) if node == Some(theirs.node) => format!(
            "it is inside the {} at {}, which reads this before any branch runs",
            if matches!(theirs.branch, Branch::Case(_) | Branch::Default) {
                "switch"
            } else {
                "split"
            },
            theirs.path
        ),
        (Some(_), None) => conditional(&target[common..]),
    }
}

/// The first condition on the way to a module that may keep it from running.
fn conditional(steps: &[Step]) -> String {
    for step in steps {
        match step.branch {
            Branch::Case(i) => {
                return format!(
                    "it runs only when case {i} of the switch at {} holds",
                    step.path
                );
            }
            Branch::Default => {
                return format!(
                    "it runs only when no case of the switch at {} holds",
                    step.path
                );
            }
            Branch::Split(i) => {
                return format!(
                    "it runs only for requests sent to branch {i} of the split at {}",
                    step.path
                );
            }
            Branch::Shadow(_) => return shadow(&step.path),
            Branch::Child(_) | Branch::Member(_) => {}
        }
    }
    "it does not run on every path".to_owned()
}

fn shadow(split: &str) -> String {
    format!("it runs in a shadow branch of the split at {split}, whose results are never used")
}
