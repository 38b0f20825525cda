//! What a kNN score rests on: the kept training rows nearest to an
//! application, and which features pull it towards the defaulters among
//! them (kNN's reason codes).
//!
//! A kNN model keeps encoded rows only (the preprocessor's output, after
//! the reservoir sample), with their labels: not the raw values, not which
//! training row each came from.

use kaskad_prepare::Matrix;

use crate::NearestNeighbours;
use crate::knn_index::Among;

/// One kept training row near a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    /// Index among the model's kept rows.
    pub index: usize,
    /// Euclidean distance in the encoded feature space.
    pub distance: f64,
    pub label: u8,
}

impl NearestNeighbours {
    /// The `k` kept rows nearest to `query` (encoded), nearest first; ties
    /// by kept-row index, so the answer is reproducible.
    pub fn neighbours(&self, query: &[f64], k: usize) -> Vec<Neighbour> {
        self.index()
            .nearest(&self.rows, &self.labels, query, k, Among::All)
    }

    /// Each row's pull towards default, per feature: with `D` the model's
    /// `k` kept defaulting rows nearest to the row and `G` its `k` nearest
    /// kept non-defaulting rows,
    ///
    /// ```text
    /// c_j = mean over g in G of (x_j − g_j)²  −  mean over d in D of (x_j − d_j)²
    /// ```
    ///
    /// A positive `c_j` says that on feature `j` the row sits closer to the
    /// defaulters near it than to the good payers near it. The terms add
    /// up over features to the gap in mean squared distance between the
    /// two groups, the quantity a distance-based score turns on, so the
    /// features with the largest `c_j` are the ones that make the row look
    /// like its defaulting neighbours. Each class gets its own `k` nearest
    /// so that the comparison exists even when all of the row's plain
    /// neighbours share one label. Rows of a model that kept a single
    /// class get zeros.
    pub fn contributions(&self, x: &Matrix) -> Matrix {
        let index = self.index();
        let mut data = Vec::with_capacity(x.rows * x.cols);
        for i in 0..x.rows {
            let query = x.row(i);
            let nearest = |among| index.nearest(&self.rows, &self.labels, query, self.k, among);
            let (bad, good) = (nearest(Among::Defaulters), nearest(Among::Others));
            if bad.is_empty() || good.is_empty() {
                data.extend(std::iter::repeat_n(0.0, x.cols));
                continue;
            }
            let spread = |group: &[Neighbour], j: usize| {
                group
                    .iter()
                    .map(|n| (query[j] - self.rows.row(n.index)[j]).powi(2))
                    .sum::<f64>()
                    / group.len() as f64
            };
            data.extend((0..x.cols).map(|j| spread(&good, j) - spread(&bad, j)));
        }
        Matrix {
            rows: x.rows,
            cols: x.cols,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two features: the first separates the classes, the second is noise
    /// that the good payers near the query happen to share with it.
    fn model() -> NearestNeighbours {
        let x = Matrix {
            rows: 6,
            cols: 2,
            data: vec![
                0.0, 5.0, // good
                0.2, 5.1, // good
                3.0, 5.0, // good, far on feature 0
                1.0, 0.0, // bad
                1.1, 0.2, // bad
                9.0, 9.0, // bad, far
            ],
        };
        NearestNeighbours::fit(&x, &[0, 0, 0, 1, 1, 1], 2, 100, 1)
    }

    #[test]
    fn neighbours_are_the_nearest_kept_rows_in_order() {
        let found = model().neighbours(&[1.0, 0.1], 3);
        let indices: Vec<usize> = found.iter().map(|n| n.index).collect();
        assert_eq!(indices, vec![3, 4, 0]);
        assert!((found[0].distance - 0.1).abs() < 1e-12);
        assert_eq!(found[0].label, 1);
        assert!(found.windows(2).all(|w| w[0].distance <= w[1].distance));
        assert_eq!(model().neighbours(&[0.0, 0.0], 99).len(), 6);
    }

    #[test]
    fn contributions_name_the_feature_shared_with_the_defaulters() {
        // The query matches the defaulters on feature 1 (near 0) and sits
        // between the groups on feature 0.
        let query = Matrix {
            rows: 1,
            cols: 2,
            data: vec![0.6, 0.1],
        };
        let c = model().contributions(&query);
        // Nearest bad: rows 3, 4; nearest good: rows 0, 1.
        let mean_squared = |j: usize, values: [f64; 2]| {
            values
                .iter()
                .map(|v| (query.data[j] - v).powi(2))
                .sum::<f64>()
                / 2.0
        };
        let expected_1 = mean_squared(1, [5.0, 5.1]) - mean_squared(1, [0.0, 0.2]);
        let expected_0 = mean_squared(0, [0.0, 0.2]) - mean_squared(0, [1.0, 1.1]);
        assert!((c.data[1] - expected_1).abs() < 1e-12);
        assert!((c.data[0] - expected_0).abs() < 1e-12);
        assert!(c.data[1] > c.data[0] && c.data[1] > 20.0, "{:?}", c.data);
        // A row like the good payers is pulled away from default on both.
        let good_row = Matrix {
            rows: 1,
            cols: 2,
            data: vec![0.1, 5.0],
        };
        let c = model().contributions(&good_row);
        assert!(c.data.iter().all(|&v| v < 0.0), "{:?}", c.data);
    }
}
