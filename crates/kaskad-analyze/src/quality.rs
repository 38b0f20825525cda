//! Data quality of one batch and the cleaning its thresholds call for.

use std::collections::HashSet;

use kaskad_core::config::QualityOptions;
use kaskad_core::{Column, ColumnData, ColumnKind, Frame};
use serde::{Deserialize, Serialize};

use crate::reference::{Reference, ReferenceColumn, quantile};
use crate::{Finding, Level, finite};

/// What the batch looked like, what cleaning did, and every finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub rows_in: usize,
    pub rows_out: usize,
    pub columns_in: usize,
    pub columns_out: usize,
    /// Share of missing cells in the batch as it arrived.
    pub missing_cell_share: f64,
    pub duplicate_rows: usize,
    /// Rows removed for any reason (missing target, too many gaps, duplicates).
    pub dropped_rows: usize,
    pub dropped_columns: Vec<String>,
    pub clipped_cells: usize,
    pub columns: Vec<ColumnQuality>,
    pub findings: Vec<Finding>,
}

impl QualityReport {
    /// Whether a fail threshold was crossed.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Fail)
    }
}

/// Metrics of one column, measured before cleaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnQuality {
    pub column: String,
    pub kind: ColumnKind,
    pub missing_share: f64,
    pub distinct: usize,
    /// Values outside the IQR fences (clipped or only counted, per config).
    pub outliers: usize,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

