//! The compiled scoring plan of an artifact: preprocessing fused with the
//! model, compiled once when a server or a command loads a version, so that
//! scoring an application costs one pass over its raw values.
//!
//! - **LR**: one step per raw column, the standard scaling folded into the
//!   weights (`slope · clamp(x) + offset` for a number) and every level's
//!   encoding already multiplied out (one table per categorical column):
//!   an application is a sum of one term per column, no feature vector.
//! - **Tree**: its nodes in one flat array (feature, threshold, children;
//!   a leaf holds its value).
//! - **GBDT**: a [`FlatForest`]: every tree's nodes in one array, traversed
//!   over blocks of rows tree by tree (a block's features stay in cache
//!   while the trees stream past), eight branch-free descents at a time.
//! - **Other families** (kNN, MLP and what may come): the features, then
//!   the family's own kernel.
//!
//! Scores equal `ModelArtifact::score` up to rounding (the folded LR sums in
//! another order; everything else is bit for bit): the tests hold it to
//! 1e-12 on every family and preprocessing variant.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use kaskad_core::Frame;
use kaskad_prepare::{Cell, EncoderView, Matrix, Preprocessor, RawColumn};
use kaskad_train::{DecisionTree, FlatForest, Model, Node, sigmoid};

use crate::{ModelArtifact, Reason, RegistryError};

/// An artifact compiled for scoring; see the module documentation.
#[derive(Debug)]
pub struct ScoringPlan {
    artifact: Arc<ModelArtifact>,
    model: Compiled,
    /// Input column name → its position in the artifact's input columns.
    positions: HashMap<String, usize>,
}

#[derive(Debug)]
enum Compiled {
    Linear {
        intercept: f64,
        /// One per input column, in input order.
        steps: Vec<LinearStep>,
    },
    /// A CART tree: the leaf's value is the probability.
    Tree { nodes: Vec<FlatNode> },
    /// Boosted trees: the probability of the forest's raw score.
    Boosted(FlatForest),
    /// The family's own `predict_proba` on the features.
    Features,
}

/// One raw column's term of the LR log-odds.
#[derive(Debug)]
enum LinearStep {
    /// Clamp-impute-scale encoding: `slope · clamp(x, low, high) + offset`
    /// for a present number, `missing` for an absent one.
    Number {
        low: f64,
        high: f64,
        slope: f64,
        offset: f64,
        missing: f64,
    },
    /// A categorical column: the term of `levels[i]` is `terms[i]` (first
    /// match, as the encoders look levels up).
    Level {
        levels: Vec<String>,
        terms: Vec<f64>,
        missing: f64,
        unseen: f64,
    },
    /// Any other encoding of a number (weight of evidence): encoded, then
    /// weighted; at most two features.
    Encoded { column: usize, weights: Vec<f64> },
}

/// A split or a leaf of a flattened tree.
#[derive(Debug, Clone, Copy)]
struct FlatNode {
    /// A split's threshold (left when `x <= threshold`), a leaf's value.
    threshold: f64,
    /// [`LEAF`] for a leaf.
    feature: u32,
    left: u32,
    right: u32,
}

const LEAF: u32 = u32::MAX;

