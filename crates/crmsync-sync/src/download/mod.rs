//! Downloading one entity from the server into the client (SPEC §6.2–6.3).
//!
//! State per entity, in the client store's state (committed in the same transaction as the
//! rows it covers, so a crash resumes from the last committed batch without loss or
//! duplication):
//! - `sync.<entity>.token`: the server's change-tracking token the client is current with;
//! - `sync.<entity>.filter`: the FetchXML filter that token's data was selected with;
//! - `sync.<entity>.resume`: the next page of an interrupted read.
//!
//! Paths:
//! - **Follow** (unfiltered, or filtered with a token for the same filter): read changes page
//!   by page; deletes remove client records (`deleted`); with a filter, the changed records
//!   are checked against the filter on the server (a FetchXML query restricted to their ids,
//!   since Dataverse's change tracking takes no filter) and those that no longer match are
//!   removed (`filtered-out`). Pages stream into one open client transaction
//!   ([`crmsync_store::BulkWrite`]) per batch of about `batch_rows` rows: a reader reads and
//!   admits pages at most [`PAGES_AHEAD`] ahead of the writer, and the batch commits with the
//!   link of the page after it (or, at the end, the new token) as its state. Only a few pages
//!   are held in memory, never a batch.
//! - **Reconcile** (first sync of a filtered entity, filter changed, token expired, or a
//!   filter whose membership moves with time or with linked records): compare the server's
//!   matching ids (with `modifiedon`) against the client's and remove, fetch or refresh only
//!   the differences — never a full reload.

use std::collections::{HashMap, HashSet};

use crmsync_model::{AttributeName, EntityMetadata, EntityName, Record, RecordBatch, RecordId, Value};
use crmsync_query::{Columns, Condition, Filter, Operator, Query};
use crmsync_store::{BulkWrite, DeleteMode, OrgStore, UpsertMode, WriteOutcome, WriteSet};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::log::{EntityFigures, Level, RunLog};
use crate::{ChangesPage, Connector, Continuation, PageSizes, ReadPosition, SyncError};

mod reconcile;

/// Ids per membership query (a FetchXML `in` condition).
pub(crate) const IDS_PER_QUERY: usize = 500;
/// Most records per FetchXML page.
const FETCH_PAGE: u32 = 5000;
/// Rows of the first change page of a read (see [`EntitySync::first_page`]).
const FIRST_PAGE: usize = 1000;
/// Change pages read ahead of the one being written, waiting for it.
const PAGES_AHEAD: usize = 1;
/// Removed ids named in the log per committed batch and reason (the figures count them all).
const LOGGED_REMOVALS: usize = 20;

pub fn state_key(entity: &str, what: &str) -> String {
    format!("sync.{entity}.{what}")
}

/// Records (in the client's columns) and removals to be written together.
#[derive(Default)]
struct Pending {
    upserts: Vec<RecordBatch>,
    deleted: Vec<RecordId>,
    filtered_out: Vec<RecordId>,
}

impl Pending {
    fn len(&self) -> usize {
        self.upserts.iter().map(RecordBatch::len).sum::<usize>()
            + self.deleted.len()
            + self.filtered_out.len()
    }

    /// The write set of these changes, and what its outcome will say about them.
    fn into_set(self, entity: &EntityName, state: Vec<(String, Option<String>)>) -> (WriteSet, Written) {
        let mut set = WriteSet::new().counting_created();
        for batch in self.upserts {
            set = set.upsert(entity.clone(), batch, UpsertMode::Upsert);
        }
        let upsert_ops = set.ops.len();
        let has_deleted = !self.deleted.is_empty();
        if has_deleted {
            set = set.delete(entity.clone(), self.deleted.clone(), DeleteMode::IgnoreMissing);
        }
        if !self.filtered_out.is_empty() {
            set = set.delete(
                entity.clone(),
                self.filtered_out.clone(),
                DeleteMode::IgnoreMissing,
            );
        }
        set.state = state;
        let written = Written {
            upsert_ops,
            has_deleted,
            deleted: self.deleted,
            filtered_out: self.filtered_out,
            ..Written::default()
        };
        (set, written)
    }
}

/// Figures of a write set once its outcome is known, kept until its transaction commits.
#[derive(Default)]
struct Written {
    upsert_ops: usize,
    has_deleted: bool,
    deleted: Vec<RecordId>,
    filtered_out: Vec<RecordId>,
    created: u64,
    updated: u64,
    removed_deleted: u64,
    removed_filtered: u64,
}

