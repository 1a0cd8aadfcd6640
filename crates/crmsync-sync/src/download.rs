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
//!   removed (`filtered-out`).
//! - **Reconcile** (first sync of a filtered entity, filter changed, token expired, or a
//!   filter whose membership moves with time or with linked records): compare the server's
//!   matching ids (with `modifiedon`) against the client's and remove, fetch or refresh only
//!   the differences — never a full reload.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use crmsync_model::{AttributeName, EntityMetadata, Record, RecordBatch, RecordId, Value};
use crmsync_query::{Columns, Condition, Filter, Operator, Query};
use crmsync_store::{DeleteMode, ListRequest, OrgStore, UpsertMode, WriteSet};

use crate::log::{EntityFigures, Level, RunLog};
use crate::{Connector, Continuation, ReadPosition, SyncError};

/// Ids per membership query (a FetchXML `in` condition).
const IDS_PER_QUERY: usize = 500;
/// Most records per FetchXML page.
const FETCH_PAGE: u32 = 5000;

pub fn state_key(entity: &str, what: &str) -> String {
    format!("sync.{entity}.{what}")
}

/// Records and removals waiting to be committed together.
#[derive(Default)]
struct Pending {
    upserts: Vec<Record>,
    deleted: Vec<RecordId>,
    filtered_out: Vec<RecordId>,
}

impl Pending {
    fn len(&self) -> usize {
        self.upserts.len() + self.deleted.len() + self.filtered_out.len()
    }
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

