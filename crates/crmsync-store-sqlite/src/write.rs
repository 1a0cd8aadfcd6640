//! Applying write sets: one `BEGIN IMMEDIATE` transaction, one version allocation.

use std::collections::HashSet;
use std::ops::Range;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::{EntityMetadata, RecordBatch, RecordId, Value};
use crmsync_store::sql::{self, OnConflict, Versions, WriteLayout};
use crmsync_store::{
    BulkWrite, DeleteMode, StoreError, StoreResult, UpsertMode, WriteOp, WriteOutcome, WriteSet,
};
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::SqliteOrg;
use crate::bind::{bind, bind_rows, db_err};
use crate::catalog::{BULK_CACHE_KIB, CACHE_KIB};

/// One upsert op of a write set.
struct Upsert<'a> {
    entity: &'a EntityMetadata,
    batch: &'a mut RecordBatch,
    mode: UpsertMode,
    count_created: bool,
}

/// Runs `statement` and meanwhile builds the next one (binding its values on this thread
/// while the connection's worker executes this one); the built statement, once this one
/// succeeded.
async fn ahead<F, T, R>(statement: F, build: Option<impl FnOnce() -> T>) -> Result<Option<T>, sqlx::Error>
where
    F: Future<Output = Result<R, sqlx::Error>>,
{
    let (result, built) = ahead_with(statement, build).await;
    result.map(|_| built)
}

/// [`ahead`], keeping the statement's result.
async fn ahead_with<F, T, R>(
    statement: F,
    build: Option<impl FnOnce() -> T>,
) -> (Result<R, sqlx::Error>, Option<T>)
where
    F: Future<Output = Result<R, sqlx::Error>>,
{
    // `join!` polls the statement first: it is on its way to the worker before the build runs.
    tokio::join!(statement, async { build.map(|b| b()) })
}

pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default()
}

impl SqliteOrg {
    /// Writes an upsert op in multi-row statements. Each statement's rows are checked and
    /// coerced, and its values bound, while the statement before runs on the connection's
    /// worker (a row that fails stops the op, and its transaction is rolled back).
    async fn upsert(
        &self,
        conn: &mut SqliteConnection,
        job: Upsert<'_>,
        versions: &mut Versions,
        outcome: &mut WriteOutcome,
    ) -> StoreResult<()> {
        let Upsert {
            entity,
            batch,
            mode,
            count_created,
        } = job;
        let layout = WriteLayout::new(entity, &batch.columns)?;
        if mode == UpsertMode::UpdateOnly {
            sql::coerce_rows(&layout, &batch.columns, &mut batch.rows)?;
            return self.update(conn, entity, batch, &layout, versions, outcome).await;
        }
        let table = entity.logical_name.as_str();
        let pk = entity.primary_id_attribute.as_str();
        let now = now();
        let RecordBatch { columns, rows } = batch;
        let slots = sql::write_slots(&layout);
        let per_statement = sql::rows_per_statement(self.names.dialect, layout.width());
        // An upsert leaves lookups out of its update, and sets them afterwards where they
        // changed, on the records the statement did not create.
        let lookups_apart = mode == UpsertMode::Upsert && !layout.lookup_ids().is_empty();
        let on_conflict = match mode {
            UpsertMode::Upsert if lookups_apart => OnConflict::UpdateExceptLookups,
            UpsertMode::Upsert => OnConflict::Update,
            _ => OnConflict::Fail,
        };
        let build = |chunk: &mut [(RecordId, Vec<Value>)], versions: &mut Versions| {
            sql::coerce_rows(&layout, columns, chunk)?;
            let statement = sql::upsert_rows(&self.names, table, pk, &layout, chunk.len(), on_conflict);
            StoreResult::Ok(bind_rows(
                sqlx::query(AssertSqlSafe(statement)),
                chunk,
                &slots,
                versions,
                now,
            ))
        };
        let chunks: Vec<Range<usize>> = (0..rows.len())
            .step_by(per_statement)
            .map(|start| start..(start + per_statement).min(rows.len()))
            .collect();
        // Which rows an upsert created is known by the rowids it took: a new row takes the
        // rowid after the table's largest (no rowid is ever given explicitly, and nothing is
        // deleted meanwhile), an updated one keeps its own. Without rowids to go by, created
        // rows are counted by looking up which ids exist.
        let counting = count_created && mode == UpsertMode::Upsert;
        let start = match counting || lookups_apart {
            true => self.last_rowid(conn, table).await?,
            false => None,
        };
        let by_lookup = mode == UpsertMode::CreateOnly || (counting && start.is_none());
        let mut last = start;
        let mut next = match chunks.first() {
            Some(first) => Some(build(&mut rows[first.clone()], versions)?),
            None => None,
        };
        for (k, chunk) in chunks.iter().enumerate() {
            let q = next.take().expect("each statement is built before its turn");
            if by_lookup {
                let ids: Vec<RecordId> = rows[chunk.clone()].iter().map(|(id, _)| *id).collect();
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
            }
            let following = chunks.get(k + 1).map(|c| {
                let (chunk, versions) = (&mut rows[c.clone()], &mut *versions);
                || build(chunk, versions)
            });
            next = ahead(q.execute(&mut *conn), following)
                .await
                .map_err(db_err)?
                .transpose()?;
            if lookups_apart {
                let now = self.last_rowid(conn, table).await?;
                let all_created = matches!((last, now), (Some(a), Some(b)) if b - a == chunk.len() as i64);
                if !all_created {
                    self.update_lookups(conn, entity, &layout, &rows[chunk.clone()])
                        .await?;
                }
                last = now;
            }
        }
        if by_lookup {
            return Ok(());
        }
        let total = rows.len() as u64;
        match start.filter(|_| counting) {
            Some(before) => {
                let after = match lookups_apart {
                    true => last,
                    false => self.last_rowid(conn, table).await?,
                };
                let after = after.unwrap_or(before);
                let created = u64::try_from(after - before).unwrap_or(0).min(total);
                outcome.created += created;
                outcome.updated += total - created;
            }
            None => outcome.updated += total,
        }
        Ok(())
    }

