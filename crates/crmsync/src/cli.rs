//! Command-line definitions (SPEC §4). Every command takes `--data` / `--database`;
//! environment variables stand for the flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "crmsync",
    version,
    about = "Host CRM organizations and keep a client organization synchronized with a server organization."
)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where organizations are stored.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Data directory of the embedded SQLite store (one catalog database, one file per org).
    #[arg(long, global = true, env = "CRMSYNC_DATA", default_value = "./crmsync-data")]
    pub data: PathBuf,
    /// PostgreSQL URL (postgres://…); when given, used instead of the data directory.
    #[arg(long, global = true, env = "CRMSYNC_DATABASE_URL")]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Serve the Web API of every organization until stopped (Ctrl-C or SIGTERM).
    Serve(Serve),
}

#[derive(Debug, Args)]
pub struct Serve {
    /// Address to listen on.
    #[arg(long, env = "CRMSYNC_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization with its first administrator, optionally filled with sample data.
    Create(OrgCreate),
    /// List the organizations of this store.
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sample {
    /// The standard CRM entities: account, contact, opportunity, lead, task.
    Crm,
}

#[derive(Debug, Args)]
pub struct OrgCreate {
    /// Organization name: 3-40 characters, lowercase letters, digits and '-'.
    pub name: String,
    /// Email of the first administrator.
    #[arg(long)]
    pub admin_email: String,
    /// Password of the first administrator (at least 8 characters).
    #[arg(long)]
    pub admin_password: String,
    /// Seed the organization with sample entities and data.
    #[arg(long, value_enum)]
    pub sample: Option<Sample>,
    /// Number of sample accounts; contacts, opportunities, leads and tasks scale with it.
    #[arg(long, default_value_t = 1000, requires = "sample")]
    pub records: u64,
    /// Seed of the sample data generator: the same seed gives the same data.
    #[arg(long, default_value_t = 1, requires = "sample")]
    pub seed: u64,
    /// Rows per database transaction while loading sample data.
    #[arg(long, default_value_t = crate::sample::DEFAULT_BATCH_ROWS, hide = true)]
    pub batch_size: usize,
}
