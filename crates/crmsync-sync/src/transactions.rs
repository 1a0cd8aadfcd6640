//! The offline transaction queue (SPEC §6.4–6.6): the `migrate_transaction` entity of a
//! Client org, one row per client change waiting for (or done with) its upload to the server.
//!
//! A row holds the operation, the entity and record id, the changed attribute values
//! (`changes`, JSON) and the values they replaced (`originalvalues`, JSON, for per-attribute
//! conflict detection), the server's `modifiedon` the change was based on (`basedon`), the
//! status (Pending, Processed, Error, Archived), the attempts, the last error, when it was
//! processed, and its place in the queue (`sequence`).
//!
//! Order: a transaction's id starts with its sequence number (a per-process strictly
//! increasing count of nanoseconds), so the primary key orders the queue and the upload reads
//! it by key, in constant time per page, however long the queue is.
//!
//! Status rules (administrators steer the queue): Processed is final; Set to Pending takes
//! Error or Archived transactions; Set to Archived takes Pending or Error ones. Anything else
//! is a [`SyncError::Conflict`] naming the transaction and its status, and nothing changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use crmsync_model::{
    AttributeMetadata, AttributeName, AttributeType, EntityMetadata, EntityName, MetadataChange, OptionSet,
    Record, RecordBatch, RecordId, Value,
};
use crmsync_query::{Columns, Condition, EvalContext, Filter, Operator, OrderBy, Query};
use crmsync_store::{OrgStore, PageCursor, PageRequest, StoreError, UpsertMode, WriteSet};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::SyncError;

mod queued;

pub use queued::{Queued, queued_page};

/// Logical name of the queue's entity.
pub const ENTITY: &str = "migrate_transaction";
/// Entity set name of the queue's entity in the Web API.
pub const ENTITY_SET: &str = "migrate_transactions";

/// Largest number of transactions one status change takes.
pub const MAX_IDS: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    const ALL: [Operation; 3] = [Operation::Create, Operation::Update, Operation::Delete];

    fn code(self) -> i32 {
        match self {
            Operation::Create => 1,
            Operation::Update => 2,
            Operation::Delete => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Operation::Create => "Create",
            Operation::Update => "Update",
            Operation::Delete => "Delete",
        }
    }

    fn from_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.code() == code)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxStatus {
    Pending,
    Processed,
    Error,
    Archived,
}

impl TxStatus {
    pub const ALL: [TxStatus; 4] = [
        TxStatus::Pending,
        TxStatus::Processed,
        TxStatus::Error,
        TxStatus::Archived,
    ];

    fn code(self) -> i32 {
        match self {
            TxStatus::Pending => 1,
            TxStatus::Processed => 2,
            TxStatus::Error => 3,
            TxStatus::Archived => 4,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TxStatus::Pending => "Pending",
            TxStatus::Processed => "Processed",
            TxStatus::Error => "Error",
            TxStatus::Archived => "Archived",
        }
    }

    fn from_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// `pending`, `processed`, `error` or `archived`, in any case.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.label().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether an administrator may move a transaction from `self` to `to`.
    pub fn may_become(self, to: TxStatus) -> bool {
        matches!(
            (self, to),
            (TxStatus::Error | TxStatus::Archived, TxStatus::Pending)
                | (TxStatus::Pending | TxStatus::Error, TxStatus::Archived)
        )
    }
}

fn attr(name: &str, ty: AttributeType, display: &str) -> AttributeMetadata {
    AttributeMetadata::new(name, ty)
        .expect("queue attribute names are valid")
        .with_display_name(display)
}

fn options<T: Copy>(all: &[T], code: impl Fn(T) -> i32, label: impl Fn(T) -> &'static str) -> OptionSet {
    OptionSet {
        options: all
            .iter()
            .map(|&o| crmsync_model::OptionMetadata::new(code(o), label(o)))
            .collect(),
    }
}

