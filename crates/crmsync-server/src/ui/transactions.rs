//! The Offline transactions tab: the `migrate_transaction` queue of this (Client) org by
//! status, 50 per page in queue order, with the error text of each failed transaction, and
//! the administrator's transitions (Set to Pending, Set to Archived, Set all to Pending).
//!
//! The store does the paging (`crmsync_sync::transactions::list`), so a queue of any length
//! costs one page of rows per view. The transitions are the webservice's
//! (`transactions::set_status`, `set_all_pending`): all the selected transactions change or
//! none, and a refusal (Processed is final, an id that is gone, nothing selected) is shown
//! above the table, with the selection kept, instead of a change.

use askama::Template;
use axum::Form;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use crmsync_model::RecordId;
use crmsync_sync::SyncError;
use crmsync_sync::transactions::{self, Transaction, TxStatus};
use serde::Deserialize;
use serde_json::Value as Json;

use super::pages::{Chrome, Paged, Section, UiError, render, see_other};
use super::session::Admin;

const PAGE_SIZE: usize = 50;
/// Attributes named in the short summary of a transaction's changes.
const SUMMARY_ATTRIBUTES: usize = 3;
/// Characters of one value in the summary.
const SUMMARY_VALUE_CHARS: usize = 40;

/// A status tab: its key in the URL, its label, how many transactions it holds.
pub struct Tab {
    pub key: &'static str,
    pub label: &'static str,
    pub count: u64,
}

/// A transaction as a row of the table.
pub struct TxRow {
    pub id: String,
    pub operation: &'static str,
    pub entity: String,
    pub record_id: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// `name = "Contoso", revenue = 5000 and 2 more`.
    pub summary: String,
    /// The whole `changes` JSON, when the summary leaves something out.
    pub full_changes: Option<String>,
    pub created: String,
    pub processed: String,
    /// Whether the row can be selected (Processed is final).
    pub selectable: bool,
    pub selected: bool,
}

fn status_class(s: TxStatus) -> &'static str {
    match s {
        TxStatus::Pending => "running",
        TxStatus::Processed => "ok",
        TxStatus::Error => "bad",
        TxStatus::Archived => "warn",
    }
}

fn clip(s: &str, max: usize) -> (String, bool) {
    match s.char_indices().nth(max) {
        Some((at, _)) => (format!("{}…", &s[..at]), true),
        None => (s.to_owned(), false),
    }
}

/// A short summary of a `changes` object, and whether it left anything out.
pub fn summarize(changes: &serde_json::Map<String, Json>) -> (String, bool) {
    let mut clipped = changes.len() > SUMMARY_ATTRIBUTES;
    let mut parts: Vec<String> = changes
        .iter()
        .take(SUMMARY_ATTRIBUTES)
        .map(|(name, value)| {
            let text = match value {
                Json::Null => "empty".to_owned(),
                Json::String(s) => format!("\"{s}\""),
                other => other.to_string(),
            };
            let (text, cut) = clip(&text, SUMMARY_VALUE_CHARS);
            clipped |= cut;
            format!("{name} = {text}")
        })
        .collect();
    if changes.len() > SUMMARY_ATTRIBUTES {
        parts.push(format!("and {} more", changes.len() - SUMMARY_ATTRIBUTES));
    }
    (parts.join(", "), clipped)
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

impl TxRow {
    fn of(t: &Transaction, selected: &[String]) -> Self {
        let (summary, clipped) = summarize(&t.changes);
        let id = t.id.to_string();
        TxRow {
            operation: t.operation.label(),
            entity: t.entity.clone(),
            record_id: t.record_id.to_string(),
            status: t.status.label(),
            status_class: status_class(t.status),
            attempts: t.attempts,
            last_error: t.last_error.clone().filter(|e| !e.trim().is_empty()),
            summary: if summary.is_empty() { "—".into() } else { summary },
            full_changes: clipped.then(|| serde_json::to_string_pretty(&t.changes).unwrap_or_default()),
            created: time(t.created_on),
            processed: time(t.processed_on),
            selectable: t.status != TxStatus::Processed,
            selected: selected.contains(&id),
            id,
        }
    }
}

#[derive(Template)]
#[template(path = "ui/transactions.html")]
struct TransactionsPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    status: &'static str,
    table: Paged<TxRow>,
    /// Rows of this page that can be selected, and whether all of them are.
    selectable: usize,
    all_selected: bool,
    error: Option<String>,
    base: String,
}

