//! The meta-model: from the searches of earlier batches, an estimate of
//! each candidate's CV AUC on the data of this one, which orders the search.
//!
//! A search's situation is summed up by a few meta-features of the data it
//! cross-validates on ([`META_FEATURES`]). Each is standardized over the
//! recorded searches and this one, so no unit dominates the distance. A
//! candidate (variant × hyperparameters) measured before is predicted by
//! kernel regression over the searches that measured it, shrunk towards
//! its running mean:
//!
//! ```text
//! w_b  = exp(-d_b² / 2),   d_b² = mean over meta-features of (z_b − z_now)²
//! pred = (Σ w_b · auc_b + K · mean_b auc_b) / (Σ w_b + K),   K = 1
//! ```
//!
//! Why this and not a fitted regressor: a home has a handful of searches
//! (one per full retraining), far too few to fit anything with parameters
//! per meta-feature. The kernel needs none; the shrinkage keeps one odd
//! batch from swinging the estimate when only a few searches resemble this
//! one (Σ w small), and lets similar searches dominate once there are
//! several. A candidate never measured has no estimate; [`search_order`]
//! decides where it goes.

use kaskad_core::Frame;
use kaskad_registry::{CandidateRecord, SearchRecord};
use serde_json::Value;

/// The meta-features, in vector order: natural log of the training rows,
/// feature columns, share of missing cells, share of positive labels, and
/// the largest PSI of the newest batch against the reference batch.
pub const META_FEATURES: [&str; 5] = [
    "log_rows",
    "columns",
    "missing_share",
    "positive_rate",
    "max_psi",
];

/// Weight of a candidate's running mean against the kernel estimate.
const SHRINKAGE: f64 = 1.0;

/// The meta-features of training rows `x` with labels `y`; `max_psi` is
/// the newest batch's drift (0 for the reference batch).
pub fn meta_features(x: &Frame, y: &[u8], max_psi: f64) -> Vec<(String, f64)> {
    let cells = x.n_rows() * x.n_cols();
    let missing: usize = x.columns().iter().map(|c| c.missing_count()).sum();
    let positives = y.iter().filter(|&&v| v == 1).count();
    let values = [
        (y.len().max(1) as f64).ln(),
        x.n_cols() as f64,
        missing as f64 / cells.max(1) as f64,
        positives as f64 / y.len().max(1) as f64,
        max_psi,
    ];
    META_FEATURES
        .iter()
        .zip(values)
        // A NaN (say, an undefined PSI) would make every distance NaN.
        .map(|(name, value)| {
            (
                name.to_string(),
                if value.is_finite() { value } else { 0.0 },
            )
        })
        .collect()
}

/// The estimated CV AUC of every candidate `(variant, params)` on data with
/// meta-features `now`; `None` for a candidate no earlier search measured.
pub fn predict(
    history: &[SearchRecord],
    now: &[(String, f64)],
    candidates: &[(String, Value)],
) -> Vec<Option<f64>> {
    let weights = similarities(history, now);
    candidates
        .iter()
        .map(|(variant, params)| {
            let measured: Vec<(f64, f64)> = history
                .iter()
                .zip(&weights)
                .filter_map(|(search, &w)| {
                    search
                        .candidates
                        .iter()
                        .find(|c| &c.variant == variant && &c.params == params)
                        .and_then(|c| c.cv_auc)
                        .map(|auc| (w, auc))
                })
                .collect();
            if measured.is_empty() {
                return None;
            }
            let mean = measured.iter().map(|(_, a)| a).sum::<f64>() / measured.len() as f64;
            let weight: f64 = measured.iter().map(|(w, _)| w).sum();
            let weighted: f64 = measured.iter().map(|(w, a)| w * a).sum();
            Some((weighted + SHRINKAGE * mean) / (weight + SHRINKAGE))
        })
        .collect()
}

