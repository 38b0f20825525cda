//! Discrimination, calibration and thresholded metrics for a binary target.
//!
//! Everything here is written so that degenerate validation sets (one class,
//! no rows, tied scores) give finite, conventional values instead of NaN:
//! a report or a champion comparison must never be poisoned by a NaN.

use serde::{Deserialize, Serialize};

/// Scores are clipped to `[EPS, 1 - EPS]` before taking logarithms so a
/// confident wrong prediction costs a large but finite log-loss.
const EPS: f64 = 1e-15;

/// All metrics of one scored sample at one decision threshold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub rows: usize,
    pub positives: usize,
    pub auc: f64,
    pub gini: f64,
    pub ks: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub accuracy: f64,
}

/// One row of a calibration table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub mean_score: f64,
    pub default_rate: f64,
}

/// Evaluates scores against labels.
///
/// `y` is 0/1 (any non-zero counts as 1) and `score` is the probability of 1.
/// AUC handles tied scores by average ranks (Mann–Whitney), `gini = 2·auc − 1`,
/// KS is the largest `|TPR − FPR|` over all thresholds, log-loss clips scores
/// to `[1e-15, 1 − 1e-15]`, and a row is predicted positive when
/// `score >= threshold`. With a single class AUC is 0.5 and KS is 0;
/// precision with no predicted positives is 0 (likewise recall and F1).
///
/// # Panics
/// If `y` and `score` differ in length: that is a caller bug, not data.
pub fn evaluate(y: &[u8], score: &[f64], threshold: f64) -> Metrics {
    check_lengths(y, score);
    let rows = y.len();
    let positives = y.iter().filter(|&&v| v != 0).count();
    let auc = roc_auc(y, score);

    let (mut tp, mut fp, mut tn, mut fn_) = (0usize, 0usize, 0usize, 0usize);
    let (mut log_loss, mut brier) = (0.0, 0.0);
    for (&label, &s) in y.iter().zip(score) {
        let positive = label != 0;
        let p = s.clamp(EPS, 1.0 - EPS);
        log_loss -= if positive { p.ln() } else { (1.0 - p).ln() };
        let target = if positive { 1.0 } else { 0.0 };
        brier += (s - target) * (s - target);
        match (positive, s >= threshold) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (false, false) => tn += 1,
            (true, false) => fn_ += 1,
        }
    }

    Metrics {
        rows,
        positives,
        auc,
        gini: 2.0 * auc - 1.0,
        ks: ks_statistic(y, score),
        log_loss: ratio_f(log_loss, rows),
        brier: ratio_f(brier, rows),
        threshold,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        // 2tp / (2tp + fp + fn) equals 2PR / (P + R) and stays defined at zero.
        f1: ratio(2 * tp, 2 * tp + fp + fn_),
        accuracy: ratio(tp + tn, rows),
    }
}

/// Area under the ROC curve via the Mann–Whitney U statistic with average
/// ranks for ties. Returns 0.5 when either class is absent.
///
/// # Panics
/// If `y` and `score` differ in length.
pub fn roc_auc(y: &[u8], score: &[f64]) -> f64 {
    check_lengths(y, score);
    let n_pos = y.iter().filter(|&&v| v != 0).count();
    let n_neg = y.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return 0.5;
    }
    let order = sorted_order(score, false);
    let mut pos_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let end = tie_group_end(&order, score, start);
        // 1-based ranks start+1 ..= end share their average.
        let avg_rank = (start + 1 + end) as f64 / 2.0;
        let group_pos = order[start..end].iter().filter(|&&i| y[i] != 0).count();
        pos_rank_sum += avg_rank * group_pos as f64;
        start = end;
    }
    let n_pos = n_pos as f64;
    let u = pos_rank_sum - n_pos * (n_pos + 1.0) / 2.0;
    u / (n_pos * n_neg as f64)
}

