//! The search behind every kNN answer (scores, reason codes, `explain`
//! neighbours): the kept rows regrouped so that a query visits few of them,
//! with the same answer as a scan of every kept row.
//!
//! Encoded credit data is mostly one-hot levels and flags: columns with a
//! handful of distinct values. The kept rows are grouped by their values on
//! such columns (a *pattern*) and by label, each group's rows consecutive.
//! A query's squared
//! distance to a row is then its distance to the row's pattern (one sum per
//! pattern, not per row) plus the dense columns' part. Groups are visited in
//! order of their pattern's distance, and the search stops at the first
//! group whose pattern alone is farther than the current `k`-th candidate:
//! every row in it and after it is too. Within a group, a k-d tree over the
//! remaining (*dense*) columns (median splits of the widest side, leaves of
//! up to [`LEAF`] rows, each leaf's values one block, column after column)
//! skips every node whose bounding box is farther.
//!
//! Beyond [`TREE_COLUMNS`] dense columns (wide one-hot data whose levels
//! do not all fit in the pattern) the trees no longer prune, and batches
//! are scanned whole by matrix products ([`nearest_by_products`]), with
//! candidates kept within the products' rounding bound and finished the
//! same way.
//!
//! Candidates are chosen on these regrouped sums, then every candidate's
//! distance is recomputed column by column as a direct scan would, and the
//! `k` nearest taken by (distance, kept-row index). A regrouped sum adds the
//! same non-negative terms in another order, so it is within a relative
//! `cols · 2⁻⁵³` of the direct one; candidates are kept within [`SLACK`]
//! (far wider) of the `k`-th, so no row that a direct scan would choose is
//! ever dropped, and ties fall the same way.

use std::ops::Range;

use kaskad_prepare::Matrix;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, Axis, Slice};
use pulp::NullaryFnOnce;

use crate::kernels::dispatch;
use crate::neighbours::Neighbour;

/// A column with at most this many distinct values among the kept rows may
/// join the pattern.
const MAX_LEVELS: usize = 16;
/// The most rows in a k-d tree's leaf; a leaf's dense distances are summed
/// together, one column at a time.
const LEAF: usize = 64;
/// Dense columns up to which the k-d trees are searched (scikit-learn
/// turns to brute force from 16 columns on).
const TREE_COLUMNS: usize = 16;
/// Kept rows per matrix product in [`nearest_by_products`]: with 64 queries,
/// the product (1 MiB) stays in cache.
const PRODUCT_ROWS: usize = 2048;
/// Relative margin around the `k`-th candidate's regrouped sum within which
/// rows stay candidates (rounding differences are below `1e-13` for up to
/// a thousand columns).
const SLACK: f64 = 1e-9;

/// Which kept rows a search may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Among {
    All,
    /// Rows labelled 1 only.
    Defaulters,
    /// Rows labelled otherwise only.
    Others,
}

impl Among {
    fn admits(self, label: u8) -> bool {
        match self {
            Among::All => true,
            Among::Defaulters => label == 1,
            Among::Others => label != 1,
        }
    }
}

/// The kept rows of a kNN model, regrouped for search.
#[derive(Debug)]
pub(crate) struct SearchIndex {
    /// Columns that make up the pattern.
    pattern_columns: Vec<usize>,
    pattern_count: usize,
    /// `patterns[i * pattern_count + p]`: pattern `p`'s value on
    /// `pattern_columns[i]`.
    patterns: Vec<f64>,
    groups: Vec<Group>,
    /// The kept-row index at each position of the regrouped order.
    order: Vec<u32>,
    /// The other columns.
    dense_columns: Vec<usize>,
    /// Every group's k-d tree over the dense columns, each node followed by
    /// its first child.
    nodes: Vec<Node>,
    /// Each node's bounding box: the dense columns' lows, then their highs.
    boxes: Vec<f64>,
    /// The dense columns' values, leaf after leaf, each leaf column after
    /// column: for a leaf over `positions`, `dense[positions.start * width
    /// + c * positions.len() + i]` is column `c` of the row at
    /// `positions.start + i`.
    dense: Vec<f64>,
}

