use kaskad_prepare::Matrix;
use serde::{Deserialize, Serialize};

use crate::shap::{ShapTree, tree_shap};

/// A CART classification tree grown with Gini impurity.
///
/// Split search runs on histograms: each feature is cut into at most
/// [`MAX_BINS`] bins once (midpoints between distinct values when there are
/// few, quantiles otherwise), so a node costs one pass over its rows per
/// feature instead of a sort. A row goes left when `x[feature] <= threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionTree {
    /// Node 0 is the root.
    pub nodes: Vec<Node>,
}

/// One node; every node keeps its training row count and positive rate so
/// the tree can be read (and explained) without the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "lowercase")]
pub enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
        samples: usize,
        probability: f64,
    },
    Leaf {
        samples: usize,
        probability: f64,
    },
}

const MAX_BINS: usize = 256;

/// The training data cut into bins, column by column.
struct Binned {
    /// `edges[f][j]`: the threshold between bin `j` and bin `j + 1`.
    edges: Vec<Vec<f64>>,
    /// `bins[f][row]`; at most 255 edges, so a bin fits a byte.
    bins: Vec<Vec<u8>>,
}

impl Binned {
    fn new(x: &Matrix) -> Self {
        let mut edges = Vec::with_capacity(x.cols);
        let mut bins = Vec::with_capacity(x.cols);
        // One pass to column-major: strided reads per feature would walk the
        // whole row-major matrix once per column.
        let mut columns = vec![Vec::with_capacity(x.rows); x.cols];
        for i in 0..x.rows {
            for (column, &v) in columns.iter_mut().zip(x.row(i)) {
                column.push(v);
            }
        }
        for column in columns {
            let cut: Vec<f64> = match few_distinct(&column) {
                Some(distinct) => distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect(),
                None => {
                    let mut sorted = column.clone();
                    sorted.sort_unstable_by(f64::total_cmp);
                    let mut cut: Vec<f64> = (1..MAX_BINS)
                        .map(|k| sorted[k * sorted.len() / MAX_BINS])
                        .collect();
                    cut.dedup();
                    cut
                }
            };
            bins.push(
                column
                    .iter()
                    .map(|v| cut.partition_point(|e| e < v) as u8)
                    .collect(),
            );
            edges.push(cut);
        }
        Self { edges, bins }
    }
}

/// The sorted distinct values of `column` when there are fewer than
/// [`MAX_BINS`] of them (one-hot flags, codes, small counts), found without
/// sorting the whole column.
fn few_distinct(column: &[f64]) -> Option<Vec<f64>> {
    let mut distinct: Vec<f64> = Vec::new();
    for &v in column {
        if !distinct.contains(&v) {
            if distinct.len() == MAX_BINS - 1 {
                return None;
            }
            distinct.push(v);
        }
    }
    distinct.sort_unstable_by(f64::total_cmp);
    Some(distinct)
}

struct Grower<'a> {
    binned: &'a Binned,
    y: &'a [u8],
    max_depth: usize,
    min_samples_leaf: usize,
    nodes: Vec<Node>,
}

struct BestSplit {
    feature: usize,
    bin: usize,
    impurity: f64,
}

impl DecisionTree {
    pub fn fit(x: &Matrix, y: &[u8], max_depth: usize, min_samples_leaf: usize) -> Self {
        let binned = Binned::new(x);
        let mut grower = Grower {
            binned: &binned,
            y,
            max_depth,
            min_samples_leaf: min_samples_leaf.max(1),
            nodes: Vec::new(),
        };
        grower.grow((0..x.rows).collect(), 0);
        Self {
            nodes: grower.nodes,
        }
    }

    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .map(|i| self.leaf_probability(x.row(i)))
            .collect()
    }

    fn leaf_probability(&self, row: &[f64]) -> f64 {
        let mut at = 0;
        loop {
            match &self.nodes[at] {
                Node::Leaf { probability, .. } => return *probability,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                    ..
                } => {
                    at = if row[*feature] <= *threshold {
                        *left
                    } else {
                        *right
                    }
                }
            }
        }
    }

    /// Exact TreeSHAP values of the probability: the root's rate (the
    /// cover-weighted mean of the leaves) plus a row's contributions equals
    /// its score.
    pub fn contributions(&self, x: &Matrix) -> Matrix {
        let mut out = Matrix::zeros(x.rows, x.cols);
        for i in 0..x.rows {
            tree_shap(self, x.row(i), &mut out.data[i * x.cols..(i + 1) * x.cols]);
        }
        out
    }

    /// The number of levels below the root.
    pub fn depth(&self) -> usize {
        fn below(nodes: &[Node], at: usize) -> usize {
            match &nodes[at] {
                Node::Leaf { .. } => 0,
                Node::Split { left, right, .. } => {
                    1 + below(nodes, *left).max(below(nodes, *right))
                }
            }
        }
        below(&self.nodes, 0)
    }
}

