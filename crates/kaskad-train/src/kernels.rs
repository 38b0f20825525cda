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
//! `vpmaddwd` (i16 × i16 pairs summed into i32) explicitly; on CPUs with
//! AVX-512 VNNI the INT8 layers run on 512-bit vectors under a token that
//! also enables VNNI, so that LLVM fuses each `vpmaddwd` and the add after
//! it into one `vpdpwssd` (the `vpdpbusd` intrinsic itself would need
//! `unsafe` to call). Every path gives the same bits (tests below).

use pulp::NullaryFnOnce;

#[cfg(target_arch = "x86_64")]
pulp::simd_type! {
    /// pulp's V4 (AVX-512 F/BW/CD/DQ/VL) plus AVX-512 VNNI.
    struct V4Vnni {
        pub sse: "sse",
        pub sse2: "sse2",
        pub fxsr: "fxsr",
        pub sse3: "sse3",
        pub ssse3: "ssse3",
        pub sse4_1: "sse4.1",
        pub sse4_2: "sse4.2",
        pub popcnt: "popcnt",
        pub avx: "avx",
        pub avx2: "avx2",
        pub bmi1: "bmi1",
        pub bmi2: "bmi2",
        pub fma: "fma",
        pub lzcnt: "lzcnt",
        pub avx512f: "avx512f",
        pub avx512bw: "avx512bw",
        pub avx512cd: "avx512cd",
        pub avx512dq: "avx512dq",
        pub avx512vl: "avx512vl",
        pub avx512vnni: "avx512vnni",
    }
}

/// The instruction sets an INT8 layer can run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Isa {
    /// 512-bit vectors with VNNI.
    Avx512Vnni,
    Avx2,
    /// As built for the baseline target.
    Plain,
}

impl Int8Isa {
    /// Best first.
    const ALL: [Int8Isa; 3] = [Int8Isa::Avx512Vnni, Int8Isa::Avx2, Int8Isa::Plain];

    /// Whether this CPU runs the set.
    fn runs_here(self) -> bool {
        match self {
            Int8Isa::Avx512Vnni => {
                #[cfg(target_arch = "x86_64")]
                return V4Vnni::is_available() && pulp::x86::V4::is_available();
                #[cfg(not(target_arch = "x86_64"))]
                false
            }
            Int8Isa::Avx2 => {
                #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
                return pulp::x86::V3::is_available();
                #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
                false
            }
            Int8Isa::Plain => true,
        }
    }

    /// The best set this CPU runs.
    pub fn best() -> Int8Isa {
        Self::ALL
            .into_iter()
            .find(|isa| isa.runs_here())
            .unwrap_or(Int8Isa::Plain)
    }

    /// Outputs per tile: their weights are stored pair-major within it.
    fn tile_outputs(self) -> usize {
        match self {
            Int8Isa::Avx512Vnni => TILE_OUTPUTS_V4,
            Int8Isa::Avx2 | Int8Isa::Plain => TILE_OUTPUTS,
        }
    }
}

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
    /// rows are zero in what [`Self::fill`] writes; a layer's kernel
    /// computes them like any row.
    pub stride: usize,
    pub features: usize,
    pub data: Vec<f32>,
}

impl FeatureMajor {
    fn reset(&mut self, rows: usize, features: usize) {
        self.rows = rows;
        self.stride = stride_for(rows);
        self.features = features;
        // Every feature is written in full, padding rows too, before it is
        // read, so the buffer is not cleared; one feature more is left
        // zero: the partner of an odd last feature when features are
        // quantized in pairs.
        self.data.resize(self.stride * (features + 1), 0.0);
        self.data[self.stride * features..].fill(0.0);
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
        for c in 0..cols {
            self.data[c * self.stride + rows..(c + 1) * self.stride].fill(0.0);
        }
    }

    /// The first feature of every real row (the output of a one-unit layer).
    pub fn first_feature(&self) -> &[f32] {
        &self.data[..self.rows]
    }
}

