//! One function per report section; each returns a complete `<section>`.

use crate::html::{NONE, escape, list, mib, num, number, opt_num, percent, status, table, text};
use crate::svg::{LineChart, Series, line_chart};
use crate::{AbRow, BatchRow, InferenceRow, MetaView, RejectedRow, ReportData, RunRow, VersionRow};

/// How many of the most drifted columns the drift table names.
const TOP_DRIFTED: usize = 3;

pub(crate) fn header(data: &ReportData, title: &str) -> String {
    let champion = data
        .champion
        .as_deref()
        .map_or_else(|| "none".to_string(), escape);
    let model = if data.model_name.is_empty() {
        NONE.to_string()
    } else {
        escape(&data.model_name)
    };
    let mut out = format!("<header><h1>{}</h1>", escape(title));
    out.push_str(&format!(
        r#"<p class="meta">Generated {} · home <code>{}</code></p>"#,
        escape(&data.generated_at),
        escape(&data.home)
    ));
    out.push_str(r#"<div class="summary">"#);
    for (label, value) in [
        ("Model", model),
        ("Champion", champion),
        ("Batches", data.batches.len().to_string()),
        ("Versions", data.versions.len().to_string()),
        ("Runs", data.runs.len().to_string()),
        (
            "Failed runs",
            data.runs.iter().filter(|r| !r.ok).count().to_string(),
        ),
        ("Inference calls", data.inference.len().to_string()),
    ] {
        out.push_str(&format!("<div>{label}<b>{value}</b></div>"));
    }
    out.push_str("</div></header>");
    out
}

pub(crate) fn quality(batches: &[BatchRow]) -> String {
    let mut out = open("quality", "Data quality by batch");
    if batches.is_empty() {
        return close(out, "No batches collected yet.");
    }
    let rows: Vec<Vec<String>> = batches
        .iter()
        .map(|b| {
            let mut row = vec![
                b.id.to_string(),
                format!("<code>{}</code>", escape(&b.source)),
                b.time_range
                    .as_deref()
                    .map_or_else(|| NONE.to_string(), escape),
                b.rows.to_string(),
                b.columns.to_string(),
            ];
            match &b.quality {
                Some(q) => {
                    let dropped: Vec<String> =
                        q.dropped_columns.iter().map(|c| escape(c)).collect();
                    let findings: Vec<String> = q.findings.iter().map(|f| escape(f)).collect();
                    row.extend([
                        percent(q.missing_cell_share),
                        q.duplicate_rows.to_string(),
                        q.dropped_rows.to_string(),
                        list(&dropped),
                        q.clipped_cells.to_string(),
                        format!("{} / {}", q.warnings, q.failures),
                        list(&findings),
                    ]);
                }
                None => row.extend(std::iter::repeat_n(NONE.to_string(), 7)),
            }
            row
        })
        .collect();
    out.push_str(&table(
        &[
            number("Batch"),
            text("Source"),
            text("Time range"),
            number("Rows"),
            number("Columns"),
            number("Missing cells"),
            number("Duplicates"),
            number("Dropped rows"),
            text("Dropped columns"),
            number("Clipped cells"),
            number("Warnings / failures"),
            text("Findings"),
        ],
        &rows,
    ));
    let missing = batches
        .iter()
        .map(|b| {
            b.quality
                .as_ref()
                .map_or(f64::NAN, |q| q.missing_cell_share * 100.0)
        })
        .collect();
    out.push_str(&figure(
        LineChart {
            y_label: "Missing cells, %",
            x_labels: batch_labels(batches),
            series: vec![Series {
                name: "Missing cells, %",
                values: missing,
            }],
        },
        "Share of missing cells per batch.",
    ));
    out.push_str("</section>");
    out
}

pub(crate) fn drift(batches: &[BatchRow]) -> String {
    let mut out = open("drift", "Drift by batch");
    if batches.iter().all(|b| b.drift.is_none()) {
        return close(
            out,
            "No drift checks recorded yet (the first batch is the reference).",
        );
    }
    let rows: Vec<Vec<String>> = batches
        .iter()
        .map(|b| match &b.drift {
            Some(d) => {
                let mut top: Vec<&(String, f64, f64)> = d.columns.iter().collect();
                top.sort_by(|a, b| b.1.total_cmp(&a.1));
                let top: Vec<String> = top
                    .iter()
                    .take(TOP_DRIFTED)
                    .map(|(name, psi, p)| {
                        format!("{} — PSI {}, p {}", escape(name), num(*psi, 3), num(*p, 4))
                    })
                    .collect();
                vec![
                    b.id.to_string(),
                    num(d.max_psi, 3),
                    d.drifted_columns.to_string(),
                    list(&top),
                ]
            }
            None => vec![
                b.id.to_string(),
                NONE.to_string(),
                NONE.to_string(),
                NONE.to_string(),
            ],
        })
        .collect();
    out.push_str(&table(
        &[
            number("Batch"),
            number("Max PSI"),
            number("Drifted columns"),
            text("Top columns by PSI"),
        ],
        &rows,
    ));
    let psi = batches
        .iter()
        .map(|b| b.drift.as_ref().map_or(f64::NAN, |d| d.max_psi))
        .collect();
    out.push_str(&figure(
        LineChart {
            y_label: "Max PSI",
            x_labels: batch_labels(batches),
            series: vec![Series { name: "Max PSI", values: psi }],
        },
        "Largest population stability index per batch; above 0.25 is conventionally a significant shift.",
    ));
    out.push_str("</section>");
    out
}

pub(crate) fn versions(versions: &[VersionRow]) -> String {
    let mut out = open("versions", "Model versions");
    if versions.is_empty() {
        return close(out, "No model versions registered yet.");
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            let batches: Vec<String> = v.trained_on.iter().map(i64::to_string).collect();
            let aliases: Vec<String> = v.aliases.iter().map(|a| escape(a)).collect();
            vec![
                format!(
                    "{}<br><span class=\"note\">{}</span>",
                    v.version,
                    escape(&v.created_at)
                ),
                format!(
                    "{}<br><span class=\"note\">{}</span>",
                    escape(&v.algorithm),
                    if v.variant.is_empty() {
                        escape(&v.mode)
                    } else {
                        format!("{} · {}", escape(&v.mode), escape(&v.variant))
                    }
                ),
                {
                    let mut cell = params(&v.params);
                    if !v.strongest.is_empty() {
                        let ivs: Vec<String> = v
                            .strongest
                            .iter()
                            .map(|(column, iv)| format!("{} {}", escape(column), num(*iv, 3)))
                            .collect();
                        cell += &format!(
                            "<br><span class=\"note\">strongest (IV): {}</span>",
                            ivs.join(", ")
                        );
                    }
                    if !v.fairness.is_empty() {
                        cell += &format!(
                            "<br><span class=\"note\">fairness: {}</span>",
                            escape(&v.fairness)
                        );
                    }
                    cell
                },
                num(v.auc, 4),
                num(v.gini, 4),
                num(v.ks, 4),
                num(v.log_loss, 4),
                num(v.brier, 4),
                format!(
                    "{} / {} / {}",
                    num(v.precision, 3),
                    num(v.recall, 3),
                    num(v.f1, 3)
                ),
                opt_num(v.cv_auc, 4),
                opt_num(v.calibration_error, 3),
                opt_num(v.score_psi, 3),
                if batches.is_empty() {
                    NONE.to_string()
                } else {
                    batches.join(", ")
                },
                if aliases.is_empty() {
                    NONE.to_string()
                } else {
                    aliases.join(", ")
                },
                num(v.train_seconds, 2),
                mib(v.peak_rss_bytes),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            number("Version"),
            text("Algorithm"),
            text("Hyperparameters"),
            number("AUC"),
            number("Gini"),
            number("KS"),
            number("Log-loss"),
            number("Brier"),
            number("P / R / F1"),
            number("CV AUC"),
            number("Calibration error"),
            number("Score PSI"),
            text("Trained on batches"),
            text("Aliases"),
            number("Train s"),
            number("Peak MB"),
        ],
        &rows,
    ));
    let mut series = vec![Series {
        name: "Hold-out AUC",
        values: versions.iter().map(|v| v.auc).collect(),
    }];
    if versions.iter().any(|v| v.cv_auc.is_some()) {
        let cv = versions
            .iter()
            .map(|v| v.cv_auc.unwrap_or(f64::NAN))
            .collect();
        series.push(Series {
            name: "CV AUC",
            values: cv,
        });
    }
    out.push_str(&figure(
        LineChart {
            y_label: "AUC",
            x_labels: versions.iter().map(|v| format!("v{}", v.version)).collect(),
            series,
        },
        "AUC per model version.",
    ));
    out.push_str("</section>");
    out
}

