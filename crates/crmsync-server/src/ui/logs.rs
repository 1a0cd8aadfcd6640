//! Logs of synchronization (SPEC §7): the runs, newest first, filtered by status and paged;
//! and one run: its per-entity figures, metadata changes and messages (paged, filtered by
//! level). The same stored logs as the webservice's `GET logs` (`crmsync_sync::logs`).

use askama::Template;
use axum::extract::{Path, Query};
use axum::response::Response;
use crmsync_sync::{EntityFigures, Level, RunLog, RunStatus, Trigger};
use serde::Deserialize;

use super::pages::{Chrome, Paged, Section, UiError, ok};
use super::session::Admin;

const RUNS_PER_PAGE: usize = 25;
const MESSAGES_PER_PAGE: usize = 50;
/// Most runs read for the list (older ones stay stored until the retention removes them).
const MAX_RUNS: usize = 5000;

/// A run as a row of the list.
pub struct RunRow {
    pub id: String,
    pub started: String,
    pub duration: String,
    pub trigger: &'static str,
    pub status: &'static str,
    pub status_class: &'static str,
    pub totals: EntityFigures,
}

fn status_label(s: RunStatus) -> (&'static str, &'static str) {
    match s {
        RunStatus::Running => ("Running", "running"),
        RunStatus::Succeeded => ("Succeeded", "ok"),
        RunStatus::PartiallySucceeded => ("Partially succeeded", "warn"),
        RunStatus::Failed => ("Failed", "bad"),
    }
}

fn trigger_label(t: Trigger) -> &'static str {
    match t {
        Trigger::Manual => "Sync All",
        Trigger::Job => "Sync Job",
        Trigger::Webservice => "Webservice",
        Trigger::Connect => "Connect",
    }
}

impl RunRow {
    pub fn of(r: &RunLog) -> Self {
        let (status, status_class) = status_label(r.status);
        let duration = match r.ended {
            Some(end) => {
                let ms = (end - r.started).num_milliseconds().max(0);
                if ms < 10_000 {
                    format!("{:.1} s", ms as f64 / 1000.0)
                } else {
                    format!("{} s", ms / 1000)
                }
            }
            None => "—".into(),
        };
        RunRow {
            id: r.id.to_string(),
            started: r.started.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            duration,
            trigger: trigger_label(r.trigger),
            status,
            status_class,
            totals: r.totals(),
        }
    }
}

/// The status filter of the list.
pub const STATUS_FILTERS: [(&str, &str); 4] = [
    ("all", "All"),
    ("succeeded", "Succeeded"),
    ("partial", "Partially succeeded"),
    ("failed", "Failed"),
];

fn keep(filter: &str, s: RunStatus) -> bool {
    match filter {
        "succeeded" => s == RunStatus::Succeeded,
        "partial" => s == RunStatus::PartiallySucceeded,
        "failed" => s == RunStatus::Failed,
        _ => true,
    }
}

#[derive(Deserialize)]
pub struct LogsQuery {
    status: Option<String>,
    page: Option<usize>,
}

#[derive(Template)]
#[template(path = "ui/logs.html")]
struct LogsPage {
    chrome: Chrome,
    status: String,
    filters: Vec<(&'static str, &'static str)>,
    table: Paged<RunRow>,
    base: String,
}

/// `GET /admin/{org}/sync/logs?status=&page=`
pub async fn list(admin: Admin, Query(q): Query<LogsQuery>) -> Result<Response, UiError> {
    let status = q
        .status
        .filter(|s| STATUS_FILTERS.iter().any(|(k, _)| k == s))
        .unwrap_or_else(|| "all".into());
    let runs: Vec<RunRow> = crmsync_sync::logs(&*admin.caller.store, MAX_RUNS)
        .await?
        .iter()
        .filter(|r| keep(&status, r.status))
        .map(RunRow::of)
        .collect();
    Ok(ok(&LogsPage {
        chrome: Chrome::org(&admin, Section::Logs, "Logs of synchronization"),
        table: Paged::of(
            runs,
            q.page.unwrap_or(1),
            RUNS_PER_PAGE,
            format!("status={status}&"),
        ),
        status,
        filters: STATUS_FILTERS.to_vec(),
        base: format!("/admin/{}/sync/logs", admin.caller.org),
    }))
}

pub struct MessageRow {
    pub time: String,
    pub level: &'static str,
    pub entity: String,
    pub record: String,
    pub text: String,
}

#[derive(Deserialize)]
pub struct RunQuery {
    level: Option<String>,
    page: Option<usize>,
}

#[derive(Template)]
#[template(path = "ui/run.html")]
struct RunPage {
    chrome: Chrome,
    run: RunRow,
    entities: Vec<EntityFigures>,
    metadata_changes: Vec<String>,
    level: String,
    messages: Paged<MessageRow>,
    dropped: u64,
    base: String,
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Error => "error",
    }
}

/// `GET /admin/{org}/sync/logs/{run}?level=&page=`
pub async fn run(
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<RunQuery>,
) -> Result<Response, UiError> {
    let found = crmsync_sync::logs(&*admin.caller.store, usize::MAX)
        .await?
        .into_iter()
        .find(|r| r.id.to_string() == id)
        .ok_or_else(|| {
            UiError::not_found(format!("There is no sync run {id} in this organization's logs."))
        })?;
    let level = q
        .level
        .filter(|l| ["info", "warning", "error"].contains(&l.as_str()))
        .unwrap_or_else(|| "all".into());
    let messages: Vec<MessageRow> = found
        .messages
        .iter()
        .filter(|m| level == "all" || level_name(m.level) == level)
        .map(|m| MessageRow {
            time: m.time.format("%H:%M:%S").to_string(),
            level: level_name(m.level),
            entity: m.entity.clone().unwrap_or_default(),
            record: m.record_id.map(|r| r.to_string()).unwrap_or_default(),
            text: m.text.clone(),
        })
        .collect();
    let run = RunRow::of(&found);
    Ok(ok(&RunPage {
        base: format!("/admin/{}/sync/logs/{}", admin.caller.org, run.id),
        chrome: Chrome::org(&admin, Section::Logs, format!("Sync run of {}", run.started)),
        run,
        entities: found.entities.clone(),
        metadata_changes: found.metadata_changes.clone(),
        messages: Paged::of(
            messages,
            q.page.unwrap_or(1),
            MESSAGES_PER_PAGE,
            format!("level={level}&"),
        ),
        level,
        dropped: found.messages_dropped,
    }))
}
