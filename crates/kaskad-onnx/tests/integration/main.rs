//! Exported graphs checked twice: structurally from Rust (decoded back with
//! prost), and numerically against onnxruntime through
//! `bench/peers/onnx_agreement.py`, on models fitted to `credit_data.csv`;
//! and imported models (`kaskad-graph`) against onnxruntime the same way
//! ([`imported`]).

mod imported;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use kaskad_core::config::{Encoding, PrepareOptions};
use kaskad_core::{Column, ColumnData, Frame, binary_target, read_csv};
use kaskad_onnx::proto::{ModelProto, ValueInfoProto, data_type, tensor_shape_proto, type_proto};
use kaskad_onnx::{OPSET, OUTPUT, export, export_to};
use kaskad_prepare::Preprocessor;
use kaskad_registry::{FORMAT, FORMAT_VERSION, ModelArtifact};
use kaskad_train::{GradientBoosting, Hyperparams, Model};
use prost::Message;

const TRAIN_ROWS: usize = 3000;
const SKIP_VARIABLE: &str = "KASKAD_SKIP_ONNXRUNTIME";
const PIP: &str = "pip install onnxruntime onnx numpy";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Features and labels of `credit_data.csv`, target `Status`, positive `bad`.
fn credit_data() -> (Frame, Vec<u8>) {
    let mut frame = read_csv(&workspace().join("data/credit_data.csv")).unwrap();
    let status = frame.remove("Status").unwrap();
    let y = binary_target(&status, &["bad".to_string()]).unwrap();
    (frame, y)
}

fn artifact(
    frame: &Frame,
    y: &[u8],
    (variant, prepare): &(Encoding, PrepareOptions),
    params: Hyperparams,
) -> ModelArtifact {
    let rows: Vec<usize> = (0..TRAIN_ROWS).collect();
    let train = frame.take(&rows);
    let preprocessor =
        Preprocessor::fit(&train, *variant, Some(&y[..TRAIN_ROWS]), prepare).unwrap();
    let x = preprocessor.transform(&train).unwrap();
    let model = kaskad_train::fit(&x, &y[..TRAIN_ROWS], &params, 7).unwrap();
    // Through the serialized form, as `ModelArtifact::load` reads it: any
    // field the artifact has beyond these takes its serde default.
    serde_json::from_value(serde_json::json!({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": "credit",
        "version": 3,
        "target": "Status",
        "positive": ["bad"],
        "threshold": 0.5,
        "params": params,
        "preprocessor": preprocessor,
        "model": model,
        "trained_on": [],
    }))
    .unwrap()
}

/// Rows no training row looks like: every value missing, numbers far
/// outside the training range or infinite, levels never seen.
fn edge_rows(frame: &Frame) -> Frame {
    let columns = frame
        .columns()
        .iter()
        .map(|c| match &c.data {
            ColumnData::Numeric(_) => Column::numeric(
                c.name.clone(),
                vec![f64::NAN, 1e12, -1e12, f64::INFINITY, f64::NEG_INFINITY],
            ),
            ColumnData::Categorical(values) => {
                let seen = values.iter().flatten().next().cloned();
                Column::categorical(
                    c.name.clone(),
                    vec![None, Some("never seen".into()), seen.clone(), seen, None],
                )
            }
        })
        .collect();
    Frame::new(columns).unwrap()
}

