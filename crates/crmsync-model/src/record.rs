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

    /// Records as batches, one per distinct attribute set in order of first appearance, with
    /// `pk` (the records' id attribute) left out of the columns. Records without an id are
    /// skipped.
    pub fn group(records: impl IntoIterator<Item = Record>, pk: &AttributeName) -> Vec<RecordBatch> {
        let mut batches: Vec<RecordBatch> = Vec::new();
        for mut record in records {
            let Some(id) = record.id else { continue };
            record.values.remove(pk);
            let same = |b: &RecordBatch| b.columns.iter().eq(record.values.keys());
            let index = match batches.iter().rposition(same) {
                Some(i) => i,
                None => {
                    batches.push(RecordBatch::new(record.values.keys().cloned().collect()));
                    batches.len() - 1
                }
            };
            batches[index].push(id, record.values.into_values().collect());
        }
        batches
    }

    /// The rows as records, each with its id also set as the `pk` value (as stores read them).
    pub fn into_records(self, pk: &AttributeName) -> Vec<Record> {
        let columns = self.columns;
        self.rows
            .into_iter()
            .map(|(id, values)| {
                let mut record = Record::new(id);
                record.values.insert(pk.clone(), Value::Guid(id));
                record.values.extend(columns.iter().cloned().zip(values));
                record
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_group_by_attribute_set_and_come_back_unchanged() {
        let pk = AttributeName::parse("thingid").unwrap();
        let record = |name: Option<&str>| {
            let id = RecordId::new_random();
            let mut r = Record::new(id).with("thingid", Value::Guid(id));
            if let Some(n) = name {
                r.set("name", Value::String(n.into()));
            }
            r
        };
        let records = vec![record(Some("a")), record(None), record(Some("b"))];
        let batches = RecordBatch::group(records.clone(), &pk);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].columns, vec![AttributeName::parse("name").unwrap()]);
        assert_eq!(batches[0].len(), 2);
        assert!(batches[1].columns.is_empty());
        let back: Vec<Record> = batches.into_iter().flat_map(|b| b.into_records(&pk)).collect();
        assert_eq!(
            back,
            vec![records[0].clone(), records[2].clone(), records[1].clone()]
        );
    }
}
