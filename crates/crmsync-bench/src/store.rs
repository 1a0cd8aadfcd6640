//! The store benchmark: the same generated account rows written (1) by a minimal
//! hand-written multi-row upsert in one transaction — the raw limit — and (2) through the
//! store API in write sets of `--batch` rows, each into an identical, empty table of the same
//! database. Only write time is measured; generating the rows is excluded from both.
//! SQLite always; PostgreSQL too when `--database` names one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crmsync_model::{MetadataChange, OrgName};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};
use crmsync_store::{Catalog, NewUser, Role, UpsertMode, WriteSet};
use crmsync_store_postgres::PgCatalog;
use crmsync_store_sqlite::SqliteCatalog;

use crate::{raw_postgres, raw_sqlite};

#[derive(clap::Args)]
pub struct StoreBench {
    /// Number of account records.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Rows per store write set (one transaction each).
    #[arg(long, default_value_t = crmsync_store::BULK_BATCH_ROWS)]
    batch: usize,
    /// Also measure PostgreSQL at this URL (postgres://…).
    #[arg(long, env = "CRMSYNC_BENCH_DATABASE_URL")]
    database: Option<String>,
}

fn admin() -> NewUser {
    NewUser {
        email: "bench@example.com".into(),
        password: "bench-password".into(),
        role: Role::Admin,
    }
}

async fn org_with_accounts(catalog: &dyn Catalog, name: &str) -> anyhow::Result<OrgName> {
    let name = OrgName::parse(name)?;
    catalog.create_org(&name, admin()).await?;
    let account = crm_entities()
        .into_iter()
        .next()
        .context("the sample has an account entity")?;
    catalog
        .open_org(&name)
        .await?
        .apply_metadata(&[MetadataChange::CreateEntity { entity: account }])
        .await?;
    Ok(name)
}

fn line(label: &str, rows: u64, d: Duration) {
    println!(
        "  {label:<58} {:>7.2} s {:>9.0} rows/s",
        d.as_secs_f64(),
        rows as f64 / d.as_secs_f64().max(1e-9)
    );
}

impl StoreBench {
    pub async fn run(self) -> anyhow::Result<()> {
        let generator = SampleGenerator::new(42, self.records);
        let columns = generator
            .batches(SampleEntity::Account, 1)
            .next()
            .map(|b| b.columns.len())
            .unwrap_or(0)
            + 2;
        println!(
            "store benchmark: {} account records ({columns} columns, random GUID keys)",
            self.records
        );

        let dir = tempfile::tempdir()?;
        let catalog = Arc::new(SqliteCatalog::open(dir.path()).await?);
        println!("SQLite ({})", dir.path().display());
        let raw_org = org_with_accounts(&*catalog, "raw").await?;
        let raw = raw_sqlite::upsert_all(&catalog.org_path(&raw_org), &generator).await?;
        self.compare(catalog, raw, &generator).await?;

        if let Some(url) = &self.database {
            let namespace = format!("bench{}_", std::process::id());
            let catalog = Arc::new(PgCatalog::connect(url, &namespace).await?);
            println!("PostgreSQL (schemas {namespace}*)");
            let result = async {
                let raw_org = org_with_accounts(&*catalog, "raw").await?;
                let raw = raw_postgres::upsert_all(catalog.pool(), &catalog.org_schema(&raw_org), &generator)
                    .await?;
                self.compare(catalog.clone(), raw, &generator).await
            }
            .await;
            for org in ["raw", "store"] {
                let _ = catalog.delete_org(&OrgName::parse(org)?).await;
            }
            result?;
        }
        Ok(())
    }

    /// Writes the rows through the store and prints both figures and their ratio.
    async fn compare(
        &self,
        catalog: Arc<dyn Catalog>,
        raw: Duration,
        generator: &SampleGenerator,
    ) -> anyhow::Result<()> {
        line(
            "raw   (hand-written multi-row upsert, one transaction)",
            self.records,
            raw,
        );
        let org = org_with_accounts(&*catalog, "store").await?;
        let store = catalog.open_org(&org).await?;
        let mut elapsed = Duration::ZERO;
        for batch in generator.batches(SampleEntity::Account, self.batch) {
            let set = WriteSet::new().upsert(SampleEntity::Account.entity_name(), batch, UpsertMode::Upsert);
            let started = Instant::now();
            store.write(set).await?;
            elapsed += started.elapsed();
        }
        line(
            &format!("store (write sets of {} rows)", self.batch),
            self.records,
            elapsed,
        );
        anyhow::ensure!(
            store.count(&SampleEntity::Account.entity_name()).await? == self.records,
            "store row count"
        );
        println!(
            "  ratio store/raw: {:.2} (target <= 1.3 on SQLite)",
            elapsed.as_secs_f64() / raw.as_secs_f64().max(1e-9)
        );
        Ok(())
    }
}
