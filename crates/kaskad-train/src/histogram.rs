//! The binned training data the histogram-based trees (the boosted trees
//! and the CART tree) share: every feature cut once into at most
//! [`MAX_BINS`] value bins plus a NaN bin (one byte per cell), exclusive
//! features bundled into shared histogram groups as LightGBM's EFB does
//! (narrow groups then packed as products into one byte per row),
//! and the per-node histograms of sums ([`Stat`]) that split search reads.

use kaskad_prepare::Matrix;

/// Value bins per feature. NaN takes one more, so every bin index fits a `u8`.
pub(crate) const MAX_BINS: usize = 255;
/// Nodes with fewer rows build their histogram on one thread.
const PARALLEL_ROWS: usize = 20_000;
/// Columns binning copies out of the row-major matrix per pass over it:
/// one cache line of `f64`s.
const COLUMNS_PER_PASS: usize = 8;

/// The fitting rows cut into bins: per feature, value bins `0..=edges.len()`
/// and the NaN bin `edges.len() + 1`.
///
/// Histograms are built over *groups* of features, as LightGBM's exclusive
/// feature bundling does: features that are never away from their most
/// frequent bin in the same row (the levels of a one-hot column, missing
/// flags) share one group, so a histogram pass reads one byte per group
/// instead of one per feature. A feature's histogram is read back from its
/// group's with [`Binned::feature_hist`].
///
/// Groups narrow enough are then *packed* in products: a pack's bin is
/// `Σ bin_i · stride_i` over its groups (one byte still, at most 256
/// combinations), so e.g. three yes/no flags that are never exclusive cost
/// one byte per row instead of three; a feature's histogram is then the
/// marginal over its group's digit.
pub(crate) struct Binned {
    pub(crate) rows: usize,
    /// `edges[f][j]`: the largest value of bin `j`'s range (`x <= edge`).
    pub(crate) edges: Vec<Vec<f64>>,
    /// Column-major, `rows` per feature: partitioning reads one feature.
    pub(crate) bins: Vec<u8>,
    /// Where each feature's bins sit in a histogram.
    pub(crate) slots: Vec<Slot>,
    /// Where each pack's bins start in a histogram.
    pub(crate) group_offsets: Vec<usize>,
    /// Histogram length: every pack's bins.
    pub(crate) bins_total: usize,
    /// Row-major, one byte per pack: the bin of the row in each pack's
    /// part of the histogram. Histogram passes read a row's packs at once.
    pub(crate) group_bins: Vec<u8>,
}

/// A feature's place in the histogram: bin `b` is at `start + b` (or, when
/// its group shares a pack, at digit `start + b` of the pack), except that
/// a bundled feature's `default` bin is not counted there (its rows are the
/// leaf's rows minus those in the feature's other bins).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slot {
    start: usize,
    default: Option<usize>,
    packed: Option<Digit>,
}

/// Where a group sits in a pack of several: pack bin `p` holds the group's
/// bin `(p / stride) % width`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Digit {
    pack_start: usize,
    pack_width: usize,
    stride: usize,
    width: usize,
}

impl Binned {
    pub(crate) fn new(x: &Matrix, rows: usize) -> Self {
        Self::with_bundling(x, rows, true)
    }

