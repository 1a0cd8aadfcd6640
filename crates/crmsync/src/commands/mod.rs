//! The commands, one module per command group.

mod org;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Org(cmd) => org::run(&cli.store, cmd).await,
    }
}
