//! The ONNX-ML (`ai.onnx.ml`) operators other than the tree ensembles,
//! with onnxruntime's conventions where the specification leaves a choice
//! (checked against onnxruntime 1.32 by the agreement tests).

use std::collections::HashMap;

use crate::GraphError;
use crate::attrs::Attrs;
use crate::ops::{sigmoid, softmax_in_place, take_columns};
use crate::tensor::{Data, Tensor};
use crate::trees::TreeEnsemble;

/// How scores become the operator's output (`post_transform`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
}

impl Post {
    pub fn parse(a: &Attrs<'_>) -> Result<Post, GraphError> {
        match a.string("post_transform", "NONE").as_str() {
            "NONE" => Ok(Post::None),
            "LOGISTIC" => Ok(Post::Logistic),
            "SOFTMAX" => Ok(Post::Softmax),
            "SOFTMAX_ZERO" => Ok(Post::SoftmaxZero),
            other => Err(a.error(format!("post_transform {other} is not supported"))),
        }
    }

    /// Applies the transform to one row of scores, one per class.
    pub fn apply(self, row: &mut [f64]) {
        match self {
            Post::None => {}
            Post::Logistic => row.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Post::Softmax => softmax_in_place(row),
            Post::SoftmaxZero => {
                // onnxruntime's variant: zero scores stay zero.
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    if v.abs() > 1e-7 {
                        *v = (*v - max).exp();
                    } else {
                        *v *= (-max).exp();
                    }
                    sum += *v;
                }
                if sum == 0.0 {
                    row.iter_mut().for_each(|v| *v = 0.5);
                } else {
                    row.iter_mut().for_each(|v| *v /= sum);
                }
            }
        }
    }
}

/// Class labels of a classifier: `classlabels_int64s` or `_strings`.
#[derive(Debug)]
pub(crate) enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    pub fn parse(a: &Attrs<'_>, ints: &str, strings: &str) -> Labels {
        let names = a.strings(strings);
        if names.is_empty() {
            Labels::Ints(a.ints(ints))
        } else {
            Labels::Strings(names)
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }

    /// The label of the highest score of every row of `scores`.
    pub fn argmax(&self, scores: &[f64], classes: usize) -> Tensor {
        let best: Vec<usize> = scores
            .chunks(classes.max(1))
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold(0, |b, (i, &v)| if v > row[b] { i } else { b })
            })
            .collect();
        let data = match self {
            Labels::Ints(l) => Data::Int64(best.iter().map(|&i| l[i]).collect()),
            Labels::Strings(l) => Data::Str(best.iter().map(|&i| l[i].clone()).collect()),
        };
        Tensor::new(vec![best.len()], data)
    }
}

#[derive(Debug)]
pub(crate) enum MlOp {
    Scaler {
        offset: Vec<f32>,
        scale: Vec<f32>,
    },
    Imputer {
        values: Vec<f32>,
        replaced: f32,
    },
    OneHot {
        categories: Categories,
        zeros: bool,
    },
    Normalizer(Norm),
    Binarizer(f32),
    LinearClassifier {
        coefficients: Vec<f32>,
        intercepts: Vec<f32>,
        labels: Labels,
        post: Post,
    },
    LinearRegressor {
        coefficients: Vec<f32>,
        intercepts: Vec<f32>,
        targets: usize,
        post: Post,
    },
    /// Its output is a sequence of maps in the model; kaskad keeps the
    /// probability tensor it was made from, class `i` in column `i`.
    ZipMap,
    ArrayFeatureExtractor,
    LabelEncoder(Encoder),
    FeatureVectorizer,
    Trees(Box<TreeEnsemble>),
}

#[derive(Debug)]
pub(crate) enum Categories {
    Strings(Lookup<String>),
    Ints(Lookup<i64>),
}

/// Position of a category: a scan of the list when it is short (cheaper
/// than hashing the value), a hash map otherwise.
#[derive(Debug)]
pub(crate) struct Lookup<K> {
    list: Vec<K>,
    map: HashMap<K, usize>,
}

impl<K: std::hash::Hash + Eq + Clone> Lookup<K> {
    const SCAN: usize = 16;

