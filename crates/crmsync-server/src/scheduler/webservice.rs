//! The sync webservice's and the admin UI's asynchronous jobs, run from the durable queue so
//! that a job survives a restart of the instance that accepted it (and may run on another
//! instance), and never runs beside another job of the same org. The command line's
//! `connect`, `metadata update` and `sync`, and the admin UI's connects, start items of the same
//! kinds and payloads (built here) and run them in their own process (`here.rs`), so a worker
//! can take one over:
//! - `connect` (`ConnectAsync`): payload `{"request": SealedConnectRequest, "open": bool}`;
//!   creates or replaces the connection, registering the org first when it does not exist
//!   (`crmsync_sync::service::connect`). The request's secrets are sealed with the master key,
//!   never stored in clear. `open`: the job may be read by whoever holds its id (a
//!   registrant has no account until the job succeeds);
//! - `sync` (`SyncAsync`, and Sync All of the admin UI): payload
//!   `{"entities":[…],"full":bool,"trigger":"webservice"|"manual"}`; a sync run limited to
//!   those entities (they must still be enabled);
//! - `metadata` (`UpdateMetadataAsync`): payload `{"preview":bool}`.
//!
//! A job someone asked for now is not retried behind their back: a failure ends it `Failed`
//! with the reason. Progress is kept in the item's result while it runs (written with the
//! lease renewals, at most a second late).

use std::sync::{Arc, Mutex};

use crmsync_model::EntityName;
use crmsync_model::OrgName;
use crmsync_store::{Retry, WorkItem, WorkStatus};
use crmsync_sync::metadata::MetadataDiff;
use crmsync_sync::service::{ConnectRequest, SealedConnectRequest, connect as connect_org, update_metadata};
use crmsync_sync::{Connection, EntityFigures, Progress, RunStatus, SyncError, SyncRunner, Trigger};
use serde_json::{Value, json};

use super::{Local, Outcome, Scheduler};

/// The work kind of `ConnectAsync`.
pub const CONNECT_KIND: &str = "connect";
/// The work kind of `SyncAsync` and of the admin UI's Sync All.
pub const SYNC_KIND: &str = "sync";
/// The work kind of `UpdateMetadataAsync`.
pub const METADATA_KIND: &str = "metadata";

/// The payload of a `connect` item: the request with its secrets sealed with `secrets_key`,
/// and `open` for a registration (a registrant has no account until the job succeeds: the job
/// id is their capability).
pub fn connect_payload(secrets_key: &[u8; 32], request: &ConnectRequest) -> Value {
    let sealed = SealedConnectRequest::seal(secrets_key, request);
    json!({"request": sealed, "open": request.registration.is_some()})
}

/// The payload of a `sync` item: Sync All of `entities` (empty: every enabled one).
pub fn sync_payload(entities: &[EntityName], full: bool, trigger: Trigger) -> Value {
    let entities: Vec<&str> = entities.iter().map(|e| e.as_str()).collect();
    let trigger = match trigger {
        Trigger::Manual => "manual",
        _ => "webservice",
    };
    json!({"entities": entities, "full": full, "trigger": trigger})
}

/// The payload of a `metadata` item.
pub fn metadata_payload(preview: bool) -> Value {
    json!({"preview": preview})
}

fn failed(e: &SyncError) -> Outcome {
    Outcome::Failed {
        error: e.to_string(),
        retry: Retry::Never,
    }
}

/// The latest progress of a run, shared with the lease renewal that stores it; `changes`
/// counts updates, so the renewal writes only what it has not written yet. A process running
/// the item itself may show the progress too (`beside`).
#[derive(Default)]
pub(crate) struct SharedProgress(Mutex<(Option<Value>, u64)>, Option<Arc<dyn Progress>>);

impl SharedProgress {
    /// Progress also reported to `display`.
    pub(crate) fn beside(display: Option<Arc<dyn Progress>>) -> SharedProgress {
        SharedProgress(Mutex::default(), display)
    }

    pub(crate) fn get(&self) -> Option<Value> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// The progress and how many updates it has had.
    pub(crate) fn versioned(&self) -> (Option<Value>, u64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, f: impl FnOnce(&mut Value)) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let value = guard.0.get_or_insert_with(
            || json!({"progress": {"phase": "download", "entity": null, "done": 0, "total": 0}}),
        );
        f(&mut value["progress"]);
        guard.1 += 1;
    }
}

impl Progress for SharedProgress {
    fn entity_started(&self, entity: &str, index: usize, count: usize) {
        self.set(|p| {
            p["entity"] = json!(entity);
            p["done"] = json!(index);
            p["total"] = json!(count);
        });
        if let Some(display) = &self.1 {
            display.entity_started(entity, index, count);
        }
    }

    fn entity_done(&self, figures: &EntityFigures) {
        self.set(|p| p["done"] = json!(p["done"].as_u64().unwrap_or(0) + 1));
        if let Some(display) = &self.1 {
            display.entity_done(figures);
        }
    }
}

async fn connection(
    scheduler: &Scheduler,
    item: &WorkItem,
) -> Result<
    (
        Arc<dyn crmsync_store::OrgStore>,
        Connection,
        Arc<dyn crmsync_sync::Connector>,
    ),
    SyncError,
> {
    let store = scheduler.state.catalog.open_org(&item.org).await?;
    let conn = Connection::load(&*store).await?.ok_or_else(|| {
        SyncError::Invalid(format!(
            "'{}' has no connection: use ConnectAsync first",
            item.org
        ))
    })?;
    let server = crmsync_connectors::for_connection(&item.org, &conn, &scheduler.state.config.secrets_key)?;
    Ok((store, conn, server))
}

