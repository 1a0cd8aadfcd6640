//! The child processes of the sync benchmark: the server (`serve-catalog`) and the client of
//! the initial sync (`sync-client`), each over the same data as the benchmark, so that the
//! memory and CPU figures printed for each are that process's alone; and the `/proc` readings
//! those figures come from.

use std::sync::Arc;

use anyhow::Context;
use crmsync_model::OrgName;
use crmsync_sample::SampleEntity;
use crmsync_server::{AppState, ServerConfig};
use crmsync_store::Catalog;
use crmsync_store_postgres::PgCatalog;
use crmsync_store_sqlite::SqliteCatalog;
use crmsync_sync::Connection;

use crate::sync::timed_sync;

/// A memory figure of a process (`self` or a pid) from its status (`VmHWM`, `VmRSS`), in MB.
pub(crate) fn memory_mb(process: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Peak resident set of a process, in MB.
pub(crate) fn peak_rss_mb(process: &str) -> Option<f64> {
    memory_mb(process, "VmHWM:")
}

/// CPU time (user + system) a process (`self` or a pid) has used so far, in seconds: on a
/// loaded machine wall-clock ratios wander, the work done does not.
pub(crate) fn cpu_seconds(process: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{process}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or_default()
    };
    // In USER_HZ ticks, 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Serves the catalog in `dir` on a loopback port until stdin closes; prints the address.
#[derive(clap::Args)]
pub struct ServeCatalog {
    #[arg(long)]
    dir: std::path::PathBuf,
}

impl ServeCatalog {
    pub async fn run(self) -> anyhow::Result<()> {
        let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(&self.dir).await?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?);
        let config = ServerConfig {
            secrets_key: rand::random(),
            allow_private_urls: true,
            ..ServerConfig::default()
        };
        let stdin_closed = async {
            let _ =
                tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
                    .await;
        };
        crmsync_server::serve(listener, AppState::new(catalog, config), stdin_closed).await?;
        Ok(())
    }
}

/// The server child process: its address and handle (closing its stdin stops it).
pub(crate) struct ServerProcess {
    pub(crate) child: std::process::Child,
    pub(crate) address: String,
}

impl ServerProcess {
    pub(crate) async fn start(dir: &std::path::Path) -> anyhow::Result<Self> {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("serve-catalog")
            .arg("--dir")
            .arg(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the server process")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let address = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
        })
        .await??;
        anyhow::ensure!(
            !address.trim().is_empty(),
            "the server process exited before listening"
        );
        Ok(Self {
            child,
            address: address.trim().to_owned(),
        })
    }

    pub(crate) fn peak_rss_mb(&self) -> Option<f64> {
        peak_rss_mb(&self.child.id().to_string())
    }

    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        tokio::task::spawn_blocking(move || self.child.wait()).await??;
        Ok(())
    }
}

/// Where the client org of a leg is stored, for the client process.
pub(crate) enum ClientAt {
    Sqlite(std::path::PathBuf),
    Postgres { url: String, namespace: String },
}

/// Runs the initial sync of the `client` org of a catalog in this process and prints what
/// it measured as one JSON line (the client process of `sync`).
#[derive(clap::Args)]
pub struct SyncClient {
    /// SQLite data directory holding the client org.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// PostgreSQL URL of the catalog holding the client org (with `--namespace`).
    #[arg(long)]
    database: Option<String>,
    #[arg(long, default_value = "")]
    namespace: String,
    /// The secrets key the connection was stored with, in hex.
    #[arg(long)]
    key: String,
}

impl SyncClient {
    pub async fn run(self) -> anyhow::Result<()> {
        let catalog: Arc<dyn Catalog> = match (&self.dir, &self.database) {
            (Some(dir), _) => Arc::new(SqliteCatalog::open(dir).await?),
            (None, Some(url)) => Arc::new(PgCatalog::connect(url, &self.namespace).await?),
            (None, None) => anyhow::bail!("--dir or --database names the client's catalog"),
        };
        let key = from_hex(&self.key)?;
        let client = catalog.open_org(&OrgName::parse("client")?).await?;
        let conn = Connection::load(&*client)
            .await?
            .context("the client org has no connection")?;
        let resident_before = memory_mb("self", "VmRSS:").unwrap_or_default();
        let cpu_before = cpu_seconds("self");
        let (elapsed, log) =
            timed_sync(client, &conn, key, vec![SampleEntity::Account.entity_name()]).await?;
        let report = ClientReport {
            seconds: elapsed.as_secs_f64(),
            created: log.totals().created,
            cpu: cpu_seconds("self") - cpu_before,
            peak_mb: peak_rss_mb("self").unwrap_or_default(),
            resident_before_mb: resident_before,
        };
        println!("{}", serde_json::to_string(&report)?);
        Ok(())
    }
}

/// What the client process measured.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ClientReport {
    pub(crate) seconds: f64,
    pub(crate) created: u64,
    /// CPU time of the sync, in seconds.
    pub(crate) cpu: f64,
    /// Peak resident set of the whole process, in MB.
    pub(crate) peak_mb: f64,
    /// Resident set when the sync began (the process with its catalog open), in MB.
    pub(crate) resident_before_mb: f64,
}

fn to_hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).unwrap_or("?"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .context("the key is not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the key is not 32 bytes"))
}

/// Runs the initial sync in a client process of its own (this binary's hidden `sync-client`
/// command), so that its memory and CPU figures are the client's alone.
pub(crate) async fn sync_in_client_process(at: &ClientAt, key: [u8; 32]) -> anyhow::Result<ClientReport> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command.arg("sync-client").arg("--key").arg(to_hex(&key));
    match at {
        ClientAt::Sqlite(dir) => command.arg("--dir").arg(dir),
        ClientAt::Postgres { url, namespace } => command
            .arg("--database")
            .arg(url)
            .arg("--namespace")
            .arg(namespace),
    };
    let output = command
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .context("running the client process")?;
    anyhow::ensure!(
        output.status.success(),
        "the client process failed ({})",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .context("the client process printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("the client process printed '{line}'"))
}
