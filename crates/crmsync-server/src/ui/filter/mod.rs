//! The Sync Filter editor of one entity: conditions whose attribute, operator and value are
//! chosen from the server's metadata of the entity, AND/OR groups, and conditions on related
//! records (link-entities through lookups). It shows the FetchXML it builds and accepts
//! FetchXML typed or pasted in.
//!
//! Every action posts the whole form: adding or removing rows, or changing an attribute (with
//! htmx, on change; without, with the Update button), re-renders the editor without saving.
//! Each condition is checked on its own by the FetchXML parser of `crmsync-query` and its
//! message shown on its row; Save stores only a filter without such messages, through the
//! same check-then-store as the webservice's `PUT connection/filters`.
//!
//! Layout: `model` (the filter tree, FetchXML in and out, the form in), `view` (rows for the
//! template), this file (handlers).

mod model;
mod view;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use crmsync_model::{EntityMetadata, EntityName};
use crmsync_query::parse_fetchxml;
use crmsync_sync::Connection;

use super::connector::NoticeQuery;
use super::pages::{Chrome, Section, UiError, render, see_other};
use super::session::Admin;
use crate::AppState;
use crate::syncapi::connection::validate_and_store;
use crate::syncapi::connector;
use model::{Cond, Editor, FormFields, Group, Item, Link, from_fetchxml, parse_path, single_condition};
use view::{Row, fitting_operator, link_choices, rows};

#[derive(Template)]
#[template(path = "ui/filter.html")]
struct FilterPage {
    chrome: Chrome,
    entity: String,
    entity_label: String,
    action: String,
    /// Why the editor cannot show the stored filter (the XML is still editable).
    xml_only: Option<String>,
    rows: Vec<Row>,
    can_link: bool,
    xml: String,
    xml_error: Option<String>,
    form_error: Option<String>,
    saved: bool,
    enabled: bool,
}

struct Context {
    conn: Connection,
    server: Vec<EntityMetadata>,
    entity: EntityMetadata,
}

async fn context(state: &AppState, admin: &Admin, entity: &str) -> Result<Context, UiError> {
    let conn = super::pages::connection(admin).await?;
    let server = connector(state, &admin.caller.org, &conn)?.entities().await?;
    let entity = server
        .iter()
        .find(|e| e.logical_name.as_str() == entity)
        .cloned()
        .ok_or_else(|| UiError::not_found(format!("The server organization has no entity '{entity}'.")))?;
    Ok(Context { conn, server, entity })
}

/// The message of the FetchXML parser about `c`, checked alone (inside `link` if given).
fn check_condition(ctx: &Context, link: Option<&Link>, c: &Cond) -> Option<String> {
    if c.attribute.is_empty() {
        return Some("Choose an attribute.".into());
    }
    let xml = single_condition(ctx.entity.logical_name.as_str(), link, c);
    parse_fetchxml(&xml, &ctx.server).err().map(|e| e.to_string())
}

fn check_link(ctx: &Context, link: &Link) -> Option<String> {
    let probe = Editor {
        root: Group::default(),
        links: vec![Link {
            group: Group::default(),
            ..link.clone()
        }],
    };
    let xml = probe.to_fetchxml(ctx.entity.logical_name.as_str())?;
    parse_fetchxml(&xml, &ctx.server).err().map(|e| e.to_string())
}

struct Shown {
    editor: Editor,
    /// Whether each condition's check is shown (after Save; not while editing).
    checked: bool,
    xml_only: Option<String>,
    /// The FetchXML in the text box (the editor's, or the stored text it cannot show).
    xml: String,
    xml_error: Option<String>,
    form_error: Option<String>,
}

fn render_page(
    ctx: &Context,
    admin: &Admin,
    shown: Shown,
    status: StatusCode,
    notice: Option<&str>,
) -> Response {
    let entity = ctx.entity.logical_name.to_string();
    let label = super::entities::label(&ctx.entity);
    let checked = shown.checked;
    let check = |link: Option<&Link>, c: &Cond| checked.then(|| check_condition(ctx, link, c)).flatten();
    let link_error = |l: &Link| check_link(ctx, l);
    let rows = if shown.xml_only.is_some() {
        Vec::new()
    } else {
        rows(&shown.editor, &ctx.entity, &ctx.server, &check, &link_error)
    };
    let page = FilterPage {
        chrome: Chrome::org(admin, Section::Entities, format!("Sync Filter: {label}")).with_notice(notice),
        action: format!("/admin/{}/sync/entities/{entity}/filter", admin.caller.org),
        can_link: !link_choices(&ctx.entity, &ctx.server).is_empty(),
        saved: ctx.conn.settings.filters.contains_key(&ctx.entity.logical_name),
        enabled: ctx.conn.settings.entities.contains(&ctx.entity.logical_name),
        entity,
        entity_label: label,
        xml_only: shown.xml_only,
        rows,
        xml: shown.xml,
        xml_error: shown.xml_error,
        form_error: shown.form_error,
    };
    render(status, &page)
}

