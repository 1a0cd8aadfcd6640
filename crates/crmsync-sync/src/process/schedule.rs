//! Processes and the work queue: creating, changing and deleting a process keeps its one
//! queued run (a `sync-job` work item) in step with its schedule, and a finished run schedules
//! the next one.
//!
//! A process points at its queued run (`scheduled_work`). Changing the schedule queues a new
//! item and repoints; an item the process no longer points at is stale, and the scheduler
//! completes it without running anything (so a change never needs to find and cancel the old
//! item, even while it runs on another instance).
//!
//! Every change of a stored process is a guarded read-modify-write ([`store::modify`]): an
//! update and the end of a run racing each other (on one instance or two) are applied one
//! after the other, the second on top of the first. An item queued by an attempt that lost
//! the race is stale like any other, and skipped.

use chrono::{DateTime, Utc};
use crmsync_store::{NewWork, OrgStore, WorkItem, WorkStore, WriteSet};
use serde_json::json;
use uuid::Uuid;

use super::{Execution, Process, ProcessInput, store};
use crate::SyncError;

/// The work kind of a scheduled run of a process; its payload is `{"process": id}`.
pub const SYNC_JOB_KIND: &str = "sync-job";

/// Queues the next run of an active process and points the process at it.
async fn queue_next(
    work: &dyn WorkStore,
    store: &dyn OrgStore,
    process: &mut Process,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    match process.next_run {
        Some(due) if process.is_active() => {
            let item = work
                .enqueue(
                    NewWork {
                        org: store.org().clone(),
                        kind: SYNC_JOB_KIND.into(),
                        payload: json!({"process": process.id}),
                        due,
                        for_new_org: false,
                    },
                    now,
                )
                .await?;
            process.scheduled_work = Some(item.id);
        }
        _ => process.scheduled_work = None,
    }
    Ok(())
}

pub async fn create(
    work: &dyn WorkStore,
    store: &dyn OrgStore,
    input: ProcessInput,
    now: DateTime<Utc>,
) -> Result<Process, SyncError> {
    let mut process = Process::create(input, now)?;
    queue_next(work, store, &mut process, now).await?;
    store::save_new(store, &process).await?;
    Ok(process)
}

pub async fn update(
    work: &dyn WorkStore,
    store: &dyn OrgStore,
    id: Uuid,
    input: ProcessInput,
    now: DateTime<Utc>,
) -> Result<Process, SyncError> {
    let (process, ()) = store::modify(store, id, |mut process| {
        let input = input.clone();
        async move {
            let before = (process.is_active(), process.frequency.clone());
            process.update(input, now)?;
            let rescheduled = before != (process.is_active(), process.frequency.clone());
            if rescheduled || (process.is_active() && process.scheduled_work.is_none()) {
                queue_next(work, store, &mut process, now).await?;
            }
            Ok((process, WriteSet::new(), ()))
        }
    })
    .await?;
    Ok(process)
}

/// Queues a run of an active process due now ("Run now"), and points the process at it: the
/// run it was waiting for becomes stale (skipped when due), and once this one ends the
/// schedule goes on from the next slot as after any run. `Invalid` unless the process is
/// published and activated, since only an active process runs.
pub async fn run_now(
    work: &dyn WorkStore,
    store: &dyn OrgStore,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Process, SyncError> {
    let (process, ()) = store::modify(store, id, |mut process| async move {
        if !process.is_active() {
            return Err(SyncError::Invalid(format!(
                "process '{}' is not active: publish and activate it before running it",
                process.name
            )));
        }
        process.next_run = Some(now);
        queue_next(work, store, &mut process, now).await?;
        Ok((process, WriteSet::new(), ()))
    })
    .await?;
    Ok(process)
}

/// Whether `item` is the run `process` is waiting for (else it is stale: skip it).
pub fn is_current(process: &Process, item: &WorkItem) -> bool {
    process.is_active() && process.scheduled_work == Some(item.id)
}

/// After a run of `item` ended (`execution`): records it in the history and, if the process
/// still points at this item, moves its schedule on. `retry_at` keeps the process on this
/// item (it is queued again for a retry) with that as its next run.
pub async fn finish_run(
    work: &dyn WorkStore,
    store: &dyn OrgStore,
    item: &WorkItem,
    execution: &Execution,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<Process>, SyncError> {
    // Read again: the process may have changed while it ran (and may change while this
    // runs: `modify` then applies it again on top).
    let changed = store::modify(store, execution.process, |mut process| async move {
        if execution.status == "Succeeded" || execution.status == "PartiallySucceeded" {
            process.consecutive_failures = 0;
            process.last_error = None;
        } else {
            process.consecutive_failures += 1;
            process.last_error = execution.error.clone();
        }
        if is_current(&process, item) {
            match retry_at {
                Some(at) => process.next_run = Some(at),
                None => {
                    process.next_run = Some(process.frequency.next_after(process.created, now)?);
                    queue_next(work, store, &mut process, now).await?;
                }
            }
        }
        let history = store::execution_write(execution)?;
        Ok((process, history, ()))
    })
    .await;
    match changed {
        Ok((process, ())) => Ok(Some(process)),
        // Deleted with its history: the run is not recorded.
        Err(SyncError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
