//! Processes (Sync Jobs) through the webservice: list, create, read, update, delete, and the
//! history of a process's executions, and a run queued now. Scheduling follows from the stored
//! process (see `crmsync_sync::process`); the scheduler worker runs what is due.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use crmsync_sync::process::{self, ProcessInput, schedule};
use serde_json::json;
use uuid::Uuid;

use super::admin;
use crate::{ApiError, AppState};

/// Executions returned by `history`.
const HISTORY_LIMIT: usize = 500;

fn process_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::bad_request(format!("'{id}' is not a process id")))
}

fn input(body: &Bytes) -> Result<ProcessInput, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid process: {e}")))
}

pub(super) async fn list(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let processes = process::list(&*caller.store).await?;
    Ok(Json(json!({"value": processes})).into_response())
}

pub(super) async fn create(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let created = schedule::create(&*state.catalog.work(), &*caller.store, input(&body)?, Utc::now()).await?;
    tracing::info!(org = %caller.org, process = %created.id, "process created");
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub(super) async fn get(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    Ok(Json(process::load(&*caller.store, process_id(&id)?).await?).into_response())
}

pub(super) async fn update(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let id = process_id(&id)?;
    let updated = schedule::update(
        &*state.catalog.work(),
        &*caller.store,
        id,
        input(&body)?,
        Utc::now(),
    )
    .await?;
    Ok(Json(updated).into_response())
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    process::delete(&*caller.store, process_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST processes/{id}/run`: queues a run of an active process now; `202` with the process
/// (its `nextRun` is now). The run appears in the process's history when it ends.
pub(super) async fn run(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let queued = run_now(&state, &*caller.store, process_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)).into_response())
}

/// Queues a run of process `id` now and wakes this instance's scheduler (the API's and the
/// admin UI's Run now).
pub(crate) async fn run_now(
    state: &AppState,
    store: &dyn crmsync_store::OrgStore,
    id: Uuid,
) -> Result<process::Process, crmsync_sync::SyncError> {
    let queued = schedule::run_now(&*state.catalog.work(), store, id, Utc::now()).await?;
    state.work_added.notify_one();
    tracing::info!(org = %store.org(), process = %id, "process run queued now");
    Ok(queued)
}

pub(super) async fn history(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let id = process_id(&id)?;
    process::load(&*caller.store, id).await?;
    let executions = process::history(&*caller.store, id, HISTORY_LIMIT).await?;
    Ok(Json(json!({"value": executions})).into_response())
}