impl Written {
    fn count(&mut self, outcome: &WriteOutcome) {
        self.created += outcome.created;
        self.updated += outcome.updated;
        let mut removals = outcome.op_counts.iter().skip(self.upsert_ops).copied();
        if self.has_deleted {
            self.removed_deleted += removals.next().unwrap_or(0);
        }
        if !self.filtered_out.is_empty() {
            self.removed_filtered += removals.next().unwrap_or(0);
        }
    }

    /// Folds another set's figures into these (keeping a sample of its removed ids).
    fn merge(&mut self, other: Written) {
        self.created += other.created;
        self.updated += other.updated;
        self.removed_deleted += other.removed_deleted;
        self.removed_filtered += other.removed_filtered;
        for (mine, theirs) in [
            (&mut self.deleted, other.deleted),
            (&mut self.filtered_out, other.filtered_out),
        ] {
            let room = LOGGED_REMOVALS.saturating_sub(mine.len());
            mine.extend(theirs.into_iter().take(room));
        }
    }

    /// Adds committed figures to the entity's, with a sample of removed ids in the log.
    fn report(self, entity: &str, figures: &mut EntityFigures, log: &mut RunLog) {
        figures.created += self.created;
        figures.updated += self.updated;
        figures.deleted += self.removed_deleted;
        figures.filtered_out += self.removed_filtered;
        let samples = [
            (
                self.removed_deleted,
                &self.deleted,
                "removed: deleted on the server",
            ),
            (
                self.removed_filtered,
                &self.filtered_out,
                "removed: no longer matches the sync filter (filtered-out)",
            ),
        ];
        for (removed, ids, text) in samples {
            if removed > 0 {
                for id in ids.iter().take(LOGGED_REMOVALS) {
                    log.message(Level::Info, Some(entity), Some(*id), text);
                }
            }
        }
    }
}

/// The open client transaction of a follow, with what it wrote so far.
struct Batch<'s> {
    bulk: Box<dyn BulkWrite + 's>,
    rows: usize,
    written: Vec<Written>,
}

pub struct EntitySync<'a> {
    pub store: &'a dyn OrgStore,
    pub connector: &'a dyn Connector,
    pub server: &'a EntityMetadata,
    pub client: &'a EntityMetadata,
    pub filter: Option<&'a Query>,
    /// The filter's FetchXML as configured ("" for none): what the token is valid for.
    pub filter_text: &'a str,
    pub page_size: usize,
    /// Rows per client transaction.
    pub batch_rows: usize,
    /// Reconcile by comparing id sets whatever the token says (`sync --full`).
    pub full: bool,
    /// Records with Pending or Error offline transactions: the attributes the download must
    /// not overwrite (`None`: the whole record, which it neither writes nor removes).
    pub protected: &'a Protected,
}

/// Per record, what the download leaves alone (see [`EntitySync::protected`]).
pub type Protected = HashMap<RecordId, Option<HashSet<AttributeName>>>;

