//! A sync run (SPEC §6.1): the upload of Pending offline transactions, a metadata check, then
//! each enabled entity downloaded in dependency order (lookup parents first), with a log of
//! everything that happened. One run per client
//! org at a time within this process (a second one is refused, not queued).
//!
//! An entity that fails does not stop the others (the run ends `PartiallySucceeded`); its
//! committed batches stay, and the next run resumes from them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use crmsync_model::EntityName;
use crmsync_store::{OrgStore, StoreResult, WriteSet};

use crate::download::EntitySync;
use crate::log::{EntityFigures, LOG_PREFIX, Level, RunLog, RunStatus, Trigger};
use crate::metadata::diff;
use crate::transactions::{self, TxStatus};
use crate::upload::Upload;
use crate::{Connector, SyncError, SyncSettings, parents_first};

/// Progress of a run, for progress bars and job status.
pub trait Progress: Send + Sync {
    fn entity_started(&self, entity: &str, index: usize, count: usize);
    fn entity_done(&self, figures: &EntityFigures);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn entity_started(&self, _: &str, _: usize, _: usize) {}
    fn entity_done(&self, _: &EntityFigures) {}
}

pub struct SyncRunner {
    pub store: Arc<dyn OrgStore>,
    pub connector: Arc<dyn Connector>,
    pub settings: SyncSettings,
    /// Records per server page.
    pub page_size: usize,
    /// Records per client transaction.
    pub batch_rows: usize,
    /// Offline transactions per `$batch` of the upload (at most 1,000).
    pub upload_batch: usize,
    /// Reconcile every entity by comparing id sets instead of following change tokens:
    /// records the server no longer has are removed, missing or changed ones fetched.
    pub full: bool,
}

fn running() -> &'static Mutex<HashMap<String, ()>> {
    static RUNNING: OnceLock<Mutex<HashMap<String, ()>>> = OnceLock::new();
    RUNNING.get_or_init(Default::default)
}

/// Removes the org from the running set when the run ends, however it ends.
struct RunGuard(String);

impl Drop for RunGuard {
    fn drop(&mut self) {
        running().lock().expect("run registry").remove(&self.0);
    }
}

impl SyncRunner {
    pub fn new(store: Arc<dyn OrgStore>, connector: Arc<dyn Connector>, settings: SyncSettings) -> Self {
        Self {
            store,
            connector,
            settings,
            page_size: 5000,
            batch_rows: crmsync_store::BULK_BATCH_ROWS,
            upload_batch: crate::upload::MAX_BATCH,
            full: false,
        }
    }

    /// Runs a sync and stores its log. Fails without a log only if another run of the same
    /// org is in progress or the log cannot be stored.
    pub async fn run(&self, trigger: Trigger, progress: &dyn Progress) -> Result<RunLog, SyncError> {
        // The store handle identifies the org within this process (catalogs hand out one
        // handle per org); exclusion across processes is the scheduler's lease.
        let org = format!("{}@{:p}", self.store.org(), Arc::as_ptr(&self.store));
        if running()
            .lock()
            .expect("run registry")
            .insert(org.clone(), ())
            .is_some()
        {
            return Err(SyncError::Invalid(format!(
                "a sync of {} is already running",
                self.store.org()
            )));
        }
        let _guard = RunGuard(org);
        let mut log = RunLog::start(trigger);
        let uploaded = self.upload(&mut log).await;
        if let Err(e) = self.download(&mut log, progress).await {
            log.message(Level::Error, None, None, e.to_string());
            log.status = RunStatus::Failed;
        }
        log.ended = Some(Utc::now());
        if log.status == RunStatus::Running {
            let failed = log.entities.iter().filter(|e| e.errors > 0).count();
            let all_failed = if log.entities.is_empty() {
                !uploaded
            } else {
                failed == log.entities.len()
            };
            log.status = if all_failed {
                RunStatus::Failed
            } else if failed == 0 && uploaded && log.upload.errors == 0 {
                RunStatus::Succeeded
            } else {
                RunStatus::PartiallySucceeded
            };
        }
        save_log(&*self.store, &log).await?;
        tracing::info!(org = %self.store.org(), run = %log.id, status = ?log.status, "sync run finished");
        Ok(log)
    }