/// Calibration table over `bins` equal-width bins of `[0, 1]`.
///
/// Scores outside `[0, 1]` fall into the end bins and 1.0 belongs to the last
/// bin. Every bin is returned, empty ones with zero count, mean and rate, so
/// tables from different models line up row by row. `bins == 0` gives none.
///
/// # Panics
/// If `y` and `score` differ in length.
pub fn calibration(y: &[u8], score: &[f64], bins: usize) -> Vec<CalibrationBin> {
    check_lengths(y, score);
    let mut table: Vec<CalibrationBin> = (0..bins)
        .map(|b| CalibrationBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            ..CalibrationBin::default()
        })
        .collect();
    if bins == 0 {
        return table;
    }
    for (&label, &s) in y.iter().zip(score) {
        // The float→usize cast saturates (NaN → 0), so no index can escape.
        let b = ((s * bins as f64).floor() as usize).min(bins - 1);
        let bin = &mut table[b];
        bin.count += 1;
        bin.mean_score += s;
        bin.default_rate += f64::from(u8::from(label != 0));
    }
    for bin in &mut table {
        bin.mean_score = ratio_f(bin.mean_score, bin.count);
        bin.default_rate = ratio_f(bin.default_rate, bin.count);
    }
    table
}

/// Kolmogorov–Smirnov statistic: walk thresholds from the highest score down,
/// moving a whole tie group at once (a threshold cannot split equal scores).
fn ks_statistic(y: &[u8], score: &[f64]) -> f64 {
    let n_pos = y.iter().filter(|&&v| v != 0).count();
    let n_neg = y.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return 0.0;
    }
    let order = sorted_order(score, true);
    let (mut tp, mut fp, mut best) = (0usize, 0usize, 0.0f64);
    let mut start = 0;
    while start < order.len() {
        let end = tie_group_end(&order, score, start);
        let group_pos = order[start..end].iter().filter(|&&i| y[i] != 0).count();
        tp += group_pos;
        fp += end - start - group_pos;
        let diff = tp as f64 / n_pos as f64 - fp as f64 / n_neg as f64;
        best = best.max(diff.abs());
        start = end;
    }
    best
}

/// Row indices sorted by score; `total_cmp` keeps NaN from panicking the sort.
fn sorted_order(score: &[f64], descending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..score.len()).collect();
    if descending {
        order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    } else {
        order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    }
    order
}

/// End (exclusive) of the run of equal scores starting at `start` in `order`.
fn tie_group_end(order: &[usize], score: &[f64], start: usize) -> usize {
    let value = score[order[start]];
    let mut end = start + 1;
    while end < order.len() && score[order[end]] == value {
        end += 1;
    }
    end
}

fn ratio(num: usize, den: usize) -> f64 {
    ratio_f(num as f64, den)
}

fn ratio_f(num: f64, den: usize) -> f64 {
    if den == 0 { 0.0 } else { num / den as f64 }
}

