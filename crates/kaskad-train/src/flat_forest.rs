//! Boosted trees flattened for scoring many rows fast, with the same
//! scores as [`GradientBoosting::raw_score`] bit for bit.
//!
//! Every node is 16 bytes (threshold, feature with the missing direction in
//! its top bit, left child; the right child follows the left). A leaf is
//! its own left child with threshold +∞ and missing values going left, so
//! a row that reached it stays there: descents need no test for leaves and
//! no branch on the direction (the next node is `left + !goes_left`), and
//! stop once no lane moved. Descents are
//! interleaved [`LANES`] at a time — rows of a block through one tree, or
//! one row through several trees — so the loads of one wait while the
//! others proceed, instead of a mispredicted branch per level.

use std::ops::Range;

use kaskad_prepare::Matrix;

use crate::gbdt::{BoostedTree, GradientBoosting};

/// Descents interleaved: enough independent chains of loads to keep the
/// core busy, few enough for their positions to stay in registers.
const LANES: usize = 8;
/// Rows scored together tree by tree: their features (a few KiB) stay in
/// the first-level cache while the trees stream past.
const BLOCK_ROWS: usize = 64;
/// Batches of at least this many rows are scored on two threads. Above the
/// 1,024-row batches of `kaskad bench`, which stay on one.
const PARALLEL_ROWS: usize = 16_384;

const MISSING_LEFT: u32 = 1 << 31;

#[derive(Debug, Clone, Copy, PartialEq)]
struct FlatNode {
    /// A row goes left when its value is `<= threshold`.
    threshold: f64,
    /// The feature compared, with [`MISSING_LEFT`] set when a missing
    /// value goes left.
    feature: u32,
    /// The left child; the right one is `left + 1`.
    left: u32,
}

/// Boosted trees compiled for batch scoring; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatForest {
    base_score: f64,
    nodes: Vec<FlatNode>,
    /// A leaf's value by node (0 for splits).
    values: Vec<f64>,
    /// Per tree, its root and its deepest leaf's depth.
    trees: Vec<(u32, u32)>,
}

impl FlatForest {
    pub fn new(model: &GradientBoosting) -> Self {
        let nodes = model.trees.iter().map(|t| t.children.len()).sum();
        let mut forest = Self {
            base_score: model.base_score,
            nodes: Vec::with_capacity(nodes),
            values: Vec::with_capacity(nodes),
            trees: Vec::with_capacity(model.trees.len()),
        };
        let mut depths = Vec::new();
        for tree in &model.trees {
            forest.push(tree, &mut depths);
        }
        forest
    }

    fn push(&mut self, tree: &BoostedTree, depths: &mut Vec<u32>) {
        let root = self.nodes.len() as u32;
        depths.clear();
        depths.resize(tree.children.len(), 0);
        for at in 0..tree.children.len() {
            let left = tree.children[at];
            let node = if left == 0 {
                FlatNode {
                    threshold: f64::INFINITY,
                    feature: MISSING_LEFT,
                    left: root + at as u32,
                }
            } else {
                // Children come after their parent.
                depths[left as usize] = depths[at] + 1;
                depths[left as usize + 1] = depths[at] + 1;
                let missing = if tree.missing_left[at] {
                    MISSING_LEFT
                } else {
                    0
                };
                FlatNode {
                    threshold: tree.threshold[at],
                    feature: tree.feature[at] | missing,
                    left: root + left,
                }
            };
            self.nodes.push(node);
            self.values
                .push(if left == 0 { tree.value[at] } else { 0.0 });
        }
        let depth = depths.iter().copied().max().unwrap_or(0);
        self.trees.push((root, depth));
    }

    /// The raw score (log-odds) of every row of `x`.
    pub fn raw_scores(&self, x: &Matrix) -> Vec<f64> {
        let mut sums = vec![0.0; x.rows];
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        if threads > 1 && x.rows >= PARALLEL_ROWS {
            let half = (x.rows / 2).next_multiple_of(BLOCK_ROWS);
            let (low, high) = sums.split_at_mut(half);
            std::thread::scope(|scope| {
                scope.spawn(|| self.sum_rows(x, 0..half, low));
                self.sum_rows(x, half..x.rows, high);
            });
        } else {
            self.sum_rows(x, 0..x.rows, &mut sums);
        }
        sums.into_iter().map(|s| self.base_score + s).collect()
    }

    /// The raw score of one row, its trees descended [`LANES`] at a time.
    pub fn raw_score_row(&self, row: &[f64]) -> f64 {
        let mut sum = 0.0;
        let mut trees = self.trees.chunks_exact(LANES);
        for group in &mut trees {
            let depth = group.iter().map(|&(_, d)| d).max().unwrap_or(0);
            let leaves = self.descend(std::array::from_fn(|j| group[j].0), [row; LANES], depth);
            // Added in tree order, as the rows of a block are.
            for leaf in leaves {
                sum += self.values[leaf as usize];
            }
        }
        for &(root, depth) in trees.remainder() {
            sum += self.values[self.descend([root], [row], depth)[0] as usize];
        }
        self.base_score + sum
    }

