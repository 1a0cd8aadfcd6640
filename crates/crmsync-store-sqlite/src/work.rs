//! The work queue in `catalog.db` (see [`crmsync_store::work`]). Every state change is one
//! statement inside `BEGIN IMMEDIATE`, so claims of several processes sharing the data
//! directory are serialized by SQLite's write lock: the claim's read of "which orgs already
//! run" and its update happen under the same lock, and so do a start's check and insert.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::OrgName;
use crmsync_store::work::{check_kind, lease_lost, org_busy};
use crmsync_store::{Lease, NewWork, Retry, StoreError, StoreResult, WorkItem, WorkStatus, WorkStore};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use uuid::Uuid;

use crate::bind::db_err;

pub struct SqliteWork {
    pool: SqlitePool,
}

impl SqliteWork {
    pub(crate) fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Runs one state-changing statement under the write lock and returns the rows it changed.
    async fn write(
        &self,
        query: sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> StoreResult<Vec<WorkItem>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let rows = query.fetch_all(&mut *tx).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        rows.iter().map(item_of).collect()
    }

    /// The one item a guarded update changed, or why none was: `NotFound` or `Conflict`.
    async fn one(&self, id: Uuid, owner: &str, changed: Vec<WorkItem>) -> StoreResult<WorkItem> {
        match changed.into_iter().next() {
            Some(item) => Ok(item),
            None => {
                self.work_item(id).await?;
                Err(lease_lost(id, owner))
            }
        }
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

fn json(text: Option<String>) -> StoreResult<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::database(format!("bad stored JSON: {e}"))))
        .transpose()
}

