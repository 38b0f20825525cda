use kaskad_prepare::Matrix;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::kernels::{FeatureMajor, dense_f32};

/// A small multilayer perceptron: ReLU hidden layers, one sigmoid output,
/// trained with Adam on mini-batches of log-loss plus an L2 penalty.
///
/// Early stopping holds out the newest 10 % of the training rows (rows
/// arrive in stream order, so this is a time-ordered validation fold) and
/// keeps the weights of the epoch with the lowest validation log-loss.
/// Weights are `f32`: the network is small, credit features are scaled, and
/// single precision halves memory traffic in the matrix products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    pub layers: Vec<Dense>,
    /// Epochs run before early stopping (or the limit) ended training.
    pub epochs: usize,
    /// The mean encoded training row: the baseline of explanations (see
    /// the `gradients` module). Empty in artifacts written before it was
    /// kept; explanations then start from the zero vector.
    #[serde(default, with = "crate::tensor")]
    pub baseline: Vec<f64>,
}

/// One fully connected layer; `weights` is `outputs × inputs`, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    #[serde(with = "crate::tensor")]
    pub weights: Vec<f32>,
    #[serde(with = "crate::tensor")]
    pub bias: Vec<f32>,
}

/// Training settings, as in scikit-learn's `MLPClassifier`.
#[derive(Debug, Clone, Copy)]
pub struct MlpSettings<'a> {
    pub hidden: &'a [usize],
    pub learning_rate: f64,
    pub alpha: f64,
    pub max_epochs: usize,
    pub batch_size: usize,
    pub patience: usize,
    pub seed: u64,
    /// Keep the weights that start at zero at zero (fine-tuning after
    /// pruning: the pruned connections stay cut).
    pub frozen_zeros: bool,
}

impl Dense {
    /// Glorot-uniform initialization, as scikit-learn (factor 2 for the
    /// sigmoid output, 6 for ReLU layers).
    fn new(inputs: usize, outputs: usize, output_layer: bool, rng: &mut SmallRng) -> Self {
        let factor = if output_layer { 2.0 } else { 6.0 };
        let bound = (factor / (inputs + outputs) as f64).sqrt() as f32;
        let mut draw = || rng.random_range(-bound..bound);
        Self {
            inputs,
            outputs,
            weights: (0..inputs * outputs).map(|_| draw()).collect(),
            bias: (0..outputs).map(|_| draw()).collect(),
        }
    }

    /// `out[b][o] = bias[o] + Σ_i a[b][i] · w[o][i]` for `rows` rows.
    pub(crate) fn forward(&self, a: &[f32], rows: usize, out: &mut Vec<f32>) {
        out.clear();
        out.reserve(rows * self.outputs);
        for b in 0..rows {
            let input = &a[b * self.inputs..(b + 1) * self.inputs];
            for o in 0..self.outputs {
                let w = &self.weights[o * self.inputs..(o + 1) * self.inputs];
                out.push(self.bias[o] + dot(input, w));
            }
        }
    }

    /// `δ` of the layer's outputs taken back to its inputs, for `rows`
    /// rows: `back[b][i] = Σ_o delta[b][o] · w[o][i]`.
    pub(crate) fn backward(&self, delta: &[f32], rows: usize) -> Vec<f32> {
        let mut back = vec![0.0f32; rows * self.inputs];
        for b in 0..rows {
            let out = &mut back[b * self.inputs..(b + 1) * self.inputs];
            for o in 0..self.outputs {
                let d = delta[b * self.outputs + o];
                if d == 0.0 {
                    continue;
                }
                let w = &self.weights[o * self.inputs..(o + 1) * self.inputs];
                for (p, &wv) in out.iter_mut().zip(w) {
                    *p += d * wv;
                }
            }
        }
        back
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four accumulators let the compiler vectorize without reassociating.
    let mut acc = [0.0f32; 4];
    let chunks = a.len() / 4;
    for c in 0..chunks {
        for k in 0..4 {
            acc[k] += a[c * 4 + k] * b[c * 4 + k];
        }
    }
    let mut sum = acc[0] + acc[1] + acc[2] + acc[3];
    for k in chunks * 4..a.len() {
        sum += a[k] * b[k];
    }
    sum
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Adam's moment estimates for one parameter vector.
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Moments {
    fn new(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32, t: i32) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        let correction = lr * (1.0 - B2.powi(t)).sqrt() / (1.0 - B1.powi(t));
        for ((p, g), (m, v)) in params
            .iter_mut()
            .zip(grads)
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *p -= correction * *m / (v.sqrt() + 1e-8);
        }
    }
}

