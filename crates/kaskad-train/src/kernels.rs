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

use kaskad_prepare::Matrix;
use pulp::NullaryFnOnce;

/// Rows per tile: two vectors of eight lanes.
pub const TILE_ROWS: usize = 16;
/// Outputs per tile: with 16 rows, 8 accumulator registers.
const TILE_OUTPUTS: usize = 4;
/// The largest magnitude of a quantized value (symmetric: −127..=127).
pub const INT8_MAX: f32 = 127.0;

/// Activations of a batch, feature-major: `data[feature * stride + row]`.
#[derive(Debug, Clone, Default)]
pub struct FeatureMajor {
    pub rows: usize,
    /// Rows rounded up to a multiple of [`TILE_ROWS`]; padding rows are zero.
    pub stride: usize,
    pub features: usize,
    pub data: Vec<f32>,
}

impl FeatureMajor {
    fn reset(&mut self, rows: usize, features: usize) {
        self.rows = rows;
        self.stride = rows.div_ceil(TILE_ROWS) * TILE_ROWS;
        self.features = features;
        self.data.clear();
        self.data.resize(self.stride * features, 0.0);
    }

    /// A prepared matrix (rows of `f64`) rounded to `f32`.
    pub fn from_matrix(x: &Matrix) -> Self {
        Self::from_rows(x.rows, x.cols, |i| x.data[i] as f32)
    }

    /// Row-major `f32` values, `cols` per row.
    pub fn from_f32_rows(data: &[f32], cols: usize) -> Self {
        Self::from_rows(data.len() / cols.max(1), cols, |i| data[i])
    }

    fn from_rows(rows: usize, cols: usize, value: impl Fn(usize) -> f32) -> Self {
        let mut out = Self::default();
        out.reset(rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                out.data[c * out.stride + r] = value(r * cols + c);
            }
        }
        out
    }

    /// The first feature of every real row (the output of a one-unit layer).
    pub fn first_feature(&self) -> &[f32] {
        &self.data[..self.rows]
    }
}

/// Runs `kernel` with AVX2 and FMA enabled when the CPU has them.
fn dispatch<K: NullaryFnOnce>(kernel: K) -> K::Output {
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
    dispatch(DenseF32 {
        input,
        weights,
        bias,
        relu,
        out,
    });
}

struct DenseF32<'a> {
    input: &'a FeatureMajor,
    weights: &'a [f32],
    bias: &'a [f32],
    relu: bool,
    out: &'a mut FeatureMajor,
}

impl NullaryFnOnce for DenseF32<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let Self {
            input,
            weights,
            bias,
            relu,
            out,
        } = self;
        let inputs = input.features;
        let stride = input.stride;
        let outputs = bias.len();
        let full = outputs / TILE_OUTPUTS * TILE_OUTPUTS;
        let mut o0 = 0;
        while o0 < outputs {
            let block = if o0 < full { TILE_OUTPUTS } else { 1 };
            let weights = &weights[o0 * inputs..(o0 + block) * inputs];
            let bias = &bias[o0..o0 + block];
            let out = &mut out.data[o0 * stride..(o0 + block) * stride];
            if block == TILE_OUTPUTS {
                tile_f32::<TILE_OUTPUTS>(&input.data, stride, inputs, weights, bias, relu, out);
            } else {
                tile_f32::<1>(&input.data, stride, inputs, weights, bias, relu, out);
            }
            o0 += block;
        }
    }
}

/// `OUTPUTS` outputs (weights `OUTPUTS × inputs`) for every row tile.
#[inline(always)]
fn tile_f32<const OUTPUTS: usize>(
    input: &[f32],
    stride: usize,
    inputs: usize,
    weights: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    let rows: [&[f32]; OUTPUTS] = std::array::from_fn(|o| &weights[o * inputs..(o + 1) * inputs]);
    for r0 in (0..stride).step_by(TILE_ROWS) {
        let mut acc = [[0.0f32; TILE_ROWS]; OUTPUTS];
        for (lane, &b) in acc.iter_mut().zip(bias) {
            *lane = [b; TILE_ROWS];
        }
        for i in 0..inputs {
            let x: &[f32; TILE_ROWS] = input[i * stride + r0..][..TILE_ROWS]
                .try_into()
                .expect("a tile is TILE_ROWS wide");
            for (lane, row) in acc.iter_mut().zip(&rows) {
                let w = row[i];
                for (a, &v) in lane.iter_mut().zip(x) {
                    *a += w * v;
                }
            }
        }
        for (o, lane) in acc.iter().enumerate() {
            let target = &mut out[o * stride + r0..][..TILE_ROWS];
            for (t, &a) in target.iter_mut().zip(lane) {
                *t = if relu { a.max(0.0) } else { a };
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
}

impl QuantizedRows {
    /// Symmetric dynamic quantization of every row: `scale = max|x| / 127`,
    /// `q = round(x / scale)`, so a row's largest value keeps full range
    /// whatever the other rows hold.
    pub fn quantize(&mut self, input: &FeatureMajor) {
        dispatch(Quantize { input, out: self });
    }
}

struct Quantize<'a> {
    input: &'a FeatureMajor,
    out: &'a mut QuantizedRows,
}

impl NullaryFnOnce for Quantize<'_> {
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
        let inverse: Vec<f32> = out
            .scales
            .iter_mut()
            .map(|m| {
                *m /= INT8_MAX;
                if *m > 0.0 { 1.0 / *m } else { 0.0 }
            })
            .collect();
        out.values.clear();
        out.values.resize(out.pairs * stride * 2, 0);
        for i in 0..input.features {
            let column = &input.data[i * stride..][..stride];
            let pair = &mut out.values[(i / 2) * stride * 2..][..stride * 2];
            for ((q, &v), &inv) in pair.iter_mut().skip(i % 2).step_by(2).zip(column).zip(&inverse) {
                *q = (v * inv).round_ties_even() as i16;
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
        use pulp::{cast, i16x16, i32x8};
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
            for (o, lane) in acc.iter().enumerate() {
                let sums: [i32; TILE_ROWS] = cast::<[i32x8; 2], _>(*lane);
                let target = &mut out[o * stride + r0..][..TILE_ROWS];
                let row_scales = &self.input.scales[r0..][..TILE_ROWS];
                for ((t, &sum), &row_scale) in target.iter_mut().zip(&sums).zip(row_scales) {
                    *t = dequantize(sum, self.scales[o], row_scale, self.bias[o], self.relu);
                }
            }
        }
    }
}
