//! The store benchmark: the same generated account rows written (1) through the store API in
//! write sets of `--batch` rows and (2) by a minimal hand-written multi-row upsert in one
//! transaction — the raw limit — into an identical, empty table. Only write time is measured;
//! generating the rows is excluded from both.

use std::time::{Duration, Instant};

use anyhow::Context;
use crmsync_model::{MetadataChange, OrgName};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};
use crmsync_store::{Catalog, NewUser, Role, UpsertMode, WriteSet};
use crmsync_store_sqlite::SqliteCatalog;

use crate::raw_sqlite;

#[derive(clap::Args)]
pub struct StoreBench {
    /// Number of account records.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Rows per store write set (one transaction each).
    #[arg(long, default_value_t = crmsync_store::BULK_BATCH_ROWS)]
    batch: usize,
}

fn admin() -> NewUser {
    NewUser { email: "bench@example.com".into(), password: "bench-password".into(), role: Role::Admin }
}

async fn org_with_accounts(catalog: &dyn Catalog, name: &str) -> anyhow::Result<OrgName> {
    let name = OrgName::parse(name)?;
    catalog.create_org(&name, admin()).await?;
    let account = crm_entities().into_iter().next().context("the sample has an account entity")?;
    catalog.open_org(&name).await?.apply_metadata(&[MetadataChange::CreateEntity { entity: account }]).await?;
    Ok(name)
}

fn rate(rows: u64, d: Duration) -> String {
    format!("{:>9.0} rows/s", rows as f64 / d.as_secs_f64().max(1e-9))
}

impl StoreBench {
    pub async fn run(self) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let catalog = SqliteCatalog::open(dir.path()).await?;
        let generator = SampleGenerator::new(42, self.records);
        let columns = generator.batches(SampleEntity::Account, 1).next().map(|b| b.columns.len()).unwrap_or(0) + 2;
        println!(
            "store benchmark: {} account records ({columns} columns, random GUID keys), SQLite in {}",
            self.records,
            dir.path().display()
        );

        let raw_org = org_with_accounts(&catalog, "raw").await?;
        let raw = raw_sqlite::upsert_all(&catalog.org_path(&raw_org), &generator).await?;
        println!("  raw   (hand-written multi-row upsert, one transaction) {:>7.2} s {}", raw.as_secs_f64(), rate(self.records, raw));

        let org = org_with_accounts(&catalog, "store").await?;
        let store = catalog.open_org(&org).await?;
        let mut elapsed = Duration::ZERO;
        for batch in generator.batches(SampleEntity::Account, self.batch) {
            let set = WriteSet::new().upsert(SampleEntity::Account.entity_name(), batch, UpsertMode::Upsert);
            let started = Instant::now();
            store.write(set).await?;
            elapsed += started.elapsed();
        }
        println!(
            "  store (write sets of {} rows)                      {:>7.2} s {}",
            self.batch,
            elapsed.as_secs_f64(),
            rate(self.records, elapsed)
        );
        anyhow::ensure!(store.count(&SampleEntity::Account.entity_name()).await? == self.records, "store row count");
        println!(
            "  ratio store/raw: {:.2} (target <= 1.3)",
            elapsed.as_secs_f64() / raw.as_secs_f64().max(1e-9)
        );
        Ok(())
    }
}