fn stored(ctx: &Context) -> Shown {
    let Some(xml) = ctx.conn.settings.filters.get(&ctx.entity.logical_name) else {
        return Shown {
            editor: Editor::default(),
            checked: false,
            xml_only: None,
            xml: String::new(),
            xml_error: None,
            form_error: None,
        };
    };
    let (editor, xml_only) = match from_fetchxml(xml) {
        Ok((_, editor)) => (editor, None),
        Err(why) => (Editor::default(), Some(why)),
    };
    Shown {
        editor,
        checked: false,
        xml_only,
        xml: xml.clone(),
        xml_error: None,
        form_error: None,
    }
}

/// `GET /admin/{org}/sync/entities/{entity}/filter`
pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path((_, entity)): Path<(String, String)>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, UiError> {
    let ctx = context(&state, &admin, &entity).await?;
    Ok(render_page(
        &ctx,
        &admin,
        stored(&ctx),
        StatusCode::OK,
        q.notice.as_deref(),
    ))
}

/// A new condition on `entity`: its primary name, `eq`.
fn new_condition(entity: &EntityMetadata) -> Item {
    let attribute = entity.primary_name_attribute.to_string();
    let operator = fitting_operator(entity.attribute(&attribute), "eq");
    Item::Cond(Cond {
        attribute,
        operator,
        values: Vec::new(),
    })
}

/// The group at `path` (`r…` or `l{i}…`) and the entity its conditions test.
fn group_at<'e>(
    editor: &'e mut Editor,
    ctx: &'e Context,
    path: &str,
) -> Option<(&'e mut Group, &'e EntityMetadata)> {
    let (link, items) = parse_path(path)?;
    match link {
        None => Some((editor.root.group_mut(&items)?, &ctx.entity)),
        Some(i) => {
            let link = editor.links.get_mut(i)?;
            let target = ctx
                .server
                .iter()
                .find(|e| e.logical_name.as_str() == link.entity)?;
            Some((link.group.group_mut(&items)?, target))
        }
    }
}

/// Applies an editing action to the editor; false if it names nothing.
fn edit(editor: &mut Editor, ctx: &Context, action: &str) -> bool {
    if action == "add-link" {
        let Some((lookup, target)) = link_choices(&ctx.entity, &ctx.server).into_iter().next() else {
            return false;
        };
        editor.links.push(Link {
            lookup: lookup.logical_name.to_string(),
            entity: target.logical_name.to_string(),
            from: target.primary_id_attribute.to_string(),
            group: Group {
                or: false,
                items: vec![new_condition(target)],
            },
        });
        return true;
    }
    let Some((verb, path)) = action.split_once(':') else {
        return false;
    };
    match verb {
        "add-cond" | "add-group" => {
            let Some((group, entity)) = group_at(editor, ctx, path) else {
                return false;
            };
            let item = new_condition(entity);
            if verb == "add-cond" {
                group.items.push(item);
            } else {
                let or = !group.or;
                group.items.push(Item::Group(Group {
                    or,
                    items: vec![item],
                }));
            }
            true
        }
        "remove" => match parse_path(path) {
            Some((None, items)) => editor.root.remove(&items),
            Some((Some(i), items)) if items.is_empty() && i < editor.links.len() => {
                editor.links.remove(i);
                true
            }
            Some((Some(i), items)) => editor.links.get_mut(i).is_some_and(|l| l.group.remove(&items)),
            None => false,
        },
        _ => false,
    }
}

fn redirect(admin: &Admin, entity: &str, notice: &str) -> Response {
    see_other(&format!(
        "/admin/{}/sync/entities/{entity}/filter?notice={notice}",
        admin.caller.org
    ))
}

