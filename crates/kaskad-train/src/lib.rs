//! Stage 4 of the pipeline: the model families and their hyperparameters.
//!
//! `kaskad-train` owns how a model is fitted on a prepared [`Matrix`] and how
//! it scores one: L2 logistic regression (Newton's method, with
//! scikit-learn's `C` meaning), a CART decision tree (Gini, histogram split
//! search), k-nearest neighbours (exact, distances by blocked matrix
//! products, over a seeded sample of the training rows) and
//! gradient-boosted trees (LightGBM-style: histograms, leaf-wise growth,
//! native missing values, early stopping on the newest rows), and a small
//! MLP; and how each explains a score: per-feature contributions for reason
//! codes ([`Model::contributions`]).
//! [`Hyperparams`] names a family with its settings and
//! [`grid`] expands the configured search space. Models serialize, so they
//! travel inside the artifact; choosing among them is `kaskad-validate`'s
//! and the pipeline's job, not this crate's.

mod derived;
mod error;
mod flat_forest;
mod gbdt;
mod gradients;
mod histogram;
mod kernels;
mod knn;
mod knn_index;
mod linalg;
mod logistic;
mod mlp;
mod neighbours;
mod params;
mod quantize;
mod shap;
mod tensor;
mod tree;

use kaskad_prepare::Matrix;
use serde::{Deserialize, Serialize};

pub use error::TrainError;
pub use flat_forest::FlatForest;
pub use gbdt::{BoostedTree, GbdtParams, GradientBoosting};
pub use knn::NearestNeighbours;
pub use logistic::{LogisticRegression, sigmoid};
pub use mlp::{Dense, Mlp, MlpSettings};
pub use neighbours::Neighbour;
pub use params::{Hyperparams, grid};
pub use quantize::{QuantizedDense, QuantizedLr, QuantizedMlp};
pub use tree::{DecisionTree, Node};

/// A fitted model of any family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "lowercase")]
pub enum Model {
    Lr(LogisticRegression),
    Tree(DecisionTree),
    Knn(NearestNeighbours),
    Gbdt(GradientBoosting),
    Mlp(Mlp),
    /// Logistic regression with INT8 coefficients and features.
    #[serde(rename = "lr_int8")]
    LrInt8(QuantizedLr),
    /// The MLP with INT8 weights and activations.
    #[serde(rename = "mlp_int8")]
    MlpInt8(QuantizedMlp),
}

impl Model {
    /// The probability of the positive class for every row.
    pub fn predict_proba(&self, x: &Matrix) -> Vec<f64> {
        match self {
            Model::Lr(m) => m.predict_proba(x),
            Model::Tree(m) => m.predict_proba(x),
            Model::Knn(m) => m.predict_proba(x),
            Model::Gbdt(m) => m.predict_proba(x),
            Model::Mlp(m) => m.predict_proba(x),
            Model::LrInt8(m) => m.predict_proba(x),
            Model::MlpInt8(m) => m.predict_proba(x),
        }
    }

    /// Builds what scoring derives from the model and keeps (the kNN
    /// search index, the INT8 MLP's kernel layout, the boosted trees'
    /// TreeSHAP tables), so that a server pays
    /// for it when it loads the model rather than in the first request.
    pub fn prepare_for_scoring(&self) {
        match self {
            Model::Knn(m) => {
                m.index();
            }
            Model::MlpInt8(m) => {
                m.kernel_weights();
            }
            Model::Gbdt(m) => {
                m.shap_tables();
            }
            Model::Lr(_) | Model::Tree(_) | Model::Mlp(_) | Model::LrInt8(_) => {}
        }
    }

