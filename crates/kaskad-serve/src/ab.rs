//! `GET /v1/cascades/{name}/ab`: how the branches of every split did, from
//! the request log joined with the outcomes reported for it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use kaskad_analyze::chi_square_p_value;
use kaskad_validate::roc_auc;
use serde_json::{Value, json};

use crate::app::App;
use crate::cascades::parse_cascade_reference;
use crate::error::ApiError;

/// The route cascade runs are logged under.
pub const CASCADE_ROUTE: &str = "/v1/cascades/{name}/score";

/// Per split (by its JSON path) and branch: requests with an outcome, their
/// default rate, mean score and AUC; per split, a chi-square test of equal
/// default rates across branches (the two-proportion test for two).
pub(crate) async fn ab(
    State(app): State<App>,
    Path(reference): Path<String>,
) -> Result<Json<Value>, ApiError> {
    parse_cascade_reference(&reference).map_err(ApiError::not_found)?;
    let model = reference.clone();
    app.log.import_now().await;
    let runs = app
        .db(move |c| c.outputs_with_outcomes(CASCADE_ROUTE, &model))
        .await?;
    Ok(Json(ab_report(&reference, &runs)))
}

/// The A/B report of `cascade` from its logged outputs with outcomes.
pub fn ab_report(cascade: &str, runs: &[(String, u8)]) -> Value {
    // (split path, branch) → (scores, outcomes)
    let mut groups: BTreeMap<(String, u64), (Vec<f64>, Vec<u8>)> = BTreeMap::new();
    for (output, outcome) in runs {
        let Ok(output) = serde_json::from_str::<Value>(output) else {
            continue;
        };
        let score = output["output"]["score"].as_f64();
        for step in output["path"].as_array().into_iter().flatten() {
            let (Some(node), Some(branch)) =
                (step["node"].as_str(), step["taken"]["branch"].as_u64())
            else {
                continue;
            };
            if step["shadow"].as_bool() == Some(true) {
                continue;
            }
            let group = groups.entry((node.to_string(), branch)).or_default();
            if let Some(score) = score {
                group.0.push(score);
            }
            group.1.push(*outcome);
        }
    }
    let mut splits: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut tables: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
    for ((node, branch), (scores, outcomes)) in &groups {
        let n = outcomes.len();
        let defaults = outcomes.iter().filter(|&&o| o == 1).count();
        let auc =
            (scores.len() == n && defaults > 0 && defaults < n).then(|| roc_auc(outcomes, scores));
        splits.entry(node.clone()).or_default().push(json!({
            "branch": branch,
            "requests": n,
            "defaults": defaults,
            "default_rate": defaults as f64 / n.max(1) as f64,
            "mean_score": (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64),
            "auc": auc,
        }));
        tables.entry(node.clone()).or_default().push((n, defaults));
    }
    let splits: Vec<Value> = splits
        .into_iter()
        .map(|(node, branches)| {
            let (statistic, p_value) = homogeneity(&tables[&node]);
            json!({
                "split": node,
                "branches": branches,
                "test": "chi-square test of equal default rates",
                "statistic": statistic,
                "p_value": p_value,
            })
        })
        .collect();
    json!({
        "cascade": cascade,
        "requests_with_outcomes": runs.len(),
        "splits": splits,
    })
}
/// Pearson's chi-square of a branches × (default, no default) table;
/// `None` when fewer than two branches or one class have rows.
fn homogeneity(table: &[(usize, usize)]) -> (Option<f64>, Option<f64>) {
    let total: usize = table.iter().map(|(n, _)| n).sum();
    let defaults: usize = table.iter().map(|(_, d)| d).sum();
    let used = table.iter().filter(|(n, _)| *n > 0).count();
    if used < 2 || defaults == 0 || defaults == total {
        return (None, None);
    }
    let rate = defaults as f64 / total as f64;
    let statistic: f64 = table
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|&(n, d)| {
            let expected = [n as f64 * rate, n as f64 * (1.0 - rate)];
            let observed = [d as f64, (n - d) as f64];
            observed
                .iter()
                .zip(expected)
                .map(|(o, e)| (o - e).powi(2) / e)
                .sum::<f64>()
        })
        .sum();
    (
        Some(statistic),
        Some(chi_square_p_value(statistic, used - 1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homogeneity_matches_the_two_proportion_test() {
        // 100 of 1000 vs 150 of 1000; scipy.stats.chi2_contingency(
        // [[100, 900], [150, 850]], correction=False) gives 11.428571 and
        // p = 0.00072323, the two-sided two-proportion z-test (z = 3.3806).
        let (statistic, p) = homogeneity(&[(1000, 100), (1000, 150)]);
        assert!((statistic.unwrap() - 11.428571428571429).abs() < 1e-9);
        assert!((p.unwrap() - 0.0007232327164301936).abs() < 1e-7, "{p:?}");
        assert_eq!(homogeneity(&[(10, 0), (10, 0)]), (None, None));
        assert_eq!(homogeneity(&[(10, 3)]), (None, None));
    }
}
