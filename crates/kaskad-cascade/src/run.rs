//! Execution of a compiled cascade against one request.
//!
//! Children of a `group` and the shadow branches of a `split` run
//! concurrently as futures of the caller's task; results live in one
//! mutex-guarded table indexed by module, never locked across an await.
//! Compilation proved that every read finds its module already finished.

use std::cmp::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use futures_util::future::{self, BoxFuture};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ModuleFailure, OutputViolation, RunError, json_type};
use crate::plan::{CompiledCascade, Condition, FieldRef, ModuleSpec, Node, OnFailure, Op};
use crate::sticky;

/// Scores one module: a local registry model or a remote endpoint. The
/// server implements it; the engine owns timeouts, rules and fallbacks.
#[async_trait]
pub trait ModuleScorer: Send + Sync {
    /// `Err` carries the reason recorded in the module's run.
    async fn score(
        &self,
        module: &ModuleSpec,
        input: Map<String, Value>,
    ) -> Result<Map<String, Value>, String>;
}

#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Run `shadow` branches; a server under load may turn them off.
    pub run_shadow: bool,
    /// Keep each module's result in [`ModuleRun::result`].
    pub module_results: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            run_shadow: true,
            module_results: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CascadeResult {
    /// One field per entry of the cascade's `output`.
    pub output: Map<String, Value>,
    /// Every module, in the order of the cascade JSON.
    pub modules: Vec<ModuleRun>,
    /// The decision of every switch and split reached, in cascade order.
    pub path: Vec<PathStep>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModuleRun {
    pub name: String,
    /// From building the input to checking the output, 0 when skipped.
    pub latency_us: u64,
    pub outcome: Outcome,
    /// The result used downstream (the fallback when it fell back).
    pub result: Option<Map<String, Value>>,
    /// Why it failed or fell back.
    pub error: Option<String>,
    pub shadow: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fallback,
    Failed,
    /// In a branch not taken, after a failure, or a shadow not run.
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathStep {
    /// JSON path of the switch or split.
    pub node: String,
    pub taken: Taken,
    /// True when the node sits in a shadow branch.
    pub shadow: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Taken {
    /// Index into a switch's `cases`.
    Case(usize),
    Default,
    /// No case held and the switch has no default: nothing ran.
    #[serde(rename = "none")]
    NoCase,
    /// Index into a split's `branches`.
    Branch(usize),
}

impl CompiledCascade {
    /// Runs the cascade on `request`, a JSON object whose top-level keys are
    /// the modules' sources.
    pub async fn run(
        &self,
        request: &Value,
        scorer: &dyn ModuleScorer,
        options: RunOptions,
    ) -> Result<CascadeResult, RunError> {
        let Value::Object(request) = request else {
            return Err(RunError::RequestNotObject {
                found: json_type(request),
            });
        };
        let exec = Exec {
            cascade: self,
            request,
            scorer,
            options,
            state: Mutex::new(State {
                results: vec![None; self.modules.len()],
                runs: vec![None; self.modules.len()],
                path: Vec::new(),
            }),
        };
        exec.node(&self.root, false).await?;
        let State {
            mut results,
            runs,
            mut path,
        } = exec
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);

        let mut output = Map::new();
        for (name, refs) in &self.output {
            let ran = refs
                .iter()
                .find(|result| results[result.module].is_some())
                .unwrap_or(&refs[0]);
            let value = results[ran.module]
                .as_ref()
                .and_then(|result| result.get(&ran.field));
            let Some(value) = value else {
                return Err(RunError::MissingOutput {
                    name: name.clone(),
                    reference: ran.text.clone(),
                });
            };
            output.insert(name.clone(), value.clone());
        }
        let modules = self
            .modules
            .iter()
            .zip(runs)
            .zip(results.iter_mut())
            .map(|((spec, run), result)| match run {
                Some(mut run) => {
                    if options.module_results {
                        run.result = result.take();
                    }
                    run
                }
                None => ModuleRun {
                    name: spec.name.clone(),
                    latency_us: 0,
                    outcome: Outcome::Skipped,
                    result: None,
                    error: None,
                    shadow: spec.shadow,
                },
            })
            .collect();
        path.sort_by_key(|(id, _)| *id);
        Ok(CascadeResult {
            output,
            modules,
            path: path.into_iter().map(|(_, step)| step).collect(),
        })
    }
}

struct State {
    results: Vec<Option<Map<String, Value>>>,
    runs: Vec<Option<ModuleRun>>,
    path: Vec<(usize, PathStep)>,
}

struct Exec<'a> {
    cascade: &'a CompiledCascade,
    request: &'a Map<String, Value>,
    scorer: &'a dyn ModuleScorer,
    options: RunOptions,
    state: Mutex<State>,
}

/// Why a module attempt produced nothing: a malformed request fails the run
/// whatever the module's `on_failure` says; a module failure may fall back.
enum Attempt {
    Request(RunError),
    Module(ModuleFailure),
}

impl Exec<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the table half-written: every
        // update is a single assignment.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn node<'s>(&'s self, node: &'s Node, shadow: bool) -> BoxFuture<'s, Result<(), RunError>> {
        Box::pin(async move {
            match node {
                Node::Module(id) => self.module(*id).await,
                Node::Chain(nodes) => {
                    for node in nodes {
                        self.node(node, shadow).await?;
                    }
                    Ok(())
                }
                Node::Group(nodes) => {
                    future::try_join_all(nodes.iter().map(|node| self.node(node, shadow))).await?;
                    Ok(())
                }
                Node::Switch {
                    id,
                    path,
                    cases,
                    default,
                } => {
                    let chosen = {
                        let state = self.lock();
                        cases
                            .iter()
                            .position(|(when, _)| self.holds(when, &state.results))
                    };
                    let (taken, next) = match (chosen, default) {
                        (Some(i), _) => (Taken::Case(i), Some(&cases[i].1)),
                        (None, Some(default)) => (Taken::Default, Some(&**default)),
                        (None, None) => (Taken::NoCase, None),
                    };
                    self.record_step(*id, path, taken, shadow);
                    match next {
                        Some(next) => self.node(next, shadow).await,
                        None => Ok(()),
                    }
                }
                Node::Split {
                    id,
                    path,
                    key,
                    key_text,
                    salt,
                    bounds,
                    branches,
                    shadow: shadows,
                } => {
                    let key = {
                        let state = self.lock();
                        match self.lookup(key, &state.results) {
                            Some(Value::String(text)) => Ok(text.clone()),
                            Some(Value::Number(number)) => Ok(number.to_string()),
                            other => Err(RunError::SplitKey {
                                path: path.clone(),
                                key: key_text.clone(),
                                found: other.map_or("no value", json_type),
                            }),
                        }
                    }?;
                    let i = sticky::branch(bounds, sticky::position(salt, &key));
                    self.record_step(*id, path, Taken::Branch(i), shadow);
                    let main = self.node(&branches[i], shadow);
                    if !self.options.run_shadow || shadows.is_empty() {
                        return main.await;
                    }
                    // A shadow failure is already in its module's run and
                    // must not fail the request, so its error is dropped.
                    let shadows =
                        future::join_all(shadows.iter().map(|node| self.node(node, true)));
                    future::join(main, shadows).await.0
                }
            }
        })
    }

    fn record_step(&self, id: usize, node: &str, taken: Taken, shadow: bool) {
        let step = PathStep {
            node: node.to_owned(),
            taken,
            shadow,
        };
        self.lock().path.push((id, step));
    }

    async fn module(&self, id: usize) -> Result<(), RunError> {
        let spec = &self.cascade.modules[id];
        let started = Instant::now();
        let attempt = self.attempt(spec).await;
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (outcome, result, error, failed) = match attempt {
            Ok(result) => (Outcome::Ok, Some(result), None, None),
            Err(Attempt::Module(failure)) => match &spec.on_failure {
                OnFailure::Fallback(values) => (
                    Outcome::Fallback,
                    Some(values.clone()),
                    Some(failure.to_string()),
                    None,
                ),
                OnFailure::Fail => {
                    let message = failure.to_string();
                    let error = RunError::Module {
                        module: spec.name.clone(),
                        path: spec.path.clone(),
                        failure,
                    };
                    (Outcome::Failed, None, Some(message), Some(error))
                }
            },
            Err(Attempt::Request(error)) => {
                (Outcome::Failed, None, Some(error.to_string()), Some(error))
            }
        };
        let mut state = self.lock();
        state.results[id] = result;
        state.runs[id] = Some(ModuleRun {
            name: spec.name.clone(),
            latency_us,
            outcome,
            result: None,
            error,
            shadow: spec.shadow,
        });
        match failed {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    async fn attempt(&self, spec: &ModuleSpec) -> Result<Map<String, Value>, Attempt> {
        let mut input = self.input(spec)?;
        if let Some(rule) = &spec.input_rule {
            // Validated as a `Value` without copying the map.
            let value = Value::Object(std::mem::take(&mut input));
            if !rule.is_valid(&value) {
                let errors = rule
                    .iter_errors(&value)
                    .map(|error| format!("{}: {error}", error.instance_path()))
                    .collect();
                return Err(Attempt::Module(ModuleFailure::InputRule { errors }));
            }
            if let Value::Object(map) = value {
                input = map;
            }
        }
        let output = match tokio::time::timeout(spec.timeout, self.scorer.score(spec, input)).await
        {
            Err(_) => {
                let ms = u64::try_from(spec.timeout.as_millis()).unwrap_or(u64::MAX);
                return Err(Attempt::Module(ModuleFailure::Timeout { ms }));
            }
            Ok(Err(message)) => return Err(Attempt::Module(ModuleFailure::Scorer { message })),
            Ok(Ok(output)) => output,
        };
        for rule in &spec.output_rule {
            let violation = match output.get(&rule.field) {
                None | Some(Value::Null) => rule.required.then_some(OutputViolation::Missing),
                Some(_) if rule.min.is_none() && rule.max.is_none() => None,
                Some(value) => match value.as_f64() {
                    None => Some(OutputViolation::NotNumber {
                        found: json_type(value),
                    }),
                    Some(value) => match (rule.min, rule.max) {
                        (Some(min), _) if value < min => {
                            Some(OutputViolation::Below { value, min })
                        }
                        (_, Some(max)) if value > max => {
                            Some(OutputViolation::Above { value, max })
                        }
                        _ => None,
                    },
                },
            };
            if let Some(violation) = violation {
                return Err(Attempt::Module(ModuleFailure::OutputRule {
                    field: rule.field.clone(),
                    violation,
                }));
            }
        }
        Ok(output)
    }

    /// The fields of the module's sources, then its reused values (which win
    /// over a source field of the same name).
    fn input(&self, spec: &ModuleSpec) -> Result<Map<String, Value>, Attempt> {
        let mut input = Map::new();
        for source in &spec.sources {
            match self.request.get(source) {
                Some(Value::Object(fields)) => {
                    input.extend(
                        fields
                            .iter()
                            .map(|(name, value)| (name.clone(), value.clone())),
                    );
                }
                other => {
                    return Err(Attempt::Request(RunError::SourceNotObject {
                        module: spec.name.clone(),
                        path: spec.path.clone(),
                        source_key: source.clone(),
                        found: other.map_or("no value", json_type),
                    }));
                }
            }
        }
        if spec.reuse.is_empty() {
            return Ok(input);
        }
        let state = self.lock();
        for (name, refs) in &spec.reuse {
            let ran = refs
                .iter()
                .find(|result| state.results[result.module].is_some())
                .unwrap_or(&refs[0]);
            let value = state.results[ran.module]
                .as_ref()
                .and_then(|result| result.get(&ran.field));
            let Some(value) = value else {
                return Err(Attempt::Module(ModuleFailure::MissingReuse {
                    input: name.clone(),
                    reference: ran.text.clone(),
                }));
            };
            input.insert(name.clone(), value.clone());
        }
        Ok(input)
    }

    fn lookup<'v>(
        &'v self,
        field: &FieldRef,
        results: &'v [Option<Map<String, Value>>],
    ) -> Option<&'v Value> {
        let (root, rest) = match field {
            FieldRef::Request { source, rest } => (self.request.get(source)?, rest.as_slice()),
            FieldRef::Result { module, rest } => {
                let (first, rest) = rest.split_first()?;
                (results[*module].as_ref()?.get(first)?, rest)
            }
        };
        rest.iter().try_fold(root, |value, key| value.get(key))
    }

    fn holds(&self, condition: &Condition, results: &[Option<Map<String, Value>>]) -> bool {
        match condition {
            Condition::All(conditions) => conditions.iter().all(|c| self.holds(c, results)),
            Condition::Any(conditions) => conditions.iter().any(|c| self.holds(c, results)),
            Condition::Compare { field, op, value } => {
                let found = self.lookup(field, results).filter(|found| !found.is_null());
                match op {
                    Op::Missing => found.is_none(),
                    Op::Present => found.is_some(),
                    Op::Eq => found.is_some_and(|found| equal(found, value)),
                    Op::Ne => !found.is_some_and(|found| equal(found, value)),
                    // Missing or incomparable values (a string against a
                    // number) satisfy no ordering: test `missing` for them.
                    Op::Lt => order(found, value) == Some(Ordering::Less),
                    Op::Le => matches!(order(found, value), Some(Ordering::Less | Ordering::Equal)),
                    Op::Gt => order(found, value) == Some(Ordering::Greater),
                    Op::Ge => matches!(
                        order(found, value),
                        Some(Ordering::Greater | Ordering::Equal)
                    ),
                }
            }
        }
    }
}

/// JSON equality, except that numbers compare by value (`1` equals `1.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => a == b,
    }
}

fn order(found: Option<&Value>, value: &Value) -> Option<Ordering> {
    match (found?, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}