    pub(crate) fn with_bundling(x: &Matrix, rows: usize, bundle: bool) -> Self {
        let mut bins = vec![0u8; rows * x.cols];
        // Two threads bin a half of the passes each (see `bin_columns`).
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let middle = if threads > 1 && rows >= PARALLEL_ROWS {
            x.cols.div_ceil(COLUMNS_PER_PASS) / 2 * COLUMNS_PER_PASS
        } else {
            0
        };
        let (low, high) = bins.split_at_mut(middle * rows);
        let (mut cut, high_cut) = std::thread::scope(|scope| {
            let high = scope.spawn(|| bin_columns(x, rows, middle..x.cols, high));
            let low = bin_columns(x, rows, 0..middle, low);
            let high = high
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (low, high)
        });
        cut.extend(high_cut);
        let (edges, defaults): (Vec<Vec<f64>>, Vec<(usize, usize)>) = cut.into_iter().unzip();
        let widths: Vec<usize> = edges.iter().map(|e| e.len() + 2).collect();
        let groups = if bundle {
            bundles(&bins, rows, &widths, &defaults)
        } else {
            (0..x.cols).map(|f| vec![f]).collect()
        };
        // Per group: its width, and per feature where its bins start in
        // the group, its default bin when bundled, and the group bin of
        // each of its bins.
        let mut group_widths = Vec::with_capacity(groups.len());
        let mut group_bin_of: Vec<Vec<(usize, Vec<u8>)>> = Vec::with_capacity(groups.len());
        let mut places = vec![(0, None); x.cols];
        for group in &groups {
            let mut maps = Vec::with_capacity(group.len());
            if let [f] = group[..] {
                maps.push((f, (0..widths[f]).map(|b| b as u8).collect()));
                group_widths.push(widths[f]);
            } else {
                // Group bin 0: every feature of the group at its default.
                let mut next = 1;
                for &f in group {
                    let default = defaults[f].0;
                    places[f] = (next, Some(default));
                    let map = (0..widths[f])
                        .map(|b| if b == default { 0 } else { (next + b) as u8 })
                        .collect();
                    maps.push((f, map));
                    next += widths[f];
                }
                group_widths.push(next);
            }
            group_bin_of.push(maps);
        }
        let packs = if bundle {
            packs(&group_widths)
        } else {
            (0..groups.len()).map(|g| vec![g]).collect()
        };
        let mut slots = vec![
            Slot {
                start: 0,
                default: None,
                packed: None,
            };
            x.cols
        ];
        let mut group_offsets = Vec::with_capacity(packs.len());
        let mut bins_total = 0;
        let mut group_bins = vec![0u8; rows * packs.len()];
        for (p, pack) in packs.iter().enumerate() {
            let pack_width: usize = pack.iter().map(|&g| group_widths[g]).product();
            group_offsets.push(bins_total);
            let mut stride = 1;
            for &g in pack {
                for (f, map) in &group_bin_of[g] {
                    let (start, default) = places[*f];
                    slots[*f] = if pack.len() == 1 {
                        Slot {
                            start: bins_total + start,
                            default,
                            packed: None,
                        }
                    } else {
                        Slot {
                            start,
                            default,
                            packed: Some(Digit {
                                pack_start: bins_total,
                                pack_width,
                                stride,
                                width: group_widths[g],
                            }),
                        }
                    };
                    // Within a group at most one feature is away from group
                    // bin 0 in a row, so adding the digits sets each once.
                    let column = &bins[f * rows..(f + 1) * rows];
                    for (r, &b) in column.iter().enumerate() {
                        group_bins[r * packs.len() + p] += map[usize::from(b)] * stride as u8;
                    }
                }
                stride *= group_widths[g];
            }
            bins_total += pack_width;
        }
        Self {
            rows,
            edges,
            bins,
            slots,
            group_offsets,
            bins_total,
            group_bins,
        }
    }

    pub(crate) fn column(&self, f: usize) -> &[u8] {
        &self.bins[f * self.rows..(f + 1) * self.rows]
    }

    /// Feature `f`'s histogram (value bins, then the NaN bin) of a leaf
    /// whose rows sum to `sum`, from the leaf's group histogram.
    pub(crate) fn feature_hist(&self, f: usize, hist: &[Stat], sum: Stat, out: &mut Vec<Stat>) {
        let slot = self.slots[f];
        let width = self.edges[f].len() + 2;
        out.clear();
        match slot.packed {
            None => out.extend_from_slice(&hist[slot.start..slot.start + width]),
            Some(digit) => {
                out.resize(width, Stat::default());
                let pack = &hist[digit.pack_start..digit.pack_start + digit.pack_width];
                // Runs of `stride` pack bins share a digit; the digits
                // cycle every `stride · width` bins.
                for cycle in pack.chunks(digit.stride * digit.width) {
                    let runs = cycle.chunks(digit.stride).skip(slot.start).take(width);
                    for (bin, run) in out.iter_mut().zip(runs) {
                        for stat in run {
                            bin.add(*stat);
                        }
                    }
                }
            }
        }
        if let Some(default) = slot.default {
            out[default] = Stat::default();
            let counted = out.iter().fold(Stat::default(), |mut s, b| {
                s.add(*b);
                s
            });
            out[default] = sum.minus(counted);
        }
    }

