//! The `/v1` API: scoring, the registry, outcomes and batches. Each handler
//! parses its input, calls the catalog or the model, and shapes the answer.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kaskad_prepare::Cell;
use kaskad_registry::{LogEntry, Reason, VersionRecord};
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::error::ApiError;
use crate::metrics::ModelLabel;
use crate::models::Served;
use crate::rows::{self, shown};

/// Reason codes returned per application.
pub(crate) const REASONS: usize = 3;

/// Parses a JSON body; a syntax error says where.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Serialize)]
struct Scored<'a> {
    score: f64,
    decision: &'static str,
    reasons: &'a [Reason],
    model: &'a str,
    request_id: &'a str,
    /// Why the fallback model scored this application, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<&'a str>,
}

/// The decision a score leads to under the model's threshold.
pub(crate) fn decision(score: f64, threshold: f64) -> &'static str {
    if score >= threshold {
        "decline"
    } else {
        "approve"
    }
}

/// `POST /v1/models/{name}/score`
pub(crate) async fn score(
    State(app): State<App>,
    Path(reference): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let at_unix = unix_now();
    let parsed = parse_json(&body)?;
    let served = app.model(&reference).await?;
    let (applications, list) = rows::applications(&parsed)?;
    let cells = rows::cells(&applications, &served.artifact)?;
    let width = served.artifact.input_columns().len();
    let rows: Vec<&[Cell<'_>]> = (0..applications.len())
        .map(|i| &cells[i * width..(i + 1) * width])
        .collect();
    let mut scored: Vec<(f64, Vec<Reason>, &Served, Option<String>)> = rows
        .iter()
        .map(|&row| {
            let score = served.artifact.score_row(row)?;
            Ok((
                score,
                served.artifact.explain_row(row, REASONS)?,
                &served,
                None,
            ))
        })
        .collect::<Result<_, ApiError>>()?;
    // Applications too unusual for this model go to the configured fallback.
    let fallback_model;
    if let Some(fallback) = &app.config.fallback {
        let unusual: Vec<Option<String>> = rows
            .iter()
            .map(|&row| {
                served
                    .artifact
                    .unusual_row(row, fallback.max_missing_share, fallback.range_factor)
            })
            .collect();
        if unusual.iter().any(Option::is_some) {
            fallback_model = app.model(&fallback.model).await?;
            if fallback_model.label != served.label {
                let other = &fallback_model;
                let other_cells = rows::cells(&applications, &other.artifact)?;
                let other_width = other.artifact.input_columns().len();
                for (row, why) in unusual.into_iter().enumerate() {
                    if why.is_some() {
                        let cells = &other_cells[row * other_width..(row + 1) * other_width];
                        let score = other.artifact.score_row(cells)?;
                        let reasons = other.artifact.explain_row(cells, REASONS)?;
                        scored[row] = (score, reasons, other, why);
                    }
                }
            }
        }
    }
    let scores: Vec<f64> = scored.iter().map(|s| s.0).collect();
    app.metrics.observe_scores(&served.label, &scores);
    // Each answer is serialized once: it is the response (or one of its
    // results) and the request log's output.
    let results: Vec<(String, String)> = scored
        .iter()
        .map(|(score, reasons, model, why)| {
            let request_id = uuid::Uuid::now_v7().to_string();
            let answer = serde_json::to_string(&Scored {
                score: *score,
                decision: decision(*score, model.artifact.threshold()),
                reasons,
                model: &model.label,
                request_id: &request_id,
                fallback: why.as_deref(),
            })
            .map_err(ApiError::internal)?;
            Ok((request_id, answer))
        })
        .collect::<Result<_, ApiError>>()?;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    for (((_, fields), (request_id, answer)), (_, _, model, _)) in
        applications.iter().zip(&results).zip(&scored)
    {
        let input = if list {
            Cow::Owned(serde_json::to_string(fields).map_err(ApiError::internal)?)
        } else {
            // The body is the application, as sent (JSON is UTF-8).
            String::from_utf8_lossy(&body)
        };
        app.log.push(&LogEntry {
            request_id,
            at_unix,
            route: "/v1/models/{name}/score",
            model: &model.label,
            input: &input,
            output: answer,
            latency_ms,
        });
    }
    let answer = if list {
        let joined: Vec<&str> = results.iter().map(|(_, a)| a.as_str()).collect();
        format!("{{\"results\":[{}]}}", joined.join(","))
    } else {
        results
            .into_iter()
            .next()
            .map_or_else(|| "null".into(), |(_, a)| a)
    };
    let mut response = ([(header::CONTENT_TYPE, "application/json")], answer).into_response();
    response
        .extensions_mut()
        .insert(ModelLabel(served.label.clone()));
    Ok(response)
}

/// A version as the API shows it (no server paths).
#[derive(Serialize)]
struct VersionView {
    name: String,
    version: i64,
    algorithm: String,
    aliases: Vec<String>,
    metrics: Value,
    params: Value,
    cv_auc: Option<f64>,
    trained_on: Vec<i64>,
    created_at: String,
}

impl From<VersionRecord> for VersionView {
    fn from(v: VersionRecord) -> VersionView {
        VersionView {
            name: v.name,
            version: v.version,
            algorithm: v.algorithm,
            aliases: v.aliases,
            metrics: v.metrics,
            params: v.params,
            cv_auc: v.cv_auc,
            trained_on: v.trained_on,
            created_at: v.created_at,
        }
    }
}

/// `GET /v1/models`: each model's latest version and where its aliases point.
pub(crate) async fn models(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let versions = app.db(|c| c.versions(None)).await?;
    let mut by_name: BTreeMap<String, (BTreeMap<String, i64>, Option<VersionRecord>)> =
        BTreeMap::new();
    for v in versions {
        let entry = by_name.entry(v.name.clone()).or_default();
        for alias in &v.aliases {
            entry.0.insert(alias.clone(), v.version);
        }
        // Versions come oldest first, so the last one seen is the latest.
        entry.1 = Some(v);
    }
    let models: Vec<Value> = by_name
        .into_iter()
        .filter_map(|(name, (aliases, latest))| {
            latest.map(|latest| {
                json!({"name": name, "aliases": aliases, "latest": VersionView::from(latest)})
            })
        })
        .collect();
    Ok(Json(json!({ "models": models })))
}

/// `GET /v1/models/{name}/versions`
pub(crate) async fn versions(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let owned = name.clone();
    let versions = app.db(move |c| c.versions(Some(&owned))).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("no model called `{name}`")));
    }
    let versions: Vec<VersionView> = versions.into_iter().map(VersionView::from).collect();
    Ok(Json(json!({ "name": name, "versions": versions })))
}

