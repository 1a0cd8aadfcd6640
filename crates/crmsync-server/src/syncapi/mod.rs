//! The sync webservice (SPEC §5.3): `/rest/v1/sync/{org}/…`, where `{org}` is the Client org.
//!
//! `ConnectAsync`, `SyncAsync` and `UpdateMetadataAsync` answer 202 with a job to poll at
//! `jobs/{id}`. `SyncAsync` and `UpdateMetadataAsync` are durable work items run by the
//! scheduler of any instance (they survive a restart); `ConnectAsync` (which may register the
//! org its job would belong to) and the admin UI's Sync All still run in this process; the connection, its entities, filters and settings (`connection.rs`) and the
//! logs (`logs.rs`), the processes (Sync Jobs, `processes.rs`) and the offline transactions
//! (`transactions.rs`) are read and changed directly. Every route needs the org's admin role,
//! except `ConnectAsync` for an org that does not exist yet (registration, unless closed).

mod connect;
pub(crate) mod connection;
mod jobs;
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
use crmsync_sync::service::{ConnectRequest, connect as connect_org};
use crmsync_sync::{
    BackendType, Connection, Connector, EntityFigures, Progress, RunStatus, SyncRunner, Trigger,
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

pub use jobs::{JobStatus, Jobs};

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
    let id = state.jobs.create("connect", name.as_str());
    // A registrant has no account until the job succeeds: the job id is their capability.
    let open = request.registration.is_some();
    state.jobs.update(id, |j| j.open = open);
    let st = state.clone();
    state.jobs.spawn(id, async move {
        let secrets = st.config.secrets_key;
        let factory =
            move |org: &OrgName, conn: &Connection| crmsync_connectors::for_connection(org, conn, &secrets);
        let (conn, update) = connect_org(&*st.catalog, &secrets, request, &factory)
            .await
            .map_err(|e| e.to_string())?;
        let entities: Vec<&str> = conn.settings.entities.iter().map(|e| e.as_str()).collect();
        Ok((
            JobStatus::Succeeded,
            json!({"entities": entities, "metadataChanges": update.describe(), "notes": update.notes}),
        ))
    });
    Ok(accepted(&name, id))
}

/// Reports a run's progress on its job.
struct JobProgressSink {
    jobs: Arc<Jobs>,
    id: Uuid,
}

impl Progress for JobProgressSink {
    fn entity_started(&self, entity: &str, index: usize, count: usize) {
        self.jobs.update(self.id, |j| {
            j.progress.phase = "download".into();
            j.progress.entity = Some(entity.to_owned());
            j.progress.done = index as u64;
            j.progress.total = count as u64;
        });
    }

    fn entity_done(&self, _: &EntityFigures) {
        self.jobs.update(self.id, |j| j.progress.done += 1);
    }
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
    let entities: Vec<&str> = if request.entities.is_empty() {
        Vec::new()
    } else {
        settings.entities.iter().map(|e| e.as_str()).collect()
    };
    let payload = json!({"entities": entities, "full": request.full});
    let id = enqueue(&state, &caller.org, scheduler::webservice::SYNC_KIND, payload).await?;
    Ok(accepted(&caller.org, id))
}

/// Queues a durable job of the webservice for the scheduler (of any instance) to run.
async fn enqueue(
    state: &AppState,
    org: &OrgName,
    kind: &str,
    payload: serde_json::Value,
) -> Result<Uuid, ApiError> {
    let now = chrono::Utc::now();
    let work = NewWork {
        org: org.clone(),
        kind: kind.to_owned(),
        payload,
        due: now,
    };
    let item = state.catalog.work().enqueue(work, now).await?;
    state.work_added.notify_one();
    tracing::info!(org = %org, job = %item.id, kind, "job queued");
    Ok(item.id)
}

/// Starts a sync run of `caller`'s org as a job (Sync All of the webservice and of the admin
/// UI); the job reports the run's progress and, once done, its run id and figures.
pub(crate) fn start_sync(
    state: &AppState,
    caller: Caller,
    conn: &Connection,
    settings: crmsync_sync::SyncSettings,
    full: bool,
    trigger: Trigger,
) -> Result<Uuid, ApiError> {
    let server = connector(state, &caller.org, conn)?;
    let id = state.jobs.create("sync", caller.org.as_str());
    let jobs = state.jobs.clone();
    let metrics = state.metrics.clone();
    state.jobs.spawn(id, async move {
        let progress = JobProgressSink {
            jobs: jobs.clone(),
            id,
        };
        let mut runner = SyncRunner::new(caller.store.clone(), server, settings);
        runner.full = full;
        let log = runner.run(trigger, &progress).await.map_err(|e| e.to_string())?;
        metrics.run_finished(&log);
        jobs.update(id, |j| j.run_id = Some(log.id));
        let status = match log.status {
            RunStatus::Succeeded => JobStatus::Succeeded,
            RunStatus::PartiallySucceeded => JobStatus::PartiallySucceeded,
            _ => JobStatus::Failed,
        };
        Ok((
            status,
            json!({"runId": log.id, "status": log.status, "entities": log.entities}),
        ))
    });
    Ok(id)
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
    let payload = json!({"preview": request.preview});
    let id = enqueue(&state, &caller.org, scheduler::webservice::METADATA_KIND, payload).await?;
    Ok(accepted(&caller.org, id))
}

async fn job(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::bad_request(format!("'{id}' is not a job id")))?;
    if let Some(job) = state.jobs.get(id, &org).filter(|j| j.open) {
        return Ok(Json(job).into_response());
    }
    let caller = admin(&state, &org, &headers).await?;
    if let Some(job) = state.jobs.get(id, caller.org.as_str()) {
        return Ok(Json(job).into_response());
    }
    match state.catalog.work().work_item(id).await {
        Ok(item) if item.org == caller.org => {
            Ok(Json(scheduler::webservice::job_json(&item)).into_response())
        }
        Ok(_) | Err(StoreError::NotFound(_)) => Err(ApiError::not_found(format!("job {id}"))),
        Err(e) => Err(e.into()),
    }
}
