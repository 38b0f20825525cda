//! The self-contained HTML summary report of a kaskad home.
//!
//! `kaskad-report` owns the report's data model (plain structs the pipeline
//! fills from its registry: batches with their quality and drift results,
//! model versions, runs, inference calls) and its rendering into one HTML
//! file ([`render_html`]). The page carries its own CSS and hand-drawn inline
//! SVG charts and references nothing external, so it can be archived or
//! mailed to a model validator and still open the same way years later.
//!
//! ```
//! let html = kaskad_report::render_html(&kaskad_report::ReportData::default());
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! ```

mod html;
mod sections;
mod svg;

pub use html::escape;
use serde::{Deserialize, Serialize};

/// Everything the report shows; the pipeline fills it, [`render_html`] draws it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReportData {
    pub title: String,
    pub generated_at: String,
    /// The kaskad home directory the report describes.
    pub home: String,
    pub model_name: String,
    /// Champion as `"name@version"`, if one is aliased.
    pub champion: Option<String>,
    pub batches: Vec<BatchRow>,
    /// Inputs collect rejected and set aside, oldest first.
    #[serde(default)]
    pub rejected: Vec<RejectedRow>,
    pub versions: Vec<VersionRow>,
    pub runs: Vec<RunRow>,
    pub inference: Vec<InferenceRow>,
    /// A/B results of cascade splits, from reported outcomes.
    pub ab: Vec<AbRow>,
    /// The meta-model's view of the hyperparameter searches.
    #[serde(default)]
    pub meta: MetaView,
}

/// What the meta-model estimated and how that compared with what the
/// searches measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MetaView {
    /// Every search, oldest first.
    pub searches: Vec<SearchRow>,
    /// The latest search, per family.
    pub latest: Vec<MetaFamilyRow>,
}

/// One hyperparameter search, judged after the fact.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SearchRow {
    pub run_id: i64,
    pub batch_id: Option<i64>,
    /// Most candidates evaluated; 0 = all.
    pub budget: usize,
    pub candidates: usize,
    pub evaluated: usize,
    /// Candidates with both an estimate and a CV measurement.
    pub compared: usize,
    /// Spearman correlation of estimated and measured CV AUC.
    pub rank_correlation: Option<f64>,
    /// Whether the candidate estimated best was the best measured; `None`
    /// when nothing was estimated (the first search).
    pub top1_hit: Option<bool>,
    /// CV AUC lost by trusting the estimate (best measured minus the
    /// measurement of the best estimate).
    pub regret: Option<f64>,
    /// The best measured candidate, as `family variant params`.
    pub best: String,
    pub best_auc: Option<f64>,
}

/// One family in the latest search: the candidate the meta-model put
/// first for it, and the one CV found best.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MetaFamilyRow {
    pub family: String,
    /// `variant params` of the family's best estimate.
    pub predicted: String,
    pub predicted_auc: Option<f64>,
    /// What CV measured for that candidate (`None`: skipped by the budget).
    pub predicted_measured_auc: Option<f64>,
    /// `variant params` of the family's best measurement.
    pub measured: String,
    pub measured_auc: Option<f64>,
}

/// One branch of one split of a cascade, judged on reported outcomes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AbRow {
    pub cascade: String,
    /// The split's JSON path in the cascade.
    pub split: String,
    pub branch: u64,
    pub requests: u64,
    pub default_rate: f64,
    pub mean_score: Option<f64>,
    pub auc: Option<f64>,
    /// Chi-square test of equal default rates across the split's branches.
    pub p_value: Option<f64>,
}

/// One collected data batch with the results of its checks.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BatchRow {
    pub id: i64,
    pub source: String,
    pub rows: usize,
    pub columns: usize,
    pub time_range: Option<String>,
    pub content_hash: String,
    pub collected_at: String,
    pub quality: Option<QualityRow>,
    pub drift: Option<DriftRow>,
}

/// Data-quality summary of one batch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QualityRow {
    pub missing_cell_share: f64,
    pub duplicate_rows: usize,
    pub dropped_rows: usize,
    pub dropped_columns: Vec<String>,
    pub clipped_cells: usize,
    pub warnings: usize,
    pub failures: usize,
    /// Finding messages, in the order the checks produced them.
    pub findings: Vec<String>,
}

/// Drift of one batch against the reference data.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DriftRow {
    pub max_psi: f64,
    pub drifted_columns: usize,
    /// `(column, psi, p-value)` for every compared column.
    pub columns: Vec<(String, f64, f64)>,
}

/// One registered model version and its hold-out metrics.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VersionRow {
    pub version: i64,
    pub algorithm: String,
    /// `full` (fitted from scratch) or `incremental` (updated from the
    /// previous version of its family).
    pub mode: String,
    /// The preprocessing variant (`onehot`, `ordinal`, `woe`); empty for
    /// versions registered before variants were searched.
    pub variant: String,
    /// The strongest predictors of a weight-of-evidence version:
    /// `(column, information value)`, strongest first; empty otherwise.
    pub strongest: Vec<(String, f64)>,
    /// Per sensitive column: demographic-parity and equalized-odds
    /// differences on the hold-out, as text; empty when none is configured.
    pub fairness: String,
    /// Chosen hyperparameters as JSON text.
    pub params: String,
    pub auc: f64,
    pub gini: f64,
    pub ks: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub cv_auc: Option<f64>,
    /// Expected calibration error on the hold-out: the row-weighted mean
    /// gap between mean score and default rate over the calibration bins.
    pub calibration_error: Option<f64>,
    /// PSI of the hold-out scores against the training scores.
    pub score_psi: Option<f64>,
    /// Ids of the batches the version was trained on.
    pub trained_on: Vec<i64>,
    pub aliases: Vec<String>,
    pub train_seconds: f64,
    pub peak_rss_bytes: u64,
    pub created_at: String,
}

/// An input collect rejected: a file left in place or a dead-lettered
/// stream entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RejectedRow {
    pub origin: String,
    pub rejected_at: String,
    pub error: String,
}

/// One pipeline run and the outcome of each of its stages.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunRow {
    pub id: i64,
    pub batch_id: Option<i64>,
    pub started_at: String,
    pub ok: bool,
    /// `(stage, ok, seconds, detail)` in execution order.
    pub stages: Vec<(String, bool, f64, String)>,
    pub peak_rss_bytes: u64,
}

/// One scoring (inference) call.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InferenceRow {
    pub at: String,
    /// The model that scored, as `"name@version"`.
    pub model: String,
    pub rows: usize,
    pub seconds: f64,
    pub peak_rss_bytes: u64,
}

/// Renders the whole report as one self-contained HTML document.
pub fn render_html(data: &ReportData) -> String {
    let title = if data.title.is_empty() {
        "kaskad report"
    } else {
        &data.title
    };
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#);
    out.push_str(&format!("<title>{}</title>", escape(title)));
    out.push_str(&format!("<style>{CSS}</style></head><body><main>"));
    out.push_str(&sections::header(data, title));
    out.push_str(&sections::quality(&data.batches));
    out.push_str(&sections::drift(&data.batches));
    out.push_str(&sections::rejected(&data.rejected));
    out.push_str(&sections::versions(&data.versions));
    out.push_str(&sections::runs(&data.runs));
    out.push_str(&sections::inference(&data.inference));
    out.push_str(&sections::ab(&data.ab));
    out.push_str(&sections::meta(&data.meta));
    out.push_str("</main></body></html>\n");
    out
}

/// Sober print-friendly styling: system fonts (nothing to download), thin
/// rules, right-aligned numbers, colour only for ok/failed.
const CSS: &str = "\
body{margin:0;background:#fafafa;color:#222;font:14px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}\
main{max-width:1200px;margin:0 auto;padding:24px 32px;background:#fff}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid #333}\
.meta{color:#555;margin:0 0 12px}.summary{display:flex;gap:24px;flex-wrap:wrap;margin:12px 0}\
.summary div{border:1px solid #ccc;padding:8px 14px;min-width:110px}.summary b{display:block;font-size:20px}\
table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:13px}\
th,td{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}\
th{background:#f0f0f0;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
tbody tr:nth-child(even){background:#f8f8f8}ul.cell{margin:0;padding-left:16px}\
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}\
.ok{color:#1a7f37;font-weight:600}.fail{color:#b3261e;font-weight:600}.note{color:#555;font-size:13px}\
figure{margin:8px 0 16px}figcaption{color:#555;font-size:13px}svg.chart{width:100%;max-width:720px;height:auto}\
svg .tick,svg .legend{font-size:11px;fill:#333}\
@media print{body{background:#fff}main{padding:0}h2{break-after:avoid}tr{break-inside:avoid}}";