    /// Reads changes from `token` (or everything) page by page.
    async fn follow(
        &self,
        token: Option<String>,
        figures: &mut EntityFigures,
        log: &mut RunLog,
    ) -> Result<(), SyncError> {
        let resume = self.state("resume").await?;
        let start = match (&resume, &token) {
            (Some(link), _) => ReadPosition::Next(link.clone()),
            (None, Some(t)) => ReadPosition::Delta(t.clone()),
            (None, None) => ReadPosition::Initial,
        };
        let mut position = start.clone();
        let mut pending = Pending::default();
        loop {
            let page = match self
                .connector
                .changes(self.server, &[], &position, self.page_size)
                .await
            {
                Err(e) if resume.is_some() && position == start && !e.is_retryable() => {
                    // The saved next page is no longer valid: start the read again.
                    log.message(
                        Level::Warning,
                        Some(self.name()),
                        None,
                        format!("could not resume the interrupted read ({e}); reading again"),
                    );
                    self.commit(
                        Pending::default(),
                        vec![(state_key(self.name(), "resume"), None)],
                        figures,
                        log,
                    )
                    .await?;
                    position = token
                        .clone()
                        .map(ReadPosition::Delta)
                        .unwrap_or(ReadPosition::Initial);
                    continue;
                }
                other => other?,
            };
            pending.deleted.extend(page.deletes);
            self.admit(page.upserts, &mut pending).await?;
            match page.next {
                Continuation::More(link) => {
                    if pending.len() >= self.batch_rows {
                        let state = vec![(state_key(self.name(), "resume"), Some(link.clone()))];
                        self.commit(std::mem::take(&mut pending), state, figures, log)
                            .await?;
                    }
                    position = ReadPosition::Next(link);
                }
                Continuation::Done(token) => {
                    let state = self.done_state(token);
                    return self.commit(pending, state, figures, log).await;
                }
            }
        }
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

    /// Splits changed records into those that match the filter (kept) and those that left it.
    async fn admit(&self, records: Vec<Record>, pending: &mut Pending) -> Result<(), SyncError> {
        let Some(filter) = self.filter else {
            pending.upserts.extend(records);
            return Ok(());
        };
        let ids: Vec<RecordId> = records.iter().filter_map(|r| r.id).collect();
        let matching = self.matching_ids(filter, &ids).await?;
        for record in records {
            match record.id {
                Some(id) if matching.contains(&id) => pending.upserts.push(record),
                Some(id) => pending.filtered_out.push(id),
                None => {}
            }
        }
        Ok(())
    }

    fn pk(&self) -> AttributeName {
        self.server.primary_id_attribute.clone()
    }

    /// `filter` restricted to `ids`, selecting `columns`.
    fn restricted(&self, filter: Option<&Query>, ids: &[RecordId], columns: Columns) -> Query {
        let mut q = filter
            .cloned()
            .unwrap_or_else(|| Query::new(self.server.logical_name.clone()));
        q.columns = columns;
        q.order = Vec::new();
        q.top = None;
        q.and_filter(Filter::Condition(Condition {
            alias: None,
            attribute: self.pk(),
            operator: Operator::In(ids.iter().map(|id| Value::Guid(*id)).collect()),
        }));
        q
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
    async fn fetch_all(&self, mut query: Query) -> Result<Vec<Record>, SyncError> {
        let mut out = Vec::new();
        query.count = Some(FETCH_PAGE);
        query.page = Some(1);
        loop {
            let page = self.connector.fetch(self.server, &query).await?;
            out.extend(page.records);
            if !page.more {
                return Ok(out);
            }
            query.page = Some(query.page.unwrap_or(1) + 1);
            query.paging_cookie = page.paging_cookie;
        }
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
            pending.upserts.extend(records);
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
        pending.upserts.retain_mut(|record| {
            let Some(protection) = record.id.and_then(|id| self.protected.get(&id)) else {
                return true;
            };
            match protection {
                None => false,
                Some(attributes) => {
                    record.values.retain(|name, _| !attributes.contains(name));
                    true
                }
            }
        });
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
        let entity = &self.client.logical_name;
        let mut set = WriteSet::new().counting_created();
        for batch in to_batches(pending.upserts, self.client) {
            set = set.upsert(entity.clone(), batch, UpsertMode::Upsert);
        }
        let upsert_ops = set.ops.len();
        let (deleted, filtered_out) = (pending.deleted, pending.filtered_out);
        let has_deleted = !deleted.is_empty();
        if has_deleted {
            set = set.delete(entity.clone(), deleted.clone(), DeleteMode::IgnoreMissing);
        }
        let has_filtered = !filtered_out.is_empty();
        if has_filtered {
            set = set.delete(entity.clone(), filtered_out.clone(), DeleteMode::IgnoreMissing);
        }
        set.state = state;
        let outcome = self.store.write(set).await?;
        figures.created += outcome.created;
        figures.updated += outcome.updated;
        let mut removals = outcome.op_counts.iter().skip(upsert_ops).copied();
        let removed_deleted = if has_deleted {
            removals.next().unwrap_or(0)
        } else {
            0
        };
        let removed_filtered = if has_filtered {
            removals.next().unwrap_or(0)
        } else {
            0
        };
        figures.deleted += removed_deleted;
        figures.filtered_out += removed_filtered;
        if removed_deleted > 0 {
            for id in deleted.iter().take(20) {
                log.message(
                    Level::Info,
                    Some(self.name()),
                    Some(*id),
                    "removed: deleted on the server",
                );
            }
        }
        if removed_filtered > 0 {
            for id in filtered_out.iter().take(20) {
                log.message(
                    Level::Info,
                    Some(self.name()),
                    Some(*id),
                    "removed: no longer matches the sync filter (filtered-out)",
                );
            }
        }
        Ok(())
    }

    /// A fresh change-tracking token: an ids-only read of the whole entity.
    async fn fresh_token(&self) -> Result<String, SyncError> {
        let mut position = ReadPosition::Initial;
        loop {
            let page = self
                .connector
                .changes(self.server, &[self.pk()], &position, self.page_size)
                .await?;
            match page.next {
                Continuation::More(link) => position = ReadPosition::Next(link),
                Continuation::Done(token) => return Ok(token),
            }
        }
    }

    /// The client's ids with their `modifiedon`.
    async fn client_ids(&self) -> Result<HashMap<RecordId, Option<DateTime<Utc>>>, SyncError> {
        let mut out = HashMap::new();
        let modifiedon = AttributeName::parse("modifiedon").map_err(|e| SyncError::Invalid(e.to_string()))?;
        let mut request = ListRequest {
            columns: Some(vec![modifiedon]),
            after: None,
            limit: 10_000,
        };
        loop {
            let page = self.store.list(&self.client.logical_name, &request).await?;
            for r in &page.records {
                if let Some(id) = r.id {
                    out.insert(id, modified(r));
                }
            }
            match page.next {
                Some(next) => request.after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Compares id sets and applies only the differences; ends with `token` (or a fresh one).
    async fn reconcile(
        &self,
        token: Option<String>,
        figures: &mut EntityFigures,
        log: &mut RunLog,
    ) -> Result<(), SyncError> {
        figures.reconciled = true;
        let token = match token {
            Some(t) => t,
            None => self.fresh_token().await?,
        };
        let modifiedon = AttributeName::parse("modifiedon").map_err(|e| SyncError::Invalid(e.to_string()))?;
        let mut listing = self
            .filter
            .cloned()
            .unwrap_or_else(|| Query::new(self.server.logical_name.clone()));
        listing.columns = Columns::List(vec![self.pk(), modifiedon]);
        listing.order = Vec::new();
        let server: HashMap<RecordId, Option<DateTime<Utc>>> = self
            .fetch_all(listing)
            .await?
            .iter()
            .filter_map(|r| r.id.map(|id| (id, modified(r))))
            .collect();
        let client = self.client_ids().await?;
        let mut pending = Pending::default();
        for id in client.keys().filter(|id| !server.contains_key(id)) {
            // Gone from the server's matching set: left the filter, or (unfiltered) deleted.
            if self.filter.is_some() {
                pending.filtered_out.push(*id)
            } else {
                pending.deleted.push(*id)
            }
        }
        let wanted: Vec<RecordId> = server
            .iter()
            .filter(|(id, m)| client.get(id).is_none_or(|c| c != *m))
            .map(|(id, _)| *id)
            .collect();
        log.message(
            Level::Info,
            Some(self.name()),
            None,
            format!(
                "reconciled: {} on the server, {} on the client, {} to fetch, {} to remove",
                server.len(),
                client.len(),
                wanted.len(),
                pending.len()
            ),
        );
        for chunk in wanted.chunks(IDS_PER_QUERY) {
            let query = self.restricted(self.filter, chunk, Columns::All);
            pending.upserts.extend(self.fetch_all(query).await?);
            if pending.len() >= self.batch_rows {
                self.commit(std::mem::take(&mut pending), Vec::new(), figures, log)
                    .await?;
            }
        }
        let state = self.done_state(token);
        self.commit(pending, state, figures, log).await
    }
}

fn modified(r: &Record) -> Option<DateTime<Utc>> {
    match r.get("modifiedon") {
        Some(Value::DateTime(d)) => Some(*d),
        _ => None,
    }
}

/// Server records as client batches: attributes the client has, without the id and the
/// server's `versionnumber` (the client numbers its own versions); records with the same
/// attributes share a batch.
pub fn to_batches(records: Vec<Record>, client: &EntityMetadata) -> Vec<RecordBatch> {
    let mut groups: BTreeMap<Vec<AttributeName>, RecordBatch> = BTreeMap::new();
    for record in records {
        let Some(id) = record.id else { continue };
        let (columns, values): (Vec<AttributeName>, Vec<Value>) = record
            .values
            .into_iter()
            .filter(|(name, _)| {
                name != &client.primary_id_attribute
                    && name.as_str() != "versionnumber"
                    && client.attribute(name.as_str()).is_some()
            })
            .unzip();
        groups
            .entry(columns.clone())
            .or_insert_with(|| RecordBatch::new(columns))
            .push(id, values);
    }
    groups.into_values().collect()
}
