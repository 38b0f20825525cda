//! Stage 3 of the pipeline: turn a cleaned frame into the numeric matrix models learn from.
//!
//! `kaskad-prepare` owns the preprocessing that is fitted on training rows and
//! replayed, unchanged, at scoring time: imputation of missing numbers (with a
//! missing indicator where training saw gaps), one-hot or ordinal encoding of
//! categories (rare levels pooled, unseen levels and missing values given
//! their own slot instead of an error), and standard scaling. The fitted
//! [`Preprocessor`] is serializable and travels inside the model artifact, so
//! a served model always sees features built exactly as in training.

mod error;
mod matrix;
mod parallel;
mod preprocessor;
mod woe;

pub use error::PrepareError;
pub use matrix::Matrix;
pub use preprocessor::{Cell, EncoderView, Preprocessor, RawColumn};
