//! Batch kernels for dense layers, in single precision and in INT8.
//!
//! Activations are kept feature-major (`[feature][row]`, rows padded to
//! [`TILE_ROWS`]), so one output's weights are scalars broadcast against a
//! vector of rows: no transposition of weights, and a tile of outputs ×
//! rows stays in registers over the whole input loop. Every element sums
//! its products in input order, so the vectorized and the plain build of a
//! kernel give the same bits, and INT8 sums are exact integers.
//!
//! The same code runs under [`pulp`]'s AVX2/FMA token when the CPU has it
//! (the workspace forbids `unsafe`, and pulp's dispatch is a safe API), and
//! as built for the baseline target otherwise. INT8 products use
//! `vpmaddwd` (i16 × i16 pairs summed into i32) explicitly.

use pulp::NullaryFnOnce;

/// Rows per tile: two vectors of eight lanes.
pub const TILE_ROWS: usize = 16;
/// Outputs per tile: with 16 rows, 8 accumulator registers.
const TILE_OUTPUTS: usize = 4;
/// The largest magnitude of a quantized value (symmetric: −127..=127).
pub const INT8_MAX: f32 = 127.0;

/// Activations of a batch, feature-major: `data[feature * stride + row]`,
/// followed by one feature of zeros.
#[derive(Debug, Clone, Default)]
pub struct FeatureMajor {
    pub rows: usize,
    /// Rows rounded up to a multiple of [`TILE_ROWS`], plus one more tile
    /// when that is a multiple of 64 rows: features a power-of-two number
    /// of bytes apart would all fall in one set of the L1 cache. Padding
    /// rows are zero.
    pub stride: usize,
    pub features: usize,
    pub data: Vec<f32>,
}

impl FeatureMajor {
    fn reset(&mut self, rows: usize, features: usize) {
        self.rows = rows;
        let padded = rows.div_ceil(TILE_ROWS) * TILE_ROWS;
        self.stride = if padded.is_multiple_of(64) {
            padded + TILE_ROWS
        } else {
            padded
        };
        self.features = features;
        self.data.clear();
        // One feature more, left zero: the partner of an odd last feature
        // when features are quantized in pairs.
        self.data.resize(self.stride * (features + 1), 0.0);
    }

    /// Row-major `f32` values, `cols` per row.
    pub fn from_f32_rows(data: &[f32], cols: usize) -> Self {
        let mut out = Self::default();
        out.fill(data.len() / cols.max(1), cols, |i| data[i]);
        out
    }

    /// Transposes `rows × cols` row-major values in, a tile of rows at a
    /// time so that reads and writes both stay within a few pages.
    pub fn fill(&mut self, rows: usize, cols: usize, value: impl Fn(usize) -> f32) {
        self.reset(rows, cols);
        for r0 in (0..rows).step_by(TILE_ROWS) {
            let r1 = (r0 + TILE_ROWS).min(rows);
            for c in 0..cols {
                let column = &mut self.data[c * self.stride + r0..c * self.stride + r1];
                for (r, v) in (r0..r1).zip(column) {
                    *v = value(r * cols + c);
                }
            }
        }
    }

    /// The first feature of every real row (the output of a one-unit layer).
    pub fn first_feature(&self) -> &[f32] {
        &self.data[..self.rows]
    }
}

/// Runs `kernel` with AVX2 and FMA enabled when the CPU has them.
pub(crate) fn dispatch<K: NullaryFnOnce>(kernel: K) -> K::Output {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return simd.vectorize(kernel);
    }
    kernel.call()
}

