//! Durable scheduled work claimed by lease: the queue behind Sync Jobs and the webservice's
//! asynchronous jobs, shared by every instance on one catalog.
//!
//! A work item belongs to an org and has a `kind` (what to run) and a JSON `payload` (its
//! arguments). Its life:
//!
//! ```text
//! enqueue -> Queued --claim (due <= now)--> Running --complete--> Succeeded | PartiallySucceeded | Failed | Skipped
//!              ^                              |  |
//!              +----fail(retry_at = Some)-----+  +--fail(retry_at = None)--> Failed
//!              +----lease expired (claimable again, attempts + 1)
//! start ------------------------------------> Running (the caller runs it itself)
//! ```
//!
//! `start` is for a process that runs the work itself rather than leaving it to a worker (the
//! command line, a request of the admin UI): the item is inserted Running under the caller's
//! lease, so it is seen, counted and guarded like a claimed one, and once its lease expires (the
//! process died) any worker's claim takes it over.
//!
//! Invariants every backend guarantees:
//! - a claim is atomic: an item is handed to one claimer at a time, whichever instance asks
//!   (PostgreSQL: `FOR UPDATE SKIP LOCKED` plus a per-org advisory lock; SQLite: the write lock);
//! - an org never has two Running items with live leases: a claim skips every org that has
//!   one, and claims at most one item per org, a start is refused while the org has one, and a
//!   start and a claim of one org are as atomic with each other as two claims (PostgreSQL: the
//!   same per-org advisory lock), so two runs of one connection never overlap;
//! - a Running item whose lease expired (its instance died) is claimable again;
//! - only the current lease owner may renew, complete or fail an item (else `Conflict`), so an
//!   instance that lost its lease cannot overwrite the outcome of the one that took over.
//!
//! An item names an org that exists, except an item that creates its org ([`NewWork::for_new_org`],
//! a registration): the queue does not reference the orgs table, and deleting an org deletes
//! its items.
//!
//! Times are always passed in by the caller (never read inside), so that tests control the
//! clock and several instances agree on what "due" means only through the stored values.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::OrgName;
use serde_json::Value;
use uuid::Uuid;

use crate::{StoreError, StoreResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkStatus {
    Queued,
    Running,
    Succeeded,
    PartiallySucceeded,
    Failed,
    /// Ended without running anything: what it was queued for no longer applies (a run of a
    /// process deleted or deactivated since).
    Skipped,
}

impl WorkStatus {
    pub const ALL: [WorkStatus; 6] = [
        WorkStatus::Queued,
        WorkStatus::Running,
        WorkStatus::Succeeded,
        WorkStatus::PartiallySucceeded,
        WorkStatus::Failed,
        WorkStatus::Skipped,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            WorkStatus::Queued => "Queued",
            WorkStatus::Running => "Running",
            WorkStatus::Succeeded => "Succeeded",
            WorkStatus::PartiallySucceeded => "PartiallySucceeded",
            WorkStatus::Failed => "Failed",
            WorkStatus::Skipped => "Skipped",
        }
    }

    pub fn parse(s: &str) -> Option<WorkStatus> {
        WorkStatus::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// Whether the item is done for good.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            WorkStatus::Succeeded | WorkStatus::PartiallySucceeded | WorkStatus::Failed | WorkStatus::Skipped
        )
    }
}

/// A work item to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewWork {
    pub org: OrgName,
    /// What to run, e.g. `sync` or `sync-job`; at most 64 characters.
    pub kind: String,
    pub payload: Value,
    /// Not claimable before this time.
    pub due: DateTime<Utc>,
    /// The item creates `org` (a registration): it is enqueued although the org does not
    /// exist yet. Otherwise the org must exist.
    pub for_new_org: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WorkItem {
    pub id: Uuid,
    pub org: OrgName,
    pub kind: String,
    pub payload: Value,
    pub status: WorkStatus,
    pub due: DateTime<Utc>,
    /// The instance holding the item while it runs (kept after, to tell who ran it).
    pub lease_owner: Option<String>,
    pub lease_expires: Option<DateTime<Utc>>,
    /// Claims so far (a retry or a takeover after an expired lease counts one more).
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Progress while running, outcome when done.
    pub result: Option<Value>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

impl WorkItem {
    /// Whether `owner` holds a live lease on the item at `now`.
    pub fn leased_by(&self, owner: &str, now: DateTime<Utc>) -> bool {
        self.status == WorkStatus::Running
            && self.lease_owner.as_deref() == Some(owner)
            && self.lease_expires.is_some_and(|e| e > now)
    }
}

/// A lease to take or extend: who holds it and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease<'a> {
    pub owner: &'a str,
    pub now: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// How an item ends after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Queued again, claimable from this time.
    At(DateTime<Utc>),
    /// Failed for good.
    Never,
}