/// Measures `frame` against the thresholds and returns it cleaned.
///
/// With a reference, the batch keeps exactly the reference's columns with
/// the reference's kinds and outlier fences, so that every clean batch has
/// the schema the models were trained on; the first batch sets them.
pub fn assess_and_clean(
    frame: &Frame,
    target: &str,
    reference: Option<&Reference>,
    options: &QualityOptions,
) -> (Frame, QualityReport) {
    let mut findings = Vec::new();
    let rows_in = frame.n_rows();
    let cells = rows_in * frame.n_cols();
    let missing_cells: usize = frame.columns().iter().map(Column::missing_count).sum();
    let missing_cell_share = if cells == 0 {
        0.0
    } else {
        missing_cells as f64 / cells as f64
    };
    let mut report = QualityReport {
        rows_in,
        rows_out: rows_in,
        columns_in: frame.n_cols(),
        columns_out: frame.n_cols(),
        missing_cell_share,
        duplicate_rows: 0,
        dropped_rows: 0,
        dropped_columns: Vec::new(),
        clipped_cells: 0,
        columns: Vec::new(),
        findings: Vec::new(),
    };
    let Some(target_column) = frame.column(target) else {
        report.findings.push(Finding::new(
            Level::Fail,
            "missing_target_column",
            Some(target),
            1.0,
            0.0,
            format!("the batch has no target column `{target}`"),
        ));
        return (frame.clone(), report);
    };

    // Rows without a target teach nothing and cannot be scored for quality.
    let labelled: Vec<usize> = (0..rows_in)
        .filter(|&r| !target_column.is_missing(r))
        .collect();
    if labelled.len() < rows_in {
        let dropped = rows_in - labelled.len();
        findings.push(Finding::new(
            Level::Warn,
            "missing_target",
            Some(target),
            dropped as f64,
            0.0,
            format!("{dropped} rows have no `{target}` value and were dropped"),
        ));
    }
    let mut columns: Vec<Column> = Vec::new();
    for column in frame.take(&labelled).into_columns() {
        if column.name == target {
            columns.push(column);
            continue;
        }
        let expected = reference.map(|r| r.column(&column.name));
        match expected {
            // A column the first batch dropped stays dropped.
            Some(None) => {
                findings.push(Finding::new(
                    Level::Info,
                    "column_not_in_reference",
                    Some(&column.name),
                    1.0,
                    0.0,
                    format!(
                        "column `{}` is not among the reference batch's columns; dropped so that every batch has the trained schema",
                        column.name
                    ),
                ));
                report.dropped_columns.push(column.name.clone());
            }
            Some(Some(expected)) => {
                columns.push(conform_kind(column, expected.kind(), &mut findings))
            }
            None => columns.push(fix_numbers_stored_as_text(column, &mut findings)),
        }
    }

    let n = labelled.len();
    let mut kept = Vec::new();
    for column in columns {
        let share = if n == 0 {
            0.0
        } else {
            column.missing_count() as f64 / n as f64
        };
        if column.name != target {
            report.columns.push(measure(&column, share));
        }
        let droppable = column.name != target && reference.is_none() && n > 0;
        if droppable && (share >= 1.0 || share > options.drop_missing_column) {
            findings.push(Finding::new(
                Level::Warn,
                "column_dropped",
                Some(&column.name),
                share,
                options.drop_missing_column,
                format!(
                    "column `{}`: {:.1}% missing, over the drop threshold {:.1}%; dropped",
                    column.name,
                    share * 100.0,
                    options.drop_missing_column * 100.0
                ),
            ));
            report.dropped_columns.push(column.name);
            continue;
        }
        if column.name != target && share > options.warn_missing_column {
            findings.push(Finding::new(
                Level::Warn,
                "missing_column",
                Some(&column.name),
                share,
                options.warn_missing_column,
                format!(
                    "column `{}`: {:.1}% missing, over the warning threshold {:.1}%",
                    column.name,
                    share * 100.0,
                    options.warn_missing_column * 100.0
                ),
            ));
        }
        kept.push(column);
    }
    let mut cleaned = Frame::new(kept).expect("columns come from one frame");
    // Columns dropped as (nearly) empty do not count against the batch.
    let kept_missing_share = {
        let cells = cleaned.n_rows() * cleaned.n_cols();
        let missing: usize = cleaned.columns().iter().map(Column::missing_count).sum();
        if cells == 0 {
            0.0
        } else {
            missing as f64 / cells as f64
        }
    };

    let sparse_rows = rows_with_too_many_gaps(&cleaned, target, options.drop_missing_row);
    if !sparse_rows.is_empty() {
        findings.push(Finding::new(
            Level::Warn,
            "rows_dropped",
            None,
            sparse_rows.len() as f64,
            options.drop_missing_row,
            format!(
                "{} rows miss more than {:.0}% of their values; dropped",
                sparse_rows.len(),
                options.drop_missing_row * 100.0
            ),
        ));
        cleaned = keep_rows(&cleaned, |r| !sparse_rows.contains(&r));
    }

    let duplicates = duplicate_rows(&cleaned);
    report.duplicate_rows = duplicates.len();
    if !duplicates.is_empty() {
        let share = duplicates.len() as f64 / cleaned.n_rows().max(1) as f64;
        let level = if share > options.warn_duplicates {
            Level::Warn
        } else {
            Level::Info
        };
        findings.push(Finding::new(
            level,
            "duplicates",
            None,
            share,
            options.warn_duplicates,
            format!(
                "{} rows repeat an earlier row ({:.2}%, warning over {:.2}%){}",
                duplicates.len(),
                share * 100.0,
                options.warn_duplicates * 100.0,
                if options.drop_duplicates {
                    "; dropped"
                } else {
                    ""
                }
            ),
        ));
        if options.drop_duplicates {
            cleaned = keep_rows(&cleaned, |r| !duplicates.contains(&r));
        }
    }

    if options.outliers != "none" {
        let clip = options.outliers == "clip";
        let mut columns = cleaned.into_columns();
        for column in columns.iter_mut().filter(|c| c.name != target) {
            let Some((low, high)) = fences(column, reference, options.outlier_iqr) else {
                continue;
            };
            let ColumnData::Numeric(values) = &mut column.data else {
                continue;
            };
            let mut outside = 0;
            for v in values.iter_mut().filter(|v| v.is_finite()) {
                if *v < low || *v > high {
                    outside += 1;
                    if clip {
                        *v = v.clamp(low, high);
                    }
                }
            }
            if outside == 0 {
                continue;
            }
            if clip {
                report.clipped_cells += outside;
            }
            if let Some(q) = report.columns.iter_mut().find(|q| q.column == column.name) {
                q.outliers = outside;
            }
            findings.push(Finding::new(
                Level::Info,
                "outliers",
                Some(&column.name),
                outside as f64,
                options.outlier_iqr,
                format!(
                    "column `{}`: {outside} values outside [{low:.4}, {high:.4}] ({} × IQR fences){}",
                    column.name,
                    options.outlier_iqr,
                    if clip { "; clipped" } else { "" }
                ),
            ));
        }
        cleaned = Frame::new(columns).expect("same columns as before");
    }

    report.rows_out = cleaned.n_rows();
    report.dropped_rows = rows_in - cleaned.n_rows();
    report.columns_out = cleaned.n_cols();
    if report.rows_out < options.min_rows {
        findings.push(Finding::new(
            Level::Fail,
            "too_few_rows",
            None,
            report.rows_out as f64,
            options.min_rows as f64,
            format!(
                "{} rows left after cleaning, fewer than the minimum {}",
                report.rows_out, options.min_rows
            ),
        ));
    }
    if kept_missing_share > options.fail_missing_cells {
        findings.push(Finding::new(
            Level::Fail,
            "missing_cells",
            None,
            kept_missing_share,
            options.fail_missing_cells,
            format!(
                "{:.1}% of the cells in the kept columns are missing, over the fail threshold {:.1}%",
                kept_missing_share * 100.0,
                options.fail_missing_cells * 100.0
            ),
        ));
    }
    report.findings = findings;
    (cleaned, report)
}

