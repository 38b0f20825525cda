//! Stage 6 over HTTP: `kaskad serve`.
//!
//! `kaskad-serve` owns the HTTP API of a home: scoring registered models
//! (`/v1/models/{name}/score`), cascades of models (`/v1/cascades`: a
//! versioned catalog and `/v1/cascades/{name}/score`; the engine lives in
//! `kaskad-cascade`, this crate scores its modules with [`CascadeScorer`]),
//! the registry (versions, aliases), outcomes, pushed batches, the Open
//! Inference Protocol (`/v2`, see [`oip`]'s docs) for standard clients,
//! probes and Prometheus metrics. It is a thin adapter: the catalog and the
//! models live in `kaskad-registry`, and this crate parses requests, calls
//! them, and maps every failure to a JSON error (`{"error": ..., "path":
//! ...}`) in one place ([`ApiError`]).
//!
//! How it behaves under load and change:
//! - **Inputs**: an application is a JSON object of raw column values
//!   (numbers, or strings that parse as numbers, for numeric columns;
//!   strings for categories; `null` for missing). A column left out is a
//!   missing value for that application, imputed as an empty CSV cell would
//!   be; a key the model does not read is rejected (422), so a misspelt
//!   column is not silently scored as missing.
//! - **Auth**: every `/v1` and `/v2` route takes `Authorization: Bearer KEY`;
//!   keys carry a role (admin, scorer, viewer) and are stored hashed.
//! - **Hot reload**: `{name}` means its champion, `name@alias` and
//!   `name@VERSION` another version; a resolution older than
//!   [`ServeConfig::alias_ttl`] (1 s) is asked again by one background task
//!   while requests go on with the last answer, so a champion promoted by
//!   `kaskad update` in another process is served about a second later
//!   (plus the time to load its artifact), without a restart, and no
//!   request waits for the catalog. Loaded artifacts stay in memory by
//!   `name@version`.
//! - **Cascades**: stored only when they compile (422 lists every error
//!   with its JSON path); run by name (latest version, re-checked like an
//!   alias) or `name@VERSION`. A malformed request is 422, a failed module
//!   502 and a module timeout 504, each naming the module.
//! - **Request log**: scored applications are queued (bounded), appended
//!   to segment files and imported into the catalog's `requests` table in
//!   large transactions after a pause in the traffic
//!   ([`ServeConfig::log_import_after_pause`], 1 s) or every
//!   [`ServeConfig::log_import_every`] (60 s), at shutdown, and before the
//!   A/B report reads it (a cascade run is one
//!   entry: the cascade's `name@version` as its model, every module's
//!   result in its output); a full queue drops entries and counts them in
//!   `kaskad_request_log_dropped_total` rather than slowing scoring. What
//!   a kill loses is said in the `request_log` module. Entries older than
//!   [`ServeConfig::log_retention`] (none by default) are deleted.
//! - **Limits**: bodies over [`ServeConfig::body_limit`] get 413, requests
//!   slower than [`ServeConfig::timeout`] get 503; on SIGTERM or ctrl-c the
//!   server stops accepting and finishes the requests in flight.
//!
//! ```no_run
//! # async fn run() -> Result<(), kaskad_serve::ServeError> {
//! use kaskad_serve::{ServeConfig, serve};
//! let config = ServeConfig::new("home/kaskad.db".into(), "default_risk".into(), "Status".into());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(config, listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod ab;
mod app;
mod auth;
mod cascades;
mod error;
mod metrics;
mod models;
pub mod oip;
mod refreshing;
mod request_log;
mod rows;
mod scorer;
mod v1;

use std::future::Future;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use kaskad_registry::Catalog;
use serde_json::{Value, json};

pub use ab::{CASCADE_ROUTE, ab_report};
use app::App;
pub use app::{Fallback, ServeConfig};
pub use auth::{NewKey, hash_key, new_key};
pub use cascades::{CascadeProblem, cascade_answer, compile_cascade, parse_cascade_reference};
pub use error::{ApiError, ServeError};
pub use models::{ModelStore, Served};
pub use scorer::CascadeScorer;

