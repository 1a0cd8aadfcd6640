//! Processes of an organization (SPEC §2): a Sync Job is a process of category `Job` with a
//! frequency and steps; the step function `SyncService` runs a sync (of some entities only,
//! if it names them).
//!
//! Rules (pure, in [`Process::create`] and [`Process::update`]):
//! - a process starts as a draft unless asked otherwise; only a published process can be
//!   activated, and an activated one must be deactivated before it goes back to draft;
//! - a process runs on its schedule only while published and activated: then `next_run` is
//!   the first slot of its frequency after now, otherwise `None`;
//! - every step calls a known function (`SyncService`), with at least one step.
//!
//! Scheduling (`schedule.rs`): an active process has one queued `sync-job` work item for its
//! next run; a finished run records an [`Execution`] and queues the next one.
//!
//! Storage (`store.rs`): processes live in their org's store as state entries
//! (`sync.process.{id}` and `sync.process-history.{id}.{started}`), next to the connection, so
//! they go with the org and need no schema of their own on either backend. Running them is the
//! scheduler's business (a durable work item per due run, in the catalog's work queue).

mod frequency;
pub mod schedule;
mod store;

use chrono::{DateTime, Utc};
use crmsync_model::EntityName;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use frequency::{Frequency, Unit};
pub use schedule::SYNC_JOB_KIND;
pub use store::{delete, execution_write, history, list, load, modify};

use crate::SyncError;

/// The one step function: a sync run of the org's connection.
pub const SYNC_SERVICE: &str = "SyncService";
const MAX_NAME_LEN: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Category {
    Job,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    pub function: String,
    /// Entities to sync; empty means every enabled entity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<EntityName>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub id: Uuid,
    pub name: String,
    pub category: Category,
    pub frequency: Frequency,
    pub steps: Vec<Step>,
    pub published: bool,
    pub activated: bool,
    /// When it runs next; `None` unless published and activated.
    pub next_run: Option<DateTime<Utc>>,
    /// The queued work item that will make that run (set by the scheduler).
    #[serde(default)]
    pub scheduled_work: Option<Uuid>,
    /// Failed runs in a row (retries included); 0 after a run that succeeded.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The error of the last failed run, until a run succeeds.
    #[serde(default)]
    pub last_error: Option<String>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
}

/// Fields of a create or an update; absent fields keep their value (or their default on create).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessInput {
    pub name: Option<String>,
    pub category: Option<Category>,
    pub frequency: Option<Frequency>,
    pub steps: Option<Vec<Step>>,
    pub published: Option<bool>,
    pub activated: Option<bool>,
}

/// One execution of a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub process: Uuid,
    /// The work item that ran it.
    pub work: Uuid,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    /// `Succeeded`, `PartiallySucceeded` or `Failed`.
    pub status: String,
    /// The sync run it made, when it got that far.
    pub run_id: Option<Uuid>,
    pub error: Option<String>,
}

impl Process {
    pub fn create(input: ProcessInput, now: DateTime<Utc>) -> Result<Process, SyncError> {
        let mut process = Process {
            id: Uuid::new_v4(),
            name: String::new(),
            category: Category::Job,
            frequency: input
                .frequency
                .clone()
                .ok_or_else(|| SyncError::Invalid("a process needs a frequency".into()))?,
            steps: vec![Step {
                function: SYNC_SERVICE.into(),
                entities: Vec::new(),
            }],
            published: false,
            activated: false,
            next_run: None,
            scheduled_work: None,
            consecutive_failures: 0,
            last_error: None,
            created: now,
            modified: now,
        };
        if input.name.is_none() {
            return Err(SyncError::Invalid("a process needs a name".into()));
        }
        process.update(input, now)?;
        Ok(process)
    }

    /// Applies an update, checking every rule; on error the process is unchanged.
    pub fn update(&mut self, input: ProcessInput, now: DateTime<Utc>) -> Result<(), SyncError> {
        let mut next = self.clone();
        if let Some(name) = input.name {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
                return Err(SyncError::Invalid(format!(
                    "a process name has 1 to {MAX_NAME_LEN} characters"
                )));
            }
            next.name = name.to_owned();
        }
        if let Some(category) = input.category {
            next.category = category;
        }
        if let Some(frequency) = input.frequency {
            frequency.validate()?;
            next.frequency = frequency;
        }
        if let Some(steps) = input.steps {
            check_steps(&steps)?;
            next.steps = steps;
        }
        if let Some(published) = input.published {
            next.published = published;
        }
        if let Some(activated) = input.activated {
            next.activated = activated;
        }
        if next.activated && !next.published {
            return Err(SyncError::Invalid(if self.activated {
                format!(
                    "process '{}' is activated: deactivate it before returning it to draft",
                    next.name
                )
            } else {
                format!(
                    "process '{}' is a draft: publish it before activating it",
                    next.name
                )
            }));
        }
        next.next_run = if next.published && next.activated {
            Some(next.frequency.next_after(next.created, now)?)
        } else {
            None
        };
        next.modified = now;
        *self = next;
        Ok(())
    }

    /// Whether the process runs on its schedule.
    pub fn is_active(&self) -> bool {
        self.published && self.activated
    }

    /// The entities its steps sync; empty means every enabled entity.
    pub fn entities(&self) -> Vec<EntityName> {
        let mut entities: Vec<EntityName> = Vec::new();
        for step in &self.steps {
            if step.entities.is_empty() {
                return Vec::new();
            }
            for e in &step.entities {
                if !entities.contains(e) {
                    entities.push(e.clone());
                }
            }
        }
        entities
    }
}