impl Mlp {
    pub fn fit(x: &Matrix, y: &[u8], settings: MlpSettings<'_>) -> Self {
        Self::fit_from(x, y, settings, None)
    }

    /// Training that continues from `previous`'s weights when the
    /// architecture matches (same inputs and hidden sizes), typically on the
    /// rows that arrived since; otherwise from a fresh initialization.
    pub fn fit_from(
        x: &Matrix,
        y: &[u8],
        settings: MlpSettings<'_>,
        previous: Option<&Mlp>,
    ) -> Self {
        let targets: Vec<f32> = y.iter().map(|&v| f32::from(v)).collect();
        Self::fit_targets(x, &targets, settings, previous)
    }

    /// Training on soft targets (probabilities in [0, 1], e.g. a teacher
    /// model's scores): the same cross-entropy, whose gradient at the output
    /// is `p − target` as with 0/1 labels. This is distillation.
    pub fn fit_soft(
        x: &Matrix,
        targets: &[f64],
        settings: MlpSettings<'_>,
        previous: Option<&Mlp>,
    ) -> Self {
        let targets: Vec<f32> = targets.iter().map(|&v| v.clamp(0.0, 1.0) as f32).collect();
        Self::fit_targets(x, &targets, settings, previous)
    }

    fn fit_targets(
        x: &Matrix,
        targets: &[f32],
        settings: MlpSettings<'_>,
        previous: Option<&Mlp>,
    ) -> Self {
        let mut rng = SmallRng::seed_from_u64(settings.seed);
        let mut sizes = vec![x.cols];
        sizes.extend_from_slice(settings.hidden);
        sizes.push(1);
        let same_shape = |p: &Mlp| {
            p.layers.len() + 1 == sizes.len()
                && p.layers
                    .iter()
                    .zip(sizes.windows(2))
                    .all(|(l, w)| l.inputs == w[0] && l.outputs == w[1])
        };
        let mut layers: Vec<Dense> = match previous {
            Some(p) if same_shape(p) => p.layers.clone(),
            _ => sizes
                .windows(2)
                .enumerate()
                .map(|(i, w)| Dense::new(w[0], w[1], i + 2 == sizes.len(), &mut rng))
                .collect(),
        };
        // Pruned connections: zero at the start, kept at zero by every step.
        let frozen: Vec<Vec<bool>> = layers
            .iter()
            .map(|l| {
                l.weights
                    .iter()
                    .map(|w| settings.frozen_zeros && *w == 0.0)
                    .collect()
            })
            .collect();
        let features: Vec<f32> = x.data.iter().map(|&v| v as f32).collect();
        let validation_rows = if x.rows >= 100 { x.rows / 10 } else { 0 };
        let fit_rows = x.rows - validation_rows;
        let mut order: Vec<usize> = (0..fit_rows).collect();
        let mut moments: Vec<(Moments, Moments)> = layers
            .iter()
            .map(|l| (Moments::new(l.weights.len()), Moments::new(l.bias.len())))
            .collect();
        let mut best = (f64::INFINITY, layers.clone(), 0);
        let mut since_best = 0;
        let mut t = 0;
        let mut epochs = 0;
        let batch_size = settings.batch_size.max(1);
        let mut scratch = Scratch::default();
        for epoch in 1..=settings.max_epochs {
            epochs = epoch;
            order.shuffle(&mut rng);
            for batch in order.chunks(batch_size) {
                t += 1;
                let grads =
                    scratch.gradients(&layers, &features, x.cols, targets, batch, settings.alpha);
                for (((layer, (mw, mb)), (gw, gb)), frozen) in layers
                    .iter_mut()
                    .zip(moments.iter_mut())
                    .zip(grads)
                    .zip(&frozen)
                {
                    mw.step(&mut layer.weights, &gw, settings.learning_rate as f32, t);
                    mb.step(&mut layer.bias, &gb, settings.learning_rate as f32, t);
                    for (w, _) in layer.weights.iter_mut().zip(frozen).filter(|(_, f)| **f) {
                        *w = 0.0;
                    }
                }
            }
            if validation_rows == 0 {
                continue;
            }
            let start = fit_rows * x.cols;
            let probabilities = predict(
                &layers,
                FeatureMajor::from_f32_rows(&features[start..], x.cols),
            );
            let loss = log_loss(&targets[fit_rows..], &probabilities);
            if loss < best.0 - 1e-4 {
                best = (loss, layers.clone(), epoch);
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= settings.patience {
                    break;
                }
            }
        }
        if validation_rows > 0 {
            layers = best.1;
        }
        Self {
            layers,
            epochs,
            baseline: crate::gradients::column_means(x),
        }
    }

    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        SCRATCH.with_borrow_mut(|[input, a, b]| {
            input.fill(x.rows, x.cols, |i| x.data[i] as f32);
            let output = forward(&self.layers, input, a, b);
            output.iter().map(|&z| f64::from(sigmoid(z))).collect()
        })
    }

    /// A copy with the `share` of each layer's weights that are smallest in
    /// magnitude set to zero (biases kept): magnitude pruning, before
    /// fine-tuning with [`MlpSettings::frozen_zeros`].
    pub fn pruned(&self, share: f64) -> Mlp {
        let mut pruned = self.clone();
        for layer in &mut pruned.layers {
            let cut = ((layer.weights.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
            let mut order: Vec<usize> = (0..layer.weights.len()).collect();
            order.sort_by(|&a, &b| layer.weights[a].abs().total_cmp(&layer.weights[b].abs()));
            for &i in &order[..cut] {
                layer.weights[i] = 0.0;
            }
        }
        pruned
    }

    /// The share of weights (biases aside) that are exactly zero.
    pub fn sparsity(&self) -> f64 {
        let (zeros, total) = self.layers.iter().fold((0, 0), |(z, t), l| {
            (
                z + l.weights.iter().filter(|w| **w == 0.0).count(),
                t + l.weights.len(),
            )
        });
        zeros as f64 / total.max(1) as f64
    }
}

thread_local! {
    /// Activation buffers reused across calls: a scoring call then
    /// allocates only its result.
    static SCRATCH: std::cell::RefCell<[FeatureMajor; 3]> = Default::default();
}

/// The output layer's logits for the rows of `input`, through buffers `a`
/// and `b`.
fn forward<'a>(
    layers: &[Dense],
    input: &FeatureMajor,
    mut a: &'a mut FeatureMajor,
    mut b: &'a mut FeatureMajor,
) -> &'a [f32] {
    for (i, layer) in layers.iter().enumerate() {
        let from = if i == 0 { input } else { &*a };
        dense_f32(from, &layer.weights, &layer.bias, i + 1 < layers.len(), b);
        std::mem::swap(&mut a, &mut b);
    }
    a.first_feature()
}

