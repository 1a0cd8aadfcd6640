//! The upload benchmark: offline transactions queued on a client org (half creates, two
//! fifths updates, a tenth deletes of accounts) uploaded to a server org over loopback HTTP
//! by the sync engine's upload phase (batches of 1,000, conflict checks, status recorded),
//! beside the raw limit measured in the same run: the same changes applied directly to an
//! identical server org's store in large write sets. SQLite always; PostgreSQL too when
//! `--database` names one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crmsync_model::{AttributeName, MetadataChange, OrgName, RecordBatch, RecordId, Value};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};
use crmsync_server::{AppState, ServerConfig};
use crmsync_store::{Catalog, DeleteMode, NewUser, OrgStore, Role, UpsertMode, WriteSet};
use crmsync_store_postgres::PgCatalog;
use crmsync_store_sqlite::SqliteCatalog;
use crmsync_sync::service::{ConnectRequest, connect};
use crmsync_sync::transactions::{self, ClientChange, Operation};
use crmsync_sync::upload::Upload;
use crmsync_sync::{BackendType, ConflictPolicy, Connection, RunLog, Trigger};

use crate::processes::cpu_seconds;

#[derive(clap::Args)]
pub struct UploadBench {
    /// Number of queued transactions.
    #[arg(long, default_value_t = 100_000)]
    transactions: u64,
    /// Also measure PostgreSQL at this URL (postgres://…).
    #[arg(long, env = "CRMSYNC_BENCH_DATABASE_URL")]
    database: Option<String>,
}

fn admin() -> NewUser {
    NewUser {
        email: "bench@example.com".into(),
        password: "bench-password".into(),
        role: Role::Admin,
    }
}

/// How the transactions split.
struct Mix {
    creates: u64,
    updates: u64,
    deletes: u64,
}

impl Mix {
    fn of(n: u64) -> Mix {
        let updates = n * 2 / 5;
        let deletes = n / 10;
        Mix {
            creates: n - updates - deletes,
            updates,
            deletes,
        }
    }

    /// Accounts that exist before the upload (the updated and deleted ones).
    fn existing(&self) -> u64 {
        self.updates + self.deletes
    }
}

async fn org_with_accounts(
    catalog: &dyn Catalog,
    name: &str,
    existing: &SampleGenerator,
) -> anyhow::Result<Arc<dyn OrgStore>> {
    let name = OrgName::parse(name)?;
    catalog.create_org(&name, admin()).await?;
    let store = catalog.open_org(&name).await?;
    let account = crm_entities()
        .into_iter()
        .next()
        .context("the sample has an account entity")?;
    store
        .apply_metadata(&[MetadataChange::CreateEntity { entity: account }])
        .await?;
    load(&*store, existing).await?;
    Ok(store)
}

async fn load(store: &dyn OrgStore, generator: &SampleGenerator) -> anyhow::Result<()> {
    for batch in generator.batches(SampleEntity::Account, crmsync_store::BULK_BATCH_ROWS) {
        store
            .write(WriteSet::new().upsert(SampleEntity::Account.entity_name(), batch, UpsertMode::Upsert))
            .await?;
    }
    Ok(())
}

/// The changes, in chunks: creates (new accounts), updates (renames and revenue) and deletes.
fn changes(mix: &Mix, existing: &SampleGenerator, chunk: usize) -> Vec<Vec<ClientChange>> {
    let account = SampleEntity::Account.entity_name();
    let mut all = Vec::new();
    let fresh = SampleGenerator::new(4242, mix.creates);
    for batch in fresh.batches(SampleEntity::Account, chunk) {
        all.push(
            batch
                .rows
                .into_iter()
                .map(|(id, values)| ClientChange {
                    entity: account.clone(),
                    id,
                    operation: Operation::Create,
                    // The benchmark's orgs hold accounts only: lookups to contacts are empty.
                    values: batch
                        .columns
                        .iter()
                        .cloned()
                        .zip(values)
                        .map(|(c, v)| match v {
                            Value::Lookup(_) => (c, Value::Null),
                            v => (c, v),
                        })
                        .collect(),
                })
                .collect(),
        );
    }
    let name = AttributeName::parse("name").expect("valid");
    let revenue = AttributeName::parse("revenue").expect("valid");
    let updates: Vec<ClientChange> = (0..mix.updates)
        .map(|i| ClientChange {
            entity: account.clone(),
            id: existing.record_id(SampleEntity::Account, i),
            operation: Operation::Update,
            values: [
                (name.clone(), Value::String(format!("Updated offline {i}"))),
                (revenue.clone(), Value::Decimal((i as i64 * 100).into())),
            ]
            .into_iter()
            .collect(),
        })
        .collect();
    let deletes: Vec<ClientChange> = (mix.updates..mix.existing())
        .map(|i| ClientChange {
            entity: account.clone(),
            id: existing.record_id(SampleEntity::Account, i),
            operation: Operation::Delete,
            values: Default::default(),
        })
        .collect();
    for list in [updates, deletes] {
        for c in list.chunks(chunk) {
            all.push(c.to_vec());
        }
    }
    all
}

