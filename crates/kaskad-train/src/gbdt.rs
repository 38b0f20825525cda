//! Gradient-boosted decision trees for the binary log-loss, in the manner of
//! LightGBM: histogram split search over features pre-cut into at most
//! [`MAX_BINS`] quantile bins (one byte per cell), exclusive features
//! bundled into shared histogram groups, leaf-wise growth, the histogram
//! subtraction trick, Newton leaf values and native
//! missing values (NaN has its own bin and every split learns where it goes).

use kaskad_prepare::Matrix;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::derived::Derived;
use crate::flat_forest::FlatForest;
use crate::histogram::{Binned, MAX_BINS, Stat};
use crate::logistic::{sigmoid, softplus};
use crate::shap::{ShapTable, ShapTree, tree_shap};

/// Boosting stops after this many rounds without a better validation log-loss.
const PATIENCE: usize = 20;
/// One row in this many, the newest, is held out for early stopping.
const VALIDATION_EVERY: usize = 10;
/// Events (and non-events) a validation fold needs before its log-loss can
/// choose the number of trees: the usual minimum for validating a risk model
/// (Vergouwe et al. 2005; Collins et al. 2016). Fewer make the stopping
/// round noise: on germancredit's 750 rows the newest tenth holds 22 bads
/// and stopped at 15 trees, 0.022 AUC below LightGBM's 200.
const MIN_VALIDATION_EVENTS: usize = 100;
/// The validation fold grows to [`MIN_VALIDATION_EVENTS`] at most up to this
/// share of the rows (one in four); beyond, boosting runs without it.
const MAX_VALIDATION_EVERY: usize = 4;
/// Rows from which [`GradientBoosting::raw_score`] compiles a
/// [`FlatForest`]; for fewer (one application through the frame path, the
/// last short batch) flattening every node would cost more than it saves.
const FLATTEN_ROWS: usize = 32;
/// Rows from which gradients (an `exp` each) are computed on two threads.
const PARALLEL_GRADIENT_ROWS: usize = 20_000;
/// LightGBM's `min_sum_hessian_in_leaf`: a near-pure leaf has a vanishing
/// hessian, and its Newton step would be all regularization.
const MIN_LEAF_HESSIAN: f64 = 1e-3;

/// What [`GradientBoosting::fit`] is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct GbdtParams {
    /// The most trees; early stopping usually keeps fewer.
    pub n_trees: usize,
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f64,
    /// Leaves per tree; growth is leaf-wise (best gain first), as LightGBM's.
    pub max_leaves: usize,
    /// Levels below the root; bounds the trees leaf-wise growth makes deep
    /// and thin on small data.
    pub max_depth: usize,
    /// Training rows every leaf keeps at least.
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values (the λ in `−G / (H + λ)`).
    pub lambda: f64,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self {
            n_trees: 200,
            learning_rate: 0.1,
            max_leaves: 31,
            max_depth: 12,
            min_samples_leaf: 20,
            lambda: 1.0,
        }
    }
}

/// A boosted ensemble: the raw score (log-odds) of a row is `base_score`
/// plus one leaf value per tree.
///
/// Early stopping holds out the newest tenth of the training rows (rows come
/// in stream order), or more of the newest rows until they hold 100 of each
/// class; it stops after 20 rounds without a better validation log-loss and
/// keeps the trees up to the best round. Those trees are not refitted on the
/// held-out rows: the model is exactly what was validated. When 100 of each
/// class would take more than a quarter of the rows, or the older rows hold
/// one class only, every row is fitted and all `n_trees` rounds run (as
/// LightGBM does without a validation set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientBoosting {
    /// The log-odds of the base rate of the rows the trees were fitted on.
    pub base_score: f64,
    pub trees: Vec<BoostedTree>,
    /// Each tree's [`ShapTable`]: `None` for a tree too deep to tabulate,
    /// or past [`SHAP_TABLE_VALUES`].
    #[serde(skip)]
    shap_tables: Derived<Vec<Option<ShapTable>>>,
}

/// At most this many TreeSHAP table values per model (32 MiB); 200 trees
/// of 15 leaves on credit_data need 0.67 M (5 MiB).
const SHAP_TABLE_VALUES: usize = 4 << 20;

/// One tree as parallel node vectors, which keeps its JSON compact. Node 0
/// is the root; the children of a split are adjacent, `children[i]` (left)
/// and `children[i] + 1` (right).
///
/// A row goes left when `x[feature] <= threshold` (the upper edge of the
/// split's last bin; `f64::MAX` when only the missing rows go right), or when
/// the value is NaN and `missing_left`. Where no training row reaching the
/// split was missing, `missing_left` sends NaN to the larger child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostedTree {
    /// The left child of a split; 0 marks a leaf (the root is nobody's child).
    pub children: Vec<u32>,
    pub feature: Vec<u32>,
    pub threshold: Vec<f64>,
    pub missing_left: Vec<bool>,
    /// A leaf's output (learning rate included); for a split, the mean
    /// output of the training rows below it (so the root's value is the
    /// tree's expected output).
    pub value: Vec<f64>,
    /// Training rows that reached the node: the cover exact TreeSHAP weighs
    /// paths by, kept so models registered now can be explained that way.
    pub cover: Vec<u32>,
}

impl GradientBoosting {
    /// Boosts trees on rows `x` (in stream order; NaN is missing) with 0/1
    /// labels `y`.
    pub fn fit(x: &Matrix, y: &[u8], params: &GbdtParams) -> Result<Self, TrainError> {
        Self::fit_from(x, y, params, None)
    }

