use kaskad_prepare::Matrix;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, Axis, Slice};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

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
}

impl NearestNeighbours {
    pub fn fit(x: &Matrix, y: &[u8], k: usize, max_rows: usize, seed: u64) -> Self {
        let keep = reservoir(x.rows, max_rows.max(1), seed);
        Self {
            k: k.max(1),
            rows: x.take_rows(&keep),
            labels: keep.iter().map(|&r| y[r]).collect(),
            seen: x.rows,
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
        }
    }

    /// The share of positives among each row's `k` nearest kept rows.
    /// Distances come blockwise from one matrix product per block
    /// (`‖q‖² + ‖t‖² − 2·q·t`), the `k` nearest by partial selection; large
    /// batches split their rows between two threads.
    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        let k = self.k.min(self.labels.len());
        let mut scores = vec![0.0; x.rows];
        if k == 0 || x.rows == 0 {
            return scores;
        }
        let train_norms: Vec<f64> = (0..self.rows.rows)
            .map(|j| self.rows.row(j).iter().map(|v| v * v).sum())
            .collect();
        let score = |first: usize, out: &mut [f64]| {
            for (block, out) in out.chunks_mut(QUERY_BLOCK).enumerate() {
                let start = first + block * QUERY_BLOCK;
                let nearest = self.nearest_labels(x, start..start + out.len(), k, &train_norms);
                for (score, labels) in out.iter_mut().zip(nearest) {
                    *score = labels.iter().filter(|&&y| y == 1).count() as f64 / k as f64;
                }
            }
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(2);
        if threads > 1 && x.rows >= 2 * QUERY_BLOCK {
            let (low, high) = scores.split_at_mut(x.rows / 2);
            std::thread::scope(|scope| {
                scope.spawn(|| score(0, low));
                score(x.rows / 2, high);
            });
        } else {
            score(0, &mut scores);
        }
        scores
    }

    /// The labels of the `k` nearest kept rows of each of `queries`.
    fn nearest_labels(
        &self,
        x: &Matrix,
        queries: std::ops::Range<usize>,
        k: usize,
        train_norms: &[f64],
    ) -> Vec<Vec<u8>> {
        let cols = x.cols;
        let q = ArrayView2::from_shape(
            (queries.len(), cols),
            &x.data[queries.start * cols..queries.end * cols],
        )
        .expect("rows × cols elements");
        let train = ArrayView2::from_shape((self.rows.rows, cols), &self.rows.data)
            .expect("rows × cols elements");
        let query_norms: Vec<f64> = q.rows().into_iter().map(|r| r.dot(&r)).collect();
        let mut best: Vec<Vec<(f64, u8)>> =
            vec![Vec::with_capacity(2 * k + TRAIN_BLOCK); queries.len()];
        let mut worst = vec![f64::INFINITY; queries.len()];
        let mut products = Array2::<f64>::zeros((queries.len(), TRAIN_BLOCK.min(self.rows.rows)));
        for start in (0..self.rows.rows).step_by(TRAIN_BLOCK) {
            let end = (start + TRAIN_BLOCK).min(self.rows.rows);
            let block = train.slice_axis(Axis(0), Slice::from(start..end));
            let mut products = products.slice_axis_mut(Axis(1), Slice::from(0..end - start));
            general_mat_mul(-2.0, &q, &block.t(), 0.0, &mut products);
            for (i, row) in products.rows().into_iter().enumerate() {
                let (best, worst) = (&mut best[i], &mut worst[i]);
                for (j, &p) in row.iter().enumerate() {
                    let d = query_norms[i] + train_norms[start + j] + p;
                    if d < *worst || best.len() < k {
                        best.push((d, self.labels[start + j]));
                    }
                }
                if best.len() >= 2 * k {
                    best.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
                    best.truncate(k);
                    *worst = best.iter().map(|b| b.0).fold(f64::MIN, f64::max);
                }
            }
        }
        best.into_iter()
            .map(|mut b| {
                if b.len() > k {
                    b.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
                    b.truncate(k);
                }
                b.into_iter().map(|(_, y)| y).collect()
            })
            .collect()
    }
}

/// Queries per matrix product: with [`TRAIN_BLOCK`] kept rows, the product
/// (1 MiB) stays in cache.
const QUERY_BLOCK: usize = 64;
const TRAIN_BLOCK: usize = 2048;

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
    fn blocked_distances_find_the_brute_force_neighbours() {
        // More queries and kept rows than one block of each, so blocks are
        // merged; continuous features, so no two distances tie.
        let (x, y) = crate::testdata::logistic(5_000, 17);
        let model = NearestNeighbours::fit(&x, &y, 25, 4_500, 3);
        let queries = x.take_rows(&(0..300).collect::<Vec<_>>());
        let train_norms: Vec<f64> = (0..model.rows.rows)
            .map(|j| model.rows.row(j).iter().map(|v| v * v).sum())
            .collect();
        let blocked = model.nearest_labels(&queries, 0..queries.rows, 25, &train_norms);
        let scores = model.predict_proba(&queries);
        for (i, labels) in blocked.iter().enumerate() {
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
            let positives =
                |labels: &mut dyn Iterator<Item = u8>| labels.filter(|&l| l == 1).count();
            let want = positives(&mut direct[..25].iter().map(|d| d.1));
            assert_eq!(labels.len(), 25);
            assert_eq!(positives(&mut labels.iter().copied()), want, "row {i}");
            assert_eq!(scores[i], want as f64 / 25.0);
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