    /// The numbers the model computes with: `int8` for quantized models,
    /// `fp32` for the MLP, `fp64` for the other families.
    pub fn precision(&self) -> &'static str {
        match self {
            Model::LrInt8(_) | Model::MlpInt8(_) => "int8",
            Model::Mlp(_) => "fp32",
            Model::Lr(_) | Model::Tree(_) | Model::Knn(_) | Model::Gbdt(_) => "fp64",
        }
    }

    /// The model with INT8 weights and activations (see the `quantize`
    /// module); only logistic regression and the MLP have a form in INT8.
    pub fn quantized_int8(&self) -> Result<Model, TrainError> {
        let refuse = |family, reason| Err(TrainError::NotQuantizable { family, reason });
        match self {
            Model::Lr(m) => Ok(Model::LrInt8(QuantizedLr::new(m))),
            Model::Mlp(m) => Ok(Model::MlpInt8(QuantizedMlp::new(m)?)),
            Model::Tree(_) => refuse(
                "a decision tree",
                "it compares features with thresholds; it has no products to quantize",
            ),
            Model::Gbdt(_) => refuse(
                "gradient-boosted trees",
                "they compare features with thresholds; they have no products to quantize",
            ),
            Model::Knn(_) => refuse(
                "k-nearest neighbours",
                "its model is the stored training rows",
            ),
            Model::LrInt8(_) | Model::MlpInt8(_) => refuse("this model", "it is INT8 already"),
        }
    }

    /// Per-row, per-feature contributions towards default: exact SHAP
    /// values where the family has them (linear SHAP for LR, log-odds,
    /// against the training mean; TreeSHAP for the tree, probability, from
    /// the root's rate, and for boosted trees, log-odds, from the expected
    /// raw score); for kNN, each feature's pull towards the defaulting
    /// neighbours (see [`NearestNeighbours::contributions`]; not SHAP, in
    /// squared encoded distance); for the MLP, integrated gradients of the
    /// log-odds against the mean training row, computed exactly along the
    /// path (see the `gradients` module; they add up to the log-odds minus
    /// the baseline's, as SHAP values do, and reduce to linear SHAP where
    /// the network is linear). The INT8 models explain with their
    /// dequantized weights.
    pub fn contributions(&self, x: &Matrix) -> Matrix {
        match self {
            Model::Lr(m) => m.contributions(x),
            Model::Tree(m) => m.contributions(x),
            Model::Gbdt(m) => m.contributions(x),
            Model::Knn(m) => m.contributions(x),
            Model::Mlp(m) => m.contributions(x),
            Model::LrInt8(m) => m.contributions(x),
            Model::MlpInt8(m) => m.contributions(x),
        }
    }
}

/// Fits the family `params` names on rows `x` with 0/1 labels `y`.
pub fn fit(x: &Matrix, y: &[u8], params: &Hyperparams, seed: u64) -> Result<Model, TrainError> {
    if x.rows != y.len() {
        return Err(TrainError::LengthMismatch {
            rows: x.rows,
            labels: y.len(),
        });
    }
    let positives = y.iter().filter(|&&v| v == 1).count();
    if positives == 0 || positives == y.len() {
        return Err(TrainError::SingleClass { rows: y.len() });
    }
    Ok(match *params {
        Hyperparams::Lr { c } => Model::Lr(LogisticRegression::fit(x, y, c)?),
        Hyperparams::Tree {
            max_depth,
            min_samples_leaf,
        } => Model::Tree(DecisionTree::fit(x, y, max_depth, min_samples_leaf)),
        Hyperparams::Knn { k, max_rows } => {
            Model::Knn(NearestNeighbours::fit(x, y, k, max_rows, seed))
        }
        Hyperparams::Gbdt {
            n_trees,
            learning_rate,
            max_leaves,
            min_samples_leaf,
        } => Model::Gbdt(GradientBoosting::fit(
            x,
            y,
            &GbdtParams {
                n_trees,
                learning_rate,
                max_leaves,
                min_samples_leaf,
                ..GbdtParams::default()
            },
        )?),
        Hyperparams::Mlp {
            ref hidden,
            learning_rate,
            alpha,
            max_epochs,
        } => Model::Mlp(Mlp::fit(
            x,
            y,
            mlp_settings(hidden, learning_rate, alpha, max_epochs, seed),
        )),
    })
}

/// Rows for an incremental update: every training row (for families that
/// warm-start on all of them) and the rows that arrived since the previous
/// model was fitted (for families that add to what they learned).
pub struct Increment<'a> {
    pub all: (&'a Matrix, &'a [u8]),
    pub new: (&'a Matrix, &'a [u8]),
}

/// How a model came to be: fitted from scratch, or updated from a previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainMode {
    Full,
    Incremental,
}