/// Stores `xml` (or no filter) as the entity's sync filter after the webservice's checks.
async fn store(state: &AppState, admin: &Admin, ctx: &Context, xml: Option<String>) -> Result<(), String> {
    let mut conn = ctx.conn.clone();
    let name: EntityName = ctx.entity.logical_name.clone();
    match xml {
        Some(xml) => conn.settings.filters.insert(name, xml),
        None => conn.settings.filters.remove(&name),
    };
    validate_and_store(state, &admin.caller, &conn)
        .await
        .map_err(|e| e.message)
}

/// `POST /admin/{org}/sync/entities/{entity}/filter`: `action` is `save`, `clear`,
/// `xml-load`, `xml-save`, `refresh`, `add-link`, `add-cond:{path}`, `add-group:{path}` or
/// `remove:{path}`.
pub async fn submit(
    State(state): State<AppState>,
    admin: Admin,
    Path((_, entity)): Path<(String, String)>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let ctx = context(&state, &admin, &entity).await?;
    let form = FormFields(&fields);
    let primary_id = |name: &str| {
        ctx.server
            .iter()
            .find(|e| e.logical_name.as_str() == name)
            .map(|e| e.primary_id_attribute.to_string())
    };
    let mut editor = form.editor(&primary_id);
    let action = form.get("action").unwrap_or("refresh").to_owned();
    let typed_xml = form.get("xml").unwrap_or_default().trim().to_owned();
    let entity_name = ctx.entity.logical_name.to_string();
    let mut shown = Shown {
        xml: String::new(),
        editor: Editor::default(),
        checked: action == "save",
        xml_only: None,
        xml_error: None,
        form_error: None,
    };
    let mut status = StatusCode::OK;
    match action.as_str() {
        "save" => {
            let has_errors = rows(
                &editor,
                &ctx.entity,
                &ctx.server,
                &|l, c| check_condition(&ctx, l, c),
                &|l| check_link(&ctx, l),
            )
            .iter()
            .any(|r| r.error.is_some());
            if has_errors {
                shown.form_error =
                    Some("Some conditions are not valid; see the messages next to them.".into());
                status = StatusCode::UNPROCESSABLE_ENTITY;
            } else {
                let xml = editor.to_fetchxml(&entity_name);
                let notice = if xml.is_some() {
                    "filter-saved"
                } else {
                    "filter-removed"
                };
                match store(&state, &admin, &ctx, xml).await {
                    Ok(()) => return Ok(redirect(&admin, &entity_name, notice)),
                    Err(message) => {
                        shown.form_error = Some(message);
                        status = StatusCode::UNPROCESSABLE_ENTITY;
                    }
                }
            }
        }
        "clear" => match store(&state, &admin, &ctx, None).await {
            Ok(()) => return Ok(redirect(&admin, &entity_name, "filter-removed")),
            Err(message) => {
                shown.form_error = Some(message);
                status = StatusCode::UNPROCESSABLE_ENTITY;
            }
        },
        "xml-load" => match from_fetchxml(&typed_xml) {
            Ok((name, e)) if name == entity_name => editor = e,
            Ok((name, _)) => {
                shown.xml_error = Some(format!(
                    "This is the filter of {entity_name}; the FetchXML queries {name}."
                ))
            }
            Err(why) => shown.xml_error = Some(why),
        },
        "xml-save" => {
            let checked = match parse_fetchxml(&typed_xml, &ctx.server) {
                Ok(q) if q.entity.as_str() == entity_name => Ok(()),
                Ok(q) => Err(format!(
                    "This is the filter of {entity_name}; the FetchXML queries {}.",
                    q.entity
                )),
                Err(e) => Err(e.to_string()),
            };
            let saved = match checked {
                Ok(()) => store(&state, &admin, &ctx, Some(typed_xml.clone())).await,
                Err(message) => Err(message),
            };
            match saved {
                Ok(()) => return Ok(redirect(&admin, &entity_name, "filter-saved")),
                Err(message) => shown.xml_error = Some(message),
            }
        }
        "refresh" => {}
        other => {
            if !edit(&mut editor, &ctx, other) {
                shown.form_error = Some("That row no longer exists; the editor was reloaded.".into());
            }
        }
    }
    match shown.xml_error {
        Some(_) => {
            shown.xml = typed_xml;
            status = StatusCode::UNPROCESSABLE_ENTITY;
        }
        None => shown.xml = editor.to_fetchxml(&entity_name).unwrap_or_default(),
    }
    shown.editor = editor;
    // htmx swaps only successful answers: its re-renders are always 200.
    if headers.contains_key("hx-request") {
        status = StatusCode::OK;
    }
    Ok(render_page(&ctx, &admin, shown, status, None))
}
