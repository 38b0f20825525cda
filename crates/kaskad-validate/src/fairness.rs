//! Group fairness of thresholded decisions, as fairlearn defines it.

use serde::{Deserialize, Serialize};

/// Decision rates of one group of a sensitive attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRates {
    pub group: String,
    pub rows: usize,
    /// Share predicted to default (declined).
    pub selection_rate: f64,
    /// Share of actual defaults predicted to default; `None` without any.
    pub true_positive_rate: Option<f64>,
    /// Share of actual non-defaults predicted to default; `None` without any.
    pub false_positive_rate: Option<f64>,
}

/// Fairness of one sensitive attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    pub attribute: String,
    pub groups: Vec<GroupRates>,
    /// Largest minus smallest selection rate across groups.
    pub demographic_parity_difference: f64,
    /// The larger of the TPR spread and the FPR spread across groups
    /// (groups without both classes do not count for the rate they lack).
    pub equalized_odds_difference: f64,
}

/// Rates per group and their spreads. `groups[i]` is row `i`'s group,
/// `predicted[i]` its 0/1 decision, `y[i]` its outcome.
pub fn fairness(attribute: &str, groups: &[String], y: &[u8], predicted: &[u8]) -> Fairness {
    let mut names: Vec<&String> = groups.iter().collect();
    names.sort();
    names.dedup();
    let rates: Vec<GroupRates> = names
        .into_iter()
        .map(|name| {
            let rows: Vec<usize> = (0..groups.len()).filter(|&i| &groups[i] == name).collect();
            let share = |of: &[usize]| {
                (!of.is_empty()).then(|| {
                    of.iter().filter(|&&i| predicted[i] == 1).count() as f64 / of.len() as f64
                })
            };
            let positives: Vec<usize> = rows.iter().copied().filter(|&i| y[i] == 1).collect();
            let negatives: Vec<usize> = rows.iter().copied().filter(|&i| y[i] == 0).collect();
            GroupRates {
                group: name.clone(),
                rows: rows.len(),
                selection_rate: share(&rows).unwrap_or(0.0),
                true_positive_rate: share(&positives),
                false_positive_rate: share(&negatives),
            }
        })
        .collect();
    let spread = |values: Vec<f64>| {
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        let min = values.iter().copied().fold(f64::MAX, f64::min);
        if values.is_empty() { 0.0 } else { max - min }
    };
    let demographic_parity_difference = spread(rates.iter().map(|r| r.selection_rate).collect());
    let tpr = spread(rates.iter().filter_map(|r| r.true_positive_rate).collect());
    let fpr = spread(rates.iter().filter_map(|r| r.false_positive_rate).collect());
    Fairness {
        attribute: attribute.to_string(),
        groups: rates,
        demographic_parity_difference,
        equalized_odds_difference: tpr.max(fpr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_fairlearn_on_a_worked_example() {
        // By hand: selection 3/4 vs 1/4; TPR 1 vs 1/2; FPR 1/2 vs 0.
        let groups: Vec<String> = ["a", "a", "a", "a", "b", "b", "b", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let y = [1, 1, 0, 0, 1, 1, 0, 0];
        let predicted = [1, 1, 1, 0, 1, 0, 0, 0];
        let f = fairness("sex", &groups, &y, &predicted);
        assert_eq!(f.groups.len(), 2);
        assert!((f.demographic_parity_difference - 0.5).abs() < 1e-12);
        assert!((f.equalized_odds_difference - 0.5).abs() < 1e-12);
        assert_eq!(f.groups[0].selection_rate, 0.75);
        assert_eq!(f.groups[1].true_positive_rate, Some(0.5));
    }

    #[test]
    fn equal_treatment_has_no_spread() {
        let groups: Vec<String> = ["x", "y", "x", "y"].iter().map(|s| s.to_string()).collect();
        let f = fairness("g", &groups, &[1, 1, 0, 0], &[1, 1, 0, 0]);
        assert_eq!(f.demographic_parity_difference, 0.0);
        assert_eq!(f.equalized_odds_difference, 0.0);
    }
}
