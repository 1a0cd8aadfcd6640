//! The Sync Job screen: the org's processes (name, frequency, draft or published, activated,
//! next run, last result); a new one; one process with its settings to edit, its actions
//! (publish, return to draft, activate, deactivate, run now, delete) and its history, paged,
//! each execution linking the log of its sync run.
//!
//! Every change goes through the functions behind the webservice's `processes` routes
//! (`crmsync_sync::process::schedule`, `syncapi::processes::run_now`), so the screen applies
//! the API's rules and keeps the schedule in the work queue the same way; a refusal is shown
//! next to the field it is about, or above the actions, and stores nothing. While a run is
//! due or under way the status panel reloads itself every 2 s (htmx) until the run is in the
//! history.

mod form;
mod view;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use crmsync_sync::SyncError;
use crmsync_sync::process::{self, ProcessInput, schedule};
use serde::Deserialize;
use uuid::Uuid;

use super::forms::FieldErrors;
use super::pages::{Chrome, Paged, Section, UiError, ok, render, see_other};
use super::session::Admin;
use crate::AppState;
use form::JobForm;
use view::{ExecutionRow, JobView};

const HISTORY_PER_PAGE: usize = 20;
/// Most executions read for the history (older ones stay stored).
const MAX_HISTORY: usize = 2000;

/// An entity the job may be limited to.
pub struct EntityChoice {
    pub name: String,
    pub label: String,
    /// Whether it is enabled for sync now (a job keeps entities disabled since).
    pub enabled: bool,
}

#[derive(Template)]
#[template(path = "ui/syncjobs.html")]
struct JobsPage {
    chrome: Chrome,
    jobs: Vec<JobView>,
}

#[derive(Template)]
#[template(path = "ui/syncjob_new.html")]
struct NewJobPage {
    chrome: Chrome,
    form: JobForm,
    errors: FieldErrors,
    choices: Vec<EntityChoice>,
}

#[derive(Template)]
#[template(path = "ui/syncjob.html")]
struct JobPage {
    chrome: Chrome,
    org: String,
    base: String,
    job: JobView,
    history: Paged<ExecutionRow>,
    form: JobForm,
    errors: FieldErrors,
    choices: Vec<EntityChoice>,
    /// Why an action (publish, activate, run now…) was refused.
    action_error: Option<String>,
}

/// The status panel alone, for its reloads while a run is due.
#[derive(Template)]
#[template(path = "ui/syncjob_status.html")]
struct StatusPanel {
    org: String,
    base: String,
    job: JobView,
    history: Paged<ExecutionRow>,
}

#[derive(Default, Deserialize)]
pub struct JobQuery {
    page: Option<usize>,
    notice: Option<String>,
}

fn base(admin: &Admin) -> String {
    format!("/admin/{}/sync/jobs", admin.caller.org)
}

fn job_id(id: &str) -> Result<Uuid, UiError> {
    Uuid::parse_str(id).map_err(|_| UiError::not_found(format!("There is no Sync Job '{id}'.")))
}

async fn load(admin: &Admin, id: Uuid) -> Result<process::Process, UiError> {
    match process::load(&*admin.caller.store, id).await {
        Err(SyncError::NotFound(_)) => Err(UiError::not_found(format!(
            "There is no Sync Job {id} in this organization (it may have been deleted)."
        ))),
        other => Ok(other?),
    }
}

/// The entities a job may be limited to: those enabled for sync, then any the form names
/// that are no longer enabled.
async fn choices(admin: &Admin, form: &JobForm) -> Result<Vec<EntityChoice>, UiError> {
    let enabled = crmsync_sync::Connection::load(&*admin.caller.store)
        .await?
        .map(|c| c.settings.entities)
        .unwrap_or_default();
    let metadata = admin.caller.store.entities().await?;
    let label = |name: &str| {
        metadata
            .iter()
            .find(|m| m.logical_name.as_str() == name)
            .map(super::entities::label)
            .unwrap_or_else(|| name.to_owned())
    };
    let mut choices: Vec<EntityChoice> = enabled
        .iter()
        .map(|e| EntityChoice {
            name: e.to_string(),
            label: label(e.as_str()),
            enabled: true,
        })
        .collect();
    for name in &form.entities {
        if !choices.iter().any(|c| &c.name == name) {
            choices.push(EntityChoice {
                name: name.clone(),
                label: label(name),
                enabled: false,
            });
        }
    }
    Ok(choices)
}

