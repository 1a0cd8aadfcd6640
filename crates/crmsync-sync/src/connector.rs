//! The server side of a sync, as the engine sees it. One implementation serves both backend
//! types (another crmsync org and Dynamics 365 / Dataverse), because both speak the Dataverse
//! Web API; tests may implement it over a local store.
//!
//! Records cross this boundary typed by the server's metadata, so the engine never sees wire
//! formats: change pages as [`RecordBatch`]es (rows of values, cheap to move into a client
//! write), FetchXML pages as [`Record`]s.

use std::collections::BTreeMap;

use async_trait::async_trait;
use crmsync_model::{AttributeName, EntityMetadata, EntityName, Record, RecordBatch, RecordId, Value};
use crmsync_query::Query;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::SyncError;

/// Who the connector is signed in as on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerIdentity {
    pub user_id: RecordId,
    pub organization_id: RecordId,
}

/// Where a change-tracking read starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadPosition {
    /// Every record, then a token.
    Initial,
    /// Changes since a token.
    Delta(String),
    /// The next page of a read, as the previous page said.
    Next(String),
}

/// How a change-tracking read goes on after a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Continuation {
    /// More pages: read `ReadPosition::Next` with this.
    More(String),
    /// The read is complete; this token starts the next one.
    Done(String),
}

/// The page sizes of a change-tracking read (see [`Connector::change_pages`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSizes {
    pub first: usize,
    pub max: usize,
}

impl PageSizes {
    /// The size of the page after one of `size` rows.
    pub fn after(&self, size: usize) -> usize {
        size.saturating_mul(2).min(self.max).max(1)
    }
}

/// One page of a change-tracking read.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangesPage {
    /// Created or updated records with the requested attributes, grouped by attribute set
    /// (usually one batch); the primary id is each row's id, not a column.
    pub upserts: Vec<RecordBatch>,
    /// Deleted record ids.
    pub deletes: Vec<RecordId>,
    pub next: Continuation,
}

impl ChangesPage {
    /// Number of created or updated records.
    pub fn upsert_count(&self) -> usize {
        self.upserts.iter().map(RecordBatch::len).sum()
    }
}

/// One page of a FetchXML query.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchPage {
    pub records: Vec<Record>,
    /// Whether more pages follow; ask for them with `Query::page` + 1 and `paging_cookie`.
    pub more: bool,
    pub paging_cookie: Option<String>,
}

/// What a write to the server does with its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAction {
    /// Create or update, by id: retrying it cannot duplicate the record.
    Upsert,
    /// Create only: an existing record is a rejection.
    Create,
    /// Update only: a missing record is [`WriteFailure::NotFound`] (never resurrected).
    Update,
    /// Delete: a missing record is [`WriteFailure::NotFound`].
    Delete,
}

/// One client change sent to the server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerWrite {
    pub entity: EntityName,
    pub id: RecordId,
    pub action: WriteAction,
    /// The values written (empty for a delete).
    pub values: BTreeMap<AttributeName, Value>,
}

/// Why the server did not apply one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteFailure {
    /// The record does not exist on the server.
    NotFound(String),
    /// Refused for good (validation, permissions, precondition): the server's status and message.
    Rejected { status: u16, message: String },
    /// May succeed when sent again (5xx, 429, a busy store).
    Retryable(String),
}

impl WriteFailure {
    pub fn message(&self) -> &str {
        match self {
            WriteFailure::NotFound(m) | WriteFailure::Retryable(m) => m,
            WriteFailure::Rejected { message, .. } => message,
        }
    }
}

/// The answer to each write of a [`Connector::write`] call, in order.
pub type WriteResults = Vec<Result<(), WriteFailure>>;

#[async_trait]
pub trait Connector: Send + Sync {
    /// Checks the server URL and the credentials.
    async fn who_am_i(&self) -> Result<ServerIdentity, SyncError>;

    /// All entity metadata of the server org, attributes included.
    async fn entities(&self) -> Result<Vec<EntityMetadata>, SyncError>;

    /// One page of a change-tracking read of `entity`, with `columns` (empty: all).
    /// `SyncError::Expired` when the server no longer accepts the token.
    async fn changes(
        &self,
        entity: &EntityMetadata,
        columns: &[AttributeName],
        position: &ReadPosition,
        page_size: usize,
    ) -> Result<ChangesPage, SyncError>;

    /// The pages of a change-tracking read of `entity` from `from` on, each as
    /// [`Connector::changes`] reads it: the first asks for `sizes.first` rows, each next one
    /// for twice as many as the one before, up to `sizes.max`. The stream ends after the page
    /// with the token, or after an error. A connector may read the next page while it decodes
    /// one and while the caller holds it, never more than that one page ahead.
    fn change_pages<'a>(
        &'a self,
        entity: &'a EntityMetadata,
        columns: &'a [AttributeName],
        from: ReadPosition,
        sizes: PageSizes,
    ) -> BoxStream<'a, Result<ChangesPage, SyncError>> {
        futures::stream::unfold(Some((from, sizes.first)), move |read| async move {
            let (position, size) = read?;
            let page = self.changes(entity, columns, &position, size).await;
            let next = match &page {
                Ok(ChangesPage {
                    next: Continuation::More(link),
                    ..
                }) => Some((ReadPosition::Next(link.clone()), sizes.after(size))),
                _ => None,
            };
            Some((page, next))
        })
        .boxed()
    }

    /// One page of a FetchXML query (`query.page`, `query.count` and `query.paging_cookie`
    /// choose the page).
    async fn fetch(&self, entity: &EntityMetadata, query: &Query) -> Result<FetchPage, SyncError>;

    /// Applies `writes` in order (a Dataverse `$batch`, at most 1,000), each on its own, or
    /// all or none when `atomic` (a change set: when one fails, the others answer
    /// `Rejected` with status 424). `entities` describe the written entities and their
    /// lookup targets. `Err` when the request as a whole failed (the server was unreachable
    /// or refused the credentials): then nothing is known of the writes, and sending them
    /// again is safe only because each is idempotent by id.
    async fn write(
        &self,
        entities: &[EntityMetadata],
        writes: &[ServerWrite],
        atomic: bool,
    ) -> Result<WriteResults, SyncError>;
}