/// Updates `previous` without retraining from scratch, per family:
/// LR warm-starts Newton from its coefficients on all rows; GBDT keeps its
/// trees and boosts more on the new rows; the MLP continues from its weights
/// on the new rows; kNN offers the new rows to its reservoir. A CART tree
/// cannot be updated exactly (a new row can change every split above it),
/// and refitting it is cheap, so it is refitted on all rows: the mode says
/// `Full`. A family change, or new rows with a single class (nothing to
/// learn a boundary from), also fall back to a full fit.
pub fn update(
    previous: &Model,
    rows: &Increment<'_>,
    params: &Hyperparams,
    seed: u64,
) -> Result<(Model, TrainMode), TrainError> {
    let (all_x, all_y) = rows.all;
    let (new_x, new_y) = rows.new;
    let new_positives = new_y.iter().filter(|&&v| v == 1).count();
    let both_classes = new_positives > 0 && new_positives < new_y.len();
    let updated = match (previous, params) {
        (Model::Lr(m), Hyperparams::Lr { c }) => {
            Model::Lr(LogisticRegression::fit_from(all_x, all_y, *c, Some(m))?)
        }
        (Model::Knn(m), Hyperparams::Knn { k, max_rows }) => {
            Model::Knn(m.append(new_x, new_y, *k, *max_rows, seed))
        }
        (
            Model::Gbdt(m),
            Hyperparams::Gbdt {
                n_trees,
                learning_rate,
                max_leaves,
                min_samples_leaf,
            },
        ) if both_classes => Model::Gbdt(GradientBoosting::fit_from(
            new_x,
            new_y,
            &GbdtParams {
                n_trees: *n_trees,
                learning_rate: *learning_rate,
                max_leaves: *max_leaves,
                min_samples_leaf: *min_samples_leaf,
                ..GbdtParams::default()
            },
            Some(m),
        )?),
        (
            Model::Mlp(m),
            Hyperparams::Mlp {
                hidden,
                learning_rate,
                alpha,
                max_epochs,
            },
        ) if both_classes => {
            let mut updated = Mlp::fit_from(
                new_x,
                new_y,
                mlp_settings(hidden, *learning_rate, *alpha, *max_epochs, seed),
                Some(m),
            );
            // The baseline of explanations is the mean of every training
            // row, as for LR, not only of the rows trained on last.
            updated.baseline = gradients::column_means(all_x);
            Model::Mlp(updated)
        }
        _ => return Ok((fit(all_x, all_y, params, seed)?, TrainMode::Full)),
    };
    Ok((updated, TrainMode::Incremental))
}

/// `model` with the `share` of each layer's smallest weights cut
/// (magnitude pruning), then trained again on `x`, `y` with the cut
/// connections held at zero (fine-tuning), with the settings of `params`.
pub fn prune_and_tune(
    model: &Mlp,
    share: f64,
    x: &Matrix,
    y: &[u8],
    params: &Hyperparams,
    seed: u64,
) -> Result<Mlp, TrainError> {
    let settings = mlp_settings_of(
        params,
        seed,
        "prune",
        "an mlp (pruning cuts a network's connections)",
    )?;
    if !(0.0..1.0).contains(&share) {
        return Err(TrainError::InvalidHyperparameter {
            name: "prune",
            value: share.to_string(),
            expected: "a share of weights in [0, 1)",
        });
    }
    let settings = MlpSettings {
        frozen_zeros: true,
        ..settings
    };
    Ok(Mlp::fit_from(x, y, settings, Some(&model.pruned(share))))
}

/// A student of the family `params` names, trained on a teacher's scores
/// `soft` for the rows of `x` (cross-entropy against the soft targets) —
/// distillation. The MLP is the student family that learns from soft targets.
pub fn distill(
    x: &Matrix,
    soft: &[f64],
    params: &Hyperparams,
    seed: u64,
) -> Result<Model, TrainError> {
    if x.rows != soft.len() {
        return Err(TrainError::LengthMismatch {
            rows: x.rows,
            labels: soft.len(),
        });
    }
    let settings = mlp_settings_of(
        params,
        seed,
        "teacher",
        "an mlp student (it learns from the teacher's probabilities)",
    )?;
    Ok(Model::Mlp(Mlp::fit_soft(x, soft, settings, None)))
}

/// The MLP settings `params` holds, or an error naming the `option` that
/// needs an MLP.
fn mlp_settings_of<'a>(
    params: &'a Hyperparams,
    seed: u64,
    option: &'static str,
    expected: &'static str,
) -> Result<MlpSettings<'a>, TrainError> {
    match params {
        Hyperparams::Mlp {
            hidden,
            learning_rate,
            alpha,
            max_epochs,
        } => Ok(mlp_settings(
            hidden,
            *learning_rate,
            *alpha,
            *max_epochs,
            seed,
        )),
        _ => Err(TrainError::InvalidHyperparameter {
            name: option,
            value: params.algorithm().into(),
            expected,
        }),
    }
}

