//! Opening the store named on the command line: PostgreSQL for a `postgres://` URL, the
//! embedded SQLite data directory otherwise.

use std::sync::Arc;

use anyhow::{Context, bail};
use crmsync_store::Catalog;
use crmsync_store_postgres::PgCatalog;
use crmsync_store_sqlite::SqliteCatalog;

use crate::cli::StoreArgs;

pub async fn open(args: &StoreArgs) -> anyhow::Result<Arc<dyn Catalog>> {
    match &args.database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let catalog = PgCatalog::connect_default(url)
                .await
                .context("cannot connect to PostgreSQL")?;
            Ok(Arc::new(catalog))
        }
        Some(url) => bail!("unsupported database URL '{url}': expected postgres://…"),
        None => {
            let catalog = SqliteCatalog::open(&args.data)
                .await
                .with_context(|| format!("cannot open data directory {}", args.data.display()))?;
            Ok(Arc::new(catalog))
        }
    }
}