/// `out[o][r] = bias[o] + Σ_i weights[o][i] · input[i][r]`, then ReLU when
/// `relu`; `weights` is `outputs × inputs`, row-major.
pub fn dense_f32(
    input: &FeatureMajor,
    weights: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut FeatureMajor,
) {
    out.reset(input.rows, bias.len());
    let inputs = input.features;
    let stride = input.stride;
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    let simd = pulp::x86::V3::try_new();
    let mut o0 = 0;
    while o0 < bias.len() {
        let block = if o0 + TILE_OUTPUTS <= bias.len() {
            TILE_OUTPUTS
        } else {
            1
        };
        let tile = F32Block {
            input: &input.data,
            stride,
            inputs,
            weights: &weights[o0 * inputs..(o0 + block) * inputs],
            bias: &bias[o0..o0 + block],
            relu,
            out: &mut out.data[o0 * stride..(o0 + block) * stride],
        };
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Some(simd) = simd {
            match block {
                TILE_OUTPUTS => simd.vectorize(F32BlockV3::<TILE_OUTPUTS> { simd, tile }),
                _ => simd.vectorize(F32BlockV3::<1> { simd, tile }),
            }
            o0 += block;
            continue;
        }
        match block {
            TILE_OUTPUTS => tile.scalar::<TILE_OUTPUTS>(),
            _ => tile.scalar::<1>(),
        }
        o0 += block;
    }
}

/// A block of outputs of a single-precision layer, over every row tile.
struct F32Block<'a> {
    input: &'a [f32],
    stride: usize,
    inputs: usize,
    /// `OUTPUTS × inputs`.
    weights: &'a [f32],
    bias: &'a [f32],
    relu: bool,
    /// `OUTPUTS × stride`.
    out: &'a mut [f32],
}

impl F32Block<'_> {
    /// The plain build, for CPUs without AVX2; the same sums in the same order.
    fn scalar<const OUTPUTS: usize>(self) {
        let inputs = self.inputs;
        let stride = self.stride;
        for r0 in (0..stride).step_by(TILE_ROWS) {
            let mut acc = [[0.0f32; TILE_ROWS]; OUTPUTS];
            for (lane, &b) in acc.iter_mut().zip(self.bias) {
                *lane = [b; TILE_ROWS];
            }
            for i in 0..inputs {
                let x = &self.input[i * stride + r0..][..TILE_ROWS];
                for (o, lane) in acc.iter_mut().enumerate() {
                    let w = self.weights[o * inputs + i];
                    for (a, &v) in lane.iter_mut().zip(x) {
                        *a += w * v;
                    }
                }
            }
            for (o, lane) in acc.iter().enumerate() {
                let target = &mut self.out[o * stride + r0..][..TILE_ROWS];
                for (t, &a) in target.iter_mut().zip(lane) {
                    *t = if self.relu { a.max(0.0) } else { a };
                }
            }
        }
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
struct F32BlockV3<'a, const OUTPUTS: usize> {
    simd: pulp::x86::V3,
    tile: F32Block<'a>,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl<const OUTPUTS: usize> NullaryFnOnce for F32BlockV3<'_, OUTPUTS> {
    type Output = ();

    /// Multiply, then add (not fused), as the plain build does.
    #[inline(always)]
    fn call(self) {
        use pulp::{cast, f32x8};
        let Self { simd, tile } = self;
        let inputs = tile.inputs;
        let stride = tile.stride;
        let rows: [&[f32]; OUTPUTS] =
            std::array::from_fn(|o| &tile.weights[o * inputs..(o + 1) * inputs]);
        let zero = simd.splat_f32x8(0.0);
        for r0 in (0..stride).step_by(TILE_ROWS) {
            let mut acc: [[f32x8; 2]; OUTPUTS] =
                std::array::from_fn(|o| [simd.splat_f32x8(tile.bias[o]); 2]);
            for i in 0..inputs {
                let x: [f32; TILE_ROWS] = tile.input[i * stride + r0..][..TILE_ROWS]
                    .try_into()
                    .expect("a tile is TILE_ROWS wide");
                let [low, high]: [f32x8; 2] = cast(x);
                for (lane, row) in acc.iter_mut().zip(&rows) {
                    let w = simd.splat_f32x8(row[i]);
                    lane[0] = simd.add_f32x8(lane[0], simd.mul_f32x8(w, low));
                    lane[1] = simd.add_f32x8(lane[1], simd.mul_f32x8(w, high));
                }
            }
            for (o, lane) in acc.iter().enumerate() {
                let lane = if tile.relu {
                    [simd.max_f32x8(lane[0], zero), simd.max_f32x8(lane[1], zero)]
                } else {
                    *lane
                };
                let values: [f32; TILE_ROWS] = cast(lane);
                tile.out[o * stride + r0..][..TILE_ROWS].copy_from_slice(&values);
            }
        }
    }
}

/// Activations of a batch quantized per row: `values[pair][row][2]` holds
/// features `2·pair` and `2·pair + 1` of a row side by side (what
/// `vpmaddwd` multiplies and adds), `scales[row]` turns them back.
#[derive(Debug, Clone, Default)]
pub struct QuantizedRows {
    pub rows: usize,
    pub stride: usize,
    pub pairs: usize,
    pub values: Vec<i16>,
    pub scales: Vec<f32>,
    /// `1 / scales[row]`, or 0 for an all-zero row.
    inverse: Vec<f32>,
}

impl QuantizedRows {
    /// Symmetric dynamic quantization of every row: `scale = max|x| / 127`,
    /// `q = round(x / scale)` (ties to even), so a row's largest value
    /// keeps full range whatever the other rows hold.
    pub fn quantize(&mut self, input: &FeatureMajor) {
        dispatch(RowScales { input, out: self });
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(PackV3 {
                simd,
                input,
                out: self,
            });
        }
        for p in 0..self.pairs {
            let (first, second) = pair_columns(input, p);
            let pair = &mut self.values[p * self.stride * 2..][..self.stride * 2];
            for (((q, &a), &b), &inv) in pair
                .chunks_exact_mut(2)
                .zip(first)
                .zip(second)
                .zip(&self.inverse)
            {
                // |x · inv| ≤ 127 by construction, so the casts never saturate.
                q[0] = (a * inv).round_ties_even() as i32 as i16;
                q[1] = (b * inv).round_ties_even() as i32 as i16;
            }
        }
    }
}