/// Consecutive positions that share a pattern and a label.
#[derive(Debug)]
struct Group {
    pattern: usize,
    label: u8,
    positions: Range<usize>,
    /// The node of its tree's root.
    root: usize,
}

/// Positions whose dense values lie in the node's box; split at the median
/// of the box's widest column unless at most [`LEAF`] rows.
#[derive(Debug)]
struct Node {
    positions: Range<usize>,
    /// The second child (the first one follows the node); `None` for leaves.
    second: Option<usize>,
}

impl SearchIndex {
    /// Chooses the pattern columns greedily, fewest levels first, as long as
    /// the patterns stay few (at most one per 16 kept rows, at most 4096):
    /// each query computes its distance to every pattern.
    pub(crate) fn build(rows: &Matrix, labels: &[u8]) -> Self {
        let n = rows.rows;
        let most_patterns = (n / 16).clamp(1, 4096);
        let mut candidates: Vec<(usize, Vec<u8>, usize)> = (0..rows.cols)
            .filter_map(|c| levels(rows, c).map(|(codes, count)| (c, codes, count)))
            .collect();
        candidates.sort_by_key(|&(c, _, count)| (count, c));
        let mut pattern_of = vec![0u32; n];
        let mut patterns = 1;
        let mut pattern_columns = Vec::new();
        for (column, codes, count) in candidates {
            // Pattern × level → refined pattern, numbered in order of first use.
            let mut refined_id = vec![u32::MAX; patterns * count];
            let mut refined = 0;
            let next: Vec<u32> = pattern_of
                .iter()
                .zip(&codes)
                .map(|(&p, &code)| {
                    let id = &mut refined_id[p as usize * count + code as usize];
                    if *id == u32::MAX {
                        *id = refined;
                        refined += 1;
                    }
                    *id
                })
                .collect();
            if refined as usize <= most_patterns {
                pattern_of = next;
                patterns = refined as usize;
                pattern_columns.push(column);
            }
        }
        pattern_columns.sort_unstable();
        let dense_columns: Vec<usize> = (0..rows.cols)
            .filter(|c| pattern_columns.binary_search(c).is_err())
            .collect();

        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&r| (pattern_of[r as usize], labels[r as usize], r));
        let mut values = vec![0.0; patterns * pattern_columns.len()];
        let mut groups: Vec<Group> = Vec::new();
        for (position, &r) in order.iter().enumerate() {
            let (pattern, label) = (pattern_of[r as usize] as usize, labels[r as usize]);
            match groups.last_mut() {
                Some(g) if g.pattern == pattern && g.label == label => {
                    g.positions.end = position + 1;
                }
                _ => {
                    let row = rows.row(r as usize);
                    for (i, &c) in pattern_columns.iter().enumerate() {
                        values[i * patterns + pattern] = row[c];
                    }
                    groups.push(Group {
                        pattern,
                        label,
                        positions: position..position + 1,
                        root: 0,
                    });
                }
            }
        }
        let width = dense_columns.len();
        // The dense values row after row in the regrouped order; the trees
        // reorder them with `order`.
        let mut points = Vec::with_capacity(n * width);
        for &r in &order {
            let row = rows.row(r as usize);
            points.extend(dense_columns.iter().map(|&c| row[c]));
        }
        let mut trees = Trees {
            width,
            nodes: Vec::new(),
            boxes: Vec::new(),
        };
        for group in &mut groups {
            let positions = group.positions.clone();
            group.root = trees.grow(
                &mut order[positions.clone()],
                &mut points[positions.start * width..positions.end * width],
                positions.start,
            );
        }
        let Trees { nodes, boxes, .. } = trees;
        // Each leaf's rows in one block, column after column: a leaf's
        // distances read one contiguous run of memory.
        let mut dense = Vec::with_capacity(n * width);
        for leaf in nodes.iter().filter(|node| node.second.is_none()) {
            let block = &points[leaf.positions.start * width..leaf.positions.end * width];
            for c in 0..width {
                dense.extend(block.iter().skip(c).step_by(width));
            }
        }
        Self {
            pattern_columns,
            pattern_count: patterns,
            patterns: values,
            groups,
            order,
            dense_columns,
            nodes,
            boxes,
            dense,
        }
    }

    /// A lower bound of the squared distance from `query` (its dense
    /// columns) to every row under `node`, from `base` (its pattern's part).
    fn node_bound(&self, node: usize, query: &[f64], base: f64) -> f64 {
        let width = query.len();
        let (low, high) = self.boxes[2 * width * node..][..2 * width].split_at(width);
        let mut bound = base;
        for ((&q, &l), &h) in query.iter().zip(low).zip(high) {
            let gap = if q < l {
                l - q
            } else if q > h {
                q - h
            } else {
                0.0
            };
            bound += gap * gap;
        }
        bound
    }

    /// The query's squared distance to each pattern.
    fn pattern_distances(&self, query: &[f64]) -> Vec<f64> {
        let query_pattern: Vec<f64> = self.pattern_columns.iter().map(|&c| query[c]).collect();
        let mut distances = vec![0.0; self.pattern_count];
        dispatch(DenseSums {
            sums: &mut distances,
            query: &query_pattern,
            dense: &self.patterns,
            stride: self.pattern_count,
            start: 0,
        });
        distances
    }

    /// Where `query` falls among the kept rows: the first position of the
    /// leaf it lies nearest to in the largest group of its nearest pattern.
    /// Queries in this order visit mostly the same leaves one after the
    /// other, so those stay in cache.
    pub(crate) fn locality(&self, query: &[f64]) -> usize {
        let pattern_distance = self.pattern_distances(query);
        let Some(group) = self.groups.iter().min_by(|a, b| {
            pattern_distance[a.pattern]
                .total_cmp(&pattern_distance[b.pattern])
                .then(b.positions.len().cmp(&a.positions.len()))
        }) else {
            return 0;
        };
        let dense: Vec<f64> = self.dense_columns.iter().map(|&c| query[c]).collect();
        let mut node = group.root;
        while let Some(second) = self.nodes[node].second {
            let first = node + 1;
            node = if self.node_bound(second, &dense, 0.0) < self.node_bound(first, &dense, 0.0) {
                second
            } else {
                first
            };
        }
        self.nodes[node].positions.start
    }

    /// The `k` rows of `among` nearest to `query`, nearest first; ties by
    /// kept-row index. `rows` and `labels` are the ones the index was built
    /// from.
    pub(crate) fn nearest(
        &self,
        rows: &Matrix,
        labels: &[u8],
        query: &[f64],
        k: usize,
        among: Among,
    ) -> Vec<Neighbour> {
        if k == 0 {
            return Vec::new();
        }
        let pattern_distance = self.pattern_distances(query);
        let mut search = Search {
            index: self,
            query: self.dense_columns.iter().map(|&c| query[c]).collect(),
            k,
            candidates: Vec::new(),
            bound: f64::INFINITY,
            compact_at: 2 * k,
            stack: Vec::new(),
        };
        let mut pending: Vec<(f64, &Group)> = self
            .groups
            .iter()
            .filter(|g| among.admits(g.label))
            .map(|g| (pattern_distance[g.pattern], g))
            .collect();
        // The query's own pattern first (it usually holds all k nearest), so
        // that only the few groups within reach of them need ordering.
        let nearest_pattern = pending.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        for &(base, group) in pending.iter().filter(|p| p.0 <= nearest_pattern) {
            search.group(group, base);
        }
        pending.retain(|p| p.0 > nearest_pattern && p.0 <= search.bound);
        pending.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        for (base, group) in pending {
            if base > search.bound {
                break;
            }
            search.group(group, base);
        }
        let mut candidates = search.candidates;
        keep_nearest(&mut candidates, k, 0.0);
        closest(
            rows,
            labels,
            query,
            k,
            candidates
                .iter()
                .map(|&(_, p)| self.order[p as usize] as usize),
        )
    }

    /// Whether the k-d trees can prune: beyond [`TREE_COLUMNS`] dense
    /// columns a query is about as near to every box as to the rows in it,
    /// and batches are better scanned whole by [`nearest_by_products`].
    pub(crate) fn prunes(&self) -> bool {
        self.dense_columns.len() <= TREE_COLUMNS
    }
}

