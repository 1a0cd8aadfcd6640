//! The PostgreSQL store tests (they need `CRMSYNC_TEST_DATABASE_URL` and the
//! `postgres-tests` feature).
//!
//! The modules share one test binary, linked once.
#![cfg(feature = "postgres-tests")]

mod common;

mod conformance;
mod postgres;
mod query_plan;