/// `GET /admin/{org}/sync/jobs`
pub async fn list(admin: Admin, Query(q): Query<JobQuery>) -> Result<Response, UiError> {
    let store = &*admin.caller.store;
    let now = Utc::now();
    let mut jobs = Vec::new();
    for p in process::list(store).await? {
        let last = process::history(store, p.id, 1).await?;
        jobs.push(JobView::of(&p, last.first(), now));
    }
    Ok(ok(&JobsPage {
        chrome: Chrome::org(&admin, Section::Jobs, "Sync Jobs").with_notice(q.notice.as_deref()),
        jobs,
    }))
}

async fn new_page(
    admin: &Admin,
    status: StatusCode,
    form: JobForm,
    errors: FieldErrors,
) -> Result<Response, UiError> {
    Ok(render(
        status,
        &NewJobPage {
            chrome: Chrome::org(admin, Section::Jobs, "New Sync Job"),
            choices: choices(admin, &form).await?,
            form,
            errors,
        },
    ))
}

/// `GET /admin/{org}/sync/jobs/new`
pub async fn new(admin: Admin) -> Result<Response, UiError> {
    new_page(&admin, StatusCode::OK, JobForm::default(), FieldErrors::default()).await
}

/// `POST /admin/{org}/sync/jobs`: creates a draft.
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let form = JobForm::from_fields(&fields);
    let mut errors = FieldErrors::default();
    let Some(input) = form.input(&mut errors) else {
        return new_page(&admin, StatusCode::UNPROCESSABLE_ENTITY, form, errors).await;
    };
    let work = state.catalog.work();
    match schedule::create(&*work, &*admin.caller.store, input, Utc::now()).await {
        Ok(created) => {
            tracing::info!(org = %admin.caller.org, process = %created.id, "process created in the admin UI");
            Ok(see_other(&format!(
                "{}/{}?notice=job-created",
                base(&admin),
                created.id
            )))
        }
        Err(SyncError::Invalid(m)) => {
            form.place(&mut errors, m);
            new_page(&admin, StatusCode::UNPROCESSABLE_ENTITY, form, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

/// What the page of one job shows besides the job itself.
struct Shown {
    form: Option<JobForm>,
    errors: FieldErrors,
    action_error: Option<String>,
    page: Option<usize>,
    notice: Option<String>,
}

async fn history(admin: &Admin, id: Uuid, page: Option<usize>) -> Result<Paged<ExecutionRow>, UiError> {
    let rows = process::history(&*admin.caller.store, id, MAX_HISTORY)
        .await?
        .iter()
        .map(ExecutionRow::of)
        .collect();
    Ok(Paged::of(
        rows,
        page.unwrap_or(1),
        HISTORY_PER_PAGE,
        String::new(),
    ))
}

async fn job_page(
    admin: &Admin,
    p: &process::Process,
    shown: Shown,
    status: StatusCode,
) -> Result<Response, UiError> {
    let history = history(admin, p.id, shown.page).await?;
    let last = process::history(&*admin.caller.store, p.id, 1).await?;
    let form = shown.form.unwrap_or_else(|| JobForm::of(p));
    let title = format!("Sync Job: {}", p.name);
    Ok(render(
        status,
        &JobPage {
            chrome: Chrome::org(admin, Section::Jobs, title).with_notice(shown.notice.as_deref()),
            org: admin.caller.org.to_string(),
            base: format!("{}/{}", base(admin), p.id),
            job: JobView::of(p, last.first(), Utc::now()),
            history,
            choices: choices(admin, &form).await?,
            form,
            errors: shown.errors,
            action_error: shown.action_error,
        },
    ))
}

/// `GET /admin/{org}/sync/jobs/{id}?page=`
pub async fn show(
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<JobQuery>,
) -> Result<Response, UiError> {
    let p = load(&admin, job_id(&id)?).await?;
    let shown = Shown {
        form: None,
        errors: FieldErrors::default(),
        action_error: None,
        page: q.page,
        notice: q.notice,
    };
    job_page(&admin, &p, shown, StatusCode::OK).await
}

/// `GET /admin/{org}/sync/jobs/{id}/status?page=`: the status panel alone.
pub async fn status(
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<JobQuery>,
) -> Result<Response, UiError> {
    let p = load(&admin, job_id(&id)?).await?;
    let last = process::history(&*admin.caller.store, p.id, 1).await?;
    Ok(ok(&StatusPanel {
        org: admin.caller.org.to_string(),
        base: format!("{}/{}", base(&admin), p.id),
        job: JobView::of(&p, last.first(), Utc::now()),
        history: history(&admin, p.id, q.page).await?,
    }))
}

/// `POST /admin/{org}/sync/jobs/{id}`: saves the name, frequency and entities.
pub async fn save(
    State(state): State<AppState>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let p = load(&admin, job_id(&id)?).await?;
    let form = JobForm::from_fields(&fields);
    let mut errors = FieldErrors::default();
    let refused = |form, errors| Shown {
        form: Some(form),
        errors,
        action_error: None,
        page: None,
        notice: None,
    };
    let Some(input) = form.input(&mut errors) else {
        return job_page(
            &admin,
            &p,
            refused(form, errors),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let work = state.catalog.work();
    match schedule::update(&*work, &*admin.caller.store, p.id, input, Utc::now()).await {
        Ok(_) => Ok(see_other(&format!("{}/{}?notice=job-saved", base(&admin), p.id))),
        Err(SyncError::Invalid(m)) => {
            form.place(&mut errors, m);
            job_page(
                &admin,
                &p,
                refused(form, errors),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/{org}/sync/jobs/{id}/action`: `action` is `publish`, `unpublish`,
/// `activate`, `deactivate`, `run` or `delete`.
pub async fn act(
    State(state): State<AppState>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let p = load(&admin, job_id(&id)?).await?;
    let action = fields
        .iter()
        .find(|(k, _)| k == "action")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let store = &*admin.caller.store;
    let work = state.catalog.work();
    let change = |published, activated| ProcessInput {
        published,
        activated,
        ..ProcessInput::default()
    };
    let (done, notice) = match action {
        "publish" => (
            update(&*work, store, &p, change(Some(true), None)).await,
            "job-published",
        ),
        "unpublish" => (
            update(&*work, store, &p, change(Some(false), None)).await,
            "job-unpublished",
        ),
        "activate" => (
            update(&*work, store, &p, change(None, Some(true))).await,
            "job-activated",
        ),
        "deactivate" => (
            update(&*work, store, &p, change(None, Some(false))).await,
            "job-deactivated",
        ),
        "run" => (
            crate::syncapi::processes::run_now(&state, store, p.id)
                .await
                .map(|_| ()),
            "job-run-queued",
        ),
        "delete" => {
            process::delete(store, p.id).await?;
            tracing::info!(org = %admin.caller.org, process = %p.id, "process deleted in the admin UI");
            return Ok(see_other(&format!("{}?notice=job-deleted", base(&admin))));
        }
        _ => (
            Err(SyncError::Invalid(
                "choose Publish, Return to draft, Activate, Deactivate, Run now or Delete".into(),
            )),
            "",
        ),
    };
    match done {
        Ok(()) => Ok(see_other(&format!("{}/{}?notice={notice}", base(&admin), p.id))),
        Err(SyncError::Invalid(m)) => {
            let shown = Shown {
                form: None,
                errors: FieldErrors::default(),
                action_error: Some(format!("Nothing was changed: {m}.")),
                page: None,
                notice: None,
            };
            job_page(&admin, &p, shown, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn update(
    work: &dyn crmsync_store::WorkStore,
    store: &dyn crmsync_store::OrgStore,
    p: &process::Process,
    input: ProcessInput,
) -> Result<(), SyncError> {
    schedule::update(work, store, p.id, input, Utc::now())
        .await
        .map(|_| ())
}
