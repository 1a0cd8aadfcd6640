//! The commands, one module per command group.

mod org;
mod serve;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Org(cmd) => org::run(&cli.store, cmd).await,
        Command::Serve(cmd) => serve::run(&cli.store, cmd).await,
    }
}