    /// Boosting that continues `previous`: its trees are kept and up to
    /// `params.n_trees` more are fitted to what they leave unexplained on
    /// `x` (typically only the rows that arrived since). Without
    /// `previous`, the same as [`Self::fit`].
    pub fn fit_from(
        x: &Matrix,
        y: &[u8],
        params: &GbdtParams,
        previous: Option<&GradientBoosting>,
    ) -> Result<Self, TrainError> {
        check(params)?;
        if x.rows != y.len() {
            return Err(TrainError::LengthMismatch {
                rows: x.rows,
                labels: y.len(),
            });
        }
        let positives = |rows: &[u8]| rows.iter().filter(|&&v| v == 1).count();
        let all_positives = positives(y);
        if all_positives == 0 || all_positives == y.len() {
            return Err(TrainError::SingleClass { rows: y.len() });
        }
        let holdout = validation_rows(y);
        let fit_rows = x.rows - holdout;
        let fit_positives = positives(&y[..fit_rows]);
        // Without both classes in the older rows, the newest are needed to
        // fit at all; boosting then runs to `n_trees` without validation.
        let (fit_rows, fit_positives) =
            if holdout == 0 || fit_positives == 0 || fit_positives == fit_rows {
                (x.rows, all_positives)
            } else {
                (fit_rows, fit_positives)
            };
        let rate = fit_positives as f64 / fit_rows as f64;
        let base_score = previous.map_or((rate / (1.0 - rate)).ln(), |p| p.base_score);
        let start_scores = previous.map(|p| p.raw_score(x));

        let binned = Binned::new(x, fit_rows);
        let mut booster = Booster::new(&binned, params);
        let valid = fit_rows..x.rows;
        let (mut scores, mut valid_scores) = match &start_scores {
            Some(start) => (start[..fit_rows].to_vec(), start[valid.clone()].to_vec()),
            None => (vec![base_score; fit_rows], vec![base_score; valid.len()]),
        };
        let valid_loss = |scores: &[f64]| {
            scores
                .iter()
                .zip(&y[valid.clone()])
                .map(|(&s, &label)| softplus(if label == 1 { -s } else { s }))
                .sum::<f64>()
        };
        let mut trees = previous.map_or_else(Vec::new, |p| p.trees.clone());
        let mut best = (valid_loss(&valid_scores), trees.len());
        for _ in 0..params.n_trees {
            booster.gradients(&scores, &y[..fit_rows]);
            let Some(tree) = booster.grow(&mut scores) else {
                break;
            };
            for (s, i) in valid_scores.iter_mut().zip(valid.clone()) {
                *s += tree.value[tree.leaf(x.row(i))];
            }
            trees.push(tree);
            if valid.is_empty() {
                continue;
            }
            let loss = valid_loss(&valid_scores);
            if loss < best.0 {
                best = (loss, trees.len());
            } else if trees.len() - best.1 >= PATIENCE {
                break;
            }
        }
        if !valid.is_empty() {
            trees.truncate(best.1);
        }
        Ok(Self::new(base_score, trees))
    }

    /// The raw score (log-odds) of every row: `base_score` plus the sum of
    /// the trees' leaf values in tree order (the same bits either way: a few
    /// rows through the trees as they are, more through a [`FlatForest`]
    /// compiled for them, on two threads for large batches).
    pub fn raw_score(&self, x: &Matrix) -> Vec<f64> {
        if x.rows < FLATTEN_ROWS {
            return (0..x.rows)
                .map(|i| {
                    let row = x.row(i);
                    let sum: f64 = self.trees.iter().map(|t| t.value[t.leaf(row)]).sum();
                    self.base_score + sum
                })
                .collect();
        }
        FlatForest::new(self).raw_scores(x)
    }

    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        self.raw_score(x).into_iter().map(sigmoid).collect()
    }

    /// The raw score of the mean training row: what [`Self::contributions`]
    /// start from.
    pub fn expected_value(&self) -> f64 {
        self.base_score + self.trees.iter().map(|t| t.value[0]).sum::<f64>()
    }

    /// The model made of `trees` on top of `base_score` (log-odds).
    pub fn new(base_score: f64, trees: Vec<BoostedTree>) -> Self {
        GradientBoosting {
            base_score,
            trees,
            shap_tables: Derived::default(),
        }
    }

    /// Each tree's TreeSHAP table, built on first use (see [`ShapTable`]),
    /// while the model's tables hold at most [`SHAP_TABLE_VALUES`] values;
    /// the trees past that are explained by [`tree_shap`].
    pub(crate) fn shap_tables(&self) -> &[Option<ShapTable>] {
        self.shap_tables.get_or_init(|| {
            let mut room = SHAP_TABLE_VALUES;
            self.trees
                .iter()
                .map(|tree| {
                    let table = ShapTable::new(tree).filter(|t| t.len() <= room)?;
                    room -= table.len();
                    Some(table)
                })
                .collect()
        })
    }

    /// Exact TreeSHAP values of the raw score (log-odds), tree by tree:
    /// [`Self::expected_value`] plus a row's contributions equals its raw
    /// score, and each value is the feature's Shapley value under the
    /// path-dependent expectation (children weighted by [`BoostedTree::cover`]).
    pub fn contributions(&self, x: &Matrix) -> Matrix {
        let mut out = Matrix::zeros(x.rows, x.cols);
        let tables = self.shap_tables();
        for i in 0..x.rows {
            let row = x.row(i);
            let phi = &mut out.data[i * x.cols..(i + 1) * x.cols];
            for (tree, table) in self.trees.iter().zip(tables) {
                match table {
                    Some(table) => table.add(tree, row, phi),
                    None => tree_shap(tree, row, phi),
                }
            }
        }
        out
    }
}

