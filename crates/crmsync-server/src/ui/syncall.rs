//! Sync All: queues a sync run of the enabled entities as a durable job, the same `sync` work
//! item as the webservice's `SyncAsync` (trigger `manual`), run by the scheduler of any
//! instance, never beside another run of the org; it shows the job's progress live from the
//! queue: the progress panel reloads itself every second (htmx polling) until the job ends,
//! then links the run's log.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use crmsync_store::{StoreError, WorkStatus};
use crmsync_sync::{RunLog, Trigger};
use serde::Deserialize;
use uuid::Uuid;

use super::pages::{Chrome, Section, UiError, ok, see_other};
use super::session::Admin;
use crate::AppState;
use crate::scheduler::webservice::sync_payload;
use crate::scheduler::webservice::{SYNC_KIND, job_json};
use crate::syncapi::enqueue;

#[derive(Template)]
#[template(path = "ui/syncall.html")]
struct SyncAllPage {
    chrome: Chrome,
    entities: Vec<String>,
    last: Option<super::logs::RunRow>,
}

/// `GET /admin/{org}/sync/run`
pub async fn show(admin: Admin) -> Result<Response, UiError> {
    let conn = super::pages::connection(&admin).await?;
    let last: Option<RunLog> = crmsync_sync::logs(&*admin.caller.store, 1)
        .await?
        .into_iter()
        .next();
    Ok(ok(&SyncAllPage {
        chrome: Chrome::org(&admin, Section::SyncAll, "Sync All"),
        entities: conn.settings.entities.iter().map(|e| e.to_string()).collect(),
        last: last.as_ref().map(super::logs::RunRow::of),
    }))
}

#[derive(Deserialize)]
pub struct StartForm {
    full: Option<String>,
}

/// `POST /admin/{org}/sync/run`
pub async fn start(
    State(state): State<AppState>,
    admin: Admin,
    Form(f): Form<StartForm>,
) -> Result<Response, UiError> {
    // Checks that the org is connected (the page says so otherwise).
    super::pages::connection(&admin).await?;
    let org = admin.caller.org.clone();
    let payload = sync_payload(&[], f.full.is_some(), Trigger::Manual);
    let id = enqueue(&state, &org, SYNC_KIND, payload, false).await?;
    tracing::info!(org = %org, job = %id, "Sync All started from the admin UI");
    Ok(see_other(&format!("/admin/{org}/sync/run/{id}")))
}

/// What the progress panel shows of a job.
pub struct JobView {
    pub running: bool,
    pub status: String,
    pub status_label: &'static str,
    pub entity: Option<String>,
    pub done: u64,
    pub total: u64,
    pub run_id: Option<String>,
    pub error: Option<String>,
    pub poll: String,
}

async fn job_view(state: &AppState, admin: &Admin, id: &str) -> Result<JobView, UiError> {
    let gone = || UiError::not_found("This sync job is not known. Its run, if it ran, is in the Logs.");
    let uuid = Uuid::parse_str(id).map_err(|_| gone())?;
    let item = match state.catalog.work().work_item(uuid).await {
        Ok(item) if item.org == admin.caller.org && item.kind == SYNC_KIND => item,
        Ok(_) | Err(StoreError::NotFound(_)) => return Err(gone()),
        Err(e) => return Err(e.into()),
    };
    let job = job_json(&item);
    let progress = &job["progress"];
    let number = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    Ok(JobView {
        running: !item.status.is_final(),
        status: item.status.as_str().to_owned(),
        status_label: match item.status {
            WorkStatus::Queued => "Queued",
            WorkStatus::Running => "Running",
            WorkStatus::Succeeded => "Succeeded",
            WorkStatus::PartiallySucceeded => "Partially succeeded (see the log)",
            WorkStatus::Failed => "Failed",
            WorkStatus::Skipped => "Skipped",
        },
        entity: progress["entity"].as_str().map(str::to_owned),
        done: number(&progress["done"]),
        total: number(&progress["total"]),
        run_id: job["runId"].as_str().map(str::to_owned),
        error: job["error"].as_str().map(str::to_owned),
        poll: format!("/admin/{}/sync/run/{id}/progress", admin.caller.org),
    })
}

#[derive(Template)]
#[template(path = "ui/job.html")]
struct JobPage {
    chrome: Chrome,
    job: JobView,
}

#[derive(Template)]
#[template(path = "ui/progress.html")]
struct ProgressPanel {
    org: String,
    job: JobView,
}

/// `GET /admin/{org}/sync/run/{job}`
pub async fn job(
    State(state): State<AppState>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let job = job_view(&state, &admin, &id).await?;
    Ok(ok(&JobPage {
        chrome: Chrome::org(&admin, Section::SyncAll, "Sync All"),
        job,
    }))
}

/// `GET /admin/{org}/sync/run/{job}/progress`: the progress panel alone, for polling.
pub async fn progress(
    State(state): State<AppState>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let job = job_view(&state, &admin, &id).await?;
    Ok(ok(&ProgressPanel {
        org: admin.caller.org.to_string(),
        job,
    }))
}
