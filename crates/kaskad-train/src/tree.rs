use kaskad_prepare::Matrix;
use serde::{Deserialize, Serialize};

use crate::histogram::{Binned, MAX_BINS, Stat};
use crate::shap::{ShapTree, tree_shap};

/// A CART classification tree grown with Gini impurity.
///
/// Split search runs on histograms of class counts, with the boosted
/// trees' binned data (the `histogram` module): each feature is cut once
/// into at most [`MAX_BINS`] bins (one per distinct value when there are
/// few, quantiles otherwise; thresholds halfway between neighbouring
/// values), exclusive features (one-hot levels, missing flags) share a
/// histogram group, and of two children only the smaller one's histogram
/// is counted from its rows: the larger one's is the parent's minus it.
/// A row goes left when `x[feature] <= threshold`, so a missing (NaN)
/// value goes right.
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

struct Grower<'a> {
    binned: &'a Binned,
    /// 1.0 for the positive class, per row.
    labels: Vec<f64>,
    /// Every row weighs 1: the histograms' hessian slot.
    weights: Vec<f64>,
    max_depth: usize,
    min_samples_leaf: usize,
    /// Row indices grouped by node, ascending within a node.
    order: Vec<u32>,
    scratch: Vec<u32>,
    /// A node's labels in `order`, so histogram building reads them in sequence.
    leaf_labels: Vec<f64>,
    /// A zeroed histogram that histogram building uses alongside.
    spare: Vec<Stat>,
    /// Histograms no node holds.
    pool: Vec<Vec<Stat>>,
    threads: usize,
    nodes: Vec<Node>,
}

struct BestSplit {
    feature: usize,
    /// The last value bin that goes left.
    bin: usize,
    impurity: f64,
    left: Stat,
}