pub(crate) fn runs(runs: &[RunRow]) -> String {
    let mut out = open("runs", "Runs");
    if runs.is_empty() {
        return close(out, "No pipeline runs recorded yet.");
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let stages: Vec<String> = r
                .stages
                .iter()
                .map(|(stage, ok, seconds, detail)| {
                    let detail = if detail.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", escape(detail))
                    };
                    format!(
                        "<b>{}</b> {} {} s{detail}",
                        escape(stage),
                        status(*ok),
                        num(*seconds, 2)
                    )
                })
                .collect();
            vec![
                r.id.to_string(),
                r.batch_id
                    .map_or_else(|| NONE.to_string(), |b| b.to_string()),
                escape(&r.started_at),
                status(r.ok).to_string(),
                list(&stages),
                mib(r.peak_rss_bytes),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            number("Run"),
            number("Batch"),
            text("Started"),
            text("Result"),
            text("Stages"),
            number("Peak MB"),
        ],
        &rows,
    ));
    out.push_str("</section>");
    out
}

pub(crate) fn rejected(inputs: &[RejectedRow]) -> String {
    let mut out = open("rejected", "Rejected input");
    if inputs.is_empty() {
        return close(out, "No input was rejected.");
    }
    let rows: Vec<Vec<String>> = inputs
        .iter()
        .map(|r| {
            vec![
                escape(&r.rejected_at),
                escape(&r.origin),
                format!("<code>{}</code>", escape(&r.error)),
            ]
        })
        .collect();
    out.push_str(&table(&[text("At"), text("Input"), text("Error")], &rows));
    close(
        out,
        "Files stay where they are; stream entries are in the stream <code>&lt;stream&gt;:rejected</code>.",
    )
}

