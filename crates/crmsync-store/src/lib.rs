//! Storage of crmsync organizations, independent of the database.
//!
//! - [`Catalog`]: the instance-wide registry of organizations, their users and their
//!   applications ([`App`], client credentials); it opens an organization as an [`OrgStore`].
//! - [`OrgStore`] composes the capability traits of one organization: [`MetadataStore`]
//!   (entities and their tables), [`RecordStore`] (typed records, atomic [`WriteSet`]s),
//!   [`ChangeStore`] (change tracking with tombstones), [`StateStore`] (small key/value
//!   state committed together with record writes) and [`QueryStore`] (FetchXML/OData queries,
//!   one page per statement). Callers hold the narrowest trait object.
//! - [`WorkStore`] (from [`Catalog::work`]): durable scheduled work claimed by lease, shared by
//!   every instance on the catalog (see [`work`]).
//! - [`sql`] generates the SQL both relational backends run; identifiers come only from
//!   validated metadata and values only travel as bind parameters.
//! - `conformance` (feature `conformance`) is the one suite every backend must pass.
//!
//! Invariants every backend guarantees:
//! - `versionnumber` is allocated org-wide, strictly increasing, and writers of one org are
//!   serialized on the allocation, so versions become visible in increasing order: a reader
//!   that saw version `v` will never later see a new write with a version `<= v`. This is
//!   what makes change tracking by version (never by clock) lossless.
//! - a [`WriteSet`] is applied atomically: all of its rows, tombstones, versions and state
//!   entries, or none.
//! - a delete leaves a tombstone; tombstones older than the retention are purged, and a change
//!   query from before the purge horizon fails with [`StoreError::Expired`].

pub mod app;
mod catalog;
mod error;
mod org;
pub mod password;
mod query;
pub mod sql;
pub mod work;
mod write;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use app::{App, AppSecret};
pub use catalog::{Catalog, NewUser, OrgInfo, Role, User, normalize_email};
pub use error::{StoreError, StoreResult};
pub use org::{
    BulkWrite, Change, ChangeCursor, ChangePage, ChangeRows, ChangeStore, ListRequest, MetadataStore,
    OrgStore, RecordPage, RecordStore, RowChange, StateStore,
};
pub use query::{PageCursor, PageRequest, QueryPage, QueryRow, QueryStore};
pub use work::{Lease, NewWork, Retry, WorkItem, WorkStatus, WorkStore};
pub use write::{DeleteMode, UpsertMode, WriteOp, WriteOutcome, WriteSet, state_changed};

/// Rows per transaction for bulk loads (sample data, initial sync): with random GUID keys,
/// committing every few thousand rows is several times slower than every ~100k, because each
/// commit rewrites the index pages the batch dirtied.
pub const BULK_BATCH_ROWS: usize = 100_000;

/// Default retention of tombstones (SPEC: 90 days).
pub const DEFAULT_TOMBSTONE_RETENTION_DAYS: i64 = 90;
