//! Reason codes for the MLP: integrated gradients (Sundararajan, Taly and
//! Yan, "Axiomatic attribution for deep networks", 2017), the attribution
//! Captum gives networks. Feature `j` of row `x` gets
//! `(x_j − b_j) · ∫₀¹ ∂logit/∂x_j (b + α(x − b)) dα` against the baseline
//! `b` (the mean encoded training row), in log-odds; the attributions add
//! up to `logit(x) − logit(b)` (completeness).
//!
//! The integral is exact, not sampled. A ReLU network is piecewise linear,
//! so along the straight path its gradient is piecewise constant and jumps
//! only where a hidden unit's pre-activation crosses zero. The walk below
//! finds those crossings one after the other (within a piece every
//! pre-activation is linear in `α`, so the next zero is a division) and
//! adds each piece's gradient times its length. A fixed-step sum over a
//! step function is off by up to half a step's share of every jump: with
//! the default 64-32 network, one-hot encoding, on every row, 32 / 64 / 256
//! trapezoid steps missed completeness by 0.026 / 0.012 / 0.004 log-odds at
//! the worst row of germancredit and 0.14 / 0.089 / 0.012 on credit_data;
//! the walk by 7e-7 and 1.5e-5 (float rounding). It costs one forward and
//! one backward pass per piece through the layers after the first, and
//! rows there crossed 25 and 29 kinks on average: fewer than 32 steps.

use kaskad_prepare::Matrix;

use crate::{Dense, Mlp, QuantizedMlp};

/// The mean of every column of `x`.
pub(crate) fn column_means(x: &Matrix) -> Vec<f64> {
    let mut means = vec![0.0; x.cols];
    for i in 0..x.rows {
        for (mean, v) in means.iter_mut().zip(x.row(i)) {
            *mean += v / x.rows as f64;
        }
    }
    means
}

impl Mlp {
    /// Integrated gradients of the logit against [`Mlp::baseline`] (the
    /// zero vector for an artifact without one: the mean of standardized
    /// numbers; one-hot slots, missing flags and WoE then start from
    /// "none", "present" and neutral evidence).
    pub fn contributions(&self, x: &Matrix) -> Matrix {
        integrated_gradients(&self.layers, &self.baseline, x)
    }
}

impl QuantizedMlp {
    /// Integrated gradients of the network with the dequantized weights
    /// (the fp32 weights are not kept): the reason codes of the model the
    /// INT8 one approximates. Completeness holds for that network; the INT8
    /// logit differs from it by the quantization error.
    pub fn contributions(&self, x: &Matrix) -> Matrix {
        let layers: Vec<Dense> = self
            .layers
            .iter()
            .map(|l| Dense {
                inputs: l.inputs,
                outputs: l.outputs,
                weights: l
                    .weights
                    .iter()
                    .enumerate()
                    .map(|(k, &q)| f32::from(q) * l.scales[k / l.inputs.max(1)])
                    .collect(),
                bias: l.bias.clone(),
            })
            .collect();
        integrated_gradients(&layers, &self.baseline, x)
    }
}

fn integrated_gradients(layers: &[Dense], baseline: &[f64], x: &Matrix) -> Matrix {
    let mut out = Matrix::zeros(x.rows, x.cols);
    let Some(first) = layers.first() else {
        return out;
    };
    if out.data.is_empty() {
        return out;
    }
    let zeros = vec![0.0; x.cols];
    let baseline = if baseline.len() == x.cols {
        baseline
    } else {
        &zeros
    };
    let hidden_units: usize = layers.iter().rev().skip(1).map(|l| l.outputs).sum();
    // A deeper unit can cross zero more than once; past this many pieces
    // (never reached on fitted networks) the last piece runs to the row.
    let max_pieces = 4 * hidden_units + 8;
    // The first layer's pre-activations are linear along the whole path
    // (no ReLU before them): computed at both ends once, interpolated per
    // piece. Its gradient is constant too, so the pieces' gradients are
    // summed at its outputs and taken back through its weights once per row.
    let mut at_baseline = Vec::new();
    let start: Vec<f32> = baseline.iter().map(|&v| v as f32).collect();
    first.forward(&start, 1, &mut at_baseline);
    let path = Path {
        layers,
        baseline,
        at_baseline: &at_baseline,
        max_pieces,
    };
    // Rows are independent: large batches are split across the cores.
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(x.rows / ROWS_PER_THREAD)
        .max(1);
    if threads == 1 {
        path.attribute(x, 0, &mut out.data);
        return out;
    }
    let rows_per_thread = x.rows.div_ceil(threads);
    std::thread::scope(|scope| {
        for (k, chunk) in out.data.chunks_mut(rows_per_thread * x.cols).enumerate() {
            let path = &path;
            scope.spawn(move || path.attribute(x, k * rows_per_thread, chunk));
        }
    });
    out
}