pub(crate) fn inference(calls: &[InferenceRow]) -> String {
    let mut out = open("inference", "Inference");
    if calls.is_empty() {
        return close(out, "No scoring calls recorded yet.");
    }
    let rows: Vec<Vec<String>> = calls
        .iter()
        .map(|c| {
            // A sub-resolution timing would give an infinite rate; show a dash.
            let rate = if c.seconds > 0.0 {
                num(c.rows as f64 / c.seconds, 0)
            } else {
                NONE.to_string()
            };
            vec![
                escape(&c.at),
                escape(&c.model),
                c.rows.to_string(),
                num(c.seconds, 3),
                rate,
                mib(c.peak_rss_bytes),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            text("At"),
            text("Model"),
            number("Rows"),
            number("Seconds"),
            number("Rows/s"),
            number("Peak MB"),
        ],
        &rows,
    ));
    out.push_str("</section>");
    out
}

pub(crate) fn ab(rows: &[AbRow]) -> String {
    let mut out = open("ab", "A/B results");
    if rows.is_empty() {
        return close(
            out,
            "No cascade split has reported outcomes yet (POST /v1/outcomes with the answers' request ids).",
        );
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                escape(&r.cascade),
                escape(&r.split),
                r.branch.to_string(),
                r.requests.to_string(),
                num(r.default_rate, 3),
                opt_num(r.mean_score, 3),
                opt_num(r.auc, 4),
                opt_num(r.p_value, 4),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            text("Cascade"),
            text("Split"),
            number("Branch"),
            number("Requests"),
            number("Default rate"),
            number("Mean score"),
            number("AUC"),
            number("p (equal default rates)"),
        ],
        &cells,
    ));
    out.push_str("</section>");
    out
}

