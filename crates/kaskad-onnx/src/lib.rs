//! Export of a whole kaskad model — preprocessing and model — as one ONNX
//! graph, so that any ONNX runtime scores raw applicant rows exactly as
//! kaskad does.
//!
//! `kaskad-onnx` owns the graph contract and its construction; the ONNX
//! protobuf messages it writes are the prost structs of `kaskad-graph`
//! (re-exported as [`proto`]), the crate that also evaluates imported
//! ONNX models. The contract:
//!
//! - one input per raw column, named exactly as the column, of shape
//!   `[N, 1]`: `tensor(double)` for a numeric column (NaN or ±inf is a
//!   missing value) and `tensor(string)` for a categorical one, where a
//!   missing value is the empty string `""`. Strings are compared as they
//!   are: pass them trimmed and with missing markers (`NA`, `?`, …) turned
//!   into `""`, as kaskad's CSV reader does;
//! - one output, [`OUTPUT`], `tensor(double)` of shape `[N, 2]`: column 0
//!   is P(good), column 1 is P(default), the score kaskad reports;
//! - only standard `ai.onnx` operators at opset [`OPSET`] (19 is the first
//!   where `Equal` compares strings), none of the ONNX-ML domain, and none
//!   that tract lacks for doubles: onnxruntime (1.32) and tract (0.23; 0.21
//!   cannot compare strings) both run it. Logistic regression, the CART
//!   tree, gradient-boosted trees and the perceptron export; k-nearest
//!   neighbours does not.
//!
//! Every feature is computed with the same double-precision operations as
//! `Preprocessor::transform`, and tree splits compare against the exact
//! `f64` thresholds, so scores agree with kaskad's to the rounding of the
//! last sums: measured on `credit_data.csv`, at most 5e-16, and 2e-7 for the
//! perceptron, whose weights and arithmetic are `f32` in kaskad too.
//!
//! ```no_run
//! # fn run(artifact: &kaskad_registry::ModelArtifact) -> Result<(), kaskad_onnx::OnnxError> {
//! kaskad_onnx::export_to(artifact, std::path::Path::new("model.onnx"))?;
//! # Ok(()) }
//! ```

mod error;
mod features;
mod graph;
mod model;

pub use kaskad_graph::proto;

use std::io::Write;
use std::path::Path;

use kaskad_registry::ModelArtifact;
use prost::Message;

use crate::graph::{Graph, int};
use crate::proto::tensor_shape_proto::{Dimension, dimension};
use crate::proto::{
    GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto,
    TypeProto, ValueInfoProto, data_type, type_proto,
};

pub use error::OnnxError;

/// The name of the graph's only output.
pub const OUTPUT: &str = "probabilities";
/// The `ai.onnx` opset the graph is written against.
pub const OPSET: i64 = 19;
/// The IR version that opset 19 came with (ONNX 1.14).
const IR_VERSION: i64 = 9;

/// The ONNX model (a serialized `ModelProto`) of `artifact`.
pub fn export(artifact: &ModelArtifact) -> Result<Vec<u8>, OnnxError> {
    Ok(build(artifact)?.encode_to_vec())
}

/// Writes [`export`]'s model to `path`, through a temporary file beside it
/// that is synced and renamed, so `path` never holds half a model.
pub fn export_to(artifact: &ModelArtifact, path: &Path) -> Result<(), OnnxError> {
    let bytes = export(artifact)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OnnxError::Io { path, source }
    };
    let mut file = std::fs::File::create(temporary).map_err(io(temporary))?;
    file.write_all(&bytes).map_err(io(temporary))?;
    file.sync_all().map_err(io(temporary))?;
    std::fs::rename(temporary, path).map_err(io(path))
}

fn build(artifact: &ModelArtifact) -> Result<ModelProto, OnnxError> {
    let pre = &artifact.preprocessor;
    let inputs = features::inputs(pre);
    if let Some(clash) = inputs.iter().find(|i| i.name == OUTPUT) {
        return Err(OnnxError::ReservedName {
            column: clash.name.clone(),
        });
    }
    let mut graph = Graph::new(inputs.iter().map(|i| i.name.as_str()).chain([OUTPUT]));
    let features = features::build(&mut graph, pre)?;
    let p = model::build(
        &mut graph,
        &artifact.model,
        artifact.params.algorithm(),
        &features,
        pre.feature_names().len(),
    )?;
    let one = graph.doubles("one", &[], vec![1.0]);
    let good = graph.op("Sub", &[&one, &p], "p_good");
    graph.op_into("Concat", &[&good, &p], vec![int("axis", 1)], OUTPUT);

    let input = inputs
        .iter()
        .map(|i| {
            let doc = if i.elem_type == data_type::STRING {
                "categorical; the empty string is a missing value"
            } else {
                "numeric; NaN or ±inf is a missing value"
            };
            value_info(&i.name, i.elem_type, 1, doc)
        })
        .collect();
    let output = vec![value_info(
        OUTPUT,
        data_type::DOUBLE,
        2,
        "column 0: P(good), column 1: P(default)",
    )];
    let meta = |key: &str, value: String| StringStringEntryProto {
        key: format!("kaskad.{key}"),
        value,
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "kaskad".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: artifact.version,
        doc_string: format!(
            "kaskad model `{}` version {} ({}): preprocessing and model in one graph. \
             Inputs: one [N, 1] tensor per raw column; output `{OUTPUT}` [N, 2] = \
             (P(good), P(default)).",
            artifact.name,
            artifact.version,
            artifact.params.algorithm()
        ),
        graph: Some(GraphProto {
            node: graph.nodes,
            name: artifact.name.clone(),
            initializer: graph.initializers,
            doc_string: String::new(),
            input,
            output,
        }),
        metadata_props: vec![
            meta("name", artifact.name.clone()),
            meta("version", artifact.version.to_string()),
            meta("algorithm", artifact.params.algorithm().into()),
            meta("target", artifact.target.clone()),
            meta("positive", artifact.positive.join(",")),
            meta("threshold", artifact.threshold.to_string()),
        ],
    })
}