/// The same changes straight into a store, in large write sets.
async fn apply_raw(store: &dyn OrgStore, chunks: &[Vec<ClientChange>]) -> anyhow::Result<Duration> {
    let account = SampleEntity::Account.entity_name();
    let mut elapsed = Duration::ZERO;
    for chunk in chunks {
        let mut set = WriteSet::new();
        let deletes: Vec<RecordId> = chunk
            .iter()
            .filter(|c| c.operation == Operation::Delete)
            .map(|c| c.id)
            .collect();
        let mut upserts: std::collections::BTreeMap<(Vec<AttributeName>, bool), RecordBatch> =
            Default::default();
        for c in chunk.iter().filter(|c| c.operation != Operation::Delete) {
            let columns: Vec<AttributeName> = c.values.keys().cloned().collect();
            upserts
                .entry((columns.clone(), c.operation == Operation::Create))
                .or_insert_with(|| RecordBatch::new(columns))
                .push(c.id, c.values.values().cloned().collect());
        }
        for ((_, create), batch) in upserts {
            let mode = if create {
                UpsertMode::Upsert
            } else {
                UpsertMode::UpdateOnly
            };
            set = set.upsert(account.clone(), batch, mode);
        }
        if !deletes.is_empty() {
            set = set.delete(account.clone(), deletes, DeleteMode::IgnoreMissing);
        }
        let started = Instant::now();
        store.write(set).await?;
        elapsed += started.elapsed();
    }
    Ok(elapsed)
}

fn line(label: &str, n: u64, d: Duration) {
    println!(
        "  {label:<58} {:>7.2} s {:>9.0} transactions/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64().max(1e-9)
    );
}

impl UploadBench {
    pub async fn run(self) -> anyhow::Result<()> {
        let mix = Mix::of(self.transactions);
        println!(
            "upload benchmark: {} offline transactions ({} creates, {} updates, {} deletes of accounts)",
            self.transactions, mix.creates, mix.updates, mix.deletes
        );
        let dir = tempfile::tempdir()?;
        println!("SQLite ({})", dir.path().display());
        let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(dir.path()).await?);
        self.measure(catalog, &mix).await?;
        if let Some(url) = &self.database {
            let namespace = format!("benchup{}_", std::process::id());
            let pg = Arc::new(PgCatalog::connect(url, &namespace).await?);
            println!("PostgreSQL (schemas {namespace}*)");
            let result = self.measure(pg.clone(), &mix).await;
            for org in ["server", "raw", "client"] {
                let _ = pg.delete_org(&OrgName::parse(org)?).await;
            }
            result?;
        }
        Ok(())
    }

    async fn measure(&self, catalog: Arc<dyn Catalog>, mix: &Mix) -> anyhow::Result<()> {
        let existing = SampleGenerator::new(42, mix.existing());
        let server = org_with_accounts(&*catalog, "server", &existing).await?;
        let raw = org_with_accounts(&*catalog, "raw", &existing).await?;
        let chunks = changes(mix, &existing, 10_000);
        let raw_time = apply_raw(&*raw, &chunks).await?;
        line(
            "raw    (the same changes into the server's store)",
            self.transactions,
            raw_time,
        );

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/server", listener.local_addr()?);
        let key: [u8; 32] = rand::random();
        let config = ServerConfig {
            secrets_key: key,
            allow_private_urls: true,
            ..ServerConfig::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(crmsync_server::serve(
            listener,
            AppState::new(catalog.clone(), config),
            async {
                let _ = stopped.await;
            },
        ));
        let request = ConnectRequest {
            client_org: OrgName::parse("client")?,
            server_url: url,
            backend: BackendType::Crmsync,
            user: admin().email,
            password: admin().password,
            entities: vec![SampleEntity::Account.entity_name()],
            filters_xml: None,
            write_offline: true,
            allow_private_urls: true,
            registration: None,
        };
        let factory =
            move |org: &OrgName, conn: &Connection| crmsync_connectors::for_connection(org, conn, &key);
        let (conn, _) = connect(&*catalog, &key, request, &factory).await?;
        let client = catalog.open_org(&OrgName::parse("client")?).await?;
        load(&*client, &existing).await?;
        for chunk in &chunks {
            client.write(transactions::queue(&*client, chunk).await?).await?;
        }
        let connector = crmsync_connectors::for_connection(&OrgName::parse("client")?, &conn, &key)?;
        let upload = Upload::new(&*client, &*connector, ConflictPolicy::ClientWins);
        let mut log = RunLog::start(Trigger::Manual);
        let cpu_before = cpu_seconds("self");
        let started = Instant::now();
        let figures = upload.run(&mut log).await?;
        let elapsed = started.elapsed();
        let cpu = cpu_seconds("self") - cpu_before;
        anyhow::ensure!(
            figures.processed == self.transactions && figures.errors == 0,
            "upload: {figures:?}; {:?}",
            log.messages.iter().take(3).collect::<Vec<_>>()
        );
        line(
            "upload (queue -> HTTP $batch of 1,000 -> server store)",
            self.transactions,
            elapsed,
        );
        let rate = self.transactions as f64 / elapsed.as_secs_f64().max(1e-9);
        println!(
            "  ratio upload/raw: {:.2}; {rate:.0} transactions/s (target >= 20,000/s on SQLite)",
            elapsed.as_secs_f64() / raw_time.as_secs_f64().max(1e-9)
        );
        println!(
            "  cpu time of the upload: {cpu:.2} s (client and server, one process; {:.0}% of the wall time on 2 cores)",
            100.0 * cpu / (2.0 * elapsed.as_secs_f64()).max(1e-9)
        );
        let account = SampleEntity::Account.entity_name();
        anyhow::ensure!(
            server.count(&account).await? == raw.count(&account).await?,
            "the server and the raw org differ after the upload"
        );
        let _ = stop.send(());
        serving.await??;
        Ok(())
    }
}