    /// Fills `hist` (zeroed first) with the sums of `rows`, whose gradients
    /// and hessians are `grad[k]`, `hess[k]` for `rows[k]`; `spare` is a
    /// zeroed histogram as long, used and left zeroed. With `threads > 1`
    /// a large enough node is built on two.
    pub(crate) fn build_hist(
        &self,
        rows: &[u32],
        grad: &[f64],
        hess: &[f64],
        hist: &mut [Stat],
        spare: &mut [Stat],
        threads: usize,
    ) {
        hist.fill(Stat::default());
        let groups = self.group_offsets.len();
        let node = NodeRows {
            rows,
            grad,
            hess,
            group_bins: &self.group_bins,
            groups,
        };
        if threads > 1 && rows.len() >= PARALLEL_ROWS && groups > 1 {
            // Groups split in two halves, one per thread: each half owns a
            // disjoint slice of the histogram, so no merging is needed. Large
            // nodes only, where a histogram pass outweighs a thread spawn.
            let middle = groups / 2;
            let base = self.group_offsets[middle];
            let (low, high) = hist.split_at_mut(base);
            let (spare_low, spare_high) = spare.split_at_mut(base);
            let (offsets_low, offsets_high) = self.group_offsets.split_at(middle);
            std::thread::scope(|scope| {
                scope.spawn(|| node.fill(0, offsets_low, 0, low, spare_low));
                node.fill(middle, offsets_high, base, high, spare_high);
            });
        } else {
            node.fill(0, &self.group_offsets, 0, hist, spare);
        }
    }

    /// Reorders `rows` with those going left of a split on `feature` first
    /// (values up to bin `bin` go left; missing values go left when
    /// `missing_left`). Stable, so a node's rows stay ascending and column
    /// reads stay forward. Returns how many go left.
    pub(crate) fn partition(
        &self,
        rows: &mut [u32],
        scratch: &mut Vec<u32>,
        feature: usize,
        bin: usize,
        missing_left: bool,
    ) -> usize {
        let column = self.column(feature);
        let nan_bin = self.edges[feature].len() + 1;
        let mut goes_left = [false; 256];
        for (b, left) in goes_left.iter_mut().enumerate() {
            *left = if b == nan_bin { missing_left } else { b <= bin };
        }
        // Every row is written to both sides and only one side's cursor
        // moves: no branch on the direction, which is a coin flip to the
        // predictor. The left cursor never passes the row being read.
        scratch.clear();
        scratch.resize(rows.len(), 0);
        let (mut left, mut right) = (0, 0);
        for k in 0..rows.len() {
            let r = rows[k];
            let is_left = goes_left[usize::from(column[r as usize])];
            rows[left] = r;
            scratch[right] = r;
            left += usize::from(is_left);
            right += usize::from(!is_left);
        }
        rows[left..].copy_from_slice(&scratch[..right]);
        left
    }
}

/// What a histogram pass over a node reads: its rows, their gradients and
/// hessians in the same order, and every row's group bins.
struct NodeRows<'a> {
    rows: &'a [u32],
    grad: &'a [f64],
    hess: &'a [f64],
    group_bins: &'a [u8],
    groups: usize,
}

impl NodeRows<'_> {
    /// Fills the histograms of the groups from `first` on whose offsets are
    /// `offsets` into `out`, which starts at bin `base` of the whole
    /// histogram, using `spare` (as long, zeroed) for every second row.
    /// Row by row: the groups of a row update distinct bins, so its
    /// additions do not wait on each other; and two copies halve the chains
    /// of additions to the same bin (the most frequent bin of a group) that
    /// consecutive rows make. A function of its own, not a closure, so that
    /// the compiler knows `out` and `spare` alias nothing it reads and keeps
    /// a row's sums in registers (a quarter less CPU per fit).
    fn fill(
        &self,
        first: usize,
        offsets: &[usize],
        base: usize,
        out: &mut [Stat],
        spare: &mut [Stat],
    ) {
        let row_bins = |k: usize| {
            let at = self.rows[k] as usize * self.groups + first;
            &self.group_bins[at..at + offsets.len()]
        };
        let pairs = self.rows.len() / 2;
        for k in (0..pairs).map(|p| 2 * p) {
            let (g_a, h_a, g_b, h_b) = (
                self.grad[k],
                self.hess[k],
                self.grad[k + 1],
                self.hess[k + 1],
            );
            for ((&offset, &a), &b) in offsets.iter().zip(row_bins(k)).zip(row_bins(k + 1)) {
                out[offset - base + usize::from(a)].add_row(g_a, h_a);
                spare[offset - base + usize::from(b)].add_row(g_b, h_b);
            }
        }
        if self.rows.len() % 2 == 1 {
            let k = self.rows.len() - 1;
            let (g, h) = (self.grad[k], self.hess[k]);
            for (&offset, &a) in offsets.iter().zip(row_bins(k)) {
                out[offset - base + usize::from(a)].add_row(g, h);
            }
        }
        for (o, s) in out.iter_mut().zip(spare.iter_mut()) {
            o.add(*s);
            *s = Stat::default();
        }
    }
}