/// Features `2p` and `2p + 1` of every row (zeros past the last feature).
fn pair_columns(input: &FeatureMajor, p: usize) -> (&[f32], &[f32]) {
    let stride = input.stride;
    (
        &input.data[2 * p * stride..][..stride],
        &input.data[(2 * p + 1) * stride..][..stride],
    )
}

struct RowScales<'a> {
    input: &'a FeatureMajor,
    out: &'a mut QuantizedRows,
}

impl NullaryFnOnce for RowScales<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let Self { input, out } = self;
        let stride = input.stride;
        out.rows = input.rows;
        out.stride = stride;
        out.pairs = input.features.div_ceil(2);
        out.scales.clear();
        out.scales.resize(stride, 0.0);
        for i in 0..input.features {
            let column = &input.data[i * stride..][..stride];
            for (m, &v) in out.scales.iter_mut().zip(column) {
                *m = m.max(v.abs());
            }
        }
        out.inverse.clear();
        out.inverse.extend(out.scales.iter_mut().map(|m| {
            *m /= INT8_MAX;
            if *m > 0.0 { 1.0 / *m } else { 0.0 }
        }));
        out.values.clear();
        out.values.resize(out.pairs * stride * 2, 0);
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
struct PackV3<'a> {
    simd: pulp::x86::V3,
    input: &'a FeatureMajor,
    out: &'a mut QuantizedRows,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl NullaryFnOnce for PackV3<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        use pulp::{cast, f32x8};
        let Self { simd, input, out } = self;
        let stride = out.stride;
        // Adding and subtracting 1.5 · 2²³ rounds to the nearest integer,
        // ties to even, as `round_ties_even` (exact below 2²²).
        let magic = simd.splat_f32x8(12_582_912.0);
        let low_half = simd.splat_i32x8(0xFFFF);
        let eight = |values: &[f32], r: usize| -> f32x8 {
            cast(<[f32; 8]>::try_from(&values[r..r + 8]).expect("eight lanes"))
        };
        for p in 0..out.pairs {
            let (first, second) = pair_columns(input, p);
            let pair = &mut out.values[p * stride * 2..][..stride * 2];
            for r in (0..stride).step_by(8) {
                let inverse = eight(&out.inverse, r);
                let round = |x: f32x8| {
                    let scaled = simd.mul_f32x8(x, inverse);
                    simd.convert_f32x8_to_i32x8(
                        simd.sub_f32x8(simd.add_f32x8(scaled, magic), magic),
                    )
                };
                let (a, b) = (round(eight(first, r)), round(eight(second, r)));
                // Lane k: feature 2p in the low 16 bits, 2p + 1 in the high.
                let packed =
                    simd.or_i32x8(simd.and_i32x8(a, low_half), simd.shl_const_i32x8::<16>(b));
                let values: [i16; 16] = cast(packed);
                pair[2 * r..2 * r + 16].copy_from_slice(&values);
            }
        }
    }
}

