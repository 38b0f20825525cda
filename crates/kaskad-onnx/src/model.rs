//! The model families as graph nodes: the `[N, F]` feature matrix in, the
//! `[N, 1]` probability of default out.

use kaskad_train::{BoostedTree, DecisionTree, GradientBoosting, LogisticRegression, Mlp, Model};
use serde::Deserialize;

use crate::OnnxError;
use crate::graph::{Graph, int, ints};
use crate::proto::data_type;

/// Appends `model` (of the family `algorithm` names) to `graph`, reading
/// `features` (`n_features` wide); returns the name of the `[N, 1]`
/// probability of default.
pub(crate) fn build(
    graph: &mut Graph,
    model: &Model,
    algorithm: &'static str,
    features: &str,
    n_features: usize,
) -> Result<String, OnnxError> {
    match model {
        Model::Lr(lr) => logistic(graph, lr, features, n_features),
        Model::Tree(tree) => {
            let ensemble = Ensemble {
                trees: vec![cart(tree)?],
            };
            // A leaf holds the positive rate itself: no link function.
            ensemble.raw_score(graph, features, n_features)
        }
        Model::Gbdt(gbdt) => boosted(graph, gbdt, features, n_features),
        Model::Mlp(mlp) => perceptron(graph, mlp, features, n_features),
        Model::LrInt8(_) | Model::MlpInt8(_) => Err(OnnxError::Unsupported {
            family: algorithm,
            reason: "kaskad's INT8 variant quantizes activations per row, which ONNX's \
                     QuantizeLinear (one scale per tensor or axis of weights) does not express; \
                     export the version it was quantized from",
        }),
        Model::Knn(_) => Err(OnnxError::Unsupported {
            family: algorithm,
            reason: "its score is a vote of the nearest stored training rows, \
                     which standard operators express only as an N×rows distance matrix",
        }),
    }
}

fn check_width(model: &'static str, found: usize, n_features: usize) -> Result<(), OnnxError> {
    if found != n_features {
        return Err(OnnxError::ModelWidth {
            model,
            found,
            expected: n_features,
        });
    }
    Ok(())
}

/// `Sigmoid(features · w + b)`.
fn logistic(
    graph: &mut Graph,
    lr: &LogisticRegression,
    features: &str,
    n_features: usize,
) -> Result<String, OnnxError> {
    check_width("logistic regression", lr.coefficients.len(), n_features)?;
    let w = graph.doubles("lr/coefficients", &[n_features, 1], lr.coefficients.clone());
    let b = graph.doubles("lr/intercept", &[], vec![lr.intercept]);
    let product = graph.op("MatMul", &[features, &w], "lr/product");
    let logit = graph.op("Add", &[&product, &b], "lr/logit");
    Ok(sigmoid(graph, &logit, "lr"))
}

/// `1 / (1 + exp(-z))` on doubles, spelled out because tract's `Sigmoid`
/// takes `f32` only. Where `exp(-z)` overflows (z < −709) the quotient is
/// 0, the right limit.
fn sigmoid(graph: &mut Graph, z: &str, prefix: &str) -> String {
    let one = graph.doubles(&format!("{prefix}/one"), &[], vec![1.0]);
    let minus_z = graph.op("Neg", &[z], &format!("{prefix}/minus_logit"));
    let odds_against = graph.op("Exp", &[&minus_z], &format!("{prefix}/odds_against"));
    let denominator = graph.op(
        "Add",
        &[&one, &odds_against],
        &format!("{prefix}/denominator"),
    );
    graph.op(
        "Div",
        &[&one, &denominator],
        &format!("{prefix}/probability"),
    )
}

/// `Sigmoid(base_score + Σ trees)`.
fn boosted(
    graph: &mut Graph,
    gbdt: &GradientBoosting,
    features: &str,
    n_features: usize,
) -> Result<String, OnnxError> {
    let ensemble = Ensemble {
        trees: gbdt
            .trees
            .iter()
            .enumerate()
            .map(|(i, t)| boosted_tree(i, t))
            .collect::<Result<_, _>>()?,
    };
    let trees = ensemble.raw_score(graph, features, n_features)?;
    let base = graph.doubles("gbdt/base_score", &[], vec![gbdt.base_score]);
    let logit = graph.op("Add", &[&base, &trees], "gbdt/logit");
    Ok(sigmoid(graph, &logit, "gbdt"))
}

