//! Applying write sets: one transaction, one version allocation.
//!
//! The allocation `UPDATE _org_state SET version = version + n RETURNING …` comes first: its
//! row lock is held until commit, so an org's writers (in every instance) commit one after
//! the other, in version order. A failing statement aborts the transaction and the whole set.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::{EntityMetadata, RecordBatch, RecordId};
use crmsync_store::sql::{self, OnConflict, Versions, WriteLayout};
use crmsync_store::{
    BulkWrite, DeleteMode, StoreError, StoreResult, UpsertMode, WriteOp, WriteOutcome, WriteSet,
};
use sqlx::{AssertSqlSafe, PgConnection};

use crate::PgOrg;
use crate::bind::{bind, db_err};

/// Now, at the microsecond precision of `timestamptz`.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default()
}

impl PgOrg {
    #[allow(clippy::too_many_arguments)]
    async fn upsert(
        &self,
        conn: &mut PgConnection,
        entity: &EntityMetadata,
        batch: &RecordBatch,
        layout: &WriteLayout,
        mode: UpsertMode,
        count_created: bool,
        versions: &mut Versions,
        outcome: &mut WriteOutcome,
    ) -> StoreResult<()> {
        let table = entity.logical_name.as_str();
        let pk = entity.primary_id_attribute.as_str();
        let now = now();
        if mode == UpsertMode::UpdateOnly {
            return self
                .update_each(conn, entity, batch, layout, now, versions, outcome)
                .await;
        }
        let slots = sql::write_slots(layout);
        let per_statement = sql::rows_per_statement(self.names.dialect, layout.width());
        for chunk in sql::distinct_runs(&batch.rows, per_statement) {
            if count_created || mode == UpsertMode::CreateOnly {
                let ids: Vec<RecordId> = chunk.iter().map(|(id, _)| *id).collect();
                let existing = self.existing_ids(conn, entity, &ids).await?;
                if mode == UpsertMode::CreateOnly
                    && let Some(id) = ids.iter().find(|id| existing.contains(id))
                {
                    return Err(StoreError::Conflict(format!(
                        "{} already exists",
                        sql::record_label(entity, id)
                    )));
                }
                outcome.created += (chunk.len() - existing.len()) as u64;
                outcome.updated += existing.len() as u64;
            } else {
                outcome.updated += chunk.len() as u64;
            }
            let statement = sql::upsert_rows(
                &self.names,
                table,
                pk,
                layout,
                chunk.len(),
                match mode {
                    UpsertMode::Upsert => OnConflict::Update,
                    _ => OnConflict::Fail,
                },
            );
            let mut q = sqlx::query(AssertSqlSafe(statement));
            for p in sql::rows_params(chunk, &slots, versions, now) {
                q = bind(q, p);
            }
            q.execute(&mut *conn).await.map_err(db_err)?;
        }
        Ok(())
    }

    /// Updates existing records only, many per statement: `NotFound` names the first one
    /// missing.
    #[allow(clippy::too_many_arguments)]
    async fn update_each(
        &self,
        conn: &mut PgConnection,
        entity: &EntityMetadata,
        batch: &RecordBatch,
        layout: &WriteLayout,
        now: DateTime<Utc>,
        versions: &mut Versions,
        outcome: &mut WriteOutcome,
    ) -> StoreResult<()> {
        let (table, pk) = (entity.logical_name.as_str(), entity.primary_id_attribute.as_str());
        let slots = sql::update_slots(layout);
        let per_statement = sql::rows_per_statement(self.names.dialect, slots.len());
        for chunk in sql::distinct_runs(&batch.rows, per_statement) {
            let mut q = sqlx::query(AssertSqlSafe(sql::update_rows(
                &self.names,
                table,
                pk,
                layout,
                chunk.len(),
            )));
            for p in sql::rows_params(chunk, &slots, versions, now) {
                q = bind(q, p);
            }
            let updated = q.execute(&mut *conn).await.map_err(db_err)?.rows_affected();
            if updated < chunk.len() as u64 {
                let ids: Vec<RecordId> = chunk.iter().map(|(id, _)| *id).collect();
                let existing = self.existing_ids(conn, entity, &ids).await?;
                let missing = ids.iter().find(|id| !existing.contains(id)).unwrap_or(&ids[0]);
                return Err(StoreError::not_found(sql::record_label(entity, missing)));
            }
            outcome.updated += chunk.len() as u64;
        }
        Ok(())
    }

