//! The scheduler's work for one org (`GET worker`): its queue by status, what runs now and
//! on which instance, and the last error. Read from the durable queue, so every instance
//! answers the same; only this org's items are shown.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use crmsync_store::WorkStatus;
use serde_json::{Value, json};

use super::admin;
use crate::scheduler::webservice::failure;
use crate::{ApiError, AppState};

/// Items of the org looked at, newest first.
const WINDOW: usize = 1000;

pub(super) async fn worker(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let items = state.catalog.work().list_work(&caller.org, WINDOW).await?;
    let mut queue: BTreeMap<&str, u64> = WorkStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for item in &items {
        *queue.entry(item.status.as_str()).or_default() += 1;
    }
    let running: Vec<Value> = items
        .iter()
        .filter(|i| i.status == WorkStatus::Running)
        .map(|i| {
            json!({"id": i.id, "kind": i.kind, "instance": i.lease_owner,
                   "leaseExpires": i.lease_expires, "attempts": i.attempts, "progress": i.result})
        })
        .collect();
    let last_error = items
        .iter()
        .filter_map(|i| Some((i, failure(i)?)))
        .max_by_key(|(i, _)| i.updated)
        .map(|(i, message)| json!({"at": i.updated, "kind": i.kind, "workId": i.id, "message": message}));
    Ok(Json(json!({"queue": queue, "running": running, "lastError": last_error})).into_response())
}