#[derive(Default, Deserialize)]
pub struct TxQuery {
    status: Option<String>,
    page: Option<usize>,
    notice: Option<String>,
}

/// `all` or a status, from the URL or the form (anything else: `all`).
fn tab_status(key: Option<&str>) -> (&'static str, Option<TxStatus>) {
    match key.and_then(TxStatus::parse) {
        Some(s) => (key_of(s), Some(s)),
        None => ("all", None),
    }
}

fn key_of(s: TxStatus) -> &'static str {
    match s {
        TxStatus::Pending => "pending",
        TxStatus::Processed => "processed",
        TxStatus::Error => "error",
        TxStatus::Archived => "archived",
    }
}

async fn tabs(admin: &Admin) -> Result<Vec<Tab>, UiError> {
    let counts = transactions::counts(&*admin.caller.store).await?;
    let mut tabs = vec![Tab {
        key: "all",
        label: "All",
        count: counts.values().sum(),
    }];
    tabs.extend(TxStatus::ALL.into_iter().map(|s| Tab {
        key: key_of(s),
        label: s.label(),
        count: counts.get(s.label()).copied().unwrap_or(0),
    }));
    Ok(tabs)
}

/// What the page shows: which tab, which page, what was selected, what went wrong.
struct View<'a> {
    status: Option<&'a str>,
    page: Option<usize>,
    selected: &'a [String],
    error: Option<String>,
    notice: Option<&'a str>,
}

async fn page(admin: &Admin, view: View<'_>, code: StatusCode) -> Result<Response, UiError> {
    let (key, status) = tab_status(view.status);
    let tabs = tabs(admin).await?;
    let total = tabs.iter().find(|t| t.key == key).map_or(0, |t| t.count) as usize;
    let page = view
        .page
        .unwrap_or(1)
        .clamp(1, Paged::<TxRow>::last_page(total, PAGE_SIZE));
    let skip = ((page - 1) * PAGE_SIZE) as u64;
    let listed = transactions::list(&*admin.caller.store, status, PAGE_SIZE, skip).await?;
    let rows: Vec<TxRow> = listed
        .transactions
        .iter()
        .map(|t| TxRow::of(t, view.selected))
        .collect();
    let selectable = rows.iter().filter(|r| r.selectable).count();
    let all_selected = selectable > 0 && rows.iter().all(|r| r.selected || !r.selectable);
    let title = "Offline transactions";
    Ok(render(
        code,
        &TransactionsPage {
            chrome: Chrome::org(admin, Section::Transactions, title).with_notice(view.notice),
            table: Paged::window(
                rows,
                page,
                PAGE_SIZE,
                listed.total as usize,
                format!("status={key}&"),
            ),
            tabs,
            status: key,
            selectable,
            all_selected,
            error: view.error,
            base: format!("/admin/{}/sync/transactions", admin.caller.org),
        },
    ))
}

/// `GET /admin/{org}/sync/transactions?status=&page=`
pub async fn show(admin: Admin, Query(q): Query<TxQuery>) -> Result<Response, UiError> {
    let view = View {
        status: q.status.as_deref(),
        page: q.page,
        selected: &[],
        error: None,
        notice: q.notice.as_deref(),
    };
    page(&admin, view, StatusCode::OK).await
}

/// What a refusal says, and the status of the page that says it.
fn refusal(e: SyncError) -> Result<(StatusCode, String), UiError> {
    Ok(match e {
        SyncError::Conflict(m) => (StatusCode::CONFLICT, format!("Nothing was changed: {m}.")),
        SyncError::NotFound(m) => (
            StatusCode::NOT_FOUND,
            format!("Nothing was changed: {m} (reload the page to see the queue as it is now)."),
        ),
        SyncError::Invalid(m) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Nothing was changed: {m}."),
        ),
        other => return Err(other.into()),
    })
}

/// The transactions a form selects: the checked `id`s, or with `all=page` (the header's box)
/// every selectable row the page showed (`shown`).
fn selection(fields: &[(String, String)]) -> Vec<String> {
    let all = fields.iter().any(|(k, v)| k == "all" && v == "page");
    let key = if all { "shown" } else { "id" };
    let mut selected: Vec<String> = Vec::new();
    for (_, v) in fields.iter().filter(|(k, _)| k == key) {
        if !selected.contains(v) {
            selected.push(v.clone());
        }
    }
    selected
}

