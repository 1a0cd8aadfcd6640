//! Atomic write sets: the one way records are written.
//!
//! A [`WriteSet`] groups record upserts, deletes and state entries that must be committed
//! together — a Web API write with its queued transaction row, or a downloaded batch with the
//! change token that covers it. Backends apply a whole set in one database transaction, with
//! one version allocation for all of its rows.

use crmsync_model::{EntityName, Record, RecordBatch, RecordId, Version};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertMode {
    /// Insert or update (partial: columns not in the batch keep their value).
    Upsert,
    /// Insert only: an existing id is a `Conflict`.
    CreateOnly,
    /// Update only: a missing id is `NotFound`.
    UpdateOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteMode {
    /// A missing id is `NotFound` and nothing of the set is applied.
    MustExist,
    /// A missing id is skipped (idempotent delete).
    IgnoreMissing,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    Upsert {
        entity: EntityName,
        batch: RecordBatch,
        mode: UpsertMode,
    },
    Delete {
        entity: EntityName,
        ids: Vec<RecordId>,
        mode: DeleteMode,
    },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteSet {
    pub ops: Vec<WriteOp>,
    /// State entries to set (`Some`) or remove (`None`) in the same transaction.
    pub state: Vec<(String, Option<String>)>,
    /// Values state entries must have (`None`: absent) for the set to apply; checked inside
    /// the transaction after the org's write lock is taken, so a read-modify-write of a state
    /// entry cannot overwrite a change made since its read. A mismatch is `Conflict` and
    /// nothing of the set is applied.
    pub state_expected: Vec<(String, Option<String>)>,
    /// Count created and updated rows of upserts separately (costs one id lookup per row).
    pub count_created: bool,
}

impl WriteSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn upsert(mut self, entity: EntityName, batch: RecordBatch, mode: UpsertMode) -> Self {
        self.ops.push(WriteOp::Upsert { entity, batch, mode });
        self
    }

    /// Adds one record (its id is required: callers generate ids for new records).
    pub fn record(self, entity: EntityName, record: Record, mode: UpsertMode) -> Self {
        let id = record.id.expect("a record written through a write set has an id");
        let mut batch = RecordBatch::new(record.values.keys().cloned().collect());
        batch.push(id, record.values.into_values().collect());
        self.upsert(entity, batch, mode)
    }

    pub fn delete(mut self, entity: EntityName, ids: Vec<RecordId>, mode: DeleteMode) -> Self {
        self.ops.push(WriteOp::Delete { entity, ids, mode });
        self
    }

    pub fn set_state(mut self, key: impl Into<String>, value: Option<String>) -> Self {
        self.state.push((key.into(), value));
        self
    }

    /// Applies the set only if state entry `key` still has `value` (`None`: is absent).
    pub fn expect_state(mut self, key: impl Into<String>, value: Option<String>) -> Self {
        self.state_expected.push((key.into(), value));
        self
    }

    pub fn counting_created(mut self) -> Self {
        self.count_created = true;
        self
    }

    /// The same writes in fewer ops: adjacent upserts of one entity with the same mode and
    /// columns become one batch (unless a record would appear twice in it), adjacent deletes
    /// of one entity with the same mode one list. Bulk statements then write them, instead
    /// of one statement per record. `WriteOutcome::op_counts` are per op of the result.
    pub fn coalesced(mut self) -> Self {
        let mut ops: Vec<WriteOp> = Vec::with_capacity(self.ops.len());
        let mut ids_of_last = std::collections::HashSet::new();
        for op in std::mem::take(&mut self.ops) {
            match (ops.last_mut(), op) {
                (
                    Some(WriteOp::Upsert { entity, batch, mode }),
                    WriteOp::Upsert {
                        entity: e,
                        batch: b,
                        mode: m,
                    },
                ) if *entity == e
                    && *mode == m
                    && batch.columns == b.columns
                    && b.rows.iter().all(|(id, _)| !ids_of_last.contains(id)) =>
                {
                    ids_of_last.extend(b.rows.iter().map(|(id, _)| *id));
                    batch.rows.extend(b.rows);
                }
                (
                    Some(WriteOp::Delete { entity, ids, mode }),
                    WriteOp::Delete {
                        entity: e,
                        ids: i,
                        mode: m,
                    },
                ) if *entity == e && *mode == m && i.iter().all(|id| !ids_of_last.contains(id)) => {
                    ids_of_last.extend(i.iter().copied());
                    ids.extend(i);
                }
                (_, op) => {
                    ids_of_last.clear();
                    match &op {
                        WriteOp::Upsert { batch, .. } => {
                            ids_of_last.extend(batch.rows.iter().map(|(id, _)| *id))
                        }
                        WriteOp::Delete { ids, .. } => ids_of_last.extend(ids.iter().copied()),
                    }
                    ops.push(op);
                }
            }
        }
        self.ops = ops;
        self
    }

    /// Number of versions the set consumes: one per upserted row and per delete.
    pub fn row_count(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                WriteOp::Upsert { batch, .. } => batch.len(),
                WriteOp::Delete { ids, .. } => ids.len(),
            })
            .sum()
    }
}