/// The kernel weight of every past search against `now`.
fn similarities(history: &[SearchRecord], now: &[(String, f64)]) -> Vec<f64> {
    let value = |features: &[(String, f64)], name: &str| {
        features.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    };
    let mut squared = vec![0.0; history.len()];
    let mut used = 0usize;
    for (name, current) in now {
        let past: Vec<Option<f64>> = history
            .iter()
            .map(|s| value(&s.meta_features, name))
            .collect();
        let all: Vec<f64> = past.iter().flatten().copied().chain([*current]).collect();
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        let sd = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64).sqrt();
        // A meta-feature that never changed says nothing about similarity.
        if sd.is_nan() || sd <= 1e-12 {
            continue;
        }
        used += 1;
        for (d, p) in squared.iter_mut().zip(&past) {
            // A search recorded without this meta-feature sits at the mean.
            let z = p.map_or(0.0, |v| (v - mean) / sd);
            *d += (z - (current - mean) / sd).powi(2);
        }
    }
    squared
        .into_iter()
        .map(|d| (-d / used.max(1) as f64 / 2.0).exp())
        .collect()
}

/// The search order, given each candidate's estimate and its group (family
/// and variant). A candidate with an estimate ranks by it. One without
/// ranks by the best estimate in its group (an untried neighbour of a good
/// setting may be better still) and goes before the measured candidates it
/// ties with. In a group with no estimate at all, the first candidate in
/// grid order goes before everything and the rest after everything, so a
/// tight budget measures every family and variant once before refining
/// any. Remaining ties keep grid order.
pub fn search_order(predicted: &[Option<f64>], groups: &[String]) -> Vec<usize> {
    let group_best = |group: &String| {
        predicted
            .iter()
            .zip(groups)
            .filter(|(_, g)| *g == group)
            .filter_map(|(p, _)| *p)
            .max_by(f64::total_cmp)
    };
    // (tier, rank value, measured): tier 0 first of a new group, 1 ranked, 2 the rest.
    let keys: Vec<(u8, f64, bool)> = (0..predicted.len())
        .map(|i| match (predicted[i], group_best(&groups[i])) {
            (Some(estimate), _) => (1, estimate, true),
            (None, Some(best)) => (1, best, false),
            (None, None) if groups.iter().position(|g| *g == groups[i]) == Some(i) => {
                (0, 0.0, false)
            }
            (None, None) => (2, 0.0, false),
        })
        .collect();
    let mut order: Vec<usize> = (0..predicted.len()).collect();
    order.sort_by(|&a, &b| {
        let (ta, va, ma) = keys[a];
        let (tb, vb, mb) = keys[b];
        ta.cmp(&tb).then(vb.total_cmp(&va)).then(ma.cmp(&mb))
    });
    order
}

/// How well the meta-model ranked one search's evaluated candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct Accuracy {
    /// Candidates with both an estimate and a measured CV AUC.
    pub compared: usize,
    /// Spearman rank correlation of estimate and measurement; `None` with
    /// fewer than 2 candidates or no spread on either side.
    pub rank_correlation: Option<f64>,
    /// Whether the candidate estimated best was the best measured.
    pub top1_hit: bool,
    /// CV AUC lost by trusting the estimate: the best measured minus the
    /// measurement of the candidate estimated best (0 on a hit).
    pub regret: f64,
}

/// The meta-model's accuracy on `search`; `None` when it estimated none
/// of the candidates the search measured (the first search of a home).
pub fn accuracy(search: &SearchRecord) -> Option<Accuracy> {
    let pairs: Vec<(f64, f64)> = search
        .candidates
        .iter()
        .filter_map(|c: &CandidateRecord| c.predicted_auc.zip(c.cv_auc))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let best = |key: fn(&(f64, f64)) -> f64| {
        pairs
            .iter()
            .enumerate()
            .max_by(|a, b| key(a.1).total_cmp(&key(b.1)))
            .map(|(i, _)| i)
    };
    // `pairs` is not empty, so both exist.
    let chosen = pairs[best(|p| p.0).unwrap_or(0)].1;
    let best_measured = pairs[best(|p| p.1).unwrap_or(0)].1;
    let predicted: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let measured: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    Some(Accuracy {
        compared: pairs.len(),
        rank_correlation: pearson(&ranks(&predicted), &ranks(&measured)),
        top1_hit: chosen >= best_measured,
        regret: best_measured - chosen,
    })
}