impl DecisionTree {
    pub fn fit(x: &Matrix, y: &[u8], max_depth: usize, min_samples_leaf: usize) -> Self {
        let binned = Binned::new(x, x.rows);
        let labels: Vec<f64> = y.iter().map(|&v| f64::from(u8::from(v == 1))).collect();
        let mut grower = Grower {
            binned: &binned,
            labels,
            weights: vec![1.0; x.rows],
            max_depth,
            min_samples_leaf: min_samples_leaf.max(1),
            order: (0..x.rows as u32).collect(),
            scratch: Vec::with_capacity(x.rows),
            leaf_labels: Vec::with_capacity(x.rows),
            spare: vec![Stat::default(); binned.bins_total],
            pool: Vec::new(),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            nodes: Vec::new(),
        };
        grower.grow_root();
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
    fn split(&self, node: usize) -> Option<(usize, usize, usize)> {
        match &self.nodes[node] {
            Node::Leaf { .. } => None,
            Node::Split {
                feature,
                left,
                right,
                ..
            } => Some((*feature, *left, *right)),
        }
    }

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
fn weighted_gini(n: usize, pos: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    2.0 * pos * (n as f64 - pos) / n as f64
}

impl Grower<'_> {
    fn grow_root(&mut self) {
        let rows = self.order.len();
        let sum = self.labels.iter().fold(Stat::default(), |mut s, &label| {
            s.add_row(label, 1.0);
            s
        });
        let hist = self.splittable(sum, 0).then(|| {
            let mut hist = self.take_hist();
            self.build_hist(&mut hist, 0, rows);
            hist
        });
        self.grow(0..rows, 0, sum, hist);
    }

    /// Whether a node of these sums at `depth` may still be split.
    fn splittable(&self, sum: Stat, depth: usize) -> bool {
        let pure = sum.g == 0.0 || sum.g == f64::from(sum.n);
        depth < self.max_depth && !pure && sum.n as usize >= 2 * self.min_samples_leaf
    }

    /// Grows the subtree over the rows `order[rows]`, whose sums are `sum`
    /// and whose histogram is `hist` when the node may be split; returns
    /// its node index. Nodes are numbered depth first, left before right.
    fn grow(
        &mut self,
        rows: std::ops::Range<usize>,
        depth: usize,
        sum: Stat,
        hist: Option<Vec<Stat>>,
    ) -> usize {
        let samples = sum.n as usize;
        let probability = sum.g / f64::from(sum.n.max(1));
        let at = self.nodes.len();
        self.nodes.push(Node::Leaf {
            samples,
            probability,
        });
        let Some(mut hist) = hist else {
            return at;
        };
        let Some(best) = self.best_split(&hist, sum) else {
            self.pool.push(hist);
            return at;
        };
        let mid = rows.start
            + self.binned.partition(
                &mut self.order[rows.clone()],
                &mut self.scratch,
                best.feature,
                best.bin,
                false,
            );
        let (left_sum, right_sum) = (best.left, sum.minus(best.left));
        let (left_rows, right_rows) = (rows.start..mid, mid..rows.end);
        let split_left = self.splittable(left_sum, depth + 1);
        let split_right = self.splittable(right_sum, depth + 1);
        // The smaller child's histogram is counted from its rows, the
        // larger one's is the parent's minus it, in the parent's buffer.
        let (left_hist, right_hist) = if split_left || split_right {
            let left_is_smaller = left_rows.len() <= right_rows.len();
            let small_rows = if left_is_smaller {
                left_rows.clone()
            } else {
                right_rows.clone()
            };
            let mut small = self.take_hist();
            self.build_hist(&mut small, small_rows.start, small_rows.end);
            for (p, s) in hist.iter_mut().zip(&small) {
                *p = p.minus(*s);
            }
            let (l, r) = if left_is_smaller {
                (small, hist)
            } else {
                (hist, small)
            };
            (self.keep(l, split_left), self.keep(r, split_right))
        } else {
            self.pool.push(hist);
            (None, None)
        };
        let left = self.grow(left_rows, depth + 1, left_sum, left_hist);
        let right = self.grow(right_rows, depth + 1, right_sum, right_hist);
        self.nodes[at] = Node::Split {
            feature: best.feature,
            // When every value bin goes left only the missing rows go
            // right: every number goes left.
            threshold: self.binned.edges[best.feature]
                .get(best.bin)
                .copied()
                .unwrap_or(f64::MAX),
            left,
            right,
            samples,
            probability,
        };
        at
    }

    /// `hist` when its node will be split, else back to the pool.
    fn keep(&mut self, hist: Vec<Stat>, needed: bool) -> Option<Vec<Stat>> {
        if needed {
            Some(hist)
        } else {
            self.pool.push(hist);
            None
        }
    }

    fn take_hist(&mut self) -> Vec<Stat> {
        self.pool
            .pop()
            .unwrap_or_else(|| vec![Stat::default(); self.binned.bins_total])
    }

    fn build_hist(&mut self, hist: &mut [Stat], start: usize, end: usize) {
        let rows = &self.order[start..end];
        self.leaf_labels.clear();
        self.leaf_labels
            .extend(rows.iter().map(|&r| self.labels[r as usize]));
        self.binned.build_hist(
            rows,
            &self.leaf_labels,
            &self.weights[..rows.len()],
            hist,
            &mut self.spare,
            self.threads,
        );
    }

    /// The split with the lowest weighted Gini impurity below the parent's;
    /// the first found among equals (features in order, thresholds
    /// ascending). Missing values, in the last bin, always go right, as
    /// `x <= threshold` sends them at scoring time.
    fn best_split(&self, hist: &[Stat], sum: Stat) -> Option<BestSplit> {
        let (n, positives) = (sum.n as usize, sum.g);
        let parent = weighted_gini(n, positives);
        let mut best: Option<BestSplit> = None;
        let mut feature_hist = Vec::with_capacity(MAX_BINS + 2);
        for feature in 0..self.binned.edges.len() {
            self.binned
                .feature_hist(feature, hist, sum, &mut feature_hist);
            let value_bins = self.binned.edges[feature].len() + 1;
            // All numbers left is a split only when some rows are missing.
            let last = if feature_hist[value_bins].n == 0 {
                value_bins - 1
            } else {
                value_bins
            };
            let mut left = Stat::default();
            for (bin, stat) in feature_hist[..last].iter().enumerate() {
                left.add(*stat);
                let (left_n, right_n) = (left.n as usize, n - left.n as usize);
                if left_n < self.min_samples_leaf {
                    continue;
                }
                if right_n < self.min_samples_leaf {
                    break;
                }
                let impurity =
                    weighted_gini(left_n, left.g) + weighted_gini(right_n, positives - left.g);
                if impurity < parent - 1e-12 && best.as_ref().is_none_or(|b| impurity < b.impurity)
                {
                    best = Some(BestSplit {
                        feature,
                        bin,
                        impurity,
                        left,
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
        let binned = Binned::new(&x, x.rows);
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