/// A `[N, width]` tensor of `elem_type`, `N` left symbolic.
fn value_info(name: &str, elem_type: i32, width: i64, doc: &str) -> ValueInfoProto {
    let dim = |value| Dimension { value: Some(value) };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(dimension::Value::DimParam("N".into())),
                        dim(dimension::Value::DimValue(width)),
                    ],
                }),
            })),
        }),
        doc_string: doc.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use kaskad_core::config::{Encoding, PrepareOptions};
    use kaskad_core::{Column, Frame};
    use kaskad_prepare::Preprocessor;
    use kaskad_registry::{FORMAT, FORMAT_VERSION};
    use kaskad_train::{BoostedTree, GradientBoosting, Hyperparams, Model};

    use super::*;

    fn artifact(frame: Frame, params: Hyperparams) -> ModelArtifact {
        let preprocessor =
            Preprocessor::fit(&frame, Encoding::OneHot, None, &PrepareOptions::default()).unwrap();
        let x = preprocessor.transform(&frame).unwrap();
        let y: Vec<u8> = (0..frame.n_rows()).map(|i| u8::from(i % 2 == 0)).collect();
        let model = kaskad_train::fit(&x, &y, &params, 1).unwrap();
        // Through the serialized form, as `ModelArtifact::load` reads it:
        // any field the artifact has beyond these takes its serde default.
        serde_json::from_value(serde_json::json!({
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": "test",
            "version": 1,
            "target": "y",
            "positive": ["1"],
            "threshold": 0.5,
            "params": params,
            "preprocessor": preprocessor,
            "model": model,
            "trained_on": [],
        }))
        .unwrap()
    }

    fn frame(category: &str, levels: [&str; 2]) -> Frame {
        Frame::new(vec![
            Column::numeric("income", vec![1.0, 2.0, 3.0, 4.0]),
            Column::categorical(
                category,
                [levels[0], levels[1], levels[0], levels[1]]
                    .map(|l| Some(l.to_string()))
                    .to_vec(),
            ),
        ])
        .unwrap()
    }

    const LR: Hyperparams = Hyperparams::Lr { c: 1.0 };

    #[test]
    fn nearest_neighbours_are_refused_by_name() {
        let knn = artifact(
            frame("home", ["rent", "own"]),
            Hyperparams::Knn { k: 1, max_rows: 4 },
        );
        let err = export(&knn).unwrap_err();
        assert!(
            matches!(err, OnnxError::Unsupported { family: "knn", .. }),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("knn models cannot be exported"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_level_would_read_as_missing() {
        let err = export(&artifact(frame("home", ["rent", ""]), LR)).unwrap_err();
        assert!(err.to_string().contains("`home`"), "{err}");
        assert!(matches!(err, OnnxError::EmptyLevel { .. }));
    }

    #[test]
    fn a_column_cannot_take_the_output_name() {
        let err = export(&artifact(frame(OUTPUT, ["rent", "own"]), LR)).unwrap_err();
        assert!(matches!(err, OnnxError::ReservedName { .. }), "{err}");
    }

    #[test]
    fn internal_names_step_around_column_names() {
        // Columns named like the values the export creates for `income`.
        let clash = frame("income/missing", ["a", "b"]);
        let bytes = export(&artifact(clash, LR)).unwrap();
        let graph = ModelProto::decode(bytes.as_slice()).unwrap().graph.unwrap();
        assert!(
            graph
                .node
                .iter()
                .all(|n| n.output.iter().all(|o| o != "income/missing"))
        );
    }

    #[test]
    fn corrupt_boosted_trees_are_errors_not_panics() {
        let mut gbdt = artifact(frame("home", ["rent", "own"]), LR);
        let tree = |children: Vec<u32>| BoostedTree {
            feature: vec![0; children.len()],
            threshold: vec![0.0; children.len()],
            missing_left: vec![false; children.len()],
            value: vec![0.0; children.len()],
            cover: vec![0; children.len()],
            children,
        };
        for (children, reason) in [
            (vec![1, 0], "past its 2 nodes"),
            (vec![1, 1, 0], "reached twice"),
        ] {
            gbdt.model = Model::Gbdt(GradientBoosting::new(0.0, vec![tree(children)]));
            let err = export(&gbdt).unwrap_err();
            assert!(matches!(err, OnnxError::MalformedTree { .. }), "{err}");
            assert!(err.to_string().contains(reason), "{err}");
        }
    }
}
