//! `/v1/cascades`: the versioned cascade catalog and cascade scoring.
//!
//! A cascade is compiled against the registry when it is stored (every
//! error answered at once, each with its JSON path) and again when a server
//! first runs that version; compiled cascades stay in memory by
//! `name@version`. A bare `name` means its latest version, looked up again
//! in the background once that is
//! [`ServeConfig::alias_ttl`](crate::ServeConfig::alias_ttl) old (requests
//! meanwhile run the last one found), so a cascade stored by another server
//! or by `kaskad cascades apply` is served about a second later, and one
//! stored through this server at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kaskad_cascade::{
    CascadeResult, CompiledCascade, FieldKind, ModelCatalog, ModuleFailure, ModuleTarget, Outcome,
    RunError, RunOptions, compile,
};
use kaskad_registry::{CascadeRecord, LogEntry};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::ApiError;
use crate::metrics::ModelLabel;
use crate::models::lock;
use crate::refreshing::{Known, Refreshing};
use crate::rows::{level, member, number, shown};
use crate::v1::{parse_json, unix_now};

/// One reason a cascade does not compile: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CascadeProblem {
    /// JSON path in the cascade, e.g. `$.nodes[0].model`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for CascadeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Compiles a cascade for this build: the engine's checks, and remote
/// modules restricted to `http://` (no TLS stack is built in yet). Every
/// problem is reported, in the order the engine and then this build find them.
pub fn compile_cascade(
    definition: &Value,
    models: &dyn ModelCatalog,
) -> Result<CompiledCascade, Vec<CascadeProblem>> {
    let mut problems = Vec::new();
    let compiled = compile(definition, models).map_err(|errors| {
        problems.extend(errors.into_iter().map(|e| CascadeProblem {
            path: e.path,
            message: e.kind.to_string(),
        }));
    });
    https_modules(definition, "$", &mut problems);
    match compiled {
        Ok(cascade) if problems.is_empty() => Ok(cascade),
        _ => Err(problems),
    }
}

/// Remote modules with an `https://` URL, anywhere in the tree at `path`.
fn https_modules(node: &Value, path: &str, problems: &mut Vec<CascadeProblem>) {
    let Value::Object(node) = node else {
        return;
    };
    let children = |key: &str| {
        node.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    if let Some(url) = node
        .get("remote")
        .and_then(|remote| remote.get("url"))
        .and_then(Value::as_str)
        .filter(|url| url.starts_with("https://"))
    {
        problems.push(CascadeProblem {
            path: format!("{path}.remote.url"),
            message: format!(
                "`{url}`: this build calls remote modules over plain http:// only (no TLS)"
            ),
        });
    }
    for (i, child) in children("nodes").enumerate() {
        https_modules(child, &format!("{path}.nodes[{i}]"), problems);
    }
    for (i, case) in children("cases").enumerate() {
        if let Some(child) = case.get("node") {
            https_modules(child, &format!("{path}.cases[{i}].node"), problems);
        }
    }
    if let Some(child) = node.get("default") {
        https_modules(child, &format!("{path}.default"), problems);
    }
    for (i, branch) in children("branches").enumerate() {
        if let Some(child) = branch.get("node") {
            https_modules(child, &format!("{path}.branches[{i}].node"), problems);
        }
    }
    for (i, child) in children("shadow").enumerate() {
        https_modules(child, &format!("{path}.shadow[{i}]"), problems);
    }
}

/// `name` or `name@VERSION`; a cascade name is letters, digits, `_` and `-`.
pub fn parse_cascade_reference(reference: &str) -> Result<(&str, Option<i64>), String> {
    let (name, version) = match reference.split_once('@') {
        Some((name, version)) => {
            let number = version
                .parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    format!(
                        "`{reference}`: a cascade version is a number (cascades have no aliases)"
                    )
                })?;
            (name, Some(number))
        }
        None => (reference, None),
    };
    if !valid_name(name) {
        return Err(format!(
            "`{name}` is not a cascade name: use letters, digits, `_` and `-`"
        ));
    }
    Ok((name, version))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The answer to a run: its `output`, the `cascade` that answered
