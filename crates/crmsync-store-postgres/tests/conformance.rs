//! The storage conformance suite on PostgreSQL (feature `postgres-tests`).
//!
//! Needs `CRMSYNC_TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without
//! it every test fails rather than passing silently. Each test works in its own random
//! namespace of schemas, so tests run in parallel in one database, and drops it when done.
#![cfg(feature = "postgres-tests")]

use crate::common;

crmsync_store::conformance_suite!(common::Postgres);