/// The `k` nearest of the kept rows `candidates` to `query` by their
/// distance as a direct scan computes it, ties by kept-row index.
fn closest(
    rows: &Matrix,
    labels: &[u8],
    query: &[f64],
    k: usize,
    candidates: impl Iterator<Item = usize>,
) -> Vec<Neighbour> {
    let mut found: Vec<Neighbour> = candidates
        .map(|index| Neighbour {
            index,
            distance: distance(query, rows.row(index)),
            label: labels[index],
        })
        .collect();
    found.sort_by(|a, b| {
        a.distance
            .total_cmp(&b.distance)
            .then(a.index.cmp(&b.index))
    });
    found.truncate(k);
    found
}

/// The `k` nearest kept rows of each of the rows `queries` of `x`, by a
/// scan of every kept row: squared distances `‖q‖² + ‖t‖² − 2·q·t` from
/// one matrix product per block of kept rows (ndarray / matrixmultiply),
/// candidates kept within the products' rounding bound of the `k`-th, then
/// finished as a search is. `norms` are the kept rows' squared norms.
pub(crate) fn nearest_by_products(
    rows: &Matrix,
    labels: &[u8],
    norms: &[f64],
    x: &Matrix,
    queries: Range<usize>,
    k: usize,
) -> Vec<Vec<Neighbour>> {
    let cols = x.cols;
    let q = ArrayView2::from_shape(
        (queries.len(), cols),
        &x.data[queries.start * cols..queries.end * cols],
    )
    .expect("rows × cols elements");
    let kept = ArrayView2::from_shape((rows.rows, cols), &rows.data).expect("rows × cols elements");
    let largest_norm = norms.iter().copied().fold(0.0, f64::max);
    // |computed − direct sum| ≤ 2·(cols + 4)·ε·(‖q‖² + ‖t‖²) covers the
    // product's and the direct sum's rounding; three of them apart, two
    // sums cannot round to one distance.
    let margins: Vec<f64> = q
        .rows()
        .into_iter()
        .map(|r| 6.0 * (cols + 4) as f64 * f64::EPSILON * (r.dot(&r) + largest_norm))
        .collect();
    let query_norms: Vec<f64> = q.rows().into_iter().map(|r| r.dot(&r)).collect();
    let mut candidates: Vec<Vec<(f64, u32)>> = vec![Vec::new(); queries.len()];
    let mut bounds = vec![f64::INFINITY; queries.len()];
    let mut products = Array2::<f64>::zeros((queries.len(), PRODUCT_ROWS.min(rows.rows)));
    for start in (0..rows.rows).step_by(PRODUCT_ROWS) {
        let end = (start + PRODUCT_ROWS).min(rows.rows);
        let block = kept.slice_axis(Axis(0), Slice::from(start..end));
        let mut products = products.slice_axis_mut(Axis(1), Slice::from(0..end - start));
        general_mat_mul(-2.0, &q, &block.t(), 0.0, &mut products);
        for (i, row) in products.rows().into_iter().enumerate() {
            let (candidates, bound) = (&mut candidates[i], &mut bounds[i]);
            for (j, &p) in row.iter().enumerate() {
                let d = query_norms[i] + norms[start + j] + p;
                if d <= *bound {
                    candidates.push((d, (start + j) as u32));
                }
            }
            if candidates.len() >= 2 * k {
                *bound = keep_nearest(candidates, k, margins[i]);
            }
        }
    }
    candidates
        .into_iter()
        .zip(queries)
        .map(|(candidates, i)| {
            closest(
                rows,
                labels,
                x.row(i),
                k,
                candidates.into_iter().map(|(_, j)| j as usize),
            )
        })
        .collect()
}

