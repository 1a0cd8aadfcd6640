//! Append-only migrations of the catalog and of organization databases. A migration runs
//! in one transaction together with the bump of `_schema_version`.

use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::bind::db_err;
use crmsync_store::StoreResult;

pub(crate) const CATALOG: &[(i64, &str)] = &[
    (1, include_str!("../migrations/catalog/0001_init.sql")),
    (2, include_str!("../migrations/catalog/0002_apps.sql")),
    (3, include_str!("../migrations/catalog/0003_work.sql")),
    (4, include_str!("../migrations/catalog/0004_work_new_orgs.sql")),
];
pub(crate) const ORG: &[(i64, &str)] = &[(1, include_str!("../migrations/org/0001_init.sql"))];

pub(crate) async fn run(conn: &mut SqliteConnection, migrations: &[(i64, &str)]) -> StoreResult<()> {
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS _schema_version (version INTEGER NOT NULL PRIMARY KEY)")
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    for (version, sql) in migrations {
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        let done: Option<i64> = sqlx::query_scalar("SELECT version FROM _schema_version WHERE version = ?1")
            .bind(version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
        let applied = async {
            if done.is_none() {
                sqlx::raw_sql(AssertSqlSafe(*sql)).execute(&mut *conn).await?;
                sqlx::query("INSERT INTO _schema_version (version) VALUES (?1)")
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await
        }
        .await;
        if let Err(e) = applied {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            return Err(db_err(e));
        }
    }
    Ok(())
}
