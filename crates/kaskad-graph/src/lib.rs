//! ONNX models in kaskad: the protobuf messages (shared with the export in
//! `kaskad-onnx`) and an evaluator for the graphs that scikit-learn
//! (skl2onnx) and LightGBM (onnxmltools) exports produce, so that a model
//! trained elsewhere is registered, served and cascaded like a native one.
//!
//! `kaskad-graph` owns decoding a model ([`OnnxModel`]), compiling the nodes
//! an output needs into a [`Program`] — where every operator is checked, so
//! an unsupported one fails at import naming its node, never while
//! scoring — and binding a program to raw columns ([`ImportedModel`]): one
//! `[N, 1]` input per column named as the column, or one `[N, F]` input
//! whose columns the caller names in order.
//!
//! Why an evaluator of our own rather than tract: tract-onnx runs the dense
//! operators (MatMul, Gemm, activations) but not the ONNX-ML domain these
//! exports are made of — ZipMap, Scaler, OneHotEncoder, Imputer, and the
//! TreeEnsembleClassifier that scikit-learn's gradient boosting writes fail
//! to load (measured, `/work/shared/notes/onnx-in-rust.md`). A credit model
//! from scikit-learn is such a graph end to end, so the ML operators are
//! needed anyway, and the standard operators around them are a handful of
//! small loops. Tree ensembles are flattened at import into parallel node
//! arrays walked by index, which is where onnxruntime is slowest.
//!
//! Supported: the standard operators in `ops::STANDARD` and the ONNX-ML
//! operators in `ml::ML` (every one skl2onnx 1.20 and onnxmltools 1.16 write
//! for linear models, tree ensembles, MLPs and their preprocessing, except
//! SVMs). Arithmetic follows the graph's types — float tensors stay `f32`
//! like onnxruntime's kernels — with sums taken in `f64`, so scores agree
//! with onnxruntime within 1e-5 (checked on every fixture model by the
//! agreement tests in `kaskad-onnx`).

mod attrs;
mod error;
mod imported;
mod ml;
mod ops;
mod program;
pub mod proto;
mod tensor;
mod trees;

pub use error::GraphError;
pub use imported::{ImportSpec, ImportedModel};
pub use program::{ML_DOMAIN, OnnxModel, Program, ValueSpec};
pub use tensor::{Data, Tensor};
