//! Backend-neutral steps around statements: coercing a batch before it is bound, sizing
//! multi-row statements, and assembling a record from read columns.

use crmsync_model::{
    AttributeName, EntityMetadata, ModelError, Record, RecordBatch, RecordId, Value, ValueError, Version,
};

use super::values::{Raw, value_of};
use super::{Dialect, ReadLayout, WriteLayout};
use crate::{StoreError, StoreResult};

/// Checks a batch against its entity and coerces every value to its attribute's type, in
/// place. Nothing is written when this fails; the error names the attribute (and the record).
/// Text containing U+0000 is refused: PostgreSQL cannot store it, and both backends behave
/// alike.
pub fn prepare_upsert(entity: &EntityMetadata, batch: &mut RecordBatch) -> StoreResult<WriteLayout> {
    let layout = WriteLayout::new(entity, &batch.columns)?;
    coerce_rows(&layout, &batch.columns, &mut batch.rows)?;
    Ok(layout)
}

/// [`prepare_upsert`]'s check and coercion for some rows of a batch whose layout is known, so
/// a writer can coerce the rows of its next statement while the one before runs (the
/// transaction then stops at the first row that fails: nothing is written either).
pub fn coerce_rows(
    layout: &WriteLayout,
    columns: &[AttributeName],
    rows: &mut [(RecordId, Vec<Value>)],
) -> StoreResult<()> {
    for (id, values) in rows {
        if values.len() != columns.len() {
            return Err(StoreError::BadRequest(format!(
                "record {id} has {} values for {} columns",
                values.len(),
                columns.len()
            )));
        }
        for (i, v) in values.iter_mut().enumerate() {
            let attribute = &columns[i];
            let coerced = std::mem::replace(v, Value::Null).coerce(&layout.types[i]);
            *v = coerced.map_err(|error| ModelError::InvalidValue {
                attribute: attribute.clone(),
                error,
            })?;
            // PostgreSQL text cannot hold U+0000; both backends refuse it alike.
            if matches!(v, Value::String(s) if s.contains('\0')) {
                return Err(ModelError::InvalidValue {
                    attribute: attribute.clone(),
                    error: ValueError::WrongType {
                        expected: "text without NUL (U+0000) characters",
                        got: "text containing U+0000".into(),
                    },
                }
                .into());
            }
            if v.is_null() && layout.required[i] {
                return Err(ModelError::InvalidValue {
                    attribute: attribute.clone(),
                    error: ValueError::Required,
                }
                .into());
            }
        }
    }
    Ok(())
}

/// How many rows of `width` columns one multi-row statement carries.
pub fn rows_per_statement(dialect: Dialect, width: usize) -> usize {
    (dialect.max_params() / width.max(1)).clamp(1, 500)
}

/// Splits rows into statements of at most `max` rows in which no id appears twice:
/// PostgreSQL refuses an `ON CONFLICT DO UPDATE` that touches one row twice, an `UPDATE … FROM`
/// updates a row matched twice only once, and a later statement applies a repeated id after
/// its earlier occurrence, as the batch orders it.
pub fn distinct_runs(rows: &[(RecordId, Vec<Value>)], max: usize) -> Vec<&[(RecordId, Vec<Value>)]> {
    let mut out = Vec::new();
    let (mut start, mut ids) = (0, std::collections::HashSet::new());
    for (i, (id, _)) in rows.iter().enumerate() {
        if i - start == max || !ids.insert(*id) {
            out.push(&rows[start..i]);
            start = i;
            ids.clear();
            ids.insert(*id);
        }
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

/// The values of one row read with `layout`, in the order of [`ReadLayout::names`], with the
/// record's id and version.
pub fn decode_row(layout: &ReadLayout, mut raws: Vec<Raw>) -> StoreResult<(RecordId, Version, Vec<Value>)> {
    let (mut id, mut version) = (None, 0);
    let mut values = Vec::with_capacity(layout.attributes.len());
    for &i in &layout.by_name {
        let (name, ty, col) = &layout.attributes[i];
        let raw = std::mem::replace(&mut raws[*col], Raw::Null);
        let lookup = matches!(ty, crmsync_model::AttributeType::Lookup { .. })
            .then(|| std::mem::replace(&mut raws[col + 1], Raw::Null));
        let value = value_of(ty, raw, lookup)?;
        match &value {
            Value::Guid(g) if i == 0 => id = Some(*g),
            Value::BigInt(v) if name.as_str() == "versionnumber" => version = *v,
            _ => {}
        }
        values.push(value);
    }
    let Some(id) = id else {
        return Err(StoreError::database("a stored record has no id"));
    };
    Ok((id, version, values))
}

/// Builds a record from the raw columns of one row read with `layout`.
pub fn decode_record(layout: &ReadLayout, raws: Vec<Raw>) -> StoreResult<Record> {
    let (id, _, values) = decode_row(layout, raws)?;
    // In name order already, so the map is built in one pass rather than by a search per value.
    Ok(Record {
        id: Some(id),
        values: layout.names().cloned().zip(values).collect(),
    })
}

/// The id of a record, for messages.
pub fn record_label(entity: &EntityMetadata, id: &RecordId) -> String {
    format!("{}({id})", entity.logical_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(ids: &[u8]) -> Vec<(RecordId, Vec<Value>)> {
        ids.iter()
            .map(|i| {
                (
                    RecordId::from_uuid(uuid::Uuid::from_u128(u128::from(*i))),
                    Vec::new(),
                )
            })
            .collect()
    }

    #[test]
    fn runs_respect_size_and_never_repeat_an_id() {
        let r = rows(&[1, 2, 3, 1, 4, 5, 6]);
        let lens: Vec<usize> = distinct_runs(&r, 3).iter().map(|s| s.len()).collect();
        assert_eq!(lens, [3, 3, 1]);
        let r = rows(&[1, 1, 1]);
        assert_eq!(distinct_runs(&r, 10).len(), 3);
        assert!(distinct_runs(&[], 10).is_empty());
    }
}
