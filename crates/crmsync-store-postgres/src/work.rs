//! The work queue in the catalog schema (see [`crmsync_store::work`]), shared by every
//! instance on the database.
//!
//! A claim runs in one transaction: it locks candidate rows with `FOR UPDATE SKIP LOCKED`
//! (so concurrent claimers pass over each other's rows instead of waiting), then for each
//! candidate takes a transaction-scoped advisory lock on its org with `pg_try_advisory_xact_lock`
//! and, holding it, checks again that the org has no live Running item. The advisory lock is
//! what makes "one run per org" hold across instances: two claimers of different rows of one
//! org cannot both pass the check, because the second one either fails to take the lock (the
//! first has not committed) or, once it has it, sees the first one's committed claim (each
//! statement of a READ COMMITTED transaction reads the latest commits).
//!
//! A start (an item inserted Running by the caller that runs it) takes the same advisory lock,
//! waiting for it, before it checks the org and inserts: so a start and a claim of one org
//! are exactly as exclusive as two claims.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::OrgName;
use crmsync_store::sql::quote;
use crmsync_store::work::{check_kind, lease_lost, org_busy};
use crmsync_store::{Lease, NewWork, Retry, StoreError, StoreResult, WorkItem, WorkStatus, WorkStore};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use crate::bind::db_err;

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Candidate rows locked per claimed item: a claim passes over orgs that already run.
const CANDIDATES_PER_CLAIM: usize = 4;

pub struct PgWork {
    pool: PgPool,
    /// `"{ns}catalog"."work"`.
    table: String,
    /// `"{ns}catalog"."orgs"`.
    orgs: String,
    /// Prefix of the advisory lock keys, so namespaces sharing a database do not contend.
    lock_prefix: String,
}

impl PgWork {
    pub(crate) fn new(pool: PgPool, catalog_schema: &str) -> Self {
        Self {
            pool,
            table: format!("{}.{}", quote(catalog_schema), quote("work")),
            orgs: format!("{}.{}", quote(catalog_schema), quote("orgs")),
            lock_prefix: format!("{catalog_schema}/work/"),
        }
    }

    /// The key of the advisory lock on `org`'s work.
    fn org_lock(&self, org: &str) -> String {
        format!("{}{org}", self.lock_prefix)
    }

    /// `NotFound` unless the org of `work` exists or the work creates it. The key-share lock on
    /// the org's row makes a concurrent delete of the org wait for the insert that follows,
    /// then delete the item with the org.
    async fn check_org(&self, tx: &mut Tx, work: &NewWork) -> StoreResult<()> {
        if work.for_new_org {
            return Ok(());
        }
        let exists: Option<i32> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT 1 FROM {} WHERE name = $1 FOR KEY SHARE",
            self.orgs
        )))
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
        &self,
        tx: &mut Tx,
        work: &NewWork,
        now: DateTime<Utc>,
        lease: Option<&Lease<'_>>,
    ) -> StoreResult<WorkItem> {
        let statement = format!(
            "INSERT INTO {} (id, org, kind, payload, status, due, lease_owner, lease_expires, attempts, \
                 created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING *",
            self.table
        );
        let row = sqlx::query(AssertSqlSafe(statement))
            .bind(Uuid::new_v4())
            .bind(work.org.as_str())
            .bind(&work.kind)
            .bind(work.payload.to_string())
            .bind(if lease.is_some() { "Running" } else { "Queued" })
            .bind(work.due)
            .bind(lease.map(|l| l.owner))
            .bind(lease.map(|l| l.until))
            .bind(i32::from(lease.is_some()))
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?;
        item_of(&row)
    }

    /// The one item a guarded update changed, or why none was: `NotFound` or `Conflict`.
    async fn one(&self, id: Uuid, owner: &str, row: Option<PgRow>) -> StoreResult<WorkItem> {
        match row {
            Some(row) => item_of(&row),
            None => {
                self.work_item(id).await?;
                Err(lease_lost(id, owner))
            }
        }
    }
}

fn json(text: Option<String>) -> StoreResult<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::database(format!("bad stored JSON: {e}"))))
        .transpose()
}

fn item_of(row: &PgRow) -> StoreResult<WorkItem> {
    let org: String = row.try_get("org").map_err(db_err)?;
    let status: String = row.try_get("status").map_err(db_err)?;
    let attempts: i32 = row.try_get("attempts").map_err(db_err)?;
    Ok(WorkItem {
        id: row.try_get("id").map_err(db_err)?,
        org: OrgName::parse(&org)?,
        kind: row.try_get("kind").map_err(db_err)?,
        payload: json(row.try_get("payload").map_err(db_err)?)?.unwrap_or(Value::Null),
        status: WorkStatus::parse(&status)
            .ok_or_else(|| StoreError::database(format!("unknown work status '{status}'")))?,
        due: row.try_get("due").map_err(db_err)?,
        lease_owner: row.try_get("lease_owner").map_err(db_err)?,
        lease_expires: row.try_get("lease_expires").map_err(db_err)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error: row.try_get("last_error").map_err(db_err)?,
        result: json(row.try_get("result").map_err(db_err)?)?,
        created: row.try_get("created").map_err(db_err)?,
        updated: row.try_get("updated").map_err(db_err)?,
    })
}

#[async_trait]
impl WorkStore for PgWork {
    async fn enqueue(&self, work: NewWork, now: DateTime<Utc>) -> StoreResult<WorkItem> {
        check_kind(&work.kind)?;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        self.check_org(&mut tx, &work).await?;
        let item = self.insert(&mut tx, &work, now, None).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(item)
    }

