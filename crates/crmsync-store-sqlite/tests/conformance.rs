//! The storage conformance suite on SQLite: each test gets its own data directory.

use std::sync::Arc;

use async_trait::async_trait;
use crmsync_store::Catalog;
use crmsync_store::conformance::TestBackend;
use crmsync_store_sqlite::SqliteCatalog;

struct Sqlite {
    dir: tempfile::TempDir,
}

#[async_trait]
impl TestBackend for Sqlite {
    async fn fresh() -> Self {
        Sqlite {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    async fn catalog(&self) -> Arc<dyn Catalog> {
        Arc::new(SqliteCatalog::open(self.dir.path()).await.expect("open catalog"))
    }
}

crmsync_store::conformance_suite!(Sqlite);
