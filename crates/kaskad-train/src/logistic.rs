use kaskad_prepare::Matrix;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::gradients::column_means;
use crate::linalg::cholesky_solve;

/// L2-penalized logistic regression.
///
/// Minimizes `C · Σ log-loss + ½‖w‖²` with the intercept unpenalized, the
/// objective of scikit-learn's `LogisticRegression(C=…)`, so the same `C`
/// gives the same model. Newton's method with backtracking converges in a
/// handful of iterations on credit data, where features number in the tens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegression {
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    /// Training mean of every feature: the baseline of explanations.
    pub feature_means: Vec<f64>,
}

const MAX_ITERATIONS: usize = 100;

impl LogisticRegression {
    pub fn fit(x: &Matrix, y: &[u8], c: f64) -> Result<Self, TrainError> {
        Self::fit_from(x, y, c, None)
    }

    /// Newton's method started from `previous`'s coefficients (a warm
    /// start): on data that grew by a batch, the optimum moved little, so a
    /// few iterations reach it. Same optimum as a cold fit.
    pub fn fit_from(
        x: &Matrix,
        y: &[u8],
        c: f64,
        previous: Option<&LogisticRegression>,
    ) -> Result<Self, TrainError> {
        let d = x.cols + 1;
        let mut theta = match previous {
            Some(p) if p.coefficients.len() == x.cols => {
                let mut start = p.coefficients.clone();
                start.push(p.intercept);
                start
            }
            _ => vec![0.0; d],
        };
        let mut loss = objective(x, y, c, &theta);
        for _ in 0..MAX_ITERATIONS {
            let (gradient, hessian) = gradient_and_hessian(x, y, c, &theta);
            let step = solve(&hessian, &gradient).ok_or_else(|| TrainError::NotConverged {
                reason: "the Hessian is singular".into(),
            })?;
            let slope: f64 = gradient.iter().zip(&step).map(|(g, s)| g * s).sum();
            let mut t = 1.0;
            let mut next = theta.clone();
            let mut next_loss;
            loop {
                for i in 0..d {
                    next[i] = theta[i] - t * step[i];
                }
                next_loss = objective(x, y, c, &next);
                if next_loss <= loss - 1e-4 * t * slope || t < 1e-10 {
                    break;
                }
                t /= 2.0;
            }
            let moved = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
            let improved = loss - next_loss;
            theta = next;
            loss = next_loss;
            if moved < 1e-10 || improved.abs() <= 1e-12 * loss.abs().max(1.0) {
                break;
            }
        }
        if !loss.is_finite() {
            return Err(TrainError::NotConverged {
                reason: "the objective is not finite".into(),
            });
        }
        let intercept = theta.pop().unwrap_or(0.0);
        Ok(Self {
            coefficients: theta,
            intercept,
            feature_means: column_means(x),
        })
    }

    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .map(|i| sigmoid(linear(x.row(i), &self.coefficients, self.intercept)))
            .collect()
    }
}

impl LogisticRegression {
    /// Exact SHAP values of the log-odds for a linear model with independent
    /// features: `w_j · (x_j − mean_j)`.
    pub fn contributions(&self, x: &Matrix) -> Matrix {
        let mut out = Matrix::zeros(x.rows, x.cols);
        for i in 0..x.rows {
            for (j, v) in x.row(i).iter().enumerate() {
                out.data[i * x.cols + j] = self.coefficients[j] * (v - self.feature_means[j]);
            }
        }
        out
    }
}

fn linear(row: &[f64], w: &[f64], b: f64) -> f64 {
    row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() + b
}

/// The logistic function, without overflow for large `|z|`: the
/// probability of a log-odds, as LR and boosted trees compute it.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `log(1 + e^z)` without overflow.
pub(crate) fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn objective(x: &Matrix, y: &[u8], c: f64, theta: &[f64]) -> f64 {
    let (w, b) = theta.split_at(x.cols);
    let data: f64 = (0..x.rows)
        .map(|i| {
            let z = linear(x.row(i), w, b[0]);
            softplus(z) - f64::from(y[i]) * z
        })
        .sum();
    c * data + 0.5 * w.iter().map(|v| v * v).sum::<f64>()
}

/// The gradient and the Hessian (row-major, intercept last) of the objective.
fn gradient_and_hessian(x: &Matrix, y: &[u8], c: f64, theta: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let d = x.cols + 1;
    let (w, b) = theta.split_at(x.cols);
    let mut gradient = vec![0.0; d];
    let mut hessian = vec![0.0; d * d];
    let mut augmented = vec![1.0; d];
    for (i, &label) in y.iter().enumerate() {
        augmented[..x.cols].copy_from_slice(x.row(i));
        let p = sigmoid(linear(x.row(i), w, b[0]));
        let residual = c * (p - f64::from(label));
        let weight = c * p * (1.0 - p);
        for j in 0..d {
            gradient[j] += residual * augmented[j];
            let wj = weight * augmented[j];
            if wj != 0.0 {
                // Upper triangle only; mirrored below.
                for k in j..d {
                    hessian[j * d + k] += wj * augmented[k];
                }
            }
        }
    }
    for j in 0..d {
        for k in 0..j {
            hessian[j * d + k] = hessian[k * d + j];
        }
        if j < x.cols {
            gradient[j] += w[j];
            hessian[j * d + j] += 1.0;
        }
    }
    (gradient, hessian)
}

