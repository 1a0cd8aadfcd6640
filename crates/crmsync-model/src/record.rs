//! Records as the store reads and writes them.

use std::collections::BTreeMap;

use crate::{AttributeName, EntityName, RecordId, Value};

/// A reference to a record of some entity: the value of a lookup attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntityReference {
    pub entity: EntityName,
    pub id: RecordId,
}

/// One record: its id and the attribute values present. On a write, absent attributes are
/// left unchanged (partial update); on a read, absent attributes were not selected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub id: Option<RecordId>,
    pub values: BTreeMap<AttributeName, Value>,
}

impl Record {
    pub fn new(id: RecordId) -> Self {
        Self {
            id: Some(id),
            values: BTreeMap::new(),
        }
    }

    pub fn with(mut self, attribute: &str, value: Value) -> Self {
        self.set(attribute, value);
        self
    }

    /// Sets a value. Panics on an invalid attribute name: callers building records from
    /// untrusted input must parse names with [`AttributeName::parse`] first.
    pub fn set(&mut self, attribute: &str, value: Value) {
        let name = AttributeName::parse(attribute).expect("attribute name must be valid");
        self.values.insert(name, value);
    }

    pub fn get(&self, attribute: &str) -> Option<&Value> {
        self.values.get(attribute)
    }
}

/// Many records of one entity with the same attributes, for bulk writes: one column list and
/// rows of values in that order. Bulk writes are atomic per batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordBatch {
    pub columns: Vec<AttributeName>,
    pub rows: Vec<(RecordId, Vec<Value>)>,
}

impl RecordBatch {
    pub fn new(columns: Vec<AttributeName>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn push(&mut self, id: RecordId, values: Vec<Value>) {
        debug_assert_eq!(values.len(), self.columns.len());
        self.rows.push((id, values));
    }
}
