//! Exact TreeSHAP (path-dependent), after Lundberg, Erion and Lee, "Consistent
//! individualized feature attribution for tree ensembles" (Algorithm 2), as
//! in the `shap` library's `tree_shap.h`: the Shapley values of a tree's
//! output where a feature left out follows both children, weighted by the
//! training rows (cover) that went each way. Cost per row is O(leaves ·
//! depth²), not exponential.

use std::cell::RefCell;

/// What TreeSHAP needs to walk one tree.
pub(crate) trait ShapTree {
    /// For a split node: its feature, the child `row` goes to, and the
    /// other child. `None` for a leaf.
    fn step(&self, node: usize, row: &[f64]) -> Option<(usize, usize, usize)>;
    /// For a split node: its feature and its two children. `None` for a leaf.
    fn split(&self, node: usize) -> Option<(usize, usize, usize)>;
    /// Training rows (or weight) that reached `node`.
    fn cover(&self, node: usize) -> f64;
    /// A leaf's output.
    fn leaf_value(&self, node: usize) -> f64;
}

#[derive(Clone, Copy, Default)]
struct PathElement {
    feature: Option<usize>,
    zero_fraction: f64,
    one_fraction: f64,
    weight: f64,
}

/// Adds the row's Shapley values of `tree` to `phi` (one per feature).
pub(crate) fn tree_shap(tree: &impl ShapTree, row: &[f64], phi: &mut [f64]) {
    recurse(tree, row, phi, 0, &[], 1.0, 1.0, None);
}

/// One level: the parent's path extended by this node's element. Each level
/// owns a copy of its path (a few elements), which keeps unwinding local.
#[allow(clippy::too_many_arguments)]
fn recurse(
    tree: &impl ShapTree,
    row: &[f64],
    phi: &mut [f64],
    node: usize,
    parent: &[PathElement],
    zero_fraction: f64,
    one_fraction: f64,
    feature: Option<usize>,
) {
    let depth = parent.len();
    let mut path = Vec::with_capacity(depth + 1);
    path.extend_from_slice(parent);
    path.push(PathElement::default());
    extend(&mut path, depth, zero_fraction, one_fraction, feature);
    let mut unique_depth = depth;
    match tree.step(node, row) {
        None => {
            let value = tree.leaf_value(node);
            for i in 1..=unique_depth {
                let w = unwound_sum(&path, unique_depth, i);
                let element = path[i];
                if let Some(f) = element.feature {
                    phi[f] += w * (element.one_fraction - element.zero_fraction) * value;
                }
            }
        }
        Some((split_feature, hot, cold)) => {
            let cover = tree.cover(node);
            let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
            // A feature seen higher on the path is undone, then redone here.
            if let Some(k) = (0..=unique_depth).find(|&k| path[k].feature == Some(split_feature)) {
                incoming_zero = path[k].zero_fraction;
                incoming_one = path[k].one_fraction;
                unwind(&mut path, unique_depth, k);
                unique_depth -= 1;
            }
            let path = &path[..=unique_depth];
            recurse(
                tree,
                row,
                phi,
                hot,
                path,
                tree.cover(hot) / cover * incoming_zero,
                incoming_one,
                Some(split_feature),
            );
            recurse(
                tree,
                row,
                phi,
                cold,
                path,
                tree.cover(cold) / cover * incoming_zero,
                0.0,
                Some(split_feature),
            );
        }
    }
}

fn extend(
    path: &mut [PathElement],
    depth: usize,
    zero_fraction: f64,
    one_fraction: f64,
    feature: Option<usize>,
) {
    path[depth] = PathElement {
        feature,
        zero_fraction,
        one_fraction,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].weight += one_fraction * path[i].weight * (i + 1) as f64 / d;
        path[i].weight = zero_fraction * path[i].weight * (depth - i) as f64 / d;
    }
}

fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let PathElement {
        zero_fraction,
        one_fraction,
        ..
    } = path[index];
    let d = (depth + 1) as f64;
    let mut next = path[depth].weight;
    for i in (0..depth).rev() {
        if one_fraction != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next * d / ((i + 1) as f64 * one_fraction);
            next = tmp - path[i].weight * zero_fraction * (depth - i) as f64 / d;
        } else {
            path[i].weight = path[i].weight * d / (zero_fraction * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let PathElement {
        zero_fraction,
        one_fraction,
        ..
    } = path[index];
    let d = (depth + 1) as f64;
    let mut next = path[depth].weight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one_fraction != 0.0 {
            let tmp = next * d / ((i + 1) as f64 * one_fraction);
            total += tmp;
            next = path[i].weight - tmp * zero_fraction * (depth - i) as f64 / d;
        } else if zero_fraction != 0.0 {
            total += path[i].weight / zero_fraction / ((depth - i) as f64 / d);
        }
    }
    total
}

/// Leaves with more distinct features on their path than this are left to
/// [`tree_shap`]: a leaf's table holds `2^d · d` values (at 12, 48k).
const MAX_TABLE_FEATURES: usize = 12;

/// A tree's TreeSHAP worked out ahead for every leaf and every way a row
/// can agree with the leaf's path (after "Fast TreeSHAP", Yang 2021, v2).
/// A leaf's share of a row's Shapley values depends on the row only through
/// which of the distinct features on its path the row follows towards the
/// leaf (a feature tested twice counts as followed when both tests are), so
/// explaining a row is one pass over the splits and a table look-up per
/// leaf: O(leaves · depth) instead of [`tree_shap`]'s O(leaves · depth²).
#[derive(Debug, Clone)]
pub(crate) struct ShapTable {
    splits: usize,
    leaves: Vec<LeafTable>,
}

