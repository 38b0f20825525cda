//! Drift of a batch against the reference, column by column.

use kaskad_core::config::DriftOptions;
use kaskad_core::{ColumnData, ColumnKind, Frame};
use serde::{Deserialize, Serialize};

use crate::reference::{Reference, ReferenceColumn};
use crate::stats::{
    chi_square_p_value, chi_square_statistic, js_distance, ks_p_value, ks_statistic, psi,
};
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
                let (x, df) = chi_square_statistic(expected_shares, &counts);
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
            let test_name = if test == "ks" { "KS" } else { "chi-square" };
            let evidence = format!("{test_name} {statistic:.3}, p={}", format_p(p_value));
            // Name the threshold that was actually crossed, so that a warning
            // raised by the test alone does not read as a PSI breach.
            let (threshold, message) = if column_psi >= options.psi_warn {
                let threshold = if column_psi >= options.psi_fail {
                    options.psi_fail
                } else {
                    options.psi_warn
                };
                (
                    threshold,
                    format!("column `{name}`: PSI {column_psi:.3} ≥ {threshold} ({evidence})"),
                )
            } else {
                (
                    options.psi_warn / 2.0,
                    format!(
                        "column `{name}`: {evidence} < {} with PSI {column_psi:.3} ≥ {}",
                        options.p_value,
                        options.psi_warn / 2.0
                    ),
                )
            };
            findings.push(Finding::new(
                level,
                "drift",
                Some(name),
                column_psi,
                threshold,
                message,
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

/// p-values span many orders of magnitude; tiny ones read better in
/// scientific notation.
fn format_p(p: f64) -> String {
    if p >= 1e-3 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
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
        let message = &report.findings[0].message;
        assert!(
            message.starts_with("column `income`: PSI") && message.contains("≥ 0.25 (KS 0.500"),
            "{message}"
        );
        options.fail_on_drift = true;
        assert!(drift(&shifted, &reference, "y", &options).failed());
        // serde_json writes NaN as null, which does not read back as a
        // number: the round trip fails on any non-finite figure.
        let json = serde_json::to_string(&report).unwrap();
        let back: DriftReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn significant_test_warns_only_with_a_visible_psi() {
        let options = DriftOptions::default();
        let numbers = |shift: f64| {
            Frame::new(vec![Column::numeric(
                "x",
                (0..20_000).map(|i| f64::from(i) + shift).collect(),
            )])
            .unwrap()
        };
        let reference = Reference::build(&numbers(0.0), "y", &options);
        // KS notices a 3% shift of 20 000 rows, but PSI stays near 0.02.
        let small = drift(&numbers(600.0), &reference, "y", &options);
        assert!(small.columns[0].p_value < options.p_value);
        assert!(small.columns[0].psi < options.psi_warn / 2.0);
        assert_eq!(small.columns[0].level, Level::Info);
        assert!(small.findings.is_empty());
        // A 5% shift: PSI over half the warning threshold, and significant.
        let visible = drift(&numbers(1_000.0), &reference, "y", &options);
        let column = &visible.columns[0];
        assert!(column.psi >= options.psi_warn / 2.0 && column.psi < options.psi_warn);
        assert_eq!(column.level, Level::Warn);
        assert!(
            visible.findings[0].message.contains("< 0.01"),
            "{:?}",
            visible.findings
        );
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
