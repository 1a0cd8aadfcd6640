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
    /// Manage an organization's applications (client credentials for the OAuth 2.0
    /// client_credentials grant).
    #[command(subcommand)]
    App(AppCommand),
    /// Serve the Web API of every organization until stopped (Ctrl-C or SIGTERM).
    Serve(Serve),
    /// Connect a client organization to a server organization (creates the client org if
    /// needed), update its metadata and store the connection.
    Connect(Connect),
    /// Metadata update: bring the client's entities in line with the server's.
    #[command(subcommand)]
    Metadata(MetadataCommand),
    /// Sync All: download every enabled entity from the server, with a progress bar.
    Sync(Sync),
    /// Offline transactions of a client organization: list them, and steer failed or
    /// queued ones (Set to Pending, Set to Archived, Set all to Pending).
    #[command(subcommand)]
    Transactions(TransactionsCommand),
    /// Logs of synchronization: runs newest first, or one run in detail.
    Logs(Logs),
    /// Processes (Sync Jobs) of a client organization: scheduled syncs run by `crmsync serve`.
    #[command(subcommand)]
    Process(ProcessCommand),
    /// The main job: two organizations synchronized over HTTP, end to end, on the embedded store.
    Demo(Demo),
}

#[derive(Debug, Args)]
pub struct Connect {
    /// The client organization.
    pub client_org: String,
    /// The server organization's base URL, e.g. http://host:8080/contoso or https://x.crm.dynamics.com.
    #[arg(long)]
    pub server_url: String,
    /// crmsync, dynamics, or the ProviderID 60650fb3-5d8b-45dd-b82e-459f3b019e9a.
    #[arg(long, default_value = "crmsync")]
    pub backend: String,
    /// User on the server.
    #[arg(long)]
    pub user: String,
    /// Password on the server (stored encrypted).
    #[arg(long)]
    pub password: String,
    /// Entities to sync, comma-separated (default: all of the server's).
    #[arg(long, value_delimiter = ',')]
    pub entities: Vec<String>,
    /// A SyncFilters XML file: one <fetch> per filtered entity.
    #[arg(long)]
    pub filters: Option<std::path::PathBuf>,
    /// Queue client writes and upload them at each sync instead of writing through.
    #[arg(long)]
    pub write_offline: bool,
    /// Allow a server on a loopback or private address.
    #[arg(long)]
    pub allow_private_urls: bool,
    #[command(flatten)]
    pub queue: QueueArgs,
}

/// How a command that runs an organization's work takes its turn in the work queue: it waits
/// while a `crmsync serve` instance or another command runs the organization, unless told not to.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// Fail at once (non-zero exit) instead of waiting when another run holds the organization.
    #[arg(long)]
    pub no_wait: bool,
    /// Lease length of this run, in seconds (how long its work waits, if this process dies,
    /// before a `crmsync serve` instance takes it over). For tests.
    #[arg(long, env = "CRMSYNC_LEASE_SECS", hide = true, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub lease_secs: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum MetadataCommand {
    /// Apply the server's metadata changes to the client (or only show them).
    Update(MetadataUpdate),
}

#[derive(Debug, Args)]
pub struct MetadataUpdate {
    pub client_org: String,
    /// Show the changes without applying them.
    #[arg(long)]
    pub preview: bool,
    #[command(flatten)]
    pub queue: QueueArgs,
}

#[derive(Debug, Args)]
pub struct Sync {
    pub client_org: String,
    /// Reconcile every entity by comparing id sets instead of following change tokens.
    #[arg(long)]
    pub full: bool,
    /// Records per server page.
    #[arg(long, default_value_t = 5000, hide = true)]
    pub page_size: usize,
    /// Records per client transaction.
    #[arg(long, default_value_t = crmsync_store::BULK_BATCH_ROWS, hide = true)]
    pub batch_rows: usize,
    /// Offline transactions per upload request.
    #[arg(long, default_value_t = crmsync_sync::upload::MAX_BATCH, hide = true)]
    pub upload_batch: usize,
    #[command(flatten)]
    pub queue: QueueArgs,
}

