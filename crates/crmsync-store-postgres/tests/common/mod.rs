//! The PostgreSQL test backend: a random namespace of schemas per test, dropped afterwards.

use std::sync::Arc;

use async_trait::async_trait;
use crmsync_store::Catalog;
use crmsync_store::conformance::TestBackend;
use crmsync_store_postgres::PgCatalog;
use crmsync_store_postgres::testing::TestDatabase;

pub struct Postgres(pub TestDatabase);

impl std::ops::Deref for Postgres {
    type Target = TestDatabase;
    fn deref(&self) -> &TestDatabase {
        &self.0
    }
}

impl Postgres {
    pub async fn connect(&self) -> PgCatalog {
        self.0.catalog().await
    }
}

#[async_trait]
impl TestBackend for Postgres {
    async fn fresh() -> Self {
        Postgres(TestDatabase::fresh())
    }

    async fn catalog(&self) -> Arc<dyn Catalog> {
        Arc::new(self.connect().await)
    }
}
