//! One organization's schema: the cached entity metadata and metadata changes.
//!
//! The metadata is cached in memory, stamped with `_org_state.metadata_version` and the org's
//! `epoch`. Every write transaction reads both with its version allocation and reloads the
//! cache if another instance changed the metadata (or deleted and re-created the org).
//! Metadata changes lock the same `_org_state` row first, so they are serialized with writes
//! across instances, and their DDL commits or rolls back with the metadata rows.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use crmsync_model::{EntityMetadata, MetadataChange, OrgName};
use crmsync_store::sql::{self, Dialect, SqlNames};
use crmsync_store::{MetadataStore, OrgStore, StoreError, StoreResult};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use crate::bind::db_err;

pub struct PgOrg {
    pub(crate) name: OrgName,
    pub(crate) pool: PgPool,
    /// Names qualified with the org's schema.
    pub(crate) names: SqlNames,
    schema: RwLock<Arc<Schema>>,
}

/// All entity metadata of the org at one metadata version.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    pub epoch: Uuid,
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

impl PgOrg {
    /// An org whose schema exists and is migrated (see `PgCatalog`).
    pub(crate) async fn open(name: OrgName, schema: String, pool: PgPool) -> StoreResult<Self> {
        let names = SqlNames::new(Dialect::Postgres, Some(schema));
        let loaded = load_schema(&mut *pool.acquire().await.map_err(db_err)?, &names).await?;
        Ok(Self {
            name,
            pool,
            names,
            schema: RwLock::new(Arc::new(loaded)),
        })
    }

    /// An internal table of the org, schema-qualified.
    pub(crate) fn table(&self, name: &str) -> String {
        self.names.table(name)
    }

    fn cached(&self) -> Arc<Schema> {
        self.schema.read().expect("schema lock poisoned").clone()
    }

    /// The schema as of `(epoch, version)`, reloading through `conn` if the cache differs.
    pub(crate) async fn schema_at(
        &self,
        conn: &mut PgConnection,
        epoch: Uuid,
        version: i64,
    ) -> StoreResult<Arc<Schema>> {
        let cached = self.cached();
        if cached.epoch == epoch && cached.version == version {
            return Ok(cached);
        }
        let fresh = Arc::new(load_schema(conn, &self.names).await?);
        *self.schema.write().expect("schema lock poisoned") = fresh.clone();
        Ok(fresh)
    }

    /// The current schema (one small query to check the cache is fresh).
    pub(crate) async fn schema(&self, conn: &mut PgConnection) -> StoreResult<Arc<Schema>> {
        let (epoch, version) = stamp(conn, &self.names).await?;
        self.schema_at(conn, epoch, version).await
    }
}

async fn stamp(conn: &mut PgConnection, names: &SqlNames) -> StoreResult<(Uuid, i64)> {
    let statement = format!(
        "SELECT epoch, metadata_version FROM {}",
        names.table("_org_state")
    );
    sqlx::query_as(AssertSqlSafe(statement))
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)
}

/// Reads the stamp before the definitions: if a change commits in between, the cache is
/// stamped with the older version and simply reloaded on the next use.
async fn load_schema(conn: &mut PgConnection, names: &SqlNames) -> StoreResult<Schema> {
    let (epoch, version) = stamp(conn, names).await?;
    let statement = format!(
        "SELECT definition FROM {} ORDER BY position",
        names.table("_entities")
    );
    let definitions: Vec<String> = sqlx::query_scalar(AssertSqlSafe(statement))
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
    Ok(Schema {
        epoch,
        version,
        entities,
    })
}

#[async_trait]
impl MetadataStore for PgOrg {
    async fn entities(&self) -> StoreResult<Vec<EntityMetadata>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        Ok(self.schema(&mut conn).await?.entities.clone())
    }

    async fn entity(&self, name: &str) -> StoreResult<EntityMetadata> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        self.schema(&mut conn).await?.entity(name).cloned()
    }

    async fn apply_metadata(&self, changes: &[MetadataChange]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Taking the org's row lock first orders this change with every writer.
        let bump = format!(
            "UPDATE {} SET metadata_version = metadata_version + 1",
            self.table("_org_state")
        );
        sqlx::query(AssertSqlSafe(bump))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut entities = load_schema(&mut tx, &self.names).await?.entities;
        let upsert = format!(
            "INSERT INTO {} (logical_name, position, definition) VALUES ($1, $2, $3) \
             ON CONFLICT (logical_name) DO UPDATE SET definition = excluded.definition",
            self.table("_entities")
        );
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
            sqlx::query(AssertSqlSafe(upsert.clone()))
                .bind(next.logical_name.as_str())
                .bind(i32::try_from(position).map_err(|_| StoreError::database("too many entities"))?)
                .bind(definition)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        tracing::info!(org = %self.name, changes = changes.len(), "metadata changed");
        Ok(())
    }
}

impl OrgStore for PgOrg {
    fn org(&self) -> &OrgName {
        &self.name
    }
}
