//! The sync webservice (SPEC §5.3): `/rest/v1/sync/{org}/…`, where `{org}` is the Client org.
//!
//! `ConnectAsync`, `SyncAsync` and `UpdateMetadataAsync` answer 202 with a job to poll at
//! `jobs/{id}`. Each job is a durable work item run by the scheduler of any instance
//! (`scheduler::webservice`): it survives a restart, and never runs beside another job of the
//! same org. The request is checked here (authentication, registration policy and rate
//! limit, the body), the server only when the job runs. The connection, its entities, filters
//! and settings (`connection.rs`) and the logs (`logs.rs`), the processes (Sync Jobs,
//! `processes.rs`) and the offline transactions (`transactions.rs`) are read and changed
//! directly. Every route needs the org's admin role, except `ConnectAsync` for an org that
//! does not exist yet (registration, unless closed), whose job is readable by its id alone.

mod connect;
pub(crate) mod connection;
mod logs;
pub(crate) mod processes;
pub mod transactions;
mod worker;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use crmsync_model::{EntityName, OrgName};
use crmsync_store::{NewUser, NewWork, Role, StoreError};
use crmsync_sync::service::ConnectRequest;
use crmsync_sync::{BackendType, Connection, Connector, Trigger};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::Caller;
use crate::{ApiError, AppState, scheduler};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rest/v1/sync/{org}/ConnectAsync", post(connect_async))
        .route("/rest/v1/sync/{org}/SyncAsync", post(sync_async))
        .route("/rest/v1/sync/{org}/UpdateMetadataAsync", post(metadata_async))
        .route("/rest/v1/sync/{org}/jobs/{id}", get(job))
        .route("/rest/v1/sync/{org}/connection", get(connection::connection))
        .route(
            "/rest/v1/sync/{org}/connection/entities",
            put(connection::put_entities),
        )
        .route(
            "/rest/v1/sync/{org}/connection/filters",
            put(connection::put_filters),
        )
        .route(
            "/rest/v1/sync/{org}/connection/settings",
            put(connection::put_settings),
        )
        .route("/rest/v1/sync/{org}/transactions", get(transactions::list))
        .route(
            "/rest/v1/sync/{org}/transactions/set-pending",
            post(transactions::set_pending),
        )
        .route(
            "/rest/v1/sync/{org}/transactions/archive",
            post(transactions::archive),
        )
        .route(
            "/rest/v1/sync/{org}/transactions/set-all-pending",
            post(transactions::set_all_pending),
        )
        .route(
            "/rest/v1/sync/{org}/processes",
            get(processes::list).post(processes::create),
        )
        .route(
            "/rest/v1/sync/{org}/processes/{id}",
            get(processes::get)
                .put(processes::update)
                .delete(processes::delete),
        )
        .route(
            "/rest/v1/sync/{org}/processes/{id}/history",
            get(processes::history),
        )
        .route("/rest/v1/sync/{org}/processes/{id}/run", post(processes::run))
        .route("/rest/v1/sync/{org}/worker", get(worker::worker))
        .route("/rest/v1/sync/{org}/logs", get(logs::logs))
        .route("/rest/v1/sync/{org}/logs/{run}", get(logs::log))
}

async fn admin(state: &AppState, org: &str, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let caller = state.auth.authenticate(org, headers).await?;
    caller.require_admin()?;
    Ok(caller)
}

pub(crate) fn connector(
    state: &AppState,
    org: &OrgName,
    conn: &Connection,
) -> Result<Arc<dyn Connector>, ApiError> {
    Ok(crmsync_connectors::for_connection(
        org,
        conn,
        &state.config.secrets_key,
    )?)
}

pub(crate) async fn connection_of(caller: &Caller) -> Result<Connection, ApiError> {
    Connection::load(&*caller.store)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "'{}' has no connection: use ConnectAsync first",
                caller.org
            ))
        })
}

fn accepted(org: &OrgName, id: Uuid) -> Response {
    let location = format!("/rest/v1/sync/{org}/jobs/{id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({"jobId": id, "status": "Queued"})),
    )
        .into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("valid header"),
    );
    response
}

