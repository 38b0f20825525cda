//! TreeEnsembleClassifier and TreeEnsembleRegressor (ai.onnx.ml 1 and 3),
//! flattened at import into parallel node arrays that a row walks by index.
//!
//! The binary-classifier conventions follow onnxruntime 1.32, measured on
//! hand-made ensembles: with one scored class and at most one base value,
//! the score `s` becomes `(σ(-s), σ(s))` under LOGISTIC and `(1 - s, s)`
//! (all weights ≥ 0) or `(-s, s)` (mixed) under NONE; with two base values,
//! `base[1] + s` is class 1's score when class 1 is scored; a class no leaf
//! scores reads 0 before the transform.

use std::collections::HashMap;

use crate::GraphError;
use crate::attrs::Attrs;
use crate::ml::{Labels, Post};
use crate::ops::sigmoid;
use crate::tensor::Tensor;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Leaf,
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

#[derive(Debug)]
enum Kind {
    Classifier {
        labels: Labels,
        /// Two classes, and the leaves score only one of them.
        binary: bool,
        all_positive: bool,
    },
    Regressor(Aggregate),
}

/// One node, packed so a walk reads one 24-byte record per level. A leaf
/// is its own child both ways, so a walk may take more steps than its
/// path has and stay on the leaf: rows walk in lockstep without checks.
#[derive(Debug, Clone, Copy)]
struct Node {
    threshold: f64,
    feature: u32,
    /// The false child, then the true one.
    children: [u32; 2],
    mode: Mode,
    missing_true: bool,
}

impl Node {
    fn goes_true(&self, x: f64, all_leq: bool) -> bool {
        let t = self.threshold;
        if all_leq {
            // The usual ensemble (scikit-learn, LightGBM): one comparison,
            // no dispatch on the mode (a leaf compares too, and stays).
            return (x <= t) | (x.is_nan() & self.missing_true);
        }
        (match self.mode {
            Mode::Leq => x <= t,
            Mode::Lt => x < t,
            Mode::Gte => x >= t,
            Mode::Gt => x > t,
            Mode::Eq => x == t,
            Mode::Neq => x != t,
            Mode::Leaf => false,
        }) | (x.is_nan() & self.missing_true)
    }
}

/// Rows walked through a tree together, so their independent chains of
/// loads overlap instead of each waiting for the last.
const LANES: usize = 8;

#[derive(Debug)]
pub(crate) struct TreeEnsemble {
    nodes: Vec<Node>,
    /// For every node, its range in `target` / `weight` (empty unless a leaf).
    leaf: Vec<(u32, u32)>,
    roots: Vec<u32>,
    /// For every tree, the most steps from its root to a leaf.
    depths: Vec<u32>,
    /// Every branch is BRANCH_LEQ.
    all_leq: bool,
    target: Vec<usize>,
    weight: Vec<f64>,
    outputs: usize,
    base: Vec<f64>,
    post: Post,
    kind: Kind,
    /// Columns the input needs: one more than the largest feature id.
    width: usize,
}

impl TreeEnsemble {
    pub fn classifier(a: &Attrs<'_>) -> Result<TreeEnsemble, GraphError> {
        let labels = Labels::parse(a, "classlabels_int64s", "classlabels_strings");
        if labels.len() < 2 {
            return Err(a.error(format!("{} class labels (at least 2 needed)", labels.len())));
        }
        let mut ensemble = TreeEnsemble::build(a, "class", labels.len())?;
        let mut scored: Vec<usize> = ensemble.target.clone();
        scored.sort_unstable();
        scored.dedup();
        let binary = labels.len() == 2 && scored.len() == 1;
        if labels.len() == 2 && ensemble.base.len() > 2 {
            return Err(a.error(format!("{} base values for 2 classes", ensemble.base.len())));
        }
        if labels.len() > 2 && !ensemble.base.is_empty() && ensemble.base.len() != labels.len() {
            return Err(a.error(format!(
                "{} base values for {} classes",
                ensemble.base.len(),
                labels.len()
            )));
        }
        if binary
            && ensemble.base.len() < 2
            && !matches!(ensemble.post, Post::None | Post::Logistic)
        {
            return Err(a.error(
                "a binary ensemble with one score per leaf supports post_transform NONE or LOGISTIC only",
            ));
        }
        let all_positive = ensemble.weight.iter().all(|&w| w >= 0.0);
        ensemble.kind = Kind::Classifier {
            labels,
            binary,
            all_positive,
        };
        Ok(ensemble)
    }

