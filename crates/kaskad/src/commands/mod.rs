//! One module per command; each turns arguments into calls on the stages.

pub mod bench;
pub mod cascades;
pub mod demo;
pub mod explain;
pub mod export;
pub mod import;
pub mod inference;
pub mod init;
pub mod keys;
pub mod listing;
pub mod quantize;
pub mod serve;
pub mod summary;
pub mod train;
pub mod update;
