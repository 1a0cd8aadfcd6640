//! Applying write sets: one `BEGIN IMMEDIATE` transaction, one version allocation.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::{EntityMetadata, RecordId};
use crmsync_store::sql::{self, Versions};
use crmsync_store::{BulkWrite, DeleteMode, StoreError, StoreResult, WriteOp, WriteOutcome, WriteSet};
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::SqliteOrg;
use crate::bind::db_err;
use crate::catalog::{BULK_CACHE_KIB, CACHE_KIB};

mod upsert;

use upsert::Upsert;

pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default()
}

impl SqliteOrg {
    async fn delete(
        &self,
        conn: &mut SqliteConnection,
        entity: &EntityMetadata,
        ids: &[RecordId],
        mode: DeleteMode,
        versions: &mut Versions,
        outcome: &mut WriteOutcome,
    ) -> StoreResult<()> {
        let now = now();
        for chunk in ids.chunks(500) {
            let statement = sql::delete_returning(
                &self.names,
                entity.logical_name.as_str(),
                entity.primary_id_attribute.as_str(),
                chunk.len(),
            );
            let mut q = sqlx::query_scalar::<_, uuid::Uuid>(AssertSqlSafe(statement));
            for id in chunk {
                q = q.bind(*id.as_uuid());
            }
            let deleted: HashSet<uuid::Uuid> = q
                .fetch_all(&mut *conn)
                .await
                .map_err(db_err)?
                .into_iter()
                .collect();
            if mode == DeleteMode::MustExist
                && let Some(missing) = chunk.iter().find(|id| !deleted.contains(id.as_uuid()))
            {
                return Err(StoreError::not_found(sql::record_label(entity, missing)));
            }
            // Tombstones in request order, so versions follow the caller's order.
            let gone: Vec<&RecordId> = chunk.iter().filter(|id| deleted.contains(id.as_uuid())).collect();
            if gone.is_empty() {
                continue;
            }
            let mut q = sqlx::query(AssertSqlSafe(sql::insert_tombstones(&self.names, gone.len())));
            for id in &gone {
                q = q
                    .bind(entity.logical_name.as_str().to_owned())
                    .bind(*id.as_uuid())
                    .bind(versions.take())
                    .bind(now.timestamp_micros());
            }
            q.execute(&mut *conn).await.map_err(db_err)?;
            outcome.deleted += gone.len() as u64;
        }
        Ok(())
    }

    async fn apply_state(
        &self,
        conn: &mut SqliteConnection,
        state: &[(String, Option<String>)],
    ) -> StoreResult<()> {
        for (key, value) in state {
            let q = match value {
                Some(v) => sqlx::query(
                    "INSERT INTO _state (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key.clone())
                .bind(v.clone()),
                None => sqlx::query("DELETE FROM _state WHERE key = ?1").bind(key.clone()),
            };
            q.execute(&mut *conn).await.map_err(db_err)?;
        }
        Ok(())
    }

    /// Checks [`WriteSet::state_expected`]; under the write transaction, so nothing changes
    /// them before the set commits.
    async fn check_state(
        &self,
        conn: &mut SqliteConnection,
        expected: &[(String, Option<String>)],
    ) -> StoreResult<()> {
        for (key, value) in expected {
            let stored: Option<String> = sqlx::query_scalar("SELECT value FROM _state WHERE key = ?1")
                .bind(key.clone())
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
            if stored != *value {
                return Err(crmsync_store::state_changed(key));
            }
        }
        Ok(())
    }

    pub(crate) async fn apply(&self, set: WriteSet) -> StoreResult<WriteOutcome> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let outcome = self.apply_in(&mut tx, set).await?;
        tx.commit().await.map_err(db_err)?;
        self.committed();
        Ok(outcome)
    }

