//! Reading records, changes and state. Change queries run in one `REPEATABLE READ` read-only
//! transaction, so the rows, the tombstones and the org's current version come from the same
//! snapshot.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::{AttributeName, EntityName, Record, RecordId, Version};
use crmsync_store::sql::{self, Raw, ReadLayout};
use crmsync_store::{
    ChangeCursor, ChangeRows, ChangeStore, ListRequest, RecordPage, RowChange, StateStore, StoreError,
    StoreResult,
};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::PgOrg;
use crate::bind::{db_err, read};

fn raws(layout: &ReadLayout, row: &PgRow) -> StoreResult<Vec<Raw>> {
    layout
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| read(row, i, c.storage))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)
}

fn decode(layout: &ReadLayout, row: &PgRow) -> StoreResult<Record> {
    sql::decode_record(layout, raws(layout, row)?)
}

impl PgOrg {
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
        let records = rows
            .iter()
            .take(limit)
            .map(|r| decode(&layout, r))
            .collect::<StoreResult<Vec<_>>>()?;
        let next = if rows.len() > limit {
            records.last().and_then(|r| r.id)
        } else {
            None
        };
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

    /// `Expired` if tombstones after `after` were purged (only readers holding a token care).
    async fn check_horizon(
        &self,
        conn: &mut PgConnection,
        entity: &EntityName,
        after: Version,
    ) -> StoreResult<()> {
        let statement = format!(
            "SELECT version FROM {} WHERE entity = $1",
            self.table("_change_horizon")
        );
        let horizon: Option<i64> = sqlx::query_scalar(AssertSqlSafe(statement))
            .bind(entity.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
        match horizon.filter(|h| after < *h) {
            Some(horizon) => Err(StoreError::Expired {
                entity: entity.to_string(),
                since: after,
                horizon,
            }),
            None => Ok(()),
        }
    }

    async fn read_changes(
        &self,
        conn: &mut PgConnection,
        entity: &EntityName,
        cursor: ChangeCursor,
        limit: usize,
    ) -> StoreResult<ChangeRows> {
        let (after, deletes_after) = cursor.bounds();
        let schema = self.schema(conn).await?;
        let meta = schema.entity(entity.as_str())?;
        if cursor.since > 0 {
            self.check_horizon(conn, entity, after).await?;
        }
        let layout = ReadLayout::new(meta, None)?;
        let fetch = limit as i64 + 1;
        let rows = sqlx::query(AssertSqlSafe(sql::select_changes(
            &self.names,
            entity.as_str(),
            &layout,
        )))
        .bind(after)
        .bind(fetch)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        let changes = rows
            .iter()
            .map(|r| {
                let (id, version, values) = sql::decode_row(&layout, raws(&layout, r)?)?;
                Ok(RowChange::Upsert { id, version, values })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let mut tombstones = Vec::new();
        if let Some(deletes_after) = deletes_after {
            let pk = meta.primary_id_attribute.as_str();
            let rows = sqlx::query(AssertSqlSafe(sql::select_tombstones(
                &self.names,
                entity.as_str(),
                pk,
            )))
            .bind(entity.as_str())
            .bind(deletes_after)
            .bind(fetch)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
            for t in rows {
                let id: uuid::Uuid = t.try_get(0).map_err(db_err)?;
                let version: i64 = t.try_get(1).map_err(db_err)?;
                tombstones.push(RowChange::Delete {
                    id: RecordId::from_uuid(id),
                    version,
                });
            }
        }
        let current = self.version_on(conn).await?;
        let columns = layout.names().cloned().collect();
        Ok(ChangeRows::page(
            columns, changes, tombstones, cursor, limit, current,
        ))
    }

    async fn version_on(&self, conn: &mut PgConnection) -> StoreResult<Version> {
        let statement = format!("SELECT version FROM {}", self.table("_org_state"));
        sqlx::query_scalar(AssertSqlSafe(statement))
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)
    }
}

#[async_trait]
impl ChangeStore for PgOrg {
    async fn change_rows(
        &self,
        entity: &EntityName,
        cursor: ChangeCursor,
        limit: usize,
    ) -> StoreResult<ChangeRows> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db_err)?;
        let page = self.read_changes(&mut tx, entity, cursor, limit.max(1)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(page)
    }

    async fn current_version(&self) -> StoreResult<Version> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        self.version_on(&mut conn).await
    }

    async fn purge_tombstones(&self, older_than: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // The org's row lock, as writers take it: a purge never interleaves with a write.
        let lock = format!("SELECT version FROM {} FOR UPDATE", self.table("_org_state"));
        sqlx::query(AssertSqlSafe(lock))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let horizon = format!(
            "INSERT INTO {0} AS h (entity, version) \
             SELECT entity, max(versionnumber) FROM {1} WHERE deletedon < $1 GROUP BY entity \
             ON CONFLICT (entity) DO UPDATE SET version = greatest(h.version, excluded.version)",
            self.table("_change_horizon"),
            self.table("_tombstones")
        );
        sqlx::query(AssertSqlSafe(horizon))
            .bind(older_than)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let purge = format!("DELETE FROM {} WHERE deletedon < $1", self.table("_tombstones"));
        let purged = sqlx::query(AssertSqlSafe(purge))
            .bind(older_than)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        tx.commit().await.map_err(db_err)?;
        Ok(purged)
    }
}

#[async_trait]
impl StateStore for PgOrg {
    async fn state(&self, key: &str) -> StoreResult<Option<String>> {
        let statement = format!("SELECT value FROM {} WHERE key = $1", self.table("_state"));
        sqlx::query_scalar(AssertSqlSafe(statement))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn states(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        // Compared bytewise so the order and the prefix test do not depend on collation.
        let statement = format!(
            "SELECT key, value FROM {} WHERE left(key, length($1)) = $1 ORDER BY key COLLATE \"C\"",
            self.table("_state")
        );
        sqlx::query_as(AssertSqlSafe(statement))
            .bind(prefix)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }
}