    fn new(list: Vec<K>) -> Lookup<K> {
        let map = if list.len() > Self::SCAN {
            index(list.iter().cloned())
        } else {
            HashMap::new()
        };
        Lookup { list, map }
    }

    fn get<Q>(&self, key: &Q) -> Option<usize>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if self.list.len() > Self::SCAN {
            self.map.get(key).copied()
        } else {
            self.list.iter().position(|k| k.borrow() == key)
        }
    }

    fn len(&self) -> usize {
        self.list.len()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Norm {
    Max,
    L1,
    L2,
}

/// A LabelEncoder's map from string or integer keys to string, integer or
/// float values, with the default for unknown keys.
#[derive(Debug)]
pub(crate) struct Encoder {
    keys: Keys,
    values: Data,
    default: Data,
}

#[derive(Debug)]
enum Keys {
    Strings(HashMap<String, usize>),
    Ints(HashMap<i64, usize>),
}

pub(crate) const ML: &[&str] = &[
    "ArrayFeatureExtractor",
    "Binarizer",
    "FeatureVectorizer",
    "Imputer",
    "LabelEncoder",
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "OneHotEncoder",
    "Scaler",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "ZipMap",
];

fn index<K: std::hash::Hash + Eq>(keys: impl IntoIterator<Item = K>) -> HashMap<K, usize> {
    let mut map = HashMap::new();
    for (i, k) in keys.into_iter().enumerate() {
        map.entry(k).or_insert(i);
    }
    map
}

pub(crate) fn compile(a: &Attrs<'_>) -> Result<Option<MlOp>, GraphError> {
    Ok(Some(match a.node.op_type.as_str() {
        "Scaler" => MlOp::Scaler {
            offset: a.floats("offset"),
            scale: a.floats("scale"),
        },
        "Imputer" => {
            if !a.ints("imputed_value_int64s").is_empty() {
                return Err(a.error("integer imputation is not supported"));
            }
            let values = a.floats("imputed_value_floats");
            if values.is_empty() {
                return Err(a.error("no imputed_value_floats"));
            }
            MlOp::Imputer {
                values,
                replaced: a.float("replaced_value_float", 0.0),
            }
        }
        "OneHotEncoder" => {
            let strings = a.strings("cats_strings");
            let categories = if strings.is_empty() {
                let ints = a.ints("cats_int64s");
                if ints.is_empty() {
                    return Err(a.error("neither cats_strings nor cats_int64s"));
                }
                Categories::Ints(Lookup::new(ints))
            } else {
                Categories::Strings(Lookup::new(strings))
            };
            MlOp::OneHot {
                categories,
                zeros: a.int("zeros", 1) != 0,
            }
        }
        "Normalizer" => MlOp::Normalizer(match a.string("norm", "MAX").as_str() {
            "MAX" => Norm::Max,
            "L1" => Norm::L1,
            "L2" => Norm::L2,
            other => return Err(a.error(format!("norm {other} is not supported"))),
        }),
        "Binarizer" => MlOp::Binarizer(a.float("threshold", 0.0)),
        "LinearClassifier" => {
            let labels = Labels::parse(a, "classlabels_ints", "classlabels_strings");
            let (coefficients, intercepts) = (a.floats("coefficients"), a.floats("intercepts"));
            let rows = linear_rows(a, &coefficients, &intercepts)?;
            if rows != labels.len() && !(rows == 1 && labels.len() == 2) {
                return Err(a.error(format!(
                    "{rows} coefficient rows for {} classes",
                    labels.len()
                )));
            }
            MlOp::LinearClassifier {
                coefficients,
                intercepts,
                labels,
                post: Post::parse(a)?,
            }
        }
        "LinearRegressor" => {
            let (coefficients, intercepts) = (a.floats("coefficients"), a.floats("intercepts"));
            let targets = usize::try_from(a.int("targets", 1)).unwrap_or(0).max(1);
            if linear_rows(a, &coefficients, &intercepts)? != targets {
                return Err(a.error(format!("intercepts do not match {targets} targets")));
            }
            MlOp::LinearRegressor {
                coefficients,
                intercepts,
                targets,
                post: Post::parse(a)?,
            }
        }
        "ZipMap" => MlOp::ZipMap,
        "ArrayFeatureExtractor" => MlOp::ArrayFeatureExtractor,
        "LabelEncoder" => MlOp::LabelEncoder(encoder(a)?),
        "FeatureVectorizer" => MlOp::FeatureVectorizer,
        "TreeEnsembleClassifier" => MlOp::Trees(Box::new(TreeEnsemble::classifier(a)?)),
        "TreeEnsembleRegressor" => MlOp::Trees(Box::new(TreeEnsemble::regressor(a)?)),
        _ => return Ok(None),
    }))
}

/// Rows of a linear model's coefficients: one per intercept (or one).
fn linear_rows(
    a: &Attrs<'_>,
    coefficients: &[f32],
    intercepts: &[f32],
) -> Result<usize, GraphError> {
    let rows = intercepts.len().max(1);
    if coefficients.is_empty() || !coefficients.len().is_multiple_of(rows) {
        return Err(a.error(format!(
            "{} coefficients do not split into {rows} rows",
            coefficients.len()
        )));
    }
    Ok(rows)
}

fn encoder(a: &Attrs<'_>) -> Result<Encoder, GraphError> {
    // ai.onnx.ml 1: classes_strings, mapping strings to their index and back.
    let classes = a.strings("classes_strings");
    if !classes.is_empty() {
        let n = classes.len() as i64;
        return Ok(if a.has("default_string") {
            Encoder {
                keys: Keys::Ints(index(0..n)),
                values: Data::Str(classes),
                default: Data::Str(vec![a.string("default_string", "_Unused")]),
            }
        } else {
            Encoder {
                keys: Keys::Strings(index(classes)),
                values: Data::Int64((0..n).collect()),
                default: Data::Int64(vec![a.int("default_int64", -1)]),
            }
        });
    }
    let keys = match (a.strings("keys_strings"), a.ints("keys_int64s")) {
        (s, _) if !s.is_empty() => Keys::Strings(index(s)),
        (_, i) if !i.is_empty() => Keys::Ints(index(i)),
        _ => return Err(a.error("no keys_strings or keys_int64s")),
    };
    let (values, default) = match (
        a.strings("values_strings"),
        a.ints("values_int64s"),
        a.floats("values_floats"),
    ) {
        (s, _, _) if !s.is_empty() => (
            Data::Str(s),
            Data::Str(vec![a.string("default_string", "_Unused")]),
        ),
        (_, i, _) if !i.is_empty() => (
            Data::Int64(i),
            Data::Int64(vec![a.int("default_int64", -1)]),
        ),
        (_, _, f) if !f.is_empty() => (
            Data::Float(f),
            Data::Float(vec![a.float("default_float", -0.0)]),
        ),
        _ => return Err(a.error("no values_strings, values_int64s or values_floats")),
    };
    let n_keys = match &keys {
        Keys::Strings(m) => m.values().max().map_or(0, |&i| i + 1),
        Keys::Ints(m) => m.values().max().map_or(0, |&i| i + 1),
    };
    let n_values = Tensor::new(vec![], values.clone()).len();
    if n_keys > n_values {
        return Err(a.error(format!("{n_keys} keys but {n_values} values")));
    }
    Ok(Encoder {
        keys,
        values,
        default,
    })
}

impl MlOp {
    pub fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
        let x = inputs
            .first()
            .copied()
            .flatten()
            .ok_or("input 0 is missing")?;
        let (rows, cols) = x.matrix();
        Ok(match self {
            MlOp::Scaler { offset, scale } => {
                let pick = |v: &[f32], j: usize, default: f32| match v.len() {
                    0 => default,
                    1 => v[0],
                    _ => v[j],
                };
                if (offset.len() > 1 && offset.len() != cols)
                    || (scale.len() > 1 && scale.len() != cols)
                {
                    return Err(format!(
                        "{} offsets and {} scales for {cols} columns",
                        offset.len(),
                        scale.len()
                    ));
                }
                let values = x.to_f32()?;
                let out = values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let j = i % cols.max(1);
                        (v - pick(offset, j, 0.0)) * pick(scale, j, 1.0)
                    })
                    .collect();
                vec![Tensor::floats(x.shape.clone(), out)]
            }
            MlOp::Imputer { values, replaced } => {
                if values.len() > 1 && values.len() != cols {
                    return Err(format!(
                        "{} imputed values for {cols} columns",
                        values.len()
                    ));
                }
                let fill = |j: usize| values[j.min(values.len() - 1)];
                let hit = |v: f64| {
                    if replaced.is_nan() {
                        v.is_nan()
                    } else {
                        v == f64::from(*replaced)
                    }
                };
                let data = match &x.data {
                    Data::Float(v) => Data::Float(
                        v.iter()
                            .enumerate()
                            .map(|(i, &e)| if hit(e.into()) { fill(i % cols) } else { e })
                            .collect(),
                    ),
                    Data::Double(v) => Data::Double(
                        v.iter()
                            .enumerate()
                            .map(|(i, &e)| if hit(e) { fill(i % cols).into() } else { e })
                            .collect(),
                    ),
                    _ => return Err(format!("cannot impute {} values", x.type_name())),
                };
                vec![Tensor::new(x.shape.clone(), data)]
            }
            MlOp::OneHot { categories, zeros } => {
                let (positions, width): (Vec<Option<usize>>, usize) = match (categories, &x.data) {
                    (Categories::Strings(lookup), Data::Str(v)) => (
                        v.iter().map(|s| lookup.get(s.as_str())).collect(),
                        lookup.len(),
                    ),
                    (Categories::Ints(lookup), Data::Int64(v)) => {
                        (v.iter().map(|s| lookup.get(s)).collect(), lookup.len())
                    }
                    (Categories::Ints(lookup), _) => (
                        x.to_f64()?
                            .iter()
                            .map(|&f| lookup.get(&(f as i64)))
                            .collect(),
                        lookup.len(),
                    ),
                    (Categories::Strings(..), _) => {
                        return Err(format!("string categories but {} input", x.type_name()));
                    }
                };
                if !zeros && positions.iter().any(Option::is_none) {
                    return Err("a value is none of the categories (and zeros = 0)".into());
                }
                let mut out = vec![0.0f32; positions.len() * width];
                for (i, p) in positions.iter().enumerate() {
                    if let Some(p) = p {
                        out[i * width + p] = 1.0;
                    }
                }
                let mut shape = x.shape.clone();
                shape.push(width);
                vec![Tensor::floats(shape, out)]
            }
            MlOp::Normalizer(norm) => {
                let mut values = x.to_f64()?;
                for row in values.chunks_mut(cols.max(1)) {
                    let div = match norm {
                        Norm::Max => row.iter().fold(0.0f64, |m, v| m.max(v.abs())),
                        Norm::L1 => row.iter().map(|v| v.abs()).sum(),
                        Norm::L2 => row.iter().map(|v| v * v).sum::<f64>().sqrt(),
                    };
                    row.iter_mut().for_each(|v| *v /= div.max(1e-30));
                }
                vec![Tensor::floats(
                    vec![rows, cols],
                    values.into_iter().map(|v| v as f32).collect(),
                )]
            }
            MlOp::Binarizer(threshold) => {
                let t = f64::from(*threshold);
                vec![crate::ops::map_real(x, |v| if v > t { 1.0 } else { 0.0 })?]
            }
            MlOp::LinearClassifier {
                coefficients,
                intercepts,
                labels,
                post,
            } => {
                let scores = linear(x, coefficients, intercepts)?;
                let classes = labels.len();
                let k = intercepts.len().max(1);
                let mut out = Vec::with_capacity(rows * classes);
                for row in scores.chunks(k) {
                    if k == 1 && classes == 2 {
                        // onnxruntime: (1 - p, p), p the transformed score.
                        let p = if *post == Post::Logistic {
                            sigmoid(row[0])
                        } else {
                            row[0]
                        };
                        out.extend([1.0 - p, p]);
                    } else {
                        let start = out.len();
                        out.extend_from_slice(row);
                        post.apply(&mut out[start..]);
                    }
                }
                let label = labels.argmax(&out, classes);
                vec![label, float_matrix(rows, classes, out)]
            }
            MlOp::LinearRegressor {
                coefficients,
                intercepts,
                targets,
                post,
            } => {
                let mut scores = linear(x, coefficients, intercepts)?;
                for row in scores.chunks_mut(*targets) {
                    post.apply(row);
                }
                vec![float_matrix(rows, *targets, scores)]
            }
            MlOp::ZipMap => vec![x.clone()],
            MlOp::ArrayFeatureExtractor => {
                let indices = inputs
                    .get(1)
                    .copied()
                    .flatten()
                    .ok_or("input 1 is missing")?;
                let columns: Vec<usize> = indices
                    .ints()?
                    .iter()
                    .map(|&i| usize::try_from(i).map_err(|_| format!("negative index {i}")))
                    .collect::<Result<_, _>>()?;
                vec![take_columns(x, &columns)?]
            }
            MlOp::LabelEncoder(encoder) => vec![encoder.run(x)?],
            MlOp::FeatureVectorizer => {
                let mut columns = Vec::new();
                let parts: Vec<(Vec<f32>, usize)> = inputs
                    .iter()
                    .flatten()
                    .map(|t| {
                        let (r, c) = t.matrix();
                        if r != rows {
                            return Err(format!("inputs of {rows} and {r} rows"));
                        }
                        Ok((t.to_f32()?, c))
                    })
                    .collect::<Result<_, String>>()?;
                let width: usize = parts.iter().map(|p| p.1).sum();
                columns.reserve(rows * width);
                for r in 0..rows {
                    for (values, c) in &parts {
                        columns.extend_from_slice(&values[r * c..(r + 1) * c]);
                    }
                }
                vec![Tensor::floats(vec![rows, width], columns)]
            }
            MlOp::Trees(trees) => trees.run(x)?,
        })
    }
}

