//! The Connector screen: this (Client) org, the server org it syncs from, the Connect form
//! and the sync settings. Connect runs the webservice's connect
//! (`crmsync_sync::service::connect`) in the request, as a `connect` item of the work queue
//! ([`connect_here`]), so it never overlaps another run of the org (a busy org is said so at
//! once, not waited for): the server is checked before anything is stored, and an error is
//! shown next to the field it is about.
//!
//! Reconnecting keeps what was set up: a blank password keeps the stored one, and the same
//! server keeps its entities and sync filters (another server starts with all its entities).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use crmsync_model::OrgName;
use crmsync_store::{NewWork, StoreError};
use crmsync_sync::service::{ConnectRequest, connect};
use crmsync_sync::{BackendType, ConflictPolicy, Connection, SyncError, SyncSettings};
use serde::Deserialize;

use super::forms::{FieldErrors, ServerFields, connect_error};
use super::pages::{Chrome, Section, UiError, render, see_other};
use super::session::Admin;
use crate::AppState;
use crate::scheduler::webservice::{CONNECT_KIND, connect_outcome, connect_payload};
use crate::scheduler::{Scheduler, WhenBusy};

#[derive(Template)]
#[template(path = "ui/connector.html")]
struct ConnectorPage {
    chrome: Chrome,
    created_on: String,
    connection: Option<ConnectionView>,
    form: ServerFields,
    errors: FieldErrors,
}

/// What the page shows of a stored connection (never the password).
pub struct ConnectionView {
    pub backend: &'static str,
    pub server_url: String,
    pub user: String,
    pub connected_on: String,
    pub entities: usize,
    pub filters: usize,
    pub write_offline: bool,
    pub server_wins: bool,
}

pub fn backend_label(backend: BackendType) -> &'static str {
    match backend {
        BackendType::Crmsync => "crmsync organization",
        BackendType::Dynamics => "Dynamics 365 / Dataverse",
    }
}

impl ConnectionView {
    fn of(conn: &Connection) -> Self {
        ConnectionView {
            backend: backend_label(conn.backend),
            server_url: conn.server_url.clone(),
            user: conn.user.clone(),
            connected_on: conn.connected_on.format("%Y-%m-%d %H:%M UTC").to_string(),
            entities: conn.settings.entities.len(),
            filters: conn.settings.filters.len(),
            write_offline: conn.settings.write_offline,
            server_wins: conn.settings.conflict_policy == ConflictPolicy::ServerWins,
        }
    }
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

async fn page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    form: Option<ServerFields>,
    errors: FieldErrors,
    notice: Option<&str>,
) -> Result<Response, UiError> {
    let info = state.catalog.org_info(&admin.caller.org).await?;
    let conn = Connection::load(&*admin.caller.store).await?;
    let form = form.unwrap_or_else(|| match &conn {
        Some(c) => ServerFields {
            backend: c.backend.as_str().into(),
            server_url: c.server_url.clone(),
            server_user: c.user.clone(),
            server_password: String::new(),
        },
        None => ServerFields {
            backend: "crmsync".into(),
            ..Default::default()
        },
    });
    let page = ConnectorPage {
        chrome: Chrome::org(admin, Section::Connector, "Connector").with_notice(notice),
        created_on: info.created_on.format("%Y-%m-%d").to_string(),
        connection: conn.as_ref().map(ConnectionView::of),
        form: ServerFields {
            server_password: String::new(),
            ..form
        },
        errors,
    };
    Ok(render(status, &page))
}

/// `GET /admin/{org}/sync/connector`
pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, UiError> {
    page(
        &state,
        &admin,
        StatusCode::OK,
        None,
        FieldErrors::default(),
        q.notice.as_deref(),
    )
    .await
}

/// The `<SyncFilters>` document of stored filters, as connect takes them.
fn filters_xml(settings: &SyncSettings) -> Option<String> {
    (!settings.filters.is_empty()).then(|| {
        let fetches: String = settings.filters.values().map(String::as_str).collect();
        format!("<SyncFilters>{fetches}</SyncFilters>")
    })
}