/// `PUT /v1/models/{name}/aliases/{alias}` with `{"version": N}`.
pub(crate) async fn set_alias(
    State(app): State<App>,
    Path((name, alias)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    // A numeric alias would be shadowed by the version of that number.
    let valid = !alias.is_empty()
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && alias.parse::<i64>().is_err();
    if !valid {
        return Err(ApiError::bad_request(format!(
            "alias `{alias}` must be letters, digits, `_` or `-`, and not a number"
        )));
    }
    let body = parse_json(&body)?;
    let version = body.get("version").ok_or_else(|| {
        ApiError::invalid("$.version", "missing: the version to point the alias at")
    })?;
    let version = version.as_i64().ok_or_else(|| {
        ApiError::invalid(
            "$.version",
            format!("expected a version number, got {}", shown(version)),
        )
    })?;
    let (n, a) = (name.clone(), alias.clone());
    app.db(move |c| c.set_alias(&n, &a, version)).await?;
    app.forget_resolutions();
    Ok(Json(
        json!({"name": name, "alias": alias, "version": version}),
    ))
}

/// `POST /v1/outcomes` with `{"outcomes": [{"request_id": ..., "outcome": 0|1}]}`.
pub(crate) async fn outcomes(State(app): State<App>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = parse_json(&body)?;
    let list = body
        .get("outcomes")
        .ok_or_else(|| ApiError::invalid("$.outcomes", "missing: the list of outcomes"))?;
    let Value::Array(items) = list else {
        return Err(ApiError::invalid(
            "$.outcomes",
            format!("expected a list, got {}", shown(list)),
        ));
    };
    let outcomes = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("$.outcomes[{i}]");
            let id = match item.get("request_id") {
                Some(Value::String(id)) if !id.is_empty() => id.clone(),
                Some(other) => {
                    return Err(ApiError::invalid(
                        format!("{path}.request_id"),
                        format!("expected a request id (a string), got {}", shown(other)),
                    ));
                }
                None => return Err(ApiError::invalid(format!("{path}.request_id"), "missing")),
            };
            let outcome = match item.get("outcome") {
                Some(v) if v.as_u64() == Some(0) => 0,
                Some(v) if v.as_u64() == Some(1) => 1,
                Some(other) => {
                    return Err(ApiError::invalid(
                        format!("{path}.outcome"),
                        format!("expected 0 (repaid) or 1 (defaulted), got {}", shown(other)),
                    ));
                }
                None => return Err(ApiError::invalid(format!("{path}.outcome"), "missing")),
            };
            Ok((id, outcome))
        })
        .collect::<Result<Vec<(String, u8)>, ApiError>>()?;
    let stored = outcomes.len();
    app.db(move |c| c.record_outcomes(&outcomes)).await?;
    Ok(Json(json!({ "stored": stored })))
}

/// `POST /v1/batches`: a CSV file for the directory source, picked up by
/// the next `kaskad update`.
pub(crate) async fn batches(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"))
        });
    if !csv {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a batch is a CSV file: send it with `Content-Type: text/csv`",
        ));
    }
    let Some(inbox) = app.config.inbox.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this home's data source is a file, not a directory, so it takes no pushed batches; \
             re-run `kaskad init --dataset DIR` with a directory to accept them",
        ));
    };
    let frame = kaskad_core::read_csv_reader(&body[..], std::path::Path::new("batch"), None)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let target = &app.config.target;
    if frame.column(target).is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the batch has no target column `{target}`"),
        ));
    }
    // The directory source takes files in name order: a time-stamped name
    // puts pushed batches in arrival order.
    let name = format!(
        "api-{:013}-{}.csv",
        (unix_now() * 1e3) as u64,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let file = name.clone();
    tokio::task::spawn_blocking(move || write_atomic(&inbox, &file, &body))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"file": name, "rows": frame.n_rows(), "columns": frame.n_cols()})),
    )
        .into_response())
}

/// Writes `dir/name` through a hidden temporary file that the source does
/// not list, synced and renamed, so `update` never reads half a batch.
fn write_atomic(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = fs_err::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs_err::rename(&tmp, dir.join(name))
}