/// The probability of the positive class for every row of `x`.
fn predict(layers: &[Dense], x: FeatureMajor) -> Vec<f32> {
    let (mut a, mut b) = Default::default();
    forward(layers, &x, &mut a, &mut b)
        .iter()
        .map(|&z| sigmoid(z))
        .collect()
}

/// Cross-entropy of probabilities `p` against targets `y` (0/1 labels or soft).
fn log_loss(y: &[f32], p: &[f32]) -> f64 {
    let eps = 1e-7;
    y.iter()
        .zip(p)
        .map(|(&y, &p)| {
            let (y, p) = (f64::from(y), f64::from(p).clamp(eps, 1.0 - eps));
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / y.len().max(1) as f64
}

/// Buffers reused across mini-batches.
#[derive(Default)]
struct Scratch {
    input: Vec<f32>,
    activations: Vec<Vec<f32>>,
}

impl Scratch {
    /// Gradients (weights, bias) of every layer on the rows of `batch`:
    /// mean log-loss plus `alpha/2 · ‖W‖² / batch`, as scikit-learn.
    fn gradients(
        &mut self,
        layers: &[Dense],
        features: &[f32],
        cols: usize,
        y: &[f32],
        batch: &[usize],
        alpha: f64,
    ) -> Vec<(Vec<f32>, Vec<f32>)> {
        let rows = batch.len();
        self.input.clear();
        for &r in batch {
            self.input
                .extend_from_slice(&features[r * cols..(r + 1) * cols]);
        }
        self.activations.resize(layers.len(), Vec::new());
        for (i, layer) in layers.iter().enumerate() {
            let (done, rest) = self.activations.split_at_mut(i);
            let a = if i == 0 { &self.input } else { &done[i - 1] };
            layer.forward(a, rows, &mut rest[0]);
            if i + 1 < layers.len() {
                rest[0].iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        // Output delta of sigmoid + log-loss: p − y, averaged over the batch.
        let scale = 1.0 / rows as f32;
        let mut delta: Vec<f32> = self.activations[layers.len() - 1]
            .iter()
            .zip(batch)
            .map(|(&z, &r)| (sigmoid(z) - y[r]) * scale)
            .collect();
        let mut grads = vec![(Vec::new(), Vec::new()); layers.len()];
        for i in (0..layers.len()).rev() {
            let layer = &layers[i];
            let a = if i == 0 {
                &self.input
            } else {
                &self.activations[i - 1]
            };
            let penalty = (alpha as f32) * scale;
            let mut gw: Vec<f32> = layer.weights.iter().map(|w| penalty * w).collect();
            let mut gb = vec![0.0f32; layer.outputs];
            for b in 0..rows {
                let input = &a[b * layer.inputs..(b + 1) * layer.inputs];
                for o in 0..layer.outputs {
                    let d = delta[b * layer.outputs + o];
                    if d == 0.0 {
                        continue;
                    }
                    gb[o] += d;
                    let row = &mut gw[o * layer.inputs..(o + 1) * layer.inputs];
                    for (g, &v) in row.iter_mut().zip(input) {
                        *g += d * v;
                    }
                }
            }
            if i > 0 {
                // Back through the weights, then through the ReLU.
                let mut previous = layer.backward(&delta, rows);
                for (p, &act) in previous.iter_mut().zip(a.iter()) {
                    if act <= 0.0 {
                        *p = 0.0;
                    }
                }
                delta = previous;
            }
            grads[i] = (gw, gb);
        }
        grads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(hidden: &[usize]) -> MlpSettings<'_> {
        MlpSettings {
            hidden,
            learning_rate: 0.01,
            alpha: 1e-4,
            max_epochs: 200,
            batch_size: 64,
            patience: 10,
            seed: 3,
            frozen_zeros: false,
        }
    }

    /// XOR-like data: no linear model separates it, a hidden layer does.
    fn xor(rows: usize) -> (Matrix, Vec<u8>) {
        let mut rng = SmallRng::seed_from_u64(11);
        let mut data = Vec::new();
        let mut y = Vec::new();
        for _ in 0..rows {
            let a: f64 = rng.random_range(-1.0..1.0);
            let b: f64 = rng.random_range(-1.0..1.0);
            data.extend([a, b]);
            y.push(u8::from(a * b > 0.0));
        }
        (
            Matrix {
                rows,
                cols: 2,
                data,
            },
            y,
        )
    }

    #[test]
    fn learns_a_non_linear_boundary() {
        let (x, y) = xor(2_000);
        let model = Mlp::fit(&x, &y, settings(&[16, 8]));
        let p = model.predict_proba(&x);
        let accuracy = p
            .iter()
            .zip(&y)
            .filter(|(p, y)| (**p >= 0.5) == (**y == 1))
            .count() as f64
            / y.len() as f64;
        assert!(accuracy > 0.9, "accuracy {accuracy}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (x, y) = xor(32);
        let mut rng = SmallRng::seed_from_u64(5);
        let layers = vec![
            Dense::new(2, 3, false, &mut rng),
            Dense::new(3, 1, true, &mut rng),
        ];
        let features: Vec<f32> = x.data.iter().map(|&v| v as f32).collect();
        let batch: Vec<usize> = (0..32).collect();
        let alpha = 0.1;
        let y: Vec<f32> = y.iter().map(|&v| f32::from(v)).collect();
        let grads = Scratch::default().gradients(&layers, &features, 2, &y, &batch, alpha);
        let loss = |layers: &[Dense]| {
            let p = predict(layers, FeatureMajor::from_f32_rows(&features, 2));
            let penalty: f64 = layers
                .iter()
                .flat_map(|l| l.weights.iter())
                .map(|w| f64::from(*w).powi(2))
                .sum::<f64>()
                * alpha
                / 2.0
                / 32.0;
            log_loss(&y, &p) + penalty
        };
        for (l, w) in [(0, 1), (0, 4), (1, 2)] {
            let h = 1e-3;
            let mut plus = layers.clone();
            plus[l].weights[w] += h;
            let mut minus = layers.clone();
            minus[l].weights[w] -= h;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(h));
            let analytic = f64::from(grads[l].0[w]);
            assert!(
                (numeric - analytic).abs() < 2e-3,
                "layer {l} weight {w}: {numeric} vs {analytic}"
            );
        }
    }

    #[test]
    fn early_stopping_ends_training_on_noise() {
        let mut rng = SmallRng::seed_from_u64(2);
        let rows = 1_000;
        let data: Vec<f64> = (0..rows * 3).map(|_| rng.random_range(-1.0..1.0)).collect();
        let y: Vec<u8> = (0..rows).map(|_| u8::from(rng.random::<bool>())).collect();
        let x = Matrix {
            rows,
            cols: 3,
            data,
        };
        let model = Mlp::fit(&x, &y, settings(&[8]));
        assert!(model.epochs < 200, "ran all {} epochs", model.epochs);
    }

    #[test]
    fn batch_kernel_matches_a_plain_forward_pass() {
        let (x, y) = xor(37);
        let model = Mlp::fit(&x, &y, settings(&[6, 5]));
        let batch = model.predict_proba(&x);
        for (r, &p) in batch.iter().enumerate() {
            let mut a: Vec<f32> = x.row(r).iter().map(|&v| v as f32).collect();
            for (i, layer) in model.layers.iter().enumerate() {
                let mut out = Vec::new();
                layer.forward(&a, 1, &mut out);
                if i + 1 < model.layers.len() {
                    out.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                a = out;
            }
            assert!((f64::from(sigmoid(a[0])) - p).abs() < 1e-6, "row {r}");
        }
    }

    #[test]
    fn pruning_zeroes_the_share_and_fine_tuning_keeps_it() {
        let (x, y) = xor(2_000);
        let dense = Mlp::fit(&x, &y, settings(&[16, 8]));
        let pruned = dense.pruned(0.5);
        // 2·16 + 16·8 + 8·1 = 168 weights: 16, 64 and 4 cut per layer.
        assert!(
            (pruned.sparsity() - 0.5).abs() < 0.01,
            "{}",
            pruned.sparsity()
        );
        let tuned = Mlp::fit_from(
            &x,
            &y,
            MlpSettings {
                frozen_zeros: true,
                ..settings(&[16, 8])
            },
            Some(&pruned),
        );
        assert!(
            tuned.sparsity() >= pruned.sparsity(),
            "{}",
            tuned.sparsity()
        );
        let accuracy = |m: &Mlp| {
            m.predict_proba(&x)
                .iter()
                .zip(&y)
                .filter(|(p, y)| (**p >= 0.5) == (**y == 1))
                .count() as f64
                / y.len() as f64
        };
        assert!(accuracy(&tuned) > 0.85, "accuracy {}", accuracy(&tuned));
    }

    #[test]
    fn a_student_learns_the_teachers_scores() {
        let (x, y) = xor(2_000);
        let teacher = Mlp::fit(&x, &y, settings(&[16, 8]));
        let soft = teacher.predict_proba(&x);
        let student = Mlp::fit_soft(&x, &soft, settings(&[8]), None);
        let agreement = student
            .predict_proba(&x)
            .iter()
            .zip(&soft)
            .filter(|(s, t)| (**s >= 0.5) == (**t >= 0.5))
            .count() as f64
            / soft.len() as f64;
        assert!(agreement > 0.9, "agreement {agreement}");
    }
}