impl EntitySync<'_> {
    fn name(&self) -> &str {
        self.client.logical_name.as_str()
    }

    async fn state(&self, what: &str) -> Result<Option<String>, SyncError> {
        Ok(self.store.state(&state_key(self.name(), what)).await?)
    }

    /// Brings the client's records of this entity up to date with the server.
    pub async fn run(&self, log: &mut RunLog) -> Result<EntityFigures, SyncError> {
        let mut figures = EntityFigures {
            entity: self.name().to_owned(),
            ..Default::default()
        };
        self.refresh(&mut figures, log).await?;
        if self.full {
            self.reconcile(None, &mut figures, log).await?;
            return Ok(figures);
        }
        let token = self.state("token").await?;
        let same_filter = self.state("filter").await?.unwrap_or_default() == self.filter_text;
        let moving = self
            .filter
            .is_some_and(|f| f.has_relative_date_conditions() || !f.all_links().is_empty());
        match token {
            Some(token) if same_filter => match self.follow(Some(token), &mut figures, log).await {
                Err(SyncError::Expired(reason)) => {
                    log.message(
                        Level::Warning,
                        Some(self.name()),
                        None,
                        format!("change token expired ({reason}); reconciling"),
                    );
                    self.reconcile(None, &mut figures, log).await?;
                }
                Err(e) => return Err(e),
                Ok(()) if moving => {
                    let current = self.state("token").await?;
                    self.reconcile(current, &mut figures, log).await?;
                }
                Ok(()) => {}
            },
            Some(_) => {
                log.message(
                    Level::Info,
                    Some(self.name()),
                    None,
                    "the sync filter changed; reconciling",
                );
                self.reconcile(None, &mut figures, log).await?;
            }
            None if self.filter.is_none() => self.follow(None, &mut figures, log).await?,
            None => self.reconcile(None, &mut figures, log).await?,
        }
        Ok(figures)
    }

    /// Reads changes from `token` (or everything) page by page, each page written while the
    /// next is read.
    async fn follow(
        &self,
        token: Option<String>,
        figures: &mut EntityFigures,
        log: &mut RunLog,
    ) -> Result<(), SyncError> {
        let initial = token
            .clone()
            .map(ReadPosition::Delta)
            .unwrap_or(ReadPosition::Initial);
        let (mut pages, first) = match self.state("resume").await? {
            None => self.first_page_of(initial).await,
            Some(link) => match self.first_page_of(ReadPosition::Next(link)).await {
                (_, Err(e)) if !e.is_retryable() => {
                    // The saved next page is no longer valid: start the read again.
                    log.message(
                        Level::Warning,
                        Some(self.name()),
                        None,
                        format!("could not resume the interrupted read ({e}); reading again"),
                    );
                    let (set, _) = Pending::default().into_set(
                        &self.client.logical_name,
                        vec![(state_key(self.name(), "resume"), None)],
                    );
                    self.store.write(set).await?;
                    self.first_page_of(initial).await
                }
                other => other,
            },
        };
        let first = first?;
        // The reader reads and admits pages ahead while the writer writes the ones before;
        // at most `PAGES_AHEAD` wait between them. When the writer stops (done or failed),
        // the reader stops with the page it is reading.
        let (ahead, mut received) =
            tokio::sync::mpsc::channel::<Result<(Pending, Continuation), SyncError>>(PAGES_AHEAD);
        let reader = async move {
            let mut page = Some(Ok(first));
            while let Some(read) = page {
                let admitted = match read {
                    Ok(page) => {
                        let next = page.next.clone();
                        self.admit(page).await.map(|pending| (pending, next))
                    }
                    Err(e) => Err(e),
                };
                let more = matches!(admitted, Ok((_, Continuation::More(_))));
                if ahead.send(admitted).await.is_err() || !more {
                    return;
                }
                page = pages.next().await;
            }
        };
        // The writer owns the receiving end: when it stops, the reader's next send fails and
        // the reader stops too (a reader left waiting to send would keep `join!` waiting).
        let writer = async move {
            let mut batch: Option<Batch<'_>> = None;
            while let Some(admitted) = received.recv().await {
                let (mut pending, next) = admitted?;
                self.protect(&mut pending, log);
                let size = pending.len();
                let mut open = match batch.take() {
                    Some(b) => b,
                    None => Batch {
                        bulk: self.store.begin_bulk().await?,
                        rows: 0,
                        written: Vec::new(),
                    },
                };
                match next {
                    Continuation::More(link) => {
                        let full = open.rows + size >= self.batch_rows;
                        let state = if full {
                            vec![(state_key(self.name(), "resume"), Some(link))]
                        } else {
                            Vec::new()
                        };
                        let (set, mut written) = pending.into_set(&self.client.logical_name, state);
                        written.count(&open.bulk.write(set).await?);
                        open.rows += size;
                        open.written.push(written);
                        if full {
                            self.finish(open, figures, log).await?;
                        } else {
                            batch = Some(open);
                        }
                    }
                    Continuation::Done(token) => {
                        let (set, mut written) =
                            pending.into_set(&self.client.logical_name, self.done_state(token));
                        written.count(&open.bulk.write(set).await?);
                        open.written.push(written);
                        return self.finish(open, figures, log).await;
                    }
                }
            }
            Err(SyncError::Protocol(format!(
                "the changes of '{}' ended without a delta link",
                self.name()
            )))
        };
        let ((), written) = tokio::join!(reader, writer);
        written
    }

    /// The page sizes of a read: the first page asks for [`FIRST_PAGE`] rows and each later
    /// one for twice as many as the one before, up to `page_size`, so the writer starts on a
    /// small first page instead of waiting for a full one (an incremental sync of a few
    /// thousand changes is mostly that wait).
    fn page_sizes(&self) -> PageSizes {
        PageSizes {
            first: FIRST_PAGE.min(self.page_size).max(1),
            max: self.page_size.max(1),
        }
    }

    /// The pages of a read from `position`, and its first page.
    async fn first_page_of(
        &self,
        position: ReadPosition,
    ) -> (
        BoxStream<'_, Result<ChangesPage, SyncError>>,
        Result<ChangesPage, SyncError>,
    ) {
        let mut pages = self
            .connector
            .change_pages(self.server, &[], position, self.page_sizes());
        let first = pages.next().await.unwrap_or_else(|| {
            Err(SyncError::Protocol(format!(
                "the changes of '{}' ended without a page",
                self.name()
            )))
        });
        (pages, first)
    }

    /// Commits an open batch and reports what it wrote.
    async fn finish(
        &self,
        batch: Batch<'_>,
        figures: &mut EntityFigures,
        log: &mut RunLog,
    ) -> Result<(), SyncError> {
        batch.bulk.commit().await?;
        let mut total = Written::default();
        for written in batch.written {
            total.merge(written);
        }
        total.report(self.name(), figures, log);
        Ok(())
    }

    fn done_state(&self, token: String) -> Vec<(String, Option<String>)> {
        vec![
            (state_key(self.name(), "token"), Some(token)),
            (
                state_key(self.name(), "filter"),
                Some(self.filter_text.to_owned()),
            ),
            (state_key(self.name(), "resume"), None),
        ]
    }

    /// A change page as client changes: records that match the filter (all of them without
    /// one) in the client's columns, deletes, and records that left the filter.
    async fn admit(&self, page: ChangesPage) -> Result<Pending, SyncError> {
        let mut pending = Pending {
            deleted: page.deletes,
            ..Pending::default()
        };
        let mut upserts = page.upserts;
        if let Some(filter) = self.filter {
            let ids: Vec<RecordId> = upserts
                .iter()
                .flat_map(|b| b.rows.iter().map(|(id, _)| *id))
                .collect();
            let matching = self.matching_ids(filter, &ids).await?;
            for batch in &mut upserts {
                batch.rows.retain(|(id, _)| {
                    let keep = matching.contains(id);
                    if !keep {
                        pending.filtered_out.push(*id);
                    }
                    keep
                });
            }
        }
        pending.upserts = upserts
            .into_iter()
            .filter(|b| !b.is_empty())
            .map(|b| to_client(b, self.client))
            .collect();
        Ok(pending)
    }

    fn pk(&self) -> AttributeName {
        self.server.primary_id_attribute.clone()
    }

    /// `filter` restricted to `ids`, selecting `columns`.
    fn restricted(&self, filter: Option<&Query>, ids: &[RecordId], columns: Columns) -> Query {
        restricted(self.server, filter, ids, columns)
    }

    /// Which of `ids` match `filter` on the server.
    async fn matching_ids(&self, filter: &Query, ids: &[RecordId]) -> Result<HashSet<RecordId>, SyncError> {
        let mut out = HashSet::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let query = self.restricted(Some(filter), chunk, Columns::List(vec![self.pk()]));
            for record in self.fetch_all(query).await? {
                out.extend(record.id);
            }
        }
        Ok(out)
    }

    /// Every page of a FetchXML query (used for bounded result sets).
    async fn fetch_all(&self, query: Query) -> Result<Vec<Record>, SyncError> {
        fetch_all(self.connector, self.server, query).await
    }

    /// Records whose offline transactions were archived: the client's copy may differ from
    /// the server's, so they are read again (or removed when the server no longer has them
    /// in the filter).
    async fn refresh(&self, figures: &mut EntityFigures, log: &mut RunLog) -> Result<(), SyncError> {
        let keys = self
            .store
            .states(&crate::transactions::refresh_prefix(self.name()))
            .await?;
        if keys.is_empty() {
            return Ok(());
        }
        let ids: Vec<RecordId> = keys
            .iter()
            .filter_map(|(k, _)| k.rsplit('.').next().and_then(|id| RecordId::parse(id).ok()))
            .collect();
        let mut pending = Pending::default();
        let mut found = HashSet::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let query = self.restricted(self.filter, chunk, Columns::All);
            let records = self.fetch_all(query).await?;
            found.extend(records.iter().filter_map(|r| r.id));
            let batches = RecordBatch::group(records, &self.server.primary_id_attribute);
            pending
                .upserts
                .extend(batches.into_iter().map(|b| to_client(b, self.client)));
        }
        for id in ids.iter().filter(|id| !found.contains(id)) {
            if self.filter.is_some() {
                pending.filtered_out.push(*id);
            } else {
                pending.deleted.push(*id);
            }
        }
        log.message(
            Level::Info,
            Some(self.name()),
            None,
            format!(
                "refreshing {} record(s) whose offline changes were archived",
                ids.len()
            ),
        );
        let state = keys.into_iter().map(|(k, _)| (k, None)).collect();
        self.commit(pending, state, figures, log).await
    }

    /// Leaves out what offline transactions protect: attributes with Pending or Error
    /// changes, and whole records with a queued create or delete.
    fn protect(&self, pending: &mut Pending, log: &mut RunLog) {
        if self.protected.is_empty() {
            return;
        }
        let mut partial = Vec::new();
        for batch in &mut pending.upserts {
            let columns = &batch.columns;
            batch
                .rows
                .retain_mut(|(id, values)| match self.protected.get(id) {
                    None => true,
                    Some(None) => false,
                    Some(Some(attributes)) => {
                        // The row's other attributes, in a batch of their own.
                        let (names, kept): (Vec<AttributeName>, Vec<Value>) = columns
                            .iter()
                            .cloned()
                            .zip(std::mem::take(values))
                            .filter(|(name, _)| !attributes.contains(name))
                            .unzip();
                        let mut own = RecordBatch::new(names);
                        own.push(*id, kept);
                        partial.push(own);
                        false
                    }
                });
        }
        pending.upserts.retain(|b| !b.is_empty());
        pending.upserts.extend(partial);
        for removals in [&mut pending.deleted, &mut pending.filtered_out] {
            removals.retain(|id| {
                let keep = !self.protected.contains_key(id);
                if !keep {
                    log.message(
                        Level::Warning,
                        Some(self.client.logical_name.as_str()),
                        Some(*id),
                        "kept: the record has offline changes not yet uploaded",
                    );
                }
                keep
            });
        }
    }

    /// Commits pending changes with `state` in one client transaction.
    async fn commit(
        &self,
        mut pending: Pending,
        state: Vec<(String, Option<String>)>,
        figures: &mut EntityFigures,
        log: &mut RunLog,
    ) -> Result<(), SyncError> {
        self.protect(&mut pending, log);
        let (set, mut written) = pending.into_set(&self.client.logical_name, state);
        written.count(&self.store.write(set).await?);
        written.report(self.name(), figures, log);
        Ok(())
    }
}