/// How many of the newest rows early stopping holds out; 0 for none.
fn validation_rows(y: &[u8]) -> usize {
    let rows = y.len();
    let mut counts = [0usize; 2];
    for (taken, &label) in (1..=rows / MAX_VALIDATION_EVERY).zip(y.iter().rev()) {
        counts[usize::from(label == 1)] += 1;
        if taken >= rows / VALIDATION_EVERY && counts.iter().all(|&n| n >= MIN_VALIDATION_EVENTS) {
            return taken;
        }
    }
    0
}

fn check(params: &GbdtParams) -> Result<(), TrainError> {
    let invalid = |name: &'static str, value: String, expected: &'static str| {
        Err(TrainError::InvalidHyperparameter {
            name,
            value,
            expected,
        })
    };
    if !(params.learning_rate > 0.0 && params.learning_rate.is_finite()) {
        return invalid(
            "learning_rate",
            params.learning_rate.to_string(),
            "a positive number",
        );
    }
    if !(params.lambda >= 0.0 && params.lambda.is_finite()) {
        return invalid("lambda", params.lambda.to_string(), "a number ≥ 0");
    }
    if params.max_leaves < 2 {
        return invalid("max_leaves", params.max_leaves.to_string(), "at least 2");
    }
    if params.max_depth == 0 {
        return invalid("max_depth", "0".into(), "at least 1");
    }
    if params.min_samples_leaf == 0 {
        return invalid("min_samples_leaf", "0".into(), "at least 1");
    }
    Ok(())
}

impl BoostedTree {
    fn new(cover: usize) -> Self {
        Self {
            children: vec![0],
            feature: vec![0],
            threshold: vec![0.0],
            missing_left: vec![false],
            value: vec![0.0],
            cover: vec![cover as u32],
        }
    }

    /// Turns leaf `at` into a split; returns its left child.
    fn split(&mut self, at: usize, split: &Split, threshold: f64, covers: [usize; 2]) -> usize {
        let left = self.children.len();
        self.children[at] = left as u32;
        self.feature[at] = split.feature as u32;
        self.threshold[at] = threshold;
        self.missing_left[at] = split.missing_left;
        for cover in covers {
            self.children.push(0);
            self.feature.push(0);
            self.threshold.push(0.0);
            self.missing_left.push(false);
            self.value.push(0.0);
            self.cover.push(cover as u32);
        }
        left
    }

    /// Gives every split the cover-weighted mean of its children's values;
    /// children come after their parent, so one backward pass suffices.
    fn fill_split_values(&mut self) {
        for at in (0..self.children.len()).rev() {
            let left = self.children[at] as usize;
            if left != 0 {
                let weight = |n: usize| f64::from(self.cover[n]);
                self.value[at] = (weight(left) * self.value[left]
                    + weight(left + 1) * self.value[left + 1])
                    / weight(at);
            }
        }
    }

    fn next(&self, at: usize, row: &[f64]) -> usize {
        let v = row[self.feature[at] as usize];
        let goes_left = if v.is_nan() {
            self.missing_left[at]
        } else {
            v <= self.threshold[at]
        };
        self.children[at] as usize + usize::from(!goes_left)
    }

    pub(crate) fn leaf(&self, row: &[f64]) -> usize {
        let mut at = 0;
        while self.children[at] != 0 {
            at = self.next(at, row);
        }
        at
    }
}

impl ShapTree for BoostedTree {
    fn split(&self, node: usize) -> Option<(usize, usize, usize)> {
        let left = self.children[node] as usize;
        (left != 0).then(|| (self.feature[node] as usize, left, left + 1))
    }

    fn step(&self, node: usize, row: &[f64]) -> Option<(usize, usize, usize)> {
        let left = self.children[node] as usize;
        if left == 0 {
            return None;
        }
        let taken = self.next(node, row);
        let other = if taken == left { left + 1 } else { left };
        Some((self.feature[node] as usize, taken, other))
    }

    fn cover(&self, node: usize) -> f64 {
        f64::from(self.cover[node])
    }

    fn leaf_value(&self, node: usize) -> f64 {
        self.value[node]
    }
}

impl Stat {
    /// The loss reduction a leaf with these sums achieves (doubled).
    fn score(self, lambda: f64) -> f64 {
        self.g * self.g / (self.h + lambda)
    }
}

#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    /// The last value bin that goes left.
    bin: usize,
    missing_left: bool,
    left: Stat,
}

/// A leaf of the tree being grown: its rows are `order[start..end]`.
struct Leaf {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    sum: Stat,
    /// Kept only while the leaf may still be split.
    hist: Option<Vec<Stat>>,
    split: Option<Split>,
}

/// Buffers reused by every tree of one fit, so growing a node allocates nothing.
struct Booster<'a> {
    binned: &'a Binned,
    params: &'a GbdtParams,
    grad: Vec<f64>,
    hess: Vec<f64>,
    /// Row indices grouped by leaf, in row order within a leaf.
    order: Vec<u32>,
    scratch: Vec<u32>,
    /// A leaf's gradients and hessians in `order`, so the per-feature loops
    /// read them sequentially.
    leaf_grad: Vec<f64>,
    leaf_hess: Vec<f64>,
    /// Histograms not owned by a leaf.
    pool: Vec<Vec<Stat>>,
    /// A zeroed second histogram that [`Self::build_hist`] fills alongside.
    spare: Vec<Stat>,
    /// Threads histogram building may use (at most two halves of the features).
    threads: usize,
}

