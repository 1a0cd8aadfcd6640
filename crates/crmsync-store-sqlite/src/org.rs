//! One organization's database: its pool, the cached schema and metadata changes.
//!
//! The schema (all entity metadata) is cached in memory and stamped with
//! `_org_state.metadata_version`; every write transaction reads that stamp together with its
//! version allocation and reloads the schema if another process changed it.

use std::path::Path;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use crmsync_model::{EntityMetadata, MetadataChange, OrgName};
use crmsync_store::sql::{self, Dialect, SqlNames};
use crmsync_store::{MetadataStore, OrgStore, StoreError, StoreResult};
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::bind::db_err;
use crate::catalog::{Checkpoints, open_pool};
use crate::changes::Readers;
use crate::migrate;

pub struct SqliteOrg {
    pub(crate) name: OrgName,
    /// Readers.
    pub(crate) pool: SqlitePool,
    /// The one connection every write transaction of the org uses (writers take turns
    /// anyway, see `write_lock`): a bulk write's large page cache lives on one connection and
    /// its thread, instead of being allocated again on whichever connection the next batch
    /// gets (which left the process holding several such caches' worth of freed memory).
    pub(crate) writer: SqlitePool,
    pub(crate) names: SqlNames,
    /// Serializes this process's writers before they reach SQLite's own lock.
    pub(crate) write_lock: tokio::sync::Mutex<()>,
    schema: RwLock<Arc<Schema>>,
    /// Wakes the org's [`checkpointer`] after a commit.
    checkpoint: tokio::sync::mpsc::Sender<()>,
    /// Plain connections reading change pages (see `changes.rs`).
    pub(crate) readers: Arc<Readers>,
}

/// How often the checkpointer runs when no commit woke it (writes that do not wake it, such
/// as metadata changes, are copied back by then).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Copies an org's write-ahead log back into its database after commits, in the background:
/// a commit that leaves a long log (a sync's batch of 100,000 rows writes tens of megabytes
/// of it) returns without doing it, and the copying runs beside the writer's next work. A
/// passive checkpoint takes no lock writers or readers wait for; wakeups that come while one
/// runs make one more run. Ends when the org is closed.
async fn checkpointer(pool: SqlitePool, mut wakeups: tokio::sync::mpsc::Receiver<()>) {
    loop {
        tokio::select! {
            woken = wakeups.recv() => if woken.is_none() { return },
            () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
        }
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::debug!(error = %e, "checkpoint not done");
        }
    }
}

/// All entity metadata of the org at one metadata version.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    pub version: i64,
    pub entities: Vec<EntityMetadata>,
}

impl Schema {
    pub fn entity(&self, name: &str) -> StoreResult<&EntityMetadata> {
        self.entities
            .iter()
            .find(|e| e.logical_name.as_str() == name)
            .ok_or_else(|| StoreError::not_found(format!("entity '{name}'")))
    }
}

impl SqliteOrg {
    pub(crate) async fn open(name: OrgName, path: &Path) -> StoreResult<Self> {
        let writer = open_pool(path, 1, Checkpoints::Background).await?;
        let mut conn = writer.acquire().await.map_err(db_err)?;
        migrate::run(&mut conn, migrate::ORG).await?;
        let schema = load_schema(&mut conn).await?;
        drop(conn);
        let pool = open_pool(path, 4, Checkpoints::Background).await?;
        let (checkpoint, wakeups) = tokio::sync::mpsc::channel(1);
        tokio::spawn(checkpointer(pool.clone(), wakeups));
        Ok(Self {
            name,
            pool,
            writer,
            names: SqlNames::new(Dialect::Sqlite, None),
            write_lock: tokio::sync::Mutex::new(()),
            schema: RwLock::new(Arc::new(schema)),
            checkpoint,
            readers: Readers::new(path),
        })
    }

    /// Tells the checkpointer that a transaction committed.
    pub(crate) fn committed(&self) {
        // A wakeup already waiting covers this commit too.
        let _ = self.checkpoint.try_send(());
    }

    pub(crate) async fn close(&self) {
        self.readers.clear();
        self.pool.close().await;
        self.writer.close().await;
    }

    pub(crate) fn cached(&self) -> Arc<Schema> {
        self.schema.read().expect("schema lock poisoned").clone()
    }

    /// The schema as of `version`, reloading through `conn` if the cache is older.
    pub(crate) async fn schema_at(
        &self,
        conn: &mut SqliteConnection,
        version: i64,
    ) -> StoreResult<Arc<Schema>> {
        let cached = self.cached();
        if cached.version == version {
            return Ok(cached);
        }
        let fresh = Arc::new(load_schema(conn).await?);
        *self.schema.write().expect("schema lock poisoned") = fresh.clone();
        Ok(fresh)
    }

    /// The current schema (one small query to check the cache is fresh).
    pub(crate) async fn schema(&self, conn: &mut SqliteConnection) -> StoreResult<Arc<Schema>> {
        let version: i64 = sqlx::query_scalar("SELECT metadata_version FROM _org_state")
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        self.schema_at(conn, version).await
    }
}

async fn load_schema(conn: &mut SqliteConnection) -> StoreResult<Schema> {
    let version: i64 = sqlx::query_scalar("SELECT metadata_version FROM _org_state")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    let definitions: Vec<String> = sqlx::query_scalar("SELECT definition FROM _entities ORDER BY position")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let entities = definitions
        .iter()
        .map(|d| {
            serde_json::from_str(d)
                .map_err(|e| StoreError::database(format!("stored metadata is unreadable: {e}")))
        })
        .collect::<StoreResult<Vec<EntityMetadata>>>()?;
    Ok(Schema { version, entities })
}

#[async_trait]
impl MetadataStore for SqliteOrg {
    async fn entities(&self) -> StoreResult<Vec<EntityMetadata>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        Ok(self.schema(&mut conn).await?.entities.clone())
    }

    async fn entity(&self, name: &str) -> StoreResult<EntityMetadata> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        self.schema(&mut conn).await?.entity(name).cloned()
    }

    async fn apply_metadata(&self, changes: &[MetadataChange]) -> StoreResult<()> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let mut entities = load_schema(&mut tx).await?.entities;
        for change in changes {
            let (next, ddl) = sql::plan_metadata_change(&self.names, &entities, change)?;
            for statement in ddl {
                sqlx::raw_sql(AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            let definition = serde_json::to_string(&next).map_err(|e| StoreError::database(e.to_string()))?;
            let position = match entities.iter().position(|e| e.logical_name == next.logical_name) {
                Some(i) => {
                    entities[i] = next.clone();
                    i
                }
                None => {
                    entities.push(next.clone());
                    entities.len() - 1
                }
            };
            sqlx::query(
                "INSERT INTO _entities (logical_name, position, definition) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (logical_name) DO UPDATE SET definition = excluded.definition",
            )
            .bind(next.logical_name.as_str())
            .bind(position as i64)
            .bind(definition)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        sqlx::query("UPDATE _org_state SET metadata_version = metadata_version + 1")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        tracing::info!(org = %self.name, changes = changes.len(), "metadata changed");
        Ok(())
    }
}

impl OrgStore for SqliteOrg {
    fn org(&self) -> &OrgName {
        &self.name
    }
}