/// `POST /admin/{org}/sync/transactions`: `action` is `pending`, `archive` (the selected
/// transactions, see [`selection`]) or `all-pending`; `status` and `page` say where to come
/// back to.
pub async fn act(admin: Admin, Form(fields): Form<Vec<(String, String)>>) -> Result<Response, UiError> {
    let field = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let selected = selection(&fields);
    let back_page = field("page").and_then(|p| p.parse().ok());
    let (key, _) = tab_status(field("status"));
    let refused = |error: String, code: StatusCode| {
        let view = View {
            status: Some(key),
            page: back_page,
            selected: &selected,
            error: Some(error),
            notice: None,
        };
        page(&admin, view, code)
    };
    let store = &*admin.caller.store;
    let (to, notice) = match field("action") {
        Some("pending") => (TxStatus::Pending, "set-pending"),
        Some("archive") => (TxStatus::Archived, "archived"),
        Some("all-pending") => {
            let changed = transactions::set_all_pending(store).await?;
            let notice = if changed == 0 {
                "none-in-error"
            } else {
                "all-pending"
            };
            return Ok(back(&admin, key, back_page, notice));
        }
        _ => {
            let message = "Choose Set to Pending, Set to Archived or Set all to Pending.".to_owned();
            return refused(message, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let ids = match selected_ids(&selected, to) {
        Ok(ids) => ids,
        Err(message) => return refused(message, StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    match transactions::set_status(store, &ids, to).await {
        Ok(_) => Ok(back(&admin, key, back_page, notice)),
        Err(e) => {
            let (code, message) = refusal(e)?;
            refused(message, code).await
        }
    }
}

/// The checked transactions' ids, or why there is nothing to change.
fn selected_ids(selected: &[String], to: TxStatus) -> Result<Vec<RecordId>, String> {
    if selected.is_empty() {
        return Err(format!(
            "Nothing was changed: select the transactions to set to {} first (the boxes in the first column).",
            to.label()
        ));
    }
    selected
        .iter()
        .map(|id| {
            RecordId::parse(id).map_err(|_| format!("Nothing was changed: '{id}' is not a transaction id."))
        })
        .collect()
}

fn back(admin: &Admin, key: &str, page: Option<usize>, notice: &str) -> Response {
    let mut query = vec![("status", key.to_owned())];
    if let Some(p) = page.filter(|p| *p > 1) {
        query.push(("page", p.to_string()));
    }
    query.push(("notice", notice.to_owned()));
    see_other(&format!(
        "/admin/{}/sync/transactions?{}",
        admin.caller.org,
        serde_urlencoded::to_string(query).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_a_few_attributes_and_clip_long_values() {
        let changes = |v: Json| v.as_object().unwrap().clone();
        assert_eq!(
            summarize(&changes(serde_json::json!({"name": "Contoso", "revenue": 5000}))),
            (r#"name = "Contoso", revenue = 5000"#.to_owned(), false)
        );
        let (text, clipped) = summarize(&changes(serde_json::json!({
            "a": null, "b": true, "c": "x".repeat(60), "d": 1, "e": 2
        })));
        assert!(clipped);
        assert!(text.starts_with("a = empty, b = true, c = \"xxx"), "{text}");
        assert!(text.contains("…, and 2 more"), "{text}");
        assert_eq!(summarize(&serde_json::Map::new()), (String::new(), false));
        assert_eq!(clip("éééé", 2), ("éé…".to_owned(), true));
    }

    #[test]
    fn the_header_box_selects_every_row_the_page_showed() {
        let fields = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let shown = [("shown", "a"), ("id", "a"), ("shown", "b"), ("shown", "c")];
        assert_eq!(selection(&fields(&shown)), ["a"]);
        let mut all = shown.to_vec();
        all.push(("all", "page"));
        assert_eq!(selection(&fields(&all)), ["a", "b", "c"]);
        assert!(selection(&fields(&[("all", "page")])).is_empty());
    }

    #[test]
    fn unknown_tabs_show_everything() {
        assert_eq!(tab_status(Some("Error")), ("error", Some(TxStatus::Error)));
        assert_eq!(tab_status(Some("all")), ("all", None));
        assert_eq!(tab_status(Some("bogus")), ("all", None));
        assert_eq!(tab_status(None), ("all", None));
    }
}
