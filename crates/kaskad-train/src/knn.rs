use std::sync::Arc;

use kaskad_prepare::Matrix;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::Neighbour;
use crate::derived::Derived;
use crate::knn_index::{Among, SearchIndex, nearest_by_products};

/// k nearest neighbours by Euclidean distance; the score is the share of
/// positives among the `k` nearest training rows.
///
/// Training rows beyond `max_rows` are sampled down (reservoir sampling with
/// the configured seed) so that the artifact and scoring time stay bounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearestNeighbours {
    pub k: usize,
    pub rows: Matrix,
    pub labels: Vec<u8>,
    /// Training rows offered so far; the reservoir continues from here.
    #[serde(default)]
    pub seen: usize,
    #[serde(skip)]
    /// The kept rows regrouped for search.
    index: Derived<Arc<SearchIndex>>,
}

impl NearestNeighbours {
    pub fn fit(x: &Matrix, y: &[u8], k: usize, max_rows: usize, seed: u64) -> Self {
        let keep = reservoir(x.rows, max_rows.max(1), seed);
        Self {
            k: k.max(1),
            rows: x.take_rows(&keep),
            labels: keep.iter().map(|&r| y[r]).collect(),
            seen: x.rows,
            index: Derived::default(),
        }
    }

    /// Offers the rows that arrived since to the reservoir: appended while
    /// there is room, then each replaces a kept row with probability
    /// `max_rows / seen`, so the kept rows stay a uniform sample of all rows.
    pub fn append(&self, x: &Matrix, y: &[u8], k: usize, max_rows: usize, seed: u64) -> Self {
        let max_rows = max_rows.max(1);
        let mut rng = SmallRng::seed_from_u64(seed ^ self.seen as u64);
        let mut rows = self.rows.clone();
        let mut labels = self.labels.clone();
        let mut seen = self.seen.max(labels.len());
        for (i, &label) in y.iter().enumerate().take(x.rows) {
            seen += 1;
            if labels.len() < max_rows {
                rows.data.extend_from_slice(x.row(i));
                rows.rows += 1;
                labels.push(label);
            } else {
                let j = rng.random_range(0..seen);
                if j < max_rows {
                    rows.data[j * rows.cols..(j + 1) * rows.cols].copy_from_slice(x.row(i));
                    labels[j] = label;
                }
            }
        }
        Self {
            k: k.max(1),
            rows,
            labels,
            seen,
            index: Derived::default(),
        }
    }

    /// The share of positives among each row's `k` nearest kept rows (the
    /// rows [`NearestNeighbours::neighbours`] returns); large batches split
    /// their rows between two threads.
    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        let k = self.k.min(self.labels.len());
        let mut scores = vec![0.0; x.rows];
        if k == 0 || x.rows == 0 {
            return scores;
        }
        let index = self.index();
        let share = |nearest: Vec<Neighbour>| {
            nearest.iter().filter(|n| n.label == 1).count() as f64 / k as f64
        };
        let (order, norms): (Vec<usize>, Vec<f64>) = if index.prunes() {
            let mut by_locality: Vec<(usize, usize)> =
                (0..x.rows).map(|i| (index.locality(x.row(i)), i)).collect();
            by_locality.sort_unstable();
            (
                by_locality.into_iter().map(|(_, i)| i).collect(),
                Vec::new(),
            )
        } else {
            let norms = (0..self.rows.rows)
                .map(|j| self.rows.row(j).iter().map(|v| v * v).sum())
                .collect();
            ((0..x.rows).collect(), norms)
        };
        let score = |part: &[usize]| -> Vec<f64> {
            if index.prunes() {
                part.iter()
                    .map(|&i| {
                        share(index.nearest(&self.rows, &self.labels, x.row(i), k, Among::All))
                    })
                    .collect()
            } else {
                // `part` is consecutive rows here.
                part.chunks(QUERY_BLOCK)
                    .flat_map(|block| {
                        let rows = block[0]..block[0] + block.len();
                        nearest_by_products(&self.rows, &self.labels, &norms, x, rows, k)
                    })
                    .map(share)
                    .collect()
            }
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(2);
        let scored = if threads > 1 && x.rows >= PARALLEL_ROWS {
            let (low, high) = order.split_at(x.rows / 2);
            std::thread::scope(|scope| {
                let low = scope.spawn(|| score(low));
                let high = score(high);
                let mut low = low.join().expect("the scoring thread finishes");
                low.extend(high);
                low
            })
        } else {
            score(&order)
        };
        for (&i, score) in order.iter().zip(scored) {
            scores[i] = score;
        }
        scores
    }