/// Weights of one INT8 layer as the kernel reads them: for every output,
/// its weights in pairs, each pair two `i16` packed in an `i32` (what
/// `vpmaddwd` broadcasts), and one scale per output (per channel).
#[derive(Debug, Clone)]
pub struct PairedWeights {
    pub pairs: usize,
    pub packed: Vec<i32>,
}

impl PairedWeights {
    /// `weights` is `outputs × inputs` row-major.
    pub fn new(weights: &[i8], inputs: usize) -> Self {
        let pairs = inputs.div_ceil(2);
        let outputs = weights.len() / inputs.max(1);
        let mut packed = Vec::with_capacity(outputs * pairs);
        for row in weights.chunks(inputs.max(1)) {
            for p in 0..pairs {
                let low = i16::from(row[2 * p]);
                let high = row.get(2 * p + 1).map_or(0, |&w| i16::from(w));
                packed.push(i32::from(low as u16) | (i32::from(high as u16) << 16));
            }
        }
        Self { pairs, packed }
    }
}

/// `out[o][r] = bias[o] + scale[o] · row_scale[r] · Σ_i q_w[o][i] · q_x[i][r]`
/// with the sum in exact `i32`, then ReLU when `relu`.
pub fn dense_int8(
    input: &QuantizedRows,
    weights: &PairedWeights,
    scales: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut FeatureMajor,
) {
    out.reset(input.rows, bias.len());
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return simd.vectorize(DenseInt8 {
            simd,
            input,
            weights,
            scales,
            bias,
            relu,
            out,
        });
    }
    let outputs = bias.len();
    let stride = input.stride;
    for o in 0..outputs {
        let w = &weights.packed[o * weights.pairs..][..weights.pairs];
        for r in 0..stride {
            let mut sum = 0i32;
            for (p, &pair) in w.iter().enumerate() {
                let x = &input.values[(p * stride + r) * 2..][..2];
                sum += i32::from(x[0]) * i32::from(pair as i16)
                    + i32::from(x[1]) * i32::from((pair >> 16) as i16);
            }
            out.data[o * stride + r] = dequantize(sum, scales[o], input.scales[r], bias[o], relu);
        }
    }
}