impl<'a> Booster<'a> {
    fn new(binned: &'a Binned, params: &'a GbdtParams) -> Self {
        let rows = binned.rows;
        Self {
            binned,
            params,
            grad: vec![0.0; rows],
            hess: vec![0.0; rows],
            order: Vec::with_capacity(rows),
            scratch: Vec::with_capacity(rows),
            leaf_grad: Vec::with_capacity(rows),
            leaf_hess: Vec::with_capacity(rows),
            pool: Vec::new(),
            spare: vec![Stat::default(); binned.bins_total],
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }

    /// Gradient and hessian of the log-loss in the raw score.
    fn gradients(&mut self, scores: &[f64], y: &[u8]) {
        let fill = |grad: &mut [f64], hess: &mut [f64], scores: &[f64], y: &[u8]| {
            for (((g, h), &s), &label) in grad.iter_mut().zip(hess).zip(scores).zip(y) {
                let p = sigmoid(s);
                *g = p - f64::from(u8::from(label == 1));
                *h = p * (1.0 - p);
            }
        };
        let rows = self.grad.len();
        if self.threads > 1 && rows >= PARALLEL_GRADIENT_ROWS {
            let half = rows / 2;
            let (grad_low, grad_high) = self.grad.split_at_mut(half);
            let (hess_low, hess_high) = self.hess.split_at_mut(half);
            std::thread::scope(|scope| {
                scope.spawn(|| fill(grad_low, hess_low, &scores[..half], &y[..half]));
                fill(grad_high, hess_high, &scores[half..], &y[half..]);
            });
        } else {
            fill(&mut self.grad, &mut self.hess, scores, y);
        }
    }

    /// Grows one tree leaf-wise and adds its leaf values to `scores`; `None`
    /// when not even the root can be split.
    fn grow(&mut self, scores: &mut [f64]) -> Option<BoostedTree> {
        let mut tree = BoostedTree::new(self.binned.rows);
        let mut leaves = vec![self.root()];
        while leaves.len() < self.params.max_leaves {
            let Some((i, split)) = leaves
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.split.map(|s| (i, s)))
                .max_by(|a, b| a.1.gain.total_cmp(&b.1.gain))
            else {
                break;
            };
            let parent = leaves.swap_remove(i);
            let (left, right) = self.split_leaf(parent, &split, &mut tree);
            leaves.push(left);
            leaves.push(right);
        }
        for leaf in &mut leaves {
            if let Some(hist) = leaf.hist.take() {
                self.pool.push(hist);
            }
        }
        if leaves.len() == 1 {
            return None;
        }
        for leaf in &leaves {
            let value = -self.params.learning_rate * leaf.sum.g / (leaf.sum.h + self.params.lambda);
            tree.value[leaf.node] = value;
            for &r in &self.order[leaf.start..leaf.end] {
                scores[r as usize] += value;
            }
        }
        tree.fill_split_values();
        Some(tree)
    }

    /// The root of a new tree over every fitting row, with its best split.
    fn root(&mut self) -> Leaf {
        let rows = self.binned.rows;
        self.order.clear();
        self.order.extend(0..rows as u32);
        let sum = self
            .grad
            .iter()
            .zip(&self.hess)
            .fold(Stat::default(), |mut s, (&g, &h)| {
                s.add(Stat { g, h, n: 1 });
                s
            });
        let mut root = Leaf {
            node: 0,
            start: 0,
            end: rows,
            depth: 0,
            sum,
            hist: None,
            split: None,
        };
        if self.splittable(&root) {
            let mut hist = self.take_hist();
            self.build_hist(&mut hist, 0, rows);
            root.hist = Some(hist);
            self.find_split(&mut root);
        }
        root
    }

    fn splittable(&self, leaf: &Leaf) -> bool {
        leaf.depth < self.params.max_depth
            && (leaf.end - leaf.start) >= 2 * self.params.min_samples_leaf
    }

    fn take_hist(&mut self) -> Vec<Stat> {
        self.pool
            .pop()
            .unwrap_or_else(|| vec![Stat::default(); self.binned.bins_total])
    }

    /// Splits `parent` and prepares both children: the smaller child's
    /// histogram is built from its rows, the larger one's is the parent's
    /// minus it, in the parent's buffer.
    fn split_leaf(&mut self, parent: Leaf, split: &Split, tree: &mut BoostedTree) -> (Leaf, Leaf) {
        let mid = self.partition(&parent, split);
        let edges = &self.binned.edges[split.feature];
        let threshold = edges.get(split.bin).copied().unwrap_or(f64::MAX);
        let covers = [mid - parent.start, parent.end - mid];
        let node = tree.split(parent.node, split, threshold, covers);
        let child = |node, start, end, sum| Leaf {
            node,
            start,
            end,
            depth: parent.depth + 1,
            sum,
            hist: None,
            split: None,
        };
        let mut left = child(node, parent.start, mid, split.left);
        let mut right = child(node + 1, mid, parent.end, parent.sum.minus(split.left));
        let Some(mut parent_hist) = parent.hist else {
            return (left, right);
        };
        if self.splittable(&left) || self.splittable(&right) {
            let (small, large) = if covers[0] <= covers[1] {
                (&mut left, &mut right)
            } else {
                (&mut right, &mut left)
            };
            let mut hist = self.take_hist();
            self.build_hist(&mut hist, small.start, small.end);
            for (p, s) in parent_hist.iter_mut().zip(&hist) {
                *p = p.minus(*s);
            }
            small.hist = Some(hist);
            large.hist = Some(parent_hist);
        } else {
            self.pool.push(parent_hist);
        }
        for leaf in [&mut left, &mut right] {
            if self.splittable(leaf) {
                self.find_split(leaf);
            }
            if leaf.split.is_none()
                && let Some(hist) = leaf.hist.take()
            {
                self.pool.push(hist);
            }
        }
        (left, right)
    }

