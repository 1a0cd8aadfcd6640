//! Reading records, changes and state. Change queries run in one read transaction, so the
//! rows, the tombstones and the org's current version come from the same snapshot.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::{AttributeName, EntityName, Record, RecordId, Version};
use crmsync_store::sql::{self, Raw, ReadLayout};
use crmsync_store::{
    ChangeCursor, ChangeRows, ChangeStore, ListRequest, RecordPage, StateStore, StoreError, StoreResult,
};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteRow;

use crate::SqliteOrg;
use crate::bind::{db_err, read};
use crate::changes;

fn raws(layout: &ReadLayout, row: &SqliteRow) -> StoreResult<Vec<Raw>> {
    layout
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| read(row, i, c.storage))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)
}

fn decode(layout: &ReadLayout, row: &SqliteRow) -> StoreResult<Record> {
    sql::decode_record(layout, raws(layout, row)?)
}

impl SqliteOrg {
    pub(crate) async fn retrieve_record(
        &self,
        entity: &EntityName,
        id: RecordId,
        columns: Option<&[AttributeName]>,
    ) -> StoreResult<Record> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let schema = self.schema(&mut conn).await?;
        let meta = schema.entity(entity.as_str())?;
        let layout = ReadLayout::new(meta, columns)?;
        let statement = sql::select_by_id(
            &self.names,
            entity.as_str(),
            meta.primary_id_attribute.as_str(),
            &layout,
        );
        let row = sqlx::query(AssertSqlSafe(statement))
            .bind(*id.as_uuid())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::not_found(sql::record_label(meta, &id)))?;
        decode(&layout, &row)
    }

    pub(crate) async fn list_records(
        &self,
        entity: &EntityName,
        request: &ListRequest,
    ) -> StoreResult<RecordPage> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let schema = self.schema(&mut conn).await?;
        let meta = schema.entity(entity.as_str())?;
        let layout = ReadLayout::new(meta, request.columns.as_deref())?;
        let pk = meta.primary_id_attribute.as_str();
        let statement = sql::select_page(&self.names, entity.as_str(), pk, &layout, request.after.is_some());
        let mut q = sqlx::query(AssertSqlSafe(statement));
        if let Some(after) = request.after {
            q = q.bind(*after.as_uuid());
        }
        let limit = request.limit.max(1);
        let rows = q
            .bind(limit as i64 + 1)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        let mut records = rows
            .iter()
            .take(limit)
            .map(|r| decode(&layout, r))
            .collect::<StoreResult<Vec<_>>>()?;
        let next = if rows.len() > limit {
            records.last().and_then(|r| r.id)
        } else {
            None
        };
        records.truncate(limit);
        Ok(RecordPage { records, next })
    }

    pub(crate) async fn count_records(&self, entity: &EntityName) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        self.schema(&mut conn).await?.entity(entity.as_str())?;
        let statement = format!("SELECT count(*) FROM {}", self.names.table(entity.as_str()));
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(statement))
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        Ok(n as u64)
    }
}

#[async_trait]
impl ChangeStore for SqliteOrg {
    async fn change_rows(
        &self,
        entity: &EntityName,
        cursor: ChangeCursor,
        limit: usize,
    ) -> StoreResult<ChangeRows> {
        let mut schema = self.cached();
        // A metadata change between loading the schema and reading is seen in the read's
        // snapshot: the schema is reloaded and the page read again.
        for _ in 0..3 {
            let read = {
                let (schema, names, entity) = (schema.clone(), self.names.clone(), entity.clone());
                self.readers
                    .run(move |conn| {
                        changes::read_changes(conn, &schema, &names, &entity, cursor, limit.max(1))
                    })
                    .await?
            };
            match read {
                changes::Read::Page(page) => return Ok(page),
                changes::Read::Stale(version) => {
                    let mut conn = self.pool.acquire().await.map_err(db_err)?;
                    schema = self.schema_at(&mut conn, version).await?;
                }
            }
        }
        Err(StoreError::Database {
            message: "the metadata kept changing while the changes were read".into(),
            retryable: true,
        })
    }

    async fn current_version(&self) -> StoreResult<Version> {
        sqlx::query_scalar("SELECT version FROM _org_state")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn purge_tombstones(&self, older_than: DateTime<Utc>) -> StoreResult<u64> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let cutoff = older_than.timestamp_micros();
        sqlx::query(
            "INSERT INTO _change_horizon (entity, version) \
             SELECT entity, max(versionnumber) FROM _tombstones WHERE deletedon < ?1 GROUP BY entity \
             ON CONFLICT (entity) DO UPDATE SET version = max(version, excluded.version)",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let purged = sqlx::query("DELETE FROM _tombstones WHERE deletedon < ?1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        tx.commit().await.map_err(db_err)?;
        Ok(purged)
    }
}

#[async_trait]
impl StateStore for SqliteOrg {
    async fn state(&self, key: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM _state WHERE key = ?1")
            .bind(key.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn states(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        sqlx::query_as("SELECT key, value FROM _state WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key")
            .bind(prefix.to_owned())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }
}