    pub fn regressor(a: &Attrs<'_>) -> Result<TreeEnsemble, GraphError> {
        let targets = usize::try_from(a.int("n_targets", 1)).unwrap_or(0);
        if targets == 0 {
            return Err(a.error("n_targets must be at least 1"));
        }
        let mut ensemble = TreeEnsemble::build(a, "target", targets)?;
        if !ensemble.base.is_empty() && ensemble.base.len() != targets {
            return Err(a.error(format!(
                "{} base values for {targets} targets",
                ensemble.base.len()
            )));
        }
        if targets == 1 && ensemble.post != Post::None {
            return Err(a.error("a single-target regressor supports post_transform NONE only"));
        }
        ensemble.kind = Kind::Regressor(match a.string("aggregate_function", "SUM").as_str() {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => return Err(a.error(format!("aggregate_function {other} is not supported"))),
        });
        Ok(ensemble)
    }

    /// The nodes and leaf weights (`{prefix}_treeids`, …) as flat arrays,
    /// checked: every child exists in its tree, and every tree is a tree
    /// (one root, no node reached twice), so a walk always ends at a leaf.
    fn build(a: &Attrs<'_>, prefix: &str, outputs: usize) -> Result<TreeEnsemble, GraphError> {
        let trees = a.ints("nodes_treeids");
        let ids = a.ints("nodes_nodeids");
        let features = a.ints("nodes_featureids");
        let modes = a.strings("nodes_modes");
        let values = a.floats_or_tensor("nodes_values")?;
        let trues = a.ints("nodes_truenodeids");
        let falses = a.ints("nodes_falsenodeids");
        let missing = a.ints("nodes_missing_value_tracks_true");
        let n = trees.len();
        if n == 0 {
            return Err(a.error("no nodes"));
        }
        for (name, len) in [
            ("nodes_nodeids", ids.len()),
            ("nodes_featureids", features.len()),
            ("nodes_modes", modes.len()),
            ("nodes_values", values.len()),
            ("nodes_truenodeids", trues.len()),
            ("nodes_falsenodeids", falses.len()),
        ] {
            if len != n {
                return Err(a.error(format!("{name} has {len} entries for {n} nodes")));
            }
        }
        if !missing.is_empty() && missing.len() != n {
            return Err(a.error(format!(
                "nodes_missing_value_tracks_true has {} entries for {n} nodes",
                missing.len()
            )));
        }
        let mut position = HashMap::with_capacity(n);
        for i in 0..n {
            if position.insert((trees[i], ids[i]), i).is_some() {
                return Err(a.error(format!(
                    "node {} of tree {} is defined twice",
                    ids[i], trees[i]
                )));
            }
        }
        let mode: Vec<Mode> = modes
            .iter()
            .map(|m| {
                Ok(match m.as_str() {
                    "LEAF" => Mode::Leaf,
                    "BRANCH_LEQ" => Mode::Leq,
                    "BRANCH_LT" => Mode::Lt,
                    "BRANCH_GTE" => Mode::Gte,
                    "BRANCH_GT" => Mode::Gt,
                    "BRANCH_EQ" => Mode::Eq,
                    "BRANCH_NEQ" => Mode::Neq,
                    other => return Err(a.error(format!("node mode {other} is not supported"))),
                })
            })
            .collect::<Result<_, _>>()?;
        let child = |i: usize, id: i64, which: &str| {
            position
                .get(&(trees[i], id))
                .map(|&c| c as u32)
                .ok_or_else(|| {
                    a.error(format!(
                        "node {} of tree {} has {which} child {id}, which the tree lacks",
                        ids[i], trees[i]
                    ))
                })
        };
        let (mut true_child, mut false_child) = (vec![0u32; n], vec![0u32; n]);
        let mut width = 0;
        let mut feature = vec![0u32; n];
        for i in 0..n {
            if mode[i] == Mode::Leaf {
                continue;
            }
            true_child[i] = child(i, trues[i], "true")?;
            false_child[i] = child(i, falses[i], "false")?;
            feature[i] = u32::try_from(features[i])
                .map_err(|_| a.error(format!("invalid feature id {}", features[i])))?;
            width = width.max(feature[i] as usize + 1);
        }

        let leaf_trees = a.ints(&format!("{prefix}_treeids"));
        let leaf_ids = a.ints(&format!("{prefix}_nodeids"));
        let leaf_targets = a.ints(&format!("{prefix}_ids"));
        let leaf_weights = a.floats_or_tensor(&format!("{prefix}_weights"))?;
        let m = leaf_trees.len();
        if leaf_ids.len() != m || leaf_targets.len() != m || leaf_weights.len() != m {
            return Err(a.error(format!(
                "{prefix}_treeids, _nodeids, _ids and _weights differ in length"
            )));
        }
        let mut per_node: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
        for j in 0..m {
            let node = *position.get(&(leaf_trees[j], leaf_ids[j])).ok_or_else(|| {
                a.error(format!(
                    "a weight names node {} of tree {}, which does not exist",
                    leaf_ids[j], leaf_trees[j]
                ))
            })?;
            if mode[node] != Mode::Leaf {
                return Err(a.error(format!(
                    "a weight names node {} of tree {}, which is not a leaf",
                    leaf_ids[j], leaf_trees[j]
                )));
            }
            let target = usize::try_from(leaf_targets[j])
                .ok()
                .filter(|&t| t < outputs)
                .ok_or_else(|| {
                    a.error(format!(
                        "{prefix} id {} is outside the {outputs} outputs",
                        leaf_targets[j]
                    ))
                })?;
            per_node[node].push((target, leaf_weights[j]));
        }
        let (mut leaf, mut target, mut weight) = (vec![(0, 0); n], Vec::new(), Vec::new());
        for (i, entries) in per_node.into_iter().enumerate() {
            leaf[i] = (target.len() as u32, entries.len() as u32);
            for (t, w) in entries {
                target.push(t);
                weight.push(w);
            }
        }

        // Roots: the nodes of each tree that no node of it points to.
        let mut is_child = vec![false; n];
        for i in (0..n).filter(|&i| mode[i] != Mode::Leaf) {
            is_child[true_child[i] as usize] = true;
            is_child[false_child[i] as usize] = true;
        }
        let mut tree_order: Vec<i64> = Vec::new();
        let mut root_of: HashMap<i64, Vec<u32>> = HashMap::new();
        for i in 0..n {
            let entry = root_of.entry(trees[i]).or_insert_with(|| {
                tree_order.push(trees[i]);
                Vec::new()
            });
            if !is_child[i] {
                entry.push(i as u32);
            }
        }
        let mut roots = Vec::with_capacity(tree_order.len());
        let mut depths = Vec::with_capacity(tree_order.len());
        let mut reached = vec![false; n];
        for tree in tree_order {
            let [root] = root_of[&tree][..] else {
                return Err(a.error(format!(
                    "tree {tree} has {} roots (nodes no other node points to); expected 1",
                    root_of[&tree].len()
                )));
            };
            let (mut stack, mut depth) = (vec![(root as usize, 0u32)], 0);
            while let Some((i, d)) = stack.pop() {
                if std::mem::replace(&mut reached[i], true) {
                    return Err(a.error(format!("node {} of tree {tree} is reached twice", ids[i])));
                }
                depth = depth.max(d);
                if mode[i] != Mode::Leaf {
                    stack.extend([
                        (true_child[i] as usize, d + 1),
                        (false_child[i] as usize, d + 1),
                    ]);
                }
            }
            roots.push(root);
            depths.push(depth);
        }

        let nodes: Vec<Node> = (0..n)
            .map(|i| Node {
                threshold: values[i],
                feature: feature[i],
                children: if mode[i] == Mode::Leaf {
                    [i as u32; 2]
                } else {
                    [false_child[i], true_child[i]]
                },
                mode: mode[i],
                missing_true: missing.get(i).is_some_and(|&m| m != 0),
            })
            .collect();
        let all_leq = nodes
            .iter()
            .all(|n| matches!(n.mode, Mode::Leq | Mode::Leaf));
        Ok(TreeEnsemble {
            nodes,
            leaf,
            roots,
            depths,
            all_leq,
            target,
            weight,
            outputs,
            base: a.floats_or_tensor("base_values")?,
            post: Post::parse(a)?,
            kind: Kind::Regressor(Aggregate::Sum),
            width,
        })
    }