use auth::{Access, require};
use metrics::Metrics;
use request_log::RequestLog;

/// Serves `config`'s home on `listener` until `shutdown` completes, then
/// finishes the requests in flight and flushes the request log.
pub async fn serve(
    config: ServeConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let catalog = Catalog::open(&config.db_path)?;
    let metrics = Metrics::new();
    let (log, imported) = RequestLog::start(&config, &metrics)?;
    let app = App::new(config, catalog, metrics, log)?;
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await?;
    // Every handler is done and the router (with the log's sender) dropped,
    // so the writer writes what is queued and the importer takes it in; a
    // wedged disk must not keep the process alive forever, and what is not
    // imported by then stays in its segment for the next start.
    let _ = tokio::time::timeout(Duration::from_secs(10), imported).await;
    Ok(())
}

/// The whole API for `app`.
fn router(app: App) -> Router {
    let guarded = |access: Access, routes: Router<App>| {
        routes.route_layer(from_fn_with_state((app.clone(), access), require))
    };
    let read = Router::new()
        .route("/v1/models", get(v1::models))
        .route("/v1/cascades", get(cascades::list))
        .route("/v1/cascades/{name}", get(cascades::show))
        .route("/v1/cascades/{name}/ab", get(ab::ab))
        .route("/v1/models/{name}/versions", get(v1::versions))
        .route("/v2", get(oip::server_metadata))
        .route("/v2/health/live", get(oip::live))
        .route("/v2/health/ready", get(oip::ready))
        .route("/v2/models/{name}", get(oip::metadata))
        .route("/v2/models/{name}/ready", get(oip::model_ready))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(oip::metadata_version),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(oip::model_version_ready),
        );
    let score = Router::new()
        .route("/v1/models/{name}/score", post(v1::score))
        .route("/v1/cascades/{name}/score", post(cascades::score))
        .route("/v2/models/{name}/infer", post(oip::infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(oip::infer_version),
        );
    let admin = Router::new()
        .route("/v1/models/{name}/aliases/{alias}", put(v1::set_alias))
        .route(
            "/v1/cascades/{name}",
            put(cascades::put).merge(delete(cascades::delete)),
        )
        .route("/v1/outcomes", post(v1::outcomes))
        .route("/v1/batches", post(v1::batches));
    let open = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics_text));
    let limits = (app.config.body_limit, app.config.timeout);
    Router::new()
        .merge(guarded(Access::Read, read))
        .merge(guarded(Access::Score, score))
        .merge(guarded(Access::Admin, admin))
        .merge(open)
        .fallback(no_route)
        .layer(from_fn_with_state(limits.0, json_errors))
        .layer(DefaultBodyLimit::max(limits.0))
        .layer(from_fn_with_state(limits.1, timeout))
        .layer(from_fn_with_state(app.clone(), metrics::track))
        .with_state(app)
}

async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// Ready when the default model's champion resolves and loads.
async fn ready(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let name = app.config.default_model.clone();
    let served = app.model(&name).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", e.message),
        )
    })?;
    Ok(Json(json!({"status": "ready", "model": served.label})))
}

async fn metrics_text(State(app): State<App>) -> Result<Response, ApiError> {
    let text = app.metrics.render().map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

/// Answers 503 when the request (its body included) takes longer than
/// `limit`; the work is dropped with the future.
async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than the server's limit of {} ms",
                limit.as_millis()
            ),
        )
        .into_response(),
    }
}

/// Turns the plain-text errors that axum's extractors and routing produce
/// (413, 405, 400 for a bad path) into the API's JSON errors.
async fn json_errors(State(body_limit): State<usize>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than the limit of {body_limit} bytes")
        }
        StatusCode::METHOD_NOT_ALLOWED => "this route does not take that method".to_string(),
        _ if text.is_empty() => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
        _ => text,
    };
    let mut response = ApiError::new(status, message).into_response();
    // Keep what the client needs beside the body, such as `Allow` on a 405.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}
