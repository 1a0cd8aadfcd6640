//! Sync All: starts a sync run of the enabled entities as a job of the sync webservice
//! (`syncapi::start_sync`, trigger `manual`) and shows its progress live: the progress panel
//! reloads itself every second (htmx polling) until the job ends, then links the run's log.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use crmsync_sync::{RunLog, Trigger};
use serde::Deserialize;
use uuid::Uuid;

use super::pages::{Chrome, Section, UiError, ok, see_other};
use super::session::Admin;
use crate::AppState;
use crate::syncapi::{JobStatus, start_sync};

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
    let conn = super::pages::connection(&admin).await?;
    let org = admin.caller.org.clone();
    let settings = conn.settings.clone();
    let id = start_sync(
        &state,
        admin.caller,
        &conn,
        settings,
        f.full.is_some(),
        Trigger::Manual,
    )?;
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

fn job_view(state: &AppState, admin: &Admin, id: &str) -> Result<JobView, UiError> {
    let gone = || {
        UiError::not_found(
            "This sync job is not known here (the server may have restarted since). Its run, if it ran, is in the Logs.",
        )
    };
    let uuid = Uuid::parse_str(id).map_err(|_| gone())?;
    let job = state.jobs.get(uuid, admin.caller.org.as_str()).ok_or_else(gone)?;
    let running = matches!(job.status, JobStatus::Queued | JobStatus::Running);
    Ok(JobView {
        running,
        status: format!("{:?}", job.status),
        status_label: match job.status {
            JobStatus::Queued => "Queued",
            JobStatus::Running => "Running",
            JobStatus::Succeeded => "Succeeded",
            JobStatus::PartiallySucceeded => "Partially succeeded (see the log)",
            JobStatus::Failed => "Failed",
        },
        entity: job.progress.entity.clone(),
        done: job.progress.done,
        total: job.progress.total,
        run_id: job.run_id.map(|r| r.to_string()),
        error: job.error.clone(),
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
    let job = job_view(&state, &admin, &id)?;
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
    let job = job_view(&state, &admin, &id)?;
    Ok(ok(&ProgressPanel {
        org: admin.caller.org.to_string(),
        job,
    }))
}
