//! Prometheus metrics, all named `kaskad_…`: requests and latency per route
//! and model, errors per route and status, the distribution of scores per
//! model, cascade runs and their modules (count by outcome, latency), and
//! the request log's throughput and losses.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::app::App;

/// The `Content-Type` of `GET /metrics`: Prometheus text format 0.0.4.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    /// The route's pattern (`/v1/models/{name}/score`), so that paths with
    /// model names do not each make a series.
    route: String,
    /// `name@version` that answered, empty for routes that score nothing.
    model: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CascadeLabels {
    /// `name@version` of the cascade.
    cascade: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CascadeOutcomeLabels {
    cascade: String,
    /// ok, rejected (the request was malformed) or failed (a module).
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModuleLabels {
    cascade: String,
    module: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModuleOutcomeLabels {
    cascade: String,
    module: String,
    /// ok, fallback or failed; skipped modules are not counted.
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A handler that scored with a model says which, in the response's
/// extensions, for the route's labels.
#[derive(Debug, Clone)]
pub(crate) struct ModelLabel(pub String);

pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    errors: Family<ErrorLabels, Counter>,
    scores: HistogramFamily<ModelLabels>,
    cascade_requests: Family<CascadeOutcomeLabels, Counter>,
    cascade_latency: HistogramFamily<CascadeLabels>,
    module_requests: Family<ModuleOutcomeLabels, Counter>,
    module_latency: HistogramFamily<ModuleLabels>,
    pub log_written: Counter,
    pub log_dropped: Counter,
    pub log_failed: Counter,
    pub log_imported: Counter,
    pub log_pruned: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kaskad");
        let requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and model",
            requests.clone(),
        );
        // 0.1 ms to about 6.5 s: a single score takes well under a
        // millisecond, the request timeout is seconds.
        let latency: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 17)));
        registry.register_with_unit(
            "http_request_duration",
            "Time from request to response, by route and model",
            Unit::Seconds,
            latency.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "http_errors",
            "HTTP responses with status 400 or above, by route and status",
            errors.clone(),
        );
        let scores: HistogramFamily<ModelLabels> =
            Family::new_with_constructor(|| Histogram::new(linear_buckets(0.05, 0.05, 20)));
        registry.register(
            "score_probability",
            "Scores (probability of default) returned, by model",
            scores.clone(),
        );
        let cascade_requests = Family::<CascadeOutcomeLabels, Counter>::default();
        registry.register(
            "cascade_requests",
            "Cascade runs, by cascade and outcome",
            cascade_requests.clone(),
        );
        let cascade_latency: HistogramFamily<CascadeLabels> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 17)));
        registry.register_with_unit(
            "cascade_latency",
            "Time to run a cascade, by cascade",
            Unit::Seconds,
            cascade_latency.clone(),
        );
        let module_requests = Family::<ModuleOutcomeLabels, Counter>::default();
        registry.register(
            "module_requests",
            "Cascade modules run, by cascade, module and outcome",
            module_requests.clone(),
        );
        let module_latency: HistogramFamily<ModuleLabels> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 17)));
        registry.register_with_unit(
            "module_latency",
            "Time a cascade module took (its timeout at most), by cascade and module",
            Unit::Seconds,
            module_latency.clone(),
        );
        let log_written = Counter::default();
        registry.register(
            "request_log_written",
            "Request-log entries written to a segment file (imported into the catalog later)",
            log_written.clone(),
        );
        let log_dropped = Counter::default();
        registry.register(
            "request_log_dropped",
            "Request-log entries dropped because the queue was full",
            log_dropped.clone(),
        );
        let log_failed = Counter::default();
        registry.register(
            "request_log_failed",
            "Request-log entries lost because writing them to a segment file failed",
            log_failed.clone(),
        );
        let log_imported = Counter::default();
        registry.register(
            "request_log_imported",
            "Request-log entries imported from segment files into the catalog",
            log_imported.clone(),
        );
        let log_pruned = Counter::default();
        registry.register(
            "request_log_pruned",
            "Request-log entries deleted from the catalog, older than the retention",
            log_pruned.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            errors,
            scores,
            cascade_requests,
            cascade_latency,
            module_requests,
            module_latency,
            log_written,
            log_dropped,
            log_imported,
            log_pruned,
            log_failed,
        }
    }

    pub(crate) fn observe_scores(&self, model: &str, scores: &[f64]) {
        let histogram = self.scores.get_or_create(&ModelLabels {
            model: model.to_string(),
        });
        for &s in scores {
            histogram.observe(s);
        }
    }

    /// One cascade run; the latency only when the cascade ran.
    pub(crate) fn observe_cascade(
        &self,
        cascade: &str,
        outcome: &'static str,
        seconds: Option<f64>,
    ) {
        self.cascade_requests
            .get_or_create(&CascadeOutcomeLabels {
                cascade: cascade.to_string(),
                outcome,
            })
            .inc();
        if let Some(seconds) = seconds {
            self.cascade_latency
                .get_or_create(&CascadeLabels {
                    cascade: cascade.to_string(),
                })
                .observe(seconds);
        }
    }

    /// One module of a cascade run; the latency when it is known.
    pub(crate) fn observe_module(
        &self,
        cascade: &str,
        module: &str,
        outcome: &'static str,
        seconds: Option<f64>,
    ) {
        self.module_requests
            .get_or_create(&ModuleOutcomeLabels {
                cascade: cascade.to_string(),
                module: module.to_string(),
                outcome,
            })
            .inc();
        if let Some(seconds) = seconds {
            self.module_latency
                .get_or_create(&ModuleLabels {
                    cascade: cascade.to_string(),
                    module: module.to_string(),
                })
                .observe(seconds);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Counts and times every request, outermost, so that timeouts and
/// rejections by other layers are counted too.
pub(crate) async fn track(State(app): State<App>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RouteLabels {
        route,
        model: response
            .extensions()
            .get::<ModelLabel>()
            .map(|m| m.0.clone())
            .unwrap_or_default(),
    };
    app.metrics.requests.get_or_create(&labels).inc();
    app.metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        app.metrics
            .errors
            .get_or_create(&ErrorLabels {
                route: labels.route,
                status: status.as_u16(),
            })
            .inc();
    }
    response
}
