//! The sync engine tests: download and processing of changes (SQLite, or PostgreSQL with the
//! `postgres-tests` feature).
//!
//! The modules share one test binary, linked once.

mod download;
mod process_changes;