/// Cuts `features` of the first `rows` rows into bins, written column by
/// column into `out`; returns each feature's upper bin edges with its most
/// frequent bin and how many rows are elsewhere.
fn bin_columns(
    x: &Matrix,
    rows: usize,
    features: std::ops::Range<usize>,
    out: &mut [u8],
) -> Vec<(Vec<f64>, (usize, usize))> {
    let (first, features) = (features.start, features.len());
    let mut block: Vec<Vec<f64>> = (0..COLUMNS_PER_PASS.min(features))
        .map(|_| Vec::with_capacity(rows))
        .collect();
    let mut binned = Vec::with_capacity(features);
    for k in 0..features {
        let column_bins = &mut out[k * rows..(k + 1) * rows];
        // Columns are copied out of the row-major matrix a few at a time,
        // in one pass: a pass per column would read every cache line of
        // the matrix once per column.
        let in_block = k % COLUMNS_PER_PASS;
        if in_block == 0 {
            let f = first + k;
            let width = block.len().min(features - k);
            block.iter_mut().for_each(Vec::clear);
            for row in x.data.chunks_exact(x.cols).take(rows) {
                for (column, &v) in block.iter_mut().zip(&row[f..f + width]) {
                    column.push(v);
                }
            }
        }
        let column = &block[in_block];
        let cut = quantile_edges(column);
        let nan_bin = (cut.len() + 1) as u8;
        let mut counts = vec![0usize; cut.len() + 2];
        for (b, &v) in column_bins.iter_mut().zip(column) {
            let bin = if v.is_nan() {
                nan_bin
            } else {
                cut.partition_point(|&e| e < v) as u8
            };
            counts[usize::from(bin)] += 1;
            *b = bin;
        }
        let default = (0..counts.len()).max_by_key(|&b| (counts[b], usize::MAX - b));
        let elsewhere = rows - default.map_or(0, |b| counts[b]);
        binned.push((cut, (default.unwrap_or(0), elsewhere)));
    }
    binned
}

/// Groups of features that can share a histogram: greedily, most
/// non-default rows first, each sparse feature joins the first group where
/// no row is away from its default bin in both, and whose bins still fit a
/// byte. Features away from their default in most rows stay alone.
fn bundles(
    bins: &[u8],
    rows: usize,
    widths: &[usize],
    defaults: &[(usize, usize)],
) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut sparse: Vec<usize> = (0..widths.len())
        .filter(|&f| defaults[f].1 * 2 <= rows)
        .collect();
    sparse.sort_by_key(|&f| (usize::MAX - defaults[f].1, f));
    // Per bundle: its width so far and which rows are taken.
    let mut bundled: Vec<(usize, Vec<bool>, Vec<usize>)> = Vec::new();
    for f in (0..widths.len()).filter(|f| !sparse.contains(f)) {
        groups.push(vec![f]);
    }
    for f in sparse {
        let (default, _) = defaults[f];
        let column = &bins[f * rows..(f + 1) * rows];
        let fits = |(width, taken, _): &&mut (usize, Vec<bool>, Vec<usize>)| {
            *width + widths[f] <= 256
                && column
                    .iter()
                    .zip(taken.iter())
                    .all(|(&b, &t)| !t || usize::from(b) == default)
        };
        let at = match bundled.iter_mut().find(fits) {
            Some(found) => found,
            None => {
                bundled.push((1, vec![false; rows], Vec::new()));
                bundled.last_mut().expect("just pushed")
            }
        };
        at.0 += widths[f];
        for (t, &b) in at.1.iter_mut().zip(column) {
            *t |= usize::from(b) != default;
        }
        at.2.push(f);
    }
    groups.extend(bundled.into_iter().map(|(_, _, features)| features));
    groups
}