    async fn existing_ids(
        &self,
        conn: &mut PgConnection,
        entity: &EntityMetadata,
        ids: &[RecordId],
    ) -> StoreResult<HashSet<RecordId>> {
        let statement = sql::select_existing_ids(
            &self.names,
            entity.logical_name.as_str(),
            entity.primary_id_attribute.as_str(),
            ids.len(),
        );
        let mut q = sqlx::query_scalar::<_, uuid::Uuid>(AssertSqlSafe(statement));
        for id in ids {
            q = q.bind(*id.as_uuid());
        }
        let found = q.fetch_all(&mut *conn).await.map_err(db_err)?;
        Ok(found.into_iter().map(RecordId::from_uuid).collect())
    }

    async fn delete(
        &self,
        conn: &mut PgConnection,
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
            // Tombstones in request order (once per id), so versions follow the caller's order.
            let mut seen = HashSet::new();
            let gone: Vec<&RecordId> = chunk
                .iter()
                .filter(|id| deleted.contains(id.as_uuid()) && seen.insert(**id))
                .collect();
            if gone.is_empty() {
                continue;
            }
            let mut q = sqlx::query(AssertSqlSafe(sql::insert_tombstones(&self.names, gone.len())));
            for id in &gone {
                q = q
                    .bind(entity.logical_name.as_str())
                    .bind(*id.as_uuid())
                    .bind(versions.take())
                    .bind(now);
            }
            q.execute(&mut *conn).await.map_err(db_err)?;
            outcome.deleted += gone.len() as u64;
        }
        Ok(())
    }

    async fn apply_state(
        &self,
        conn: &mut PgConnection,
        state: &[(String, Option<String>)],
    ) -> StoreResult<()> {
        let table = self.table("_state");
        for (key, value) in state {
            let q = match value {
                Some(v) => sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO {table} (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                )))
                .bind(key.as_str())
                .bind(v.as_str()),
                None => sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE key = $1")))
                    .bind(key.as_str()),
            };
            q.execute(&mut *conn).await.map_err(db_err)?;
        }
        Ok(())
    }

    /// Checks [`WriteSet::state_expected`]. It runs after the version allocation, which
    /// locks the org's `_org_state` row until commit: every other write set of the org waits
    /// for this one, and this statement reads the latest committed values.
    async fn check_state(
        &self,
        conn: &mut PgConnection,
        expected: &[(String, Option<String>)],
    ) -> StoreResult<()> {
        let statement = format!("SELECT value FROM {} WHERE key = $1", self.table("_state"));
        for (key, value) in expected {
            let stored: Option<String> = sqlx::query_scalar(AssertSqlSafe(statement.clone()))
                .bind(key.as_str())
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let outcome = self.apply_in(&mut tx, set).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(outcome)
    }

    /// Applies a set inside the caller's transaction.
    async fn apply_in(&self, tx: &mut PgConnection, mut set: WriteSet) -> StoreResult<WriteOutcome> {
        let n = set.row_count() as i64;
        let allocate = format!(
            "UPDATE {} SET version = version + $1 RETURNING version, metadata_version, epoch",
            self.table("_org_state")
        );
        let (last, metadata_version, epoch): (i64, i64, uuid::Uuid) = sqlx::query_as(AssertSqlSafe(allocate))
            .bind(n)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        self.check_state(&mut *tx, &set.state_expected).await?;
        let schema = self.schema_at(&mut *tx, epoch, metadata_version).await?;
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
                    let layout = sql::prepare_upsert(meta, batch)?;
                    self.upsert(
                        &mut *tx,
                        meta,
                        batch,
                        &layout,
                        *mode,
                        set.count_created,
                        &mut versions,
                        &mut outcome,
                    )
                    .await?;
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

/// A [`BulkWrite`] on PostgreSQL: an open transaction (it holds the org's version row lock
/// from its first set on, so other writers of the org wait for its commit).
struct PgBulk<'a> {
    org: &'a PgOrg,
    tx: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
}

#[async_trait]
impl BulkWrite for PgBulk<'_> {
    async fn write(&mut self, set: WriteSet) -> StoreResult<WriteOutcome> {
        let tx = self
            .tx
            .as_mut()
            .ok_or_else(|| StoreError::database("the bulk write already failed"))?;
        match self.org.apply_in(tx, set).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                // A failed statement aborts the transaction: nothing more may be written.
                self.tx = None;
                Err(e)
            }
        }
    }

    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        let tx = self
            .tx
            .take()
            .ok_or_else(|| StoreError::database("the bulk write already failed"))?;
        tx.commit().await.map_err(db_err)
    }
}

#[async_trait]
impl crmsync_store::RecordStore for PgOrg {
    async fn write(&self, set: WriteSet) -> StoreResult<WriteOutcome> {
        self.apply(set).await
    }

    async fn begin_bulk(&self) -> StoreResult<Box<dyn BulkWrite + '_>> {
        let tx = self.pool.begin().await.map_err(db_err)?;
        Ok(Box::new(PgBulk {
            org: self,
            tx: Some(tx),
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