/// One query's search: the candidates so far and the bound beyond which a
/// row cannot become one.
struct Search<'a> {
    index: &'a SearchIndex,
    /// The query's dense columns.
    query: Vec<f64>,
    k: usize,
    /// (sum, position) of every row within the bound when it was visited.
    candidates: Vec<(f64, u32)>,
    bound: f64,
    compact_at: usize,
    stack: Vec<(f64, usize)>,
}

impl Search<'_> {
    /// Visits `group`'s tree, nearer child first, skipping nodes beyond
    /// the bound; `base` is the query's distance to the group's pattern.
    fn group(&mut self, group: &Group, base: f64) {
        let index = self.index;
        let mut sums = [0.0; LEAF];
        self.stack
            .push((index.node_bound(group.root, &self.query, base), group.root));
        while let Some((node_bound, node)) = self.stack.pop() {
            if node_bound > self.bound {
                continue;
            }
            if let Some(second) = index.nodes[node].second {
                let first = node + 1;
                let near = (index.node_bound(first, &self.query, base), first);
                let far = (index.node_bound(second, &self.query, base), second);
                let (near, far) = if far.0 < near.0 {
                    (far, near)
                } else {
                    (near, far)
                };
                self.stack.push(far);
                self.stack.push(near);
                continue;
            }
            let leaf = index.nodes[node].positions.clone();
            let width = self.query.len();
            let block = &index.dense[leaf.start * width..leaf.end * width];
            // Leaves hold more than [`LEAF`] rows only when these are equal
            // on every dense column (or there are none).
            for start in (0..leaf.len()).step_by(LEAF) {
                let sums = &mut sums[..LEAF.min(leaf.len() - start)];
                sums.fill(base);
                dispatch(DenseSums {
                    sums,
                    query: &self.query,
                    dense: block,
                    stride: leaf.len(),
                    start,
                });
                let bound = self.bound;
                self.candidates.extend(
                    sums.iter()
                        .zip((leaf.start + start) as u32..)
                        .filter(|&(&s, _)| s <= bound)
                        .map(|(&s, position)| (s, position)),
                );
            }
            if self.candidates.len() >= self.compact_at {
                self.bound = keep_nearest(&mut self.candidates, self.k, 0.0);
                self.compact_at = (2 * self.candidates.len()).max(self.compact_at);
            }
        }
    }
}

