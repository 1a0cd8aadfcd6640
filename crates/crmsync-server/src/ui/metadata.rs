//! Update metadata: the preview of what the server's metadata would change on this org (for
//! the synced entities), then Apply. Both are the webservice's `UpdateMetadataAsync`
//! (`crmsync_sync::service::update_metadata`), with and without `preview`. Metadata flows
//! from the server to the client only; what the client has and the server lost is reported,
//! never dropped.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use crmsync_sync::service::update_metadata;

use super::connector::NoticeQuery;
use super::pages::{Chrome, Section, UiError, ok, see_other};
use super::session::Admin;
use crate::AppState;
use crate::syncapi::connector;

#[derive(Template)]
#[template(path = "ui/metadata.html")]
struct MetadataPage {
    chrome: Chrome,
    changes: Vec<String>,
    notes: Vec<String>,
    entities: usize,
}

/// `GET /admin/{org}/sync/metadata`: the preview.
pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, UiError> {
    let conn = super::pages::connection(&admin).await?;
    let server = connector(&state, &admin.caller.org, &conn)?;
    let preview = update_metadata(&*admin.caller.store, &conn, &*server, true).await?;
    Ok(ok(&MetadataPage {
        chrome: Chrome::org(&admin, Section::Metadata, "Update metadata").with_notice(q.notice.as_deref()),
        changes: preview.describe(),
        notes: preview.notes,
        entities: conn.settings.entities.len(),
    }))
}

/// `POST /admin/{org}/sync/metadata`: apply the update.
pub async fn apply(State(state): State<AppState>, admin: Admin) -> Result<Response, UiError> {
    let conn = super::pages::connection(&admin).await?;
    let server = connector(&state, &admin.caller.org, &conn)?;
    let applied = update_metadata(&*admin.caller.store, &conn, &*server, false).await?;
    tracing::info!(org = %admin.caller.org, changes = applied.changes.len(), "metadata update applied from the admin UI");
    Ok(see_other(&format!(
        "/admin/{}/sync/metadata?notice=metadata-applied",
        admin.caller.org
    )))
}
