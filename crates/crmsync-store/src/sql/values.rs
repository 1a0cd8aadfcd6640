//! Values as bind parameters and back: the backend-neutral half of binding and decoding.
//!
//! A backend turns each [`Param`] into its driver's bind call (SQLite stores date/times as
//! microseconds and decimals as text; PostgreSQL binds them natively) and reads each column
//! of a [`Storage`] class into a [`Raw`], which [`value_of`] turns back into a typed
//! [`Value`].

use chrono::{DateTime, Utc};
use crmsync_model::{AttributeType, EntityName, EntityReference, RecordId, Value};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Slot, Storage, WriteLayout};
use crate::{StoreError, StoreResult};

/// One bind parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Param<'a> {
    /// A NULL of the column's class (PostgreSQL needs the type even for NULL).
    Null(Storage),
    Text(&'a str),
    I32(i32),
    I64(i64),
    F64(f64),
    Bool(bool),
    DateTime(DateTime<Utc>),
    Uuid(Uuid),
    Decimal(Decimal),
}

/// A column value as read from the database.
#[derive(Clone, Debug, PartialEq)]
pub enum Raw {
    Null,
    Text(String),
    I64(i64),
    F64(f64),
    Bool(bool),
    DateTime(DateTime<Utc>),
    Uuid(Uuid),
    Decimal(Decimal),
}

/// The parameter of a value (already coerced to its attribute's type).
pub fn param_of(value: &Value, storage: Storage) -> Param<'_> {
    match value {
        Value::Null => Param::Null(storage),
        Value::String(s) => Param::Text(s),
        Value::Integer(i) | Value::OptionSet(i) => Param::I32(*i),
        Value::BigInt(i) => Param::I64(*i),
        Value::Decimal(d) => Param::Decimal(*d),
        Value::Double(f) => Param::F64(*f),
        Value::Boolean(b) => Param::Bool(*b),
        Value::DateTime(d) => Param::DateTime(*d),
        Value::Guid(g) => Param::Uuid(*g.as_uuid()),
        Value::Lookup(r) => Param::Uuid(*r.id.as_uuid()),
    }
}

/// Everything that varies per row of a write.
pub struct RowContext<'a> {
    pub id: RecordId,
    pub version: i64,
    pub now: DateTime<Utc>,
    pub values: &'a [Value],
}

/// The versions handed out to the rows of one write set, in order.
pub struct Versions {
    pub next: i64,
    /// The first and last handed out so far.
    pub first: Option<i64>,
    pub last: Option<i64>,
}

impl Versions {
    pub fn take(&mut self) -> i64 {
        let v = self.next;
        self.next += 1;
        self.first.get_or_insert(v);
        self.last = Some(v);
        v
    }
}

/// The parameters of `rows` written by one statement, row after row: each row binds `slots`,
/// with the next version of `versions`.
pub fn rows_params<'a>(
    rows: &'a [(RecordId, Vec<Value>)],
    slots: &[(Slot, Storage)],
    versions: &mut Versions,
    now: DateTime<Utc>,
) -> Vec<Param<'a>> {
    let mut params = Vec::with_capacity(rows.len() * slots.len());
    for (id, values) in rows {
        let row = RowContext {
            id: *id,
            version: versions.take(),
            now,
            values,
        };
        params.extend(
            slots
                .iter()
                .map(|(slot, storage)| slot_param(*slot, *storage, &row)),
        );
    }
    params
}

/// The parameter for one slot of a row.
pub fn slot_param<'a>(slot: Slot, storage: Storage, row: &RowContext<'a>) -> Param<'a> {
    match slot {
        Slot::Id => Param::Uuid(*row.id.as_uuid()),
        Slot::Version => Param::I64(row.version),
        Slot::Now => Param::DateTime(row.now),
        Slot::Value(i) => param_of(&row.values[i], storage),
        Slot::LookupType(i) => match &row.values[i] {
            Value::Lookup(r) => Param::Text(r.entity.as_str()),
            _ => Param::Null(Storage::EntityName),
        },
    }
}

/// All parameters of one row, in the layout's column order.
pub fn row_params<'a>(
    layout: &'a WriteLayout,
    row: &'a RowContext<'a>,
) -> impl Iterator<Item = Param<'a>> + 'a {
    layout
        .columns
        .iter()
        .map(move |(c, slot)| slot_param(*slot, c.storage, row))
}

/// Turns a read column (and, for lookups, its `__type` column) into a typed value.
pub fn value_of(ty: &AttributeType, raw: Raw, lookup_type: Option<Raw>) -> StoreResult<Value> {
    let corrupt = |what: &str| StoreError::database(format!("stored value does not fit its column: {what}"));
    Ok(match (ty, raw) {
        (_, Raw::Null) => Value::Null,
        (AttributeType::String { .. } | AttributeType::Memo { .. }, Raw::Text(s)) => Value::String(s),
        (AttributeType::Integer { .. }, Raw::I64(i)) => {
            Value::Integer(i32::try_from(i).map_err(|_| corrupt("integer"))?)
        }
        (
            AttributeType::Picklist { .. } | AttributeType::State { .. } | AttributeType::Status { .. },
            Raw::I64(i),
        ) => Value::OptionSet(i32::try_from(i).map_err(|_| corrupt("option"))?),
        (AttributeType::BigInt, Raw::I64(i)) => Value::BigInt(i),
        (AttributeType::Decimal { .. } | AttributeType::Money { .. }, Raw::Decimal(d)) => {
            Value::Decimal(d.normalize())
        }
        (AttributeType::Decimal { .. } | AttributeType::Money { .. }, Raw::Text(s)) => {
            Value::Decimal(s.parse::<Decimal>().map_err(|_| corrupt("decimal"))?.normalize())
        }
        (AttributeType::Double, Raw::F64(f)) => Value::Double(f),
        (AttributeType::Double, Raw::I64(i)) => Value::Double(i as f64),
        (AttributeType::Boolean, Raw::Bool(b)) => Value::Boolean(b),
        (AttributeType::Boolean, Raw::I64(i)) => Value::Boolean(i != 0),
        (AttributeType::DateTime, Raw::DateTime(d)) => Value::DateTime(d),
        (AttributeType::DateTime, Raw::I64(us)) => {
            Value::DateTime(DateTime::from_timestamp_micros(us).ok_or_else(|| corrupt("date/time"))?)
        }
        (AttributeType::Uniqueidentifier, Raw::Uuid(u)) => Value::Guid(RecordId::from_uuid(u)),
        (AttributeType::Lookup { targets }, Raw::Uuid(u)) => {
            let entity = match lookup_type {
                Some(Raw::Text(t)) => EntityName::parse(&t).map_err(|_| corrupt("lookup type"))?,
                _ => targets
                    .first()
                    .cloned()
                    .ok_or_else(|| corrupt("lookup without target"))?,
            };
            Value::Lookup(EntityReference {
                entity,
                id: RecordId::from_uuid(u),
            })
        }
        (ty, raw) => return Err(corrupt(&format!("{} read as {raw:?}", ty.type_name()))),
    })
}
