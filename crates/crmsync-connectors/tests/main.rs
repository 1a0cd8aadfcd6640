//! The connector tests: the Web API client against real crmsync servers and a Dataverse-like
//! server.
//!
//! The modules share one test binary, linked once.

mod common;

mod crmsync_server;
mod dynamics;
mod faults;
mod run_faults;
