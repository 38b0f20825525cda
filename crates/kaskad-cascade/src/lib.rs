//! Cascades: several models scored as one, behind a single call.
//!
//! `kaskad-cascade` owns the cascade format (a JSON tree of `module` leaves
//! under `chain`, `group`, `switch` and `split` nodes), its validation and
//! compilation into a checked plan, and the execution of that plan for one
//! request. It knows models only through two narrow traits: a
//! [`ModelCatalog`] that tells the compiler each model's inputs and outputs,
//! and a [`ModuleScorer`] that scores a module at run time. Loading models,
//! calling remote endpoints and HTTP belong to the server.
//!
//! ```
//! # use kaskad_cascade::*;
//! # use serde_json::{json, Map, Value};
//! struct Catalog;
//! impl ModelCatalog for Catalog {
//!     fn resolve(&self, _: &str) -> Result<ModelInfo, String> {
//!         Ok(ModelInfo {
//!             inputs: vec![Field::new("income", FieldKind::Numeric)],
//!             outputs: vec![Field::new("score", FieldKind::Numeric)],
//!         })
//!     }
//! }
//! struct Half;
//! #[async_trait::async_trait]
//! impl ModuleScorer for Half {
//!     async fn score(&self, _: &ModuleSpec, _: Map<String, Value>) -> Result<Map<String, Value>, String> {
//!         Ok(json!({"score": 0.5}).as_object().cloned().unwrap_or_default())
//!     }
//! }
//! let cascade = compile(
//!     &json!({"name": "one", "type": "module", "model": "lr@champion",
//!             "sources": ["applicant"], "output": {"score": "one.score"}}),
//!     &Catalog,
//! ).map_err(|errors| errors[0].to_string())?;
//! let request = json!({"applicant": {"income": 1200}});
//! let result = tokio_test_block_on(cascade.run(&request, &Half, RunOptions::default()))?;
//! assert_eq!(result.output["score"], 0.5);
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime").block_on(f)
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod catalog;
mod compile;
mod error;
mod path;
mod plan;
mod run;
mod sticky;

pub use catalog::{Field, FieldKind, ModelCatalog, ModelInfo};
pub use compile::compile;
pub use error::{CascadeError, CascadeErrorKind, ModuleFailure, OutputViolation, RunError};
pub use plan::{CompiledCascade, ModuleSpec, ModuleTarget};
pub use run::{CascadeResult, ModuleRun, ModuleScorer, Outcome, PathStep, RunOptions, Taken};
