//! The queue as the upload reads it: Pending transactions with only the columns it uses,
//! their values typed straight from the stored JSON text.

use std::collections::BTreeMap;

use crmsync_model::{AttributeName, EntityMetadata, Record, RecordId, TypedValue, Value};
use crmsync_query::Columns;
use crmsync_store::OrgStore;

use super::{Operation, TxStatus, name, rows_by_status};
use crate::SyncError;

/// The columns [`Queued`] reads.
const QUEUED_COLUMNS: [&str; 8] = [
    "operation",
    "entityname",
    "recordid",
    "changes",
    "originalvalues",
    "status",
    "attempts",
    "sequence",
];

/// A Pending transaction as the upload reads it: what it sends and counts, without the
/// columns only administrators read (name, times, last error), its values still JSON text
/// until the upload decodes them with the entity's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Queued {
    pub id: RecordId,
    pub sequence: i64,
    pub operation: Operation,
    pub entity: String,
    pub record_id: RecordId,
    pub attempts: i32,
    /// The changed values, a JSON object as stored.
    pub changes: String,
    /// The values they replaced, a JSON object as stored.
    pub original_values: String,
}

impl Queued {
    /// A stored row; `None` when it is not a well-formed transaction.
    fn from_record(mut record: Record) -> Option<Self> {
        let mut take = |a: &str| record.values.remove(a);
        let operation = match take("operation") {
            Some(Value::OptionSet(v)) => Operation::from_code(v)?,
            _ => return None,
        };
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        Some(Queued {
            id: record.id?,
            sequence: match take("sequence") {
                Some(Value::BigInt(s)) => s,
                _ => 0,
            },
            operation,
            entity: match take("entityname") {
                Some(Value::String(s)) => s,
                _ => return None,
            },
            record_id: match take("recordid") {
                Some(Value::Guid(id)) => id,
                _ => return None,
            },
            attempts: match take("attempts") {
                Some(Value::Integer(n)) => n,
                _ => 0,
            },
            changes: text(take("changes")),
            original_values: text(take("originalvalues")),
        })
    }

    /// The changed values, typed by the entity's metadata (attributes it lacks are left out).
    pub fn typed_changes(&self, meta: &EntityMetadata) -> Result<BTreeMap<AttributeName, Value>, SyncError> {
        typed_text(meta, &self.changes)
    }

    /// The values the changes replaced, typed like [`Queued::typed_changes`].
    pub fn typed_original(&self, meta: &EntityMetadata) -> Result<BTreeMap<AttributeName, Value>, SyncError> {
        typed_text(meta, &self.original_values)
    }
}

/// One page of Pending transactions for the upload, in queue order, after `after`.
pub async fn queued_page(
    store: &dyn OrgStore,
    after: Option<RecordId>,
    size: usize,
) -> Result<(Vec<Queued>, Option<RecordId>), SyncError> {
    let columns = Columns::List(QUEUED_COLUMNS.into_iter().map(name).collect());
    let (rows, next) = rows_by_status(store, &[TxStatus::Pending], after, size, columns).await?;
    Ok((rows.into_iter().filter_map(Queued::from_record).collect(), next))
}

/// A JSON object of queued values read straight into typed values (no JSON tree): the
/// entity's attributes by name, others skipped. Empty text is no values.
fn typed_text(meta: &EntityMetadata, text: &str) -> Result<BTreeMap<AttributeName, Value>, SyncError> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let values = serde::de::DeserializeSeed::deserialize(TypedObject(meta), &mut de)
        .and_then(|values| de.end().map(|()| values))
        .map_err(|e| SyncError::Invalid(format!("the queued values are not a JSON object: {e}")))?;
    values.map_err(|(k, e)| SyncError::Invalid(format!("the queued value of {k} is invalid: {e}")))
}

/// Reads a JSON object into values typed by `.0`'s attributes; the inner error names the
/// first value that does not fit its attribute.
struct TypedObject<'a>(&'a EntityMetadata);

type TypedValues = Result<BTreeMap<AttributeName, Value>, (String, crmsync_model::ValueError)>;

impl<'de> serde::de::DeserializeSeed<'de> for TypedObject<'_> {
    type Value = TypedValues;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TypedObject<'_> {
    type Value = TypedValues;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object of attribute values")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        let mut failed = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let attribute = self.0.attribute(&key).filter(|_| failed.is_none());
            let Some(attribute) = attribute else {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            };
            match map.next_value_seed(TypedValue(&attribute.attribute_type))? {
                Ok(value) => {
                    out.insert(attribute.logical_name.clone(), value);
                }
                Err(e) => failed = Some((key.into_owned(), e)),
            }
        }
        Ok(match failed {
            Some(f) => Err(f),
            None => Ok(out),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transactions::{entity_metadata, values_json};
    use chrono::Utc;
    use crmsync_model::AttributeType;

    #[test]
    fn queued_values_are_read_as_their_queue_wrote_them() {
        // The queue writes values with `values_json`; the upload reads them back typed.
        let meta = entity_metadata();
        let values: BTreeMap<AttributeName, Value> = [
            (name("entityname"), Value::String("quote \" and é".into())),
            (name("attempts"), Value::Integer(7)),
            (name("recordid"), Value::Guid(RecordId::new_random())),
            (name("basedon"), Value::DateTime(Utc::now())),
            (name("lasterror"), Value::Null),
        ]
        .into_iter()
        .collect();
        let read = typed_text(&meta, &values_json(&values)).unwrap();
        let mut expected = values.clone();
        expected.insert(
            name("basedon"),
            Value::from_json(&values[&name("basedon")].to_json(), &AttributeType::DateTime).unwrap(),
        );
        assert_eq!(read, expected);
    }

    /// Money queued for the server comes back digit for digit (a double keeps only about 16
    /// significant digits).
    #[test]
    fn queued_money_keeps_every_digit() {
        let meta = crmsync_model::EntityMetadata::new("account", "accounts", "name")
            .unwrap()
            .with_attribute(
                crmsync_model::AttributeMetadata::new("revenue", AttributeType::Money { precision: 4 })
                    .unwrap(),
            )
            .unwrap();
        let revenue = Value::Decimal("-922337203685477.5807".parse().unwrap());
        let values: BTreeMap<AttributeName, Value> = [(name("revenue"), revenue)].into_iter().collect();
        let text = values_json(&values);
        assert_eq!(text, r#"{"revenue":-922337203685477.5807}"#);
        assert_eq!(typed_text(&meta, &text).unwrap(), values);
    }

    #[test]
    fn queued_values_skip_unknown_attributes_and_name_a_bad_one() {
        let meta = entity_metadata();
        let read = typed_text(&meta, r#"{"gone": {"a": [1]}, "attempts": 3}"#).unwrap();
        assert_eq!(
            read,
            [(name("attempts"), Value::Integer(3))].into_iter().collect()
        );
        assert!(typed_text(&meta, "").unwrap().is_empty());
        let bad = typed_text(&meta, r#"{"attempts": "many", "sequence": 1}"#).unwrap_err();
        assert!(
            bad.to_string()
                .contains("the queued value of attempts is invalid"),
            "{bad}"
        );
        for broken in ["{", "[1]", r#"{"attempts": 1} trailing"#] {
            let e = typed_text(&meta, broken).unwrap_err();
            assert!(e.to_string().contains("not a JSON object"), "{broken}: {e}");
        }
    }
}
