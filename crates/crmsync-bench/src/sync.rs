//! The sync benchmark: initial sync of account records from a server org to a client org over
//! loopback HTTP (a real server, the Dataverse connector, the sync engine), beside the raw
//! limit measured in the same run (the same rows upserted straight into an SQLite database by
//! a minimal writer). Then an incremental sync of 1% changes (updates and deletes), and a
//! sync with nothing changed over the five sample entities. With `--database`, a second
//! client org on PostgreSQL gets the same syncs, beside its own raw limit (the rows bound
//! straight into multi-row upserts).
//!
//! The server and the initial sync's client each run in a child process (this binary's
//! hidden `serve-catalog` and `sync-client` commands, in `processes`) over the same data, so the memory and CPU
//! figures printed for the client are those of a process doing that sync and nothing else
//! (not of this one, which loaded the server's data and ran the raw writers). The
//! incremental and idle syncs run in this process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crmsync_model::{EntityName, MetadataChange, OrgName, Value};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};
use crmsync_store::{Catalog, DeleteMode, NewUser, OrgStore, Role, UpsertMode, WriteSet};
use crmsync_store_postgres::PgCatalog;
use crmsync_store_sqlite::SqliteCatalog;
use crmsync_sync::service::{ConnectRequest, connect};
use crmsync_sync::{BackendType, Connection, NoProgress, SyncRunner, SyncSettings, Trigger};

use crate::processes::{ClientAt, ServerProcess, cpu_seconds, sync_in_client_process};
use crate::{raw_postgres, raw_sqlite};

#[derive(clap::Args)]
pub struct SyncBench {
    /// Number of account records on the server.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Also sync into a client org on PostgreSQL at this URL (postgres://…), beside its own
    /// raw limit.
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

pub(crate) async fn timed_sync(
    client: Arc<dyn OrgStore>,
    conn: &Connection,
    key: [u8; 32],
    entities: Vec<EntityName>,
) -> anyhow::Result<(Duration, crmsync_sync::RunLog)> {
    let org = OrgName::parse("client")?;
    let server = crmsync_connectors::for_connection(&org, conn, &key)?;
    let settings = SyncSettings {
        entities,
        ..conn.settings.clone()
    };
    let started = Instant::now();
    let log = SyncRunner::new(client, server, settings)
        .run(Trigger::Manual, &NoProgress)
        .await?;
    anyhow::ensure!(
        log.status == crmsync_sync::RunStatus::Succeeded,
        "sync failed: {:?}",
        log.messages
    );
    Ok((started.elapsed(), log))
}

/// One client store measured: its raw limit and its syncs.
struct Leg {
    name: &'static str,
    conn: Connection,
    client: Arc<dyn OrgStore>,
    initial: Duration,
}

impl SyncBench {
    pub async fn run(self) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let server_org = OrgName::parse("server")?;
        let generator = SampleGenerator::new(42, self.records);
        {
            // Loaded through a catalog of its own, closed before the syncs: its connections'
            // caches are not the client's memory.
            let loader = SqliteCatalog::open(dir.path()).await?;
            loader.create_org(&server_org, admin()).await?;
            let server = loader.open_org(&server_org).await?;
            let changes: Vec<MetadataChange> = crm_entities()
                .into_iter()
                .map(|entity| MetadataChange::CreateEntity { entity })
                .collect();
            server.apply_metadata(&changes).await?;
            for batch in generator.batches(SampleEntity::Account, crmsync_store::BULK_BATCH_ROWS) {
                server
                    .write(WriteSet::new().upsert(
                        SampleEntity::Account.entity_name(),
                        batch,
                        UpsertMode::Upsert,
                    ))
                    .await?;
            }
        }
        let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(dir.path()).await?);
        // Each measurement starts with the logs of the ones before copied back and on disk.
        raw_sqlite::settle(&SqliteCatalog::open(dir.path()).await?.org_path(&server_org)).await?;
        println!(
            "sync benchmark: {} accounts, server -> client over loopback HTTP, server on SQLite in {}",
            self.records,
            dir.path().display()
        );
        let server_process = ServerProcess::start(dir.path()).await?;
        let key: [u8; 32] = rand::random();