fn check_steps(steps: &[Step]) -> Result<(), SyncError> {
    if steps.is_empty() {
        return Err(SyncError::Invalid("a process needs at least one step".into()));
    }
    match steps.iter().find(|s| s.function != SYNC_SERVICE) {
        Some(bad) => Err(SyncError::Invalid(format!(
            "unknown step function '{}': the accepted function is {SYNC_SERVICE}",
            bad.function
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, m, 0).unwrap()
    }

    fn input(json: &str) -> ProcessInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_new_process_is_a_deactivated_draft_without_next_run() {
        let p = Process::create(
            input(r#"{"name":"Hourly","frequency":{"every":1,"unit":"hours"}}"#),
            at(10, 0),
        )
        .unwrap();
        assert_eq!((p.published, p.activated, p.next_run), (false, false, None));
        assert_eq!(p.category, Category::Job);
        assert_eq!(
            p.steps,
            [Step {
                function: SYNC_SERVICE.into(),
                entities: vec![]
            }]
        );
    }

    #[test]
    fn only_a_published_process_can_be_activated_and_then_it_is_scheduled() {
        let mut p = Process::create(
            input(r#"{"name":"J","frequency":{"every":30,"unit":"minutes"}}"#),
            at(10, 0),
        )
        .unwrap();
        let err = p.update(input(r#"{"activated":true}"#), at(10, 5)).unwrap_err();
        assert!(err.to_string().contains("publish it before activating"), "{err}");
        assert!(!p.activated, "a refused update changes nothing");
        p.update(input(r#"{"published":true}"#), at(10, 5)).unwrap();
        assert_eq!(p.next_run, None, "published but not activated");
        p.update(input(r#"{"activated":true}"#), at(10, 5)).unwrap();
        assert_eq!(p.next_run, Some(at(10, 30)));
        let err = p.update(input(r#"{"published":false}"#), at(10, 6)).unwrap_err();
        assert!(err.to_string().contains("deactivate it before"), "{err}");
        p.update(input(r#"{"activated":false}"#), at(10, 7)).unwrap();
        assert_eq!(p.next_run, None);
        p.update(input(r#"{"published":false}"#), at(10, 8)).unwrap();
        // Publish and activate in one go, later: the next slot after that moment.
        p.update(input(r#"{"published":true,"activated":true}"#), at(12, 40))
            .unwrap();
        assert_eq!(p.next_run, Some(at(13, 0)));
        p.update(input(r#"{"frequency":{"cron":"15 * * * *"}}"#), at(12, 41))
            .unwrap();
        assert_eq!(p.next_run, Some(at(13, 15)), "a new frequency reschedules");
        assert_eq!(p.modified, at(12, 41));
    }

    #[test]
    fn bad_steps_names_and_frequencies_are_refused_naming_the_problem() {
        let now = at(1, 0);
        let err = Process::create(
            input(r#"{"name":"J","frequency":{"every":1,"unit":"days"},"steps":[{"function":"Wash"}]}"#),
            now,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("'Wash'") && err.to_string().contains("SyncService"),
            "{err}"
        );
        let err = Process::create(
            input(r#"{"name":"J","frequency":{"every":1,"unit":"days"},"steps":[]}"#),
            now,
        )
        .unwrap_err();
        assert!(err.to_string().contains("at least one step"), "{err}");
        let err = Process::create(input(r#"{"name":"J","frequency":{"cron":"nope"}}"#), now).unwrap_err();
        assert!(err.to_string().contains("'nope'"), "{err}");
        let err = Process::create(
            input(r#"{"name":"  ","frequency":{"every":1,"unit":"days"}}"#),
            now,
        )
        .unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
        let err = Process::create(input(r#"{"frequency":{"every":1,"unit":"days"}}"#), now).unwrap_err();
        assert!(err.to_string().contains("needs a name"), "{err}");
        let err = Process::create(input(r#"{"name":"J"}"#), now).unwrap_err();
        assert!(err.to_string().contains("frequency"), "{err}");
        assert!(serde_json::from_str::<ProcessInput>(r#"{"name":"J","colour":"red"}"#).is_err());
    }

    #[test]
    fn steps_limit_the_entities_unless_one_takes_them_all() {
        let mut p = Process::create(
            input(
                r#"{"name":"J","frequency":{"every":1,"unit":"days"},
                    "steps":[{"function":"SyncService","entities":["account","contact"]},
                             {"function":"SyncService","entities":["contact","lead"]}]}"#,
            ),
            at(0, 0),
        )
        .unwrap();
        let names: Vec<String> = p.entities().iter().map(|e| e.to_string()).collect();
        assert_eq!(names, ["account", "contact", "lead"]);
        p.update(input(r#"{"steps":[{"function":"SyncService"}]}"#), at(0, 1))
            .unwrap();
        assert!(p.entities().is_empty());
        assert_eq!(p.next_run, None);
    }
}
