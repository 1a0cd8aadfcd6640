//! The stored connection through the webservice: read it (never its password) and change
//! its entities, filters and settings. Entities and filters are checked against the server's
//! metadata before anything is saved.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use crmsync_model::EntityName;
use crmsync_sync::{ConflictPolicy, Connection};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{admin, connection_of, connector};
use crate::auth::Caller;
use crate::{ApiError, AppState};

/// Checks the connection's settings against the server's metadata, then stores it.
async fn validate_and_save(
    state: &AppState,
    caller: &Caller,
    conn: &Connection,
) -> Result<Response, ApiError> {
    validate_and_store(state, caller, conn).await?;
    Ok(Json(connection_json(conn)).into_response())
}

/// The one check-then-store of changed connection settings (webservice and admin UI).
pub(crate) async fn validate_and_store(
    state: &AppState,
    caller: &Caller,
    conn: &Connection,
) -> Result<(), ApiError> {
    let server = connector(state, &caller.org, conn)?.entities().await?;
    conn.settings.validate(&server)?;
    conn.save(&*caller.store).await.map_err(ApiError::internal)
}

fn connection_json(conn: &Connection) -> Value {
    json!({
        "serverUrl": conn.server_url,
        "backend": conn.backend,
        "userName": conn.user,
        "entities": conn.settings.entities,
        "filters": conn.settings.filters,
        "writeOffline": conn.settings.write_offline,
        "conflictPolicy": conn.settings.conflict_policy,
        "connectedOn": conn.connected_on,
    })
}

pub(super) async fn connection(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    Ok(Json(connection_json(&connection_of(&caller).await?)).into_response())
}

async fn save(caller: &Caller, conn: &Connection) -> Result<Response, ApiError> {
    conn.save(&*caller.store).await.map_err(ApiError::internal)?;
    Ok(Json(connection_json(conn)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitiesBody {
    entities: Vec<String>,
}

pub(super) async fn put_entities(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let request: EntitiesBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"entities\":[…]}}: {e}")))?;
    let mut conn = connection_of(&caller).await?;
    conn.settings.entities = request
        .entities
        .iter()
        .map(|e| EntityName::parse(e))
        .collect::<Result<Vec<_>, _>>()?;
    validate_and_save(&state, &caller, &conn).await
}

pub(super) async fn put_filters(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let xml = if text.trim_start().starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
        v["syncFiltersXml"]
            .as_str()
            .ok_or_else(|| ApiError::bad_request("expected {\"syncFiltersXml\":\"…\"}"))?
            .to_owned()
    } else {
        text.to_owned()
    };
    let mut conn = connection_of(&caller).await?;
    conn.settings.filters = crmsync_sync::parse_sync_filters(&xml)?;
    validate_and_save(&state, &caller, &conn).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SettingsBody {
    write_offline: Option<bool>,
    conflict_policy: Option<ConflictPolicy>,
}

pub(super) async fn put_settings(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let request: SettingsBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"writeOffline\":bool,\"conflictPolicy\":\"ClientWins|ServerWins\"}}: {e}"
        ))
    })?;
    let mut conn = connection_of(&caller).await?;
    if let Some(w) = request.write_offline {
        conn.settings.write_offline = w;
    }
    if let Some(p) = request.conflict_policy {
        conn.settings.conflict_policy = p;
    }
    save(&caller, &conn).await
}