/// (`name@version`), each module's run when `modules` is asked for, and the
/// branch every switch and split took.
pub fn cascade_answer(label: &str, result: &CascadeResult, modules: bool) -> Map<String, Value> {
    let mut answer = Map::new();
    answer.insert("output".into(), Value::Object(result.output.clone()));
    answer.insert("cascade".into(), json!(label));
    if modules {
        answer.insert("modules".into(), json!(result.modules));
    }
    answer.insert("path".into(), json!(result.path));
    answer
}

/// Compiled cascades and the latest version of each name, for the server.
pub(crate) struct CascadeCache {
    /// Name → its latest version.
    latest: Arc<Refreshing<i64>>,
    /// By `name@version`: a stored version never changes.
    compiled: Mutex<HashMap<String, Arc<CompiledCascade>>>,
}

impl CascadeCache {
    /// A name's latest version is looked up again once `ttl` old.
    pub(crate) fn new(ttl: Duration) -> CascadeCache {
        CascadeCache {
            latest: Arc::new(Refreshing::new(ttl)),
            compiled: Mutex::default(),
        }
    }
}

/// A cascade ready to run, and its `name@version`.
pub(crate) struct Loaded {
    cascade: Arc<CompiledCascade>,
    label: String,
}

impl App {
    async fn compile_blocking(
        &self,
        definition: Value,
    ) -> Result<Result<CompiledCascade, Vec<CascadeProblem>>, ApiError> {
        // The compiler asks the registry, which may block on SQLite and the disk.
        let models = Arc::clone(&self.models);
        tokio::task::spawn_blocking(move || compile_cascade(&definition, &*models))
            .await
            .map_err(ApiError::internal)
    }

    /// The latest version of cascade `name`; 404 when there is none or it
    /// was deleted. One looked up more than `alias_ttl` ago still answers
    /// while a background task looks it up again, as for models.
    async fn latest_version(&self, name: &str) -> Result<i64, ApiError> {
        match self.cascades.latest.get(name) {
            Known::Fresh(version) => return Ok(version),
            Known::Stale(version) => {
                self.cascades.latest.refresh_in_background(
                    name,
                    "a cascade's latest version",
                    || {
                        let app = self.clone();
                        let owned = name.to_string();
                        async move {
                            app.look_up_latest(&owned)
                                .await
                                .map(drop)
                                .map_err(|e| format!("{owned}: {}", e.message))
                        }
                    },
                );
                return Ok(version);
            }
            Known::Unknown => {}
        }
        self.look_up_latest(name)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no cascade called `{name}`")))
    }

    /// Asks the catalog for the latest version of `name` and caches the
    /// answer: `None` when there is no such cascade (or it was deleted).
    async fn look_up_latest(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let asked = Instant::now();
        let owned = name.to_string();
        let record = self.db(move |c| c.cascade(&owned)).await?;
        match &record {
            Some(record) => self.cascades.latest.store(name, asked, record.version),
            None => self.cascades.latest.remove(name, asked),
        }
        Ok(record.map(|r| r.version))
    }

