//! Logs of synchronization through the webservice: runs newest first, or one run.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admin;
use crate::{ApiError, AppState};

pub(super) async fn logs(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let runs = crmsync_sync::logs(&*caller.store, 500).await?;
    let value: Vec<Value> = runs
        .iter()
        .map(|r| json!({"id": r.id, "trigger": r.trigger, "started": r.started, "ended": r.ended, "status": r.status, "totals": r.totals(), "upload": r.upload}))
        .collect();
    Ok(Json(json!({"value": value})).into_response())
}

pub(super) async fn log(
    State(state): State<AppState>,
    Path((org, run)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let runs = crmsync_sync::logs(&*caller.store, usize::MAX).await?;
    let found = runs
        .into_iter()
        .find(|r| r.id.to_string() == run)
        .ok_or_else(|| ApiError::not_found(format!("sync run {run}")))?;
    Ok(Json(found).into_response())
}