#[derive(Debug, Subcommand)]
pub enum TransactionsCommand {
    /// List offline transactions in queue order.
    List(TransactionsList),
    /// Set transactions (Error or Archived) to Pending: the next sync sends them again.
    SetPending(TransactionIds),
    /// Set transactions (Pending or Error) to Archived: they are never sent, and the records
    /// they changed are refreshed from the server at the next sync.
    Archive(TransactionIds),
    /// Set every transaction in Error to Pending.
    SetAllPending(TransactionsOrg),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TxStatusArg {
    All,
    Pending,
    Processed,
    Error,
    Archived,
}

#[derive(Debug, Args)]
pub struct TransactionsList {
    pub org: String,
    /// Which transactions to list.
    #[arg(long, value_enum, default_value_t = TxStatusArg::All)]
    pub status: TxStatusArg,
    /// How many to list.
    #[arg(long, default_value_t = 50)]
    pub top: usize,
    /// How many to skip first (paging).
    #[arg(long, default_value_t = 0)]
    pub skip: u64,
}

#[derive(Debug, Args)]
pub struct TransactionIds {
    pub org: String,
    /// Transaction ids, as `transactions list` shows them.
    #[arg(required = true, num_args = 1..)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TransactionsOrg {
    pub org: String,
}

#[derive(Debug, Subcommand)]
pub enum ProcessCommand {
    /// Create a Sync Job (a draft unless --publish; it runs only once published and activated).
    Create(ProcessCreate),
    /// List the processes of an organization with their state and next run.
    List(ProcessOrg),
    /// Change a process: any of name, frequency, entities, publish state, activation.
    Update(ProcessUpdate),
    /// Delete a process and its history.
    Delete(ProcessRef),
    /// The executions of a process, newest first, with their sync runs.
    History(ProcessRef),
    /// Queue a run of a published and activated process now (a running `crmsync serve` on
    /// the same store runs it at its next poll).
    Run(ProcessRef),
}

#[derive(Debug, Args)]
pub struct ProcessCreate {
    pub org: String,
    /// Name of the process.
    #[arg(long)]
    pub name: String,
    /// How often it runs: 15m, 2h, 1d (every N minutes/hours/days) or a cron expression
    /// ("*/30 * * * *", UTC).
    #[arg(long)]
    pub frequency: String,
    /// Sync only these entities (comma-separated); default: every enabled entity.
    #[arg(long, value_delimiter = ',')]
    pub entities: Vec<String>,
    /// Publish it (it stays a draft otherwise).
    #[arg(long)]
    pub publish: bool,
    /// Activate it (needs --publish): it then runs on its schedule.
    #[arg(long)]
    pub activate: bool,
}

#[derive(Debug, Args)]
pub struct ProcessUpdate {
    pub org: String,
    /// Process id, as `process list` shows it.
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub frequency: Option<String>,
    /// Sync only these entities (comma-separated); "all" for every enabled entity.
    #[arg(long, value_delimiter = ',')]
    pub entities: Option<Vec<String>>,
    #[arg(long, conflicts_with = "unpublish")]
    pub publish: bool,
    /// Return it to draft (deactivate it first).
    #[arg(long)]
    pub unpublish: bool,
    #[arg(long, conflicts_with = "deactivate")]
    pub activate: bool,
    #[arg(long)]
    pub deactivate: bool,
}

#[derive(Debug, Args)]
pub struct ProcessOrg {
    pub org: String,
}

#[derive(Debug, Args)]
pub struct ProcessRef {
    pub org: String,
    /// Process id, as `process list` shows it.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Logs {
    pub org: String,
    /// Show this run in detail.
    pub run_id: Option<String>,
    /// How many runs to list.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
}

#[derive(Debug, Args)]
pub struct Demo {
    /// Number of sample accounts on the server (contacts, opportunities, leads and tasks scale with it).
    #[arg(long, default_value_t = 2000)]
    pub records: u64,
    /// Exit after the demo instead of serving on --listen.
    #[arg(long)]
    pub no_serve: bool,
    /// Address the demo serves on.
    #[arg(long, env = "CRMSYNC_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
}

#[derive(Debug, Args)]
pub struct Serve {
    /// Address to listen on.
    #[arg(long, env = "CRMSYNC_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Whether ConnectAsync may register new client organizations.
    #[arg(long, value_enum, default_value_t = Registration::Open)]
    pub registration: Registration,
    /// Accept server URLs on loopback or private addresses in connections.
    #[arg(long)]
    pub allow_private_urls: bool,
    /// Name of this instance in the work queue's leases (shown by the worker status); unique
    /// among the instances sharing a database. Default: a random one per start.
    #[arg(long, env = "CRMSYNC_INSTANCE")]
    pub instance: Option<String>,
    /// Lease length of claimed work, in seconds (how long a dead instance's work waits before
    /// another instance takes it over). For tests.
    #[arg(long, env = "CRMSYNC_LEASE_SECS", hide = true, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub lease_secs: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    Open,
    Closed,
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

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application; prints its client id and secret (shown only this once).
    Create(AppCreate),
    /// List the applications of an organization.
    List(AppList),
    /// Remove an application; its tokens stop working at once.
    Delete(AppDelete),
}

/// The role an application acts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AppRole {
    /// Everything, including sync, metadata and logs (for sync services).
    Admin,
    /// Records only.
    User,
}

#[derive(Debug, Args)]
pub struct AppCreate {
    /// The organization the application belongs to.
    pub org: String,
    /// A name to recognize the application by (1-100 characters).
    #[arg(long)]
    pub name: String,
    /// The role the application acts with.
    #[arg(long, value_enum, default_value_t = AppRole::User)]
    pub role: AppRole,
}

#[derive(Debug, Args)]
pub struct AppList {
    pub org: String,
}

#[derive(Debug, Args)]
pub struct AppDelete {
    pub org: String,
    /// The application's client id (a GUID, as `app list` shows it).
    pub client_id: String,
}
