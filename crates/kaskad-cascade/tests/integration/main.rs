//! Integration tests of kaskad-cascade: compile errors (table-driven, each
//! with its exact JSON path) and execution against a deterministic fake scorer.

mod compile_errors;
mod run;
mod support;