#[derive(Debug, Clone)]
struct LeafTable {
    /// The splits above the leaf: node, the child towards the leaf, and the
    /// index of the split's feature in `features`.
    path: Vec<(usize, usize, usize)>,
    /// The distinct features on the path, in order of first test.
    features: Vec<usize>,
    /// `shares[pattern · d + j]`: feature `j`'s share when the row follows
    /// the path on exactly the features whose bits are set in `pattern`.
    shares: Vec<f64>,
}

thread_local! {
    /// Which child each split sends the current row to (`usize::MAX`: not
    /// asked yet): every split is evaluated once per row and tree.
    static TAKEN: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl ShapTable {
    /// The table of `tree`, or `None` when a leaf has more than
    /// [`MAX_TABLE_FEATURES`] distinct features on its path.
    pub(crate) fn new(tree: &impl ShapTree) -> Option<ShapTable> {
        let mut table = ShapTable {
            splits: 0,
            leaves: Vec::new(),
        };
        let mut stack = vec![(0usize, Vec::new())];
        while let Some((node, path)) = stack.pop() {
            table.splits = table.splits.max(node + 1);
            match tree.split(node) {
                Some((_, left, right)) => {
                    for child in [right, left] {
                        let mut below: Vec<(usize, usize)> = path.clone();
                        below.push((node, child));
                        stack.push((child, below));
                    }
                }
                None => table.leaves.push(LeafTable::new(tree, node, &path)?),
            }
        }
        Some(table)
    }

    /// How many values the table holds.
    pub(crate) fn len(&self) -> usize {
        self.leaves.iter().map(|l| l.shares.len()).sum()
    }

    /// Adds the row's Shapley values of `tree` (the tree this table was
    /// made from) to `phi`, as [`tree_shap`] does.
    pub(crate) fn add(&self, tree: &impl ShapTree, row: &[f64], phi: &mut [f64]) {
        TAKEN.with_borrow_mut(|taken| {
            taken.clear();
            taken.resize(self.splits, usize::MAX);
            for leaf in &self.leaves {
                let d = leaf.features.len();
                let mut pattern = (1usize << d) - 1;
                for &(node, child, j) in &leaf.path {
                    if taken[node] == usize::MAX {
                        taken[node] = tree.step(node, row).map_or(node, |(_, hot, _)| hot);
                    }
                    if taken[node] != child {
                        pattern &= !(1 << j);
                    }
                }
                let shares = &leaf.shares[pattern * d..(pattern + 1) * d];
                for (&feature, &share) in leaf.features.iter().zip(shares) {
                    phi[feature] += share;
                }
            }
        });
    }
}

impl LeafTable {
    fn new(tree: &impl ShapTree, leaf: usize, path: &[(usize, usize)]) -> Option<LeafTable> {
        let mut features: Vec<usize> = Vec::new();
        // Per distinct feature: the product of the cover ratios of its tests.
        let mut zero: Vec<f64> = Vec::new();
        let mut steps = Vec::with_capacity(path.len());
        for &(node, child) in path {
            let (feature, _, _) = tree.split(node).expect("a path runs through splits");
            let ratio = tree.cover(child) / tree.cover(node);
            let j = match features.iter().position(|&f| f == feature) {
                Some(j) => {
                    zero[j] *= ratio;
                    j
                }
                None => {
                    features.push(feature);
                    zero.push(ratio);
                    features.len() - 1
                }
            };
            steps.push((node, child, j));
        }
        let d = features.len();
        if d > MAX_TABLE_FEATURES {
            return None;
        }
        let value = tree.leaf_value(leaf);
        let mut shares = Vec::with_capacity(d << d);
        let mut elements = vec![PathElement::default(); d + 1];
        for pattern in 0..1usize << d {
            extend(&mut elements, 0, 1.0, 1.0, None);
            for (j, &z) in zero.iter().enumerate() {
                let one = if pattern & (1 << j) != 0 { 1.0 } else { 0.0 };
                extend(&mut elements, j + 1, z, one, Some(features[j]));
            }
            for i in 1..=d {
                let element = elements[i];
                shares.push(
                    unwound_sum(&elements, d, i)
                        * (element.one_fraction - element.zero_fraction)
                        * value,
                );
            }
        }
        Some(LeafTable {
            path: steps,
            features,
            shares,
        })
    }
}

#[cfg(test)]
pub(crate) mod brute_force {
    use super::ShapTree;

    /// E[f(x) | x_S]: features in `known` follow the row, the others both
    /// children weighted by cover — the value function TreeSHAP explains.
    fn expectation(tree: &impl ShapTree, node: usize, row: &[f64], known: u32) -> f64 {
        match tree.step(node, row) {
            None => tree.leaf_value(node),
            Some((feature, hot, _)) if known & (1 << feature) != 0 => {
                expectation(tree, hot, row, known)
            }
            Some((_, hot, cold)) => {
                let cover = tree.cover(node);
                (tree.cover(hot) * expectation(tree, hot, row, known)
                    + tree.cover(cold) * expectation(tree, cold, row, known))
                    / cover
            }
        }
    }

    /// Shapley values by enumerating every coalition (features < 16).
    pub(crate) fn shapley(tree: &impl ShapTree, row: &[f64]) -> Vec<f64> {
        let m = row.len();
        let factorial = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
        let mut phi = vec![0.0; m];
        for (i, value) in phi.iter_mut().enumerate() {
            for subset in 0u32..(1 << m) {
                if subset & (1 << i) != 0 {
                    continue;
                }
                let size = subset.count_ones() as usize;
                let weight = factorial(size) * factorial(m - size - 1) / factorial(m);
                *value += weight
                    * (expectation(tree, 0, row, subset | (1 << i))
                        - expectation(tree, 0, row, subset));
            }
        }
        phi
    }
}
