//! The scheduler worker of `crmsync serve`: claims due work from the catalog's durable queue
//! by lease, runs it, and records the outcome. Several instances on one database share the
//! queue; the store's claim guarantees that an org never has two items running at once
//! (`crmsync_store::work`).
//!
//! Life of an item in this worker: claimed under a lease of [`SchedulerConfig::lease`], which a
//! companion future renews every third of it while the work runs (if renewal fails, another
//! instance may own the item: the work is dropped, not finished twice); then completed, or
//! failed with a retry after [`backoff`] while attempts remain, or failed for good.
//!
//! Time comes from a [`Clock`], so tests drive due times, leases and retries without waiting.
//! The loop ([`Scheduler::run`]) wakes on a timer and stops on the shutdown future; tests call
//! [`Scheduler::run_due`], which claims what is due and runs it to the end.
//!
//! A process may also run an item itself rather than leave it to a worker (the command line,
//! a request of the admin UI): it starts the item under its own lease and runs it the same way
//! (`here.rs`), so a worker's claim skips the org meanwhile and takes the item over if that
//! process dies.
//!
//! Kinds: `sync-job` (a scheduled run of a process, `jobs.rs`); `connect`, `sync` and
//! `metadata` (the webservice's `ConnectAsync`, `SyncAsync` and `UpdateMetadataAsync`, and the
//! admin UI's Sync All, `webservice.rs`).

mod here;
mod jobs;
mod status;
pub mod webservice;

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use crmsync_store::{Lease, Retry, StoreError, WorkItem, WorkStatus};
use serde_json::{Value, json};

pub use here::{Local, WhenBusy, cli_instance_name};
pub use status::{StatusReport, WorkerStatus};

use crate::AppState;

/// Where the worker reads the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Names this instance in leases; unique per running instance.
    pub owner: String,
    pub lease: Duration,
    /// How often the loop looks for due work.
    pub poll: std::time::Duration,
    /// Items run at once by this instance.
    pub concurrency: usize,
    /// Attempts of an item before it fails for good.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled at each further one, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            owner: format!("instance-{}", uuid::Uuid::new_v4()),
            lease: Duration::seconds(60),
            poll: std::time::Duration::from_secs(2),
            concurrency: 4,
            max_attempts: 5,
            retry_base: Duration::seconds(30),
            retry_max: Duration::minutes(30),
        }
    }
}

/// The wait before retrying after failed attempt number `attempts` (1-based).
pub fn backoff(config: &SchedulerConfig, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(20);
    let wait = config.retry_base * 2_i32.pow(doublings);
    wait.min(config.retry_max)
}

/// Whether and when failed attempt number `attempts` (1-based) is tried again.
pub fn retry_decision(config: &SchedulerConfig, attempts: u32, retryable: bool, now: DateTime<Utc>) -> Retry {
    if retryable && attempts < config.max_attempts {
        Retry::At(now + backoff(config, attempts))
    } else {
        Retry::Never
    }
}

/// What running an item came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Ended with a final status and a result.
    Done(WorkStatus, Value),
    /// The attempt failed; `retry` says whether and when it is tried again (see
    /// [`Scheduler::retry_for`]).
    Failed { error: String, retry: Retry },
}

pub struct Scheduler {
    state: AppState,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    status: Arc<WorkerStatus>,
}