fn mlp_settings(
    hidden: &[usize],
    learning_rate: f64,
    alpha: f64,
    max_epochs: usize,
    seed: u64,
) -> MlpSettings<'_> {
    MlpSettings {
        hidden,
        learning_rate,
        alpha,
        max_epochs,
        batch_size: 200,
        patience: 10,
        seed,
        frozen_zeros: false,
    }
}

#[cfg(test)]
pub(crate) mod testdata {
    use kaskad_prepare::Matrix;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// Two informative features and one noise feature; the label follows a
    /// logistic model with known coefficients (1.5, -2, 0) and intercept -0.5.
    pub fn logistic(rows: usize, seed: u64) -> (Matrix, Vec<u8>) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut data = Vec::with_capacity(rows * 3);
        let mut y = Vec::with_capacity(rows);
        for _ in 0..rows {
            let a: f64 = rng.random_range(-2.0..2.0);
            let b: f64 = rng.random_range(-2.0..2.0);
            let noise: f64 = rng.random_range(-2.0..2.0);
            let p = 1.0 / (1.0 + (-(1.5 * a - 2.0 * b - 0.5)).exp());
            y.push(u8::from(rng.random::<f64>() < p));
            data.extend([a, b, noise]);
        }
        (
            Matrix {
                rows,
                cols: 3,
                data,
            },
            y,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_class_and_mismatched_labels_are_refused() {
        let (x, y) = testdata::logistic(10, 1);
        let params = Hyperparams::Lr { c: 1.0 };
        assert!(matches!(
            fit(&x, &y[..5], &params, 0),
            Err(TrainError::LengthMismatch { .. })
        ));
        assert!(matches!(
            fit(&x, &[0; 10], &params, 0),
            Err(TrainError::SingleClass { .. })
        ));
    }

    #[test]
    fn incremental_updates_keep_what_was_learned() {
        let (x, y) = testdata::logistic(3_000, 12);
        let old: Vec<usize> = (0..2_000).collect();
        let new: Vec<usize> = (2_000..3_000).collect();
        let (old_x, new_x) = (x.take_rows(&old), x.take_rows(&new));
        let rows = Increment {
            all: (&x, &y),
            new: (&new_x, &y[2_000..]),
        };
        let gbdt = Hyperparams::Gbdt {
            n_trees: 50,
            learning_rate: 0.1,
            max_leaves: 8,
            min_samples_leaf: 20,
        };
        let previous = fit(&old_x, &y[..2_000], &gbdt, 1).unwrap();
        let (updated, mode) = update(&previous, &rows, &gbdt, 1).unwrap();
        assert_eq!(mode, TrainMode::Incremental);
        let (Model::Gbdt(before), Model::Gbdt(after)) = (&previous, &updated) else {
            panic!("gbdt stays gbdt")
        };
        assert_eq!(after.trees[..before.trees.len()], before.trees[..]);
        let tree = Hyperparams::Tree {
            max_depth: 3,
            min_samples_leaf: 20,
        };
        let previous = fit(&old_x, &y[..2_000], &tree, 1).unwrap();
        assert_eq!(
            update(&previous, &rows, &tree, 1).unwrap().1,
            TrainMode::Full
        );
        let knn = Hyperparams::Knn {
            k: 5,
            max_rows: 10_000,
        };
        let previous = fit(&old_x, &y[..2_000], &knn, 1).unwrap();
        let (Model::Knn(grown), TrainMode::Incremental) =
            update(&previous, &rows, &knn, 1).unwrap()
        else {
            panic!("knn appends")
        };
        assert_eq!(grown.labels.len(), 3_000);
    }

    #[test]
    fn models_round_trip_through_json() {
        let (x, y) = testdata::logistic(300, 2);
        for params in [
            Hyperparams::Lr { c: 1.0 },
            Hyperparams::Tree {
                max_depth: 3,
                min_samples_leaf: 5,
            },
            Hyperparams::Knn {
                k: 5,
                max_rows: 100,
            },
            Hyperparams::Gbdt {
                n_trees: 30,
                learning_rate: 0.1,
                max_leaves: 7,
                min_samples_leaf: 10,
            },
        ] {
            let model = fit(&x, &y, &params, 7).unwrap();
            let json = serde_json::to_string(&model).unwrap();
            let back: Model = serde_json::from_str(&json).unwrap();
            assert_eq!(back.predict_proba(&x), model.predict_proba(&x));
        }
    }
}