/// The padded row count of [`FeatureMajor::stride`].
fn stride_for(rows: usize) -> usize {
    let padded = rows.div_ceil(TILE_ROWS) * TILE_ROWS;
    if padded.is_multiple_of(64) {
        padded + TILE_ROWS
    } else {
        padded
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
        // Every value is written by the packing that follows.
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

/// Weights of one INT8 layer as the kernels read them: every weight pair
/// two `i16` packed in an `i32` (what `vpmaddwd` broadcasts), outputs in
/// blocks of the path's tile (then single outputs), pair-major within a
/// block, so that a tile's weights for one pair are adjacent.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedWeights {
    pub pairs: usize,
    /// Outputs per block; the last `outputs % tile` outputs are single.
    tile: usize,
    packed: Vec<i32>,
}

impl PairedWeights {
    /// `weights` is `outputs × inputs` row-major; laid out for `isa`.
    pub fn new(isa: Int8Isa, weights: &[i8], inputs: usize) -> Self {
        let pairs = inputs.div_ceil(2);
        let outputs = weights.len() / inputs.max(1);
        let tile = isa.tile_outputs();
        let pair = |o: usize, p: usize| {
            let row = &weights[o * inputs..][..inputs];
            let low = i16::from(row[2 * p]);
            let high = row.get(2 * p + 1).map_or(0, |&w| i16::from(w));
            i32::from(low as u16) | (i32::from(high as u16) << 16)
        };
        let mut packed = Vec::with_capacity(outputs * pairs);
        let mut o0 = 0;
        while o0 < outputs {
            let block = block_at(o0, outputs, tile);
            for p in 0..pairs {
                packed.extend((o0..o0 + block).map(|o| pair(o, p)));
            }
            o0 += block;
        }
        Self {
            pairs,
            tile,
            packed,
        }
    }

    /// The weights of the block of `block` outputs starting at `o0`.
    fn block(&self, o0: usize, block: usize) -> &[i32] {
        &self.packed[o0 * self.pairs..(o0 + block) * self.pairs]
    }

    /// The packed pair `p` of output `o`.
    fn get(&self, o: usize, p: usize) -> i32 {
        let outputs = self.packed.len() / self.pairs.max(1);
        let block = block_at(o / self.tile * self.tile, outputs, self.tile);
        let o0 = o - o % block;
        self.block(o0, block)[p * block + o - o0]
    }
}

/// The size of the output block starting at `o0`: a whole tile while one
/// fits, single outputs after.
fn block_at(o0: usize, outputs: usize, tile: usize) -> usize {
    if o0 + tile <= outputs { tile } else { 1 }
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
    dense_int8_on(Int8Isa::best(), input, weights, scales, bias, relu, out);
}

/// [`dense_int8`] on `isa`, for which `weights` were laid out.
fn dense_int8_on(
    isa: Int8Isa,
    input: &QuantizedRows,
    weights: &PairedWeights,
    scales: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut FeatureMajor,
) {
    out.reset(input.rows, bias.len());
    assert_eq!(
        weights.tile,
        isa.tile_outputs(),
        "weights laid out for {isa:?}"
    );
    #[cfg(target_arch = "x86_64")]
    if let (Int8Isa::Avx512Vnni, Some(vnni), Some(simd)) =
        (isa, V4Vnni::try_new(), pulp::x86::V4::try_new())
    {
        return vnni.vectorize(DenseInt8 {
            kernel: Avx512VnniInt8(simd),
            input,
            weights,
            scales,
            bias,
            relu,
            out,
        });
    }
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if let (Int8Isa::Avx2, Some(simd)) = (isa, pulp::x86::V3::try_new()) {
        return simd.vectorize(DenseInt8 {
            kernel: Avx2Int8(simd),
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
        for r in 0..stride {
            let mut sum = 0i32;
            for p in 0..weights.pairs {
                let pair = weights.get(o, p);
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

/// One instruction set's INT8 kernel for a block of a layer's outputs: a
/// whole tile of [`Int8Kernel::TILE`] outputs, or a single output.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
trait Int8Kernel: Copy {
    const TILE: usize;
    fn whole_tile(self, block: &Int8Block<'_>, out: &mut [f32]);
    fn single(self, block: &Int8Block<'_>, out: &mut [f32]);
}

/// A layer on the kernel `K`, block by block (see [`PairedWeights`]).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
struct DenseInt8<'a, K> {
    kernel: K,
    input: &'a QuantizedRows,
    weights: &'a PairedWeights,
    scales: &'a [f32],
    bias: &'a [f32],
    relu: bool,
    out: &'a mut FeatureMajor,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl<K: Int8Kernel> NullaryFnOnce for DenseInt8<'_, K> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let Self {
            kernel,
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
        let mut o0 = 0;
        while o0 < outputs {
            let block = block_at(o0, outputs, K::TILE);
            let layer = Int8Block {
                input,
                packed: weights.block(o0, block),
                pairs,
                scales: &scales[o0..o0 + block],
                bias: &bias[o0..o0 + block],
                relu,
            };
            let out = &mut out.data[o0 * stride..(o0 + block) * stride];
            if block == K::TILE {
                kernel.whole_tile(&layer, out);
            } else {
                kernel.single(&layer, out);
            }
            o0 += block;
        }
    }
}

/// A block of outputs of an INT8 layer.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
struct Int8Block<'a> {
    input: &'a QuantizedRows,
    /// `pairs × OUTPUTS`.
    packed: &'a [i32],
    pairs: usize,
    scales: &'a [f32],
    bias: &'a [f32],
    relu: bool,
}

/// AVX2: a tile's 16 rows of one feature pair fill two registers.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[derive(Clone, Copy)]
struct Avx2Int8(pulp::x86::V3);

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl Int8Kernel for Avx2Int8 {
    const TILE: usize = TILE_OUTPUTS;

    #[inline(always)]
    fn whole_tile(self, block: &Int8Block<'_>, out: &mut [f32]) {
        self.tile::<TILE_OUTPUTS>(block, out);
    }

    #[inline(always)]
    fn single(self, block: &Int8Block<'_>, out: &mut [f32]) {
        self.tile::<1>(block, out);
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl Avx2Int8 {
    /// The block's `OUTPUTS` outputs for every row tile, into `out`
    /// (`OUTPUTS × stride`).
    #[inline(always)]
    fn tile<const OUTPUTS: usize>(self, block: &Int8Block<'_>, out: &mut [f32]) {
        use pulp::{cast, f32x8, i16x16};
        let Self(simd) = self;
        let stride = block.input.stride;
        let pairs = block.pairs;
        for r0 in (0..stride).step_by(TILE_ROWS) {
            let mut acc = [[simd.splat_i32x8(0); 2]; OUTPUTS];
            for p in 0..pairs {
                let w: &[i32; OUTPUTS] = block.packed[p * OUTPUTS..][..OUTPUTS]
                    .try_into()
                    .expect("a block is OUTPUTS wide");
                let x: &[i16; 2 * TILE_ROWS] = block.input.values[(p * stride + r0) * 2..]
                    [..2 * TILE_ROWS]
                    .try_into()
                    .expect("a tile is TILE_ROWS wide");
                let (low, high) = x.split_at(TILE_ROWS);
                let low: i16x16 = cast(<[i16; TILE_ROWS]>::try_from(low).expect("half a tile"));
                let high: i16x16 = cast(<[i16; TILE_ROWS]>::try_from(high).expect("half a tile"));
                for (lane, &w) in acc.iter_mut().zip(w) {
                    let w: i16x16 = cast(simd.splat_i32x8(w));
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
                    simd.splat_f32x8(block.scales[o]),
                    simd.splat_f32x8(block.bias[o]),
                );
                for (half, &sum) in lane.iter().enumerate() {
                    let r = r0 + 8 * half;
                    let row_scales: f32x8 = cast(
                        <[f32; 8]>::try_from(&block.input.scales[r..r + 8]).expect("eight lanes"),
                    );
                    // bias + sum · (scale · row_scale), as `dequantize`.
                    let value = simd.add_f32x8(
                        bias,
                        simd.mul_f32x8(
                            simd.convert_i32x8_to_f32x8(sum),
                            simd.mul_f32x8(scale, row_scales),
                        ),
                    );
                    let value = if block.relu {
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

/// Outputs per tile on 512-bit vectors, one accumulator register each: 16
/// made LLVM spill accumulators to the stack inside the pair loop, 8 keeps
/// the loop at one `vpdpwssd` (weight broadcast from memory) per output.
const TILE_OUTPUTS_V4: usize = 8;

/// AVX-512 VNNI (`vpdpwssd` through pulp's V4 token, under the VNNI
/// target feature): a tile's 16 rows of one feature pair fill one register.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx512VnniInt8(pulp::x86::V4);

#[cfg(target_arch = "x86_64")]
impl Int8Kernel for Avx512VnniInt8 {
    const TILE: usize = TILE_OUTPUTS_V4;

    #[inline(always)]
    fn whole_tile(self, block: &Int8Block<'_>, out: &mut [f32]) {
        self.tile::<TILE_OUTPUTS_V4>(block, out);
    }

    #[inline(always)]
    fn single(self, block: &Int8Block<'_>, out: &mut [f32]) {
        self.tile::<1>(block, out);
    }
}

#[cfg(target_arch = "x86_64")]
impl Avx512VnniInt8 {
    #[inline(always)]
    fn tile<const OUTPUTS: usize>(self, block: &Int8Block<'_>, out: &mut [f32]) {
        use pulp::{cast, f32x16, i16x32};
        let Self(simd) = self;
        let stride = block.input.stride;
        let pairs = block.pairs;
        let zero = simd.splat_f32x16(0.0);
        for r0 in (0..stride).step_by(TILE_ROWS) {
            let mut acc = [simd.splat_i32x16(0); OUTPUTS];
            for p in 0..pairs {
                let w: &[i32; OUTPUTS] = block.packed[p * OUTPUTS..][..OUTPUTS]
                    .try_into()
                    .expect("a block is OUTPUTS wide");
                let x: [i16; 2 * TILE_ROWS] = block.input.values[(p * stride + r0) * 2..]
                    [..2 * TILE_ROWS]
                    .try_into()
                    .expect("a tile is TILE_ROWS wide");
                let x: i16x32 = cast(x);
                for (lane, &w) in acc.iter_mut().zip(w) {
                    let w: i16x32 = cast(simd.splat_i32x16(w));
                    *lane = simd.wrapping_add_i32x16(
                        *lane,
                        simd.multiply_wrapping_add_adjacent_i16x32(x, w),
                    );
                }
            }
            let row_scales: f32x16 = cast(
                <[f32; TILE_ROWS]>::try_from(&block.input.scales[r0..r0 + TILE_ROWS])
                    .expect("a tile is TILE_ROWS wide"),
            );
            for (o, &sum) in acc.iter().enumerate() {
                // bias + sum · (scale · row_scale), as `dequantize`.
                let value = simd.add_f32x16(
                    simd.splat_f32x16(block.bias[o]),
                    simd.mul_f32x16(
                        simd.convert_i32x16_to_f32x16(sum),
                        simd.mul_f32x16(simd.splat_f32x16(block.scales[o]), row_scales),
                    ),
                );
                let value = if block.relu {
                    simd.max_f32x16(value, zero)
                } else {
                    value
                };
                let values: [f32; TILE_ROWS] = cast(value);
                out[o * stride + r0..][..TILE_ROWS].copy_from_slice(&values);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in `-1..1`, some exactly zero.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32 ^ seed)
                    .wrapping_mul(2_654_435_761)
                    .rotate_left(13);
                if h.is_multiple_of(7) {
                    0.0
                } else {
                    (h % 2001) as f32 / 1000.0 - 1.0
                }
            })
            .collect()
    }

    #[test]
    fn every_int8_path_gives_the_plain_builds_bits() {
        let sets: Vec<Int8Isa> = Int8Isa::ALL.into_iter().filter(|i| i.runs_here()).collect();
        assert_eq!(sets.last(), Some(&Int8Isa::Plain));
        // Rows not a multiple of the tile, odd inputs (a padded pair),
        // outputs past a 16-tile, a 4-tile and single outputs.
        for (rows, inputs, outputs) in [(37, 31, 21), (16, 2, 1), (1, 7, 3), (70, 64, 32)] {
            let x = FeatureMajor::from_f32_rows(&values(rows * inputs, 1), inputs);
            let mut q = QuantizedRows::default();
            q.quantize(&x);
            let weights: Vec<i8> = values(outputs * inputs, 2)
                .iter()
                .map(|v| (v * 127.0) as i8)
                .collect();
            let scales: Vec<f32> = (0..outputs).map(|o| 0.01 + o as f32 * 1e-3).collect();
            let bias = values(outputs, 3);
            for relu in [false, true] {
                let run = |isa| {
                    let paired = PairedWeights::new(isa, &weights, inputs);
                    let mut out = FeatureMajor::default();
                    dense_int8_on(isa, &q, &paired, &scales, &bias, relu, &mut out);
                    (0..outputs)
                        .flat_map(|o| out.data[o * out.stride..][..rows].to_vec())
                        .collect::<Vec<f32>>()
                };
                let plain = run(Int8Isa::Plain);
                // The plain build against the definition, sum by sum.
                for o in 0..outputs {
                    for r in 0..rows {
                        let sum: i32 = (0..inputs)
                            .map(|i| {
                                let pair = &q.values[((i / 2) * q.stride + r) * 2..];
                                i32::from(pair[i % 2]) * i32::from(weights[o * inputs + i])
                            })
                            .sum();
                        let want = dequantize(sum, scales[o], q.scales[r], bias[o], relu);
                        assert_eq!(plain[o * rows + r], want, "output {o} row {r}");
                    }
                }
                for &isa in &sets {
                    assert_eq!(run(isa), plain, "{isa:?} on {rows}×{inputs}→{outputs}");
                }
            }
        }
    }
}
