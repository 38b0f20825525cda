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
/// handful of iterations on credit data, where features number in the tens:
/// each iteration is one pass over the rows (loss, gradient and Hessian
/// together, the Hessian over each row's nonzero features only), split
/// across the cores in fixed chunks. A large training set starts from the
/// optimum of a strided subsample, so only the last few iterations, where
/// Newton converges quadratically, read every row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegression {
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    /// Training mean of every feature: the baseline of explanations.
    pub feature_means: Vec<f64>,
}

const MAX_ITERATIONS: usize = 100;

/// Newton stops once the decrease it promises is below this share of the
/// objective.
const TOLERANCE: f64 = 1e-12;

/// Rows of the subsample a cold fit on at least [`SUBSAMPLE_FACTOR`] times
/// as many rows starts from.
const SUBSAMPLE_ROWS: usize = 40_000;
const SUBSAMPLE_FACTOR: usize = 2;

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
        let cold = vec![0.0; x.cols + 1];
        let (start, hessian) = match previous {
            Some(p) if p.coefficients.len() == x.cols => {
                let mut start = p.coefficients.clone();
                start.push(p.intercept);
                (start, None)
            }
            _ if x.rows >= SUBSAMPLE_FACTOR * SUBSAMPLE_ROWS => {
                // Every `stride`-th row, with `C` scaled so that the data
                // term weighs against the penalty as on all rows: its
                // Hessian then estimates the full one. Its optimum needs
                // no precision, the full passes refine it.
                let stride = x.rows / SUBSAMPLE_ROWS;
                let rows: Vec<usize> = (0..x.rows).step_by(stride).collect();
                let labels: Vec<u8> = rows.iter().map(|&i| y[i]).collect();
                let sample = x.take_rows(&rows);
                let scaled = c * x.rows as f64 / rows.len() as f64;
                let (start, hessian) = newton(&sample, &labels, scaled, cold, None, 1e-6)?;
                (start, Some(hessian))
            }
            _ => (cold, None),
        };
        let (mut theta, _) = newton(x, y, c, start, hessian, TOLERANCE)?;
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

/// `row · w` over four partial sums: the additions of one sum wait on
/// each other, four sums overlap.
fn dot(row: &[f64], w: &[f64]) -> f64 {
    let mut sums = [0.0; 4];
    let (row4, row_rest) = row.as_chunks::<4>();
    let (w4, w_rest) = w.as_chunks::<4>();
    for (r, v) in row4.iter().zip(w4) {
        for lane in 0..4 {
            sums[lane] += r[lane] * v[lane];
        }
    }
    let rest: f64 = row_rest.iter().zip(w_rest).map(|(a, b)| a * b).sum();
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + rest
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

/// What a pass over the rows computes besides the loss.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Order {
    Loss,
    Gradient,
    Hessian,
}