    /// The leaves one tree sends the [`LANES`] rows of `block` to.
    fn leaves(&self, (root, depth): (u32, u32), block: &[f64], cols: usize) -> [usize; LANES] {
        let mut at = [root as usize; LANES];
        for _ in 0..depth {
            let mut walking = false;
            for (lane, i) in at.iter_mut().enumerate() {
                let node = &self.nodes[*i];
                let x = block[lane * cols + node.feature as usize];
                *i = node.children[usize::from(node.goes_true(x, self.all_leq))] as usize;
                walking |= node.mode != Mode::Leaf;
            }
            // Unbalanced trees (LightGBM's grow leaf-wise): stop once every
            // lane has reached its leaf, well before the deepest one.
            if !walking {
                break;
            }
        }
        at
    }

    /// Classifier: (labels, scores `[N, classes]`); regressor: (`[N, targets]`).
    pub fn run(&self, x: &Tensor) -> Result<Vec<Tensor>, String> {
        let (rows, cols) = x.matrix();
        if cols < self.width {
            return Err(format!(
                "the trees read feature {} but the input has {cols} columns",
                self.width - 1
            ));
        }
        let mut values = x.to_f64()?;
        // Padded to whole blocks of LANES rows; the padding's leaves are dropped.
        let cols = cols.max(1);
        values.resize(rows.div_ceil(LANES) * LANES * cols, 0.0);
        let k = self.outputs;
        let aggregate = match self.kind {
            Kind::Regressor(a) => a,
            Kind::Classifier { .. } => Aggregate::Sum,
        };
        // Tree by tree over all rows: one tree's nodes stay in cache while
        // every row walks it.
        let (mut all_scores, mut all_scored) = (vec![0.0; rows * k], vec![false; rows * k]);
        for tree in self.roots.iter().copied().zip(self.depths.iter().copied()) {
            for (block, first) in values.chunks(LANES * cols).zip((0..rows).step_by(LANES)) {
                let lanes = LANES.min(rows - first);
                let leaves = self.leaves(tree, block, cols);
                for (lane, &leaf) in leaves.iter().enumerate().take(lanes) {
                    let r = first + lane;
                    let (start, len) = self.leaf[leaf];
                    let (scores, scored) = (
                        &mut all_scores[r * k..(r + 1) * k],
                        &mut all_scored[r * k..(r + 1) * k],
                    );
                    for j in start as usize..(start + len) as usize {
                        let (t, w) = (self.target[j], self.weight[j]);
                        scores[t] = match (aggregate, scored[t]) {
                            (Aggregate::Sum | Aggregate::Average, _) => scores[t] + w,
                            (_, false) => w,
                            (Aggregate::Min, true) => scores[t].min(w),
                            (Aggregate::Max, true) => scores[t].max(w),
                        };
                        scored[t] = true;
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(rows * k);
        for (scores, scored) in all_scores.chunks(k).zip(all_scored.chunks(k)) {
            let start = out.len();
            match &self.kind {
                Kind::Regressor(aggregate) => {
                    let trees = self.roots.len() as f64;
                    for (t, &score) in scores.iter().enumerate() {
                        let score = if *aggregate == Aggregate::Average {
                            score / trees
                        } else {
                            score
                        };
                        out.push(score + self.base.get(t).copied().unwrap_or(0.0));
                    }
                }
                Kind::Classifier {
                    binary,
                    all_positive,
                    ..
                } if k == 2 => {
                    let (mut s0, mut s1) = (scores[0], scores[1]);
                    if self.base.len() == 2 {
                        if scored[1] {
                            s1 = self.base[1] + s0;
                            s0 = -s1;
                        } else {
                            s0 += self.base[0];
                            s1 += self.base[1];
                        }
                    } else if let Some(&b) = self.base.first() {
                        s0 += b;
                    }
                    let zero_unscored = |s: f64, t: usize| if scored[t] { s } else { 0.0 };
                    if *binary && self.base.len() < 2 && !scored[1] {
                        out.extend(match self.post {
                            Post::Logistic => [sigmoid(-s0), sigmoid(s0)],
                            _ if *all_positive => [1.0 - s0, s0],
                            _ => [-s0, s0],
                        });
                        continue;
                    }
                    out.extend([zero_unscored(s0, 0), zero_unscored(s1, 1)]);
                }
                Kind::Classifier { .. } => {
                    for (t, &score) in scores.iter().enumerate() {
                        out.push(score + self.base.get(t).copied().unwrap_or(0.0));
                    }
                }
            }
            self.post.apply(&mut out[start..]);
        }
        let matrix = Tensor::floats(vec![rows, k], out.iter().map(|&v| v as f32).collect());
        Ok(match &self.kind {
            Kind::Classifier { labels, .. } => vec![labels.argmax(&out, k), matrix],
            Kind::Regressor(_) => vec![matrix],
        })
    }
}
