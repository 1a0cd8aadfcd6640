//! Test support (feature `testing`): a PostgreSQL namespace of its own per test, named by
//! `CRMSYNC_TEST_DATABASE_URL`, whose schemas are dropped when the value is dropped. A test
//! that cannot reach its database fails; it never passes silently.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::PgCatalog;

pub const URL_VAR: &str = "CRMSYNC_TEST_DATABASE_URL";

pub struct TestDatabase {
    pub url: String,
    pub namespace: String,
}

impl TestDatabase {
    /// A fresh random namespace in the database of `CRMSYNC_TEST_DATABASE_URL`.
    pub fn fresh() -> Self {
        let url = std::env::var(URL_VAR).unwrap_or_else(|_| {
            panic!("{URL_VAR} must name a PostgreSQL database for these tests, e.g. postgres://postgres@127.0.0.1:5432/test")
        });
        let hex = uuid::Uuid::new_v4().simple().to_string();
        TestDatabase {
            url,
            namespace: format!("t{}_", &hex[..8]),
        }
    }

    /// A new catalog instance on this namespace.
    pub async fn catalog(&self) -> PgCatalog {
        PgCatalog::connect(&self.url, &self.namespace)
            .await
            .expect("connect catalog")
    }
}

/// Drops every schema of the namespace.
async fn drop_namespace(url: &str, namespace: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::raw_sql("SET lock_timeout = '30s'")
        .execute(&mut conn)
        .await?;
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)")
            .bind(namespace)
            .fetch_all(&mut conn)
            .await?;
    for schema in schemas {
        let statement = format!("DROP SCHEMA \"{}\" CASCADE", schema.replace('"', "\"\""));
        sqlx::raw_sql(AssertSqlSafe(statement)).execute(&mut conn).await?;
    }
    conn.close().await
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, namespace) = (self.url.clone(), self.namespace.clone());
        // The test's runtime may be shutting down: clean up on a runtime of our own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(drop_namespace(&url, &namespace))
        })
        .join();
        match cleanup {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the schemas of {}: {e}", self.namespace),
            Err(_) => eprintln!("cleanup of {} panicked", self.namespace),
        }
    }
}
