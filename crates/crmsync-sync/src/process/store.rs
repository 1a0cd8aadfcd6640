//! Processes and their history as state entries of the org's store: `sync.process.{id}` holds
//! a process as JSON, `sync.process-history.{id}.{started, 20-digit micros}.{work}` one
//! execution, so a prefix read lists a process's executions oldest first.

use crmsync_store::{OrgStore, WriteSet};
use uuid::Uuid;

use super::{Execution, Process};
use crate::SyncError;

const PROCESS_PREFIX: &str = "sync.process.";
const HISTORY_PREFIX: &str = "sync.process-history.";

fn process_key(id: Uuid) -> String {
    format!("{PROCESS_PREFIX}{id}")
}

fn history_prefix(id: Uuid) -> String {
    format!("{HISTORY_PREFIX}{id}.")
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, SyncError> {
    serde_json::from_str(json)
        .map_err(|e| SyncError::Invalid(format!("the stored {what} is unreadable: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, SyncError> {
    serde_json::to_string(value).map_err(|e| SyncError::Invalid(e.to_string()))
}

/// The org's processes, by name.
pub async fn list(store: &dyn OrgStore) -> Result<Vec<Process>, SyncError> {
    let mut processes = store
        .states(PROCESS_PREFIX)
        .await?
        .iter()
        .map(|(_, json)| decode::<Process>("process", json))
        .collect::<Result<Vec<_>, _>>()?;
    processes.sort_by_key(|p| (p.name.to_lowercase(), p.id));
    Ok(processes)
}

/// `NotFound` if the org has no such process.
pub async fn load(store: &dyn OrgStore, id: Uuid) -> Result<Process, SyncError> {
    match store.state(&process_key(id)).await? {
        Some(json) => decode("process", &json),
        None => Err(SyncError::NotFound(format!("process {id} of '{}'", store.org()))),
    }
}

pub async fn save(store: &dyn OrgStore, process: &Process) -> Result<(), SyncError> {
    store
        .write(WriteSet::new().set_state(process_key(process.id), Some(encode(process)?)))
        .await?;
    Ok(())
}

/// Removes a process with its history; `NotFound` if there is no such process.
pub async fn delete(store: &dyn OrgStore, id: Uuid) -> Result<(), SyncError> {
    load(store, id).await?;
    let mut set = WriteSet::new().set_state(process_key(id), None);
    for (key, _) in store.states(&history_prefix(id)).await? {
        set = set.set_state(key, None);
    }
    store.write(set).await?;
    Ok(())
}

/// Records an execution; with `process` given, saves it in the same transaction.
pub async fn record_execution(
    store: &dyn OrgStore,
    execution: &Execution,
    process: Option<&Process>,
) -> Result<(), SyncError> {
    let micros = execution.started.timestamp_micros().max(0);
    let key = format!(
        "{}{micros:020}.{}",
        history_prefix(execution.process),
        execution.work
    );
    let mut set = WriteSet::new().set_state(key, Some(encode(execution)?));
    if let Some(p) = process {
        set = set.set_state(process_key(p.id), Some(encode(p)?));
    }
    store.write(set).await?;
    Ok(())
}

/// The executions of a process, newest first, at most `limit`.
pub async fn history(store: &dyn OrgStore, id: Uuid, limit: usize) -> Result<Vec<Execution>, SyncError> {
    let entries = store.states(&history_prefix(id)).await?;
    entries
        .iter()
        .rev()
        .take(limit)
        .map(|(_, json)| decode("process execution", json))
        .collect()
}
