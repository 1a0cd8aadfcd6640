//! The SQLite store tests.
//!
//! The modules share one test binary, linked once.

mod conformance;
mod query_plan;
