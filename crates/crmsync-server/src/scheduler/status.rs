//! The worker's visible status: what it runs now, what it finished, its last error. Kept in
//! memory per instance (the queue itself is in the catalog, counted on demand).

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use crmsync_store::{WorkItem, WorkStatus};
use serde::Serialize;
use uuid::Uuid;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningWork {
    pub id: Uuid,
    pub org: String,
    pub kind: String,
    pub attempt: u32,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub at: DateTime<Utc>,
    pub message: String,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub running: Vec<RunningWork>,
    /// Items this instance ended, by final status.
    pub finished: BTreeMap<String, u64>,
    /// Failed attempts queued again for a retry.
    pub retries: u64,
    pub errors: u64,
    pub last_error: Option<LastError>,
}

#[derive(Default)]
pub struct WorkerStatus {
    inner: Mutex<StatusReport>,
}

/// Removes an item from the running list when its execution ends, however it ends.
pub struct RunningGuard<'a> {
    status: &'a WorkerStatus,
    id: Uuid,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.status.lock().running.retain(|r| r.id != self.id);
    }
}

impl WorkerStatus {
    fn lock(&self) -> std::sync::MutexGuard<'_, StatusReport> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn started(&self, item: &WorkItem) -> RunningGuard<'_> {
        self.lock().running.push(RunningWork {
            id: item.id,
            org: item.org.to_string(),
            kind: item.kind.clone(),
            attempt: item.attempts,
        });
        RunningGuard {
            status: self,
            id: item.id,
        }
    }

    pub fn finished(&self, status: WorkStatus) {
        *self
            .lock()
            .finished
            .entry(status.as_str().to_owned())
            .or_default() += 1;
    }

    pub fn retried(&self) {
        self.lock().retries += 1;
    }

    pub fn error(&self, at: DateTime<Utc>, message: String) {
        tracing::warn!(%message, "scheduler error");
        let mut inner = self.lock();
        inner.errors += 1;
        inner.last_error = Some(LastError { at, message });
    }

    pub fn report(&self) -> StatusReport {
        self.lock().clone()
    }
}