fn float_matrix(rows: usize, cols: usize, values: Vec<f64>) -> Tensor {
    Tensor::floats(
        vec![rows, cols],
        values.into_iter().map(|v| v as f32).collect(),
    )
}

/// `X Wᵀ + b` of a linear ONNX-ML model, summed in double.
fn linear(x: &Tensor, coefficients: &[f32], intercepts: &[f32]) -> Result<Vec<f64>, String> {
    let (rows, cols) = x.matrix();
    let k = intercepts.len().max(1);
    if coefficients.len() != k * cols {
        return Err(format!(
            "{} coefficients for {k} rows of {cols} features",
            coefficients.len()
        ));
    }
    let values = x.to_f64()?;
    let mut out = Vec::with_capacity(rows * k);
    for row in values.chunks(cols.max(1)).take(rows) {
        for (t, w) in coefficients.chunks(cols.max(1)).enumerate() {
            let dot: f64 = row.iter().zip(w).map(|(&v, &w)| v * f64::from(w)).sum();
            out.push(dot + intercepts.get(t).map_or(0.0, |&b| f64::from(b)));
        }
    }
    Ok(out)
}

impl Encoder {
    fn run(&self, x: &Tensor) -> Result<Tensor, String> {
        let positions: Vec<Option<usize>> = match (&self.keys, &x.data) {
            (Keys::Strings(map), Data::Str(v)) => v.iter().map(|s| map.get(s).copied()).collect(),
            (Keys::Ints(map), Data::Int64(v)) => v.iter().map(|s| map.get(s).copied()).collect(),
            _ => {
                return Err(format!(
                    "keys of another type than the {} input",
                    x.type_name()
                ));
            }
        };
        macro_rules! pick {
            ($variant:ident) => {{
                let (Data::$variant(values), Data::$variant(default)) =
                    (&self.values, &self.default)
                else {
                    unreachable!("values and default are built with the same type")
                };
                Data::$variant(
                    positions
                        .iter()
                        .map(|p| p.map_or_else(|| default[0].clone(), |i| values[i].clone()))
                        .collect(),
                )
            }};
        }
        let data = match &self.values {
            Data::Str(_) => pick!(Str),
            Data::Int64(_) => pick!(Int64),
            Data::Float(_) => pick!(Float),
            Data::Double(_) => pick!(Double),
            Data::Bool(_) => pick!(Bool),
        };
        Ok(Tensor::new(x.shape.clone(), data))
    }
}
