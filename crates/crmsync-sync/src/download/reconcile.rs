//! Reconciling an entity (see the module above): the server's matching ids, with
//! `modifiedon`, against the client's, and only the differences removed, fetched or refreshed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crmsync_model::{AttributeName, Record, RecordBatch, RecordId, Value};
use crmsync_query::{Columns, Query};
use crmsync_store::ListRequest;
use futures::StreamExt;

use super::{EntitySync, IDS_PER_QUERY, Pending, to_client};
use crate::log::{EntityFigures, Level, RunLog};
use crate::{Continuation, PageSizes, ReadPosition, SyncError};

impl EntitySync<'_> {
    /// A fresh change-tracking token: an ids-only read of the whole entity.
    async fn fresh_token(&self) -> Result<String, SyncError> {
        let columns = [self.pk()];
        let sizes = PageSizes {
            first: self.page_size.max(1),
            max: self.page_size.max(1),
        };
        let mut pages = self
            .connector
            .change_pages(self.server, &columns, ReadPosition::Initial, sizes);
        while let Some(page) = pages.next().await {
            if let Continuation::Done(token) = page?.next {
                return Ok(token);
            }
        }
        Err(SyncError::Protocol(format!(
            "the changes of '{}' ended without a delta link",
            self.name()
        )))
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
    pub(super) async fn reconcile(
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
            let records = self.fetch_all(query).await?;
            let batches = RecordBatch::group(records, &self.server.primary_id_attribute);
            pending
                .upserts
                .extend(batches.into_iter().map(|b| to_client(b, self.client)));
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