    async fn start(&self, work: NewWork, lease: &Lease<'_>) -> StoreResult<WorkItem> {
        check_kind(&work.kind)?;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        self.check_org(&mut tx, &work).await?;
        // The claim's advisory lock on the org, waited for rather than tried: a claim holding
        // it commits first and its item is then seen below, and a claim coming later fails to
        // take it, or takes it after this commit and sees this item.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(self.org_lock(work.org.as_str()))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let holder: Option<(String, Option<String>)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT kind, lease_owner FROM {} \
             WHERE org = $1 AND status = 'Running' AND lease_expires > $2 LIMIT 1",
            self.table
        )))
        .bind(work.org.as_str())
        .bind(lease.now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        if let Some((kind, owner)) = holder {
            return Err(org_busy(&work.org, &kind, owner.as_deref().unwrap_or("?")));
        }
        let item = self.insert(&mut tx, &work, lease.now, Some(lease)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(item)
    }

    async fn claim_due(&self, lease: &Lease<'_>, limit: usize) -> StoreResult<Vec<WorkItem>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let t = &self.table;
        let candidates = format!(
            "SELECT w.id, w.org FROM {t} w \
             WHERE ((w.status = 'Queued' AND w.due <= $1) OR (w.status = 'Running' AND w.lease_expires <= $1)) \
               AND NOT EXISTS (SELECT 1 FROM {t} r WHERE r.org = w.org \
                    AND r.status = 'Running' AND r.lease_expires > $1) \
             ORDER BY w.due, w.created, w.id LIMIT $2 FOR UPDATE OF w SKIP LOCKED"
        );
        let running = format!(
            "SELECT EXISTS (SELECT 1 FROM {t} WHERE org = $1 AND id <> $2 \
                 AND status = 'Running' AND lease_expires > $3)"
        );
        let claim = format!(
            "UPDATE {t} SET status = 'Running', lease_owner = $2, lease_expires = $3, \
                 attempts = attempts + 1, updated = $4 WHERE id = $1 RETURNING *"
        );
        let wanted = i64::try_from(limit.saturating_mul(CANDIDATES_PER_CLAIM)).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let rows: Vec<(Uuid, String)> = sqlx::query_as(AssertSqlSafe(candidates))
            .bind(lease.now)
            .bind(wanted)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut claimed: Vec<WorkItem> = Vec::new();
        for (id, org) in rows {
            if claimed.len() >= limit || claimed.iter().any(|c| c.org.as_str() == org) {
                continue;
            }
            let locked: bool =
                sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(self.org_lock(&org))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if !locked {
                continue;
            }
            let busy: bool = sqlx::query_scalar(AssertSqlSafe(running.clone()))
                .bind(&org)
                .bind(id)
                .bind(lease.now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            if busy {
                continue;
            }
            let row = sqlx::query(AssertSqlSafe(claim.clone()))
                .bind(id)
                .bind(lease.owner)
                .bind(lease.until)
                .bind(lease.now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            claimed.push(item_of(&row)?);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(claimed)
    }

    async fn renew_lease(
        &self,
        id: Uuid,
        lease: &Lease<'_>,
        progress: Option<&Value>,
    ) -> StoreResult<WorkItem> {
        let statement = format!(
            "UPDATE {} SET lease_expires = $4, updated = $3, result = COALESCE($5, result) \
             WHERE id = $1 AND status = 'Running' AND lease_owner = $2 AND lease_expires > $3 \
             RETURNING *",
            self.table
        );
        let row = sqlx::query(AssertSqlSafe(statement))
            .bind(id)
            .bind(lease.owner)
            .bind(lease.now)
            .bind(lease.until)
            .bind(progress.map(Value::to_string))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        self.one(id, lease.owner, row).await
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
        let statement = format!(
            "UPDATE {} SET status = $3, result = $4, updated = $5, lease_expires = NULL \
             WHERE id = $1 AND status = 'Running' AND lease_owner = $2 RETURNING *",
            self.table
        );
        let row = sqlx::query(AssertSqlSafe(statement))
            .bind(id)
            .bind(owner)
            .bind(status.as_str())
            .bind(result.to_string())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        self.one(id, owner, row).await
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
            Retry::At(at) => (WorkStatus::Queued, Some(at)),
            Retry::Never => (WorkStatus::Failed, None),
        };
        let statement = format!(
            "UPDATE {} SET status = $3, due = COALESCE($4, due), last_error = $5, updated = $6, \
                 lease_expires = NULL \
             WHERE id = $1 AND status = 'Running' AND lease_owner = $2 RETURNING *",
            self.table
        );
        let row = sqlx::query(AssertSqlSafe(statement))
            .bind(id)
            .bind(owner)
            .bind(status.as_str())
            .bind(due)
            .bind(error)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        self.one(id, owner, row).await
    }

    async fn work_item(&self, id: Uuid) -> StoreResult<WorkItem> {
        let statement = format!("SELECT * FROM {} WHERE id = $1", self.table);
        let row = sqlx::query(AssertSqlSafe(statement))
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
        let statement = format!(
            "SELECT * FROM {} WHERE org = $1 ORDER BY created DESC, id LIMIT $2",
            self.table
        );
        let rows = sqlx::query(AssertSqlSafe(statement))
            .bind(org.as_str())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(item_of).collect()
    }

    async fn work_counts(&self) -> StoreResult<Vec<(WorkStatus, u64)>> {
        let statement = format!("SELECT status, COUNT(*) FROM {} GROUP BY status", self.table);
        let rows: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(statement))
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
