//! Values to PostgreSQL and back, and driver errors to [`StoreError`]. Every value binds with
//! its native type, NULLs included: PostgreSQL refuses e.g. a text NULL for a uuid column.

use chrono::{DateTime, Utc};
use crmsync_store::StoreError;
use crmsync_store::sql::{Param, Raw, Storage};
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::postgres::{PgArguments, PgRow, Postgres};
use uuid::Uuid;

pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

pub(crate) fn bind<'q>(q: PgQuery<'q>, p: Param<'_>) -> PgQuery<'q> {
    match p {
        Param::Null(storage) => bind_null(q, storage),
        Param::Text(s) => q.bind(s),
        Param::I32(i) => q.bind(i),
        Param::I64(i) => q.bind(i),
        Param::F64(f) => q.bind(f),
        Param::Bool(b) => q.bind(b),
        Param::DateTime(d) => q.bind(d),
        Param::Uuid(u) => q.bind(u),
        Param::Decimal(d) => q.bind(d.normalize()),
    }
}

fn bind_null(q: PgQuery<'_>, storage: Storage) -> PgQuery<'_> {
    match storage {
        Storage::Text | Storage::EntityName => q.bind(None::<String>),
        Storage::Int32 => q.bind(None::<i32>),
        Storage::Int64 => q.bind(None::<i64>),
        Storage::Decimal => q.bind(None::<Decimal>),
        Storage::Double => q.bind(None::<f64>),
        Storage::Bool => q.bind(None::<bool>),
        Storage::DateTime => q.bind(None::<DateTime<Utc>>),
        Storage::Guid => q.bind(None::<Uuid>),
    }
}

pub(crate) fn read(row: &PgRow, i: usize, storage: Storage) -> Result<Raw, sqlx::Error> {
    Ok(match storage {
        Storage::Text | Storage::EntityName => row.try_get::<Option<String>, _>(i)?.map(Raw::Text),
        Storage::Int32 => row.try_get::<Option<i32>, _>(i)?.map(|v| Raw::I64(i64::from(v))),
        Storage::Int64 => row.try_get::<Option<i64>, _>(i)?.map(Raw::I64),
        Storage::Decimal => row.try_get::<Option<Decimal>, _>(i)?.map(Raw::Decimal),
        Storage::Double => row.try_get::<Option<f64>, _>(i)?.map(Raw::F64),
        Storage::Bool => row.try_get::<Option<bool>, _>(i)?.map(Raw::Bool),
        Storage::DateTime => row.try_get::<Option<DateTime<Utc>>, _>(i)?.map(Raw::DateTime),
        Storage::Guid => row.try_get::<Option<Uuid>, _>(i)?.map(Raw::Uuid),
    }
    .unwrap_or(Raw::Null))
}

/// SQLSTATEs worth retrying: serialization failure, deadlock, lock timeout, query canceled
/// (statement timeout), too many connections, and the server going away.
fn retryable_state(code: &str) -> bool {
    matches!(
        code,
        "40001" | "40P01" | "55P03" | "57014" | "53300" | "57P01" | "57P02" | "57P03"
    ) || code.starts_with("08")
}

/// Maps driver errors: unique violations are conflicts; lock, serialization and connection
/// trouble is retryable.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(format!(
            "a record with the same key already exists ({})",
            d.message()
        )),
        sqlx::Error::Database(d) => StoreError::Database {
            message: d.message().to_owned(),
            retryable: d.code().is_some_and(|c| retryable_state(&c)),
        },
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

/// The SQLSTATE of a driver error, if the server sent one.
pub(crate) fn sql_state(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::retryable_state;

    #[test]
    fn lock_and_connection_states_are_retryable_constraint_states_not() {
        for code in ["40001", "40P01", "55P03", "08006", "57P01"] {
            assert!(retryable_state(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22021"] {
            assert!(!retryable_state(code), "{code}");
        }
    }
}
