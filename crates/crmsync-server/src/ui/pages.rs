//! What every page shares: the layout's data ([`Chrome`]), rendering, the error page
//! ([`UiError`]), notices after a redirect, and paging of long tables.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::session::Admin;
use crate::ApiError;

/// The sections of the CRM Sync navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Connector,
    Entities,
    Metadata,
    SyncAll,
    Transactions,
    Logs,
    Jobs,
}

impl Section {
    pub const NAV: [(Section, &'static str, &'static str); 7] = [
        (Section::Connector, "connector", "Connector"),
        (Section::Entities, "entities", "Entities"),
        (Section::Metadata, "metadata", "Update metadata"),
        (Section::SyncAll, "run", "Sync All"),
        (Section::Transactions, "transactions", "Offline transactions"),
        (Section::Logs, "logs", "Logs"),
        (Section::Jobs, "jobs", "Sync Jobs"),
    ];
}

/// A navigation link of the layout.
pub struct NavLink {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

/// The layout's data: who is signed in where, the CSRF token of the page's forms, the nav.
pub struct Chrome {
    pub title: String,
    pub org: Option<String>,
    pub user: Option<String>,
    pub csrf: String,
    pub nav: Vec<NavLink>,
    /// A confirmation shown once after a redirect (`?notice=`).
    pub notice: Option<&'static str>,
}

impl Chrome {
    /// The chrome of a page of the CRM Sync section.
    pub fn org(admin: &Admin, section: Section, title: impl Into<String>) -> Self {
        let org = admin.caller.org.to_string();
        let nav = Section::NAV
            .iter()
            .map(|(s, path, label)| NavLink {
                href: format!("/admin/{org}/sync/{path}"),
                label,
                current: *s == section,
            })
            .collect();
        Chrome {
            title: title.into(),
            user: Some(admin.caller.user.name.clone()),
            org: Some(org),
            csrf: admin.csrf.clone(),
            nav,
            notice: None,
        }
    }

    /// The chrome of a page outside any org.
    pub fn public(title: impl Into<String>, csrf: String) -> Self {
        Chrome {
            title: title.into(),
            org: None,
            user: None,
            csrf,
            nav: Vec::new(),
            notice: None,
        }
    }

    pub fn with_notice(mut self, notice: Option<&str>) -> Self {
        self.notice = notice.and_then(notice_text);
        self
    }
}

/// The confirmations a redirect may ask for; unknown keys show nothing.
fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "connected" => "Connected: the server was checked and the metadata of the synced entities updated.",
        "registered" => {
            "Your organization was created and connected. You are signed in as its administrator."
        }
        "entities-saved" => "The list of synced entities was saved.",
        "filter-saved" => "The sync filter was saved. The next sync applies it.",
        "filter-removed" => "The sync filter was removed: the entity syncs all its records.",
        "metadata-applied" => "The metadata update was applied to this organization.",
        "settings-saved" => "The sync settings were saved.",
        "set-pending" => "The selected transactions were set to Pending: the next sync uploads them.",
        "archived" => {
            "The selected transactions were archived: they are never sent, and the next sync reads \
             their records from the server again."
        }
        "all-pending" => "Every transaction in Error was set to Pending: the next sync uploads them.",
        "none-in-error" => "No transaction is in Error: nothing was changed.",
        "job-created" => {
            "The Sync Job was created as a draft. Publish it, then activate it to run it on its schedule."
        }
        "job-saved" => "The Sync Job was saved.",
        "job-published" => "The Sync Job was published. Activate it to run it on its schedule.",
        "job-unpublished" => "The Sync Job is a draft again.",
        "job-activated" => "The Sync Job is activated: it runs on its schedule (next run below).",
        "job-deactivated" => "The Sync Job is deactivated: it does not run until it is activated again.",
        "job-run-queued" => "A run of the Sync Job was queued now. It appears in the history when it ends.",
        "job-deleted" => "The Sync Job and its history were deleted.",
        _ => return None,
    })
}

/// Renders a template as an HTML page with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; \
                     form-action 'self'; base-uri 'none'",
                ),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            response
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

pub fn ok(template: &impl Template) -> Response {
    render(StatusCode::OK, template)
}

/// A redirect after a successful POST (303: the browser follows with GET).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage {
    chrome: Chrome,
    message: String,
    back: Option<String>,
}

