//! `kaskad summary`: the report, batch after batch, as one HTML file.

use std::process::ExitCode;

use anyhow::Context;
use kaskad_registry::{CandidateRecord, SearchRecord, request_log_dir};
use kaskad_report::{
    AbRow, BatchRow, DriftRow, InferenceRow, MetaFamilyRow, MetaView, QualityRow, RejectedRow,
    ReportData, RunRow, SearchRow, VersionRow, render_html,
};
use kaskad_train::Hyperparams;
use serde_json::Value;

use crate::cli::HomeArgs;
use crate::home::{Home, write_atomic};
use crate::meta_model;
use crate::pipeline::describe_params;

pub fn run(args: &HomeArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home);
    let options = home.options()?;
    let mut catalog = home.catalog()?;
    // Requests a server wrote to segments it has closed (or left behind when
    // killed) join the outcomes below; a running server's current segment
    // is at most its import interval old.
    catalog.import_request_log(&request_log_dir(&home.db_path()))?;
    let now = now_utc();
    let versions = catalog.versions(Some(&options.data.name))?;
    let mut data = ReportData {
        title: format!("kaskad summary: {}", options.data.name),
        generated_at: now.clone(),
        home: home.root.display().to_string(),
        model_name: options.data.name.clone(),
        champion: versions
            .iter()
            .find(|v| v.aliases.iter().any(|a| a == "champion"))
            .map(|v| format!("{}@{}", v.name, v.version)),
        batches: catalog.batches()?.into_iter().map(batch_row).collect(),
        rejected: catalog
            .rejected_inputs()?
            .into_iter()
            .map(|r| RejectedRow {
                origin: r.origin,
                rejected_at: r.rejected_at,
                error: r.error,
            })
            .collect(),
        versions: versions.into_iter().map(version_row).collect(),
        runs: catalog.runs()?.into_iter().map(run_row).collect(),
        inference: catalog
            .inferences()?
            .into_iter()
            .map(|i| InferenceRow {
                at: i.at,
                model: i.model,
                rows: i.rows,
                seconds: i.seconds,
                peak_rss_bytes: i.peak_rss_bytes,
            })
            .collect(),
        ab: Vec::new(),
        meta: meta_view(&catalog.searches()?),
    };
    for cascade in catalog.cascades()? {
        let runs = catalog.outputs_with_outcomes(kaskad_serve::CASCADE_ROUTE, &cascade.name)?;
        data.ab
            .extend(ab_rows(&kaskad_serve::ab_report(&cascade.name, &runs)));
    }
    let html = render_html(&data);
    let dir = home.reports_dir();
    fs_err::create_dir_all(&dir)?;
    let path = dir.join(format!("summary-{}.html", now.replace([':', '-'], "")));
    write_atomic(&path, html.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    outln!("{}", path.display())?;
    Ok(ExitCode::SUCCESS)
}

/// The rows of one cascade's A/B report (see `GET /v1/cascades/{name}/ab`).
fn ab_rows(report: &Value) -> Vec<AbRow> {
    let cascade = report["cascade"].as_str().unwrap_or_default();
    let mut rows = Vec::new();
    for split in report["splits"].as_array().into_iter().flatten() {
        for branch in split["branches"].as_array().into_iter().flatten() {
            rows.push(AbRow {
                cascade: cascade.to_string(),
                split: split["split"].as_str().unwrap_or_default().to_string(),
                branch: branch["branch"].as_u64().unwrap_or_default(),
                requests: branch["requests"].as_u64().unwrap_or_default(),
                default_rate: f(branch, "default_rate"),
                mean_score: branch["mean_score"].as_f64(),
                auc: branch["auc"].as_f64(),
                p_value: split["p_value"].as_f64(),
            });
        }
    }
    rows
}

/// The meta-model's record: every search judged, the latest per family.
fn meta_view(searches: &[SearchRecord]) -> MetaView {
    // `lr(c=0.1) onehot`; the stored JSON as it is if it no longer parses.
    let describe = |c: &CandidateRecord| {
        let params = serde_json::from_value::<Hyperparams>(c.params.clone())
            .map_or_else(|_| c.params.to_string(), |p| describe_params(&p));
        format!("{params} {}", c.variant)
    };
    let best_measured = |candidates: &mut dyn Iterator<Item = &CandidateRecord>| {
        candidates
            .filter(|c| c.cv_auc.is_some())
            .max_by(|a, b| a.cv_auc.unwrap_or(0.0).total_cmp(&b.cv_auc.unwrap_or(0.0)))
            .cloned()
    };
    let rows = searches
        .iter()
        .map(|s| {
            let accuracy = meta_model::accuracy(s);
            let best = best_measured(&mut s.candidates.iter());
            SearchRow {
                run_id: s.run_id,
                batch_id: s.batch_id,
                budget: s.budget,
                candidates: s.candidates.len(),
                evaluated: s.candidates.iter().filter(|c| c.evaluated).count(),
                compared: accuracy.as_ref().map_or(0, |a| a.compared),
                rank_correlation: accuracy.as_ref().and_then(|a| a.rank_correlation),
                top1_hit: accuracy.as_ref().map(|a| a.top1_hit),
                regret: accuracy.map(|a| a.regret),
                best: best.as_ref().map_or_else(String::new, describe),
                best_auc: best.and_then(|c| c.cv_auc),
            }
        })
        .collect();
    let mut latest: Vec<MetaFamilyRow> = Vec::new();
    if let Some(last) = searches.last() {
        for c in &last.candidates {
            if latest.iter().any(|r| r.family == c.family) {
                continue;
            }
            let family = || last.candidates.iter().filter(|x| x.family == c.family);
            // Candidates are stored in search order, so the family's first
            // one is its best estimate (or, with no estimate, its first tried).
            let measured = best_measured(&mut family());
            latest.push(MetaFamilyRow {
                family: c.family.clone(),
                predicted: describe(c),
                predicted_auc: c.predicted_auc,
                predicted_measured_auc: c.cv_auc,
                measured: measured.as_ref().map_or_else(String::new, &describe),
                measured_auc: measured.and_then(|m| m.cv_auc),
            });
        }
    }
    MetaView {
        searches: rows,
        latest,
    }
}

