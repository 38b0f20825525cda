use kaskad_prepare::Matrix;
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
}

impl NearestNeighbours {
    pub fn fit(x: &Matrix, y: &[u8], k: usize, max_rows: usize, seed: u64) -> Self {
        let keep = reservoir(x.rows, max_rows.max(1), seed);
        Self {
            k: k.max(1),
            rows: x.take_rows(&keep),
            labels: keep.iter().map(|&r| y[r]).collect(),
        }
    }

    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        let k = self.k.min(self.labels.len());
        let mut distances: Vec<(f64, u8)> = Vec::with_capacity(self.labels.len());
        (0..x.rows)
            .map(|i| {
                let query = x.row(i);
                distances.clear();
                distances.extend((0..self.rows.rows).map(|j| {
                    let d: f64 = query
                        .iter()
                        .zip(self.rows.row(j))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    (d, self.labels[j])
                }));
                distances.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
                let positives = distances[..k].iter().filter(|(_, y)| *y == 1).count();
                positives as f64 / k as f64
            })
            .collect()
    }
}

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
    fn samples_down_to_max_rows_reproducibly() {
        let a = reservoir(1_000, 100, 9);
        assert_eq!(a.len(), 100);
        assert_eq!(a, reservoir(1_000, 100, 9));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(*a.last().unwrap() > 500, "sample should reach late rows");
    }
}
