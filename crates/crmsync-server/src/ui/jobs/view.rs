//! What the Sync Job screens show of a process and of its executions, in words.

use chrono::{DateTime, Utc};
use crmsync_sync::process::{Execution, Process};

use super::form::describe;

pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An execution's status as a label and the class of its badge.
fn status(s: &str) -> (&'static str, &'static str) {
    match s {
        "Succeeded" => ("Succeeded", "ok"),
        "PartiallySucceeded" => ("Partially succeeded", "warn"),
        "Failed" => ("Failed", "bad"),
        _ => ("Unknown", "warn"),
    }
}

/// One execution, as a row of the history (and as the last result of a process).
pub struct ExecutionRow {
    pub started: String,
    pub duration: String,
    pub status: &'static str,
    pub status_class: &'static str,
    /// The sync run it made, for the link to its log.
    pub run_id: Option<String>,
    pub error: String,
}

impl ExecutionRow {
    pub fn of(e: &Execution) -> Self {
        let (status, status_class) = status(&e.status);
        let ms = (e.ended - e.started).num_milliseconds().max(0);
        ExecutionRow {
            started: time(e.started),
            duration: if ms < 10_000 {
                format!("{:.1} s", ms as f64 / 1000.0)
            } else {
                format!("{} s", ms / 1000)
            },
            status,
            status_class,
            run_id: e.run_id.map(|r| r.to_string()),
            error: e.error.clone().unwrap_or_default(),
        }
    }
}

/// A process as the screens show it.
pub struct JobView {
    pub id: String,
    pub name: String,
    pub frequency: String,
    pub published: bool,
    pub activated: bool,
    /// `Not scheduled (draft)`, `2030-01-01 10:15:00 UTC`, `Now (queued)`…
    pub next_run: String,
    /// A run is due or under way: the page refreshes its status until it ends.
    pub due: bool,
    /// `All enabled entities`, or the step's entities.
    pub entities: String,
    pub failures: u32,
    pub last_error: String,
    pub last: Option<ExecutionRow>,
    pub created: String,
    pub modified: String,
}

impl JobView {
    pub fn of(p: &Process, last: Option<&Execution>, now: DateTime<Utc>) -> Self {
        let due = p.is_active() && p.next_run.is_some_and(|t| t <= now);
        let next_run = match (p.published, p.activated, p.next_run) {
            (false, _, _) => "Not scheduled (draft)".to_owned(),
            (true, false, _) => "Not scheduled (deactivated)".to_owned(),
            (true, true, Some(_)) if due => "Now (queued or running)".to_owned(),
            (true, true, Some(t)) => time(t),
            (true, true, None) => "—".to_owned(),
        };
        let entities = p.entities();
        JobView {
            id: p.id.to_string(),
            name: p.name.clone(),
            frequency: describe(&p.frequency),
            published: p.published,
            activated: p.activated,
            next_run,
            due,
            entities: if entities.is_empty() {
                "All enabled entities".to_owned()
            } else {
                entities.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
            },
            failures: p.consecutive_failures,
            last_error: p.last_error.clone().unwrap_or_default(),
            last: last.map(ExecutionRow::of),
            created: time(p.created),
            modified: time(p.modified),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use crmsync_sync::process::ProcessInput;

    #[test]
    fn the_next_run_says_why_there_is_none() {
        let t0 = Utc.with_ymd_and_hms(2030, 1, 1, 10, 0, 0).unwrap();
        let input: ProcessInput =
            serde_json::from_str(r#"{"name":"J","frequency":{"every":15,"unit":"minutes"}}"#).unwrap();
        let mut p = Process::create(input, t0).unwrap();
        assert_eq!(JobView::of(&p, None, t0).next_run, "Not scheduled (draft)");
        p.update(serde_json::from_str(r#"{"published":true}"#).unwrap(), t0)
            .unwrap();
        assert_eq!(JobView::of(&p, None, t0).next_run, "Not scheduled (deactivated)");
        p.update(serde_json::from_str(r#"{"activated":true}"#).unwrap(), t0)
            .unwrap();
        let view = JobView::of(&p, None, t0);
        assert_eq!(
            (view.next_run.as_str(), view.due),
            ("2030-01-01 10:15:00 UTC", false)
        );
        let later = JobView::of(&p, None, t0 + Duration::minutes(20));
        assert_eq!(
            (later.next_run.as_str(), later.due),
            ("Now (queued or running)", true)
        );
        assert_eq!(later.entities, "All enabled entities");
    }
}
