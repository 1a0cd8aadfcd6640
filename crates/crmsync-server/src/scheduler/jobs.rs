//! What each kind of work does (the webservice's kinds are in `webservice.rs`). `sync-job`: a scheduled run of a process — the sync of the
//! org's connection (trigger `job`, limited to the process's entities), recorded in the
//! process's history, after which the process's next run is queued (see
//! `crmsync_sync::process::schedule`). A run that ends `Failed` is retried with backoff; once
//! the attempts are spent the process keeps its schedule and shows its failures
//! (`consecutiveFailures`, `lastError`, the history).

use std::sync::Arc;

use crmsync_store::{OrgStore, Retry, WorkItem, WorkStatus};
use crmsync_sync::process::{self, Execution, schedule};
use crmsync_sync::{Connection, NoProgress, RunStatus, SyncError, SyncRunner, Trigger};
use serde_json::json;
use uuid::Uuid;

use super::webservice::{self, SharedProgress};
use super::{Local, Outcome, Scheduler, skipped};

pub(super) async fn run(
    scheduler: &Scheduler,
    item: &WorkItem,
    progress: &SharedProgress,
    local: &Local,
) -> Outcome {
    match item.kind.as_str() {
        process::SYNC_JOB_KIND => sync_job(scheduler, item).await,
        webservice::SYNC_KIND => webservice::sync(scheduler, item, progress, local).await,
        webservice::METADATA_KIND => webservice::metadata(scheduler, item).await,
        webservice::CONNECT_KIND => webservice::connect(scheduler, item).await,
        other => Outcome::Failed {
            error: format!("unknown kind of work '{other}'"),
            retry: Retry::Never,
        },
    }
}

fn failed(scheduler: &Scheduler, item: &WorkItem, e: &SyncError) -> Outcome {
    let now = scheduler.clock.now();
    count_upstream(scheduler, e);
    Outcome::Failed {
        error: e.to_string(),
        retry: scheduler.retry_for(item, e.is_retryable(), now),
    }
}

/// Counts errors of the server side (unreachable, or answering with an error).
fn count_upstream(scheduler: &Scheduler, e: &SyncError) {
    if matches!(
        e,
        SyncError::Network(_) | SyncError::Server { .. } | SyncError::Unauthorized(_)
    ) {
        scheduler.state.metrics.upstream_error();
    }
}

async fn sync_job(scheduler: &Scheduler, item: &WorkItem) -> Outcome {
    let Some(id) = item
        .payload
        .get("process")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return Outcome::Failed {
            error: format!("work {} names no process", item.id),
            retry: Retry::Never,
        };
    };
    let store = match scheduler.state.catalog.open_org(&item.org).await {
        Ok(store) => store,
        Err(e) => return failed(scheduler, item, &e.into()),
    };
    let job = match process::load(&*store, id).await {
        Ok(p) => p,
        Err(SyncError::NotFound(_)) => return skipped("the process was deleted"),
        Err(e) => return failed(scheduler, item, &e),
    };
    if !schedule::is_current(&job, item) {
        return skipped("the process was changed or deactivated since this run was queued");
    }
    let started = scheduler.clock.now();
    let attempt = run_sync(scheduler, store.clone(), &job).await;
    let now = scheduler.clock.now();
    let (status, run_id, error, retryable) = match &attempt {
        Ok((status, run, error)) => (*status, Some(*run), error.clone(), true),
        Err(e) => {
            count_upstream(scheduler, e);
            (WorkStatus::Failed, None, Some(e.to_string()), e.is_retryable())
        }
    };
    let retry = match status {
        WorkStatus::Failed => scheduler.retry_for(item, retryable, now),
        _ => Retry::Never,
    };
    let execution = Execution {
        process: job.id,
        work: item.id,
        started,
        ended: now,
        status: status.as_str().to_owned(),
        run_id,
        error: error.clone(),
    };
    let retry_at = match retry {
        Retry::At(at) => Some(at),
        Retry::Never => None,
    };
    let work = scheduler.state.catalog.work();
    if let Err(e) = schedule::finish_run(&*work, &*store, item, &execution, retry_at, now).await {
        return failed(scheduler, item, &e);
    }
    match status {
        WorkStatus::Failed => Outcome::Failed {
            error: error.unwrap_or_else(|| "the sync run failed".into()),
            retry,
        },
        _ => Outcome::Done(
            status,
            json!({"runId": run_id, "process": job.id, "status": status.as_str()}),
        ),
    }
}

/// Runs the sync of a process; the run's final status, its id, and its first error message.
async fn run_sync(
    scheduler: &Scheduler,
    store: Arc<dyn OrgStore>,
    job: &process::Process,
) -> Result<(WorkStatus, Uuid, Option<String>), SyncError> {
    let state = &scheduler.state;
    let conn = Connection::load(&*store).await?.ok_or_else(|| {
        SyncError::Invalid(format!("'{}' has no connection: connect it first", store.org()))
    })?;
    let server = crmsync_connectors::for_connection(store.org(), &conn, &state.config.secrets_key)?;
    let mut settings = conn.settings.clone();
    let wanted = job.entities();
    if !wanted.is_empty() {
        settings.entities.retain(|e| wanted.contains(e));
        if settings.entities.is_empty() {
            return Err(SyncError::Invalid(format!(
                "none of the entities of process '{}' ({}) is enabled for sync",
                job.name,
                wanted.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let log = SyncRunner::new(store, server, settings)
        .run(Trigger::Job, &NoProgress)
        .await?;
    state.metrics.run_finished(&log);
    let status = match log.status {
        RunStatus::Succeeded => WorkStatus::Succeeded,
        RunStatus::PartiallySucceeded => WorkStatus::PartiallySucceeded,
        _ => WorkStatus::Failed,
    };
    let error = log
        .messages
        .iter()
        .find(|m| m.level == crmsync_sync::Level::Error)
        .map(|m| m.text.clone());
    Ok((status, log.id, error))
}
