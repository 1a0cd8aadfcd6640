//! The server side of a sync, as the engine sees it. One implementation serves both backend
//! types (another crmsync org and Dynamics 365 / Dataverse), because both speak the Dataverse
//! Web API; tests may implement it over a local store.
//!
//! Records cross this boundary typed by the server's metadata, so the engine never sees wire
//! formats: change pages as [`RecordBatch`]es (rows of values, cheap to move into a client
//! write), FetchXML pages as [`Record`]s.

use async_trait::async_trait;
use crmsync_model::{AttributeName, EntityMetadata, Record, RecordBatch, RecordId};
use crmsync_query::Query;

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

    /// One page of a FetchXML query (`query.page`, `query.count` and `query.paging_cookie`
    /// choose the page).
    async fn fetch(&self, entity: &EntityMetadata, query: &Query) -> Result<FetchPage, SyncError>;
}
