//! The `/v1` API: scoring, the registry, outcomes and batches. Each handler
//! parses its input, calls the catalog or the model, and shapes the answer.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kaskad_registry::{Reason, RequestRecord, VersionRecord};
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::error::ApiError;
use crate::metrics::ModelLabel;
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
    let body = parse_json(&body)?;
    let served = app.model(&reference).await?;
    let (applications, list) = rows::applications(&body)?;
    let frame = rows::frame(&applications, served.artifact.input_columns())?;
    let (mut scores, mut reasons) = if frame.n_rows() == 0 {
        (Vec::new(), Vec::new())
    } else {
        (
            served.artifact.score(&frame)?,
            served.artifact.explain(&frame, REASONS)?,
        )
    };
    // Applications too unusual for this model go to the configured fallback.
    let mut labels = vec![served.label.clone(); scores.len()];
    let mut thresholds = vec![served.artifact.threshold(); scores.len()];
    let mut why: Vec<Option<String>> = vec![None; scores.len()];
    if let Some(fallback) = &app.config.fallback {
        let unusual =
            served
                .artifact
                .unusual_rows(&frame, fallback.max_missing_share, fallback.range_factor);
        if unusual.iter().any(Option::is_some) {
            let other = app.model(&fallback.model).await?;
            if other.label != served.label {
                let other_frame = rows::frame(&applications, other.artifact.input_columns())?;
                let other_scores = other.artifact.score(&other_frame)?;
                let mut other_reasons = other.artifact.explain(&other_frame, REASONS)?;
                for (row, reason) in unusual.into_iter().enumerate() {
                    if reason.is_some() {
                        scores[row] = other_scores[row];
                        reasons[row] = std::mem::take(&mut other_reasons[row]);
                        labels[row] = other.label.clone();
                        thresholds[row] = other.artifact.threshold();
                        why[row] = reason;
                    }
                }
            }
        }
    }
    app.metrics.observe_scores(&served.label, &scores);
    let ids: Vec<String> = scores
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let results: Vec<Value> = (0..scores.len())
        .map(|row| {
            json!(Scored {
                score: scores[row],
                decision: decision(scores[row], thresholds[row]),
                reasons: &reasons[row],
                model: &labels[row],
                request_id: &ids[row],
                fallback: why[row].as_deref(),
            })
        })
        .collect();
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    for ((((_, fields), result), id), label) in
        applications.iter().zip(&results).zip(ids).zip(labels)
    {
        app.log.push(RequestRecord {
            request_id: id,
            at_unix,
            route: "/v1/models/{name}/score".into(),
            model: label,
            input: Value::Object((*fields).clone()).to_string(),
            output: result.to_string(),
            latency_ms,
        });
    }
    let answer = if list {
        json!({ "results": results })
    } else {
        results.into_iter().next().unwrap_or(Value::Null)
    };
    let mut response = Json(answer).into_response();
    response.extensions_mut().insert(ModelLabel(served.label));
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