/// The metadata of `migrate_transaction`.
pub fn entity_metadata() -> EntityMetadata {
    let memo = AttributeType::Memo {
        max_length: crmsync_model::MAX_MEMO_LENGTH,
    };
    let attributes = [
        attr(
            "operation",
            AttributeType::Picklist {
                options: options(&Operation::ALL, Operation::code, Operation::label),
            },
            "Operation",
        ),
        attr("entityname", AttributeType::String { max_length: 100 }, "Entity"),
        attr("recordid", AttributeType::Uniqueidentifier, "Record"),
        attr("changes", memo.clone(), "Changed values"),
        attr("originalvalues", memo.clone(), "Original values"),
        attr(
            "basedon",
            AttributeType::DateTime,
            "Based on server version (modified on)",
        ),
        attr(
            "status",
            AttributeType::Picklist {
                options: options(&TxStatus::ALL, TxStatus::code, TxStatus::label),
            },
            "Status",
        ),
        attr(
            "attempts",
            AttributeType::Integer {
                min: 0,
                max: i32::MAX,
            },
            "Attempts",
        ),
        attr("lasterror", memo, "Last error"),
        attr("processedon", AttributeType::DateTime, "Processed on"),
        attr("sequence", AttributeType::BigInt, "Order"),
    ];
    let mut entity = EntityMetadata::new(ENTITY, ENTITY_SET, "name").expect("the queue entity is valid");
    entity.display_name = "Offline transaction".into();
    for a in attributes {
        entity = entity.with_attribute(a).expect("the queue attributes are valid");
    }
    entity
}

/// Creates `migrate_transaction` in the org if it lacks it.
pub async fn ensure_entity(store: &dyn OrgStore) -> Result<(), SyncError> {
    match store.entity(ENTITY).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound(_)) => {
            store
                .apply_metadata(&[MetadataChange::CreateEntity {
                    entity: entity_metadata(),
                }])
                .await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The next queue position: nanoseconds since the epoch, strictly increasing in this process.
fn next_sequence() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX / 2);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// A transaction id ordered by `sequence`: its first 8 bytes are the sequence (big-endian),
/// the rest random.
pub(crate) fn ordered_id(sequence: i64) -> RecordId {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[..8].copy_from_slice(&(sequence as u64).to_be_bytes());
    RecordId::from_uuid(uuid::Uuid::from_bytes(bytes))
}

/// One client change to queue.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientChange {
    pub entity: EntityName,
    pub id: RecordId,
    pub operation: Operation,
    /// The values written (empty for a delete).
    pub values: BTreeMap<AttributeName, Value>,
}

/// One queued change, as administrators see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub id: RecordId,
    pub sequence: i64,
    pub operation: Operation,
    pub entity: String,
    pub record_id: RecordId,
    /// Changed attributes with their new values (Web API JSON shapes).
    pub changes: serde_json::Map<String, Json>,
    /// The values the changes replaced.
    pub original_values: serde_json::Map<String, Json>,
    /// The server's `modifiedon` of the record the change was based on.
    pub based_on: Option<DateTime<Utc>>,
    pub status: TxStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_on: Option<DateTime<Utc>>,
    pub modified_on: Option<DateTime<Utc>>,
    pub processed_on: Option<DateTime<Utc>>,
}

/// Values as a JSON object, decimals digit for digit ([`Value::write_json`]).
fn values_json(values: &BTreeMap<AttributeName, Value>) -> String {
    let mut out = vec![b'{'];
    for (i, (k, v)) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, k.as_str()).expect("writing to memory does not fail");
        out.push(b':');
        v.write_json(&mut out);
    }
    out.push(b'}');
    String::from_utf8(out).expect("JSON text is UTF-8")
}

fn name(a: &str) -> AttributeName {
    AttributeName::parse(a).expect("queue attribute names are valid")
}

/// Columns of a new transaction row, in the order [`new_row`] fills them.
fn row_columns() -> Vec<AttributeName> {
    [
        "name",
        "operation",
        "entityname",
        "recordid",
        "changes",
        "originalvalues",
        "basedon",
        "status",
        "attempts",
        "sequence",
    ]
    .into_iter()
    .map(name)
    .collect()
}