        // The initial syncs first, while the server holds exactly the generated rows.
        let sqlite = SqliteCatalog::open(dir.path()).await?;
        let raw_org = create_raw_org(&*catalog).await?;
        let (raw, raw_cpu) = measure_raw(
            raw_sqlite::upsert_all(&sqlite.org_path(&raw_org), &generator),
            &generator,
        )
        .await?;
        raw_sqlite::settle(&sqlite.org_path(&raw_org)).await?;
        let mut legs = vec![
            self.initial(
                &server_process,
                key,
                "SQLite",
                catalog,
                &ClientAt::Sqlite(dir.path().to_owned()),
                (raw, raw_cpu),
            )
            .await?,
        ];
        let mut postgres = None;
        if let Some(url) = &self.database {
            let namespace = format!("benchsync{}_", std::process::id());
            let pg = Arc::new(PgCatalog::connect(url, &namespace).await?);
            postgres = Some(pg.clone());
            let leg = async {
                let raw_org = create_raw_org(&*pg).await?;
                let schema = pg.org_schema(&raw_org);
                let (raw, raw_cpu) = measure_raw(
                    raw_postgres::upsert_all(pg.pool(), &schema, &generator),
                    &generator,
                )
                .await?;
                let at = ClientAt::Postgres {
                    url: url.clone(),
                    namespace: namespace.clone(),
                };
                self.initial(
                    &server_process,
                    key,
                    "PostgreSQL",
                    pg.clone(),
                    &at,
                    (raw, raw_cpu),
                )
                .await
            }
            .await;
            match leg {
                Ok(leg) => legs.push(leg),
                Err(e) => {
                    drop_orgs(&*pg).await;
                    return Err(e);
                }
            }
        }
        let server = SqliteCatalog::open(dir.path())
            .await?
            .open_org(&server_org)
            .await?;
        // The incremental syncs start, as a scheduled sync would, with the initial sync's
        // log and the server's changes copied back (the background checkpointer of an org
        // that stays open does this within 30 s).
        let settled = [
            sqlite.org_path(&server_org),
            sqlite.org_path(&OrgName::parse("client")?),
        ];
        let result = self.changes(&*server, &generator, key, &legs, &settled).await;
        if let Some(pg) = postgres {
            drop_orgs(&*pg).await;
        }
        result?;
        server_process.stop().await
    }

    /// The raw limit is given; runs the initial sync into a new client org of `catalog`.
    async fn initial(
        &self,
        server_process: &ServerProcess,
        key: [u8; 32],
        name: &'static str,
        catalog: Arc<dyn Catalog>,
        at: &ClientAt,
        (raw, raw_cpu): (Duration, f64),
    ) -> anyhow::Result<Leg> {
        println!("{name} client");
        println!(
            "  raw   (minimal writer, one transaction)               {:>8.2} s",
            raw.as_secs_f64()
        );
        let request = ConnectRequest {
            client_org: OrgName::parse("client")?,
            server_url: format!("http://{}/server", server_process.address),
            backend: BackendType::Crmsync,
            user: admin().email,
            password: admin().password,
            entities: SampleEntity::ALL.iter().map(|e| e.entity_name()).collect(),
            filters_xml: None,
            write_offline: false,
            allow_private_urls: true,
            registration: None,
        };
        let factory =
            move |org: &OrgName, conn: &Connection| crmsync_connectors::for_connection(org, conn, &key);
        let (conn, _) = connect(&*catalog, &key, request, &factory).await?;
        let client = catalog.open_org(&OrgName::parse("client")?).await?;

        let server_pid = server_process.child.id().to_string();
        let server_cpu = cpu_seconds(&server_pid);
        let report = sync_in_client_process(at, key).await?;
        let server_cpu = cpu_seconds(&server_pid) - server_cpu;
        let (initial, client_cpu) = (Duration::from_secs_f64(report.seconds), report.cpu);
        anyhow::ensure!(
            report.created == self.records,
            "created {} of {}",
            report.created,
            self.records
        );
        println!(
            "  sync  (initial, HTTP + engine + client store)        {:>8.2} s",
            initial.as_secs_f64()
        );
        println!(
            "  ratio sync/raw: {:.2} (target <= 1.5 on SQLite)",
            initial.as_secs_f64() / raw.as_secs_f64().max(1e-9)
        );
        println!(
            "  cpu time: raw {raw_cpu:.2} s; sync {:.2} s = client {client_cpu:.2} s + server {server_cpu:.2} s ({:.2}x raw; both sides share this machine's cores)",
            client_cpu + server_cpu,
            (client_cpu + server_cpu) / raw_cpu.max(1e-9)
        );
        println!(
            "  peak memory of the client process: {:.0} MB (target <= 300 MB; {:.0} MB when the sync began)",
            report.peak_mb, report.resident_before_mb
        );
        if let Some(mb) = server_process.peak_rss_mb() {
            println!("  peak memory of the server process: {mb:.0} MB");
        }
        Ok(Leg {
            name,
            conn,
            client,
            initial,
        })
    }

    /// 1% changes on the server (updates and deletes), then an incremental sync and a sync
    /// with nothing changed into every leg's client. The SQLite databases `settled` are
    /// settled before the syncs.
    async fn changes(
        &self,
        server: &dyn OrgStore,
        generator: &SampleGenerator,
        key: [u8; 32],
        legs: &[Leg],
        settled: &[std::path::PathBuf],
    ) -> anyhow::Result<()> {
        let updates = (self.records / 100).max(1);
        let deletes = (self.records / 1000).max(1);
        let mut set = WriteSet::new();
        let mut batch = crmsync_model::RecordBatch::new(vec![crmsync_model::AttributeName::parse("name")?]);
        for i in 0..updates {
            batch.push(
                generator.record_id(SampleEntity::Account, i),
                vec![Value::String(format!("Changed {i}"))],
            );
        }
        set = set.upsert(SampleEntity::Account.entity_name(), batch, UpsertMode::UpdateOnly);
        let gone: Vec<_> = (updates..updates + deletes)
            .map(|i| generator.record_id(SampleEntity::Account, i))
            .collect();
        set = set.delete(SampleEntity::Account.entity_name(), gone, DeleteMode::MustExist);
        server.write(set).await?;
        for database in settled {
            raw_sqlite::settle(database).await?;
        }
        let accounts = vec![SampleEntity::Account.entity_name()];
        let all: Vec<EntityName> = SampleEntity::ALL.iter().map(|e| e.entity_name()).collect();
        for leg in legs {
            println!("{} client", leg.name);
            let (incremental, log) = timed_sync(leg.client.clone(), &leg.conn, key, accounts.clone()).await?;
            let t = log.totals();
            anyhow::ensure!(
                t.updated == updates && t.deleted == deletes,
                "incremental moved {t:?}"
            );
            println!(
                "  sync  (incremental: {updates} updates, {deletes} deletes)         {:>8.3} s = {:.1}% of the initial sync (target <= 2%)",
                incremental.as_secs_f64(),
                100.0 * incremental.as_secs_f64() / leg.initial.as_secs_f64().max(1e-9)
            );
            timed_sync(leg.client.clone(), &leg.conn, key, all.clone()).await?;
            let (idle, _) = timed_sync(leg.client.clone(), &leg.conn, key, all.clone()).await?;
            println!(
                "  sync  (nothing changed, 5 entities)                  {:>8.3} s (target <= 0.100 s)",
                idle.as_secs_f64()
            );
            let account = SampleEntity::Account.entity_name();
            anyhow::ensure!(
                leg.client.count(&account).await? == server.count(&account).await?,
                "the {} client and the server differ after the syncs",
                leg.name
            );
        }
        Ok(())
    }
}