/// `POST /admin/{org}/sync/connector`: connect (or reconnect) to a server org.
pub async fn submit(
    State(state): State<AppState>,
    admin: Admin,
    Form(f): Form<ServerFields>,
) -> Result<Response, UiError> {
    let org = admin.caller.org.clone();
    let existing = Connection::load(&*admin.caller.store).await?;
    let mut errors = FieldErrors::default();
    let backend = f.check(&mut errors, existing.is_some());
    let Some(backend) = backend.filter(|_| errors.is_empty()) else {
        return page(
            &state,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(f),
            errors,
            None,
        )
        .await;
    };
    let server_url = f.server_url.trim().trim_end_matches('/').to_owned();
    let password = match (&existing, f.server_password.is_empty()) {
        (Some(conn), true) => conn.password.open(&state.config.secrets_key, &org)?,
        _ => f.server_password.clone(),
    };
    let same_server = existing
        .as_ref()
        .filter(|c| c.server_url == server_url && c.backend == backend);
    let request = ConnectRequest {
        client_org: org.clone(),
        server_url,
        backend,
        user: f.server_user.trim().to_owned(),
        password,
        entities: same_server
            .map(|c| c.settings.entities.clone())
            .unwrap_or_default(),
        filters_xml: same_server.and_then(|c| filters_xml(&c.settings)),
        write_offline: existing.as_ref().is_some_and(|c| c.settings.write_offline),
        allow_private_urls: state.config.allow_private_urls,
        registration: None,
    };
    // Connect stores a fresh connection; the conflict policy is a setting of this org.
    let policy = existing.as_ref().map(|c| c.settings.conflict_policy);
    let connected = match connect_here(&state, request, false, policy).await? {
        ConnectHere::Connected(conn) => Ok(conn),
        ConnectHere::Refused(e) => Err(e),
        ConnectHere::Busy(busy) => {
            errors.add("", busy);
            return page(&state, &admin, StatusCode::CONFLICT, Some(f), errors, None).await;
        }
    };
    match connected {
        Ok(_) => {
            tracing::info!(org = %org, "connected from the admin UI");
            Ok(see_other(&format!(
                "/admin/{org}/sync/connector?notice=connected"
            )))
        }
        Err(e) => {
            connect_error(&mut errors, &e);
            page(
                &state,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(f),
                errors,
                None,
            )
            .await
        }
    }
}

/// What a connect run in the request came to.
pub(crate) enum ConnectHere {
    Connected(Connection),
    /// The server, the credentials or the settings were refused (nothing stored).
    Refused(SyncError),
    /// Another run holds the org: the message to show.
    Busy(String),
}

/// Connects in this request, as a `connect` item of the work queue started by this instance
/// (`for_new_org` when it registers the org): it never runs beside another run of the org,
/// shows in the org's work like a queued connect, and its outcome is recorded in the same
/// shape; its payload holds the secrets sealed. A busy org is not waited for. `keep_policy`:
/// the conflict policy the new connection keeps (a reconnect keeps the org's setting).
pub(crate) async fn connect_here(
    state: &AppState,
    request: ConnectRequest,
    for_new_org: bool,
    keep_policy: Option<ConflictPolicy>,
) -> Result<ConnectHere, UiError> {
    let runner = Scheduler::for_requests(state);
    let work = NewWork {
        org: request.client_org.clone(),
        kind: CONNECT_KIND.to_owned(),
        payload: connect_payload(&state.config.secrets_key, &request),
        due: chrono::Utc::now(),
        for_new_org,
    };
    let item = match runner.start_here(work, WhenBusy::GiveUp).await {
        Ok(item) => item,
        Err(StoreError::Conflict(why)) => {
            return Ok(ConnectHere::Busy(format!(
                "{why}; connect again once it has ended."
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let secrets = state.config.secrets_key;
    let factory =
        move |org: &OrgName, conn: &Connection| crmsync_connectors::for_connection(org, conn, &secrets);
    let connecting = async {
        let (mut conn, update) = connect(&*state.catalog, &secrets, request, &factory).await?;
        if let Some(policy) = keep_policy.filter(|p| *p != conn.settings.conflict_policy) {
            conn.settings.conflict_policy = policy;
            conn.save(&*state.catalog.open_org(&item.org).await?).await?;
        }
        Ok((conn, update))
    };
    let connected = runner.while_held(&item, connecting).await?;
    runner.finish(&item, connect_outcome(&connected)).await?;
    Ok(match connected {
        Ok((conn, _)) => ConnectHere::Connected(conn),
        Err(e) => ConnectHere::Refused(e),
    })
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    write_offline: Option<String>,
    #[serde(default)]
    conflict_policy: String,
}

/// `POST /admin/{org}/sync/settings`: WriteOffline and the conflict policy.
pub async fn settings(
    State(state): State<AppState>,
    admin: Admin,
    Form(f): Form<SettingsForm>,
) -> Result<Response, UiError> {
    let mut conn = super::pages::connection(&admin).await?;
    let mut errors = FieldErrors::default();
    match f.conflict_policy.as_str() {
        "ClientWins" => conn.settings.conflict_policy = ConflictPolicy::ClientWins,
        "ServerWins" => conn.settings.conflict_policy = ConflictPolicy::ServerWins,
        _ => errors.add("conflict_policy", "Choose Client wins or Server wins."),
    }
    if !errors.is_empty() {
        return page(
            &state,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            errors,
            None,
        )
        .await;
    }
    conn.settings.write_offline = f.write_offline.is_some();
    conn.save(&*admin.caller.store).await?;
    Ok(see_other(&format!(
        "/admin/{}/sync/connector?notice=settings-saved",
        admin.caller.org
    )))
}