    /// The kept rows regrouped for search, built on first use.
    pub(crate) fn index(&self) -> &SearchIndex {
        self.index
            .get_or_init(|| Arc::new(SearchIndex::build(&self.rows, &self.labels)))
    }
}

/// Batches from this many rows are scored on two threads.
const PARALLEL_ROWS: usize = 128;
/// Queries per matrix product when batches are scanned whole.
const QUERY_BLOCK: usize = 64;

/// Row indices of a uniform sample of `keep` rows out of `rows`, in row order.
fn reservoir(rows: usize, keep: usize, seed: u64) -> Vec<usize> {
    if rows <= keep {
        return (0..rows).collect();
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut sample: Vec<usize> = (0..keep).collect();
    for r in keep..rows {
        let j = rng.random_range(0..=r);
        if j < keep {
            sample[j] = r;
        }
    }
    sample.sort_unstable();
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_by_nearest_labels() {
        let x = Matrix {
            rows: 4,
            cols: 1,
            data: vec![0.0, 0.1, 5.0, 5.1],
        };
        let model = NearestNeighbours::fit(&x, &[0, 0, 1, 1], 2, 100, 1);
        let query = Matrix {
            rows: 2,
            cols: 1,
            data: vec![0.05, 4.9],
        };
        assert_eq!(model.predict_proba(&query), vec![0.0, 1.0]);
    }

    #[test]
    fn preparing_for_scoring_builds_the_index_once() {
        let x = Matrix {
            rows: 4,
            cols: 1,
            data: vec![0.0, 0.1, 5.0, 5.1],
        };
        let model = crate::Model::Knn(NearestNeighbours::fit(&x, &[0, 0, 1, 1], 2, 100, 1));
        assert!(format!("{model:?}").contains("Derived(empty)"));
        model.prepare_for_scoring();
        assert!(format!("{model:?}").contains("Derived(built)"));
    }

    #[test]
    fn scores_are_the_label_share_of_the_brute_force_neighbours() {
        // Enough queries for two threads; continuous features, so no two
        // distances tie and the brute-force order is the only one.
        let (x, y) = crate::testdata::logistic(5_000, 17);
        let model = NearestNeighbours::fit(&x, &y, 25, 4_500, 3);
        let queries = x.take_rows(&(0..300).collect::<Vec<_>>());
        let scores = model.predict_proba(&queries);
        for (i, score) in scores.iter().enumerate() {
            let mut direct: Vec<(f64, u8)> = (0..model.rows.rows)
                .map(|j| {
                    let d = queries
                        .row(i)
                        .iter()
                        .zip(model.rows.row(j))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    (d, model.labels[j])
                })
                .collect();
            direct.sort_by(|a, b| a.0.total_cmp(&b.0));
            let want = direct[..25].iter().filter(|d| d.1 == 1).count();
            assert_eq!(*score, want as f64 / 25.0, "row {i}");
        }
    }

    #[test]
    fn appending_keeps_a_bounded_uniform_sample() {
        let x = |rows: usize, start: f64| Matrix {
            rows,
            cols: 1,
            data: (0..rows).map(|i| start + i as f64).collect(),
        };
        let model = NearestNeighbours::fit(&x(50, 0.0), &[0; 50], 3, 100, 1);
        let grown = model.append(&x(50, 50.0), &[1; 50], 3, 100, 1);
        assert_eq!((grown.labels.len(), grown.seen), (100, 100));
        let capped = grown.append(&x(900, 100.0), &[1; 900], 3, 100, 1);
        assert_eq!((capped.labels.len(), capped.seen), (100, 1_000));
        // A uniform sample of 1000 rows keeps about 5 % of the first 50.
        let early = capped.rows.data.iter().filter(|v| **v < 50.0).count();
        assert!(early <= 15, "{early} of the first 50 rows kept");
    }

    #[test]
    fn samples_down_to_max_rows_reproducibly() {
        let a = reservoir(1_000, 100, 9);
        assert_eq!(a.len(), 100);
        assert_eq!(a, reservoir(1_000, 100, 9));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(*a.last().unwrap() > 500, "sample should reach late rows");
    }
}
