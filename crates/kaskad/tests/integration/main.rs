//! End-to-end tests of the `kaskad` command, run as a user runs it.

mod bad_input;
mod cascade;
mod explain;
mod home;
mod import;
mod meta;
mod pipeline;
mod serve;
mod server;
mod stream;
mod support;
mod variants;