/// Fewer rows than this per core are explained on the calling thread.
const ROWS_PER_THREAD: usize = 512;

/// What every row's walk shares.
struct Path<'a> {
    layers: &'a [Dense],
    baseline: &'a [f64],
    /// The first layer's pre-activations at the baseline.
    at_baseline: &'a [f32],
    max_pieces: usize,
}

impl Path<'_> {
    /// Attributions of the rows of `x` from `first_row` on, into `out`
    /// (rows × features).
    fn attribute(&self, x: &Matrix, first_row: usize, out: &mut [f64]) {
        let first = &self.layers[0];
        let mut at_row = Vec::new();
        let mut integral = vec![0.0f64; first.outputs];
        let mut walk = Walk::default();
        for (i, attribution) in out.chunks_mut(x.cols).enumerate() {
            let values = x.row(first_row + i);
            let row: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            first.forward(&row, 1, &mut at_row);
            integral.fill(0.0);
            let mut alpha = 0.0f64;
            for piece in 1..=self.max_pieces {
                walk.ends.clear();
                walk.ends.extend(
                    self.at_baseline
                        .iter()
                        .zip(&at_row)
                        .map(|(&b, &e)| (f64::from(b) + alpha * f64::from(e - b)) as f32),
                );
                walk.ends.extend_from_slice(&at_row);
                let crossing = walk.linear_piece(self.layers);
                let end = if crossing >= 1.0 || piece == self.max_pieces {
                    1.0
                } else {
                    alpha + crossing * (1.0 - alpha)
                };
                for (sum, g) in integral
                    .iter_mut()
                    .zip(walk.first_layer_gradient(self.layers))
                {
                    *sum += f64::from(g) * (end - alpha);
                }
                alpha = end;
                if alpha >= 1.0 {
                    break;
                }
            }
            let summed: Vec<f32> = integral.iter().map(|&v| v as f32).collect();
            let gradient = first.backward(&summed, 1);
            for (j, a) in attribution.iter_mut().enumerate() {
                *a = f64::from(gradient[j]) * (values[j] - self.baseline[j]);
            }
        }
    }
}

/// A unit whose zero lies within this fraction of the remaining path is at
/// its kink now: its state on the piece ahead is that of its direction.
const AT_KINK: f64 = 1e-5;

/// Buffers of one walk, reused across pieces and rows.
#[derive(Default)]
struct Walk {
    /// Two rows of the first layer's pre-activations: where the piece
    /// starts, and at the row (where the path ends).
    ends: Vec<f32>,
    next: Vec<f32>,
    /// Per hidden layer, 1 for a unit active on the piece ahead, 0 if not.
    patterns: Vec<Vec<f32>>,
}

impl Walk {
    /// Follows the network from the first row of `ends` towards the second
    /// with the ReLU states that hold just after the first (so the network
    /// is one linear map on the way), records those states in `patterns`,
    /// and returns the fraction of the way at which the first hidden unit
    /// changes state (1 or more if none does before the end).
    fn linear_piece(&mut self, layers: &[Dense]) -> f64 {
        let hidden = layers.len().saturating_sub(1);
        self.patterns.resize(hidden, Vec::new());
        let mut crossing = 1.0f64;
        for i in 0..hidden {
            let (start, end) = self.ends.split_at_mut(layers[i].outputs);
            let pattern = &mut self.patterns[i];
            pattern.clear();
            for (s, e) in start.iter_mut().zip(end.iter_mut()) {
                let (s64, e64) = (f64::from(*s), f64::from(*e));
                let zero_at = if s64 == e64 {
                    f64::INFINITY
                } else {
                    s64 / (s64 - e64)
                };
                let active = if zero_at.abs() <= AT_KINK {
                    e64 > s64
                } else {
                    s64 > 0.0
                };
                if zero_at > AT_KINK {
                    crossing = crossing.min(zero_at);
                }
                pattern.push(if active { 1.0 } else { 0.0 });
                if !active {
                    (*s, *e) = (0.0, 0.0);
                }
            }
            if i + 1 < hidden {
                layers[i + 1].forward(&self.ends, 2, &mut self.next);
                std::mem::swap(&mut self.ends, &mut self.next);
            }
        }
        crossing
    }

