//! The reference distribution drift is measured against: the first clean
//! batch, summarized compactly enough to live in the catalog as JSON.

use std::collections::HashMap;

use kaskad_core::config::DriftOptions;
use kaskad_core::{Column, ColumnData, ColumnKind, Frame};
use serde::{Deserialize, Serialize};

/// Numeric samples kept for the KS test: evenly spaced order statistics, so
/// the sample is deterministic and keeps the shape of the distribution.
const KS_SAMPLE: usize = 5_000;
/// Categories kept by name; the rest are pooled.
const MAX_LEVELS: usize = 50;

/// Per-column distributions of the reference batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub rows: usize,
    pub columns: Vec<ReferenceColumn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ReferenceColumn {
    /// Shares per bin: `edges.len() + 1` value bins, then the missing bucket.
    Numeric {
        name: String,
        edges: Vec<f64>,
        shares: Vec<f64>,
        sample: Vec<f64>,
        q1: f64,
        q3: f64,
    },
    /// Shares per level, then the pooled other levels, then missing.
    Categorical {
        name: String,
        levels: Vec<String>,
        shares: Vec<f64>,
    },
}

impl ReferenceColumn {
    pub fn name(&self) -> &str {
        match self {
            ReferenceColumn::Numeric { name, .. } | ReferenceColumn::Categorical { name, .. } => {
                name
            }
        }
    }

    pub fn kind(&self) -> ColumnKind {
        match self {
            ReferenceColumn::Numeric { .. } => ColumnKind::Numeric,
            ReferenceColumn::Categorical { .. } => ColumnKind::Categorical,
        }
    }

    /// How many values of `column` fall in each of this reference's buckets;
    /// `None` when the column changed kind.
    pub fn bucket_counts(&self, column: &Column) -> Option<Vec<usize>> {
        match (self, &column.data) {
            (ReferenceColumn::Numeric { edges, .. }, ColumnData::Numeric(values)) => {
                let mut counts = vec![0; edges.len() + 2];
                for v in values {
                    let bucket = if v.is_finite() {
                        edges.partition_point(|e| e < v)
                    } else {
                        edges.len() + 1
                    };
                    counts[bucket] += 1;
                }
                Some(counts)
            }
            (ReferenceColumn::Categorical { levels, .. }, ColumnData::Categorical(values)) => {
                let index: HashMap<&str, usize> = levels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.as_str(), i))
                    .collect();
                let mut counts = vec![0; levels.len() + 2];
                for v in values {
                    let bucket = match v {
                        Some(level) => index.get(level.as_str()).copied().unwrap_or(levels.len()),
                        None => levels.len() + 1,
                    };
                    counts[bucket] += 1;
                }
                Some(counts)
            }
            _ => None,
        }
    }

    pub fn shares(&self) -> &[f64] {
        match self {
            ReferenceColumn::Numeric { shares, .. }
            | ReferenceColumn::Categorical { shares, .. } => shares,
        }
    }
}

impl Reference {
    /// Summarizes every feature column of `frame` (the target is skipped).
    pub fn build(frame: &Frame, target: &str, options: &DriftOptions) -> Reference {
        let columns = frame
            .columns()
            .iter()
            .filter(|c| c.name != target)
            .map(|c| build_column(c, options.bins))
            .collect();
        Reference {
            rows: frame.n_rows(),
            columns,
        }
    }

    pub fn column(&self, name: &str) -> Option<&ReferenceColumn> {
        self.columns.iter().find(|c| c.name() == name)
    }
}

fn build_column(column: &Column, bins: usize) -> ReferenceColumn {
    let shares_of = |counts: &[usize]| {
        let total = counts.iter().sum::<usize>().max(1) as f64;
        counts
            .iter()
            .map(|&c| c as f64 / total)
            .collect::<Vec<f64>>()
    };
    match &column.data {
        ColumnData::Numeric(values) => {
            let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
            sorted.sort_by(f64::total_cmp);
            let mut edges: Vec<f64> = (1..bins)
                .filter_map(|k| quantile(&sorted, k as f64 / bins as f64))
                .collect();
            edges.dedup();
            let sample = if sorted.len() <= KS_SAMPLE {
                sorted.clone()
            } else {
                (0..KS_SAMPLE)
                    .map(|i| sorted[i * sorted.len() / KS_SAMPLE])
                    .collect()
            };
            let mut reference = ReferenceColumn::Numeric {
                name: column.name.clone(),
                q1: quantile(&sorted, 0.25).unwrap_or(0.0),
                q3: quantile(&sorted, 0.75).unwrap_or(0.0),
                edges,
                shares: Vec::new(),
                sample,
            };
            let counts = reference.bucket_counts(column).unwrap_or_default();
            if let ReferenceColumn::Numeric { shares, .. } = &mut reference {
                *shares = shares_of(&counts);
            }
            reference
        }
        ColumnData::Categorical(values) => {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for level in values.iter().flatten() {
                *counts.entry(level.as_str()).or_default() += 1;
            }
            let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            ranked.truncate(MAX_LEVELS);
            let mut reference = ReferenceColumn::Categorical {
                name: column.name.clone(),
                levels: ranked.iter().map(|(l, _)| (*l).to_string()).collect(),
                shares: Vec::new(),
            };
            let counts = reference.bucket_counts(column).unwrap_or_default();
            if let ReferenceColumn::Categorical { shares, .. } = &mut reference {
                *shares = shares_of(&counts);
            }
            reference
        }
    }
}

/// Linear-interpolated quantile of sorted finite values; `None` when empty.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = q * last as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let weight = position - below as f64;
    Some(sorted[below] * (1.0 - weight) + sorted[above] * weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_round_trips_through_json() {
        let frame = Frame::new(vec![
            Column::numeric("x", (0..100).map(f64::from).chain([f64::NAN]).collect()),
            Column::categorical(
                "c",
                (0..101)
                    .map(|i| (i % 7 != 0).then(|| format!("l{}", i % 3)))
                    .collect(),
            ),
            Column::numeric("y", vec![0.0; 101]),
        ])
        .unwrap();
        let reference = Reference::build(&frame, "y", &DriftOptions::default());
        assert_eq!(reference.columns.len(), 2);
        let ReferenceColumn::Numeric {
            edges, shares, q1, ..
        } = &reference.columns[0]
        else {
            panic!("x is numeric")
        };
        assert_eq!(edges.len(), 9);
        assert_eq!(shares.len(), 11);
        assert!((shares[10] - 1.0 / 101.0).abs() < 1e-12);
        assert!((q1 - 24.75).abs() < 1e-9);
        let json = serde_json::to_string(&reference).unwrap();
        let back: Reference = serde_json::from_str(&json).unwrap();
        assert_eq!(back, reference);
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
