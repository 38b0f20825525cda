//! Imported models: the scikit-learn and LightGBM fixtures of
//! `tests/fixtures` (made by `bench/peers/make_onnx_fixtures.py`) scored by
//! kaskad's evaluator and by onnxruntime on the same rows, within 1e-5; and
//! the models kaskad refuses at import, with the reason.

use std::fmt::Write as _;
use std::path::PathBuf;

use kaskad_core::Frame;
use kaskad_graph::{GraphError, ImportSpec, ImportedModel};

use super::{credit_data, edge_rows, onnxruntime_agrees, to_csv};

/// The numeric columns of `credit_data.csv`, in the order the fixtures'
/// single `[N, 9]` input holds them.
const NUMERIC: [&str; 9] = [
    "Seniority",
    "Time",
    "Age",
    "Expenses",
    "Income",
    "Assets",
    "Debt",
    "Amount",
    "Price",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn features() -> Option<Vec<String>> {
    Some(NUMERIC.map(String::from).to_vec())
}

fn load(name: &str, spec: &ImportSpec) -> Result<ImportedModel, GraphError> {
    ImportedModel::new(&std::fs::read(fixture(name)).unwrap(), spec)
}

/// Every credit row plus rows with missing numbers, numbers far outside
/// the training range and unseen levels (infinite values left out: they
/// make NaN scores on both sides).
fn rows() -> Frame {
    let (frame, _) = credit_data();
    let edges = edge_rows(&frame);
    Frame::vstack(&[frame, edges.take(&[0, 1, 2])]).unwrap()
}

/// Scores `name` with kaskad and onnxruntime and compares them.
fn imports_and_agrees(name: &str, spec: ImportSpec) {
    let model = load(name, &spec).unwrap();
    let frame = rows();
    let scores = model.score(&frame).unwrap();
    assert_eq!(scores.len(), frame.n_rows());
    assert!(
        scores.iter().all(|s| s.is_finite()),
        "{name}: non-finite scores"
    );
    let spread = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        - scores.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(spread > 0.1, "{name}: scores barely vary ({spread})");

    let dir = tempfile::tempdir().unwrap();
    let (inputs, expected) = (
        dir.path().join("inputs.csv"),
        dir.path().join("expected.csv"),
    );
    std::fs::write(&inputs, to_csv(&frame)).unwrap();
    let mut csv = String::from("score\n");
    for s in &scores {
        writeln!(csv, "{s}").unwrap();
    }
    std::fs::write(&expected, csv).unwrap();
    let mut extra = vec!["--output".to_string(), model.output().to_string()];
    if let Some(features) = &spec.features {
        extra.extend(["--features".to_string(), features.join(",")]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    onnxruntime_agrees(&fixture(name), &inputs, &expected, &extra);
}

fn matrix() -> ImportSpec {
    ImportSpec {
        features: features(),
        output: None,
    }
}

#[test]
fn scikit_learn_pipeline_with_per_column_inputs() {
    let model = load("lr_pipeline.onnx", &ImportSpec::default()).unwrap();
    // Inputs by name, kinds from their types; the ZipMap output is the score.
    assert_eq!(model.input_columns().len(), 13);
    assert!(
        model
            .input_columns()
            .iter()
            .any(|(n, k)| n == "Home" && *k == kaskad_core::ColumnKind::Categorical)
    );
    assert_eq!(model.output(), "output_probability");
    imports_and_agrees("lr_pipeline.onnx", ImportSpec::default());
}

#[test]
fn decision_tree() {
    imports_and_agrees("tree.onnx", matrix());
}

#[test]
fn random_forest_with_zipmap() {
    imports_and_agrees("forest.onnx", matrix());
}

#[test]
fn scikit_learn_gradient_boosting() {
    imports_and_agrees("sklearn_gbdt.onnx", matrix());
}

#[test]
fn perceptron_with_scaler() {
    imports_and_agrees("mlp.onnx", matrix());
}

#[test]
fn lightgbm() {
    imports_and_agrees("lightgbm.onnx", matrix());
}

#[test]
fn linear_regressor_with_imputer() {
    imports_and_agrees("linear_regressor.onnx", matrix());
}

#[test]
fn gradient_boosting_regressor() {
    imports_and_agrees("gbdt_regressor.onnx", matrix());
}

#[test]
fn an_unsupported_operator_is_refused_at_import_naming_its_node() {
    let err = load("svm.onnx", &matrix()).unwrap_err();
    assert!(
        matches!(&err, GraphError::Unsupported { op_type, .. } if op_type == "SVMClassifier"),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("ai.onnx.ml.SVMClassifier"), "{text}");
    assert!(
        text.contains("TreeEnsembleClassifier"),
        "lists what is supported: {text}"
    );
}

#[test]
fn binding_errors_say_what_to_change() {
    let short = ImportSpec {
        features: Some(NUMERIC[..8].iter().map(|s| s.to_string()).collect()),
        output: None,
    };
    let err = load("tree.onnx", &short).unwrap_err().to_string();
    assert!(err.contains("9 columns but --features names 8"), "{err}");

    let err = load("tree.onnx", &ImportSpec::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--features"), "{err}");

    let err = load("lr_pipeline.onnx", &matrix()).unwrap_err().to_string();
    assert!(err.contains("13 inputs"), "{err}");

    let unknown = ImportSpec {
        features: features(),
        output: Some("nope".into()),
    };
    let err = load("tree.onnx", &unknown).unwrap_err().to_string();
    assert!(
        err.contains("no output `nope`") && err.contains("probabilities"),
        "{err}"
    );

    let err = ImportedModel::new(b"model,csv\n1,2\n", &ImportSpec::default()).unwrap_err();
    assert!(matches!(err, GraphError::Decode(_)), "{err}");
}

#[test]
fn rows_without_a_column_the_model_reads_are_an_error() {
    let model = load("tree.onnx", &matrix()).unwrap();
    let mut frame = rows();
    frame.remove("Income");
    let err = model.score(&frame).unwrap_err().to_string();
    assert!(err.contains("Income"), "{err}");
}