fn f(value: &Value, key: &str) -> f64 {
    value.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn batch_row(b: kaskad_registry::BatchRecord) -> BatchRow {
    let quality = b.quality.as_ref().map(|q| {
        let findings: Vec<&Value> = q
            .get("findings")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let count = |level: &str| {
            findings
                .iter()
                .filter(|x| x.get("level").and_then(Value::as_str) == Some(level))
                .count()
        };
        QualityRow {
            missing_cell_share: f(q, "missing_cell_share"),
            duplicate_rows: f(q, "duplicate_rows") as usize,
            dropped_rows: f(q, "dropped_rows") as usize,
            dropped_columns: q
                .get("dropped_columns")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            clipped_cells: f(q, "clipped_cells") as usize,
            warnings: count("warn"),
            failures: count("fail"),
            findings: findings
                .iter()
                .filter_map(|x| x.get("message").and_then(Value::as_str).map(str::to_string))
                .collect(),
        }
    });
    let drift = b.drift.as_ref().map(|d| DriftRow {
        max_psi: f(d, "max_psi"),
        drifted_columns: f(d, "drifted_columns") as usize,
        columns: d
            .get("columns")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c.get("column")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                            f(c, "psi"),
                            f(c, "p_value"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    });
    BatchRow {
        id: b.id,
        source: b.origin,
        rows: b.rows,
        columns: b.columns,
        time_range: b.time_range.map(|(a, z)| format!("{a} … {z}")),
        content_hash: b.content_hash,
        collected_at: b.collected_at,
        quality,
        drift,
    }
}

fn version_row(v: kaskad_registry::VersionRecord) -> VersionRow {
    let m = &v.metrics;
    VersionRow {
        version: v.version,
        algorithm: v.algorithm,
        mode: m
            .get("mode")
            .and_then(Value::as_str)
            .unwrap_or("full")
            .to_string(),
        variant: m
            .get("variant")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        // The metrics hold every column's IV, strongest first; a table cell
        // has room for the few that matter.
        strongest: m
            .get("information_values")
            .and_then(Value::as_array)
            .map(|all| {
                all.iter()
                    .take(3)
                    .map(|x| {
                        (
                            x.get("column")
                                .and_then(Value::as_str)
                                .unwrap_or("?")
                                .to_string(),
                            f(x, "iv"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        fairness: m
            .get("fairness")
            .and_then(Value::as_array)
            .map(|all| {
                all.iter()
                    .map(|x| {
                        format!(
                            "{} DPD {:.3} EOD {:.3}",
                            x.get("attribute").and_then(Value::as_str).unwrap_or("?"),
                            f(x, "demographic_parity_difference"),
                            f(x, "equalized_odds_difference")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default(),
        params: v.params.to_string(),
        auc: f(m, "auc"),
        gini: f(m, "gini"),
        ks: f(m, "ks"),
        log_loss: f(m, "log_loss"),
        brier: f(m, "brier"),
        precision: f(m, "precision"),
        recall: f(m, "recall"),
        f1: f(m, "f1"),
        cv_auc: v.cv_auc,
        calibration_error: m.get("calibration").and_then(Value::as_array).map(|bins| {
            let rows: f64 = bins.iter().map(|b| f(b, "count")).sum();
            bins.iter()
                .filter(|b| f(b, "count") > 0.0)
                .map(|b| f(b, "count") * (f(b, "mean_score") - f(b, "default_rate")).abs())
                .sum::<f64>()
                / rows.max(1.0)
        }),
        score_psi: m.get("score_psi").and_then(Value::as_f64),
        trained_on: v.trained_on,
        aliases: v.aliases,
        train_seconds: v.train_seconds,
        peak_rss_bytes: v.peak_rss_bytes,
        created_at: v.created_at,
    }
}

fn run_row(r: kaskad_registry::RunRecord) -> RunRow {
    RunRow {
        id: r.id,
        batch_id: r.batch_id,
        started_at: r.started_at,
        ok: r.ok,
        stages: r
            .stages
            .into_iter()
            .map(|s| (s.stage, s.ok, s.seconds, s.detail))
            .collect(),
        peak_rss_bytes: r.peak_rss_bytes,
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`, without a date crate.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