/// Builds the groups' k-d trees, reordering each group's positions so that
/// every node's rows are consecutive.
struct Trees {
    /// Dense columns.
    width: usize,
    nodes: Vec<Node>,
    boxes: Vec<f64>,
}

impl Trees {
    /// The node over the kept rows `order` (at positions from `start`),
    /// whose dense values are `points`, row after row; its subtree follows
    /// it.
    fn grow(&mut self, order: &mut [u32], points: &mut [f64], start: usize) -> usize {
        let width = self.width;
        let node = self.nodes.len();
        self.nodes.push(Node {
            positions: start..start + order.len(),
            second: None,
        });
        if width == 0 {
            return node;
        }
        let mut low = vec![f64::INFINITY; width];
        let mut high = vec![f64::NEG_INFINITY; width];
        for point in points.chunks_exact(width) {
            for ((l, h), &v) in low.iter_mut().zip(&mut high).zip(point) {
                *l = l.min(v);
                *h = h.max(v);
            }
        }
        let widest = (0..width)
            .max_by(|&a, &b| (high[a] - low[a]).total_cmp(&(high[b] - low[b])))
            .filter(|&c| high[c] > low[c]);
        self.boxes.extend(low);
        self.boxes.extend(high);
        if let Some(widest) = widest.filter(|_| order.len() > LEAF) {
            let middle = order.len() / 2;
            let mut keyed: Vec<(f64, u32)> = points
                .chunks_exact(width)
                .map(|point| point[widest])
                .zip(0..)
                .collect();
            keyed.select_nth_unstable_by(middle, |a, b| a.0.total_cmp(&b.0));
            let (old_order, old_points) = (order.to_vec(), points.to_vec());
            for (new, &(_, old)) in keyed.iter().enumerate() {
                let old = old as usize;
                order[new] = old_order[old];
                points[new * width..][..width].copy_from_slice(&old_points[old * width..][..width]);
            }
            let (first, second) = order.split_at_mut(middle);
            let (first_points, second_points) = points.split_at_mut(middle * width);
            self.grow(first, first_points, start);
            self.nodes[node].second = Some(self.grow(second, second_points, start + middle));
        }
        node
    }
}