pub(super) async fn sync(
    scheduler: &Scheduler,
    item: &WorkItem,
    progress: &SharedProgress,
    local: &Local,
) -> Outcome {
    let (store, conn, server) = match connection(scheduler, item).await {
        Ok(c) => c,
        Err(e) => return failed(&e),
    };
    let mut settings = conn.settings.clone();
    let wanted: Vec<EntityName> = item.payload["entities"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str())
                .filter_map(|e| EntityName::parse(e).ok())
                .collect()
        })
        .unwrap_or_default();
    if !wanted.is_empty() {
        if let Some(gone) = wanted.iter().find(|e| !settings.entities.contains(e)) {
            return failed(&SyncError::Invalid(format!(
                "entity '{gone}' is no longer enabled for sync"
            )));
        }
        settings.entities = wanted;
    }
    let trigger = match item.payload["trigger"].as_str() {
        Some("manual") => Trigger::Manual,
        _ => Trigger::Webservice,
    };
    let mut runner = SyncRunner::new(store, server, settings);
    runner.full = item.payload["full"].as_bool().unwrap_or(false);
    local.tune(&mut runner);
    let log = match runner.run(trigger, progress).await {
        Ok(log) => log,
        Err(e) => return failed(&e),
    };
    scheduler.state.metrics.run_finished(&log);
    let status = match log.status {
        RunStatus::Succeeded => WorkStatus::Succeeded,
        RunStatus::PartiallySucceeded => WorkStatus::PartiallySucceeded,
        _ => WorkStatus::Failed,
    };
    let progress = progress.get().and_then(|p| p.get("progress").cloned());
    let mut result =
        json!({"runId": log.id, "status": log.status, "entities": log.entities, "progress": progress});
    if status == WorkStatus::Failed {
        // The run's first error says why: the job's `error` and the worker's last error.
        let error = log
            .messages
            .iter()
            .find(|m| m.level == crmsync_sync::Level::Error)
            .map_or_else(|| "the sync run failed".to_owned(), |m| m.text.clone());
        result["error"] = json!(error);
    }
    Outcome::Done(status, result)
}

pub(super) async fn connect(scheduler: &Scheduler, item: &WorkItem) -> Outcome {
    let state = &scheduler.state;
    let key = state.config.secrets_key;
    let request = serde_json::from_value::<SealedConnectRequest>(item.payload["request"].clone())
        .map_err(|e| SyncError::Invalid(format!("work {} holds no readable connect request: {e}", item.id)))
        .and_then(|sealed| sealed.open(&key, &item.org, state.config.allow_private_urls));
    let request = match request {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let registers = request.registration.is_some();
    let factory = move |org: &OrgName, conn: &Connection| crmsync_connectors::for_connection(org, conn, &key);
    let connected = connect_org(&*state.catalog, &key, request, &factory).await;
    if connected.is_ok() {
        tracing::info!(org = %item.org, registered = registers, "connected");
    }
    connect_outcome(&connected)
}

/// What a connect came to, as a `connect` item records it.
pub fn connect_outcome(connected: &Result<(Connection, MetadataDiff), SyncError>) -> Outcome {
    match connected {
        Ok((conn, update)) => {
            let entities: Vec<&str> = conn.settings.entities.iter().map(|e| e.as_str()).collect();
            Outcome::Done(
                WorkStatus::Succeeded,
                json!({"entities": entities, "metadataChanges": update.describe(), "notes": update.notes}),
            )
        }
        Err(e) => failed(e),
    }
}

pub(super) async fn metadata(scheduler: &Scheduler, item: &WorkItem) -> Outcome {
    let (store, conn, server) = match connection(scheduler, item).await {
        Ok(c) => c,
        Err(e) => return failed(&e),
    };
    let preview = item.payload["preview"].as_bool().unwrap_or(false);
    match update_metadata(&*store, &conn, &*server, preview).await {
        Ok(update) => Outcome::Done(
            WorkStatus::Succeeded,
            json!({"preview": preview, "changes": update.describe(), "notes": update.notes}),
        ),
        Err(e) => failed(&e),
    }
}

/// Why an item failed: the error of its last failed attempt, or of the run it ended with.
pub fn failure(item: &WorkItem) -> Option<String> {
    item.last_error.clone().or_else(|| {
        let result = item.result.as_ref()?;
        (item.status == WorkStatus::Failed).then(|| result["error"].as_str().map(str::to_owned))?
    })
}

/// A durable job in the shape of `GET jobs/{id}` (SPEC §5.3).
pub fn job_json(item: &WorkItem) -> Value {
    let mut result = item.result.clone().unwrap_or(Value::Null);
    let running = !item.status.is_final();
    let progress = result
        .as_object_mut()
        .and_then(|r| r.remove("progress"))
        .filter(|p| !p.is_null())
        .unwrap_or_else(|| {
            let phase = match item.status {
                WorkStatus::Queued => "queued",
                WorkStatus::Running => "running",
                _ => "done",
            };
            json!({"phase": phase, "entity": null, "done": 0, "total": 0})
        });
    json!({
        "id": item.id,
        "kind": item.kind,
        "status": item.status.as_str(),
        "progress": progress,
        "runId": result.get("runId").cloned().unwrap_or(Value::Null),
        "result": if running { Value::Null } else { result },
        "error": if item.status == WorkStatus::Failed { json!(failure(item)) } else { Value::Null },
        "created": item.created,
        "ended": if running { Value::Null } else { json!(item.updated) },
    })
}