/// A text column whose every value is a number becomes numeric (CSV readers
/// fall back to text when one early value looks odd).
fn fix_numbers_stored_as_text(column: Column, findings: &mut Vec<Finding>) -> Column {
    let ColumnData::Categorical(values) = &column.data else {
        return column;
    };
    let present = values.iter().flatten().count();
    let parsed: Vec<Option<f64>> = values
        .iter()
        .map(|v| {
            v.as_deref()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|x| x.is_finite())
        })
        .collect();
    if present == 0 || parsed.iter().flatten().count() < present {
        return column;
    }
    findings.push(Finding::new(
        Level::Info,
        "type_fixed",
        Some(&column.name),
        present as f64,
        0.0,
        format!(
            "column `{}`: every value is a number; read as numeric",
            column.name
        ),
    ));
    Column::numeric(
        column.name,
        parsed.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
    )
}

/// Brings a column to the reference's kind; values that do not convert
/// become missing and are counted in a finding.
fn conform_kind(column: Column, kind: ColumnKind, findings: &mut Vec<Finding>) -> Column {
    match (column.data, kind) {
        (ColumnData::Categorical(values), ColumnKind::Numeric) => {
            let mut lost = 0;
            let numbers: Vec<f64> = values
                .iter()
                .map(|v| match v.as_deref().map(|s| s.trim().parse::<f64>()) {
                    None => f64::NAN,
                    Some(Ok(x)) if x.is_finite() => x,
                    Some(_) => {
                        lost += 1;
                        f64::NAN
                    }
                })
                .collect();
            findings.push(Finding::new(
                if lost > 0 { Level::Warn } else { Level::Info },
                "type_fixed",
                Some(&column.name),
                lost as f64,
                0.0,
                format!(
                    "column `{}` arrived as text and was read as numbers like the reference; {lost} values were not numbers and became missing",
                    column.name
                ),
            ));
            Column::numeric(column.name, numbers)
        }
        (ColumnData::Numeric(values), ColumnKind::Categorical) => {
            let text = values
                .iter()
                .map(|v| v.is_finite().then(|| v.to_string()))
                .collect();
            Column::categorical(column.name, text)
        }
        (data, _) => Column {
            name: column.name,
            data,
        },
    }
}

fn measure(column: &Column, missing_share: f64) -> ColumnQuality {
    let (distinct, min, max, mean) = match &column.data {
        ColumnData::Numeric(values) => {
            let present: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
            let distinct: HashSet<u64> = present.iter().map(|v| v.to_bits()).collect();
            let stat = |f: fn(f64, f64) -> f64| present.iter().copied().reduce(f);
            let mean =
                (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64);
            (distinct.len(), stat(f64::min), stat(f64::max), mean)
        }
        ColumnData::Categorical(values) => {
            let distinct: HashSet<&str> = values.iter().flatten().map(String::as_str).collect();
            (distinct.len(), None, None, None)
        }
    };
    ColumnQuality {
        column: column.name.clone(),
        kind: column.kind(),
        missing_share: finite(missing_share),
        distinct,
        outliers: 0,
        min,
        max,
        mean,
    }
}

fn rows_with_too_many_gaps(frame: &Frame, target: &str, limit: f64) -> HashSet<usize> {
    let features: Vec<&Column> = frame
        .columns()
        .iter()
        .filter(|c| c.name != target)
        .collect();
    if features.is_empty() {
        return HashSet::new();
    }
    (0..frame.n_rows())
        .filter(|&r| {
            let gaps = features.iter().filter(|c| c.is_missing(r)).count();
            gaps as f64 / features.len() as f64 > limit
        })
        .collect()
}

/// Rows equal, in every column, to an earlier row (missing equals missing).
fn duplicate_rows(frame: &Frame) -> HashSet<usize> {
    let mut seen = HashSet::with_capacity(frame.n_rows());
    let mut duplicates = HashSet::new();
    for r in 0..frame.n_rows() {
        let key: Vec<Option<String>> = frame
            .columns()
            .iter()
            .map(|c| match &c.data {
                ColumnData::Numeric(v) => v[r].is_finite().then(|| v[r].to_bits().to_string()),
                ColumnData::Categorical(v) => v[r].clone(),
            })
            .collect();
        if !seen.insert(key) {
            duplicates.insert(r);
        }
    }
    duplicates
}

fn keep_rows(frame: &Frame, keep: impl Fn(usize) -> bool) -> Frame {
    let rows: Vec<usize> = (0..frame.n_rows()).filter(|&r| keep(r)).collect();
    frame.take(&rows)
}

