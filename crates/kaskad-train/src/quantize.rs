//! INT8 post-training quantization of the MLP and of logistic regression.
//!
//! Weights: symmetric, one scale per output channel (`scale = max|w| / 127`,
//! `q = round(w / scale)`), stored as `i8`. Activations: symmetric and
//! dynamic, one scale per row, computed at scoring time from the row itself
//! (no calibration set, so no range a new applicant could fall outside).
//! Products are summed exactly in `i32`, then scaled back to `f32` with the
//! bias added in float. The sigmoid output stays in float.
//!
//! What the variant stores is rounded as far as the quantization error
//! allows, since being small is its point: the MLP's scales and biases in
//! half precision (a relative step of 2⁻¹¹, an eighth of an INT8 weight's
//! worst rounding), the explanations' baseline in `f32`. The rounding
//! happens here, so the stored variant is the one that scores.

use kaskad_prepare::Matrix;
use serde::{Deserialize, Serialize};

use crate::derived::Derived;
use crate::kernels::{FeatureMajor, INT8_MAX, Int8Isa, PairedWeights, QuantizedRows, dense_int8};
use crate::logistic::sigmoid;
use crate::{Dense, LogisticRegression, Mlp, TrainError};

/// One fully connected layer in INT8; `weights` is `outputs × inputs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizedDense {
    pub inputs: usize,
    pub outputs: usize,
    #[serde(with = "crate::tensor")]
    pub weights: Vec<i8>,
    /// One per output: weight = `weights[o][i] · scales[o]`.
    #[serde(with = "crate::tensor::half")]
    pub scales: Vec<f32>,
    #[serde(with = "crate::tensor::half")]
    pub bias: Vec<f32>,
}

thread_local! {
    /// Buffers reused across calls: a scoring call then allocates only its
    /// result (and the paired weights).
    static SCRATCH: std::cell::RefCell<(FeatureMajor, FeatureMajor, QuantizedRows)> =
        Default::default();
}

/// An [`Mlp`] with INT8 weights and per-row INT8 activations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizedMlp {
    pub layers: Vec<QuantizedDense>,
    /// The baseline of explanations, as in the original model.
    #[serde(default, with = "crate::tensor::single")]
    pub baseline: Vec<f64>,
    #[serde(skip)]
    /// The layers' weights as the kernels read them.
    kernel_weights: Derived<Vec<PairedWeights>>,
}

/// A [`LogisticRegression`] with INT8 coefficients (one scale) and per-row
/// INT8 features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizedLr {
    #[serde(with = "crate::tensor")]
    pub coefficients: Vec<i8>,
    pub scale: f64,
    pub intercept: f64,
    /// The baseline of explanations, as in the original model.
    #[serde(with = "crate::tensor::single")]
    pub feature_means: Vec<f64>,
}

/// The symmetric scale of `values`: its largest magnitude maps to 127.
fn symmetric_scale(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0f64, |m, v| m.max(v.abs())) / f64::from(INT8_MAX)
}

/// `q` with `values ≈ q · scale`.
fn quantize_with(values: impl Iterator<Item = f64>, scale: f64) -> Vec<i8> {
    let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    values
        .map(|v| (v * inverse).round_ties_even().clamp(-127.0, 127.0) as i8)
        .collect()
}

/// `value` rounded to the nearest half-precision number, as stored.
fn to_half(value: f32) -> Result<f32, TrainError> {
    let half = half::f16::from_f32(value);
    if half.is_infinite() {
        return Err(TrainError::NotQuantizable {
            family: "this MLP",
            reason: "a weight scale or bias lies beyond half precision's ±65,504",
        });
    }
    Ok(half.to_f32())
}

/// `values` rounded to `f32`, as stored.
fn to_single(values: &[f64]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v as f32)).collect()
}