    /// The gradient of the logit with respect to the first layer's
    /// pre-activations, with the ReLU states of the last
    /// [`Walk::linear_piece`].
    fn first_layer_gradient(&self, layers: &[Dense]) -> Vec<f32> {
        let mut delta = vec![1.0f32];
        for i in (1..layers.len()).rev() {
            delta = layers[i].backward(&delta, 1);
            for (d, on) in delta.iter_mut().zip(&self.patterns[i - 1]) {
                *d *= on;
            }
        }
        delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Hyperparams, LogisticRegression, Model, fit, testdata};

    fn logit(p: f64) -> f64 {
        (p / (1.0 - p)).ln()
    }

    /// `logit(x) − logit(baseline)` for every row, from the model's scores.
    fn logit_gaps(model: &Model, x: &Matrix, baseline: &[f64]) -> Vec<f64> {
        let start = Matrix {
            rows: 1,
            cols: x.cols,
            data: baseline.to_vec(),
        };
        let from = logit(model.predict_proba(&start)[0]);
        model
            .predict_proba(x)
            .iter()
            .map(|&p| logit(p) - from)
            .collect()
    }

    fn mlp(hidden: Vec<usize>) -> Hyperparams {
        Hyperparams::Mlp {
            hidden,
            learning_rate: 0.01,
            alpha: 1e-4,
            max_epochs: 60,
        }
    }

    #[test]
    fn attributions_add_up_to_the_logit_gap() {
        let (x, y) = testdata::logistic(2_000, 31);
        let model = fit(&x, &y, &mlp(vec![16, 8]), 5).unwrap();
        let Model::Mlp(network) = &model else {
            panic!("an mlp")
        };
        let c = model.contributions(&x);
        let gaps = logit_gaps(&model, &x, &network.baseline);
        for (r, gap) in gaps.iter().enumerate() {
            let sum: f64 = c.row(r).iter().sum();
            assert!((sum - gap).abs() < 1e-3, "row {r}: {sum} vs {gap}");
        }
        // The noise feature (the third) explains least on average.
        let mean_abs =
            |j: usize| (0..c.rows).map(|r| c.row(r)[j].abs()).sum::<f64>() / c.rows as f64;
        assert!(mean_abs(2) < mean_abs(0) / 3.0 && mean_abs(2) < mean_abs(1) / 3.0);
    }

    #[test]
    fn the_walk_agrees_with_a_fine_riemann_sum() {
        let (x, y) = testdata::logistic(1_000, 32);
        let Model::Mlp(network) = fit(&x, &y, &mlp(vec![12, 6]), 6).unwrap() else {
            panic!("an mlp")
        };
        let exact = network.contributions(&x);
        let steps = 20_000;
        let mut walk = Walk::default();
        for r in 0..20 {
            let row = x.row(r);
            let mut riemann = vec![0.0f64; x.cols];
            for k in 0..steps {
                let alpha = (k as f64 + 0.5) / steps as f64;
                let ends: Vec<f32> = row
                    .iter()
                    .zip(&network.baseline)
                    .map(|(v, b)| (b + alpha * (v - b)) as f32)
                    .chain(row.iter().map(|&v| v as f32))
                    .collect();
                let first = &network.layers[0];
                first.forward(&ends, 2, &mut walk.ends);
                walk.linear_piece(&network.layers);
                let g = first.backward(&walk.first_layer_gradient(&network.layers), 1);
                for (j, s) in riemann.iter_mut().enumerate() {
                    *s += f64::from(g[j]) * (row[j] - network.baseline[j]) / steps as f64;
                }
            }
            for (j, s) in riemann.iter().enumerate() {
                let e = exact.row(r)[j];
                assert!((e - s).abs() < 1e-3, "row {r} feature {j}: {e} vs {s}");
            }
        }
    }