/// The Euclidean distance as a direct scan computes it, column by column.
pub(crate) fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// Drops the candidates beyond [`SLACK`] and `margin` of the `k`-th
/// smallest sum and returns that bound (infinite while there are fewer
/// than `k`).
fn keep_nearest(candidates: &mut Vec<(f64, u32)>, k: usize, margin: f64) -> f64 {
    if candidates.len() < k {
        return f64::INFINITY;
    }
    let (_, kth, _) = candidates.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
    let bound = kth.0 * (1.0 + SLACK) + margin;
    candidates.retain(|c| c.0 <= bound);
    bound
}

/// Column `c`'s level codes and level count, or `None` beyond
/// [`MAX_LEVELS`] levels (levels compared bit for bit).
fn levels(rows: &Matrix, c: usize) -> Option<(Vec<u8>, usize)> {
    let mut seen: Vec<u64> = Vec::new();
    let mut codes = Vec::with_capacity(rows.rows);
    for r in 0..rows.rows {
        let bits = rows.data[r * rows.cols + c].to_bits();
        let code = match seen.iter().position(|&s| s == bits) {
            Some(code) => code,
            None if seen.len() < MAX_LEVELS => {
                seen.push(bits);
                seen.len() - 1
            }
            None => return None,
        };
        codes.push(code as u8);
    }
    Some((codes, seen.len()))
}

/// Adds a tile's dense squared differences to its sums, a column at a time
/// so that the additions run across rows in vector lanes.
struct DenseSums<'a> {
    sums: &'a mut [f64],
    query: &'a [f64],
    dense: &'a [f64],
    stride: usize,
    start: usize,
}

