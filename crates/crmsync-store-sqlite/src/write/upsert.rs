//! Upserts and updates of many rows: multi-row statements, each built while the one before
//! runs, with the created rows counted by rowid and lookups of existing records set only
//! where they changed.

use std::collections::HashSet;
use std::ops::Range;

use crmsync_model::{EntityMetadata, RecordBatch, RecordId, Value};
use crmsync_store::sql::{self, OnConflict, Versions, WriteLayout};
use crmsync_store::{StoreError, StoreResult, UpsertMode, WriteOutcome};
use sqlx::{AssertSqlSafe, SqliteConnection};

use super::now;
use crate::SqliteOrg;
use crate::bind::{bind, bind_rows, db_err};

/// One upsert op of a write set.
pub(super) struct Upsert<'a> {
    pub entity: &'a EntityMetadata,
    pub batch: &'a mut RecordBatch,
    pub mode: UpsertMode,
    pub count_created: bool,
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

impl SqliteOrg {
    /// Writes an upsert op in multi-row statements. Each statement's rows are checked and
    /// coerced, and its values bound, while the statement before runs on the connection's
    /// worker (a row that fails stops the op, and its transaction is rolled back).
    pub(super) async fn upsert(
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
}
