//! The reference every later batch is compared with: a compact profile of
//! each feature column of the first clean batch.

use std::collections::HashMap;

use kaskad_core::config::DriftOptions;
use kaskad_core::{Column, ColumnData, ColumnKind, Frame};
use serde::{Deserialize, Serialize};

pub(crate) use crate::stats::quantile;

/// Values kept per numeric column for the KS test. Order statistics spread
/// evenly over the sorted data keep the empirical CDF within 1/5000 of the
/// full one, far below any KS statistic worth reporting.
const SAMPLE_SIZE: usize = 5000;

/// Categories kept per categorical column, most frequent first. The rest
/// share one bucket so that an identifier-like column cannot bloat the
/// reference stored in the catalog.
const MAX_CATEGORIES: usize = 100;

/// Distribution profile of the reference batch, built by [`Reference::build`]
/// and stored as JSON. Every number in it is finite, so it round-trips
/// through `serde_json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Reference {
    /// Rows of the batch the reference was built from.
    rows: usize,
    pub(crate) columns: Vec<ReferenceColumn>,
}

/// The profile of one feature column.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum ReferenceColumn {
    Numeric {
        name: String,
        /// Inner bin edges; bins are `(-inf, e0], (e0, e1], …, (e_last, inf)`.
        edges: Vec<f64>,
        /// Share of rows per bin (`edges.len() + 1` of them), missing last.
        shares: Vec<f64>,
        /// Sorted values for the KS test.
        sample: Vec<f64>,
        /// Quartiles for the outlier fences; equal (no fences) when the
        /// column had no values.
        q1: f64,
        q3: f64,
    },
    Categorical {
        name: String,
        /// At most [`MAX_CATEGORIES`], most frequent first.
        categories: Vec<String>,
        /// Share of rows per category, then any other category, missing last.
        shares: Vec<f64>,
    },
}

impl Reference {
    /// Profiles every column of `frame` except `target`: numeric columns by
    /// `options.bins` quantile bins, a missing bucket, a sorted sample and
    /// quartiles; categorical columns by category shares, a bucket for the
    /// rare rest and a missing bucket.
    pub fn build(frame: &Frame, target: &str, options: &DriftOptions) -> Reference {
        let columns = frame
            .columns()
            .iter()
            .filter(|c| c.name != target)
            .map(|c| match &c.data {
                ColumnData::Numeric(v) => numeric(&c.name, v, options.bins),
                ColumnData::Categorical(v) => categorical(&c.name, v),
            })
            .collect();
        Reference {
            rows: frame.n_rows(),
            columns,
        }
    }

    pub(crate) fn column(&self, name: &str) -> Option<&ReferenceColumn> {
        self.columns.iter().find(|c| c.name() == name)
    }
}

impl ReferenceColumn {
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Numeric { name, .. } | Self::Categorical { name, .. } => name,
        }
    }

    pub(crate) fn kind(&self) -> ColumnKind {
        match self {
            Self::Numeric { .. } => ColumnKind::Numeric,
            Self::Categorical { .. } => ColumnKind::Categorical,
        }
    }

    /// Reference shares, in the order of [`Self::bucket_counts`].
    pub(crate) fn shares(&self) -> &[f64] {
        match self {
            Self::Numeric { shares, .. } | Self::Categorical { shares, .. } => shares,
        }
    }

    /// Rows of `column` per bucket of this profile; `None` when the column
    /// is not of the profile's kind.
    pub(crate) fn bucket_counts(&self, column: &Column) -> Option<Vec<usize>> {
        match (self, &column.data) {
            (Self::Numeric { edges, .. }, ColumnData::Numeric(values)) => {
                Some(numeric_counts(edges, values))
            }
            (Self::Categorical { categories, .. }, ColumnData::Categorical(values)) => {
                Some(categorical_counts(categories, values))
            }
            _ => None,
        }
    }
}