    /// Adds to `sums` (one per row of `rows`) every tree's leaf value.
    fn sum_rows(&self, x: &Matrix, rows: Range<usize>, sums: &mut [f64]) {
        for (block, sums) in sums.chunks_mut(BLOCK_ROWS).enumerate() {
            let first = rows.start + block * BLOCK_ROWS;
            for &(root, depth) in &self.trees {
                let mut lanes = sums.chunks_exact_mut(LANES);
                let mut at = first;
                for lane_sums in &mut lanes {
                    let leaves =
                        self.descend([root; LANES], std::array::from_fn(|j| x.row(at + j)), depth);
                    for (sum, leaf) in lane_sums.iter_mut().zip(leaves) {
                        *sum += self.values[leaf as usize];
                    }
                    at += LANES;
                }
                for (j, sum) in lanes.into_remainder().iter_mut().enumerate() {
                    let leaf = self.descend([root], [x.row(at + j)], depth)[0];
                    *sum += self.values[leaf as usize];
                }
            }
        }
    }

    /// The leaves that `starts[j]` leads `rows[j]` to, all lanes in
    /// lockstep; at most `depth` steps, fewer once every lane has stopped
    /// at a leaf (leaf-wise trees are deep on few rows: on resampled credit
    /// data the deepest leaf is 10 levels down on average, a row's 3.6).
    #[inline(always)]
    fn descend<const L: usize>(&self, starts: [u32; L], rows: [&[f64]; L], depth: u32) -> [u32; L] {
        let mut at = starts;
        for _ in 0..depth {
            let mut moved = false;
            for (at, row) in at.iter_mut().zip(rows) {
                let node = self.nodes[*at as usize];
                let v = row[(node.feature & !MISSING_LEFT) as usize];
                let goes_left =
                    (v <= node.threshold) | (v.is_nan() & (node.feature >= MISSING_LEFT));
                let next = node.left + u32::from(!goes_left);
                // Children come after their parent: only a leaf stays put.
                moved |= next != *at;
                *at = next;
            }
            if !moved {
                break;
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gbdt::GbdtParams;

    #[test]
    fn scores_as_the_trees_bit_for_bit() {
        let (mut x, y) = crate::testdata::logistic(3_000, 21);
        for i in (0..x.rows).step_by(4) {
            x.data[i * x.cols + (i / 4) % x.cols] = f64::NAN;
        }
        let params = GbdtParams {
            n_trees: 37,
            ..GbdtParams::default()
        };
        let model = GradientBoosting::fit(&x, &y, &params).unwrap();
        assert!(model.trees.len() > LANES && !model.trees.len().is_multiple_of(LANES));
        let forest = FlatForest::new(&model);
        let expected: Vec<f64> = (0..x.rows)
            .map(|i| {
                let row = x.row(i);
                let sum: f64 = model.trees.iter().map(|t| t.value[t.leaf(row)]).sum();
                model.base_score + sum
            })
            .collect();
        // Rows not a multiple of the block or the lanes, and values never
        // seen in training: infinities, and a whole row missing.
        let mut odd = Matrix::zeros(3, x.cols);
        odd.data[..x.cols].fill(f64::INFINITY);
        odd.data[x.cols..2 * x.cols].fill(f64::NEG_INFINITY);
        odd.data[2 * x.cols..].fill(f64::NAN);
        for (m, want) in [
            (&x, expected),
            (
                &odd,
                (0..3)
                    .map(|i| {
                        let sum: f64 = model
                            .trees
                            .iter()
                            .map(|t| t.value[t.leaf(odd.row(i))])
                            .sum();
                        model.base_score + sum
                    })
                    .collect(),
            ),
        ] {
            let got = forest.raw_scores(m);
            assert_eq!(got.len(), m.rows);
            // The model's own scoring: flattened for the many rows, through
            // the trees as they are for the three.
            let model_scores = model.raw_score(m);
            for i in 0..m.rows {
                assert_eq!(got[i].to_bits(), want[i].to_bits(), "row {i}");
                assert_eq!(forest.raw_score_row(m.row(i)).to_bits(), want[i].to_bits());
                assert_eq!(model_scores[i].to_bits(), want[i].to_bits());
            }
        }
    }

    #[test]
    fn large_batches_split_over_threads_score_the_same() {
        let (x, y) = crate::testdata::logistic(2_000, 22);
        let params = GbdtParams {
            n_trees: 10,
            ..GbdtParams::default()
        };
        let model = GradientBoosting::fit(&x, &y, &params).unwrap();
        let forest = FlatForest::new(&model);
        // Repeat the rows past the threshold of two threads.
        let copies = PARALLEL_ROWS / x.rows + 1;
        let big = Matrix {
            rows: x.rows * copies,
            cols: x.cols,
            data: x.data.repeat(copies),
        };
        let small = forest.raw_scores(&x);
        let large = forest.raw_scores(&big);
        for (i, s) in large.iter().enumerate() {
            assert_eq!(s.to_bits(), small[i % x.rows].to_bits(), "row {i}");
        }
    }
}