    /// Reorders the parent's rows, left child first; returns the boundary.
    fn partition(&mut self, leaf: &Leaf, split: &Split) -> usize {
        leaf.start
            + self.binned.partition(
                &mut self.order[leaf.start..leaf.end],
                &mut self.scratch,
                split.feature,
                split.bin,
                split.missing_left,
            )
    }

    /// The histogram of the leaf whose rows are `order[start..end]`.
    fn build_hist(&mut self, hist: &mut [Stat], start: usize, end: usize) {
        let rows = &self.order[start..end];
        // The root's rows are every row in order: nothing to gather.
        let (grad, hess) = if rows.len() == self.grad.len() {
            (&self.grad, &self.hess)
        } else {
            self.leaf_grad.clear();
            self.leaf_hess.clear();
            self.leaf_grad
                .extend(rows.iter().map(|&r| self.grad[r as usize]));
            self.leaf_hess
                .extend(rows.iter().map(|&r| self.hess[r as usize]));
            (&self.leaf_grad, &self.leaf_hess)
        };
        self.binned
            .build_hist(rows, grad, hess, hist, &mut self.spare, self.threads);
    }

    /// The best split of `leaf` by loss reduction, trying for every
    /// threshold both directions for the rows missing the feature.
    fn find_split(&self, leaf: &mut Leaf) {
        let Some(hist) = &leaf.hist else {
            return;
        };
        let (lambda, min_rows) = (self.params.lambda, self.params.min_samples_leaf as u32);
        let sum = leaf.sum;
        let parent_score = sum.score(lambda);
        let mut best: Option<Split> = None;
        let mut feature_hist = Vec::with_capacity(MAX_BINS + 1);
        for feature in 0..self.binned.edges.len() {
            let value_bins = self.binned.edges[feature].len() + 1;
            self.binned
                .feature_hist(feature, hist, sum, &mut feature_hist);
            let (values, missing) = feature_hist.split_at(value_bins);
            let missing = missing[0];
            // With no missing rows here the direction cannot be learned;
            // they follow the larger child, the likelier guess.
            let directions: &[bool] = if missing.n == 0 {
                &[false]
            } else {
                &[false, true]
            };
            for &missing_left in directions {
                let mut left = if missing_left {
                    missing
                } else {
                    Stat::default()
                };
                // All values left with the missing rows right is a split
                // only when there are missing rows.
                let last = if missing.n == 0 || missing_left {
                    value_bins - 1
                } else {
                    value_bins
                };
                for (bin, stat) in values[..last].iter().enumerate() {
                    left.add(*stat);
                    let right = sum.minus(left);
                    if left.n < min_rows || left.h < MIN_LEAF_HESSIAN {
                        continue;
                    }
                    if right.n < min_rows || right.h < MIN_LEAF_HESSIAN {
                        break;
                    }
                    let gain = left.score(lambda) + right.score(lambda) - parent_score;
                    if gain > best.map_or(0.0, |b| b.gain) {
                        best = Some(Split {
                            gain,
                            feature,
                            bin,
                            missing_left: if missing.n == 0 {
                                left.n >= right.n
                            } else {
                                missing_left
                            },
                            left,
                        });
                    }
                }
            }
        }
        leaf.split = best;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// The probability that a random positive outscores a random negative.
    fn auc(y: &[u8], scores: &[f64]) -> f64 {
        let mut ranked: Vec<(f64, u8)> = scores.iter().copied().zip(y.iter().copied()).collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut negatives, mut wins) = (0.0, 0.0);
        let mut i = 0;
        while i < ranked.len() {
            let tied = ranked[i..]
                .iter()
                .take_while(|r| r.0 == ranked[i].0)
                .count();
            let pos = ranked[i..i + tied].iter().filter(|r| r.1 == 1).count() as f64;
            let neg = tied as f64 - pos;
            wins += pos * (negatives + neg / 2.0);
            negatives += neg;
            i += tied;
        }
        let positives = y.iter().filter(|&&v| v == 1).count() as f64;
        wins / (positives * negatives)
    }

    fn params(n_trees: usize) -> GbdtParams {
        GbdtParams {
            n_trees,
            ..GbdtParams::default()
        }
    }

    #[test]
    fn learns_a_step_exactly() {
        // Fewer distinct values than bins, so every boundary is a candidate.
        let rows = 240;
        let data: Vec<f64> = (0..rows).map(|i| i as f64).collect();
        let y: Vec<u8> = (0..rows).map(|i| u8::from(i % 120 >= 60)).collect();
        let x = Matrix {
            rows,
            cols: 1,
            data,
        };
        let model = GradientBoosting::fit(&x, &y, &params(100)).unwrap();
        assert!(!model.trees.is_empty());
        // Every split lands exactly halfway between 59 and 60, 119 and 120, ...
        for tree in &model.trees {
            for (at, &left) in tree.children.iter().enumerate() {
                if left != 0 {
                    let threshold = tree.threshold[at];
                    assert_eq!((threshold + 0.5) % 60.0, 0.0, "{threshold}");
                }
            }
        }
        let p = model.predict_proba(&x);
        for (p, &label) in p.iter().zip(&y) {
            assert_eq!(*p >= 0.5, label == 1, "p = {p}");
        }
    }