    /// The upload phase; false when it stopped early (its error is in the log).
    async fn upload(&self, log: &mut RunLog) -> bool {
        let mut upload = Upload::new(&*self.store, &*self.connector, self.settings.conflict_policy);
        upload.batch = self.upload_batch.clamp(1, crate::upload::MAX_BATCH);
        match upload.run(log).await {
            Ok(figures) => {
                log.upload = figures;
                true
            }
            Err(e) => {
                log.message(Level::Error, None, None, format!("upload stopped: {e}"));
                if let Ok(page) = transactions::list(&*self.store, Some(TxStatus::Pending), 1, 0).await {
                    log.upload.pending = page.total;
                }
                false
            }
        }
    }

    async fn download(&self, log: &mut RunLog, progress: &dyn Progress) -> Result<(), SyncError> {
        let server = self.connector.entities().await?;
        let client = self.store.entities().await?;
        self.settings.validate(&server)?;
        let pending = diff(&server, &client, Some(&self.settings.entities));
        if !pending.changes.is_empty() {
            log.message(
                Level::Warning,
                None,
                None,
                format!(
                    "the server's metadata has {} change(s) the client lacks; run a metadata update",
                    pending.changes.len()
                ),
            );
        }
        let order = parents_first(&self.settings.entities, &server);
        for (index, entity) in order.iter().enumerate() {
            progress.entity_started(entity.as_str(), index, order.len());
            let figures = match self.download_entity(entity, &server, &client, log).await {
                Ok(f) => f,
                Err(e) if matches!(e, SyncError::Unauthorized(_)) => return Err(e),
                Err(e) => {
                    log.message(Level::Error, Some(entity.as_str()), None, e.to_string());
                    EntityFigures {
                        entity: entity.to_string(),
                        errors: 1,
                        ..Default::default()
                    }
                }
            };
            progress.entity_done(&figures);
            log.entities.push(figures);
        }
        Ok(())
    }

    async fn download_entity(
        &self,
        entity: &EntityName,
        server: &[crmsync_model::EntityMetadata],
        client: &[crmsync_model::EntityMetadata],
        log: &mut RunLog,
    ) -> Result<EntityFigures, SyncError> {
        let find =
            |all: &[crmsync_model::EntityMetadata]| all.iter().find(|e| &e.logical_name == entity).cloned();
        let server_meta =
            find(server).ok_or_else(|| SyncError::Invalid(format!("the server has no entity '{entity}'")))?;
        let client_meta = find(client).ok_or_else(|| {
            SyncError::Invalid(format!(
                "the client has no entity '{entity}': run a metadata update first"
            ))
        })?;
        let filter = self.settings.filter(entity, server)?;
        let filter_text = self.settings.filters.get(entity).cloned().unwrap_or_default();
        let protected = transactions::protected(&*self.store, entity).await?;
        let sync = EntitySync {
            store: &*self.store,
            connector: &*self.connector,
            server: &server_meta,
            client: &client_meta,
            filter: filter.as_ref(),
            filter_text: &filter_text,
            page_size: self.page_size,
            batch_rows: self.batch_rows,
            full: self.full,
            protected: &protected,
        };
        sync.run(log).await
    }
}

/// State entry holding when the last run that succeeded ended (RFC 3339), for the sync lag.
pub const LAST_SUCCESS_KEY: &str = "sync.last-success";

async fn save_log(store: &dyn OrgStore, log: &RunLog) -> StoreResult<()> {
    let json = serde_json::to_string(log).map_err(|e| crmsync_store::StoreError::database(e.to_string()))?;
    let mut set = WriteSet::new().set_state(log.key(), Some(json));
    if let (RunStatus::Succeeded, Some(ended)) = (log.status, log.ended) {
        set = set.set_state(LAST_SUCCESS_KEY, Some(ended.to_rfc3339()));
    }
    store.write(set).await?;
    Ok(())
}

/// When the last run of the org that succeeded ended (`None`: none since this was recorded).
pub async fn last_success(store: &dyn OrgStore) -> StoreResult<Option<DateTime<Utc>>> {
    Ok(store
        .state(LAST_SUCCESS_KEY)
        .await?
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc)))
}

/// The stored run logs of an org, newest first.
pub async fn logs(store: &dyn OrgStore, limit: usize) -> StoreResult<Vec<RunLog>> {
    let mut entries = store.states(LOG_PREFIX).await?;
    entries.reverse();
    Ok(entries
        .into_iter()
        .take(limit)
        .filter_map(|(_, json)| serde_json::from_str(&json).ok())
        .collect())
}