fn check_lengths(y: &[u8], score: &[f64]) {
    assert_eq!(
        y.len(),
        score.len(),
        "labels and scores must have the same length"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    // Reference numbers from scikit-learn 1.9.1:
    //   from sklearn.metrics import *; import numpy as np
    //   y = np.array(Y); s = np.array(S); p = (s >= 0.5).astype(int)
    //   fpr, tpr, _ = roc_curve(y, s)
    //   roc_auc_score(y, s), log_loss(y, s), brier_score_loss(y, s),
    //   precision_score(y, p, zero_division=0), recall_score(y, p), f1_score(y, p),
    //   accuracy_score(y, p), max(tpr - fpr)
    #[test]
    fn evaluate_matches_sklearn() {
        let y = [0, 0, 1, 1, 0, 1, 0, 1, 1, 0];
        let s = [0.1, 0.4, 0.35, 0.8, 0.2, 0.7, 0.6, 0.9, 0.55, 0.05];
        let m = evaluate(&y, &s, 0.5);
        assert_eq!((m.rows, m.positives), (10, 5));
        close(m.auc, 0.88);
        close(m.gini, 0.76);
        close(m.log_loss, 0.41397518531647987);
        close(m.brier, 0.13374999999999998);
        close(m.precision, 0.8);
        close(m.recall, 0.8);
        close(m.f1, 0.8);
        close(m.accuracy, 0.8);
        close(m.ks, 0.6000000000000001);
        close(m.threshold, 0.5);
    }

    #[test]
    fn evaluate_matches_sklearn_with_ties() {
        let y = [0, 1, 0, 1, 1, 0, 0, 1];
        let s = [0.3, 0.3, 0.5, 0.5, 0.8, 0.8, 0.1, 0.9];
        let m = evaluate(&y, &s, 0.5);
        close(m.auc, 0.71875);
        close(m.log_loss, 0.6237805755560653);
        close(m.brier, 0.22250000000000003);
        close(m.precision, 0.6);
        close(m.recall, 0.75);
        close(m.f1, 0.6666666666666666);
        close(m.accuracy, 0.625);
        close(m.ks, 0.25);
    }

    #[test]
    fn one_class_is_finite() {
        let m = evaluate(&[0, 0, 0], &[0.2, 0.9, 0.6], 0.5);
        assert_eq!((m.auc, m.gini, m.ks), (0.5, 0.0, 0.0));
        assert_eq!((m.precision, m.recall, m.f1), (0.0, 0.0, 0.0));
        assert!(m.log_loss.is_finite() && m.brier.is_finite());
        close(m.accuracy, 1.0 / 3.0);

        let m = evaluate(&[1, 1], &[0.0, 1.0], 0.5);
        assert_eq!((m.auc, m.ks), (0.5, 0.0));
        // Score 0 for a positive is clipped to 1e-15: large, not infinite.
        close(m.log_loss, -(1e-15f64).ln() / 2.0);
    }

    #[test]
    fn empty_input_is_all_zero_but_auc() {
        let m = evaluate(&[], &[], 0.5);
        assert_eq!(m.auc, 0.5);
        assert_eq!(
            (m.rows, m.log_loss, m.brier, m.accuracy),
            (0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn no_predicted_positives_gives_zero_precision() {
        let m = evaluate(&[0, 1], &[0.1, 0.2], 0.5);
        assert_eq!((m.precision, m.recall, m.f1), (0.0, 0.0, 0.0));
        assert_eq!(m.auc, 1.0);
    }

    #[test]
    fn all_tied_scores_give_half_auc() {
        assert_eq!(roc_auc(&[0, 1, 0, 1], &[0.4; 4]), 0.5);
        assert_eq!(evaluate(&[0, 1, 0, 1], &[0.4; 4], 0.5).ks, 0.0);
    }

    #[test]
    fn calibration_bins_scores() {
        let y = [0, 0, 1, 1, 1];
        let s = [0.1, 0.2, 0.6, 0.9, 1.0];
        let table = calibration(&y, &s, 2);
        assert_eq!(table.len(), 2);
        assert_eq!(
            (table[0].lower, table[0].upper, table[0].count),
            (0.0, 0.5, 2)
        );
        close(table[0].mean_score, 0.15);
        assert_eq!(table[0].default_rate, 0.0);
        assert_eq!(table[1].count, 3);
        close(table[1].mean_score, 2.5 / 3.0);
        assert_eq!(table[1].default_rate, 1.0);

        let sparse = calibration(&[1], &[0.05], 4);
        assert_eq!(
            sparse.iter().map(|b| b.count).collect::<Vec<_>>(),
            [1, 0, 0, 0]
        );
        assert_eq!(sparse[3].mean_score, 0.0);
        assert!(calibration(&y, &s, 0).is_empty());
    }

    #[test]
    #[should_panic(expected = "same length")]
    fn length_mismatch_panics() {
        roc_auc(&[0, 1], &[0.5]);
    }
}