/// Reads what the queue needs of the records `changes` touch (one query per entity and chunk
/// of ids): the replaced values of the changed attributes, and `modifiedon`.
async fn current_values(
    store: &dyn OrgStore,
    changes: &[ClientChange],
) -> Result<HashMap<(EntityName, RecordId), Record>, SyncError> {
    let mut by_entity: BTreeMap<&EntityName, (HashSet<AttributeName>, Vec<RecordId>)> = BTreeMap::new();
    for c in changes {
        let (columns, ids) = by_entity.entry(&c.entity).or_default();
        columns.extend(c.values.keys().cloned());
        ids.push(c.id);
    }
    let mut out = HashMap::new();
    for (entity, (mut columns, ids)) in by_entity {
        columns.insert(name("modifiedon"));
        let meta = store.entity(entity.as_str()).await?;
        columns.retain(|c| meta.attribute(c.as_str()).is_some());
        for record in records_by_id(store, &meta, &ids, columns.into_iter().collect()).await? {
            if let Some(id) = record.id {
                out.insert((entity.clone(), id), record);
            }
        }
    }
    Ok(out)
}

/// The stored records among `ids`, with `columns` (all when empty).
pub(crate) async fn records_by_id(
    store: &dyn OrgStore,
    meta: &EntityMetadata,
    ids: &[RecordId],
    columns: Vec<AttributeName>,
) -> Result<Vec<Record>, SyncError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let mut query = Query::new(meta.logical_name.clone());
        if !columns.is_empty() {
            query.columns = Columns::List(columns.clone());
        }
        query.filter = Some(Filter::Condition(Condition {
            alias: None,
            attribute: meta.primary_id_attribute.clone(),
            operator: Operator::In(chunk.iter().map(|id| Value::Guid(*id)).collect()),
        }));
        let mut page = PageRequest::first(chunk.len().max(1));
        loop {
            let result = store.query(&query, &EvalContext::new(Utc::now()), &page).await?;
            out.extend(result.rows.into_iter().map(|r| r.record));
            match result.next {
                Some(cursor) => page.cursor = Some(cursor),
                None => break,
            }
        }
    }
    Ok(out)
}

/// The queue rows recording `changes`, to write in the same [`WriteSet`] as the changes
/// themselves (read before the changes are written: they record the replaced values).
pub async fn queue(store: &dyn OrgStore, changes: &[ClientChange]) -> Result<WriteSet, SyncError> {
    if changes.is_empty() {
        return Ok(WriteSet::new());
    }
    ensure_entity(store).await?;
    let current = current_values(store, changes).await?;
    let mut batch = RecordBatch::new(row_columns());
    for change in changes {
        let before = current.get(&(change.entity.clone(), change.id));
        let original: BTreeMap<AttributeName, Value> = match (change.operation, before) {
            (Operation::Update, Some(record)) => change
                .values
                .keys()
                .map(|k| (k.clone(), record.values.get(k).cloned().unwrap_or(Value::Null)))
                .collect(),
            _ => BTreeMap::new(),
        };
        let based_on = before
            .and_then(|r| r.get("modifiedon").cloned())
            .unwrap_or(Value::Null);
        let sequence = next_sequence();
        let label = format!("{} {} {}", change.operation.label(), change.entity, change.id);
        batch.push(
            ordered_id(sequence),
            vec![
                Value::String(label),
                Value::OptionSet(change.operation.code()),
                Value::String(change.entity.to_string()),
                Value::Guid(change.id),
                Value::String(values_json(&change.values)),
                Value::String(values_json(&original)),
                based_on,
                Value::OptionSet(TxStatus::Pending.code()),
                Value::Integer(0),
                Value::BigInt(sequence),
            ],
        );
    }
    Ok(WriteSet::new().upsert(entity_name(), batch, UpsertMode::CreateOnly))
}

pub fn entity_name() -> EntityName {
    EntityName::parse(ENTITY).expect("the queue entity name is valid")
}