    #[test]
    fn an_always_active_hidden_layer_gives_linear_shap() {
        // Hidden units with large biases never switch off on the path, so
        // the network is the linear model w₂ᵀ(W₁x + b₁) + b₂.
        let w1 = [0.5f32, -1.0, 0.25, 2.0, 0.0, -0.75];
        let w2 = [1.5f32, -0.5];
        let network = Mlp {
            layers: vec![
                Dense {
                    inputs: 3,
                    outputs: 2,
                    weights: w1.to_vec(),
                    bias: vec![50.0, 50.0],
                },
                Dense {
                    inputs: 2,
                    outputs: 1,
                    weights: w2.to_vec(),
                    bias: vec![-0.3],
                },
            ],
            epochs: 0,
            baseline: vec![0.2, -0.1, 0.4],
        };
        let linear = LogisticRegression {
            coefficients: (0..3)
                .map(|j| f64::from(w2[0] * w1[j] + w2[1] * w1[3 + j]))
                .collect(),
            intercept: 0.0,
            feature_means: network.baseline.clone(),
        };
        let (x, _) = testdata::logistic(50, 33);
        let (ours, shap) = (network.contributions(&x), linear.contributions(&x));
        for (a, b) in ours.data.iter().zip(&shap.data) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn a_feature_the_network_ignores_gets_nothing() {
        // Only the second input reaches the hidden layer.
        let network = Mlp {
            layers: vec![
                Dense {
                    inputs: 3,
                    outputs: 3,
                    weights: vec![0.0, 1.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.7, 0.0],
                    bias: vec![0.1, 0.3, -0.2],
                },
                Dense {
                    inputs: 3,
                    outputs: 1,
                    weights: vec![1.0, 0.8, -1.2],
                    bias: vec![0.0],
                },
            ],
            epochs: 0,
            baseline: Vec::new(),
        };
        let (x, _) = testdata::logistic(50, 34);
        let model = Model::Mlp(network);
        let c = model.contributions(&x);
        let gaps = logit_gaps(&model, &x, &[0.0; 3]);
        for (r, gap) in gaps.iter().enumerate() {
            let row = c.row(r);
            assert_eq!((row[0], row[2]), (0.0, 0.0), "row {r}");
            assert!((row[1] - gap).abs() < 1e-4, "row {r}");
        }
    }

    #[test]
    fn an_update_keeps_the_mean_of_every_training_row() {
        let (x, y) = testdata::logistic(1_000, 37);
        let old: Vec<usize> = (0..600).collect();
        let new: Vec<usize> = (600..1_000).collect();
        let (old_x, new_x) = (x.take_rows(&old), x.take_rows(&new));
        let params = mlp(vec![4]);
        let previous = fit(&old_x, &y[..600], &params, 9).unwrap();
        let rows = crate::Increment {
            all: (&x, &y),
            new: (&new_x, &y[600..]),
        };
        let (Model::Mlp(updated), crate::TrainMode::Incremental) =
            crate::update(&previous, &rows, &params, 9).unwrap()
        else {
            panic!("the mlp continues training")
        };
        assert_eq!(updated.baseline, column_means(&x));
    }

    #[test]
    fn an_artifact_without_a_baseline_still_reads() {
        let (x, y) = testdata::logistic(300, 36);
        let model = fit(&x, &y, &mlp(vec![4]), 8).unwrap();
        let mut json = serde_json::to_value(&model).unwrap();
        assert_eq!(json["baseline"].as_str().map(str::is_empty), Some(false));
        json.as_object_mut().unwrap().remove("baseline");
        let Model::Mlp(old) = serde_json::from_value(json).unwrap() else {
            panic!("an mlp")
        };
        assert!(old.baseline.is_empty());
        let gaps = logit_gaps(&Model::Mlp(old.clone()), &x, &[0.0; 3]);
        let c = old.contributions(&x);
        for (r, gap) in gaps.iter().enumerate() {
            let sum: f64 = c.row(r).iter().sum();
            assert!((sum - gap).abs() < 1e-3, "row {r}: {sum} vs {gap}");
        }
    }

    #[test]
    fn int8_mlp_explains_close_to_the_original() {
        let (x, y) = testdata::logistic(2_000, 35);
        let model = fit(&x, &y, &mlp(vec![16, 8]), 7).unwrap();
        let quantized = model.quantized_int8().unwrap();
        let (exact, approx) = (model.contributions(&x), quantized.contributions(&x));
        // Weights move by at most half a step (1/254 of their channel's
        // largest); attributions moved by 3 % of the largest one here, and
        // the top reason stayed on every row.
        let largest = |m: &Matrix| m.data.iter().fold(0.0f64, |w, a| w.max(a.abs()));
        let difference = Matrix {
            data: exact
                .data
                .iter()
                .zip(&approx.data)
                .map(|(a, b)| a - b)
                .collect(),
            ..exact
        };
        let top =
            |m: &Matrix, r: usize| (0..m.cols).max_by(|&i, &j| m.row(r)[i].total_cmp(&m.row(r)[j]));
        let same_top = (0..x.rows)
            .filter(|&r| top(&exact, r) == top(&approx, r))
            .count();
        assert!(largest(&difference) < 0.05 * largest(&exact));
        assert!(same_top as f64 > 0.98 * x.rows as f64, "{same_top}");
    }
}