/// What a [`WriteSet`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Rows inserted (only split from `updated` when `count_created` was asked; otherwise
    /// every upserted row counts as updated).
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Rows each op of the set wrote (upserted, or deleted and found), in op order.
    pub op_counts: Vec<u64>,
    /// Versions assigned, in op and row order (upserted rows, then deleted rows actually
    /// found, per op). Empty when nothing was written.
    pub first_version: Option<Version>,
    pub last_version: Option<Version>,
}

/// The error of a set whose expected state entry `key` changed.
pub fn state_changed(key: &str) -> crate::StoreError {
    crate::StoreError::Conflict(format!("state entry '{key}' changed since it was read"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crmsync_model::{AttributeName, Value};

    fn one(entity: &str, id: RecordId, columns: &[&str], mode: UpsertMode) -> WriteOp {
        let mut batch = RecordBatch::new(columns.iter().map(|c| AttributeName::parse(c).unwrap()).collect());
        batch.push(id, columns.iter().map(|_| Value::Null).collect());
        WriteOp::Upsert {
            entity: EntityName::parse(entity).unwrap(),
            batch,
            mode,
        }
    }

    #[test]
    fn adjacent_like_writes_coalesce_and_repeated_records_do_not() {
        let (a, b, c) = (
            RecordId::new_random(),
            RecordId::new_random(),
            RecordId::new_random(),
        );
        let account = EntityName::parse("account").unwrap();
        let set = WriteSet {
            ops: vec![
                one("account", a, &["name"], UpsertMode::Upsert),
                one("account", b, &["name"], UpsertMode::Upsert),
                // Same record again: a new op, so it applies after the first.
                one("account", a, &["name"], UpsertMode::Upsert),
                one("account", c, &["name", "revenue"], UpsertMode::Upsert),
                one("contact", c, &["name", "revenue"], UpsertMode::Upsert),
                one("contact", a, &["name", "revenue"], UpsertMode::UpdateOnly),
                WriteOp::Delete {
                    entity: account.clone(),
                    ids: vec![a],
                    mode: DeleteMode::MustExist,
                },
                WriteOp::Delete {
                    entity: account.clone(),
                    ids: vec![b],
                    mode: DeleteMode::MustExist,
                },
            ],
            ..WriteSet::default()
        }
        .coalesced();
        let shape: Vec<(String, usize)> = set
            .ops
            .iter()
            .map(|op| match op {
                WriteOp::Upsert { entity, batch, .. } => (entity.to_string(), batch.len()),
                WriteOp::Delete { entity, ids, .. } => (format!("-{entity}"), ids.len()),
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("account".to_string(), 2),
                ("account".to_string(), 1),
                ("account".to_string(), 1),
                ("contact".to_string(), 1),
                ("contact".to_string(), 1),
                ("-account".to_string(), 2),
            ]
        );
        assert_eq!(set.row_count(), 8);
    }
}