/// Tukey's fences `[q1 - k·IQR, q3 + k·IQR]`, from the reference when there is
/// one. `None` for text columns and for columns with no spread (flags, codes).
fn fences(column: &Column, reference: Option<&Reference>, k: f64) -> Option<(f64, f64)> {
    let values = column.as_numeric()?;
    let (q1, q3) = match reference.and_then(|r| r.column(&column.name)) {
        Some(ReferenceColumn::Numeric { q1, q3, .. }) => (*q1, *q3),
        _ => {
            let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
            sorted.sort_by(f64::total_cmp);
            (quantile(&sorted, 0.25)?, quantile(&sorted, 0.75)?)
        }
    };
    let iqr = q3 - q1;
    (iqr > 0.0).then_some((q1 - k * iqr, q3 + k * iqr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskad_core::config::DriftOptions;

    fn options() -> QualityOptions {
        QualityOptions {
            min_rows: 1,
            ..QualityOptions::default()
        }
    }

    fn batch() -> Frame {
        let mut income: Vec<f64> = (1..=40).map(f64::from).collect();
        income[39] = 10_000.0;
        let mut target: Vec<Option<String>> = (0..40)
            .map(|i| Some(if i % 4 == 0 { "bad" } else { "good" }.into()))
            .collect();
        target[5] = None;
        let mut home: Vec<Option<String>> = (0..40).map(|i| Some(format!("h{}", i % 3))).collect();
        let mut age: Vec<Option<String>> = (0..40).map(|i| Some((20 + i).to_string())).collect();
        // Row 11 repeats row 10.
        age[11] = age[10].clone();
        income[11] = income[10];
        home[11] = home[10].clone();
        target[11] = target[10].clone();
        Frame::new(vec![
            Column::numeric("income", income),
            Column::categorical("home", home),
            Column::categorical("notes", vec![None; 40]),
            Column::categorical("age", age),
            Column::categorical("status", target),
        ])
        .unwrap()
    }

    #[test]
    fn cleaning_drops_and_clips_what_the_thresholds_say() {
        let (clean, report) = assess_and_clean(&batch(), "status", None, &options());
        assert!(!report.failed(), "{:?}", report.findings);
        assert_eq!(report.dropped_columns, vec!["notes"]);
        assert_eq!(report.duplicate_rows, 1);
        assert_eq!(report.rows_out, 38);
        assert_eq!(report.dropped_rows, 2);
        assert_eq!(clean.n_rows(), 38);
        assert_eq!(clean.column("age").unwrap().kind(), ColumnKind::Numeric);
        let income = clean.column("income").unwrap().as_numeric().unwrap();
        let max = income.iter().copied().fold(f64::MIN, f64::max);
        assert!(max < 200.0, "the outlier is clipped to the fence: {max}");
        assert_eq!(report.clipped_cells, 1);
        let rules: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
        for rule in ["missing_target", "column_dropped", "duplicates", "outliers"] {
            assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
        }
        // serde_json writes NaN as null, which does not read back as a
        // number: the round trip fails on any non-finite figure.
        let json = serde_json::to_string(&report).unwrap();
        let back: QualityReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn later_batches_keep_the_reference_schema() {
        let (first, _) = assess_and_clean(&batch(), "status", None, &options());
        let reference = Reference::build(&first, "status", &DriftOptions::default());
        let mut later = batch();
        later.remove("age");
        later
            .push(Column::categorical(
                "age",
                (0..40)
                    .map(|i| Some(if i == 3 { "n/a".into() } else { i.to_string() }))
                    .collect(),
            ))
            .unwrap();
        let (clean, report) = assess_and_clean(&later, "status", Some(&reference), &options());
        let sorted = |f: &Frame| {
            let mut names: Vec<String> = f.names().iter().map(|n| n.to_string()).collect();
            names.sort();
            names
        };
        assert_eq!(sorted(&clean), sorted(&first));
        assert_eq!(clean.column("age").unwrap().kind(), ColumnKind::Numeric);
        assert!(clean.column("notes").is_none());
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.rule == "type_fixed" && f.level == Level::Warn)
        );
    }

    #[test]
    fn too_few_rows_or_no_target_fail() {
        let strict = QualityOptions {
            min_rows: 1_000,
            ..QualityOptions::default()
        };
        let (_, report) = assess_and_clean(&batch(), "status", None, &strict);
        assert!(report.failed());
        let (_, report) = assess_and_clean(&batch(), "Status", None, &options());
        assert!(report.failed());
        assert!(report.findings[0].message.contains("`Status`"));
    }
}
