//! Querying records with the query language of `crmsync_query`: a validated [`Query`] (from
//! FetchXML or OData) is lowered with an [`EvalContext`] and executed as one SQL statement,
//! one page at a time (`sql::SelectPlan` renders it; its header has the rules for links,
//! order and paging).
//!
//! Paging: a query ordered by nothing or by the primary id alone, without `top` and without a
//! link that repeats records, pages by key ([`PageCursor::AfterId`]: constant cost per page,
//! however deep); any other query pages by offset ([`PageCursor::Offset`]). The store picks
//! the cursor kind and returns the cursor of the next page; callers hand it back unchanged
//! (a cursor of the other kind is refused). Every order ends with the primary id, so pages
//! neither overlap nor skip rows while the data is unchanged.
//!
//! Semantics: a row is returned exactly when `crmsync_query::eval::matches` holds for the
//! lowered filter (the conformance suite checks this differentially on every backend).
//! `Query::count`, `page`, `paging_cookie` and `return_total_count` are the caller's to turn
//! into a [`PageRequest`]; the store reads only the request.

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

impl PageRequest {
    /// The first page of `size` rows, without a total.
    pub fn first(size: usize) -> Self {
        Self {
            size,
            cursor: None,
            with_total: false,
        }
    }
}

/// One result row: the record's selected attributes (its primary id always), and the
/// attributes selected from link-entities, by alias (NULL when an outer link has no match).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryRow {
    pub record: Record,
    pub linked: Vec<(String, AttributeName, Value)>,
}

impl QueryRow {
    /// The value of `attribute` of the link-entity `alias`, if it was selected.
    pub fn linked_value(&self, alias: &str, attribute: &str) -> Option<&Value> {
        self.linked
            .iter()
            .find(|(a, n, _)| a == alias && n.as_str() == attribute)
            .map(|(_, _, v)| v)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryPage {
    pub rows: Vec<QueryRow>,
    /// The cursor of the next page, `None` after the last one. `Query::top` caps the rows
    /// over all pages.
    pub next: Option<PageCursor>,
    /// All rows matching the query, when the request asked for it.
    pub total: Option<u64>,
}

#[async_trait]
pub trait QueryStore: Send + Sync {
    /// Runs `query` (already validated against this org's metadata) and returns one page.
    /// The entity queried is `query.entity`. Unknown entities, attributes and aliases are
    /// errors naming them; the page and the total come from one snapshot.
    async fn query(&self, query: &Query, context: &EvalContext, page: &PageRequest)
    -> StoreResult<QueryPage>;

    /// The database's plan for the page `page` of `query` (SQLite `EXPLAIN QUERY PLAN`,
    /// PostgreSQL `EXPLAIN`), one line per plan node: to check which indexes a query uses.
    async fn explain(&self, query: &Query, context: &EvalContext, page: &PageRequest) -> StoreResult<String>;
}