/// Newton's method with backtracking from `theta` (coefficients, then the
/// intercept) until the decrease it promises is below `relative_tolerance`
/// of the objective. Returns the optimum and the last Hessian computed.
///
/// Without a Hessian to start with, every pass computes the Hessian
/// (Newton). Given one (a subsample's, at its optimum), it leads the first
/// step only; the Hessian computed where that step lands then leads the
/// following steps, with passes that compute gradients only, at a fraction
/// of the cost (the chord method), for as long as every step shrinks the
/// Newton decrement at least 16×; otherwise the next pass computes the
/// Hessian again.
fn newton(
    x: &Matrix,
    y: &[u8],
    c: f64,
    mut theta: Vec<f64>,
    start_hessian: Option<Vec<f64>>,
    relative_tolerance: f64,
) -> Result<(Vec<f64>, Vec<f64>), TrainError> {
    let d = x.cols + 1;
    let chord = start_hessian.is_some();
    let mut at = evaluate(
        x,
        y,
        c,
        &theta,
        if chord {
            Order::Gradient
        } else {
            Order::Hessian
        },
    );
    let mut hessian = start_hessian.unwrap_or_else(|| std::mem::take(&mut at.hessian));
    let mut refresh = true;
    let mut previous_slope = f64::INFINITY;
    for _ in 0..MAX_ITERATIONS {
        let step = solve(&hessian, &at.gradient).ok_or_else(|| TrainError::NotConverged {
            reason: "the Hessian is singular".into(),
        })?;
        // The Newton decrement: twice the decrease the quadratic model
        // promises. Once that is below the tolerance, the step is taken
        // without another pass over the rows.
        let slope: f64 = at.gradient.iter().zip(&step).map(|(g, s)| g * s).sum();
        let tolerance = relative_tolerance * at.loss.abs().max(1.0);
        if slope / 2.0 <= tolerance {
            for (t, s) in theta.iter_mut().zip(&step) {
                *t -= s;
            }
            break;
        }
        refresh = refresh || !chord || slope > previous_slope / 16.0;
        previous_slope = slope;
        let order = if refresh {
            Order::Hessian
        } else {
            Order::Gradient
        };
        let mut t = 1.0;
        let mut next = theta.clone();
        let mut accepted = loop {
            for i in 0..d {
                next[i] = theta[i] - t * step[i];
            }
            // The full step is nearly always taken: its pass computes the
            // next iteration's derivatives too. Shorter steps are tried on
            // the loss alone.
            let candidate = evaluate(x, y, c, &next, if t == 1.0 { order } else { Order::Loss });
            if candidate.loss <= at.loss - 1e-4 * t * slope || t < 1e-10 {
                break candidate;
            }
            t /= 2.0;
        };
        if t < 1.0 {
            accepted = evaluate(x, y, c, &next, order);
        }
        if refresh {
            hessian = std::mem::take(&mut accepted.hessian);
            refresh = false;
        }
        let moved = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
        let improved = at.loss - accepted.loss;
        theta = next;
        at = accepted;
        if moved < 1e-10 || improved.abs() <= tolerance {
            break;
        }
    }
    if !at.loss.is_finite() || theta.iter().any(|v| !v.is_finite()) {
        return Err(TrainError::NotConverged {
            reason: "the objective is not finite".into(),
        });
    }
    Ok((theta, hessian))
}

/// The objective at some coefficients and, as ordered, its gradient and
/// Hessian (row-major, intercept last); empty when not ordered.
struct Evaluation {
    loss: f64,
    gradient: Vec<f64>,
    hessian: Vec<f64>,
}

/// Rows per chunk of a pass. Chunks' sums are added in chunk order, so a
/// fit gives the same bits whatever the number of threads.
const CHUNK_ROWS: usize = 8_192;

fn evaluate(x: &Matrix, y: &[u8], c: f64, theta: &[f64], order: Order) -> Evaluation {
    let d = x.cols + 1;
    let chunks = x.rows.div_ceil(CHUNK_ROWS).max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(chunks);
    let run = |first: usize| {
        (first..chunks)
            .step_by(threads)
            .map(|k| {
                let rows = k * CHUNK_ROWS..((k + 1) * CHUNK_ROWS).min(x.rows);
                chunk_sums(x, y, theta, rows, order)
            })
            .collect::<Vec<_>>()
    };
    let per_thread: Vec<Vec<Evaluation>> = if threads > 1 {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (1..threads)
                .map(|first| {
                    let run = &run;
                    scope.spawn(move || run(first))
                })
                .collect();
            let mut all = vec![run(0)];
            all.extend(
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a pass thread panicked")),
            );
            all
        })
    } else {
        vec![run(0)]
    };
    let mut per_thread: Vec<_> = per_thread.into_iter().map(Vec::into_iter).collect();
    let mut total = (0..chunks)
        .map(|k| per_thread[k % threads].next().expect("one sum per chunk"))
        .reduce(|mut total, part| {
            total.loss += part.loss;
            for (t, p) in total.gradient.iter_mut().zip(&part.gradient) {
                *t += p;
            }
            for (t, p) in total.hessian.iter_mut().zip(&part.hessian) {
                *t += p;
            }
            total
        })
        .expect("at least one chunk");
    let (w, _) = theta.split_at(x.cols);
    let penalty: f64 = w.iter().map(|v| v * v).sum();
    total.loss = c * total.loss + 0.5 * penalty;
    for v in total.gradient.iter_mut().chain(total.hessian.iter_mut()) {
        *v *= c;
    }
    for (g, v) in total.gradient.iter_mut().zip(w) {
        *g += v;
    }
    if order == Order::Hessian {
        for j in 0..d {
            for k in 0..j {
                total.hessian[j * d + k] = total.hessian[k * d + j];
            }
            if j < x.cols {
                total.hessian[j * d + j] += 1.0;
            }
        }
    }
    total
}