#[inline(always)]
fn dequantize(sum: i32, scale: f32, row_scale: f32, bias: f32, relu: bool) -> f32 {
    let v = bias + sum as f32 * (scale * row_scale);
    if relu { v.max(0.0) } else { v }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
struct DenseInt8<'a> {
    simd: pulp::x86::V3,
    input: &'a QuantizedRows,
    weights: &'a PairedWeights,
    scales: &'a [f32],
    bias: &'a [f32],
    relu: bool,
    out: &'a mut FeatureMajor,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl NullaryFnOnce for DenseInt8<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let Self {
            simd,
            input,
            weights,
            scales,
            bias,
            relu,
            out,
        } = self;
        let stride = input.stride;
        let pairs = weights.pairs;
        let outputs = bias.len();
        let full = outputs / TILE_OUTPUTS * TILE_OUTPUTS;
        let mut o0 = 0;
        while o0 < outputs {
            let block = if o0 < full { TILE_OUTPUTS } else { 1 };
            let layer = Int8Block {
                simd,
                input,
                packed: &weights.packed[o0 * pairs..(o0 + block) * pairs],
                pairs,
                scales: &scales[o0..o0 + block],
                bias: &bias[o0..o0 + block],
                relu,
            };
            let out = &mut out.data[o0 * stride..(o0 + block) * stride];
            if block == TILE_OUTPUTS {
                layer.tile::<TILE_OUTPUTS>(out);
            } else {
                layer.tile::<1>(out);
            }
            o0 += block;
        }
    }
}

/// A block of outputs of an INT8 layer.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
struct Int8Block<'a> {
    simd: pulp::x86::V3,
    input: &'a QuantizedRows,
    packed: &'a [i32],
    pairs: usize,
    scales: &'a [f32],
    bias: &'a [f32],
    relu: bool,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl Int8Block<'_> {
    /// The block's `OUTPUTS` outputs for every row tile, into `out`
    /// (`OUTPUTS × stride`).
    #[inline(always)]
    fn tile<const OUTPUTS: usize>(&self, out: &mut [f32]) {
        use pulp::{cast, f32x8, i16x16};
        let simd = self.simd;
        let stride = self.input.stride;
        let pairs = self.pairs;
        let rows: [&[i32]; OUTPUTS] = std::array::from_fn(|o| &self.packed[o * pairs..][..pairs]);
        for r0 in (0..stride).step_by(TILE_ROWS) {
            let mut acc = [[simd.splat_i32x8(0); 2]; OUTPUTS];
            for p in 0..pairs {
                let x: &[i16; 2 * TILE_ROWS] = self.input.values[(p * stride + r0) * 2..]
                    [..2 * TILE_ROWS]
                    .try_into()
                    .expect("a tile is TILE_ROWS wide");
                let (low, high) = x.split_at(TILE_ROWS);
                let low: i16x16 = cast(<[i16; TILE_ROWS]>::try_from(low).expect("half a tile"));
                let high: i16x16 = cast(<[i16; TILE_ROWS]>::try_from(high).expect("half a tile"));
                for (lane, row) in acc.iter_mut().zip(&rows) {
                    let w: i16x16 = cast(simd.splat_i32x8(row[p]));
                    lane[0] = simd.wrapping_add_i32x8(
                        lane[0],
                        simd.multiply_wrapping_add_adjacent_i16x16(low, w),
                    );
                    lane[1] = simd.wrapping_add_i32x8(
                        lane[1],
                        simd.multiply_wrapping_add_adjacent_i16x16(high, w),
                    );
                }
            }
            let zero = simd.splat_f32x8(0.0);
            for (o, lane) in acc.iter().enumerate() {
                let (scale, bias) = (
                    simd.splat_f32x8(self.scales[o]),
                    simd.splat_f32x8(self.bias[o]),
                );
                for (half, &sum) in lane.iter().enumerate() {
                    let r = r0 + 8 * half;
                    let row_scales: f32x8 = cast(
                        <[f32; 8]>::try_from(&self.input.scales[r..r + 8]).expect("eight lanes"),
                    );
                    // bias + sum · (scale · row_scale), as `dequantize`.
                    let value = simd.add_f32x8(
                        bias,
                        simd.mul_f32x8(
                            simd.convert_i32x8_to_f32x8(sum),
                            simd.mul_f32x8(scale, row_scales),
                        ),
                    );
                    let value = if self.relu {
                        simd.max_f32x8(value, zero)
                    } else {
                        value
                    };
                    let values: [f32; 8] = cast(value);
                    out[o * stride + r..][..8].copy_from_slice(&values);
                }
            }
        }
    }
}
