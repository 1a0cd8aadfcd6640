//! Loading sample data into an organization: the schema first, then each entity in
//! dependency order, streamed from the generator in large atomic batches.
//!
//! Generation runs on a blocking thread and hands batches over a bounded channel, so at most
//! two batches are in memory and generating overlaps writing. Each batch is one write set
//! (one transaction): a load that is interrupted leaves whole batches only.

use std::time::{Duration, Instant};

use anyhow::Context;
use crmsync_model::{MetadataChange, RecordBatch};
use crmsync_sample::{SampleCounts, SampleEntity, SampleGenerator, crm_entities};
use crmsync_store::{OrgStore, UpsertMode, WriteSet};
use indicatif::{ProgressBar, ProgressStyle};

/// Rows per transaction (see [`crmsync_store::BULK_BATCH_ROWS`]).
pub const DEFAULT_BATCH_ROWS: usize = crmsync_store::BULK_BATCH_ROWS;

/// Creates the sample entities that do not exist yet.
pub async fn create_schema(store: &dyn OrgStore) -> anyhow::Result<()> {
    let existing: Vec<String> = store
        .entities()
        .await?
        .iter()
        .map(|e| e.logical_name.to_string())
        .collect();
    let changes: Vec<MetadataChange> = crm_entities()
        .into_iter()
        .filter(|e| !existing.iter().any(|x| x == e.logical_name.as_str()))
        .map(|entity| MetadataChange::CreateEntity { entity })
        .collect();
    store
        .apply_metadata(&changes)
        .await
        .context("cannot create the sample entities")?;
    Ok(())
}

pub struct LoadReport {
    pub counts: SampleCounts,
    pub elapsed: Duration,
}

/// Creates the schema and writes all sample records of `generator`.
pub async fn load(
    store: &dyn OrgStore,
    generator: SampleGenerator,
    batch_rows: usize,
) -> anyhow::Result<LoadReport> {
    create_schema(store).await?;
    let started = Instant::now();
    let counts = generator.counts();
    let progress = ProgressBar::new(counts.total());
    progress.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(SampleEntity, RecordBatch)>(1);
    let producer = tokio::task::spawn_blocking(move || {
        for entity in SampleEntity::ALL {
            for batch in generator.batches(entity, batch_rows.max(1)) {
                if tx.blocking_send((entity, batch)).is_err() {
                    return;
                }
            }
        }
    });
    while let Some((entity, batch)) = rx.recv().await {
        progress.set_message(entity.logical_name());
        let rows = batch.len() as u64;
        store
            .write(WriteSet::new().upsert(entity.entity_name(), batch, UpsertMode::Upsert))
            .await
            .with_context(|| format!("cannot write sample {entity} records"))?;
        progress.inc(rows);
    }
    producer.await.context("sample generator failed")?;
    progress.finish_and_clear();
    Ok(LoadReport {
        counts,
        elapsed: started.elapsed(),
    })
}
