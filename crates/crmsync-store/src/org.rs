//! The capability traits of one organization's store.

use async_trait::async_trait;
use crmsync_model::{
    AttributeName, EntityMetadata, EntityName, MetadataChange, OrgName, Record, RecordId, Value, Version,
};

use crate::{QueryStore, StoreResult, WriteOutcome, WriteSet};

#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// All entities, in creation order.
    async fn entities(&self) -> StoreResult<Vec<EntityMetadata>>;
    /// `NotFound` naming the entity if it does not exist.
    async fn entity(&self, name: &str) -> StoreResult<EntityMetadata>;
    /// Applies schema changes atomically: metadata and tables change together or not at all.
    async fn apply_metadata(&self, changes: &[MetadataChange]) -> StoreResult<()>;
}

/// Keyset-paged listing of one entity, ordered by primary id.
#[derive(Clone, Debug, Default)]
pub struct ListRequest {
    /// Attributes to return; `None` for all.
    pub columns: Option<Vec<AttributeName>>,
    /// Return records with an id greater than this one.
    pub after: Option<RecordId>,
    pub limit: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordPage {
    pub records: Vec<Record>,
    /// Pass as `after` to get the next page; `None` at the end.
    pub next: Option<RecordId>,
}

/// One write transaction kept open across several write sets, for bulk downloads: each set
/// is applied when it is handed over (so the caller can prepare the next one meanwhile), and
/// all of them become durable together at [`BulkWrite::commit`]. Dropping it without a commit
/// rolls every set back. Other writers of the org wait while it is open, so callers keep it
/// open for one batch, not for a whole run.
#[async_trait]
pub trait BulkWrite: Send {
    /// Applies a set inside the transaction, as [`RecordStore::write`] would (an error leaves
    /// the transaction unusable: drop it).
    async fn write(&mut self, set: WriteSet) -> StoreResult<WriteOutcome>;
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Applies a write set atomically (see [`WriteSet`]). Values are coerced to their
    /// attribute types first; an invalid value fails the whole set with an error naming the
    /// attribute, and nothing is stored.
    async fn write(&self, set: WriteSet) -> StoreResult<WriteOutcome>;
    /// Opens a [`BulkWrite`]: several write sets in one transaction.
    async fn begin_bulk(&self) -> StoreResult<Box<dyn BulkWrite + '_>>;
    /// One record, all attributes or `columns`. `NotFound` if missing.
    async fn retrieve(
        &self,
        entity: &EntityName,
        id: RecordId,
        columns: Option<&[AttributeName]>,
    ) -> StoreResult<Record>;
    async fn list(&self, entity: &EntityName, request: &ListRequest) -> StoreResult<RecordPage>;
    async fn count(&self, entity: &EntityName) -> StoreResult<u64>;
}

/// One entry of a change query.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A created or updated record, with all its attributes (including `versionnumber`).
    Upsert(Record),
    Delete {
        id: RecordId,
        version: Version,
    },
}

impl Change {
    pub fn version(&self) -> Version {
        match self {
            Change::Upsert(r) => match r.get("versionnumber") {
                Some(crmsync_model::Value::BigInt(v)) => *v,
                _ => 0,
            },
            Change::Delete { version, .. } => *version,
        }
    }
}

/// Where a change read stands.
///
/// `since` is the token the reader holds (`0` for an initial load, which needs no deletes:
/// the reader has nothing to delete); `after` is the position within this read, moved by
/// each page. A fresh read starts with [`ChangeCursor::start`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChangeCursor {
    pub since: Version,
    pub after: Version,
    /// For an initial read: the org's version when it began (0 before its first page). Deletes
    /// after it are reported by the later pages, so a record delivered early and deleted
    /// during the read is not left with the reader.
    pub started: Version,
}

impl ChangeCursor {
    pub fn start(since: Version) -> Self {
        Self {
            since,
            after: since,
            started: 0,
        }
    }