async fn connect_async(
    State(state): State<AppState>,
    Path(org): Path<String>,
    crate::ui::ClientAddr(addr): crate::ui::ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = OrgName::parse(&org).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let input = connect::parse(&body)?;
    let backend = BackendType::parse(&input.provider)?;
    let entities = input
        .entities
        .iter()
        .map(|e| EntityName::parse(e))
        .collect::<Result<Vec<_>, _>>()?;
    let registration = match state.catalog.org_info(&name).await {
        Ok(_) => {
            admin(&state, &org, &headers).await?;
            None
        }
        Err(StoreError::NotFound(_)) if !state.config.registration_open => {
            return Err(ApiError::forbidden(
                "registration of new organizations is closed on this server",
            ));
        }
        Err(StoreError::NotFound(_)) => {
            // Registration is rate-limited per client address, as the Connect page is.
            let addr = addr.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
            if let Err(wait) = state.registrations.attempt(addr, std::time::Instant::now()) {
                tracing::warn!(client = %addr, "registration rate limit reached");
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    format!(
                        "too many registrations from this address; try again in {} s",
                        wait.as_secs().max(1)
                    ),
                ));
            }
            let user = NewUser {
                email: input
                    .registration_email
                    .clone()
                    .unwrap_or_else(|| input.user.clone()),
                password: input
                    .registration_password
                    .clone()
                    .unwrap_or_else(|| input.password.clone()),
                role: Role::Admin,
            };
            user.validate()?;
            Some(user)
        }
        Err(e) => return Err(e.into()),
    };
    let request = ConnectRequest {
        client_org: name.clone(),
        server_url: input.url.clone(),
        backend,
        user: input.user.clone(),
        password: input.password.clone(),
        entities,
        filters_xml: input.filters_xml.clone(),
        write_offline: input.write_offline,
        allow_private_urls: state.config.allow_private_urls,
        registration,
    };
    // A registrant has no account until the job succeeds: the job id is their capability.
    let open = request.registration.is_some();
    let payload = scheduler::webservice::connect_payload(&state.config.secrets_key, &request);
    let id = enqueue(&state, &name, scheduler::webservice::CONNECT_KIND, payload, open).await?;
    Ok(accepted(&name, id))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    #[serde(default)]
    entities: Vec<String>,
    #[serde(default)]
    full: bool,
}

fn optional_json<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

async fn sync_async(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let request: SyncBody = optional_json(&body)?;
    let conn = connection_of(&caller).await?;
    let mut settings = conn.settings.clone();
    if !request.entities.is_empty() {
        let wanted = request
            .entities
            .iter()
            .map(|e| EntityName::parse(e))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(unknown) = wanted.iter().find(|e| !settings.entities.contains(e)) {
            return Err(ApiError::bad_request(format!(
                "entity '{unknown}' is not enabled for sync"
            )));
        }
        settings.entities = wanted;
    }
    let entities = if request.entities.is_empty() {
        Vec::new()
    } else {
        settings.entities
    };
    let payload = scheduler::webservice::sync_payload(&entities, request.full, Trigger::Webservice);
    let id = enqueue(
        &state,
        &caller.org,
        scheduler::webservice::SYNC_KIND,
        payload,
        false,
    )
    .await?;
    Ok(accepted(&caller.org, id))
}

/// Queues a durable job for the scheduler (of any instance) to run; `for_new_org` when the
/// job registers `org`.
pub(crate) async fn enqueue(
    state: &AppState,
    org: &OrgName,
    kind: &str,
    payload: serde_json::Value,
    for_new_org: bool,
) -> Result<Uuid, ApiError> {
    let now = chrono::Utc::now();
    let work = NewWork {
        org: org.clone(),
        kind: kind.to_owned(),
        payload,
        due: now,
        for_new_org,
    };
    let item = state.catalog.work().enqueue(work, now).await?;
    state.work_added.notify_one();
    tracing::info!(org = %org, job = %item.id, kind, "job queued");
    Ok(item.id)
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataBody {
    #[serde(default)]
    preview: bool,
}

async fn metadata_async(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admin(&state, &org, &headers).await?;
    let request: MetadataBody = optional_json(&body)?;
    connection_of(&caller).await?;
    let payload = scheduler::webservice::metadata_payload(request.preview);
    let id = enqueue(
        &state,
        &caller.org,
        scheduler::webservice::METADATA_KIND,
        payload,
        false,
    )
    .await?;
    Ok(accepted(&caller.org, id))
}

async fn job(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::bad_request(format!("'{id}' is not a job id")))?;
    let item = match state.catalog.work().work_item(id).await {
        Ok(item) => Some(item),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    // A registration's job is read by its id alone (the registrant has no account before it
    // succeeds); any other job needs the org's admin, and another org's job is not found.
    if let Some(item) = item.as_ref().filter(|i| {
        i.org.as_str() == org && i.kind == scheduler::webservice::CONNECT_KIND && i.payload["open"] == true
    }) {
        return Ok(Json(scheduler::webservice::job_json(item)).into_response());
    }
    let caller = admin(&state, &org, &headers).await?;
    match item {
        Some(item) if item.org == caller.org => {
            Ok(Json(scheduler::webservice::job_json(&item)).into_response())
        }
        _ => Err(ApiError::not_found(format!("job {id}"))),
    }
}