impl ShapTree for DecisionTree {
    fn step(&self, node: usize, row: &[f64]) -> Option<(usize, usize, usize)> {
        match &self.nodes[node] {
            Node::Leaf { .. } => None,
            Node::Split {
                feature,
                threshold,
                left,
                right,
                ..
            } => Some(if row[*feature] <= *threshold {
                (*feature, *left, *right)
            } else {
                (*feature, *right, *left)
            }),
        }
    }

    fn cover(&self, node: usize) -> f64 {
        match &self.nodes[node] {
            Node::Leaf { samples, .. } | Node::Split { samples, .. } => *samples as f64,
        }
    }

    fn leaf_value(&self, node: usize) -> f64 {
        match &self.nodes[node] {
            Node::Leaf { probability, .. } | Node::Split { probability, .. } => *probability,
        }
    }
}

/// Sum over both children of `2·pos·neg/n`: the Gini impurity weighted by size.
fn weighted_gini(n: usize, pos: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    2.0 * pos as f64 * (n - pos) as f64 / n as f64
}

impl Grower<'_> {
    /// Grows the subtree over `rows`, returning its node index.
    fn grow(&mut self, rows: Vec<usize>, depth: usize) -> usize {
        let samples = rows.len();
        let positives = rows.iter().filter(|&&r| self.y[r] == 1).count();
        let probability = positives as f64 / samples.max(1) as f64;
        let at = self.nodes.len();
        self.nodes.push(Node::Leaf {
            samples,
            probability,
        });
        let pure = positives == 0 || positives == samples;
        if depth >= self.max_depth || pure || samples < 2 * self.min_samples_leaf {
            return at;
        }
        let Some(best) = self.best_split(&rows, positives) else {
            return at;
        };
        let feature_bins = &self.binned.bins[best.feature];
        let (left_rows, right_rows): (Vec<usize>, Vec<usize>) = rows
            .into_iter()
            .partition(|&r| usize::from(feature_bins[r]) <= best.bin);
        let left = self.grow(left_rows, depth + 1);
        let right = self.grow(right_rows, depth + 1);
        self.nodes[at] = Node::Split {
            feature: best.feature,
            threshold: self.binned.edges[best.feature][best.bin],
            left,
            right,
            samples,
            probability,
        };
        at
    }

    fn best_split(&self, rows: &[usize], positives: usize) -> Option<BestSplit> {
        let parent = weighted_gini(rows.len(), positives);
        let mut best: Option<BestSplit> = None;
        let mut counts = vec![0usize; MAX_BINS + 1];
        let mut pos = vec![0usize; MAX_BINS + 1];
        for (feature, edges) in self.binned.edges.iter().enumerate() {
            if edges.is_empty() {
                continue;
            }
            let bins = &self.binned.bins[feature];
            counts[..=edges.len()].fill(0);
            pos[..=edges.len()].fill(0);
            for &r in rows {
                let b = usize::from(bins[r]);
                counts[b] += 1;
                pos[b] += usize::from(self.y[r]);
            }
            let (mut left_n, mut left_pos) = (0, 0);
            for bin in 0..edges.len() {
                left_n += counts[bin];
                left_pos += pos[bin];
                let right_n = rows.len() - left_n;
                if left_n < self.min_samples_leaf {
                    continue;
                }
                if right_n < self.min_samples_leaf {
                    break;
                }
                let impurity =
                    weighted_gini(left_n, left_pos) + weighted_gini(right_n, positives - left_pos);
                if impurity < parent - 1e-12 && best.as_ref().is_none_or(|b| impurity < b.impurity)
                {
                    best = Some(BestSplit {
                        feature,
                        bin,
                        impurity,
                    });
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_threshold_exactly() {
        let x = Matrix {
            rows: 6,
            cols: 1,
            data: vec![1.0, 2.0, 3.0, 10.0, 11.0, 12.0],
        };
        let tree = DecisionTree::fit(&x, &[0, 0, 0, 1, 1, 1], 3, 1);
        assert_eq!(tree.depth(), 1);
        let Node::Split { threshold, .. } = tree.nodes[0] else {
            panic!("root should split")
        };
        assert_eq!(threshold, 6.5);
        assert_eq!(tree.predict_proba(&x), vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn contributions_add_up_to_the_score() {
        let (x, y) = crate::testdata::logistic(1_000, 9);
        let tree = DecisionTree::fit(&x, &y, 4, 20);
        let Node::Split {
            probability: root, ..
        } = tree.nodes[0]
        else {
            panic!("root should split")
        };
        let scores = tree.predict_proba(&x);
        let c = tree.contributions(&x);
        for (i, score) in scores.iter().enumerate() {
            assert!((root + c.row(i).iter().sum::<f64>() - score).abs() < 1e-12);
        }
    }

    #[test]
    fn contributions_are_the_exact_shapley_values() {
        let (x, y) = crate::testdata::logistic(1_000, 13);
        let tree = DecisionTree::fit(&x, &y, 5, 10);
        let c = tree.contributions(&x);
        for i in (0..x.rows).step_by(97) {
            let exact = crate::shap::brute_force::shapley(&tree, x.row(i));
            for (got, want) in c.row(i).iter().zip(&exact) {
                assert!((got - want).abs() < 1e-12, "row {i}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn shap_values_match_the_shap_library() {
        // The tree of bench/peers/reference_values.py; the numbers are
        // shap 0.51's TreeExplainer (path-dependent) on it.
        let split = |feature, threshold, left, right, samples, probability| Node::Split {
            feature,
            threshold,
            left,
            right,
            samples,
            probability,
        };
        let leaf = |samples, probability| Node::Leaf {
            samples,
            probability,
        };
        let tree = DecisionTree {
            nodes: vec![
                split(0, 0.5, 1, 2, 100, 0.3),
                split(1, 1.5, 3, 4, 60, 0.2),
                split(0, 2.5, 5, 6, 40, 0.45),
                leaf(20, 0.1),
                split(2, 0.0, 7, 8, 40, 0.25),
                leaf(25, 0.6),
                leaf(15, 0.2),
                leaf(10, 0.7),
                leaf(30, 0.1),
            ],
        };
        let x = Matrix {
            rows: 4,
            cols: 3,
            data: vec![0.0, 1.0, 0.5, 1.0, 2.0, -1.0, 3.0, 0.0, 1.0, 2.0, 5.0, -2.0],
        };
        let expected = [
            [
                -0.12666666666666665,
                -0.03666666666666665,
                -0.03666666666666667,
            ],
            [
                0.16499999999999995,
                0.030000000000000006,
                0.10499999999999998,
            ],
            [
                -0.05999999999999999,
                -0.019999999999999993,
                -0.019999999999999997,
            ],
            [
                0.16499999999999995,
                0.030000000000000006,
                0.10499999999999998,
            ],
        ];
        let c = tree.contributions(&x);
        for (i, want) in expected.iter().enumerate() {
            for (got, want) in c.row(i).iter().zip(want) {
                assert!((got - want).abs() < 1e-12, "row {i}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn respects_depth_and_leaf_size() {
        let (x, y) = crate::testdata::logistic(2_000, 6);
        let tree = DecisionTree::fit(&x, &y, 4, 50);
        assert!(tree.depth() <= 4);
        for node in &tree.nodes {
            if let Node::Leaf { samples, .. } = node {
                assert!(*samples >= 50);
            }
        }
        // The noise feature (index 2) should matter less than the signal.
        let splits_on = |f: usize| {
            tree.nodes
                .iter()
                .filter(|n| matches!(n, Node::Split { feature, .. } if *feature == f))
                .count()
        };
        assert!(splits_on(1) > splits_on(2));
    }

    #[test]
    fn many_distinct_values_are_binned() {
        let (x, y) = crate::testdata::logistic(5_000, 7);
        let binned = Binned::new(&x);
        assert!(binned.edges[0].len() < MAX_BINS);
        let tree = DecisionTree::fit(&x, &y, 6, 20);
        let auc_proxy = tree
            .predict_proba(&x)
            .iter()
            .zip(&y)
            .filter(|(p, y)| (**p >= 0.5) == (**y == 1))
            .count() as f64
            / y.len() as f64;
        assert!(auc_proxy > 0.7, "accuracy {auc_proxy}");
    }
}
