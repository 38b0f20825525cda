//! The vocabulary every kaskad stage shares.
//!
//! `kaskad-core` owns the in-memory columnar [`Frame`] that batches travel in,
//! the CSV reader that turns a user's file into a frame (with errors that name
//! the file and line), the binary target, and the configuration of every
//! stage ([`config::Options`] as written in `kaskad.toml`). It does no
//! networking and knows nothing of storage: stages sit above it.
//!
//! ```
//! use kaskad_core::{Column, ColumnData, Frame};
//! let frame = Frame::new(vec![
//!     Column::numeric("income", vec![1200.0, f64::NAN]),
//!     Column::categorical("home", vec![Some("rent".into()), None]),
//! ]).unwrap();
//! assert_eq!(frame.n_rows(), 2);
//! assert_eq!(frame.column("income").unwrap().missing_count(), 1);
//! ```

pub mod config;
mod csv_read;
mod error;
mod frame;
mod target;

pub use csv_read::{read_csv, read_csv_reader};
pub use error::CoreError;
pub use frame::{Column, ColumnData, ColumnKind, Frame};
pub use target::binary_target;