/// `Sigmoid(Gemm(… Relu(Gemm(x, W₁, b₁)) …))` in single precision, as
/// `Mlp::predict_proba` computes: the features are rounded to `f32` first
/// and the probability widened back to `f64` at the end.
fn perceptron(
    graph: &mut Graph,
    mlp: &Mlp,
    features: &str,
    n_features: usize,
) -> Result<String, OnnxError> {
    let malformed = |reason: String| OnnxError::MalformedMlp { reason };
    let mut width = n_features;
    let mut a = graph.cast(features, data_type::FLOAT, "mlp/input");
    for (i, layer) in mlp.layers.iter().enumerate() {
        if layer.inputs != width {
            return Err(if i == 0 {
                OnnxError::ModelWidth {
                    model: "perceptron",
                    found: layer.inputs,
                    expected: n_features,
                }
            } else {
                malformed(format!(
                    "layer {i} reads {} values where the layer before makes {width}",
                    layer.inputs
                ))
            });
        }
        if layer.weights.len() != layer.inputs * layer.outputs || layer.bias.len() != layer.outputs
        {
            return Err(malformed(format!(
                "layer {i} is {}×{} but holds {} weights and {} biases",
                layer.outputs,
                layer.inputs,
                layer.weights.len(),
                layer.bias.len()
            )));
        }
        // `weights` is outputs × inputs, row-major: Gemm reads it transposed.
        let w = graph.floats(
            &format!("mlp/{i}/weights"),
            &[layer.outputs, layer.inputs],
            layer.weights.clone(),
        );
        let b = graph.floats(
            &format!("mlp/{i}/bias"),
            &[layer.outputs],
            layer.bias.clone(),
        );
        a = graph.op_with(
            "Gemm",
            &[&a, &w, &b],
            vec![int("transB", 1)],
            &format!("mlp/{i}/z"),
        );
        if i + 1 < mlp.layers.len() {
            a = graph.op("Relu", &[&a], &format!("mlp/{i}/a"));
        }
        width = layer.outputs;
    }
    if mlp.layers.is_empty() || width != 1 {
        return Err(malformed(format!(
            "it ends in {width} outputs where one probability is expected"
        )));
    }
    let p = graph.op("Sigmoid", &[&a], "mlp/probability_f32");
    Ok(graph.cast_double(&p, "mlp/probability"))
}

/// A tree flattened for the graph: its splits, and every leaf with the
/// turns of its path.
struct FlatTree {
    /// `(feature, threshold)`; a row goes left when `x[feature] <= threshold`.
    splits: Vec<(usize, f64)>,
    leaves: Vec<FlatLeaf>,
}

struct FlatLeaf {
    value: f64,
    /// `(split index, goes left)` from the root down.
    path: Vec<(usize, bool)>,
}

/// One node of a tree being flattened.
enum Step {
    /// `(feature, threshold, left child, right child)`.
    Split(usize, f64, usize, usize),
    Leaf(f64),
}

/// Flattens a tree of `len` nodes that `node` looks up, from node 0. Walks
/// with an explicit stack and refuses child indices that are out of range
/// or visited twice, so a corrupt artifact is an error rather than a panic
/// or an endless loop.
fn flatten(what: &str, len: usize, node: impl Fn(usize) -> Step) -> Result<FlatTree, OnnxError> {
    let malformed = |reason: String| OnnxError::MalformedTree {
        tree: what.to_string(),
        reason,
    };
    if len == 0 {
        return Err(malformed("it has no nodes".into()));
    }
    let mut seen = vec![false; len];
    let mut tree = FlatTree {
        splits: Vec::new(),
        leaves: Vec::new(),
    };
    let mut stack = vec![(0usize, Vec::new())];
    while let Some((at, path)) = stack.pop() {
        if at >= len {
            return Err(malformed(format!(
                "a child index {at} is past its {len} nodes"
            )));
        }
        if std::mem::replace(&mut seen[at], true) {
            return Err(malformed(format!("node {at} is reached twice")));
        }
        match node(at) {
            Step::Leaf(value) => tree.leaves.push(FlatLeaf { value, path }),
            Step::Split(feature, threshold, left, right) => {
                let split = tree.splits.len();
                tree.splits.push((feature, threshold));
                let mut left_path = path.clone();
                left_path.push((split, true));
                let mut right_path = path;
                right_path.push((split, false));
                stack.push((right, right_path));
                stack.push((left, left_path));
            }
        }
    }
    Ok(tree)
}