/// Newton direction; a tiny ridge rescues a Hessian that lost definiteness to
/// rounding (perfectly separated rows push probabilities to 0 and 1).
fn solve(hessian: &[f64], gradient: &[f64]) -> Option<Vec<f64>> {
    cholesky_solve(hessian, gradient).or_else(|| {
        let d = gradient.len();
        let mut ridged = hessian.to_vec();
        let trace: f64 = (0..d).map(|i| hessian[i * d + i]).sum();
        for i in 0..d {
            ridged[i * d + i] += 1e-8 * trace.max(1.0);
        }
        cholesky_solve(&ridged, gradient)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn recovers_known_coefficients() {
        let (x, y) = testdata::logistic(20_000, 3);
        let model = LogisticRegression::fit(&x, &y, 1e6).unwrap();
        let expected = [1.5, -2.0, 0.0];
        for (got, want) in model.coefficients.iter().zip(expected) {
            assert!((got - want).abs() < 0.1, "{got} vs {want}");
        }
        assert!((model.intercept + 0.5).abs() < 0.1, "{}", model.intercept);
    }

    #[test]
    fn stronger_penalty_shrinks_coefficients() {
        let (x, y) = testdata::logistic(2_000, 4);
        let loose = LogisticRegression::fit(&x, &y, 10.0).unwrap();
        let tight = LogisticRegression::fit(&x, &y, 0.0001).unwrap();
        let norm = |m: &LogisticRegression| m.coefficients.iter().map(|v| v * v).sum::<f64>();
        assert!(norm(&tight) < norm(&loose) / 10.0);
    }

    #[test]
    fn gradient_vanishes_at_the_optimum() {
        let (x, y) = testdata::logistic(1_000, 5);
        let model = LogisticRegression::fit(&x, &y, 1.0).unwrap();
        let mut theta = model.coefficients.clone();
        theta.push(model.intercept);
        let (gradient, _) = gradient_and_hessian(&x, &y, 1.0, &theta);
        assert!(gradient.iter().all(|g| g.abs() < 1e-6), "{gradient:?}");
    }

    #[test]
    fn contributions_add_up_to_the_log_odds_minus_the_baseline() {
        let (x, y) = testdata::logistic(500, 8);
        let model = LogisticRegression::fit(&x, &y, 1.0).unwrap();
        let c = model.contributions(&x);
        let baseline = linear(&model.feature_means, &model.coefficients, model.intercept);
        for i in 0..x.rows {
            let log_odds = linear(x.row(i), &model.coefficients, model.intercept);
            let sum: f64 = c.row(i).iter().sum();
            assert!((baseline + sum - log_odds).abs() < 1e-9);
        }
    }

    #[test]
    fn warm_start_reaches_the_cold_optimum() {
        let (x, y) = testdata::logistic(3_000, 10);
        let first = x.take_rows(&(0..2_000).collect::<Vec<_>>());
        let previous = LogisticRegression::fit(&first, &y[..2_000], 1.0).unwrap();
        let warm = LogisticRegression::fit_from(&x, &y, 1.0, Some(&previous)).unwrap();
        let cold = LogisticRegression::fit(&x, &y, 1.0).unwrap();
        for (a, b) in warm.coefficients.iter().zip(&cold.coefficients) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn matches_scikit_learn() {
        // The data and numbers of bench/peers/reference_values.py
        // (scikit-learn 1.7, LogisticRegression(C=1, tol=1e-12)).
        let rows = 60;
        let data: Vec<f64> = (0..rows)
            .flat_map(|i| {
                [
                    (i % 7) as f64 - 3.0,
                    ((i * 3) % 11) as f64 / 2.0,
                    ((i * 5) % 13) as f64 - 6.0,
                ]
            })
            .collect();
        let y: Vec<u8> = (0..rows)
            .map(|i| u8::from((i * 7) % 10 < 3 + (i % 7) / 2))
            .collect();
        let x = Matrix {
            rows,
            cols: 3,
            data,
        };
        let model = LogisticRegression::fit(&x, &y, 1.0).unwrap();
        let coefficients = [
            0.21000063798823432,
            5.9906644043630776e-05,
            -0.06887619692432097,
        ];
        for (got, want) in model.coefficients.iter().zip(coefficients) {
            assert!((got - want).abs() < 1e-7, "{got} vs {want}");
        }
        assert!((model.intercept - -0.33377353959014344).abs() < 1e-7);
        let p = model.predict_proba(&x.take_rows(&[0, 1, 2, 3]));
        let expected = [
            0.36574417428311506,
            0.33518888395022595,
            0.3059548985504043,
            0.48550427029373483,
        ];
        for (got, want) in p.iter().zip(expected) {
            assert!((got - want).abs() < 1e-8, "{got} vs {want}");
        }
    }

    #[test]
    fn separable_data_still_fits() {
        let x = Matrix {
            rows: 4,
            cols: 1,
            data: vec![-2.0, -1.0, 1.0, 2.0],
        };
        let model = LogisticRegression::fit(&x, &[0, 0, 1, 1], 1e4).unwrap();
        let p = model.predict_proba(&x);
        assert!(p[0] < 0.01 && p[3] > 0.99, "{p:?}");
    }
}