/// An org `raw` with the account entity, for the raw writer.
async fn create_raw_org(catalog: &dyn Catalog) -> anyhow::Result<OrgName> {
    let raw_org = OrgName::parse("raw")?;
    catalog.create_org(&raw_org, admin()).await?;
    let account = crm_entities().into_iter().next().context("account")?;
    catalog
        .open_org(&raw_org)
        .await?
        .apply_metadata(&[MetadataChange::CreateEntity { entity: account }])
        .await?;
    Ok(raw_org)
}

/// Runs a raw writer; its wall time and CPU time, the CPU time of generating the rows (which
/// the writer does as it goes) taken out.
async fn measure_raw(
    writer: impl std::future::Future<Output = anyhow::Result<Duration>>,
    generator: &SampleGenerator,
) -> anyhow::Result<(Duration, f64)> {
    let cpu_before = cpu_seconds("self");
    let raw = writer.await?;
    let raw_cpu = cpu_seconds("self") - cpu_before;
    let cpu_before = cpu_seconds("self");
    for batch in generator.batches(SampleEntity::Account, 50_000) {
        std::hint::black_box(batch);
    }
    Ok((raw, raw_cpu - (cpu_seconds("self") - cpu_before)))
}

/// Removes the benchmark's schemas from a PostgreSQL catalog.
async fn drop_orgs(catalog: &dyn Catalog) {
    for org in ["raw", "client"] {
        if let Ok(org) = OrgName::parse(org) {
            let _ = catalog.delete_org(&org).await;
        }
    }
}