/// Shares of `counts` in their total; all zero when there is nothing to count.
fn shares(counts: &[usize]) -> Vec<f64> {
    let total: usize = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

fn numeric(name: &str, values: &[f64], bins: usize) -> ReferenceColumn {
    // Infinities count as missing: they cannot be binned nor stored as JSON.
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let bins = bins.max(2);
    let mut edges: Vec<f64> = (1..bins)
        .filter_map(|i| quantile(&sorted, i as f64 / bins as f64))
        .collect();
    // Heavily tied data (flags, round amounts) repeats quantiles; a repeated
    // edge would only make an empty bin.
    edges.dedup();
    let sample = if sorted.len() <= SAMPLE_SIZE {
        sorted.clone()
    } else {
        (0..SAMPLE_SIZE)
            .map(|i| sorted[(2 * i + 1) * sorted.len() / (2 * SAMPLE_SIZE)])
            .collect()
    };
    ReferenceColumn::Numeric {
        name: name.to_string(),
        shares: shares(&numeric_counts(&edges, values)),
        edges,
        sample,
        q1: quantile(&sorted, 0.25).unwrap_or(0.0),
        q3: quantile(&sorted, 0.75).unwrap_or(0.0),
    }
}

fn numeric_counts(edges: &[f64], values: &[f64]) -> Vec<usize> {
    let mut counts = vec![0; edges.len() + 2];
    for &v in values {
        let bucket = if v.is_finite() {
            edges.partition_point(|&e| e < v)
        } else {
            edges.len() + 1
        };
        counts[bucket] += 1;
    }
    counts
}

fn categorical(name: &str, values: &[Option<String>]) -> ReferenceColumn {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in values.iter().flatten() {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    // Ties broken by name so the reference does not depend on hash order.
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let categories: Vec<String> = counts
        .iter()
        .take(MAX_CATEGORIES)
        .map(|c| c.0.to_string())
        .collect();
    ReferenceColumn::Categorical {
        name: name.to_string(),
        shares: shares(&categorical_counts(&categories, values)),
        categories,
    }
}

/// Rows per known category, then rows in any other category, then missing.
fn categorical_counts(categories: &[String], values: &[Option<String>]) -> Vec<usize> {
    let index: HashMap<&str, usize> = categories
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let other = categories.len();
    let mut counts = vec![0; other + 2];
    for v in values {
        let bucket = match v {
            Some(v) => index.get(v.as_str()).copied().unwrap_or(other),
            None => other + 1,
        };
        counts[bucket] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        let income: Vec<f64> = (0..10_000)
            .map(|i| if i % 10 == 0 { f64::NAN } else { f64::from(i) })
            .collect();
        let home: Vec<Option<String>> = (0..10_000)
            .map(|i| match i % 4 {
                0 => None,
                1 => Some("rent".into()),
                _ => Some("own".into()),
            })
            .collect();
        Frame::new(vec![
            Column::numeric("income", income),
            Column::categorical("home", home),
            Column::numeric("bad", vec![0.0; 10_000]),
        ])
        .unwrap()
    }

    #[test]
    fn round_trips_through_json_and_skips_the_target() {
        let reference = Reference::build(&frame(), "bad", &DriftOptions::default());
        assert_eq!(reference.columns.len(), 2);
        assert!(reference.column("bad").is_none());
        let json = serde_json::to_string(&reference).unwrap();
        let back: Reference = serde_json::from_str(&json).unwrap();
        assert_eq!(back, reference);
    }

    #[test]
    fn numeric_profile_bins_samples_and_quartiles() {
        let reference = Reference::build(&frame(), "bad", &DriftOptions::default());
        let Some(ReferenceColumn::Numeric {
            edges,
            shares,
            sample,
            q1,
            q3,
            ..
        }) = reference.column("income")
        else {
            panic!("income is numeric");
        };
        assert_eq!(edges.len(), 9);
        assert_eq!(sample.len(), SAMPLE_SIZE);
        assert!(sample.windows(2).all(|w| w[0] <= w[1]));
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!((shares[10] - 0.1).abs() < 1e-9, "missing bucket");
        for &bin in &shares[..10] {
            assert!((bin - 0.09).abs() < 0.002, "{bin}");
        }
        assert!((q1 - 2500.0).abs() < 20.0 && (q3 - 7500.0).abs() < 20.0);
    }

    #[test]
    fn tied_values_give_deduplicated_edges() {
        let flags: Vec<f64> = (0..100).map(|i| f64::from(i % 3 == 0)).collect();
        let profile = numeric("flag", &flags, 10);
        let ReferenceColumn::Numeric { edges, .. } = &profile else {
            panic!("numeric");
        };
        assert_eq!(edges.len(), 2, "{edges:?}");
        let batch = Column::numeric("flag", vec![0.0, 1.0, f64::NAN]);
        assert_eq!(profile.bucket_counts(&batch), Some(vec![1, 1, 0, 1]));
    }

    #[test]
    fn categorical_profile_shares_and_unseen_bucket() {
        let reference = Reference::build(&frame(), "bad", &DriftOptions::default());
        let home = reference.column("home").unwrap();
        assert_eq!(home.kind(), ColumnKind::Categorical);
        assert_eq!(home.shares(), &[0.5, 0.25, 0.0, 0.25]);
        let batch =
            Column::categorical("home", vec![Some("own".into()), Some("lease".into()), None]);
        assert_eq!(home.bucket_counts(&batch), Some(vec![1, 0, 1, 1]));
        assert_eq!(
            home.bucket_counts(&Column::numeric("home", vec![1.0])),
            None
        );
    }

    #[test]
    fn rare_categories_share_one_bucket() {
        let values: Vec<Option<String>> = (0..1_000).map(|i| Some(format!("id{i}"))).collect();
        let ReferenceColumn::Categorical {
            categories, shares, ..
        } = categorical("id", &values)
        else {
            panic!("categorical");
        };
        assert_eq!(categories.len(), MAX_CATEGORIES);
        assert!((shares[MAX_CATEGORIES] - 0.9).abs() < 1e-12);
    }

    #[test]
    fn empty_columns_stay_finite() {
        let empty = numeric("x", &[f64::NAN, f64::INFINITY], 10);
        assert_eq!(empty.shares(), &[0.0, 1.0]);
        serde_json::to_string(&empty).unwrap();
        assert_eq!(categorical("c", &[]).shares(), &[0.0, 0.0]);
    }
}