    /// Applies a set inside the caller's write transaction.
    async fn apply_in(&self, tx: &mut SqliteConnection, mut set: WriteSet) -> StoreResult<WriteOutcome> {
        let n = set.row_count() as i64;
        let (last, metadata_version): (i64, i64) = sqlx::query_as(
            "UPDATE _org_state SET version = version + ?1 RETURNING version, metadata_version",
        )
        .bind(n)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        self.check_state(&mut *tx, &set.state_expected).await?;
        let schema = self.schema_at(&mut *tx, metadata_version).await?;
        let mut versions = Versions {
            next: last - n + 1,
            first: None,
            last: None,
        };
        let mut outcome = WriteOutcome::default();
        for op in &mut set.ops {
            let before = outcome.created + outcome.updated + outcome.deleted;
            match op {
                WriteOp::Upsert { entity, batch, mode } => {
                    let meta = schema.entity(entity.as_str())?;
                    let job = Upsert {
                        entity: meta,
                        batch,
                        mode: *mode,
                        count_created: set.count_created,
                    };
                    self.upsert(&mut *tx, job, &mut versions, &mut outcome).await?;
                }
                WriteOp::Delete { entity, ids, mode } => {
                    let meta = schema.entity(entity.as_str())?;
                    self.delete(&mut *tx, meta, ids, *mode, &mut versions, &mut outcome)
                        .await?;
                }
            }
            outcome
                .op_counts
                .push(outcome.created + outcome.updated + outcome.deleted - before);
        }
        self.apply_state(&mut *tx, &set.state).await?;
        outcome.first_version = versions.first;
        outcome.last_version = versions.last;
        Ok(outcome)
    }
}

/// A [`BulkWrite`] on SQLite: an open `BEGIN IMMEDIATE` transaction, holding this process's
/// write lock.
struct SqliteBulk<'a> {
    org: &'a SqliteOrg,
    tx: Option<sqlx::Transaction<'static, sqlx::Sqlite>>,
    _guard: tokio::sync::MutexGuard<'a, ()>,
}

#[async_trait]
impl BulkWrite for SqliteBulk<'_> {
    async fn write(&mut self, set: WriteSet) -> StoreResult<WriteOutcome> {
        let tx = self
            .tx
            .as_mut()
            .ok_or_else(|| StoreError::database("the bulk write already failed"))?;
        match self.org.apply_in(tx, set).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                // Nothing more may be written in a transaction that failed half-way.
                self.tx = None;
                Err(e)
            }
        }
    }

    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        let mut tx = self
            .tx
            .take()
            .ok_or_else(|| StoreError::database("the bulk write already failed"))?;
        // Back to the pool's bound before the connection returns to it (a bulk write that
        // fails keeps the larger cache on its connection until the pool retires it).
        set_cache(&mut tx, CACHE_KIB).await?;
        tx.commit().await.map_err(db_err)?;
        self.org.committed();
        Ok(())
    }
}

/// Sets the page cache of a transaction's connection (the setting is not transactional).
async fn set_cache(tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>, kib: u32) -> StoreResult<()> {
    sqlx::query(AssertSqlSafe(format!("PRAGMA cache_size = -{kib}")))
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl crmsync_store::RecordStore for SqliteOrg {
    async fn write(&self, set: WriteSet) -> StoreResult<WriteOutcome> {
        self.apply(set).await
    }

    async fn begin_bulk(&self) -> StoreResult<Box<dyn BulkWrite + '_>> {
        let guard = self.write_lock.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        set_cache(&mut tx, BULK_CACHE_KIB).await?;
        Ok(Box::new(SqliteBulk {
            org: self,
            tx: Some(tx),
            _guard: guard,
        }))
    }

    async fn retrieve(
        &self,
        entity: &crmsync_model::EntityName,
        id: RecordId,
        columns: Option<&[crmsync_model::AttributeName]>,
    ) -> StoreResult<crmsync_model::Record> {
        self.retrieve_record(entity, id, columns).await
    }

    async fn list(
        &self,
        entity: &crmsync_model::EntityName,
        request: &crmsync_store::ListRequest,
    ) -> StoreResult<crmsync_store::RecordPage> {
        self.list_records(entity, request).await
    }

    async fn count(&self, entity: &crmsync_model::EntityName) -> StoreResult<u64> {
        self.count_records(entity).await
    }
}