/// Ranks from 1, ties sharing their mean rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    if a.len() < 2 {
        return None;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(
        features: &[(&str, f64)],
        measured: &[(&str, Option<f64>, Option<f64>)],
    ) -> SearchRecord {
        SearchRecord {
            run_id: 1,
            batch_id: None,
            meta_features: features.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            budget: 0,
            candidates: measured
                .iter()
                .map(|(name, predicted, cv)| CandidateRecord {
                    family: "lr".into(),
                    variant: "onehot".into(),
                    params: json!({"algorithm": "lr", "name": name}),
                    predicted_auc: *predicted,
                    evaluated: cv.is_some(),
                    cv_auc: *cv,
                    cv_auc_sd: None,
                    fit_seconds: 0.0,
                })
                .collect(),
        }
    }

    fn key(name: &str) -> (String, Value) {
        ("onehot".into(), json!({"algorithm": "lr", "name": name}))
    }

    #[test]
    fn similar_searches_weigh_more_and_unmeasured_candidates_have_no_estimate() {
        // Small data favoured `a`, large data favours `b`.
        let history = vec![
            record(
                &[("log_rows", 6.0)],
                &[("a", None, Some(0.80)), ("b", None, Some(0.70))],
            ),
            record(
                &[("log_rows", 9.0)],
                &[("a", None, Some(0.70)), ("b", None, Some(0.80))],
            ),
        ];
        let candidates = [key("a"), key("b"), key("c")];
        let large = predict(&history, &[("log_rows".into(), 9.0)], &candidates);
        let small = predict(&history, &[("log_rows".into(), 6.0)], &candidates);
        assert!(large[1].unwrap() > large[0].unwrap(), "{large:?}");
        assert!(small[0].unwrap() > small[1].unwrap(), "{small:?}");
        assert_eq!(large[2], None);
        // Shrinkage: never beyond the measured range, never all the way to one search.
        assert!(large[1].unwrap() < 0.80 && large[1].unwrap() > 0.75);
        let one_group = vec!["lr onehot".to_string(); 3];
        // `c` is untried: it ranks with its group's best, `b`, and before it.
        assert_eq!(search_order(&large, &one_group), vec![2, 1, 0]);
    }

    #[test]
    fn the_order_measures_every_group_once_then_refines_the_best() {
        let groups: Vec<String> = ["lr", "lr", "tree", "tree", "knn"]
            .iter()
            .map(|g| g.to_string())
            .collect();
        // Nothing measured: each group's first, then the rest, in grid order.
        assert_eq!(search_order(&[None; 5], &groups), vec![0, 2, 4, 1, 3]);
        // lr measured at 0.70, tree at 0.80, knn never: knn first, then the
        // untried tree beside the measured one, then lr.
        let predicted = [Some(0.70), None, Some(0.80), None, None];
        assert_eq!(search_order(&predicted, &groups), vec![4, 3, 2, 1, 0]);
    }

    #[test]
    fn a_meta_feature_that_never_changes_is_ignored() {
        let history = vec![record(&[("columns", 20.0)], &[("a", None, Some(0.7))])];
        let w = similarities(&history, &[("columns".into(), 20.0)]);
        assert_eq!(w, vec![1.0]);
        let p = predict(&history, &[("columns".into(), 20.0)], &[key("a")]);
        assert!((p[0].unwrap() - 0.7).abs() < 1e-12);
    }

    #[test]
    fn accuracy_compares_estimates_with_measurements() {
        let perfect = record(
            &[],
            &[
                ("a", Some(0.9), Some(0.8)),
                ("b", Some(0.5), Some(0.6)),
                ("c", Some(0.7), Some(0.7)),
            ],
        );
        let a = accuracy(&perfect).unwrap();
        assert_eq!((a.compared, a.top1_hit, a.regret), (3, true, 0.0));
        assert!((a.rank_correlation.unwrap() - 1.0).abs() < 1e-12);
        let reversed = record(
            &[],
            &[
                ("a", Some(0.9), Some(0.6)),
                ("b", Some(0.5), Some(0.8)),
                ("c", Some(0.7), None),
            ],
        );
        let a = accuracy(&reversed).unwrap();
        assert_eq!((a.compared, a.top1_hit), (2, false));
        assert!((a.regret - 0.2).abs() < 1e-12);
        assert!((a.rank_correlation.unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(accuracy(&record(&[], &[("a", None, Some(0.7))])), None);
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), vec![2.5, 1.0, 2.5]);
    }
}
