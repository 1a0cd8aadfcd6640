//! The commands, one module per command group.

mod app;
mod demo;
mod org;
mod process;
mod queue;
mod serve;
mod sync;
mod transactions;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Org(cmd) => org::run(&cli.store, cmd).await,
        Command::App(cmd) => app::run(&cli.store, cmd).await,
        Command::Serve(cmd) => serve::run(&cli.store, cmd).await,
        Command::Connect(cmd) => sync::connect(&cli.store, cmd).await,
        Command::Metadata(crate::cli::MetadataCommand::Update(cmd)) => {
            sync::metadata_update(&cli.store, cmd).await
        }
        Command::Sync(cmd) => sync::sync(&cli.store, cmd).await,
        Command::Transactions(cmd) => transactions::run(&cli.store, cmd).await,
        Command::Logs(cmd) => sync::logs(&cli.store, cmd).await,
        Command::Process(cmd) => process::run(&cli.store, cmd).await,
        Command::Demo(cmd) => demo::run(&cli.store, cmd).await,
    }
}
