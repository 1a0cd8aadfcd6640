//! The offline transaction queue through the webservice (SPEC §5.3): list by status with
//! paging, and the administrator's transitions. Processed is final; a transition the rules
//! refuse is a 409 and changes nothing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use crmsync_model::RecordId;
use crmsync_sync::transactions::{self, TxStatus};
use serde::Deserialize;
use serde_json::json;

use super::admin;
use crate::{ApiError, AppState};

/// Default and largest page of a listing.
const DEFAULT_TOP: usize = 50;
const MAX_TOP: usize = 5000;

#[derive(Deserialize)]
pub(super) struct ListParams {
    status: Option<String>,
    top: Option<String>,
    skip: Option<String>,
}

fn number<T: std::str::FromStr>(name: &str, value: Option<&str>) -> Result<Option<T>, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim().parse().map_err(|_| {
                ApiError::bad_request(format!("{name} must be a non-negative number, not '{v}'"))
            })
        })
        .transpose()
}

/// `status=all|pending|processed|error|archived` (absent: all).
pub fn status_param(value: Option<&str>) -> Result<Option<TxStatus>, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("all") => Ok(None),
        Some(v) => TxStatus::parse(v).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown status '{v}': use all, pending, processed, error or archived"
            ))
        }),
    }
}

pub(super) async fn list(
    State(state): State<AppState>,
    Path(org): Path<String>,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let status = status_param(params.status.as_deref())?;
    let top = number::<usize>("top", params.top.as_deref())?.unwrap_or(DEFAULT_TOP);
    if top == 0 || top > MAX_TOP {
        return Err(ApiError::bad_request(format!(
            "top must be between 1 and {MAX_TOP}"
        )));
    }
    let skip = number::<u64>("skip", params.skip.as_deref())?.unwrap_or(0);
    let page = transactions::list(&*caller.store, status, top, skip).await?;
    Ok(Json(json!({
        "status": status.map(TxStatus::label).unwrap_or("All"),
        "top": top,
        "skip": skip,
        "total": page.total,
        "value": page.transactions,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct Ids {
    ids: Vec<String>,
}

fn ids(body: &Bytes) -> Result<Vec<RecordId>, ApiError> {
    let parsed: Ids = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body must be {{\"ids\":[\"<guid>\",…]}}: {e}")))?;
    if parsed.ids.is_empty() {
        return Err(ApiError::bad_request(
            "ids is empty: name at least one transaction",
        ));
    }
    parsed
        .ids
        .iter()
        .map(|id| {
            RecordId::parse(id).map_err(|_| ApiError::bad_request(format!("'{id}' is not a transaction id")))
        })
        .collect()
}

async fn transition(
    state: AppState,
    org: String,
    headers: HeaderMap,
    body: Bytes,
    to: TxStatus,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let ids = ids(&body)?;
    let changed = transactions::set_status(&*caller.store, &ids, to).await?;
    Ok(Json(json!({"status": to.label(), "changed": changed})).into_response())
}

pub(super) async fn set_pending(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    transition(state, org, headers, body, TxStatus::Pending).await
}

pub(super) async fn archive(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    transition(state, org, headers, body, TxStatus::Archived).await
}

pub(super) async fn set_all_pending(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let changed = transactions::set_all_pending(&*caller.store).await?;
    Ok(Json(json!({"status": "Pending", "changed": changed})).into_response())
}