    /// `name` (its latest version) or `name@VERSION`, compiled. An earlier
    /// version runs only while its name is not deleted: a deletion stops
    /// all traffic, and the stored versions stay for the request log.
    async fn cascade(&self, reference: &str) -> Result<Loaded, ApiError> {
        let (name, version) = parse_cascade_reference(reference).map_err(ApiError::not_found)?;
        let latest = self.latest_version(name).await?;
        let version = version.unwrap_or(latest);
        let missing = || ApiError::not_found(format!("cascade `{name}` has no version {version}"));
        if version > latest {
            return Err(missing());
        }
        let label = format!("{name}@{version}");
        if let Some(cascade) = lock(&self.cascades.compiled).get(&label) {
            return Ok(Loaded {
                cascade: Arc::clone(cascade),
                label,
            });
        }
        let owned = name.to_string();
        let record = self
            .db(move |c| c.cascade_version(&owned, version))
            .await?
            .ok_or_else(missing)?;
        let compiled = self.compile_blocking(record.definition).await?;
        // It compiled when it was stored; now a model it names is gone or
        // changed, which only a new version can fix.
        let compiled = compiled.map_err(|problems| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!("cascade `{label}` no longer compiles against the registry"),
            )
            .with("errors", json!(problems))
        })?;
        let cascade = Arc::clone(
            lock(&self.cascades.compiled)
                .entry(label.clone())
                .or_insert_with(|| Arc::new(compiled)),
        );
        Ok(Loaded { cascade, label })
    }
}

/// A cascade as the API lists it.
fn summary(record: &CascadeRecord) -> Value {
    json!({"name": record.name, "version": record.version, "created_at": record.created_at})
}

/// `PUT /v1/cascades/{name}`: compile, then store as the next version.
pub(crate) async fn put(
    State(app): State<App>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !valid_name(&name) {
        return Err(ApiError::bad_request(format!(
            "`{name}` is not a cascade name: use letters, digits, `_` and `-`"
        )));
    }
    let mut definition = parse_json(&body)?;
    if let Value::Object(map) = &mut definition {
        match map.get("name") {
            None => {
                map.insert("name".into(), json!(name));
            }
            Some(Value::String(given)) if *given == name => {}
            Some(other) => {
                let message = format!(
                    "the body names the cascade {}, the path `{name}`; leave `name` out or make them equal",
                    shown(other)
                );
                return Err(not_compiled(vec![CascadeProblem {
                    path: "$.name".into(),
                    message,
                }]));
            }
        }
    }
    let compiled = app
        .compile_blocking(definition.clone())
        .await?
        .map_err(not_compiled)?;
    let owned = name.clone();
    let version = app.db(move |c| c.put_cascade(&owned, &definition)).await?;
    // Served by this server at once, whatever the cache held.
    lock(&app.cascades.compiled).insert(format!("{name}@{version}"), Arc::new(compiled));
    app.cascades.latest.store(&name, Instant::now(), version);
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": name, "version": version})),
    )
        .into_response())
}

fn not_compiled(problems: Vec<CascadeProblem>) -> ApiError {
    let message = match problems.as_slice() {
        [one] => format!("the cascade does not compile: {one}"),
        many => format!("the cascade does not compile: {} errors", many.len()),
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).with("errors", json!(problems))
}

/// `GET /v1/cascades`: the latest version of every cascade.
pub(crate) async fn list(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let cascades = app.db(|c| c.cascades()).await?;
    let cascades: Vec<Value> = cascades.iter().map(summary).collect();
    Ok(Json(json!({ "cascades": cascades })))
}