impl QuantizedDense {
    fn new(layer: &Dense) -> Result<Self, TrainError> {
        let mut weights = Vec::with_capacity(layer.weights.len());
        let mut scales = Vec::with_capacity(layer.outputs);
        for row in layer.weights.chunks(layer.inputs.max(1)) {
            let wide = || row.iter().map(|&w| f64::from(w));
            // Quantized against the stored (rounded) scale, so that the
            // largest weight still maps to ±127 of what is stored.
            let scale = to_half(symmetric_scale(wide()) as f32)?;
            weights.extend(quantize_with(wide(), f64::from(scale)));
            scales.push(scale);
        }
        Ok(Self {
            inputs: layer.inputs,
            outputs: layer.outputs,
            weights,
            scales,
            bias: layer
                .bias
                .iter()
                .map(|&b| to_half(b))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl QuantizedMlp {
    pub fn new(mlp: &Mlp) -> Result<Self, TrainError> {
        Ok(Self {
            layers: mlp
                .layers
                .iter()
                .map(QuantizedDense::new)
                .collect::<Result<_, _>>()?,
            baseline: to_single(&mlp.baseline),
            kernel_weights: Derived::default(),
        })
    }

    /// The layers' weights laid out for this processor's INT8 kernels,
    /// built on first use.
    pub(crate) fn kernel_weights(&self) -> &[PairedWeights] {
        self.kernel_weights.get_or_init(|| {
            let isa = Int8Isa::best();
            self.layers
                .iter()
                .map(|l| PairedWeights::new(isa, &l.weights, l.inputs))
                .collect()
        })
    }

    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        let kernel_weights = self.kernel_weights();
        SCRATCH.with_borrow_mut(|(a, next, rows)| {
            a.fill(x.rows, x.cols, |i| x.data[i] as f32);
            for (i, (layer, weights)) in self.layers.iter().zip(kernel_weights).enumerate() {
                rows.quantize(a);
                let relu = i + 1 < self.layers.len();
                dense_int8(rows, weights, &layer.scales, &layer.bias, relu, next);
                std::mem::swap(a, next);
            }
            a.first_feature()
                .iter()
                .map(|&z| sigmoid(f64::from(z)))
                .collect()
        })
    }
}

impl QuantizedLr {
    pub fn new(lr: &LogisticRegression) -> Self {
        let scale = symmetric_scale(lr.coefficients.iter().copied());
        Self {
            coefficients: quantize_with(lr.coefficients.iter().copied(), scale),
            scale,
            intercept: lr.intercept,
            feature_means: to_single(&lr.feature_means),
        }
    }

    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .map(|r| {
                let row = x.row(r);
                let largest = row.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let row_scale = largest / f64::from(INT8_MAX);
                let inverse = if row_scale > 0.0 {
                    1.0 / row_scale
                } else {
                    0.0
                };
                let sum: i32 = row
                    .iter()
                    .zip(&self.coefficients)
                    .map(|(&v, &w)| (v * inverse).round_ties_even() as i32 * i32::from(w))
                    .sum();
                sigmoid(self.intercept + f64::from(sum) * self.scale * row_scale)
            })
            .collect()
    }

    /// Linear SHAP of the dequantized coefficients, as
    /// [`LogisticRegression::contributions`]: the reason codes of the model
    /// the INT8 one approximates.
    pub fn contributions(&self, x: &Matrix) -> Matrix {
        let mut out = Matrix::zeros(x.rows, x.cols);
        for i in 0..x.rows {
            for (j, v) in x.row(i).iter().enumerate() {
                let w = f64::from(self.coefficients[j]) * self.scale;
                out.data[i * x.cols + j] = w * (v - self.feature_means[j]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::{Hyperparams, Model, fit, testdata};

    fn max_difference(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn int8_scores_stay_close_to_the_original() {
        let (x, y) = testdata::logistic(3_000, 21);
        for params in [
            Hyperparams::Lr { c: 1.0 },
            Hyperparams::Mlp {
                hidden: vec![16, 8],
                learning_rate: 0.01,
                alpha: 1e-4,
                max_epochs: 50,
            },
        ] {
            let model = fit(&x, &y, &params, 3).unwrap();
            let quantized = model.quantized_int8().unwrap();
            let (before, after) = (model.predict_proba(&x), quantized.predict_proba(&x));
            // Each weight and activation is off by at most half a step
            // (1/254 of its row's or channel's largest magnitude); on logits
            // of a few units that moves a probability by well under 0.02.
            let worst = max_difference(&before, &after);
            assert!(worst < 0.02, "{}: {worst}", params.algorithm());
            let json = serde_json::to_string(&quantized).unwrap();
            let back: Model = serde_json::from_str(&json).unwrap();
            assert_eq!(back.predict_proba(&x), after);
        }
    }

    #[test]
    fn trees_and_neighbours_are_refused() {
        let (x, y) = testdata::logistic(300, 22);
        let tree = fit(
            &x,
            &y,
            &Hyperparams::Tree {
                max_depth: 3,
                min_samples_leaf: 5,
            },
            1,
        )
        .unwrap();
        let error = tree.quantized_int8().unwrap_err().to_string();
        assert!(error.contains("tree cannot be quantized"), "{error}");
    }

    #[test]
    fn int8_lr_explains_with_its_dequantized_coefficients() {
        let (x, y) = testdata::logistic(500, 23);
        let model = fit(&x, &y, &Hyperparams::Lr { c: 1.0 }, 1).unwrap();
        let (Model::Lr(lr), Model::LrInt8(q)) = (&model, model.quantized_int8().unwrap()) else {
            panic!("lr quantizes to lr_int8")
        };
        let (exact, approx) = (lr.contributions(&x), q.contributions(&x));
        assert!(max_difference(&exact.data, &approx.data) < 0.05);
    }
}
