//! Stage 1 of the pipeline: collect batches from a source into the raw store.
//!
//! `kaskad-collect` owns the sources (a file split into batches to emulate a
//! stream, a directory into which new files arrive, a Redis stream read
//! through a consumer group), the ordering of rows by a
//! time column, the meta-parameters computed for every batch, and the raw
//! store: one Parquet file per batch, written to a temporary name and renamed
//! so that a killed process never leaves a half-written batch behind.
//!
//! It does not know the catalog: the pipeline asks it for candidate batches
//! with their content hash and decides, from the catalog, which are new.

mod error;
mod meta;
mod parquet_io;
mod redis_stream;
mod source;
mod time;

pub use error::CollectError;
pub use meta::{BatchMeta, ColumnMeta, content_hash, describe};
pub use parquet_io::{read_parquet, write_parquet};
pub use redis_stream::RedisStream;
pub use source::{BatchPlan, CandidateBatch, Offered, RejectedInput, Source, read_table};
pub use time::time_key;