/// The unscaled log-loss of `rows` and, when asked for, its gradient and
/// the upper triangle of its Hessian.
fn chunk_sums(
    x: &Matrix,
    y: &[u8],
    theta: &[f64],
    rows: std::ops::Range<usize>,
    order: Order,
) -> Evaluation {
    let d = x.cols + 1;
    let (w, b) = theta.split_at(x.cols);
    let mut loss = 0.0;
    let mut gradient = if order == Order::Loss {
        Vec::new()
    } else {
        vec![0.0; d]
    };
    let mut hessian = if order == Order::Hessian {
        vec![0.0; d * d]
    } else {
        Vec::new()
    };
    // Positions and values of a row's nonzero features, then the intercept.
    let mut positions = vec![0usize; d];
    let mut nonzero = vec![0.0f64; d];
    for i in rows {
        let row = x.row(i);
        let z = dot(row, w) + b[0];
        let label = f64::from(y[i]);
        // One exponential serves both the loss and the probability.
        let e = (-z.abs()).exp();
        loss += z.max(0.0) + e.ln_1p() - label * z;
        if order == Order::Loss {
            continue;
        }
        let p = if z >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        };
        let residual = p - label;
        let weight = p * (1.0 - p);
        for (g, &v) in gradient.iter_mut().zip(row) {
            *g += residual * v;
        }
        gradient[x.cols] += residual;
        if order == Order::Gradient {
            continue;
        }
        // Without branches: one-hot zeros fall in no predictable pattern.
        let mut n = 0;
        for (j, &v) in row.iter().enumerate() {
            positions[n] = j;
            nonzero[n] = v;
            n += usize::from(v != 0.0);
        }
        positions[n] = x.cols;
        nonzero[n] = 1.0;
        n += 1;
        // Upper triangle only, over the nonzero features (one-hot rows are
        // mostly zeros); mirrored once per pass.
        for a in 0..n {
            let wj = weight * nonzero[a];
            let upper = &mut hessian[positions[a] * d..(positions[a] + 1) * d];
            for (&k, &vk) in positions[a..n].iter().zip(&nonzero[a..n]) {
                upper[k] += wj * vk;
            }
        }
    }
    Evaluation {
        loss,
        gradient,
        hessian,
    }
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
        let gradient = evaluate(&x, &y, 1.0, &theta, Order::Gradient).gradient;
        assert!(gradient.iter().all(|g| g.abs() < 1e-6), "{gradient:?}");
    }

    #[test]
    fn the_subsample_start_reaches_the_cold_optimum() {
        let (x, y) = testdata::logistic(SUBSAMPLE_FACTOR * SUBSAMPLE_ROWS + 1_000, 6);
        let model = LogisticRegression::fit(&x, &y, 1.0).unwrap();
        let (cold, _) = newton(&x, &y, 1.0, vec![0.0; x.cols + 1], None, TOLERANCE).unwrap();
        let (w, b) = cold.split_at(x.cols);
        for (got, want) in model.coefficients.iter().zip(w) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        assert!((model.intercept - b[0]).abs() < 1e-9);
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