impl Scheduler {
    pub fn new(state: AppState, clock: Arc<dyn Clock>, config: SchedulerConfig) -> Self {
        Self {
            status: state.worker.clone(),
            state,
            clock,
            config,
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Claims up to `limit` due items for this instance.
    async fn claim(&self, limit: usize) -> Result<Vec<WorkItem>, StoreError> {
        let now = self.clock.now();
        let lease = Lease {
            owner: &self.config.owner,
            now,
            until: now + self.config.lease,
        };
        self.state.catalog.work().claim_due(&lease, limit).await
    }

    /// Claims what is due now and runs it to the end; returns how many items ran.
    pub async fn run_due(&self) -> Result<usize, StoreError> {
        let items = self.claim(self.config.concurrency).await?;
        let count = items.len();
        futures::future::join_all(items.into_iter().map(|item| self.execute(item))).await;
        Ok(count)
    }

    /// Polls for due work (every [`SchedulerConfig::poll`], when work was queued through this
    /// instance, and when one of its items ends) until `shutdown` completes; items in flight
    /// are then dropped and their leases left to expire, so another instance (or this one,
    /// restarted) takes over.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        tracing::info!(owner = %self.config.owner, "scheduler started");
        tokio::pin!(shutdown);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let free = self.config.concurrency.saturating_sub(tasks.len());
            if free > 0 {
                match self.claim(free).await {
                    Ok(items) => {
                        for item in items {
                            let me = self.clone();
                            tasks.spawn(async move { me.execute(item).await });
                        }
                    }
                    Err(e) => self
                        .status
                        .error(self.clock.now(), format!("cannot claim work: {e}")),
                }
            }
            // A finished item frees a slot: look for more work at once rather than at the
            // next poll, so a long queue drains as fast as the items run.
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(self.config.poll) => {}
                _ = self.state.work_added.notified() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.abort_all();
        tracing::info!(owner = %self.config.owner, "scheduler stopped");
    }

    /// Runs one claimed item while keeping its lease, then records the outcome.
    async fn execute(&self, item: WorkItem) {
        let (id, org) = (item.id, item.org.clone());
        if let Err(e) = self.execute_item(item, &Local::default()).await {
            self.status
                .error(self.clock.now(), format!("work {id} of '{org}': {e}"));
        }
    }

    /// Runs an item this instance holds (claimed, or started by [`Scheduler::start_here`])
    /// while keeping its lease, records the outcome and returns the item as it ended. An error
    /// when the lease was lost (another instance may own the item: the work is dropped, not
    /// finished twice) or the outcome could not be recorded.
    async fn execute_item(&self, item: WorkItem, local: &Local) -> Result<WorkItem, StoreError> {
        let progress = webservice::SharedProgress::beside(local.progress.clone());
        let outcome = self
            .hold(&item, &progress, jobs::run(self, &item, &progress, local))
            .await?;
        self.record(&item, outcome).await
    }

    /// Runs `work` for `item` while keeping the item's lease (and storing `progress` with it);
    /// the item shows among this instance's running work meanwhile. An error, and `work`
    /// dropped, when the lease could not be renewed.
    async fn hold<T>(
        &self,
        item: &WorkItem,
        progress: &webservice::SharedProgress,
        work: impl Future<Output = T>,
    ) -> Result<T, StoreError> {
        let _running = self.status.started(item);
        tracing::info!(org = %item.org, work = %item.id, kind = %item.kind, attempt = item.attempts, "work started");
        tokio::select! {
            done = work => Ok(done),
            lost = self.keep_lease(item, progress) => Err(lost),
        }
    }

    /// Renews the lease every third of its length, and writes new progress within a second
    /// (with a renewal); returns only when renewal failed.
    async fn keep_lease(&self, item: &WorkItem, progress: &webservice::SharedProgress) -> StoreError {
        let renew_every = (self.config.lease / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1));
        let tick = renew_every.min(std::time::Duration::from_secs(1));
        let mut written = 0;
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(tick).await;
            let (value, changes) = progress.versioned();
            if changes == written && renewed.elapsed() < renew_every {
                continue;
            }
            let now = self.clock.now();
            let lease = Lease {
                owner: &self.config.owner,
                now,
                until: now + self.config.lease,
            };
            let fresh = value.filter(|_| changes != written);
            let work = self.state.catalog.work();
            if let Err(e) = work.renew_lease(item.id, &lease, fresh.as_ref()).await {
                return e;
            }
            written = changes;
            renewed = tokio::time::Instant::now();
        }
    }

    /// The retry decision for a failed attempt of `item`: later while attempts remain and
    /// trying again may help, else never.
    pub fn retry_for(&self, item: &WorkItem, retryable: bool, now: DateTime<Utc>) -> Retry {
        retry_decision(&self.config, item.attempts, retryable, now)
    }

    async fn record(&self, item: &WorkItem, outcome: Outcome) -> Result<WorkItem, StoreError> {
        let work = self.state.catalog.work();
        let now = self.clock.now();
        let owner = &self.config.owner;
        match outcome {
            Outcome::Done(status, result) => {
                let ended = work.complete(item.id, owner, status, &result, now).await?;
                self.status.finished(status);
                if let Some(error) = result.get("error").and_then(|e| e.as_str()) {
                    self.status
                        .error(now, format!("{} of '{}': {error}", item.kind, item.org));
                }
                tracing::info!(org = %item.org, work = %item.id, status = status.as_str(), "work finished");
                Ok(ended)
            }
            Outcome::Failed { error, retry } => {
                let ended = work.fail(item.id, owner, &error, retry, now).await?;
                match retry {
                    Retry::At(at) => {
                        self.status.retried();
                        tracing::warn!(org = %item.org, work = %item.id, %error, retry_at = %at, "work failed; will retry");
                    }
                    Retry::Never => {
                        self.status.finished(WorkStatus::Failed);
                        tracing::error!(org = %item.org, work = %item.id, %error, "work failed for good");
                    }
                }
                self.status
                    .error(now, format!("{} of '{}': {error}", item.kind, item.org));
                Ok(ended)
            }
        }
    }
}

/// An item that ended without running anything, and why.
pub(crate) fn skipped(reason: &str) -> Outcome {
    Outcome::Done(WorkStatus::Skipped, json!({"skipped": reason}))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let config = SchedulerConfig::default();
        let waits: Vec<i64> = (1..=8).map(|a| backoff(&config, a).num_seconds()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1800, 1800]);
        assert_eq!(backoff(&config, u32::MAX), config.retry_max, "no overflow");
    }

    #[test]
    fn failed_attempts_retry_until_the_last_one_unless_retrying_cannot_help() {
        let config = SchedulerConfig {
            max_attempts: 3,
            ..SchedulerConfig::default()
        };
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            retry_decision(&config, 1, true, now),
            Retry::At(now + Duration::seconds(30))
        );
        assert_eq!(
            retry_decision(&config, 2, true, now),
            Retry::At(now + Duration::seconds(60))
        );
        assert_eq!(
            retry_decision(&config, 3, true, now),
            Retry::Never,
            "attempts spent"
        );
        assert_eq!(
            retry_decision(&config, 1, false, now),
            Retry::Never,
            "not retryable"
        );
    }
}