fn json_map(record: &Record, attribute: &str) -> serde_json::Map<String, Json> {
    match record.get(attribute) {
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Json::Object(map)) => map,
            _ => serde_json::Map::new(),
        },
        _ => serde_json::Map::new(),
    }
}

fn time(record: &Record, attribute: &str) -> Option<DateTime<Utc>> {
    match record.get(attribute) {
        Some(Value::DateTime(d)) => Some(*d),
        _ => None,
    }
}

impl Transaction {
    /// A stored row; `None` when it is not a well-formed transaction.
    pub fn from_record(record: &Record) -> Option<Self> {
        let option = |a: &str| match record.get(a) {
            Some(Value::OptionSet(v)) => Some(*v),
            _ => None,
        };
        Some(Self {
            id: record.id?,
            sequence: match record.get("sequence") {
                Some(Value::BigInt(s)) => *s,
                _ => 0,
            },
            operation: Operation::from_code(option("operation")?)?,
            entity: match record.get("entityname") {
                Some(Value::String(s)) => s.clone(),
                _ => return None,
            },
            record_id: match record.get("recordid") {
                Some(Value::Guid(id)) => *id,
                _ => return None,
            },
            changes: json_map(record, "changes"),
            original_values: json_map(record, "originalvalues"),
            based_on: time(record, "basedon"),
            status: TxStatus::from_code(option("status")?)?,
            attempts: match record.get("attempts") {
                Some(Value::Integer(n)) => *n,
                _ => 0,
            },
            last_error: match record.get("lasterror") {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            },
            created_on: time(record, "createdon"),
            modified_on: time(record, "modifiedon"),
            processed_on: time(record, "processedon"),
        })
    }
}

fn status_filter(statuses: &[TxStatus]) -> Filter {
    Filter::Condition(Condition {
        alias: None,
        attribute: name("status"),
        operator: Operator::In(statuses.iter().map(|s| Value::OptionSet(s.code())).collect()),
    })
}

/// One page of the queue.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TransactionPage {
    pub transactions: Vec<Transaction>,
    /// All transactions with the status asked for.
    pub total: u64,
}

/// Transactions with `status` (all when `None`), in queue order, `skip` then `top`.
pub async fn list(
    store: &dyn OrgStore,
    status: Option<TxStatus>,
    top: usize,
    skip: u64,
) -> Result<TransactionPage, SyncError> {
    if store.entity(ENTITY).await.is_err() {
        return Ok(TransactionPage {
            transactions: Vec::new(),
            total: 0,
        });
    }
    let mut query = Query::new(entity_name());
    query.filter = status.map(|s| status_filter(&[s]));
    query.order = vec![OrderBy {
        attribute: name("sequence"),
        descending: false,
        alias: None,
    }];
    let page = PageRequest {
        size: top.clamp(1, 5000),
        cursor: (skip > 0).then_some(PageCursor::Offset(skip)),
        with_total: true,
    };
    let result = store.query(&query, &EvalContext::new(Utc::now()), &page).await?;
    Ok(TransactionPage {
        transactions: result
            .rows
            .iter()
            .filter_map(|r| Transaction::from_record(&r.record))
            .collect(),
        total: result.total.unwrap_or(0),
    })
}

/// Transactions with one of `statuses`, in queue order, after `after` (keyset paging).
pub async fn page_by_status(
    store: &dyn OrgStore,
    statuses: &[TxStatus],
    after: Option<RecordId>,
    size: usize,
) -> Result<(Vec<Transaction>, Option<RecordId>), SyncError> {
    let (rows, next) = rows_by_status(store, statuses, after, size, Columns::All).await?;
    Ok((rows.iter().filter_map(Transaction::from_record).collect(), next))
}