/// The CART tree's nodes as the artifact stores them. `kaskad_train` does
/// not export its node type, so the nodes are read back through their
/// serialized form, which the artifact format already pins down.
#[derive(Deserialize)]
#[serde(tag = "node", rename_all = "lowercase")]
enum CartNode {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    Leaf {
        probability: f64,
    },
}

fn cart(tree: &DecisionTree) -> Result<FlatTree, OnnxError> {
    let nodes: Vec<CartNode> = serde_json::to_value(&tree.nodes)
        .and_then(serde_json::from_value)
        .map_err(|e| OnnxError::MalformedTree {
            tree: "decision tree".into(),
            reason: e.to_string(),
        })?;
    flatten("decision tree", nodes.len(), |i| match nodes[i] {
        CartNode::Split {
            feature,
            threshold,
            left,
            right,
        } => Step::Split(feature, threshold, left, right),
        CartNode::Leaf { probability } => Step::Leaf(probability),
    })
}

/// `missing_left` is left out on purpose: the features a preprocessor
/// makes are never NaN, so that branch of a split is never taken.
fn boosted_tree(index: usize, t: &BoostedTree) -> Result<FlatTree, OnnxError> {
    let what = format!("boosted tree {index}");
    let len = t.children.len();
    if [t.feature.len(), t.threshold.len(), t.value.len()]
        .iter()
        .any(|&l| l != len)
    {
        return Err(OnnxError::MalformedTree {
            tree: what,
            reason: "its node vectors differ in length".into(),
        });
    }
    flatten(&what, len, |i| match t.children[i] as usize {
        0 => Step::Leaf(t.value[i]),
        left => Step::Split(t.feature[i] as usize, t.threshold[i], left, left + 1),
    })
}

/// Trees evaluated with dense standard operators only (the "GEMM" strategy
/// of Microsoft's Hummingbird), not the ONNX-ML `TreeEnsembleClassifier`:
///
/// - tract has no ONNX-ML operators, and this graph runs on any runtime
///   that has `Gather`, `LessOrEqual`, `MatMul` and `Equal`;
/// - `TreeEnsemble*` hold thresholds as `float32` attributes (the double
///   variant needs `ai.onnx.ml` opset 3, which few runtimes have), and a
///   threshold rounded to `f32` sends rows near it down the other branch;
///   here thresholds stay `f64` and every comparison is the one kaskad makes.
///
/// The price is `O(N · splits · leaves)` work per tree instead of
/// `O(N · depth)`, negligible at kaskad's tree sizes (a depth-8 tree has at
/// most 255 splits and 256 leaves).
///
/// All trees are padded to the same number of splits `S` and leaves `L` and
/// evaluated at once as a batch of `T` matrix products:
///
/// 1. `go_left[t, n, s] = x[n, feature[t, s]] <= threshold[t, s]` (0/1);
/// 2. `turns[t, n, l] = Σ_s go_left[t, n, s] · dir[t, s, l]` with `dir` = +1
///    where leaf `l`'s path goes left at split `s`, −1 where it goes right,
///    0 off the path. A row reaches `l` exactly when `turns` equals the
///    number of left turns on `l`'s path (any wrong turn lowers it by one);
///    padding leaves need −1, which no row reaches;
/// 3. `raw[n] = Σ_t Σ_l [turns == left_turns] · value[t, l]`.
///
/// Every intermediate is a small integer or a single leaf value, so each
/// tree's output is exactly kaskad's; only the sum over trees rounds, as
/// kaskad's own sum does.
struct Ensemble {
    trees: Vec<FlatTree>,
}