#[async_trait]
pub trait WorkStore: Send + Sync {
    /// Adds a Queued item. `NotFound` if the org does not exist (unless the item is
    /// [`NewWork::for_new_org`]), `BadRequest` for a bad kind.
    async fn enqueue(&self, work: NewWork, now: DateTime<Utc>) -> StoreResult<WorkItem>;

    /// Claims up to `limit` claimable items (Queued and due, or Running with an expired lease),
    /// earliest due first, at most one per org and none of an org that has a live Running
    /// item. Claimed items are Running under `lease`, with one more attempt.
    async fn claim_due(&self, lease: &Lease<'_>, limit: usize) -> StoreResult<Vec<WorkItem>>;

    /// Starts `work` at once for a caller that runs it itself: the item is inserted Running
    /// under `lease` with one attempt, unless its org has a Running item with a live lease, in
    /// which case nothing is stored and the answer is a `Conflict` naming the kind of that item
    /// and the instance holding it ([`org_busy`]). Atomic with [`WorkStore::claim_due`] and
    /// other starts: of any number of them racing for one org, at most one gets it. `NotFound`
    /// and `BadRequest` as for [`WorkStore::enqueue`].
    async fn start(&self, work: NewWork, lease: &Lease<'_>) -> StoreResult<WorkItem>;

    /// Extends the lease, optionally recording progress in `result`. `Conflict` if `lease.owner`
    /// no longer holds a live lease on the item, `NotFound` if there is no such item.
    async fn renew_lease(
        &self,
        id: Uuid,
        lease: &Lease<'_>,
        progress: Option<&Value>,
    ) -> StoreResult<WorkItem>;

    /// Ends a Running item held by `owner` with a final `status` and its `result`.
    /// `Conflict` if `owner` does not hold it (its lease expired and another took over, or it
    /// already ended); `BadRequest` for a status that is not final.
    async fn complete(
        &self,
        id: Uuid,
        owner: &str,
        status: WorkStatus,
        result: &Value,
        now: DateTime<Utc>,
    ) -> StoreResult<WorkItem>;

    /// Records a failed attempt of a Running item held by `owner`: with [`Retry::At`] it is
    /// Queued again from then, with [`Retry::Never`] it is Failed. `Conflict` as for
    /// [`WorkStore::complete`].
    async fn fail(
        &self,
        id: Uuid,
        owner: &str,
        error: &str,
        retry: Retry,
        now: DateTime<Utc>,
    ) -> StoreResult<WorkItem>;

    /// `NotFound` if there is no such item.
    async fn work_item(&self, id: Uuid) -> StoreResult<WorkItem>;

    /// The items of `org`, newest first, at most `limit`.
    async fn list_work(&self, org: &OrgName, limit: usize) -> StoreResult<Vec<WorkItem>>;

    /// How many items are in each status, over all orgs (every status listed, zeros included).
    async fn work_counts(&self) -> StoreResult<Vec<(WorkStatus, u64)>>;
}

/// Checks a kind before it is stored.
pub fn check_kind(kind: &str) -> StoreResult<()> {
    let valid = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::BadRequest(format!(
            "'{kind}' is not a valid work kind (lowercase letters, digits, '-' and '_', at most 64)"
        )))
    }
}

/// The error of a start refused because `holder` (the kind of its work and its lease owner)
/// runs `org` now.
pub fn org_busy(org: &OrgName, kind: &str, owner: &str) -> StoreError {
    StoreError::Conflict(format!(
        "'{org}' is busy with a run of {kind} on instance '{owner}'"
    ))
}

/// The error when `owner` does not hold `id`.
pub fn lease_lost(id: Uuid, owner: &str) -> StoreError {
    StoreError::Conflict(format!("work item {id} is not leased by '{owner}'"))
}
