//! The crmsync binary's library half: command-line definitions, opening the store chosen by
//! `--data` / `--database`, and the commands themselves. `main.rs` only parses and
//! dispatches, so benchmarks and tests call the same code a user runs.

pub mod cli;
pub mod commands;
pub mod keys;
pub mod sample;
pub mod store;
