//! Meta-parameters of a batch: what it holds, summarized, and its content hash.

use std::collections::HashMap;

use kaskad_core::{ColumnData, ColumnKind, Frame};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Categories kept per column in the meta-parameters (the most frequent).
const TOP_CATEGORIES: usize = 20;

/// Summary of one column of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnMeta {
    pub name: String,
    pub kind: ColumnKind,
    pub missing_rate: f64,
    pub distinct: usize,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// Most frequent categories with their counts (categorical columns).
    pub top_categories: Vec<(String, usize)>,
}

/// Meta-parameters recorded in the catalog for every batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub rows: usize,
    pub columns: Vec<ColumnMeta>,
    pub missing_rate: f64,
    /// First and last value of the time column, when there is one.
    pub time_range: Option<(String, String)>,
    pub content_hash: String,
}

/// Computes the meta-parameters of `frame`; `time` names the time column.
pub fn describe(frame: &Frame, time: Option<&str>) -> BatchMeta {
    let columns: Vec<ColumnMeta> = frame.columns().iter().map(describe_column).collect();
    let cells = frame.n_rows() * frame.n_cols();
    let missing: usize = frame.columns().iter().map(|c| c.missing_count()).sum();
    let time_range = time.and_then(|t| frame.column(t)).and_then(|c| {
        let n = c.len();
        (n > 0).then(|| (c.display_value(0), c.display_value(n - 1)))
    });
    BatchMeta {
        rows: frame.n_rows(),
        columns,
        missing_rate: if cells == 0 {
            0.0
        } else {
            missing as f64 / cells as f64
        },
        time_range,
        content_hash: content_hash(frame),
    }
}

fn describe_column(column: &kaskad_core::Column) -> ColumnMeta {
    let n = column.len();
    let missing_rate = if n == 0 {
        0.0
    } else {
        column.missing_count() as f64 / n as f64
    };
    match &column.data {
        ColumnData::Numeric(values) => {
            let present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
            let count = present.len() as f64;
            let mean = (count > 0.0).then(|| present.iter().sum::<f64>() / count);
            let std =
                mean.map(|m| (present.iter().map(|v| (v - m).powi(2)).sum::<f64>() / count).sqrt());
            let mut bits: Vec<u64> = present.iter().map(|v| v.to_bits()).collect();
            bits.sort_unstable();
            bits.dedup();
            ColumnMeta {
                name: column.name.clone(),
                kind: ColumnKind::Numeric,
                missing_rate,
                distinct: bits.len(),
                min: present.iter().copied().reduce(f64::min),
                max: present.iter().copied().reduce(f64::max),
                mean,
                std,
                top_categories: Vec::new(),
            }
        }
        ColumnData::Categorical(values) => {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for v in values.iter().flatten() {
                *counts.entry(v.as_str()).or_default() += 1;
            }
            let distinct = counts.len();
            let mut top: Vec<(String, usize)> = counts
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            top.truncate(TOP_CATEGORIES);
            ColumnMeta {
                name: column.name.clone(),
                kind: ColumnKind::Categorical,
                missing_rate,
                distinct,
                min: None,
                max: None,
                mean: None,
                std: None,
                top_categories: top,
            }
        }
    }
}

/// SHA-256 of the batch's column names, kinds and cells: the same rows in
/// the same order give the same hash wherever they come from.
pub fn content_hash(frame: &Frame) -> String {
    let mut hasher = Sha256::new();
    for column in frame.columns() {
        hasher.update(column.name.as_bytes());
        hasher.update([0x1f, column.kind() as u8]);
    }
    for row in 0..frame.n_rows() {
        for column in frame.columns() {
            match &column.data {
                ColumnData::Numeric(v) => hasher.update(v[row].to_bits().to_le_bytes()),
                ColumnData::Categorical(v) => match &v[row] {
                    Some(s) => {
                        hasher.update([1]);
                        hasher.update(s.as_bytes());
                    }
                    None => hasher.update([0]),
                },
            }
            hasher.update([0x1f]);
        }
        hasher.update([0x1e]);
    }
    hex_digest(hasher)
}

/// The SHA-256 digest as lowercase hex, the form every content hash takes.
pub(crate) fn hex_digest(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskad_core::Column;

    #[test]
    fn describes_columns_and_hashes_content() {
        let f = Frame::new(vec![
            Column::numeric("x", vec![1.0, 3.0, f64::NAN]),
            Column::categorical(
                "c",
                vec![Some("a".into()), Some("a".into()), Some("b".into())],
            ),
        ])
        .unwrap();
        let m = describe(&f, None);
        assert_eq!(m.rows, 3);
        assert_eq!(m.columns[0].mean, Some(2.0));
        assert!((m.columns[0].missing_rate - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.columns[1].top_categories[0], ("a".to_string(), 2));
        let g = f.take(&[1, 0, 2]);
        assert_ne!(content_hash(&f), content_hash(&g));
        assert_eq!(content_hash(&f), content_hash(&f.clone()));
    }
}