    /// Sets the lookups of the existing records among `rows` where they differ (see
    /// [`OnConflict::UpdateExceptLookups`]).
    async fn update_lookups(
        &self,
        conn: &mut SqliteConnection,
        entity: &EntityMetadata,
        layout: &WriteLayout,
        rows: &[(RecordId, Vec<Value>)],
    ) -> StoreResult<()> {
        let (params, count) = sql::lookup_params(layout, rows);
        let statement = sql::update_changed_lookups(
            &self.names,
            entity.logical_name.as_str(),
            entity.primary_id_attribute.as_str(),
            layout,
            count,
        );
        let mut q = sqlx::query(AssertSqlSafe(statement));
        for p in params {
            q = bind(q, p);
        }
        q.execute(&mut *conn).await.map_err(db_err)?;
        Ok(())
    }

    /// The largest rowid of `table` (0 when empty), or `None` when it is so large that
    /// SQLite may choose new rowids at random (it never is: rowids are never given).
    async fn last_rowid(&self, conn: &mut SqliteConnection, table: &str) -> StoreResult<Option<i64>> {
        let statement = format!("SELECT max(rowid) FROM {}", self.names.table(table));
        let max: Option<i64> = sqlx::query_scalar(AssertSqlSafe(statement))
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        let max = max.unwrap_or(0);
        Ok((max < i64::MAX / 2).then_some(max))
    }

    /// Updates existing records only, many per statement: `NotFound` names the first one
    /// missing.
    async fn update(
        &self,
        conn: &mut SqliteConnection,
        entity: &EntityMetadata,
        batch: &RecordBatch,
        layout: &WriteLayout,
        versions: &mut Versions,
        outcome: &mut WriteOutcome,
    ) -> StoreResult<()> {
        let (table, pk) = (entity.logical_name.as_str(), entity.primary_id_attribute.as_str());
        let now = now();
        let slots = sql::update_slots(layout);
        let per_statement = sql::rows_per_statement(self.names.dialect, slots.len());
        let build = |chunk: &[(RecordId, Vec<Value>)], versions: &mut Versions| {
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
            q
        };
        let mut chunks = sql::distinct_runs(&batch.rows, per_statement)
            .into_iter()
            .peekable();
        let mut next = chunks.peek().map(|chunk| build(chunk, versions));
        while let Some(chunk) = chunks.next() {
            let q = next.take().expect("each statement is built before its turn");
            let (result, built) = ahead_with(
                q.execute(&mut *conn),
                chunks.peek().map(|c| || build(c, versions)),
            )
            .await;
            next = built;
            let updated = result.map_err(db_err)?.rows_affected();
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
        conn: &mut SqliteConnection,
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