thread_local! {
    /// The features of the application being scored, reused across calls.
    static FEATURES: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

impl ScoringPlan {
    /// Compiles `artifact`; costs about one scoring pass over its trees.
    pub fn new(artifact: Arc<ModelArtifact>) -> ScoringPlan {
        let model = match &artifact.model {
            Model::Lr(lr) => linear(&artifact.preprocessor, &lr.coefficients, lr.intercept),
            Model::Tree(tree) => Compiled::Tree {
                nodes: flatten_tree(tree),
            },
            Model::Gbdt(gbdt) => Compiled::Boosted(FlatForest::new(gbdt)),
            _ => Compiled::Features,
        };
        let positions = artifact
            .input_columns()
            .iter()
            .enumerate()
            .map(|(j, (name, _))| (name.clone(), j))
            .collect();
        ScoringPlan {
            artifact,
            model,
            positions,
        }
    }

    /// The artifact this plan scores.
    pub fn artifact(&self) -> &ModelArtifact {
        &self.artifact
    }

    /// Where `column` is among the artifact's input columns, if it is one.
    pub fn input_position(&self, column: &str) -> Option<usize> {
        self.positions.get(column).copied()
    }

    /// Probability of default for every row of `frame`, as
    /// [`ModelArtifact::score`].
    pub fn score(&self, frame: &Frame) -> Result<Vec<f64>, RegistryError> {
        let preprocessor = &self.artifact.preprocessor;
        match &self.model {
            Compiled::Linear { intercept, steps } => {
                let raw = preprocessor.raw_columns(frame)?;
                let mut z = vec![*intercept; frame.n_rows()];
                for (step, column) in steps.iter().zip(raw) {
                    match column {
                        RawColumn::Numbers(values) => {
                            for (z, &v) in z.iter_mut().zip(values) {
                                *z += step.term(preprocessor, Cell::Number(v));
                            }
                        }
                        RawColumn::Levels(values) => {
                            for (z, v) in z.iter_mut().zip(values) {
                                *z += step.term(preprocessor, Cell::Level(v.as_deref()));
                            }
                        }
                        RawColumn::AllMissing => {
                            let term = step.term(preprocessor, Cell::Number(f64::NAN));
                            z.iter_mut().for_each(|z| *z += term);
                        }
                    }
                }
                Ok(z.into_iter().map(sigmoid).collect())
            }
            Compiled::Tree { nodes } => {
                let x = preprocessor.transform(frame)?;
                Ok((0..x.rows)
                    .map(|i| leaf_value(nodes, 0, x.row(i)))
                    .collect())
            }
            Compiled::Boosted(forest) => {
                let x = preprocessor.transform(frame)?;
                Ok(forest.raw_scores(&x).into_iter().map(sigmoid).collect())
            }
            Compiled::Features => {
                let x = preprocessor.transform(frame)?;
                Ok(self.artifact.model.predict_proba(&x))
            }
        }
    }

    /// Probability of default of one application: one cell per input
    /// column, in [`ModelArtifact::input_columns`] order.
    pub fn score_row(&self, row: &[Cell<'_>]) -> Result<f64, RegistryError> {
        let preprocessor = &self.artifact.preprocessor;
        if let Compiled::Linear { intercept, steps } = &self.model {
            preprocessor.check_row(row)?;
            let z = steps.iter().zip(row).fold(*intercept, |z, (step, &cell)| {
                z + step.term(preprocessor, cell)
            });
            return Ok(sigmoid(z));
        }
        FEATURES.with_borrow_mut(|features| {
            features.resize(preprocessor.feature_names().len(), 0.0);
            preprocessor.encode_row(row, features)?;
            Ok(match &self.model {
                Compiled::Tree { nodes } => leaf_value(nodes, 0, features),
                Compiled::Boosted(forest) => sigmoid(forest.raw_score_row(features)),
                Compiled::Linear { .. } | Compiled::Features => {
                    let x = Matrix {
                        rows: 1,
                        cols: features.len(),
                        data: features.clone(),
                    };
                    self.artifact.model.predict_proba(&x)[0]
                }
            })
        })
    }

    /// The reason codes of one application, as [`ModelArtifact::explain`]
    /// gives them for a row.
    pub fn explain_row(&self, row: &[Cell<'_>], top: usize) -> Result<Vec<Reason>, RegistryError> {
        let preprocessor = &self.artifact.preprocessor;
        let mut x = Matrix::zeros(1, preprocessor.feature_names().len());
        preprocessor.encode_row(row, &mut x.data)?;
        Ok(self.artifact.reasons(&x, top).pop().unwrap_or_default())
    }
}

/// The LR steps of every input column of `preprocessor`.
fn linear(preprocessor: &Preprocessor, weights: &[f64], intercept: f64) -> Compiled {
    let sources = preprocessor.feature_sources();
    let mut steps = Vec::new();
    let mut offset = 0;
    for (column, (_, view)) in preprocessor.encoders().enumerate() {
        let width = sources.iter().filter(|&&s| s == column).count();
        let w = &weights[offset..offset + width];
        offset += width;
        // A value's term through the encoder itself, so the tables hold
        // exactly what scoring the features would add.
        let term = |cell: Cell<'_>| {
            let mut features = vec![0.0; width];
            preprocessor.encode_cell(column, cell, &mut features);
            features.iter().zip(w).map(|(x, w)| x * w).sum::<f64>()
        };
        let step = match view {
            EncoderView::Numeric {
                low,
                high,
                mean,
                scale,
                ..
            } => LinearStep::Number {
                low,
                high,
                slope: w[0] / scale,
                offset: -w[0] * mean / scale,
                missing: term(Cell::Number(f64::NAN)),
            },
            EncoderView::OneHot { levels, .. }
            | EncoderView::Ordinal { levels, .. }
            | EncoderView::WoeCategorical { levels, .. } => {
                // Longer than every level, so none of them.
                let unseen = format!("{}\u{1}", levels.concat());
                LinearStep::Level {
                    levels: levels.to_vec(),
                    terms: levels.iter().map(|l| term(Cell::Level(Some(l)))).collect(),
                    missing: term(Cell::Level(None)),
                    unseen: term(Cell::Level(Some(&unseen))),
                }
            }
            EncoderView::WoeNumeric { .. } => LinearStep::Encoded {
                column,
                weights: w.to_vec(),
            },
        };
        steps.push(step);
    }
    Compiled::Linear { intercept, steps }
}

impl LinearStep {
    /// The term of `cell`, whose kind the caller checked.
    fn term(&self, preprocessor: &Preprocessor, cell: Cell<'_>) -> f64 {
        match (self, cell) {
            (
                LinearStep::Number {
                    low,
                    high,
                    slope,
                    offset,
                    missing,
                },
                Cell::Number(v),
            ) => {
                if v.is_finite() {
                    slope * v.clamp(*low, *high) + offset
                } else {
                    *missing
                }
            }
            (
                LinearStep::Level {
                    levels,
                    terms,
                    missing,
                    unseen,
                },
                Cell::Level(v),
            ) => match v {
                None => *missing,
                Some(level) => levels
                    .iter()
                    .position(|l| l == level)
                    .map_or(*unseen, |i| terms[i]),
            },
            (LinearStep::Encoded { column, weights }, cell) => {
                let mut features = [0.0; 2];
                let features = &mut features[..weights.len()];
                preprocessor.encode_cell(*column, cell, features);
                features.iter().zip(weights).map(|(x, w)| x * w).sum()
            }
            (LinearStep::Number { missing, .. } | LinearStep::Level { missing, .. }, _) => *missing,
        }
    }
}

fn flatten_tree(tree: &DecisionTree) -> Vec<FlatNode> {
    tree.nodes
        .iter()
        .map(|node| match *node {
            Node::Leaf { probability, .. } => FlatNode {
                threshold: probability,
                feature: LEAF,
                left: 0,
                right: 0,
            },
            Node::Split {
                feature,
                threshold,
                left,
                right,
                ..
            } => FlatNode {
                threshold,
                feature: feature as u32,
                left: left as u32,
                right: right as u32,
            },
        })
        .collect()
}

fn leaf_value(nodes: &[FlatNode], root: u32, row: &[f64]) -> f64 {
    let mut node = nodes[root as usize];
    while node.feature != LEAF {
        // NaN compares false, so a missing value goes right, as in the tree.
        let left = row[node.feature as usize] <= node.threshold;
        node = nodes[if left { node.left } else { node.right } as usize];
    }
    node.threshold
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use kaskad_core::config::{Encoding, PrepareOptions};
    use kaskad_core::{Column, ColumnData, binary_target, read_csv};
    use kaskad_train::{Hyperparams, TrainMode, fit};

    use super::*;

    /// The bundled credit data: the first 3,000 rows to fit on, with gaps
    /// put into half the columns (so some encoders have missing slots and
    /// some do not), and the rest to score.
    fn data() -> (Frame, Vec<u8>, Frame) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/credit_data.csv");
        let mut frame = read_csv(&path).unwrap();
        let status = frame.remove("Status").unwrap();
        let labels = binary_target(&status, &["bad".to_string()]).unwrap();
        let columns = frame
            .into_columns()
            .into_iter()
            .enumerate()
            .map(|(j, mut column)| {
                if j % 2 == 0 {
                    for row in (j..column.len()).step_by(37) {
                        match &mut column.data {
                            ColumnData::Numeric(v) => v[row] = f64::NAN,
                            ColumnData::Categorical(v) => v[row] = None,
                        }
                    }
                }
                column
            })
            .collect();
        let frame = Frame::new(columns).unwrap();
        let n = frame.n_rows();
        let train = frame.take(&(0..3_000).collect::<Vec<_>>());
        let test = frame.take(&(3_000..n).collect::<Vec<_>>());
        (train, labels[..3_000].to_vec(), test)
    }

    /// `test` plus rows that stress every encoder: per column a missing
    /// value, an unseen level or a number far outside the training range
    /// (both sides, and infinite), the rarest training level, and a row
    /// with nothing at all.
    fn hard_rows(train: &Frame, test: &Frame) -> Frame {
        let base = test.take(&[0]);
        let mut variants: Vec<Frame> = vec![test.clone()];
        let with = |j: usize, column: Column| {
            let mut columns = base.columns().to_vec();
            columns[j] = column;
            Frame::new(columns).unwrap()
        };
        for (j, column) in base.columns().iter().enumerate() {
            let name = column.name.clone();
            match &column.data {
                ColumnData::Numeric(_) => {
                    for v in [f64::NAN, 1e12, -1e12, f64::INFINITY, f64::NEG_INFINITY] {
                        variants.push(with(j, Column::numeric(name.clone(), vec![v])));
                    }
                }
                ColumnData::Categorical(_) => {
                    let seen = train.columns()[j].as_categorical().unwrap();
                    let rarest = seen
                        .iter()
                        .flatten()
                        .min_by_key(|l| seen.iter().filter(|s| s.as_ref() == Some(*l)).count())
                        .cloned();
                    for v in [None, Some("never seen".to_string()), rarest] {
                        variants.push(with(j, Column::categorical(name.clone(), vec![v])));
                    }
                }
            }
        }
        let empty = base
            .columns()
            .iter()
            .map(|c| match c.data {
                ColumnData::Numeric(_) => Column::numeric(c.name.clone(), vec![f64::NAN]),
                ColumnData::Categorical(_) => Column::categorical(c.name.clone(), vec![None]),
            })
            .collect();
        variants.push(Frame::new(empty).unwrap());
        Frame::vstack(&variants).unwrap()
    }

    fn artifact(preprocessor: Preprocessor, model: Model, params: Hyperparams) -> ModelArtifact {
        ModelArtifact {
            format: crate::FORMAT.into(),
            format_version: crate::FORMAT_VERSION,
            name: "m".into(),
            version: 1,
            target: "Status".into(),
            positive: vec!["bad".into()],
            threshold: 0.5,
            params,
            preprocessor,
            model,
            trained_on: vec![],
            train_rows: 3_000,
            mode: TrainMode::Full,
        }
    }

    #[test]
    fn the_plan_scores_as_the_artifact_on_every_family_and_variant() {
        let (train, labels, test) = data();
        let scored = hard_rows(&train, &test);
        let families = [
            Hyperparams::Lr { c: 1.0 },
            Hyperparams::Tree {
                max_depth: 6,
                min_samples_leaf: 10,
            },
            Hyperparams::Gbdt {
                n_trees: 40,
                learning_rate: 0.1,
                max_leaves: 15,
                min_samples_leaf: 10,
            },
            Hyperparams::Knn {
                k: 7,
                max_rows: 500,
            },
            Hyperparams::Mlp {
                hidden: vec![8],
                learning_rate: 0.01,
                alpha: 1e-4,
                max_epochs: 3,
            },
        ];
        let options = PrepareOptions {
            min_category_share: 0.02,
            ..PrepareOptions::default()
        };
        for variant in [Encoding::OneHot, Encoding::Ordinal, Encoding::Woe] {
            let preprocessor = Preprocessor::fit(&train, variant, Some(&labels), &options).unwrap();
            let x = preprocessor.transform(&train).unwrap();
            for params in &families {
                let model = fit(&x, &labels, params, 3).unwrap();
                let artifact = Arc::new(artifact(preprocessor.clone(), model, params.clone()));
                let plan = ScoringPlan::new(Arc::clone(&artifact));
                let what = format!("{} on {variant:?}", params.algorithm());
                let expected = artifact.score(&scored).unwrap();
                let batch = plan.score(&scored).unwrap();
                let reasons = artifact.explain(&scored, 3).unwrap();
                let raw = preprocessor.raw_columns(&scored).unwrap();
                for row in 0..scored.n_rows() {
                    let cells: Vec<Cell<'_>> = raw.iter().map(|c| c.cell(row)).collect();
                    let single = plan.score_row(&cells).unwrap();
                    for (path, score) in [("batch", batch[row]), ("row", single)] {
                        assert!(
                            (score - expected[row]).abs() <= 1e-12,
                            "{what}, {path}, row {row}: {score} vs {}",
                            expected[row]
                        );
                    }
                    assert_eq!(plan.explain_row(&cells, 3).unwrap(), reasons[row], "{what}");
                }
            }
        }
    }

    #[test]
    fn a_cell_of_the_wrong_kind_is_named() {
        let (train, labels, _) = data();
        let options = PrepareOptions::default();
        let preprocessor = Preprocessor::fit(&train, Encoding::OneHot, None, &options).unwrap();
        let x = preprocessor.transform(&train).unwrap();
        let params = Hyperparams::Lr { c: 1.0 };
        let model = fit(&x, &labels, &params, 1).unwrap();
        let plan = ScoringPlan::new(Arc::new(artifact(preprocessor, model, params)));
        let mut cells: Vec<Cell<'_>> = plan
            .artifact()
            .input_columns()
            .iter()
            .map(|(_, kind)| Cell::missing(*kind))
            .collect();
        assert!(plan.score_row(&cells).unwrap().is_finite());
        let numeric = plan
            .artifact()
            .input_columns()
            .iter()
            .position(|(_, kind)| *kind == kaskad_core::ColumnKind::Numeric)
            .unwrap();
        cells[numeric] = Cell::Level(Some("high"));
        let err = plan.score_row(&cells).unwrap_err().to_string();
        let name = &plan.artifact().input_columns()[numeric].0;
        assert!(err.contains(&format!("`{name}`")), "{err}");
    }
}