impl Ensemble {
    /// Appends the ensemble; returns the `[N, 1]` sum of the trees' leaf values.
    fn raw_score(
        &self,
        graph: &mut Graph,
        features: &str,
        n_features: usize,
    ) -> Result<String, OnnxError> {
        // No tree at all (early stopping kept none) still needs an `[N, 1]`
        // term, so it becomes one single-leaf tree worth 0.
        let empty = [FlatTree {
            splits: Vec::new(),
            leaves: vec![FlatLeaf {
                value: 0.0,
                path: Vec::new(),
            }],
        }];
        let trees = if self.trees.is_empty() {
            &empty[..]
        } else {
            &self.trees
        };
        let t = trees.len();
        // At least one split column, so that a single-leaf tree still has a
        // (never read) comparison to make.
        let s = trees
            .iter()
            .map(|t| t.splits.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let l = trees.iter().map(|t| t.leaves.len()).max().unwrap_or(0);
        let mut feature = vec![0i64; t * s];
        let mut threshold = vec![0.0; t * s];
        let mut dir = vec![0.0; t * s * l];
        let mut left_turns = vec![-1.0; t * l];
        let mut value = vec![0.0; t * l];
        for (ti, tree) in trees.iter().enumerate() {
            for (si, &(f, th)) in tree.splits.iter().enumerate() {
                if f >= n_features {
                    return Err(OnnxError::ModelWidth {
                        model: "tree",
                        found: f + 1,
                        expected: n_features,
                    });
                }
                feature[ti * s + si] = f as i64;
                threshold[ti * s + si] = th;
            }
            for (li, leaf) in tree.leaves.iter().enumerate() {
                value[ti * l + li] = leaf.value;
                let mut lefts = 0.0;
                for &(si, left) in &leaf.path {
                    dir[(ti * s + si) * l + li] = if left { 1.0 } else { -1.0 };
                    lefts += f64::from(u8::from(left));
                }
                left_turns[ti * l + li] = lefts;
            }
        }
        let feature = graph.int64s("trees/feature", &[t * s], feature);
        let shape = graph.int64s("trees/split_shape", &[3], vec![0, t as i64, s as i64]);
        let threshold = graph.doubles("trees/threshold", &[t, 1, s], threshold);
        let dir = graph.doubles("trees/direction", &[t, s, l], dir);
        let left_turns = graph.doubles("trees/left_turns", &[t, 1, l], left_turns);
        let value = graph.doubles("trees/leaf_value", &[t, l, 1], value);
        let axis0 = graph.int64s("trees/axis0", &[1], vec![0]);

        let gathered = graph.op_with(
            "Gather",
            &[features, &feature],
            vec![int("axis", 1)],
            "trees/x",
        );
        // [N, T·S] → [N, T, S] → [T, N, S]: one batched MatMul over trees.
        let by_tree = graph.op("Reshape", &[&gathered, &shape], "trees/x_by_tree");
        let by_tree = graph.op_with(
            "Transpose",
            &[&by_tree],
            vec![ints("perm", vec![1, 0, 2])],
            "trees/x_tnS",
        );
        let goes_left = graph.op("LessOrEqual", &[&by_tree, &threshold], "trees/goes_left");
        let goes_left = graph.cast_double(&goes_left, "trees/goes_left_01");
        let turns = graph.op("MatMul", &[&goes_left, &dir], "trees/turns");
        let reached = graph.op("Equal", &[&turns, &left_turns], "trees/reached");
        let reached = graph.cast_double(&reached, "trees/reached_01");
        let per_tree = graph.op("MatMul", &[&reached, &value], "trees/per_tree");
        Ok(graph.op_with(
            "ReduceSum",
            &[&per_tree, &axis0],
            vec![int("keepdims", 0)],
            "trees/raw",
        ))
    }
}