/// Groups (by index, given their widths) packed in products of at most 256
/// bins: first fit, widest first, of the groups at most 128 wide; wider
/// groups stay alone. Packs keep the order of their first group.
fn packs(widths: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..widths.len()).collect();
    order.sort_by_key(|&g| (usize::MAX - widths[g], g));
    let mut packs: Vec<(usize, Vec<usize>)> = Vec::new();
    for g in order {
        let room = packs
            .iter_mut()
            .find(|(product, _)| *product * widths[g] <= 256);
        match room {
            Some((product, members)) => {
                *product *= widths[g];
                members.push(g);
            }
            None => packs.push((widths[g], vec![g])),
        }
    }
    let mut packs: Vec<Vec<usize>> = packs.into_iter().map(|(_, members)| members).collect();
    packs.sort_by_key(|members| members[0]);
    packs
}

/// Upper edges of at most [`MAX_BINS`] bins over the non-missing values:
/// one bin per distinct value when they are few, otherwise bins of about
/// equal row counts that never split a value. Edges lie halfway between
/// neighbouring values, as LightGBM's do.
pub(crate) fn quantile_edges(column: &[f64]) -> Vec<f64> {
    if let Some(distinct) = few_distinct(column) {
        return distinct
            .windows(2)
            .map(|pair| midpoint(pair[0], pair[1]))
            .collect();
    }
    let sorted = sorted_numbers(column);
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for v in sorted.iter().copied() {
        match distinct.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => distinct.push((v, 1)),
        }
    }
    let mut edges = Vec::new();
    let mut seen = 0;
    for pair in distinct.windows(2) {
        let ((lower, n), (upper, _)) = (pair[0], pair[1]);
        seen += n;
        let bins_so_far = edges.len() + 1;
        if distinct.len() <= MAX_BINS || seen * MAX_BINS >= bins_so_far * sorted.len() {
            edges.push(midpoint(lower, upper));
            if edges.len() == MAX_BINS - 1 {
                break;
            }
        }
    }
    edges
}

/// The non-missing values of `column` in ascending order (`f64::total_cmp`'s).
///
/// A least-significant-digit radix sort over the values' order-preserving
/// 64-bit keys, 11 bits a pass, skipping the passes where every key has the
/// same digit (the exponent's top bits, mostly): binning sorts every column
/// with many distinct values, and this takes about a third of the time of
/// `sort_unstable_by(f64::total_cmp)` on 160k noisy amounts. Equal keys
/// are equal bits, so the result is the same as that sort's.
fn sorted_numbers(column: &[f64]) -> Vec<f64> {
    const DIGIT: u32 = 11;
    const BUCKETS: usize = 1 << DIGIT;
    // `f64::total_cmp`'s key, with the sign bit flipped to order as unsigned.
    let key = |v: f64| {
        let bits = v.to_bits();
        bits ^ (((bits as i64 >> 63) as u64) >> 1) ^ (1 << 63)
    };
    let value = |k: u64| {
        let bits = k ^ (1 << 63);
        f64::from_bits(bits ^ (((bits as i64 >> 63) as u64) >> 1))
    };
    let mut keys: Vec<u64> = column
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| key(v))
        .collect();
    let mut spare = vec![0u64; keys.len()];
    let mut counts = vec![0usize; BUCKETS];
    for shift in (0..64).step_by(DIGIT as usize) {
        let digit = |k: u64| ((k >> shift) as usize) & (BUCKETS - 1);
        counts.fill(0);
        for &k in &keys {
            counts[digit(k)] += 1;
        }
        if counts.contains(&keys.len()) {
            continue;
        }
        let mut start = 0;
        for n in counts.iter_mut() {
            let here = *n;
            *n = start;
            start += here;
        }
        for &k in &keys {
            let d = digit(k);
            spare[counts[d]] = k;
            counts[d] += 1;
        }
        std::mem::swap(&mut keys, &mut spare);
    }
    keys.into_iter().map(value).collect()
}

/// The sorted distinct non-missing values of `column` when there are at
/// most [`MAX_BINS`] (one-hot levels, flags, small counts), found without
/// sorting the column.
fn few_distinct(column: &[f64]) -> Option<Vec<f64>> {
    let mut distinct: Vec<f64> = Vec::new();
    let mut last = f64::NAN;
    for &v in column {
        // Runs of one value are common (sparse flags, rows in time order).
        if v == last || v.is_nan() {
            continue;
        }
        last = v;
        if let Err(at) = distinct.binary_search_by(|d| d.total_cmp(&v)) {
            // -0.0 and 0.0 are one value, as `==` says.
            if distinct.get(at).is_some_and(|&d| d == v) || (at > 0 && distinct[at - 1] == v) {
                continue;
            }
            if distinct.len() == MAX_BINS {
                return None;
            }
            distinct.insert(at, v);
        }
    }
    Some(distinct)
}