/// One page of rows with one of `statuses`, in queue order, with `columns`.
async fn rows_by_status(
    store: &dyn OrgStore,
    statuses: &[TxStatus],
    after: Option<RecordId>,
    size: usize,
    columns: Columns,
) -> Result<(Vec<Record>, Option<RecordId>), SyncError> {
    if store.entity(ENTITY).await.is_err() {
        return Ok((Vec::new(), None));
    }
    let mut query = Query::new(entity_name());
    query.columns = columns;
    query.filter = Some(status_filter(statuses));
    let page = PageRequest {
        size,
        cursor: after.map(PageCursor::AfterId),
        with_total: false,
    };
    let result = store.query(&query, &EvalContext::new(Utc::now()), &page).await?;
    let next = match result.next {
        Some(PageCursor::AfterId(id)) => Some(id),
        _ => None,
    };
    Ok((result.rows.into_iter().map(|r| r.record).collect(), next))
}

/// Every transaction with one of `statuses` (bounded sets: errors, pending changes of one
/// entity).
pub async fn all_by_status(
    store: &dyn OrgStore,
    statuses: &[TxStatus],
) -> Result<Vec<Transaction>, SyncError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = page_by_status(store, statuses, after, 5000).await?;
        out.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// What an upload decided for one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub id: RecordId,
    pub status: TxStatus,
    pub attempts: i32,
    pub error: Option<String>,
}

/// The write recording `outcomes` (status, attempts, error, processed time).
pub fn outcome_writes(outcomes: &[Outcome]) -> WriteSet {
    let columns = ["status", "attempts", "lasterror", "processedon"]
        .into_iter()
        .map(name)
        .collect();
    let mut batch = RecordBatch::new(columns);
    let now = Utc::now();
    for o in outcomes {
        batch.push(
            o.id,
            vec![
                Value::OptionSet(o.status.code()),
                Value::Integer(o.attempts),
                o.error.clone().map(Value::String).unwrap_or(Value::Null),
                if o.status == TxStatus::Processed {
                    Value::DateTime(now)
                } else {
                    Value::Null
                },
            ],
        );
    }
    if batch.is_empty() {
        return WriteSet::new();
    }
    WriteSet::new().upsert(entity_name(), batch, UpsertMode::UpdateOnly)
}

/// State key of a record the next download refreshes from the server: its queued changes
/// were archived, so the client's copy may differ from the server's.
pub fn refresh_key(entity: &str, id: RecordId) -> String {
    format!("sync.refresh.{entity}.{id}")
}

/// Prefix of the refresh keys of `entity`.
pub fn refresh_prefix(entity: &str) -> String {
    format!("sync.refresh.{entity}.")
}

/// Moves the transactions `ids` to `to` (Pending or Archived), all or none: an unknown id or
/// a transition the rules refuse is an error naming it. Returns how many changed.
pub async fn set_status(store: &dyn OrgStore, ids: &[RecordId], to: TxStatus) -> Result<u64, SyncError> {
    if !matches!(to, TxStatus::Pending | TxStatus::Archived) {
        return Err(SyncError::Invalid(format!(
            "transactions can only be set to Pending or Archived, not {}",
            to.label()
        )));
    }
    if ids.len() > MAX_IDS {
        return Err(SyncError::Invalid(format!(
            "{} transactions at once is more than the limit of {MAX_IDS}",
            ids.len()
        )));
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let meta = store
        .entity(ENTITY)
        .await
        .map_err(|_| SyncError::NotFound(format!("transaction {} was not found", ids[0])))?;
    let unique: Vec<RecordId> = {
        let mut seen = HashSet::new();
        ids.iter().copied().filter(|id| seen.insert(*id)).collect()
    };
    let found: HashMap<RecordId, Transaction> = records_by_id(store, &meta, &unique, Vec::new())
        .await?
        .iter()
        .filter_map(Transaction::from_record)
        .map(|t| (t.id, t))
        .collect();
    let mut refresh = Vec::new();
    for id in &unique {
        let t = found
            .get(id)
            .ok_or_else(|| SyncError::NotFound(format!("transaction {id} was not found")))?;
        if t.status != to && !t.status.may_become(to) {
            return Err(SyncError::Conflict(format!(
                "transaction {id} is {}; it cannot be set to {}{}",
                t.status.label(),
                to.label(),
                if t.status == TxStatus::Processed {
                    " (Processed is final)"
                } else {
                    ""
                }
            )));
        }
        if to == TxStatus::Archived && t.status != TxStatus::Archived {
            refresh.push(refresh_key(&t.entity, t.record_id));
        }
    }
    let outcomes: Vec<Outcome> = unique
        .iter()
        .filter_map(|id| found.get(id))
        .filter(|t| t.status != to)
        .map(|t| Outcome {
            id: t.id,
            status: to,
            attempts: if to == TxStatus::Pending { 0 } else { t.attempts },
            error: if to == TxStatus::Pending {
                None
            } else {
                t.last_error.clone()
            },
        })
        .collect();
    let changed = outcomes.len() as u64;
    let mut set = outcome_writes(&outcomes);
    for key in refresh {
        set = set.set_state(key, Some(String::new()));
    }
    store.write(set).await?;
    Ok(changed)
}

/// Sets every Error transaction to Pending; returns how many.
pub async fn set_all_pending(store: &dyn OrgStore) -> Result<u64, SyncError> {
    let mut changed = 0;
    loop {
        let (page, _) = page_by_status(store, &[TxStatus::Error], None, 5000).await?;
        if page.is_empty() {
            return Ok(changed);
        }
        let outcomes: Vec<Outcome> = page
            .iter()
            .map(|t| Outcome {
                id: t.id,
                status: TxStatus::Pending,
                attempts: 0,
                error: None,
            })
            .collect();
        changed += outcomes.len() as u64;
        store.write(outcome_writes(&outcomes)).await?;
    }
}

/// Counts of transactions by status.
pub async fn counts(store: &dyn OrgStore) -> Result<BTreeMap<&'static str, u64>, SyncError> {
    let mut out = BTreeMap::new();
    for status in TxStatus::ALL {
        out.insert(status.label(), list(store, Some(status), 1, 0).await?.total);
    }
    Ok(out)
}

