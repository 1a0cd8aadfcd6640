//! `crmsync-bench`: performance measured against the raw limit of the same machine in the same
//! run, so that figures stay meaningful on a shared, noisy machine.
//!
//! - `store`: bulk upsert of account records through the store API versus a minimal
//!   hand-written batched upsert into an identical table of the same database engine.
//! - `serve`: every record read over HTTP in 5,000-record pages versus a plain select and
//!   JSON serialization of the same rows.
//! - `sync`: initial sync over loopback HTTP (the server and the client each in a child
//!   process) versus a raw writer; incremental (1%) and idle syncs.
//! - `upload`: offline transactions uploaded over loopback HTTP versus the same changes applied
//!   straight to the server's store.

mod processes;
mod raw_postgres;
mod raw_sqlite;
mod serve;
mod store;
mod sync;
mod upload;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "crmsync-bench",
    about = "crmsync benchmarks, each beside its raw limit"
)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Bulk upsert of account-like records through the store API versus a raw batched upsert.
    Store(store::StoreBench),
    /// Reading every record over HTTP in 5,000-record pages versus a raw select and serialize.
    Serve(serve::ServeBench),
    /// Initial sync over HTTP versus a raw writer; incremental and idle syncs.
    Sync(sync::SyncBench),
    /// Offline transactions uploaded over HTTP versus the same changes applied to the store.
    Upload(upload::UploadBench),
    /// Serves a data directory on a loopback port (the server process of `sync`).
    #[command(hide = true)]
    ServeCatalog(processes::ServeCatalog),
    /// Runs the initial sync of a client org (the client process of `sync`).
    #[command(hide = true)]
    SyncClient(processes::SyncClient),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Bench::Store(b) => b.run().await,
            Bench::Serve(b) => b.run().await,
            Bench::Sync(b) => b.run().await,
            Bench::Upload(b) => b.run().await,
            Bench::ServeCatalog(b) => b.run().await,
            Bench::SyncClient(b) => b.run().await,
        }
    })
}