/// A value strictly between `lower` and `upper` when one exists, `lower`
/// otherwise, and finite so it survives JSON.
fn midpoint(lower: f64, upper: f64) -> f64 {
    let mid = lower / 2.0 + upper / 2.0;
    let mid = if mid >= upper { lower } else { mid };
    mid.clamp(f64::MIN, f64::MAX)
}

/// One histogram bin: the gradient and hessian sums of its rows (for the
/// CART tree: the labels and the weights), and their count.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stat {
    pub(crate) g: f64,
    pub(crate) h: f64,
    pub(crate) n: u32,
}

impl Stat {
    pub(crate) fn add(&mut self, other: Stat) {
        self.g += other.g;
        self.h += other.h;
        self.n += other.n;
    }

    pub(crate) fn add_row(&mut self, g: f64, h: f64) {
        self.g += g;
        self.h += h;
        self.n += 1;
    }

    pub(crate) fn minus(self, other: Stat) -> Stat {
        Stat {
            g: self.g - other.g,
            h: self.h - other.h,
            n: self.n - other.n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn narrow_groups_are_packed_in_products_of_at_most_256_bins() {
        let widths = [256, 3, 13, 3, 10, 3, 3, 200, 2, 129];
        let packs = packs(&widths);
        let mut seen: Vec<usize> = packs.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..widths.len()).collect::<Vec<_>>());
        for pack in &packs {
            assert!(pack.iter().map(|&g| widths[g]).product::<usize>() <= 256);
        }
        // 13·10·… and 3·3·3·3·2: the eight narrow groups take two bytes.
        assert_eq!(packs.len(), 5, "{packs:?}");
        assert!(packs.contains(&vec![0]) && packs.contains(&vec![7]) && packs.contains(&vec![9]));
    }