fn item_of(row: &SqliteRow) -> StoreResult<WorkItem> {
    let org: String = row.try_get("org").map_err(db_err)?;
    let status: String = row.try_get("status").map_err(db_err)?;
    let attempts: i64 = row.try_get("attempts").map_err(db_err)?;
    Ok(WorkItem {
        id: row.try_get("id").map_err(db_err)?,
        org: OrgName::parse(&org)?,
        kind: row.try_get("kind").map_err(db_err)?,
        payload: json(row.try_get("payload").map_err(db_err)?)?.unwrap_or(Value::Null),
        status: WorkStatus::parse(&status)
            .ok_or_else(|| StoreError::database(format!("unknown work status '{status}'")))?,
        due: time(row.try_get("due").map_err(db_err)?),
        lease_owner: row.try_get("lease_owner").map_err(db_err)?,
        lease_expires: row
            .try_get::<Option<i64>, _>("lease_expires")
            .map_err(db_err)?
            .map(time),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        last_error: row.try_get("last_error").map_err(db_err)?,
        result: json(row.try_get("result").map_err(db_err)?)?,
        created: time(row.try_get("created").map_err(db_err)?),
        updated: time(row.try_get("updated").map_err(db_err)?),
    })
}

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// `NotFound` unless the org of `work` exists or the work creates it. Inside the write lock, so
/// a delete of the org cannot come between this check and the insert (it deletes the org's
/// items under the same lock).
async fn check_org(tx: &mut Tx, work: &NewWork) -> StoreResult<()> {
    if work.for_new_org {
        return Ok(());
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM orgs WHERE name = ?1")
        .bind(work.org.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
    match exists {
        Some(_) => Ok(()),
        None => Err(StoreError::not_found(format!("organization '{}'", work.org))),
    }
}

/// Inserts `work`: Queued, or Running under `lease` with its first attempt.
async fn insert(
    tx: &mut Tx,
    work: &NewWork,
    now: DateTime<Utc>,
    lease: Option<&Lease<'_>>,
) -> StoreResult<WorkItem> {
    let row = sqlx::query(
        "INSERT INTO work (id, org, kind, payload, status, due, lease_owner, lease_expires, attempts, \
             created, updated) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) RETURNING *",
    )
    .bind(Uuid::new_v4())
    .bind(work.org.as_str())
    .bind(&work.kind)
    .bind(work.payload.to_string())
    .bind(if lease.is_some() { "Running" } else { "Queued" })
    .bind(micros(work.due))
    .bind(lease.map(|l| l.owner))
    .bind(lease.map(|l| micros(l.until)))
    .bind(i64::from(lease.is_some()))
    .bind(micros(now))
    .fetch_one(&mut **tx)
    .await
    .map_err(db_err)?;
    item_of(&row)
}

#[async_trait]
impl WorkStore for SqliteWork {
    async fn enqueue(&self, work: NewWork, now: DateTime<Utc>) -> StoreResult<WorkItem> {
        check_kind(&work.kind)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        check_org(&mut tx, &work).await?;
        let item = insert(&mut tx, &work, now, None).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(item)
    }

    async fn start(&self, work: NewWork, lease: &Lease<'_>) -> StoreResult<WorkItem> {
        check_kind(&work.kind)?;
        // The check for a live Running item and the insert share the write lock, as a
        // claim's check and update do: a claim cannot come in between.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        check_org(&mut tx, &work).await?;
        let holder: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT kind, lease_owner FROM work \
             WHERE org = ?1 AND status = 'Running' AND lease_expires > ?2 LIMIT 1",
        )
        .bind(work.org.as_str())
        .bind(micros(lease.now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        if let Some((kind, owner)) = holder {
            return Err(org_busy(&work.org, &kind, owner.as_deref().unwrap_or("?")));
        }
        let item = insert(&mut tx, &work, lease.now, Some(lease)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(item)
    }

    async fn claim_due(&self, lease: &Lease<'_>, limit: usize) -> StoreResult<Vec<WorkItem>> {
        let query = sqlx::query(
            "UPDATE work SET status = 'Running', lease_owner = ?2, lease_expires = ?3, \
                 attempts = attempts + 1, updated = ?1 \
             WHERE id IN ( \
                 SELECT id FROM ( \
                     SELECT w.id, w.due, w.created, \
                         ROW_NUMBER() OVER (PARTITION BY w.org ORDER BY w.due, w.created, w.id) AS n \
                     FROM work w \
                     WHERE ((w.status = 'Queued' AND w.due <= ?1) \
                            OR (w.status = 'Running' AND w.lease_expires <= ?1)) \
                       AND NOT EXISTS (SELECT 1 FROM work r WHERE r.org = w.org \
                            AND r.status = 'Running' AND r.lease_expires > ?1)) \
                 WHERE n = 1 ORDER BY due, created, id LIMIT ?4) \
             RETURNING *",
        )
        .bind(micros(lease.now))
        .bind(lease.owner)
        .bind(micros(lease.until))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let mut items = self.write(query).await?;
        items.sort_by_key(|a| (a.due, a.created, a.id));
        Ok(items)
    }

    async fn renew_lease(
        &self,
        id: Uuid,
        lease: &Lease<'_>,
        progress: Option<&Value>,
    ) -> StoreResult<WorkItem> {
        let query = sqlx::query(
            "UPDATE work SET lease_expires = ?4, updated = ?3, result = COALESCE(?5, result) \
             WHERE id = ?1 AND status = 'Running' AND lease_owner = ?2 AND lease_expires > ?3 \
             RETURNING *",
        )
        .bind(id)
        .bind(lease.owner)
        .bind(micros(lease.now))
        .bind(micros(lease.until))
        .bind(progress.map(Value::to_string));
        let changed = self.write(query).await?;
        self.one(id, lease.owner, changed).await
    }

    async fn complete(
        &self,
        id: Uuid,
        owner: &str,
        status: WorkStatus,
        result: &Value,
        now: DateTime<Utc>,
    ) -> StoreResult<WorkItem> {
        if !status.is_final() {
            return Err(StoreError::BadRequest(format!(
                "'{}' is not a final status",
                status.as_str()
            )));
        }
        let query = sqlx::query(
            "UPDATE work SET status = ?3, result = ?4, updated = ?5, lease_expires = NULL \
             WHERE id = ?1 AND status = 'Running' AND lease_owner = ?2 RETURNING *",
        )
        .bind(id)
        .bind(owner)
        .bind(status.as_str())
        .bind(result.to_string())
        .bind(micros(now));
        let changed = self.write(query).await?;
        self.one(id, owner, changed).await
    }

    async fn fail(
        &self,
        id: Uuid,
        owner: &str,
        error: &str,
        retry: Retry,
        now: DateTime<Utc>,
    ) -> StoreResult<WorkItem> {
        let (status, due) = match retry {
            Retry::At(at) => (WorkStatus::Queued, Some(micros(at))),
            Retry::Never => (WorkStatus::Failed, None),
        };
        let query = sqlx::query(
            "UPDATE work SET status = ?3, due = COALESCE(?4, due), last_error = ?5, updated = ?6, \
                 lease_expires = NULL \
             WHERE id = ?1 AND status = 'Running' AND lease_owner = ?2 RETURNING *",
        )
        .bind(id)
        .bind(owner)
        .bind(status.as_str())
        .bind(due)
        .bind(error)
        .bind(micros(now));
        let changed = self.write(query).await?;
        self.one(id, owner, changed).await
    }

    async fn work_item(&self, id: Uuid) -> StoreResult<WorkItem> {
        let row = sqlx::query("SELECT * FROM work WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            Some(row) => item_of(&row),
            None => Err(StoreError::not_found(format!("work item {id}"))),
        }
    }

    async fn list_work(&self, org: &OrgName, limit: usize) -> StoreResult<Vec<WorkItem>> {
        let rows = sqlx::query("SELECT * FROM work WHERE org = ?1 ORDER BY created DESC, id LIMIT ?2")
            .bind(org.as_str())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(item_of).collect()
    }

    async fn work_counts(&self) -> StoreResult<Vec<(WorkStatus, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM work GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(WorkStatus::ALL
            .into_iter()
            .map(|s| {
                let n = rows
                    .iter()
                    .find(|(name, _)| name == s.as_str())
                    .map_or(0, |(_, n)| *n);
                (s, u64::try_from(n).unwrap_or(0))
            })
            .collect())
    }
}