impl NullaryFnOnce for DenseSums<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let len = self.sums.len();
        for (c, &q) in self.query.iter().enumerate() {
            let column = &self.dense[c * self.stride + self.start..][..len];
            for (s, &v) in self.sums.iter_mut().zip(column) {
                *s += (q - v) * (q - v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// Rows like encoded credit data: two one-hot groups, a flag, two
    /// continuous columns and a coarse one (few levels), with exact
    /// duplicates so that distances tie.
    fn encoded(rows: usize, seed: u64) -> (Matrix, Vec<u8>) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for r in 0..rows {
            if r % 7 == 6 {
                let copy = rng.random_range(0..r) * 9;
                data.extend_from_within(copy..copy + 9);
                labels.push(labels[copy / 9]);
                continue;
            }
            let mut one_hot = [0.0; 3];
            one_hot[rng.random_range(0..3)] = 1.0;
            let home = rng.random_range(0..2);
            data.extend(one_hot);
            data.extend([
                f64::from(u8::from(home == 0)),
                f64::from(u8::from(home == 1)),
            ]);
            data.push(f64::from(rng.random_range(0..2u8)));
            data.push(rng.random_range(-2.0..2.0));
            data.push(rng.random_range(-1.0..1.0));
            data.push(f64::from(rng.random_range(0..3u8)) * 0.5);
            labels.push(u8::from(rng.random::<f64>() < 0.3));
        }
        (
            Matrix {
                rows,
                cols: 9,
                data,
            },
            labels,
        )
    }

    fn brute_force(
        rows: &Matrix,
        labels: &[u8],
        query: &[f64],
        k: usize,
        among: Among,
    ) -> Vec<Neighbour> {
        let mut all: Vec<Neighbour> = (0..rows.rows)
            .filter(|&r| among.admits(labels[r]))
            .map(|r| Neighbour {
                index: r,
                distance: distance(query, rows.row(r)),
                label: labels[r],
            })
            .collect();
        all.sort_by(|a, b| {
            a.distance
                .total_cmp(&b.distance)
                .then(a.index.cmp(&b.index))
        });
        all.truncate(k);
        all
    }

    #[test]
    fn finds_what_a_scan_of_every_row_finds_ties_included() {
        let (rows, labels) = encoded(20_000, 5);
        let index = SearchIndex::build(&rows, &labels);
        // The one-hot levels, the flag and the coarse column form the
        // pattern; the two continuous columns stay dense, in trees of
        // several levels.
        assert_eq!(index.dense_columns, vec![6, 7]);
        assert!(index.groups.len() > 50, "{} groups", index.groups.len());
        assert!(index.nodes.len() > 3 * index.groups.len());
        let (queries, _) = encoded(150, 6);
        for q in 0..queries.rows {
            // Kept rows themselves (distance 0, duplicates) and new rows.
            let query = if q % 2 == 0 {
                rows.row(q * 7 + 6)
            } else {
                queries.row(q)
            };
            for k in [1, 5, 25, 400] {
                for among in [Among::All, Among::Defaulters, Among::Others] {
                    assert_eq!(
                        index.nearest(&rows, &labels, query, k, among),
                        brute_force(&rows, &labels, query, k, among),
                        "query {q}, k {k}, {among:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn many_equal_rows_and_no_dense_columns() {
        let mut rng = SmallRng::seed_from_u64(8);
        // A flag and a column of 20 levels: beyond the pattern's 16, so it
        // stays dense, and ~150 rows share each of its values.
        let flagged: Vec<f64> = (0..3_000)
            .flat_map(|_| {
                [
                    f64::from(rng.random_range(0..2u8)),
                    f64::from(rng.random_range(0..20u8)),
                ]
            })
            .collect();
        // Two flags only: every column in the pattern.
        let flags_only: Vec<f64> = flagged.chunks(2).flat_map(|r| [r[0], r[1] % 2.0]).collect();
        let labels: Vec<u8> = (0..3_000).map(|_| rng.random_range(0..2u8)).collect();
        for (data, dense) in [(flagged, 1), (flags_only, 0)] {
            let rows = Matrix {
                rows: 3_000,
                cols: 2,
                data,
            };
            let index = SearchIndex::build(&rows, &labels);
            assert_eq!(index.dense_columns.len(), dense);
            for query in [[0.0, 3.0], [1.0, 0.4], [0.5, 19.5]] {
                for k in [1, 25, 300] {
                    assert_eq!(
                        index.nearest(&rows, &labels, &query, k, Among::All),
                        brute_force(&rows, &labels, &query, k, Among::All),
                        "{dense} dense, query {query:?}, k {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn wide_rows_scanned_by_products_find_the_same() {
        // 20 continuous columns (beyond the trees' 16) and duplicate rows.
        let mut rng = SmallRng::seed_from_u64(4);
        let mut data: Vec<f64> = (0..2_300 * 20)
            .map(|_| rng.random_range(-3.0..3.0))
            .collect();
        data.extend_from_within(0..300 * 20);
        let rows = Matrix {
            rows: 2_600,
            cols: 20,
            data,
        };
        let labels: Vec<u8> = (0..2_600).map(|_| rng.random_range(0..2u8)).collect();
        let index = SearchIndex::build(&rows, &labels);
        assert!(!index.prunes());
        let norms: Vec<f64> = (0..rows.rows)
            .map(|j| rows.row(j).iter().map(|v| v * v).sum())
            .collect();
        // Kept rows (each with a duplicate) and new rows, over several
        // blocks of kept rows (products of 2,048).
        let mut queries = rows.take_rows(&(0..40).collect::<Vec<_>>());
        queries
            .data
            .extend((0..40 * 20).map(|_| rng.random_range(-3.0..3.0)));
        queries.rows += 40;
        for k in [1, 25] {
            let found = nearest_by_products(&rows, &labels, &norms, &queries, 10..80, k);
            for (i, found) in (10..80).zip(found) {
                let want = brute_force(&rows, &labels, queries.row(i), k, Among::All);
                assert_eq!(found, want, "query {i}, k {k}");
            }
        }
    }

    #[test]
    fn continuous_columns_only_form_one_pattern() {
        let (rows, labels) = crate::testdata::logistic(2_000, 3);
        let index = SearchIndex::build(&rows, &labels);
        assert!(index.pattern_columns.is_empty());
        assert_eq!(index.groups.len(), 2);
        assert!(index.nodes.len() > 30);
        for q in 0..50 {
            let query = [q as f64 * 0.08 - 2.0, 0.3, -0.1];
            assert_eq!(
                index.nearest(&rows, &labels, &query, 25, Among::All),
                brute_force(&rows, &labels, &query, 25, Among::All)
            );
        }
    }
}