    /// What a page read from this cursor reads: rows with a version after the first, and
    /// tombstones after the second, if any. An initial read (since 0) pages through live
    /// records; from its second page on it also reports deletes after the version it started
    /// at, so a record delivered early and deleted during the read does not linger with the
    /// reader.
    pub fn bounds(&self) -> (Version, Option<Version>) {
        if self.since == 0 {
            (
                self.after,
                (self.started > 0).then(|| self.after.max(self.started)),
            )
        } else {
            let after = self.after.max(self.since);
            (after, Some(after))
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// The cursor of the next page while `more`; at the end, `next.after` is the org's
    /// current version: the token to keep for the next read.
    pub next: ChangeCursor,
    pub more: bool,
}

/// One entry of a change query read as rows: an upsert's values are those of
/// [`ChangeRows::columns`], in their order.
#[derive(Clone, Debug, PartialEq)]
pub enum RowChange {
    Upsert {
        id: RecordId,
        version: Version,
        values: Vec<Value>,
    },
    Delete {
        id: RecordId,
        version: Version,
    },
}

impl RowChange {
    pub fn version(&self) -> Version {
        match self {
            RowChange::Upsert { version, .. } | RowChange::Delete { version, .. } => *version,
        }
    }
}

/// A [`ChangePage`] as rows: the attributes once, not a map per record, for readers that
/// write thousands of records per page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeRows {
    /// Every attribute of the entity (including its primary id and `versionnumber`), in name
    /// order.
    pub columns: Vec<AttributeName>,
    pub changes: Vec<RowChange>,
    pub next: ChangeCursor,
    pub more: bool,
}

impl ChangeRows {
    /// The page read from `cursor` (see [`ChangeCursor::bounds`]): `changes` (the rows, as
    /// upserts) and `tombstones` (as deletes) each in version order and at most `limit + 1`
    /// long, `current` the org's version in the same snapshot.
    pub fn page(
        columns: Vec<AttributeName>,
        mut changes: Vec<RowChange>,
        tombstones: Vec<RowChange>,
        cursor: ChangeCursor,
        limit: usize,
        current: Version,
    ) -> Self {
        // They interleave only when both are there.
        let interleave = !changes.is_empty() && !tombstones.is_empty();
        changes.extend(tombstones);
        if interleave {
            changes.sort_by_key(RowChange::version);
        }
        let more = changes.len() > limit;
        changes.truncate(limit);
        let (after, _) = cursor.bounds();
        let started = match cursor.started {
            0 if cursor.since == 0 => current.max(1),
            started => started,
        };
        let next = match (more, changes.last()) {
            (true, Some(last)) => last.version(),
            _ => current,
        };
        ChangeRows {
            columns,
            changes,
            next: ChangeCursor {
                since: cursor.since,
                after: next.max(after),
                started,
            },
            more,
        }
    }

    pub fn into_page(self) -> ChangePage {
        let columns = self.columns;
        let changes = self
            .changes
            .into_iter()
            .map(|change| match change {
                RowChange::Upsert { id, values, .. } => Change::Upsert(Record {
                    id: Some(id),
                    // In name order: the map is built in one pass.
                    values: columns.iter().cloned().zip(values).collect(),
                }),
                RowChange::Delete { id, version } => Change::Delete { id, version },
            })
            .collect();
        ChangePage {
            changes,
            next: self.next,
            more: self.more,
        }
    }
}

#[async_trait]
pub trait ChangeStore: Send + Sync {
    /// Creates, updates and deletes of `entity` with a version greater than `cursor.after`,
    /// in version order, at most `limit`. Deletes are included unless `cursor.since == 0`;
    /// a delete of a record that was created again later is left out (the record itself is
    /// reported). `Expired` if tombstones the reader needs were purged.
    async fn changes(
        &self,
        entity: &EntityName,
        cursor: ChangeCursor,
        limit: usize,
    ) -> StoreResult<ChangePage> {
        Ok(self.change_rows(entity, cursor, limit).await?.into_page())
    }
    /// [`ChangeStore::changes`] as rows.
    async fn change_rows(
        &self,
        entity: &EntityName,
        cursor: ChangeCursor,
        limit: usize,
    ) -> StoreResult<ChangeRows>;
    /// The highest version allocated in the org.
    async fn current_version(&self) -> StoreResult<Version>;
    /// Removes tombstones deleted before `older_than`; returns how many.
    async fn purge_tombstones(&self, older_than: chrono::DateTime<chrono::Utc>) -> StoreResult<u64>;
}

/// Small key/value state (change tokens, cursors) written through [`WriteSet::state`].
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn state(&self, key: &str) -> StoreResult<Option<String>>;
    /// Every entry whose key starts with `prefix`, ordered by key (bytewise).
    async fn states(&self, prefix: &str) -> StoreResult<Vec<(String, String)>>;
}

/// Everything one organization's store offers.
pub trait OrgStore: MetadataStore + RecordStore + ChangeStore + StateStore + QueryStore {
    fn org(&self) -> &OrgName;
}
