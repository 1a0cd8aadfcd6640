//! The sync benchmark: initial sync of account records from a server org to a client org over
//! loopback HTTP (a real server, the Dataverse connector, the sync engine), beside the raw
//! limit measured in the same run (the same rows upserted straight into an SQLite database by
//! a minimal writer). Then an incremental sync of 1% changes (updates and deletes), and a
//! sync with nothing changed over the five sample entities.
//!
//! Server and client run in this one process, so the peak memory printed covers both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crmsync_model::{EntityName, MetadataChange, OrgName, Value};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};
use crmsync_server::{AppState, ServerConfig};
use crmsync_store::{Catalog, DeleteMode, NewUser, OrgStore, Role, UpsertMode, WriteSet};
use crmsync_store_sqlite::SqliteCatalog;
use crmsync_sync::service::{ConnectRequest, connect};
use crmsync_sync::{BackendType, Connection, NoProgress, SyncRunner, SyncSettings, Trigger};

use crate::raw_sqlite;

#[derive(clap::Args)]
pub struct SyncBench {
    /// Number of account records on the server.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn admin() -> NewUser {
    NewUser {
        email: "bench@example.com".into(),
        password: "bench-password".into(),
        role: Role::Admin,
    }
}

async fn timed_sync(
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

impl SyncBench {
    pub async fn run(self) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(dir.path()).await?);
        let server_org = OrgName::parse("server")?;
        catalog.create_org(&server_org, admin()).await?;
        let server = catalog.open_org(&server_org).await?;
        let changes: Vec<MetadataChange> = crm_entities()
            .into_iter()
            .map(|entity| MetadataChange::CreateEntity { entity })
            .collect();
        server.apply_metadata(&changes).await?;
        let generator = SampleGenerator::new(42, self.records);
        for batch in generator.batches(SampleEntity::Account, crmsync_store::BULK_BATCH_ROWS) {
            server
                .write(WriteSet::new().upsert(SampleEntity::Account.entity_name(), batch, UpsertMode::Upsert))
                .await?;
        }
        println!(
            "sync benchmark: {} accounts, server -> client over loopback HTTP, SQLite in {}",
            self.records,
            dir.path().display()
        );

        // The raw limit: the same rows into an identical, empty table by a minimal writer.
        let raw_org = OrgName::parse("raw")?;
        catalog.create_org(&raw_org, admin()).await?;
        let account = crm_entities().into_iter().next().context("account")?;
        catalog
            .open_org(&raw_org)
            .await?
            .apply_metadata(&[MetadataChange::CreateEntity { entity: account }])
            .await?;
        let sqlite = SqliteCatalog::open(dir.path()).await?;
        let raw = raw_sqlite::upsert_all(&sqlite.org_path(&raw_org), &generator).await?;
        println!(
            "  raw   (minimal writer, one transaction)               {:>8.2} s",
            raw.as_secs_f64()
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
        let accounts = vec![SampleEntity::Account.entity_name()];

        let (initial, log) = timed_sync(client.clone(), &conn, key, accounts.clone()).await?;
        anyhow::ensure!(
            log.totals().created == self.records,
            "created {} of {}",
            log.totals().created,
            self.records
        );
        println!(
            "  sync  (initial, HTTP + engine + client store)        {:>8.2} s",
            initial.as_secs_f64()
        );
        println!(
            "  ratio sync/raw: {:.2} (target <= 1.5)",
            initial.as_secs_f64() / raw.as_secs_f64().max(1e-9)
        );
        if let Some(mb) = peak_rss_mb() {
            println!(
                "  peak memory of this process (server + client): {mb:.0} MB (target <= 300 MB for the client)"
            );
        }

        // 1% changes: updates and deletes on the server.
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
        let (incremental, log) = timed_sync(client.clone(), &conn, key, accounts).await?;
        let t = log.totals();
        anyhow::ensure!(
            t.updated == updates && t.deleted == deletes,
            "incremental moved {t:?}"
        );
        println!(
            "  sync  (incremental: {updates} updates, {deletes} deletes)         {:>8.3} s = {:.1}% of the initial sync (target <= 2%)",
            incremental.as_secs_f64(),
            100.0 * incremental.as_secs_f64() / initial.as_secs_f64().max(1e-9)
        );

        let all: Vec<EntityName> = SampleEntity::ALL.iter().map(|e| e.entity_name()).collect();
        timed_sync(client.clone(), &conn, key, all.clone()).await?;
        let (idle, _) = timed_sync(client, &conn, key, all).await?;
        println!(
            "  sync  (nothing changed, 5 entities)                  {:>8.3} s (target <= 0.100 s)",
            idle.as_secs_f64()
        );
        let _ = stop.send(());
        let _ = serving.await;
        Ok(())
    }
}
