//! The fields of a `module` node: target, sources, reuse, rules, timeout
//! and failure policy.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::catalog::FieldKind;
use crate::error::CascadeErrorKind as Kind;
use crate::path;
use crate::plan::{ModuleTarget, OnFailure, OutputRule};

use super::parse::{Draft, ModuleDraft, Parser, ReuseDraft};

const DEFAULT_TIMEOUT_MS: u64 = 1000;
const MAX_TIMEOUT_MS: u64 = 600_000;
const REMOTE_KEYS: &[&str] = &["url", "model"];
const RULE_KEYS: &[&str] = &["min", "max", "required"];
const ON_FAILURE_KEYS: &[&str] = &["fallback"];

impl Parser<'_> {
    pub(crate) fn module(&mut self, map: &Map<String, Value>, path: &str) -> Draft {
        let name = self.required(map, "name", path).and_then(|name| {
            let name_path = path::key(path, "name");
            let name = self.string(name, &name_path)?;
            self.valid_name(name, &name_path).then(|| name.to_owned())
        });
        let target = self.target(map, path);
        let params = match map.get("params") {
            Some(params) => self
                .object(params, &path::key(path, "params"))
                .cloned()
                .unwrap_or_default(),
            None => Map::new(),
        };
        let sources = self.sources(map, path);
        let reuse = self.reuse(map, path);
        let input_rule = map
            .get("input_rule")
            .and_then(|rule| self.input_rule(rule, &path::key(path, "input_rule")));
        let output_rule = self.output_rule(map, path, target.as_ref());
        let timeout = self.timeout(map, path);
        let on_failure = self.on_failure(map, path, target.as_ref());

        let Some(name) = name else {
            return Draft::Invalid;
        };
        let id = self.modules.len();
        if let Some(first) = self.names.get(&name) {
            let first = self.modules[*first].path.clone();
            self.error(
                path::key(path, "name"),
                Kind::DuplicateModule { name, first },
            );
            return Draft::Invalid;
        }
        self.names.insert(name.clone(), id);
        self.modules.push(ModuleDraft {
            name,
            path: path.to_owned(),
            trail: self.trail.clone(),
            target,
            params,
            sources,
            reuse,
            input_rule,
            output_rule,
            timeout,
            on_failure,
            shadow: self.in_shadow,
        });
        Draft::Module(id)
    }

    fn target(&mut self, map: &Map<String, Value>, path: &str) -> Option<ModuleTarget> {
        match (map.get("model"), map.get("remote")) {
            (Some(model), None) => {
                let model_path = path::key(path, "model");
                let reference = self.string(model, &model_path)?;
                match self.catalog.resolve(reference) {
                    Ok(info) => Some(ModuleTarget::Model {
                        reference: reference.to_owned(),
                        info,
                    }),
                    Err(reason) => {
                        self.error(
                            model_path,
                            Kind::UnknownModel {
                                reference: reference.to_owned(),
                                reason,
                            },
                        );
                        None
                    }
                }
            }
            (None, Some(remote)) => {
                let remote_path = path::key(path, "remote");
                let remote = self.object(remote, &remote_path)?;
                self.check_keys(remote, REMOTE_KEYS, &remote_path);
                let url = self.required(remote, "url", &remote_path).and_then(|url| {
                    let url_path = path::key(&remote_path, "url");
                    let url = self.string(url, &url_path)?;
                    if url.starts_with("http://") || url.starts_with("https://") {
                        Some(url.to_owned())
                    } else {
                        self.error(
                            url_path,
                            Kind::InvalidUrl {
                                url: url.to_owned(),
                            },
                        );
                        None
                    }
                });
                let model = self
                    .required(remote, "model", &remote_path)
                    .and_then(|model| {
                        let model_path = path::key(&remote_path, "model");
                        let model = self.string(model, &model_path)?;
                        if model.is_empty() {
                            self.error(
                                model_path,
                                Kind::Empty {
                                    what: "the remote model name",
                                },
                            );
                            return None;
                        }
                        Some(model.to_owned())
                    });
                Some(ModuleTarget::Remote {
                    url: url?,
                    model: model?,
                })
            }
            _ => {
                self.error(path, Kind::ModelXorRemote);
                None
            }
        }
    }

    fn sources(&mut self, map: &Map<String, Value>, path: &str) -> Vec<String> {
        let Some(value) = map.get("sources") else {
            return Vec::new();
        };
        let sources_path = path::key(path, "sources");
        let Value::Array(items) = value else {
            self.wrong_type(&sources_path, "an array", value);
            return Vec::new();
        };
        let mut sources: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = path::index(&sources_path, i);
            let Some(source) = self.string(item, &item_path) else {
                continue;
            };
            if source.is_empty() {
                self.error(
                    item_path,
                    Kind::Empty {
                        what: "a source name",
                    },
                );
            } else if sources.iter().any(|seen| seen == source) {
                self.error(
                    item_path,
                    Kind::Duplicate {
                        value: source.to_owned(),
                    },
                );
            } else {
                sources.push(source.to_owned());
            }
        }
        sources
    }

    fn reuse(&mut self, map: &Map<String, Value>, path: &str) -> Vec<ReuseDraft> {
        let Some(value) = map.get("reuse") else {
            return Vec::new();
        };
        let reuse_path = path::key(path, "reuse");
        let Some(reuse) = self.object(value, &reuse_path) else {
            return Vec::new();
        };
        let mut drafts = Vec::new();
        for (input, value) in reuse {
            let input_path = path::key(&reuse_path, input);
            let refs = self.references(value, &input_path);
            if !refs.is_empty() {
                drafts.push(ReuseDraft {
                    input: input.clone(),
                    path: input_path,
                    refs,
                });
            }
        }
        drafts
    }

    /// A `"module.field"` string or a non-empty list of them (alternatives).
    pub(crate) fn references(&mut self, value: &Value, path: &str) -> Vec<(String, String)> {
        match value {
            Value::String(text) => vec![(text.clone(), path.to_owned())],
            Value::Array(items) if items.is_empty() => {
                self.error(
                    path,
                    Kind::Empty {
                        what: "a list of alternatives",
                    },
                );
                Vec::new()
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let item_path = path::index(path, i);
                    self.string(item, &item_path)
                        .map(|text| (text.to_owned(), item_path))
                })
                .collect(),
            other => {
                self.wrong_type(path, "a \"module.field\" string or a list of them", other);
                Vec::new()
            }
        }
    }

    fn input_rule(&mut self, rule: &Value, path: &str) -> Option<jsonschema::Validator> {
        self.object(rule, path)?;
        match jsonschema::validator_for(rule) {
            Ok(validator) => Some(validator),
            Err(error) => {
                // The meta-schema check locates the problem inside the rule;
                // point there rather than at the rule as a whole.
                let mut at = path.to_owned();
                for segment in error.instance_path().as_str().split('/').skip(1) {
                    let segment = segment.replace("~1", "/").replace("~0", "~");
                    at = match segment.parse::<usize>() {
                        Ok(i) => path::index(&at, i),
                        Err(_) => path::key(&at, &segment),
                    };
                }
                self.error(
                    at,
                    Kind::InvalidSchema {
                        message: error.to_string(),
                    },
                );
                None
            }
        }
    }

    fn output_rule(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        target: Option<&ModuleTarget>,
    ) -> Vec<OutputRule> {
        let Some(value) = map.get("output_rule") else {
            return Vec::new();
        };
        let rule_path = path::key(path, "output_rule");
        let Some(rules) = self.object(value, &rule_path) else {
            return Vec::new();
        };
        let mut parsed = Vec::new();
        for (field, rule) in rules {
            let field_path = path::key(&rule_path, field);
            let kind = match target {
                Some(ModuleTarget::Model { info, .. }) => match info.output(field) {
                    Some(output) => Some(output.kind),
                    None => {
                        self.unknown_output(&field_path, map, field, info.output_names());
                        continue;
                    }
                },
                _ => None,
            };
            let Some(rule) = self.object(rule, &field_path) else {
                continue;
            };
            self.check_keys(rule, RULE_KEYS, &field_path);
            let mut bound = |key: &str| {
                rule.get(key)
                    .and_then(|value| self.number(value, &path::key(&field_path, key)))
            };
            let (min, max) = (bound("min"), bound("max"));
            let required = match rule.get("required") {
                Some(Value::Bool(required)) => *required,
                Some(other) => {
                    self.wrong_type(&path::key(&field_path, "required"), "a boolean", other);
                    false
                }
                None => false,
            };
            if let (Some(min), Some(max)) = (min, max)
                && min > max
            {
                self.error(
                    path::key(&field_path, "min"),
                    Kind::InvalidRange { min, max },
                );
            }
            if let Some(kind @ FieldKind::Categorical) = kind
                && (min.is_some() || max.is_some())
            {
                self.error(
                    field_path.clone(),
                    Kind::RangeOnCategorical {
                        field: field.clone(),
                        kind,
                    },
                );
            }
            parsed.push(OutputRule {
                field: field.clone(),
                min,
                max,
                required,
            });
        }
        parsed
    }

    fn unknown_output(
        &mut self,
        path: &str,
        module: &Map<String, Value>,
        field: &str,
        available: Vec<String>,
    ) {
        let module = module
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        self.error(
            path,
            Kind::UnknownField {
                module,
                field: field.to_owned(),
                available,
            },
        );
    }

    fn timeout(&mut self, map: &Map<String, Value>, path: &str) -> Duration {
        let ms = match map.get("timeout_ms") {
            None => DEFAULT_TIMEOUT_MS,
            Some(value) => {
                let timeout_path = path::key(path, "timeout_ms");
                match value.as_u64() {
                    Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => ms,
                    Some(ms) => {
                        self.error(
                            timeout_path,
                            Kind::TimeoutOutOfRange {
                                value: ms,
                                max: MAX_TIMEOUT_MS,
                            },
                        );
                        DEFAULT_TIMEOUT_MS
                    }
                    None => {
                        self.wrong_type(&timeout_path, "a whole number of milliseconds", value);
                        DEFAULT_TIMEOUT_MS
                    }
                }
            }
        };
        Duration::from_millis(ms)
    }

    fn on_failure(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        target: Option<&ModuleTarget>,
    ) -> OnFailure {
        let on_failure_path = path::key(path, "on_failure");
        let expected = "\"fail\" or {\"fallback\": {...}}";
        let fallback = match map.get("on_failure") {
            None => return OnFailure::Fail,
            Some(Value::String(text)) if text == "fail" => return OnFailure::Fail,
            Some(Value::Object(object)) => {
                self.check_keys(object, ON_FAILURE_KEYS, &on_failure_path);
                match self.required(object, "fallback", &on_failure_path) {
                    Some(fallback) => fallback,
                    None => return OnFailure::Fail,
                }
            }
            Some(other) => {
                self.wrong_type(&on_failure_path, expected, other);
                return OnFailure::Fail;
            }
        };
        let fallback_path = path::key(&on_failure_path, "fallback");
        let Some(fallback) = self.object(fallback, &fallback_path) else {
            return OnFailure::Fail;
        };
        if let Some(ModuleTarget::Model { info, .. }) = target {
            for (field, value) in fallback {
                let field_path = path::key(&fallback_path, field);
                match info.output(field) {
                    None => self.unknown_output(&field_path, map, field, info.output_names()),
                    Some(output) if output.kind == FieldKind::Numeric && !value.is_number() => {
                        self.error(
                            field_path,
                            Kind::FallbackNotNumeric {
                                field: field.clone(),
                            },
                        );
                    }
                    Some(_) => {}
                }
            }
        }
        OnFailure::Fallback(fallback.clone())
    }
}
