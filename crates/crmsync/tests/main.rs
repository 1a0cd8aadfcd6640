//! The command-line tests: the `crmsync` binary run as a user runs it.
//!
//! The modules share one test binary, linked once.

mod common;

mod app_cli;
mod demo;
mod kill_during_sample_load;
mod kill_during_sync;
mod kill_during_upload;
mod multi_instance;
mod org_cli;
mod process_cli;
mod queue_cli;
mod transactions_cli;