/// Why a UI request did not produce its page.
#[derive(Debug)]
pub enum UiError {
    /// Not signed in (or not as an admin of this org): go to the sign-in page.
    SignIn { org: String, next: String },
    /// An org page that needs a connection, in an org without one.
    NotConnected { org: String },
    /// A page explaining what went wrong.
    Page {
        status: StatusCode,
        title: String,
        message: String,
    },
}

impl UiError {
    pub fn not_found(message: impl Into<String>) -> Self {
        UiError::Page {
            status: StatusCode::NOT_FOUND,
            title: "Not found".into(),
            message: message.into(),
        }
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        let title = match e.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_GATEWAY => "The server organization did not answer as expected",
            StatusCode::BAD_REQUEST => "This cannot be done",
            s if s.is_server_error() => "Something went wrong on this server",
            _ => "This cannot be done",
        };
        UiError::Page {
            status: e.status,
            title: title.into(),
            message: e.message,
        }
    }
}

impl From<crmsync_store::StoreError> for UiError {
    fn from(e: crmsync_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<crmsync_sync::SyncError> for UiError {
    fn from(e: crmsync_sync::SyncError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::SignIn { org, next } => {
                let query = serde_urlencoded::to_string([("org", org.as_str()), ("next", next.as_str())])
                    .unwrap_or_default();
                see_other(&format!("/admin/signin?{query}"))
            }
            UiError::NotConnected { org } => render(
                StatusCode::CONFLICT,
                &ErrorPage {
                    chrome: Chrome::public("Not connected yet", String::new()),
                    message: "This organization is not connected to a server organization yet. \
                              Connect it on the Connector screen first."
                        .into(),
                    back: Some(format!("/admin/{org}/sync/connector")),
                },
            ),
            UiError::Page {
                status,
                title,
                message,
            } => render(
                status,
                &ErrorPage {
                    chrome: Chrome::public(title, String::new()),
                    message,
                    back: None,
                },
            ),
        }
    }
}

/// The connection of the admin's org, or the page saying there is none yet.
pub async fn connection(admin: &Admin) -> Result<crmsync_sync::Connection, UiError> {
    crmsync_sync::Connection::load(&*admin.caller.store)
        .await?
        .ok_or_else(|| UiError::NotConnected {
            org: admin.caller.org.to_string(),
        })
}

/// One page of a long table.
pub struct Paged<T> {
    pub rows: Vec<T>,
    /// 1-based.
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    /// The query string of the other pages without `page` (`status=failed&`), already encoded.
    pub query: String,
}

impl<T> Paged<T> {
    /// Page `page` (1-based, clamped) of `rows`, `size` rows per page.
    pub fn of(rows: Vec<T>, page: usize, size: usize, query: String) -> Self {
        let total = rows.len();
        let pages = total.div_ceil(size).max(1);
        let page = page.clamp(1, pages);
        let rows = rows.into_iter().skip((page - 1) * size).take(size).collect();
        Paged {
            rows,
            page,
            pages,
            total,
            query,
        }
    }

    /// Page `page` (1-based, already clamped) of `total` rows when the store did the paging:
    /// `rows` is that page only.
    pub fn window(rows: Vec<T>, page: usize, size: usize, total: usize, query: String) -> Self {
        Paged {
            rows,
            page,
            pages: total.div_ceil(size).max(1),
            total,
            query,
        }
    }

    /// The last page of `total` rows, `size` per page (the clamp for store-side paging).
    pub fn last_page(total: usize, size: usize) -> usize {
        total.div_ceil(size).max(1)
    }

    pub fn prev(&self) -> Option<usize> {
        (self.page > 1).then(|| self.page - 1)
    }

    pub fn next(&self) -> Option<usize> {
        (self.page < self.pages).then(|| self.page + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_clamped_and_know_their_neighbours() {
        let p = Paged::of((1..=55).collect::<Vec<_>>(), 3, 25, String::new());
        assert_eq!(
            (p.rows.as_slice(), p.pages, p.total),
            (&[51, 52, 53, 54, 55][..], 3, 55)
        );
        assert_eq!((p.prev(), p.next()), (Some(2), None));
        let p = Paged::of((1..=55).collect::<Vec<_>>(), 0, 25, String::new());
        assert_eq!((p.page, p.rows[0], p.prev(), p.next()), (1, 1, None, Some(2)));
        let empty = Paged::of(Vec::<u8>::new(), 9, 25, String::new());
        assert_eq!((empty.page, empty.pages, empty.rows.len()), (1, 1, 0));
    }
}
