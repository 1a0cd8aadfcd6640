//! The Entities screen: the server org's entities, which of them sync, whether the client
//! has them yet, and a link to each one's Sync Filter editor. Paged and searchable (a
//! Dataverse org has hundreds of entities): a save changes only the entities of the page it
//! was made on, then goes through the webservice's one check-then-store of settings.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use crmsync_model::{EntityMetadata, EntityName};
use crmsync_sync::Connection;
use serde::Deserialize;

use super::pages::{Chrome, Paged, Section, UiError, render, see_other};
use super::session::Admin;
use crate::AppState;
use crate::syncapi::connection::validate_and_store;
use crate::syncapi::connector;

const PAGE_SIZE: usize = 50;

pub struct EntityRow {
    pub name: String,
    pub label: String,
    pub attributes: usize,
    pub enabled: bool,
    pub on_client: bool,
    pub filtered: bool,
}

#[derive(Template)]
#[template(path = "ui/entities.html")]
struct EntitiesPage {
    chrome: Chrome,
    table: Paged<EntityRow>,
    search: String,
    /// Enabled entities the client does not have yet.
    missing: Vec<String>,
    error: Option<String>,
    base: String,
}

#[derive(Default, Deserialize)]
pub struct EntitiesQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<usize>,
    notice: Option<String>,
}

pub fn label(e: &EntityMetadata) -> String {
    if e.display_name.trim().is_empty() {
        e.logical_name.to_string()
    } else {
        e.display_name.clone()
    }
}

async fn page(
    state: &AppState,
    admin: &Admin,
    q: EntitiesQuery,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, UiError> {
    let conn = super::pages::connection(admin).await?;
    let server = connector(state, &admin.caller.org, &conn)?.entities().await?;
    let client = admin.caller.store.entities().await?;
    let on_client = |e: &EntityName| client.iter().any(|c| &c.logical_name == e);
    let missing = conn
        .settings
        .entities
        .iter()
        .filter(|e| !on_client(e))
        .map(|e| e.to_string())
        .collect();
    let needle = q.q.trim().to_lowercase();
    let mut rows: Vec<EntityRow> = server
        .iter()
        .filter(|e| {
            needle.is_empty()
                || e.logical_name.as_str().contains(&needle)
                || e.display_name.to_lowercase().contains(&needle)
        })
        .map(|e| EntityRow {
            name: e.logical_name.to_string(),
            label: label(e),
            attributes: e.attributes.len(),
            enabled: conn.settings.entities.contains(&e.logical_name),
            on_client: on_client(&e.logical_name),
            filtered: conn.settings.filters.contains_key(&e.logical_name),
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let query = if q.q.is_empty() {
        String::new()
    } else {
        format!(
            "{}&",
            serde_urlencoded::to_string([("q", q.q.as_str())]).unwrap_or_default()
        )
    };
    let page = EntitiesPage {
        chrome: Chrome::org(admin, Section::Entities, "Entities").with_notice(q.notice.as_deref()),
        table: Paged::of(rows, q.page.unwrap_or(1), PAGE_SIZE, query),
        search: q.q,
        base: format!("/admin/{}/sync/entities", admin.caller.org),
        missing,
        error,
    };
    Ok(render(status, &page))
}

/// `GET /admin/{org}/sync/entities`
pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<EntitiesQuery>,
) -> Result<Response, UiError> {
    page(&state, &admin, q, StatusCode::OK, None).await
}

/// `POST /admin/{org}/sync/entities`: `shown` names the entities of the page, `entity` the
/// checked ones; entities of other pages keep their state.
pub async fn save(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let mut conn: Connection = super::pages::connection(&admin).await?;
    let values = |key: &str| -> Result<Vec<EntityName>, UiError> {
        fields
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| EntityName::parse(v).map_err(|e| crate::ApiError::from(e).into()))
            .collect()
    };
    let shown = values("shown")?;
    let checked = values("entity")?;
    let field = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let mut entities: Vec<EntityName> = conn
        .settings
        .entities
        .iter()
        .filter(|e| !shown.contains(e))
        .cloned()
        .collect();
    entities.extend(checked.into_iter().filter(|e| shown.contains(e)));
    let back = EntitiesQuery {
        q: field("q").unwrap_or_default(),
        page: field("page").and_then(|p| p.parse().ok()),
        notice: None,
    };
    if entities.is_empty() {
        let error = Some("Enable at least one entity: a connection with nothing to sync cannot run.".into());
        return page(&state, &admin, back, StatusCode::UNPROCESSABLE_ENTITY, error).await;
    }
    conn.settings.entities = entities;
    if let Err(e) = validate_and_store(&state, &admin.caller, &conn).await {
        return page(
            &state,
            &admin,
            back,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(e.message),
        )
        .await;
    }
    let mut query = vec![("notice", "entities-saved".to_owned())];
    if !back.q.is_empty() {
        query.push(("q", back.q));
    }
    if let Some(p) = back.page {
        query.push(("page", p.to_string()));
    }
    Ok(see_other(&format!(
        "/admin/{}/sync/entities?{}",
        admin.caller.org,
        serde_urlencoded::to_string(query).unwrap_or_default()
    )))
}
