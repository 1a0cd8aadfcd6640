//! Work a process runs itself rather than leaving it to a worker: the command line's
//! `connect`, `metadata update` and `sync`, and the admin UI's connects, which answer in the
//! request. The process starts the item under its own lease (`WorkStore::start`), which the
//! store refuses while another run holds the org; it then runs the item exactly as a claimed
//! one ([`Scheduler::run_started`]: lease renewed every third of its length, outcome recorded
//! in the same shapes), so `GET worker`, `GET jobs/{id}` and the logs show it like any other,
//! and a worker's claim skips the org meanwhile. If the process dies, its lease expires and a
//! worker takes the item over and runs it from the start: at least once, never twice at once.

use std::future::Future;
use std::sync::Arc;

use crmsync_store::{Lease, NewWork, StoreError, WorkItem};
use crmsync_sync::{Progress, SyncRunner};

use super::webservice::SharedProgress;
use super::{Outcome, Scheduler, SchedulerConfig, SystemClock};
use crate::AppState;

/// What a start does while the org is busy with another run.
pub enum WhenBusy<'a> {
    /// Tries again every `poll` until the org is free; `waiting` is told once why it waits
    /// (the store's message naming the run and the instance holding the org).
    Wait {
        poll: std::time::Duration,
        waiting: &'a (dyn Fn(&str) + Send + Sync),
    },
    /// Gives up at once with the store's `Conflict`.
    GiveUp,
}

/// What a process running an item itself adds to the run: a display of its progress (beside
/// the progress stored with the lease), and a sync's page and batch sizes (the defaults
/// otherwise, and always when a worker takes the item over).
#[derive(Clone, Default)]
pub struct Local {
    pub progress: Option<Arc<dyn Progress>>,
    pub page_size: Option<usize>,
    pub batch_rows: Option<usize>,
    pub upload_batch: Option<usize>,
}

impl Local {
    pub(crate) fn tune(&self, runner: &mut SyncRunner) {
        if let Some(n) = self.page_size {
            runner.page_size = n.max(1);
        }
        if let Some(n) = self.batch_rows {
            runner.batch_rows = n.max(1);
        }
        if let Some(n) = self.upload_batch {
            runner.upload_batch = n;
        }
    }
}

/// The lease owner of a command-line run: `cli-HOST-PID`, unique among running processes.
pub fn cli_instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("cli-{host}-{}", std::process::id())
}

impl Scheduler {
    /// Starts `work` as this instance's Running item, now or, with [`WhenBusy::Wait`], as soon
    /// as its org is free. Errors as `WorkStore::start`'s (`Conflict` while the org is busy,
    /// with [`WhenBusy::GiveUp`]).
    pub async fn start_here(&self, work: NewWork, when_busy: WhenBusy<'_>) -> Result<WorkItem, StoreError> {
        let mut told = false;
        loop {
            let now = self.clock.now();
            let lease = Lease {
                owner: &self.config.owner,
                now,
                until: now + self.config.lease,
            };
            let work = NewWork {
                due: now,
                ..work.clone()
            };
            match (self.state.catalog.work().start(work, &lease).await, &when_busy) {
                (Err(StoreError::Conflict(why)), WhenBusy::Wait { poll, waiting }) => {
                    if !told {
                        waiting(&why);
                        told = true;
                    }
                    tokio::time::sleep(*poll).await;
                }
                (started, _) => {
                    if let Ok(item) = &started {
                        tracing::info!(org = %item.org, work = %item.id, kind = %item.kind, owner = %self.config.owner, "work started here");
                    }
                    return started;
                }
            }
        }
    }

    /// Runs an item started by [`Scheduler::start_here`] in this process, keeping its lease,
    /// and records the outcome; returns the item as it ended. An error when the lease was lost
    /// (the process stalled longer than the lease and a worker took the item over) or the
    /// outcome could not be recorded.
    pub async fn run_started(&self, item: WorkItem, local: &Local) -> Result<WorkItem, StoreError> {
        self.execute_item(item, local).await
    }
}

impl Scheduler {
    /// Runs `work`, the caller's own code for an item started by [`Scheduler::start_here`],
    /// while keeping the item's lease; the caller then records the outcome with
    /// [`Scheduler::finish`]. For a caller that needs more of the work's result than the
    /// stored outcome keeps (the admin UI places a connect's error next to its field). An error,
    /// and `work` dropped, when the lease could not be renewed.
    pub async fn while_held<T>(
        &self,
        item: &WorkItem,
        work: impl Future<Output = T>,
    ) -> Result<T, StoreError> {
        self.hold(item, &SharedProgress::default(), work).await
    }

    /// Records the outcome of an item run with [`Scheduler::while_held`], as a worker records
    /// its items'; returns the item as it ended.
    pub async fn finish(&self, item: &WorkItem, outcome: Outcome) -> Result<WorkItem, StoreError> {
        self.record(item, outcome).await
    }

    /// A scheduler for the work this instance's requests run themselves: it names itself like
    /// the instance (`AppState::instance`) and takes the default lease.
    pub fn for_requests(state: &AppState) -> Scheduler {
        let config = SchedulerConfig {
            owner: state.instance.to_string(),
            ..SchedulerConfig::default()
        };
        Scheduler::new(state.clone(), Arc::new(SystemClock), config)
    }
}
