//! Values to SQLite and back. Date/times are stored as microseconds since the epoch (UTC),
//! decimals as their canonical text, GUIDs as 16-byte blobs, booleans as 0/1.

use chrono::{DateTime, Utc};
use crmsync_model::{RecordId, Value};
use crmsync_store::StoreError;
use crmsync_store::sql::{Param, Raw, RowContext, Slot, Storage, Versions, slot_param};
use sqlx::Row;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteRow};

pub(crate) type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

pub(crate) fn bind<'q>(q: SqliteQuery<'q>, p: Param<'_>) -> SqliteQuery<'q> {
    match p {
        Param::Null(_) => q.bind(None::<i64>),
        Param::Text(s) => q.bind(s.to_owned()),
        Param::I32(i) => q.bind(i),
        Param::I64(i) => q.bind(i),
        Param::F64(f) => q.bind(f),
        Param::Bool(b) => q.bind(b),
        Param::DateTime(d) => q.bind(d.timestamp_micros()),
        Param::Uuid(u) => q.bind(u),
        Param::Decimal(d) => q.bind(d.normalize().to_string()),
    }
}

/// Binds `rows` written by one statement, row after row, each with `slots` and the next
/// version of `versions`. Text is moved out of the rows, not copied: a row's values are not
/// read again once bound, but for its id and lookups.
pub(crate) fn bind_rows<'q>(
    mut q: SqliteQuery<'q>,
    rows: &mut [(RecordId, Vec<Value>)],
    slots: &[(Slot, Storage)],
    versions: &mut Versions,
    now: DateTime<Utc>,
) -> SqliteQuery<'q> {
    for (id, values) in rows {
        let version = versions.take();
        for &(slot, storage) in slots {
            q = match (slot, slot.value_index().map(|i| &mut values[i])) {
                (Slot::Value(_), Some(Value::String(s))) => q.bind(std::mem::take(s)),
                _ => {
                    let row = RowContext {
                        id: *id,
                        version,
                        now,
                        values,
                    };
                    bind(q, slot_param(slot, storage, &row))
                }
            };
        }
    }
    q
}

pub(crate) fn read(row: &SqliteRow, i: usize, storage: Storage) -> Result<Raw, sqlx::Error> {
    Ok(match storage {
        Storage::Text | Storage::Decimal | Storage::EntityName => {
            row.try_get::<Option<String>, _>(i)?.map(Raw::Text)
        }
        Storage::Int32 | Storage::Int64 | Storage::Bool | Storage::DateTime => {
            row.try_get::<Option<i64>, _>(i)?.map(Raw::I64)
        }
        Storage::Double => row.try_get::<Option<f64>, _>(i)?.map(Raw::F64),
        Storage::Guid => row.try_get::<Option<uuid::Uuid>, _>(i)?.map(Raw::Uuid),
    }
    .unwrap_or(Raw::Null))
}

/// Maps driver errors: busy/locked and I/O are retryable, constraint violations conflicts.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(format!(
            "a record with the same key already exists ({})",
            d.message()
        )),
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes.
            let retryable = matches!(code.parse::<i64>().map(|c| c & 0xff), Ok(5 | 6));
            StoreError::Database {
                message: d.message().to_owned(),
                retryable,
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Database {
            message: e.to_string(),
            retryable: true,
        },
        _ => StoreError::database(e.to_string()),
    }
}