/// `GET /v1/cascades/{name}` (latest) or `/v1/cascades/{name}@{version}`,
/// with its definition.
pub(crate) async fn show(
    State(app): State<App>,
    Path(reference): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (name, version) = parse_cascade_reference(&reference).map_err(ApiError::not_found)?;
    let owned = name.to_string();
    let record = app
        .db(move |c| match version {
            Some(version) => c.cascade_version(&owned, version),
            None => c.cascade(&owned),
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no cascade `{reference}`")))?;
    let mut answer = summary(&record);
    answer["definition"] = record.definition;
    Ok(Json(answer))
}

/// `DELETE /v1/cascades/{name}`: later runs by name get 404; the stored
/// versions stay for the request log.
pub(crate) async fn delete(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !valid_name(&name) {
        return Err(ApiError::bad_request(format!(
            "`{name}` is not a cascade name: delete a cascade by its name, without a version"
        )));
    }
    let owned = name.clone();
    let deleted = app
        .db(move |c| c.delete_cascade(&owned))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no cascade called `{name}`")))?;
    app.cascades.latest.remove(&name, Instant::now());
    Ok(Json(json!({"name": name, "deleted_version": deleted})))
}

/// Whether `?modules=true` asked for every module's run.
fn wants_modules(query: Option<&str>) -> Result<bool, ApiError> {
    let mut modules = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "true")) {
            ("modules", "true" | "1") => modules = true,
            ("modules", "false" | "0") => modules = false,
            ("modules", other) => {
                return Err(ApiError::bad_request(format!(
                    "`modules={other}`: expected true or false"
                )));
            }
            (key, _) => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{key}` (this route takes `modules`)"
                )));
            }
        }
    }
    Ok(modules)
}

/// `POST /v1/cascades/{name}/score` (and `{name}@{version}`): the body is
/// the request, keyed by data source.
pub(crate) async fn score(
    State(app): State<App>,
    Path(reference): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let at_unix = unix_now();
    let modules = wants_modules(query.as_deref())?;
    let request = parse_json(&body)?;
    let Loaded { cascade, label } = app.cascade(&reference).await?;
    let request_id = uuid::Uuid::now_v7().to_string();
    // Module results are always kept: the request log stores them.
    let options = RunOptions {
        run_shadow: true,
        module_results: true,
    };
    let result = match check_request(&cascade, &request) {
        Ok(()) => cascade
            .run(&request, &app.scorer, options)
            .await
            .map_err(|error| {
                if let Some(module) = error.module().filter(|_| !error.is_request_error()) {
                    app.metrics.observe_module(&label, module, "failed", None);
                }
                run_error(&error, &cascade)
            }),
        Err(rejected) => Err(rejected),
    };
    let seconds = started.elapsed().as_secs_f64();
    let (response, logged) = match result {
        Ok(result) => {
            app.metrics.observe_cascade(&label, "ok", Some(seconds));
            for run in &result.modules {
                let outcome = match run.outcome {
                    Outcome::Ok => "ok",
                    Outcome::Fallback => "fallback",
                    Outcome::Failed => "failed",
                    Outcome::Skipped => continue,
                };
                let latency = run.latency_us as f64 / 1e6;
                app.metrics
                    .observe_module(&label, &run.name, outcome, Some(latency));
            }
            let mut answer = cascade_answer(&label, &result, modules);
            answer.insert("request_id".into(), json!(request_id));
            let logged = cascade_answer(&label, &result, true);
            (Json(Value::Object(answer)).into_response(), logged)
        }
        Err(api_error) => {
            let outcome = if api_error.status == StatusCode::UNPROCESSABLE_ENTITY {
                "rejected"
            } else {
                "failed"
            };
            app.metrics.observe_cascade(&label, outcome, Some(seconds));
            let api_error = api_error.with("request_id", json!(request_id));
            let mut logged = api_error.details.clone();
            logged.insert("error".into(), json!(api_error.message));
            if let Some(path) = &api_error.path {
                logged.insert("path".into(), json!(path));
            }
            (api_error.into_response(), logged)
        }
    };
    app.log.push(&LogEntry {
        request_id: &request_id,
        at_unix,
        route: crate::ab::CASCADE_ROUTE,
        model: &label,
        input: &request.to_string(),
        output: &Value::Object(logged).to_string(),
        latency_ms: seconds * 1e3,
    });
    let mut response = response;
    response.extensions_mut().insert(ModelLabel(label));
    Ok(response)
}

/// Checks, before anything runs, every request field that a registry
/// model reads against the kind the model expects, so that a malformed
/// value is the client's 422 with its path rather than a module failure (or
/// a silent fallback). Remote models' inputs are known only once called.
fn check_request(cascade: &CompiledCascade, request: &Value) -> Result<(), ApiError> {
    // A request that is not an object, or a source that is not one, is
    // the run's to report, with the module that needed it.
    let Value::Object(request) = request else {
        return Ok(());
    };
    for module in cascade.modules() {
        let ModuleTarget::Model { info, .. } = module.target() else {
            continue;
        };
        for source in module.sources() {
            let Some(Value::Object(fields)) = request.get(source) else {
                continue;
            };
            for (key, value) in fields {
                let checked = match info.input(key).map(|field| field.kind) {
                    Some(FieldKind::Numeric) => number(value).map(drop),
                    Some(FieldKind::Categorical) => level(value).map(drop),
                    None => Ok(()),
                };
                if let Err(message) = checked {
                    let path = member(&member("$", source), key);
                    return Err(ApiError::invalid(path, message)
                        .with("module", json!(module.name()))
                        .with("node", json!(module.path())));
                }
            }
        }
    }
    Ok(())
}

/// The answer to a run that failed: 422 for a malformed request (with the
/// path in the request), 504 when a module timed out, 502 when a module
/// failed otherwise or its result lacks an output.
fn run_error(error: &RunError, cascade: &CompiledCascade) -> ApiError {
    let message = error.to_string();
    let mut api_error = match error {
        RunError::RequestNotObject { .. } => ApiError::invalid("$", message),
        RunError::SourceNotObject { source_key, .. } => {
            ApiError::invalid(member("$", source_key), message)
        }
        RunError::SplitKey { key, .. } => {
            let head = key.split('.').next().unwrap_or_default();
            let from_module = cascade.modules().iter().any(|m| m.name() == head);
            let mut api_error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
            if !from_module {
                api_error.path = Some(key.split('.').fold("$".to_string(), |p, k| member(&p, k)));
            }
            api_error
        }
        RunError::Module {
            failure: ModuleFailure::Timeout { .. },
            ..
        } => ApiError::new(StatusCode::GATEWAY_TIMEOUT, message),
        RunError::Module { .. } | RunError::MissingOutput { .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, message)
        }
    };
    if let Some(module) = error.module() {
        api_error = api_error.with("module", json!(module));
    }
    api_error.with("node", json!(error.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_queries() {
        assert_eq!(parse_cascade_reference("a_b-1"), Ok(("a_b-1", None)));
        assert_eq!(parse_cascade_reference("a@3"), Ok(("a", Some(3))));
        assert!(parse_cascade_reference("a@champion").is_err());
        assert!(parse_cascade_reference("a@0").is_err());
        assert!(parse_cascade_reference("a.b").is_err());
        assert!(parse_cascade_reference("").is_err());
        assert!(!wants_modules(None).unwrap());
        assert!(wants_modules(Some("modules=true")).unwrap());
        assert!(wants_modules(Some("modules")).unwrap());
        assert!(!wants_modules(Some("modules=0")).unwrap());
        assert_eq!(wants_modules(Some("module=1")).unwrap_err().status, 400);
        assert_eq!(wants_modules(Some("modules=yes")).unwrap_err().status, 400);
    }

    #[test]
    fn https_remotes_are_found_at_any_depth() {
        let remote = |url: &str| json!({"type": "module", "name": "r", "remote": {"url": url, "model": "m"}});
        let cascade = json!({"type": "chain", "nodes": [
            remote("https://a"),
            {"type": "switch", "cases": [{"when": {}, "node": remote("http://b")}], "default": remote("https://c")},
            {"type": "split", "branches": [{"weight": 1, "node": remote("https://d")}], "shadow": [remote("https://e")]}
        ]});
        let mut problems = Vec::new();
        https_modules(&cascade, "$", &mut problems);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.nodes[0].remote.url",
                "$.nodes[1].default.remote.url",
                "$.nodes[2].branches[0].node.remote.url",
                "$.nodes[2].shadow[0].remote.url"
            ]
        );
    }
}