    #[test]
    fn learns_where_missing_values_go() {
        // The label is `a > 0`, except that a missing `a` means default in
        // one data set and no default in the other; `b` is noise. The root
        // must split `a` at 0 and send the missing rows the right way.
        for missing_means_default in [true, false] {
            let mut rng = SmallRng::seed_from_u64(3);
            let rows = 3_000;
            let mut data = Vec::with_capacity(rows * 2);
            let mut y = Vec::with_capacity(rows);
            for _ in 0..rows {
                let missing = rng.random::<f64>() < 0.3;
                let a: f64 = rng.random_range(-1.0..1.0);
                data.extend([if missing { f64::NAN } else { a }, rng.random()]);
                y.push(u8::from(if missing {
                    missing_means_default
                } else {
                    a > 0.0
                }));
            }
            let x = Matrix {
                rows,
                cols: 2,
                data,
            };
            let model = GradientBoosting::fit(&x, &y, &params(100)).unwrap();
            let root = &model.trees[0];
            assert_eq!(root.feature[0], 0);
            assert!(root.threshold[0].abs() < 0.01, "{}", root.threshold[0]);
            // Left holds `a <= 0`: no default.
            assert_eq!(root.missing_left[0], !missing_means_default);
            let p = model.predict_proba(&x);
            assert!(auc(&y, &p) > 0.999, "{}", auc(&y, &p));
            // Rows missing at scoring time only go the learned way too.
            let unseen = Matrix {
                rows: 1,
                cols: 2,
                data: vec![f64::NAN, 0.5],
            };
            let p = model.predict_proba(&unseen)[0];
            assert_eq!(p > 0.5, missing_means_default, "{p}");
        }
    }

    #[test]
    fn early_stopping_stops_on_noise() {
        let mut rng = SmallRng::seed_from_u64(4);
        let rows = 2_000;
        let data: Vec<f64> = (0..rows * 3).map(|_| rng.random()).collect();
        let y: Vec<u8> = (0..rows)
            .map(|_| u8::from(rng.random::<f64>() < 0.3))
            .collect();
        let x = Matrix {
            rows,
            cols: 3,
            data,
        };
        let model = GradientBoosting::fit(&x, &y, &params(200)).unwrap();
        assert!(model.trees.len() < 20, "{} trees", model.trees.len());
        // Signal of the same size is not stopped that early.
        let (x, y) = crate::testdata::logistic(rows, 5);
        let model = GradientBoosting::fit(&x, &y, &params(200)).unwrap();
        assert!(model.trees.len() >= 20, "{} trees", model.trees.len());
        assert!(model.trees.len() < 200, "{} trees", model.trees.len());
    }