/// `filter` (or every record of `entity`) restricted to `ids` — at most [`IDS_PER_QUERY`] —
/// selecting `columns`: how the engine asks the server about known records, since
/// Dataverse's change tracking takes no filter.
pub(crate) fn restricted(
    entity: &EntityMetadata,
    filter: Option<&Query>,
    ids: &[RecordId],
    columns: Columns,
) -> Query {
    let mut q = filter
        .cloned()
        .unwrap_or_else(|| Query::new(entity.logical_name.clone()));
    q.columns = columns;
    q.order = Vec::new();
    q.top = None;
    q.and_filter(Filter::Condition(Condition {
        alias: None,
        attribute: entity.primary_id_attribute.clone(),
        operator: Operator::In(ids.iter().map(|id| Value::Guid(*id)).collect()),
    }));
    q
}

/// Every page of a FetchXML query on the server (for bounded result sets).
pub(crate) async fn fetch_all(
    connector: &dyn Connector,
    entity: &EntityMetadata,
    mut query: Query,
) -> Result<Vec<Record>, SyncError> {
    let mut out = Vec::new();
    query.count = Some(FETCH_PAGE);
    query.page = Some(1);
    loop {
        let page = connector.fetch(entity, &query).await?;
        out.extend(page.records);
        if !page.more {
            return Ok(out);
        }
        query.page = Some(query.page.unwrap_or(1) + 1);
        query.paging_cookie = page.paging_cookie;
    }
}

/// A server batch as a client batch: the attributes the client has, without the server's
/// `versionnumber` (the client numbers its own versions). Values are moved, not copied.
fn to_client(mut batch: RecordBatch, client: &EntityMetadata) -> RecordBatch {
    let dropped: Vec<usize> = batch
        .columns
        .iter()
        .enumerate()
        .filter(|(_, name)| {
            name.as_str() == "versionnumber"
                || name == &&client.primary_id_attribute
                || client.attribute(name.as_str()).is_none()
        })
        .map(|(i, _)| i)
        .collect();
    for i in dropped.iter().rev() {
        batch.columns.remove(*i);
        for (_, values) in &mut batch.rows {
            values.remove(*i);
        }
    }
    batch
}
