//! [`LocalConnector`]: a server organization in the same store, reached without HTTP. It
//! offers exactly what the Web API offers (change tracking without filters, FetchXML with
//! paging), so the engine cannot tell the difference; tests and benchmarks use it to isolate
//! the engine from the network, and an instance can sync two of its own orgs with it.
//!
//! Tokens are the server org's versions; next links are `<since>.<after>.<started>` change cursors;
//! paging cookies are `k:<id>` or `o:<offset>` store cursors.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::{AttributeName, EntityMetadata, Record, RecordBatch, RecordId};
use crmsync_query::{EvalContext, Query};
use crmsync_store::{
    Change, ChangeCursor, DeleteMode, OrgStore, PageCursor, PageRequest, StoreError, UpsertMode, WriteSet,
};

use crate::{
    ChangesPage, Connector, Continuation, FetchPage, ReadPosition, ServerIdentity, ServerWrite, SyncError,
    WriteAction, WriteFailure, WriteResults,
};

pub struct LocalConnector {
    server: Arc<dyn OrgStore>,
    /// The time relative-date conditions are evaluated at (`None`: now).
    clock: Mutex<Option<DateTime<Utc>>>,
}

impl LocalConnector {
    pub fn new(server: Arc<dyn OrgStore>) -> Self {
        Self {
            server,
            clock: Mutex::new(None),
        }
    }

    /// Evaluates relative dates (`today`, `last-x-hours`, …) as if it were `now`.
    pub fn set_clock(&self, now: Option<DateTime<Utc>>) {
        *self.clock.lock().expect("clock") = now;
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.lock().expect("clock").unwrap_or_else(Utc::now)
    }
}

fn invalid(what: &str, value: &str) -> SyncError {
    SyncError::Protocol(format!("invalid {what} '{value}'"))
}

fn cursor_of(position: &ReadPosition) -> Result<ChangeCursor, SyncError> {
    Ok(match position {
        ReadPosition::Initial => ChangeCursor::start(0),
        ReadPosition::Delta(token) => {
            ChangeCursor::start(token.parse().map_err(|_| invalid("token", token))?)
        }
        ReadPosition::Next(link) => {
            let parts: Vec<&str> = link.split('.').collect();
            let [since, after, started] = parts.as_slice() else {
                return Err(invalid("next link", link));
            };
            let number = |s: &str| s.parse().map_err(|_| invalid("next link", link));
            ChangeCursor {
                since: number(since)?,
                after: number(after)?,
                started: number(started)?,
            }
        }
    })
}

fn only(mut record: Record, columns: &[AttributeName], pk: &AttributeName) -> Record {
    if !columns.is_empty() {
        record
            .values
            .retain(|name, _| name == pk || columns.contains(name));
    }
    record
}

#[async_trait]
impl Connector for LocalConnector {
    async fn who_am_i(&self) -> Result<ServerIdentity, SyncError> {
        let id = RecordId::from_uuid(uuid::Uuid::nil());
        Ok(ServerIdentity {
            user_id: id,
            organization_id: id,
        })
    }

    async fn entities(&self) -> Result<Vec<EntityMetadata>, SyncError> {
        Ok(self.server.entities().await?)
    }

    async fn changes(
        &self,
        entity: &EntityMetadata,
        columns: &[AttributeName],
        position: &ReadPosition,
        page_size: usize,
    ) -> Result<ChangesPage, SyncError> {
        let cursor = cursor_of(position)?;
        let page = match self.server.changes(&entity.logical_name, cursor, page_size).await {
            Err(e @ StoreError::Expired { .. }) => return Err(SyncError::Expired(e.to_string())),
            other => other?,
        };
        let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
        for change in page.changes {
            match change {
                Change::Upsert(r) => upserts.push(only(r, columns, &entity.primary_id_attribute)),
                Change::Delete { id, .. } => deletes.push(id),
            }
        }
        let next = if page.more {
            Continuation::More(format!(
                "{}.{}.{}",
                page.next.since, page.next.after, page.next.started
            ))
        } else {
            Continuation::Done(page.next.after.to_string())
        };
        Ok(ChangesPage {
            upserts: RecordBatch::group(upserts, &entity.primary_id_attribute),
            deletes,
            next,
        })
    }

    async fn fetch(&self, _entity: &EntityMetadata, query: &Query) -> Result<FetchPage, SyncError> {
        let cursor = match query.paging_cookie.as_deref() {
            None => None,
            Some(c) => Some(match c.split_once(':') {
                Some(("k", id)) => {
                    PageCursor::AfterId(RecordId::parse(id).map_err(|_| invalid("paging cookie", c))?)
                }
                Some(("o", n)) => PageCursor::Offset(n.parse().map_err(|_| invalid("paging cookie", c))?),
                _ => return Err(invalid("paging cookie", c)),
            }),
        };
        let request = PageRequest {
            size: query.count.unwrap_or(5000) as usize,
            cursor,
            with_total: false,
        };
        let context = EvalContext {
            now: self.now(),
            user_id: None,
        };
        let page = self.server.query(query, &context, &request).await?;
        let paging_cookie = page.next.as_ref().map(|c| match c {
            PageCursor::AfterId(id) => format!("k:{id}"),
            PageCursor::Offset(n) => format!("o:{n}"),
        });
        Ok(FetchPage {
            records: page.rows.into_iter().map(|r| r.record).collect(),
            more: page.next.is_some(),
            paging_cookie,
        })
    }

    async fn write(
        &self,
        _entities: &[EntityMetadata],
        writes: &[ServerWrite],
        atomic: bool,
    ) -> Result<WriteResults, SyncError> {
        let mut all = WriteSet::new();
        for w in writes {
            all.ops.extend(write_set(w).ops);
        }
        match self.server.write(all).await {
            Ok(_) => return Ok(vec![Ok(()); writes.len()]),
            Err(e) if atomic => {
                let failure = write_failure(e)?;
                return Ok(vec![Err(failure); writes.len()]);
            }
            Err(_) => {}
        }
        // One failed: apply each on its own, as a Dataverse batch without change sets does.
        let mut results = Vec::with_capacity(writes.len());
        for w in writes {
            results.push(match self.server.write(write_set(w)).await {
                Ok(_) => Ok(()),
                Err(e) => Err(write_failure(e)?),
            });
        }
        Ok(results)
    }
}

fn write_set(w: &ServerWrite) -> WriteSet {
    let mut record = Record::new(w.id);
    record.values = w.values.clone();
    match w.action {
        WriteAction::Upsert => WriteSet::new().record(w.entity.clone(), record, UpsertMode::Upsert),
        WriteAction::Create => WriteSet::new().record(w.entity.clone(), record, UpsertMode::CreateOnly),
        WriteAction::Update => WriteSet::new().record(w.entity.clone(), record, UpsertMode::UpdateOnly),
        WriteAction::Delete => WriteSet::new().delete(w.entity.clone(), vec![w.id], DeleteMode::MustExist),
    }
}

/// A store error as the answer to one write; errors of the store itself stay errors.
fn write_failure(e: StoreError) -> Result<WriteFailure, SyncError> {
    Ok(match e {
        StoreError::NotFound(m) => WriteFailure::NotFound(format!("{m} does not exist")),
        StoreError::Conflict(message) => WriteFailure::Rejected { status: 412, message },
        StoreError::Invalid(m) => WriteFailure::Rejected {
            status: 400,
            message: m.to_string(),
        },
        StoreError::BadRequest(message) => WriteFailure::Rejected { status: 400, message },
        e if e.is_retryable() => WriteFailure::Retryable(e.to_string()),
        e => return Err(e.into()),
    })
}
