//! The log of a sync run (SPEC §7): what was synced, what failed and why.

use chrono::{DateTime, Utc};
use crmsync_model::RecordId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most per-record messages kept per run; the counts stay exact beyond it.
pub const MAX_MESSAGES: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Manual,
    Job,
    Webservice,
    Connect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    Running,
    Succeeded,
    PartiallySucceeded,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub time: DateTime<Utc>,
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<RecordId>,
    pub text: String,
}

/// Per-entity figures of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityFigures {
    pub entity: String,
    pub created: u64,
    pub updated: u64,
    /// Removed because the record was deleted on the server.
    pub deleted: u64,
    /// Removed because the record no longer matches the sync filter.
    pub filtered_out: u64,
    pub conflicts: u64,
    pub errors: u64,
    /// Whether the entity was reconciled by comparing id sets (first sync, filter change,
    /// expired token, or a filter whose membership moves with time or linked records).
    pub reconciled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunLog {
    pub id: Uuid,
    pub trigger: Trigger,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub entities: Vec<EntityFigures>,
    pub metadata_changes: Vec<String>,
    /// The upload phase: offline transactions processed and failed.
    #[serde(default)]
    pub upload: crate::upload::UploadFigures,
    pub messages: Vec<Message>,
    /// Messages not kept because the run had more than [`MAX_MESSAGES`].
    pub messages_dropped: u64,
}

impl RunLog {
    pub fn start(trigger: Trigger) -> Self {
        RunLog {
            id: Uuid::new_v4(),
            trigger,
            started: Utc::now(),
            ended: None,
            status: RunStatus::Running,
            entities: Vec::new(),
            metadata_changes: Vec::new(),
            upload: Default::default(),
            messages: Vec::new(),
            messages_dropped: 0,
        }
    }

    pub fn message(
        &mut self,
        level: Level,
        entity: Option<&str>,
        record_id: Option<RecordId>,
        text: impl Into<String>,
    ) {
        if self.messages.len() >= MAX_MESSAGES {
            self.messages_dropped += 1;
            return;
        }
        self.messages.push(Message {
            time: Utc::now(),
            level,
            entity: entity.map(str::to_owned),
            record_id,
            text: text.into(),
        });
    }

    /// The state key the log is stored under: sortable by start time.
    pub fn key(&self) -> String {
        format!("{LOG_PREFIX}{:020}.{}", self.started.timestamp_micros(), self.id)
    }

    /// Totals over all entities.
    pub fn totals(&self) -> EntityFigures {
        let mut t = EntityFigures {
            entity: "total".into(),
            ..Default::default()
        };
        for e in &self.entities {
            t.created += e.created;
            t.updated += e.updated;
            t.deleted += e.deleted;
            t.filtered_out += e.filtered_out;
            t.conflicts += e.conflicts;
            t.errors += e.errors;
        }
        t
    }
}

/// Prefix of the state keys holding run logs.
pub const LOG_PREFIX: &str = "sync.log.";
