//! One module per command; each turns arguments into calls on the stages.

/// `println!` that returns the write error instead of panicking, so that
/// `kaskad ... | head` ends quietly when the reader goes away (see `main`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` counterpart of [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

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