pub(crate) fn meta(view: &MetaView) -> String {
    let mut out = open("meta", "Meta-learning: the search order");
    if view.searches.is_empty() {
        return close(
            out,
            "No hyperparameter search recorded yet (incremental updates do not search).",
        );
    }
    let judged: Vec<bool> = view.searches.iter().filter_map(|s| s.top1_hit).collect();
    let regrets: Vec<f64> = view.searches.iter().filter_map(|s| s.regret).collect();
    let correlations: Vec<f64> = view
        .searches
        .iter()
        .filter_map(|s| s.rank_correlation)
        .collect();
    out.push_str(&format!(
        r#"<p class="note">The meta-model estimates every candidate's CV AUC from earlier searches on similar data (kernel regression over standardized meta-features, shrunk towards the candidate's mean) and the search runs in that order, within <code>train.search_budget</code>. Top-1 hit rate: {} of {} searches{}{}.</p>"#,
        judged.iter().filter(|&&h| h).count(),
        judged.len(),
        if correlations.is_empty() {
            String::new()
        } else {
            format!(
                "; mean rank correlation {:.3}",
                correlations.iter().sum::<f64>() / correlations.len() as f64
            )
        },
        if regrets.is_empty() {
            String::new()
        } else {
            format!(
                "; mean CV AUC lost by taking the best estimate {:.4}",
                regrets.iter().sum::<f64>() / regrets.len() as f64
            )
        }
    ));
    if !view.latest.is_empty() {
        out.push_str("<p>Latest search, per family: the candidate estimated best, and the one measured best.</p>");
        let rows: Vec<Vec<String>> = view
            .latest
            .iter()
            .map(|r| {
                vec![
                    escape(&r.family),
                    format!("<code>{}</code>", escape(&r.predicted)),
                    opt_num(r.predicted_auc, 4),
                    r.predicted_measured_auc
                        .map_or_else(|| "skipped".to_string(), |a| num(a, 4)),
                    format!("<code>{}</code>", escape(&r.measured)),
                    opt_num(r.measured_auc, 4),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                text("Family"),
                text("Estimated best"),
                number("Estimate"),
                number("Its CV AUC"),
                text("Measured best"),
                number("CV AUC"),
            ],
            &rows,
        ));
    }
    let rows: Vec<Vec<String>> = view
        .searches
        .iter()
        .map(|s| {
            vec![
                s.run_id.to_string(),
                s.batch_id
                    .map_or_else(|| NONE.to_string(), |b| b.to_string()),
                format!(
                    "{} of {}{}",
                    s.evaluated,
                    s.candidates,
                    if s.budget == 0 {
                        String::new()
                    } else {
                        format!(" (budget {})", s.budget)
                    }
                ),
                s.compared.to_string(),
                opt_num(s.rank_correlation, 3),
                s.top1_hit.map_or_else(
                    || NONE.to_string(),
                    |h| if h { "yes" } else { "no" }.to_string(),
                ),
                opt_num(s.regret, 4),
                format!("<code>{}</code>", escape(&s.best)),
                opt_num(s.best_auc, 4),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            number("Run"),
            number("Batch"),
            number("Evaluated"),
            number("Compared"),
            number("Rank correlation"),
            text("Top-1 hit"),
            number("AUC lost"),
            text("Best measured"),
            number("CV AUC"),
        ],
        &rows,
    ));
    out.push_str("</section>");
    out
}

fn open(id: &str, heading: &str) -> String {
    format!(r#"<section id="{id}"><h2>{heading}</h2>"#)
}

fn close(mut out: String, note: &str) -> String {
    out.push_str(&format!(r#"<p class="note">{note}</p></section>"#));
    out
}

fn figure(chart: LineChart, caption: &str) -> String {
    line_chart(&chart).map_or_else(String::new, |svg| {
        format!("<figure>{svg}<figcaption>{caption}</figcaption></figure>")
    })
}

fn batch_labels(batches: &[BatchRow]) -> Vec<String> {
    batches.iter().map(|b| format!("#{}", b.id)).collect()
}

/// Hyperparameters as `key = value` lines when the JSON is an object, else
/// the raw text, so a malformed record is still visible rather than hidden.
fn params(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) if !map.is_empty() => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("<code>{} = {}</code>", escape(k), escape(&v.to_string())))
                .collect();
            list(&items)
        }
        _ if json.trim().is_empty() || json.trim() == "{}" => NONE.to_string(),
        _ => format!("<code>{}</code>", escape(json)),
    }
}
