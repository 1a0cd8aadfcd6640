//! Querying records with the query language of `crmsync_query`: a validated [`Query`] (from
//! FetchXML or OData) is lowered with an [`EvalContext`] and executed as one SQL statement,
//! one page at a time.
//!
//! Paging: a query ordered by nothing or by the primary id alone pages by key
//! ([`PageCursor::AfterId`]: constant cost per page, however deep); any other order pages by
//! offset ([`PageCursor::Offset`]). The store picks the cursor kind and returns the cursor of
//! the next page; callers hand it back unchanged.

use async_trait::async_trait;
use crmsync_model::{AttributeName, Record, RecordId, Value};
use crmsync_query::{EvalContext, Query};

use crate::StoreResult;

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageCursor {
    /// Records with a primary id greater than this one (keyset paging).
    AfterId(RecordId),
    /// Skip this many rows (offset paging, for custom orders).
    Offset(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct PageRequest {
    /// Rows per page (at least 1).
    pub size: usize,
    /// `None` for the first page.
    pub cursor: Option<PageCursor>,
    /// Also count all rows matching the query (ignoring paging and `top`).
    pub with_total: bool,
}

/// One result row: the record's selected attributes, and the attributes selected from
/// link-entities, by alias.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryRow {
    pub record: Record,
    pub linked: Vec<(String, AttributeName, Value)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryPage {
    pub rows: Vec<QueryRow>,
    /// The cursor of the next page, `None` after the last one. `Query::top` caps the rows
    /// over all pages.
    pub next: Option<PageCursor>,
    pub total: Option<u64>,
}

#[async_trait]
pub trait QueryStore: Send + Sync {
    /// Runs `query` (already validated against this org's metadata) and returns one page.
    /// The entity queried is `query.entity`.
    async fn query(&self, query: &Query, context: &EvalContext, page: &PageRequest) -> StoreResult<QueryPage>;
}
