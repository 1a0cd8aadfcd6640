//! The server's HTTP tests: a real server per test on port 0 (SQLite, or PostgreSQL with the
//! `postgres-tests` feature).
//!
//! The modules share one test binary, linked once.

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/proxy.rs"]
mod proxy;

mod auth;
mod batch;
mod changes;
mod metadata;
mod query;
mod records;
mod scheduler;
mod syncapi;
mod ui;
mod ui_jobs;
mod ui_transactions;
mod writeback;
