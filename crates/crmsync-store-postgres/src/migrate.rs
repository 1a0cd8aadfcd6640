//! Append-only migrations of the catalog schema and of organization schemas.
//!
//! Migrations run inside the caller's transaction with `search_path` set to the target
//! schema, so the files name their tables unqualified. A transaction-scoped advisory lock on
//! the schema name serializes instances that start (or open an org) at the same moment: the
//! second one waits, then finds the versions already recorded in `_schema_version`.

use sqlx::{AssertSqlSafe, PgConnection};

use crate::bind::db_err;
use crmsync_store::StoreResult;
use crmsync_store::sql::quote;

pub(crate) const CATALOG: &[(i64, &str)] = &[
    (1, include_str!("../migrations/catalog/0001_init.sql")),
    (2, include_str!("../migrations/catalog/0002_apps.sql")),
    (3, include_str!("../migrations/catalog/0003_work.sql")),
    (4, include_str!("../migrations/catalog/0004_work_new_orgs.sql")),
];
pub(crate) const ORG: &[(i64, &str)] = &[(1, include_str!("../migrations/org/0001_init.sql"))];

/// Brings `schema` up to date inside the current transaction of `conn`; with `create`, the
/// schema is created first if missing.
pub(crate) async fn run(
    conn: &mut PgConnection,
    schema: &str,
    migrations: &[(i64, &str)],
    create: bool,
) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(schema)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    if create {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote(schema)
        )))
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET LOCAL search_path TO {}",
        quote(schema)
    )))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS _schema_version (version bigint NOT NULL PRIMARY KEY)")
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM _schema_version")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    for (version, sql) in migrations {
        if done.contains(version) {
            continue;
        }
        sqlx::raw_sql(AssertSqlSafe(*sql))
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        sqlx::query("INSERT INTO _schema_version (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        tracing::info!(schema, version, "migration applied");
    }
    // Everything after this names its schema explicitly.
    sqlx::raw_sql("SET LOCAL search_path TO DEFAULT")
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}
