//! The admin UI (SPEC §5.4): server-rendered pages (askama templates under
//! `templates/ui/`), with htmx for the live parts (vendored in `static/`, embedded in the
//! binary; no JavaScript build step, nothing loaded from elsewhere). Every page works
//! without JavaScript; htmx only spares reloads.
//!
//! Routes:
//! - `/admin/`, `/admin/signin`, `/admin/signout` — sign-in of an org's admin (`signin`)
//! - `/admin/{org}/sync/connector` — this org, its server org, Connect, settings (`connector`)
//! - `/admin/{org}/sync/entities` — enable/disable entities (`entities`)
//! - `/admin/{org}/sync/entities/{entity}/filter` — the Sync Filter editor (`filter`)
//! - `/admin/{org}/sync/metadata` — Update metadata: preview, apply (`metadata`)
//! - `/admin/{org}/sync/run[/{job}[/progress]]` — Sync All with live progress (`syncall`)
//! - `/admin/{org}/sync/transactions` — Offline transactions: by status, transitions
//!   (`transactions`)
//! - `/admin/{org}/sync/logs[/{run}]` — Logs of synchronization (`logs`)
//! - `/admin/{org}/sync/jobs[/new|/{id}[/status|/action]]` — Sync Jobs: the processes, a new
//!   one, one with its actions and history (`jobs`)
//! - `/Register.aspx?otype=connect`, `/register?otype=connect` — the public Connect page
//!   (`register`)
//! - `/admin/static/{file}` — htmx and the style sheet
//!
//! Invariants: every org page needs a signed-in admin of that org ([`session::Admin`]); every
//! POST passes [`session::csrf_guard`] first; the screens call the functions behind the sync
//! webservice (`syncapi`, `crmsync_sync::service`) rather than their own copies, so the UI
//! and the webservice cannot disagree.

mod connector;
mod entities;
mod filter;
mod forms;
mod jobs;
mod logs;
mod metadata;
mod pages;
mod register;
pub(crate) use register::ClientAddr;
mod session;
mod signin;
mod syncall;
mod transactions;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rust_embed::RustEmbed;

pub use session::{FORM_COOKIE, SESSION_COOKIE, SessionKeys};

use crate::AppState;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// `GET /admin/static/{file}`: the embedded htmx and style sheet.
async fn asset(Path(file): Path<String>) -> Response {
    let Some(content) = Assets::get(&file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let kind = match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    let mut response = content.data.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

async fn org_home(Path(org): Path<String>) -> Response {
    match crmsync_model::OrgName::parse(&org) {
        Ok(org) => pages::see_other(&format!("/admin/{org}/sync/connector")),
        Err(_) => pages::UiError::not_found("No such page.").into_response(),
    }
}

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin", get(signin::home))
        .route("/admin/", get(signin::home))
        .route("/admin/signin", get(signin::form).post(signin::submit))
        .route("/admin/signout", post(signin::sign_out))
        .route("/admin/static/{file}", get(asset))
        .route("/admin/{org}", get(org_home))
        .route("/admin/{org}/", get(org_home))
        .route("/admin/{org}/sync", get(org_home))
        .route(
            "/admin/{org}/sync/connector",
            get(connector::show).post(connector::submit),
        )
        .route("/admin/{org}/sync/settings", post(connector::settings))
        .route(
            "/admin/{org}/sync/entities",
            get(entities::show).post(entities::save),
        )
        .route(
            "/admin/{org}/sync/entities/{entity}/filter",
            get(filter::show).post(filter::submit),
        )
        .route(
            "/admin/{org}/sync/metadata",
            get(metadata::show).post(metadata::apply),
        )
        .route("/admin/{org}/sync/run", get(syncall::show).post(syncall::start))
        .route("/admin/{org}/sync/run/{job}", get(syncall::job))
        .route("/admin/{org}/sync/run/{job}/progress", get(syncall::progress))
        .route(
            "/admin/{org}/sync/transactions",
            get(transactions::show).post(transactions::act),
        )
        .route("/admin/{org}/sync/logs", get(logs::list))
        .route("/admin/{org}/sync/logs/{run}", get(logs::run))
        .route("/admin/{org}/sync/jobs", get(jobs::list).post(jobs::create))
        .route("/admin/{org}/sync/jobs/new", get(jobs::new))
        .route("/admin/{org}/sync/jobs/{id}", get(jobs::show).post(jobs::save))
        .route("/admin/{org}/sync/jobs/{id}/status", get(jobs::status))
        .route("/admin/{org}/sync/jobs/{id}/action", post(jobs::act))
        .route("/Register.aspx", get(register::form).post(register::submit))
        .route("/register", get(register::form).post(register::submit))
        .layer(axum::middleware::from_fn_with_state(state, session::csrf_guard))
}