    #[test]
    fn packed_features_have_the_histograms_of_separate_ones() {
        // Flags that overlap (no exclusive bundle takes two of them), a
        // one-hot column, and a number with missing values.
        let mut rng = SmallRng::seed_from_u64(31);
        let (rows, cols) = (2_000, 8);
        let mut data = Vec::with_capacity(rows * cols);
        for _ in 0..rows {
            let flags: [bool; 4] = std::array::from_fn(|_| rng.random::<f64>() < 0.5);
            data.extend(flags.map(|f| f64::from(u8::from(f))));
            let level = rng.random_range(0..3usize);
            data.extend((0..3).map(|l| f64::from(u8::from(l == level))));
            let missing = rng.random::<f64>() < 0.2;
            data.push(if missing { f64::NAN } else { rng.random() });
        }
        let x = Matrix { rows, cols, data };
        let packed = Binned::new(&x, rows);
        let separate = Binned::with_bundling(&x, rows, false);
        assert!(packed.slots.iter().filter(|s| s.packed.is_some()).count() >= 4);
        assert!(packed.group_offsets.len() < 4, "{:?}", packed.slots);
        assert_eq!(separate.group_offsets.len(), cols);
        let grad: Vec<f64> = (0..rows).map(|_| rng.random_range(-1.0..1.0)).collect();
        let hess: Vec<f64> = (0..rows).map(|_| rng.random_range(0.0..0.25)).collect();
        // Every third row, so rows are a subset as in a child node.
        let node: Vec<u32> = (0..rows as u32).step_by(3).collect();
        let grad: Vec<f64> = node.iter().map(|&r| grad[r as usize]).collect();
        let hess: Vec<f64> = node.iter().map(|&r| hess[r as usize]).collect();
        let sum = grad
            .iter()
            .zip(&hess)
            .fold(Stat::default(), |mut s, (&g, &h)| {
                s.add_row(g, h);
                s
            });
        let hist = |binned: &Binned| {
            let mut hist = vec![Stat::default(); binned.bins_total];
            let mut spare = hist.clone();
            binned.build_hist(&node, &grad, &hess, &mut hist, &mut spare, 1);
            hist
        };
        let (a, b) = (hist(&packed), hist(&separate));
        let (mut p, mut q) = (Vec::new(), Vec::new());
        for f in 0..cols {
            packed.feature_hist(f, &a, sum, &mut p);
            separate.feature_hist(f, &b, sum, &mut q);
            assert_eq!(p.len(), q.len());
            for (p, q) in p.iter().zip(&q) {
                assert_eq!(p.n, q.n, "feature {f}");
                assert!((p.g - q.g).abs() < 1e-9 && (p.h - q.h).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn many_values_are_cut_into_at_most_255_bins() {
        let column: Vec<f64> = (0..10_000).map(|i| f64::from(i % 1_000)).collect();
        let edges = quantile_edges(&column);
        assert!(
            edges.len() < MAX_BINS && edges.len() > 200,
            "{}",
            edges.len()
        );
        assert!(edges.windows(2).all(|w| w[0] < w[1]));
        let few = quantile_edges(&[3.0, 1.0, f64::NAN, 2.0, 1.0]);
        assert_eq!(few, vec![1.5, 2.5]);
    }

    #[test]
    fn every_column_is_binned_by_its_own_edges() {
        // Enough rows for two threads to bin half of the columns each, and
        // columns of every kind: flags, counts, NaN, many distinct values.
        let (rows, cols) = (PARALLEL_ROWS + 3, 19);
        let data: Vec<f64> = (0..rows * cols)
            .map(|i| {
                let (r, f) = (i / cols, i % cols);
                match f % 4 {
                    0 => f64::from(u8::from(r % (f + 2) == 0)),
                    1 => (r * 7919 % 1_000) as f64 / 10.0,
                    2 if r % 5 == 0 => f64::NAN,
                    _ => ((r * f) % 37) as f64,
                }
            })
            .collect();
        let x = Matrix { rows, cols, data };
        let binned = Binned::new(&x, rows);
        assert_eq!(binned.edges.len(), cols);
        for f in 0..cols {
            let column: Vec<f64> = (0..rows).map(|r| x.data[r * cols + f]).collect();
            let edges = quantile_edges(&column);
            assert_eq!(binned.edges[f], edges, "feature {f}");
            for (r, &v) in column.iter().enumerate() {
                let want = if v.is_nan() {
                    edges.len() + 1
                } else {
                    edges.partition_point(|&e| e < v)
                };
                assert_eq!(
                    usize::from(binned.column(f)[r]),
                    want,
                    "feature {f} row {r}"
                );
            }
        }
    }

    #[test]
    fn numbers_sort_as_total_cmp_sorts_them() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut column: Vec<f64> = (0..50_000)
            .map(|i| match i % 7 {
                0 => f64::from_bits(next()),
                1 => -((next() % 1_000) as f64) / 8.0,
                2 => (next() % 1_000) as f64 * 1e-300,
                3 => [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN][i % 5],
                _ => (next() >> 11) as f64 / (1u64 << 40) as f64,
            })
            .collect();
        let got = sorted_numbers(&column);
        column.retain(|v| !v.is_nan());
        column.sort_unstable_by(f64::total_cmp);
        assert_eq!(got.len(), column.len());
        for (a, b) in got.iter().zip(&column) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert!(sorted_numbers(&[]).is_empty());
        assert_eq!(sorted_numbers(&[2.0, f64::NAN, 1.0]), vec![1.0, 2.0]);
    }

    #[test]
    fn few_distinct_values_get_an_edge_between_each_pair() {
        // Unsorted, with runs, NaN and both zeros: found without sorting,
        // the edges are those of the sorted distinct values.
        let column = [2.0, 2.0, -0.0, f64::NAN, 7.0, 0.0, -1.0, 2.0, f64::NAN];
        assert_eq!(quantile_edges(&column), vec![-0.5, 1.0, 4.5]);
        // 255 distinct values still get one bin each; 256 are cut by quantiles.
        let spread = |n: usize| -> Vec<f64> { (0..n).rev().map(|i| i as f64 * 0.5).collect() };
        let each = quantile_edges(&spread(255));
        assert_eq!(each.len(), 254);
        assert!(
            each.iter()
                .enumerate()
                .all(|(i, &e)| e == i as f64 * 0.5 + 0.25)
        );
        // Counted: with most rows at one value, 255 distinct values keep
        // every boundary, 256 only those between quantiles.
        let mut heavy = spread(254);
        heavy.extend([1_000.0; 10_000]);
        assert_eq!(quantile_edges(&heavy).len(), 254);
        heavy.push(-1.0);
        let cut = quantile_edges(&heavy);
        assert!(cut.len() < 10, "{}", cut.len());
    }
}