/// What the download must not overwrite in the client's copy of an entity: per record with
/// Pending or Error transactions, the attributes they change (`None`: the whole record — a
/// queued create or delete).
pub async fn protected(
    store: &dyn OrgStore,
    entity: &EntityName,
) -> Result<HashMap<RecordId, Option<HashSet<AttributeName>>>, SyncError> {
    let mut out: HashMap<RecordId, Option<HashSet<AttributeName>>> = HashMap::new();
    for t in all_by_status(store, &[TxStatus::Pending, TxStatus::Error]).await? {
        if t.entity != entity.as_str() {
            continue;
        }
        let slot = out.entry(t.record_id).or_insert_with(|| Some(HashSet::new()));
        match (t.operation, slot.as_mut()) {
            (Operation::Update, Some(attrs)) => {
                attrs.extend(t.changes.keys().filter_map(|k| AttributeName::parse(k).ok()));
            }
            _ => *slot = None,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_the_rules() {
        use TxStatus::*;
        assert!(Error.may_become(Pending));
        assert!(Archived.may_become(Pending));
        assert!(Pending.may_become(Archived));
        assert!(Error.may_become(Archived));
        assert!(!Processed.may_become(Pending));
        assert!(!Processed.may_become(Archived));
        assert!(!Pending.may_become(Processed));
        assert!(!Archived.may_become(Error));
    }

    #[test]
    fn ids_follow_the_sequence() {
        let a = next_sequence();
        let b = next_sequence();
        assert!(b > a);
        let (ia, ib) = (ordered_id(a), ordered_id(b));
        assert!(ia.to_string() < ib.to_string());
        assert!(ia.as_uuid().as_bytes() < ib.as_uuid().as_bytes());
    }

    #[test]
    fn statuses_parse_in_any_case() {
        assert_eq!(TxStatus::parse("error"), Some(TxStatus::Error));
        assert_eq!(TxStatus::parse(" Pending "), Some(TxStatus::Pending));
        assert_eq!(TxStatus::parse("done"), None);
    }

    #[test]
    fn the_entity_is_valid_metadata() {
        let e = entity_metadata();
        e.validate().unwrap();
        assert_eq!(e.primary_id_attribute.as_str(), "migrate_transactionid");
        assert!(e.attribute("lasterror").is_some());
    }
}