    #[test]
    fn contributions_are_the_exact_shapley_values_with_missing_values() {
        let (mut x, y) = crate::testdata::logistic(1_500, 14);
        for i in (0..x.rows).step_by(5) {
            x.data[i * x.cols + 1] = f64::NAN;
        }
        let model = GradientBoosting::fit(&x, &y, &params(5)).unwrap();
        let c = model.contributions(&x);
        for i in (0..x.rows).step_by(101) {
            let mut exact = vec![0.0; x.cols];
            for tree in &model.trees {
                let phi = crate::shap::brute_force::shapley(tree, x.row(i));
                exact.iter_mut().zip(phi).for_each(|(e, p)| *e += p);
            }
            for (got, want) in c.row(i).iter().zip(&exact) {
                assert!((got - want).abs() < 1e-12, "row {i}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn shap_tables_give_tree_shaps_values_and_deep_paths_fall_back() {
        let (mut x, y) = crate::testdata::logistic(3_000, 21);
        for i in (0..x.rows).step_by(6) {
            x.data[i * x.cols + 2] = f64::NAN;
        }
        let params = GbdtParams {
            n_trees: 40,
            max_leaves: 31,
            ..GbdtParams::default()
        };
        let model = GradientBoosting::fit(&x, &y, &params).unwrap();
        let tables = model.shap_tables();
        assert!(
            tables.iter().all(Option::is_some),
            "3 features fit every table"
        );
        for i in (0..x.rows).step_by(53) {
            for (tree, table) in model.trees.iter().zip(tables) {
                let (mut fast, mut exact) = (vec![0.0; x.cols], vec![0.0; x.cols]);
                table.as_ref().unwrap().add(tree, x.row(i), &mut fast);
                tree_shap(tree, x.row(i), &mut exact);
                for (f, e) in fast.iter().zip(&exact) {
                    assert!(
                        (f - e).abs() <= 1e-12 * (1.0 + e.abs()),
                        "row {i}: {f} vs {e}"
                    );
                }
            }
        }
        // A chain of splits on 13 distinct features: its deepest leaf is
        // past the table's limit, so the tree is left to tree_shap.
        let nodes = 27;
        let chain = BoostedTree {
            children: (0..nodes)
                .map(|n| {
                    if n % 2 == 0 && n < nodes - 1 {
                        n + 1
                    } else {
                        0
                    }
                })
                .collect(),
            feature: (0..nodes).map(|n| n / 2).collect(),
            threshold: vec![0.0; nodes as usize],
            missing_left: vec![false; nodes as usize],
            value: (0..nodes).map(f64::from).collect(),
            cover: (0..nodes).map(|n| 100 - 2 * n).collect(),
        };
        assert!(ShapTable::new(&chain).is_none());
    }

    #[test]
    fn contributions_add_up_to_the_raw_score() {
        let (mut x, y) = crate::testdata::logistic(2_000, 8);
        for i in (0..x.rows).step_by(7) {
            x.data[i * x.cols] = f64::NAN;
        }
        let model = GradientBoosting::fit(&x, &y, &params(50)).unwrap();
        assert!(!model.trees.is_empty());
        let raw = model.raw_score(&x);
        // Split values are cover-weighted: the expected value is the mean
        // raw score of the rows the trees were fitted on (all but the validation fold).
        let fitted = x.rows - validation_rows(&y);
        assert!(fitted < x.rows);
        let mean = raw[..fitted].iter().sum::<f64>() / fitted as f64;
        assert!((model.expected_value() - mean).abs() < 1e-9);
        let c = model.contributions(&x);
        let base = model.expected_value();
        for (i, raw) in raw.iter().enumerate() {
            let total = base + c.row(i).iter().sum::<f64>();
            assert!((total - raw).abs() < 1e-9, "row {i}: {total} vs {raw}");
        }
        // The noise feature (index 2) explains less than the signal.
        let mass = |f: usize| (0..x.rows).map(|i| c.row(i)[f].abs()).sum::<f64>();
        assert!(mass(1) > 3.0 * mass(2), "{} vs {}", mass(1), mass(2));
    }

    #[test]
    fn sibling_histogram_by_subtraction_matches_a_direct_one() {
        let (mut x, y) = crate::testdata::logistic(1_000, 10);
        for i in (0..x.rows).step_by(5) {
            x.data[i * x.cols + 1] = f64::NAN;
        }
        let params = GbdtParams::default();
        let binned = Binned::new(&x, x.rows);
        let mut booster = Booster::new(&binned, &params);
        booster.gradients(&vec![0.3; x.rows], &y);
        let mut root = booster.root();
        let split = root.split.take().unwrap();
        let mut tree = BoostedTree::new(x.rows);
        let (left, right) = booster.split_leaf(root, &split, &mut tree);
        assert_eq!(left.end - left.start + right.end - right.start, x.rows);
        for (child, goes_left) in [(left, true), (right, false)] {
            for &r in &booster.order[child.start..child.end] {
                assert_eq!(tree.next(0, x.row(r as usize)) == 1, goes_left);
            }
            let derived = child.hist.unwrap();
            let mut direct = vec![Stat::default(); binned.bins_total];
            booster.build_hist(&mut direct, child.start, child.end);
            for (d, b) in derived.iter().zip(&direct) {
                assert_eq!(d.n, b.n);
                assert!((d.g - b.g).abs() < 1e-9 && (d.h - b.h).abs() < 1e-9);
            }
        }
    }

    /// One-hot columns of two categories (mutually exclusive within each),
    /// a sparse flag, and two numbers, one with missing values. No two
    /// features split the rows alike, so equal trees are expected, not ties.
    fn one_hot_rows(rows: usize, seed: u64) -> (Matrix, Vec<u8>) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut data = Vec::with_capacity(rows * 10);
        let mut y = Vec::with_capacity(rows);
        for _ in 0..rows {
            let a = rng.random_range(0..4usize);
            let b = rng.random_range(0..3usize);
            let income: f64 = rng.random_range(-2.0..2.0);
            let flag = rng.random::<f64>() < 0.1;
            data.extend((0..4).map(|level| f64::from(u8::from(a == level))));
            data.extend((0..3).map(|level| f64::from(u8::from(b == level))));
            let missing = rng.random::<f64>() < 0.1;
            data.push(if missing { f64::NAN } else { income });
            data.push(f64::from(u8::from(flag)));
            data.push(rng.random());
            let z = income - 0.8 * a as f64 + 0.5 * b as f64 + 0.7 - f64::from(u8::from(flag));
            y.push(u8::from(rng.random::<f64>() < sigmoid(z)));
        }
        let x = Matrix {
            rows,
            cols: 10,
            data,
        };
        (x, y)
    }

    #[test]
    fn bundled_features_have_the_histograms_of_separate_ones() {
        let (x, y) = one_hot_rows(3_000, 15);
        let params = GbdtParams::default();
        let bundled = Binned::new(&x, x.rows);
        let separate = Binned::with_bundling(&x, x.rows, false);
        assert_eq!(separate.group_offsets.len(), 10);
        // The one-hot columns and the flag share groups.
        assert!(bundled.group_offsets.len() <= 6, "{:?}", bundled.slots);
        let mut leaves = Vec::new();
        for binned in [&bundled, &separate] {
            let mut booster = Booster::new(binned, &params);
            booster.gradients(&vec![0.1; x.rows], &y);
            let mut root = booster.root();
            let split = root.split.take().unwrap();
            let mut tree = BoostedTree::new(x.rows);
            let (left, _) = booster.split_leaf(root, &split, &mut tree);
            leaves.push((left.hist.clone().unwrap(), left.sum, left.split.unwrap()));
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for f in 0..x.cols {
            bundled.feature_hist(f, &leaves[0].0, leaves[0].1, &mut a);
            separate.feature_hist(f, &leaves[1].0, leaves[1].1, &mut b);
            assert_eq!(a.len(), b.len());
            for (p, q) in a.iter().zip(&b) {
                assert_eq!(p.n, q.n, "feature {f}");
                assert!((p.g - q.g).abs() < 1e-9 && (p.h - q.h).abs() < 1e-9);
            }
        }
        let (s, t) = (leaves[0].2, leaves[1].2);
        assert_eq!(
            (s.feature, s.bin, s.missing_left),
            (t.feature, t.bin, t.missing_left)
        );
    }

    #[test]
    fn bundling_grows_the_same_trees() {
        let (x, y) = one_hot_rows(4_000, 16);
        let params = params(30);
        let grow_all = |binned: &Binned| {
            let mut booster = Booster::new(binned, &params);
            let mut scores = vec![0.0; x.rows];
            let mut trees = Vec::new();
            for _ in 0..params.n_trees {
                booster.gradients(&scores, &y);
                trees.extend(booster.grow(&mut scores));
            }
            (trees, scores)
        };
        let (bundled, a) = grow_all(&Binned::new(&x, x.rows));
        let (separate, b) = grow_all(&Binned::with_bundling(&x, x.rows, false));
        assert_eq!((bundled.len(), separate.len()), (30, 30));
        // Not compared node by node: within a leaf that holds two levels
        // of a category, splitting on either level's flag is the same split,
        // and rounding picks one or the other. The scores must agree.
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-9, "{p} vs {q}");
        }
    }

    #[test]
    fn round_trips_through_json() {
        let (mut x, y) = crate::testdata::logistic(1_000, 11);
        for i in (0..x.rows).step_by(3) {
            x.data[i * x.cols] = f64::NAN;
        }
        let model = GradientBoosting::fit(&x, &y, &params(30)).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        let back: GradientBoosting = serde_json::from_str(&json).unwrap();
        assert_eq!(back, model);
        assert_eq!(back.predict_proba(&x), model.predict_proba(&x));
    }

    #[test]
    fn trees_respect_their_limits() {
        let (x, y) = crate::testdata::logistic(3_000, 6);
        let limits = GbdtParams {
            n_trees: 20,
            max_leaves: 7,
            max_depth: 3,
            min_samples_leaf: 40,
            ..GbdtParams::default()
        };
        let model = GradientBoosting::fit(&x, &y, &limits).unwrap();
        for tree in &model.trees {
            let leaves: Vec<usize> = (0..tree.children.len())
                .filter(|&at| tree.children[at] == 0)
                .collect();
            assert!(leaves.len() <= 7);
            assert!(leaves.iter().all(|&at| tree.cover[at] >= 40));
            let depth = |mut at: usize| {
                let mut d = 0;
                while at != 0 {
                    at = (0..tree.children.len())
                        .find(|&p| {
                            let l = tree.children[p] as usize;
                            l != 0 && (at == l || at == l + 1)
                        })
                        .unwrap();
                    d += 1;
                }
                d
            };
            assert!(leaves.iter().all(|&at| depth(at) <= 3));
        }
    }

    #[test]
    fn older_rows_of_one_class_fit_without_validation() {
        let (x, _) = crate::testdata::logistic(2_000, 12);
        let y: Vec<u8> = (0..2_000)
            .map(|i| u8::from(i >= 1_800 && i % 2 == 0))
            .collect();
        assert_eq!(validation_rows(&y), 200);
        let model = GradientBoosting::fit(&x, &y, &params(5)).unwrap();
        // The base rate of all 2000 rows, not of the 1800 older ones (0).
        assert!((model.base_score - (100.0_f64 / 1_900.0).ln()).abs() < 1e-12);
        assert!(model.predict_proba(&x).iter().all(|p| p.is_finite()));
    }

    #[test]
    fn the_validation_fold_holds_100_of_each_class_or_is_not_used() {
        let labels = |rows: usize, every: usize| -> Vec<u8> {
            (0..rows).map(|i| u8::from(i % every == 0)).collect()
        };
        // Plenty of both classes in the newest tenth.
        assert_eq!(validation_rows(&labels(10_000, 2)), 1_000);
        // One in ten bad: the newest tenth of 5000 rows holds 50 bads, so
        // the fold grows to the newest 1000 rows.
        assert_eq!(validation_rows(&labels(5_000, 10)), 1_000);
        // germancredit's size: 100 bads would take 334 of 750 rows.
        assert_eq!(validation_rows(&labels(750, 3)), 0);
        assert_eq!(validation_rows(&[0, 1]), 0);
    }

    #[test]
    fn small_data_runs_every_round_on_every_row() {
        let (x, y) = crate::testdata::logistic(750, 3);
        assert_eq!(validation_rows(&y), 0);
        let model = GradientBoosting::fit(&x, &y, &params(60)).unwrap();
        assert_eq!(model.trees.len(), 60);
        let rate = y.iter().filter(|&&v| v == 1).count() as f64 / y.len() as f64;
        assert!((model.base_score - (rate / (1.0 - rate)).ln()).abs() < 1e-12);
    }

    #[test]
    fn bad_hyperparameters_are_refused() {
        let (x, y) = crate::testdata::logistic(100, 1);
        for bad in [
            GbdtParams {
                learning_rate: 0.0,
                ..GbdtParams::default()
            },
            GbdtParams {
                max_leaves: 1,
                ..GbdtParams::default()
            },
            GbdtParams {
                lambda: f64::NAN,
                ..GbdtParams::default()
            },
        ] {
            assert!(matches!(
                GradientBoosting::fit(&x, &y, &bad),
                Err(TrainError::InvalidHyperparameter { .. })
            ));
        }
    }
}
