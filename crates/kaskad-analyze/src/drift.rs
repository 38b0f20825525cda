//! Drift of a batch against the reference, column by column.

use kaskad_core::config::DriftOptions;
use kaskad_core::{ColumnData, ColumnKind, Frame};
use serde::{Deserialize, Serialize};

use crate::reference::{Reference, ReferenceColumn};
use crate::stats::{chi_square_p_value, js_distance, ks_p_value, ks_statistic, psi};
use crate::{Finding, Level, finite};

/// Drift of one batch: every reference column measured, with findings for
/// the ones over the thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub columns: Vec<ColumnDrift>,
    pub drifted_columns: usize,
    pub max_psi: f64,
    pub findings: Vec<Finding>,
}

impl DriftReport {
    /// Whether drift should stop the batch (only with `fail_on_drift`).
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Fail)
    }
}

/// One column's drift. `test` is `ks` (numbers) or `chi2` (categories).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub column: String,
    pub kind: ColumnKind,
    pub psi: f64,
    pub statistic: f64,
    pub test: String,
    pub p_value: f64,
    pub js_distance: f64,
    pub level: Level,
}

/// Measures the drift of `frame` against `reference`.
pub fn drift(
    frame: &Frame,
    reference: &Reference,
    target: &str,
    options: &DriftOptions,
) -> DriftReport {
    let mut columns = Vec::new();
    let mut findings = Vec::new();
    for expected in reference.columns.iter().filter(|c| c.name() != target) {
        let name = expected.name();
        let Some(column) = frame.column(name) else {
            findings.push(Finding::new(
                Level::Warn,
                "column_missing",
                Some(name),
                1.0,
                0.0,
                format!("column `{name}` of the reference is missing from the batch"),
            ));
            continue;
        };
        let Some(counts) = expected.bucket_counts(column) else {
            findings.push(Finding::new(
                Level::Warn,
                "kind_changed",
                Some(name),
                1.0,
                0.0,
                format!(
                    "column `{name}` was {:?} in the reference and is {:?} now",
                    expected.kind(),
                    column.kind()
                ),
            ));
            continue;
        };
        let total = counts.iter().sum::<usize>().max(1) as f64;
        let actual: Vec<f64> = counts.iter().map(|&c| c as f64 / total).collect();
        let expected_shares = expected.shares();
        let column_psi = finite(psi(expected_shares, &actual));
        let (test, statistic, p_value) = match (expected, &column.data) {
            (ReferenceColumn::Numeric { sample, .. }, ColumnData::Numeric(values)) => {
                let mut sorted: Vec<f64> =
                    values.iter().copied().filter(|v| v.is_finite()).collect();
                sorted.sort_by(f64::total_cmp);
                let d = ks_statistic(sample, &sorted);
                ("ks", d, ks_p_value(d, sample.len(), sorted.len()))
            }
            _ => {
                let (x, df) = chi_square(expected_shares, &counts);
                ("chi2", x, chi_square_p_value(x, df))
            }
        };
        let level = if column_psi >= options.psi_fail && options.fail_on_drift {
            Level::Fail
        } else if column_psi >= options.psi_warn
            // A significant test alone warns only with a visible shift: on
            // large batches every tiny difference is significant.
            || (p_value < options.p_value && column_psi >= options.psi_warn / 2.0)
        {
            Level::Warn
        } else {
            Level::Info
        };
        if level > Level::Info {
            let threshold = if level == Level::Fail {
                options.psi_fail
            } else {
                options.psi_warn
            };
            findings.push(Finding::new(
                level,
                "drift",
                Some(name),
                column_psi,
                threshold,
                format!(
                    "column `{name}`: PSI {column_psi:.3} (warn at {:.2}, fail at {:.2}), {test} {statistic:.3}, p={p_value:.2e}",
                    options.psi_warn, options.psi_fail
                ),
            ));
        }
        columns.push(ColumnDrift {
            column: name.to_string(),
            kind: expected.kind(),
            psi: column_psi,
            statistic: finite(statistic),
            test: test.into(),
            p_value: finite(p_value).clamp(0.0, 1.0),
            js_distance: finite(js_distance(expected_shares, &actual)),
            level,
        });
    }
    DriftReport {
        drifted_columns: columns.iter().filter(|c| c.level > Level::Info).count(),
        max_psi: columns.iter().map(|c| c.psi).fold(0.0, f64::max),
        columns,
        findings,
    }
}

/// Pearson's chi-square of observed counts against expected shares, with the
/// degrees of freedom of the buckets that can hold values.
fn chi_square(expected: &[f64], observed: &[usize]) -> (f64, usize) {
    let n: usize = observed.iter().sum();
    let mut statistic = 0.0;
    let mut buckets = 0usize;
    for (&share, &count) in expected.iter().zip(observed) {
        if share == 0.0 && count == 0 {
            continue;
        }
        buckets += 1;
        // A level the reference never saw gets a tiny expected share so that
        // its appearance counts heavily without dividing by zero.
        let e = share.max(1e-4) * n as f64;
        statistic += (count as f64 - e).powi(2) / e;
    }
    (statistic, buckets.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskad_core::Column;

    fn frame(shift: f64, levels: &[&str]) -> Frame {
        Frame::new(vec![
            Column::numeric("income", (0..1_000).map(|i| f64::from(i) + shift).collect()),
            Column::categorical(
                "home",
                (0..1_000)
                    .map(|i| Some(levels[i % levels.len()].to_string()))
                    .collect(),
            ),
            Column::numeric("y", vec![0.0; 1_000]),
        ])
        .unwrap()
    }

    #[test]
    fn identical_batch_does_not_drift() {
        let options = DriftOptions::default();
        let reference = Reference::build(&frame(0.0, &["rent", "own"]), "y", &options);
        let report = drift(&frame(0.0, &["rent", "own"]), &reference, "y", &options);
        assert_eq!(report.columns.len(), 2);
        assert!(report.max_psi < 1e-9);
        assert_eq!(report.drifted_columns, 0);
        assert!(report.columns.iter().all(|c| c.p_value > 0.99));
    }

    #[test]
    fn shifted_batch_drifts_and_fails_only_when_asked() {
        let mut options = DriftOptions::default();
        let reference = Reference::build(&frame(0.0, &["rent", "own"]), "y", &options);
        let shifted = frame(500.0, &["rent", "own", "parents", "other"]);
        let report = drift(&shifted, &reference, "y", &options);
        assert_eq!(report.drifted_columns, 2);
        assert!(report.max_psi > options.psi_fail);
        let income = &report.columns[0];
        assert_eq!(income.test, "ks");
        assert!((income.statistic - 0.5).abs() < 0.01);
        assert!(income.p_value < 1e-6);
        assert!(!report.failed());
        options.fail_on_drift = true;
        assert!(drift(&shifted, &reference, "y", &options).failed());
        serde_json::to_string(&report).unwrap();
    }

    #[test]
    fn missing_or_retyped_columns_are_reported() {
        let options = DriftOptions::default();
        let reference = Reference::build(&frame(0.0, &["a"]), "y", &options);
        let batch =
            Frame::new(vec![Column::categorical("income", vec![Some("x".into())])]).unwrap();
        let report = drift(&batch, &reference, "y", &options);
        let rules: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, ["kind_changed", "column_missing"]);
    }
}
