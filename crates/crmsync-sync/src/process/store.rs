//! Processes and their history as state entries of the org's store: `sync.process.{id}` holds
//! a process as JSON, `sync.process-history.{id}.{started, 20-digit micros}.{work}` one
//! execution, so a prefix read lists a process's executions oldest first.
//!
//! Changes are read-modify-writes ([`modify`]): the write expects the entry to be exactly as
//! read, and on a mismatch (someone changed or deleted the process meanwhile: a `PUT`, the
//! scheduler of another instance finishing a run) the change is made again on a fresh read. So
//! a concurrent change is never overwritten with older values, and a deleted process never
//! comes back.

use std::future::Future;

use crmsync_store::{OrgStore, StoreError, WriteSet};
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

/// Reads made again before [`modify`] gives up with the `Conflict`.
const MODIFY_ATTEMPTS: usize = 8;

/// Reads process `id` and hands it to `change`, then saves what `change` returns together with
/// the writes it returns, provided the stored process is still the one read; otherwise reads
/// again and calls `change` again. `NotFound` if the process does not exist (or was deleted
/// before the change could be saved).
pub async fn modify<T, F, Fut>(
    store: &dyn OrgStore,
    id: Uuid,
    mut change: F,
) -> Result<(Process, T), SyncError>
where
    F: FnMut(Process) -> Fut,
    Fut: Future<Output = Result<(Process, WriteSet, T), SyncError>>,
{
    let key = process_key(id);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let raw = store
            .state(&key)
            .await?
            .ok_or_else(|| SyncError::NotFound(format!("process {id} of '{}'", store.org())))?;
        let (process, writes, out) = change(decode("process", &raw)?).await?;
        let set = writes
            .expect_state(key.clone(), Some(raw))
            .set_state(key.clone(), Some(encode(&process)?));
        match store.write(set).await {
            Ok(_) => return Ok((process, out)),
            Err(StoreError::Conflict(_)) if attempt < MODIFY_ATTEMPTS => {
                tracing::debug!(org = %store.org(), process = %id, "process changed meanwhile; applying the change again");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Saves a new process; `Conflict` if one with its id exists.
pub async fn save_new(store: &dyn OrgStore, process: &Process) -> Result<(), SyncError> {
    store
        .write(
            WriteSet::new()
                .expect_state(process_key(process.id), None)
                .set_state(process_key(process.id), Some(encode(process)?)),
        )
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

/// The write of an execution into the history (with the process's change, see [`modify`]).
pub fn execution_write(execution: &Execution) -> Result<WriteSet, SyncError> {
    let micros = execution.started.timestamp_micros().max(0);
    let key = format!(
        "{}{micros:020}.{}",
        history_prefix(execution.process),
        execution.work
    );
    Ok(WriteSet::new().set_state(key, Some(encode(execution)?)))
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
