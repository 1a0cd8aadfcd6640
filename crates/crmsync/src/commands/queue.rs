//! How the sync commands (`connect`, `metadata update`, `sync`) take their turn in the work
//! queue, so that they never run beside a `crmsync serve` instance's run of the same
//! organization (or another command's): each starts a work item of the kind the webservice's
//! jobs use (`connect`, `metadata`, `sync`, same payloads) under a lease of its own, named
//! `cli-HOST-PID`, runs it here with the scheduler's code while renewing the lease, and records
//! the outcome in the same shapes, so `GET worker`, `GET jobs/{id}` and the logs show it like
//! any other run. While the organization is busy the command waits (saying once for what),
//! or with `--no-wait` fails at once. If the process dies, its lease expires and a
//! `crmsync serve` instance on the store takes the item over and runs it again.

use std::sync::Arc;

use anyhow::{Context, bail};
use crmsync_model::OrgName;
use crmsync_server::scheduler::webservice::failure;
use crmsync_server::scheduler::{
    Local, Scheduler, SchedulerConfig, SystemClock, WhenBusy, cli_instance_name,
};
use crmsync_server::{AppState, ServerConfig};
use crmsync_store::{Catalog, NewWork, StoreError, WorkItem, WorkStatus};
use serde_json::Value;

use crate::cli::QueueArgs;
use crate::keys::MasterKey;

/// Lease of a command's run: renewed every third of it, so a live command keeps its org.
const LEASE_SECS: u32 = 30;

/// How often a waiting command asks again whether the org is free.
const BUSY_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs one work item of an org in this process.
pub struct Turn {
    runner: Scheduler,
    no_wait: bool,
}

impl Turn {
    /// `allow_private_urls`: whether a connect run here accepts a server on a private address.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        key: &MasterKey,
        args: &QueueArgs,
        allow_private_urls: bool,
    ) -> Turn {
        let config = ServerConfig {
            secrets_key: key.derive(super::sync::SECRETS_PURPOSE),
            allow_private_urls,
            ..ServerConfig::default()
        };
        let scheduler = SchedulerConfig {
            owner: cli_instance_name(),
            lease: chrono::Duration::seconds(i64::from(args.lease_secs.unwrap_or(LEASE_SECS))),
            ..SchedulerConfig::default()
        };
        Turn {
            runner: Scheduler::new(AppState::new(catalog, config), Arc::new(SystemClock), scheduler),
            no_wait: args.no_wait,
        }
    }

    /// Starts an item of `kind` for `org` once the org is free (or fails at once with
    /// `--no-wait`), runs it here and returns it as it ended (see [`ended_ok`]).
    pub async fn run(
        &self,
        org: &OrgName,
        kind: &str,
        payload: Value,
        for_new_org: bool,
        local: &Local,
    ) -> anyhow::Result<WorkItem> {
        let work = NewWork {
            org: org.clone(),
            kind: kind.to_owned(),
            payload,
            due: chrono::Utc::now(),
            for_new_org,
        };
        let waiting = |why: &str| println!("Waiting: {why}; this {kind} starts when it ends.");
        let when_busy = if self.no_wait {
            WhenBusy::GiveUp
        } else {
            WhenBusy::Wait {
                poll: BUSY_POLL,
                waiting: &waiting,
            }
        };
        let item = match self.runner.start_here(work, when_busy).await {
            Ok(item) => item,
            Err(StoreError::Conflict(why)) => bail!("{why}; nothing was started (--no-wait)"),
            Err(e) => return Err(e).with_context(|| format!("cannot start the {kind} of '{org}'")),
        };
        let id = item.id;
        self.runner
            .run_started(item, local)
            .await
            .with_context(|| format!("the {kind} of '{org}' (work {id}) did not end here"))
    }
}

/// The result of an item that ended well, or its failure as an error.
pub fn ended_ok(item: &WorkItem) -> anyhow::Result<&Value> {
    if item.status == WorkStatus::Failed {
        let why = failure(item).unwrap_or_else(|| format!("the {} failed", item.kind));
        bail!("{why}");
    }
    Ok(item.result.as_ref().unwrap_or(&Value::Null))
}