/// The CSV the agreement script reads: missing cells empty, as the graph's
/// contract feeds them (NaN, or "" for a category).
fn to_csv(frame: &Frame) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = frame
        .names()
        .iter()
        .map(|n| quote(n))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for row in 0..frame.n_rows() {
        let cells: Vec<String> = frame
            .columns()
            .iter()
            .map(|c| match &c.data {
                ColumnData::Numeric(v) if v[row].is_nan() => String::new(),
                // Display prints the shortest string that reads back as the same f64.
                ColumnData::Numeric(v) => v[row].to_string(),
                ColumnData::Categorical(v) => v[row].as_deref().map(quote).unwrap_or_default(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn tensor_type(info: &ValueInfoProto) -> (i32, Vec<String>) {
    let Some(type_proto::Value::TensorType(t)) = info.r#type.as_ref().and_then(|t| t.value.clone())
    else {
        panic!("`{}` is not a tensor", info.name)
    };
    let dims = t
        .shape
        .expect("a shape")
        .dim
        .into_iter()
        .map(|d| match d.value {
            Some(tensor_shape_proto::dimension::Value::DimValue(v)) => v.to_string(),
            Some(tensor_shape_proto::dimension::Value::DimParam(p)) => p,
            None => "?".into(),
        })
        .collect();
    (t.elem_type, dims)
}

/// The contract, read back from the bytes: inputs, output, opset, and a
/// graph where every node reads only values defined before it.
fn check_structure(artifact: &ModelArtifact, bytes: &[u8]) {
    let model = ModelProto::decode(bytes).unwrap();
    assert_eq!(model.opset_import.len(), 1);
    assert_eq!(model.opset_import[0].domain, "");
    assert_eq!(model.opset_import[0].version, OPSET);
    let graph = model.graph.expect("a graph");

    let columns = artifact.input_columns();
    assert_eq!(graph.input.len(), columns.len());
    for (input, (name, kind)) in graph.input.iter().zip(columns) {
        assert_eq!(&input.name, name);
        let expected = match kind {
            kaskad_core::ColumnKind::Numeric => data_type::DOUBLE,
            kaskad_core::ColumnKind::Categorical => data_type::STRING,
        };
        assert_eq!(
            tensor_type(input),
            (expected, vec!["N".into(), "1".into()]),
            "{name}"
        );
    }
    assert_eq!(graph.output.len(), 1);
    assert_eq!(graph.output[0].name, OUTPUT);
    assert_eq!(
        tensor_type(&graph.output[0]),
        (data_type::DOUBLE, vec!["N".into(), "2".into()])
    );

    // Standard `ai.onnx` operators that onnxruntime and tract both run.
    let portable = [
        "Add",
        "And",
        "Cast",
        "Clip",
        "Concat",
        "Div",
        "Equal",
        "Exp",
        "Gather",
        "Gemm",
        "Greater",
        "Less",
        "LessOrEqual",
        "MatMul",
        "Mul",
        "Neg",
        "Not",
        "ReduceSum",
        "Relu",
        "Reshape",
        "Sigmoid",
        "Sub",
        "Transpose",
        "Where",
    ];
    for node in &graph.node {
        assert!(
            portable.contains(&node.op_type.as_str()),
            "{}",
            node.op_type
        );
    }

    let mut defined: HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    defined.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    for node in &graph.node {
        for input in &node.input {
            assert!(
                defined.contains(input.as_str()),
                "{} reads undefined `{input}`",
                node.name
            );
        }
        for output in &node.output {
            assert!(defined.insert(output), "`{output}` is written twice");
        }
    }
    assert!(defined.contains(OUTPUT));
}

/// Runs the agreement script (with `extra` arguments), or says why it cannot.
fn onnxruntime_agrees(model: &Path, inputs: &Path, expected: &Path, extra: &[&str]) {
    let probe = Command::new("python3")
        .args(["-c", "import onnxruntime, onnx, numpy"])
        .output();
    let missing = match &probe {
        Ok(out) if out.status.success() => None,
        // The last line of the traceback names the missing module.
        Ok(out) => Some(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
                .to_string(),
        ),
        Err(e) => Some(format!("cannot run python3: {e}")),
    };
    if let Some(why) = missing {
        if std::env::var(SKIP_VARIABLE).as_deref() == Ok("1") {
            eprintln!("onnxruntime agreement skipped ({SKIP_VARIABLE}=1): {why}");
            return;
        }
        panic!(
            "the onnxruntime agreement check needs python3 with onnxruntime, onnx and numpy \
             (`{PIP}`), or {SKIP_VARIABLE}=1 to skip it: {why}"
        );
    }
    let script = workspace().join("bench/peers/onnx_agreement.py");
    let out = Command::new("python3")
        .arg(script)
        .args([model, inputs, expected])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}", stdout.trim());
    assert!(
        out.status.success(),
        "onnxruntime disagrees with kaskad:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn exports_and_agrees(prepare: (Encoding, PrepareOptions), params: Hyperparams) {
    let (frame, y) = credit_data();
    agrees(&artifact(&frame, &y, &prepare, params), &frame);
}

/// Checks the structure of `artifact`'s graph, then has onnxruntime score
/// `frame` plus [`edge_rows`] and compare with kaskad's scores.
fn agrees(artifact: &ModelArtifact, frame: &Frame) {
    check_structure(artifact, &export(artifact).unwrap());

    let scored = Frame::vstack(&[frame.clone(), edge_rows(frame)]).unwrap();
    let scores = artifact.score(&scored).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.onnx");
    let inputs = dir.path().join("inputs.csv");
    let expected = dir.path().join("expected.csv");
    export_to(artifact, &model).unwrap();
    std::fs::write(&inputs, to_csv(&scored)).unwrap();
    let mut csv = String::from("score\n");
    for s in &scores {
        writeln!(csv, "{s}").unwrap();
    }
    std::fs::write(&expected, csv).unwrap();
    onnxruntime_agrees(&model, &inputs, &expected, &[]);
}

fn onehot() -> (Encoding, PrepareOptions) {
    (Encoding::OneHot, PrepareOptions::default())
}

/// Ordinal codes, rarer levels pooled and no scaling: the other branches
/// of the preprocessing.
fn ordinal() -> (Encoding, PrepareOptions) {
    (
        Encoding::Ordinal,
        PrepareOptions {
            min_category_share: 0.05,
            scale: false,
            ..PrepareOptions::default()
        },
    )
}

/// Weight of evidence: `credit_data.csv` has missing numbers (their own
/// bin) and rare levels (neutral, like the unseen ones of [`edge_rows`]).
fn woe() -> (Encoding, PrepareOptions) {
    (Encoding::Woe, PrepareOptions::default())
}

#[test]
fn logistic_regression_with_one_hot_levels() {
    exports_and_agrees(onehot(), Hyperparams::Lr { c: 1.0 });
}

/// No missing flags or levels and no pooling: credit_data.csv's missing
/// categories (and [`edge_rows`]' ones) take the most frequent level.
#[test]
fn logistic_regression_with_plain_one_hot_levels() {
    exports_and_agrees(
        (Encoding::OneHotPlain, PrepareOptions::default()),
        Hyperparams::Lr { c: 1.0 },
    );
}

#[test]
fn logistic_regression_with_weight_of_evidence() {
    exports_and_agrees(woe(), Hyperparams::Lr { c: 1.0 });
}

#[test]
fn gradient_boosting_with_weight_of_evidence() {
    exports_and_agrees(
        woe(),
        Hyperparams::Gbdt {
            n_trees: 30,
            learning_rate: 0.1,
            max_leaves: 7,
            min_samples_leaf: 20,
        },
    );
}

#[test]
fn logistic_regression_with_ordinal_codes() {
    exports_and_agrees(ordinal(), Hyperparams::Lr { c: 1.0 });
}

#[test]
fn decision_tree_with_one_hot_levels() {
    exports_and_agrees(
        onehot(),
        Hyperparams::Tree {
            max_depth: 8,
            min_samples_leaf: 10,
        },
    );
}

#[test]
fn decision_tree_with_ordinal_codes() {
    exports_and_agrees(
        ordinal(),
        Hyperparams::Tree {
            max_depth: 5,
            min_samples_leaf: 20,
        },
    );
}

#[test]
fn gradient_boosting() {
    exports_and_agrees(
        onehot(),
        Hyperparams::Gbdt {
            n_trees: 60,
            learning_rate: 0.1,
            max_leaves: 15,
            min_samples_leaf: 20,
        },
    );
}

#[test]
fn perceptron() {
    exports_and_agrees(
        onehot(),
        Hyperparams::Mlp {
            hidden: vec![16, 8],
            learning_rate: 0.001,
            alpha: 0.0001,
            max_epochs: 10,
        },
    );
}

/// A tree that is a single leaf, and a boosted model whose early stopping
/// kept no tree: the padding of the tree tensors.
#[test]
fn degenerate_trees() {
    let (frame, y) = credit_data();
    let stump = artifact(
        &frame,
        &y,
        &onehot(),
        Hyperparams::Tree {
            max_depth: 0,
            min_samples_leaf: 1,
        },
    );
    agrees(&stump, &frame);
    let mut empty = stump;
    empty.model = Model::Gbdt(GradientBoosting::new(-1.2, Vec::new()));
    agrees(&empty, &frame);
}
