//! A process killed (SIGKILL) in the middle of a bulk load leaves its organization consistent:
//! every batch is either fully there or absent, every row has exactly one version, the
//! database passes SQLite's integrity check, and the org takes new writes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crmsync_model::{OrgName, Record, RecordId, Value};
use crmsync_sample::SampleEntity;
use crmsync_store::{Catalog, UpsertMode, WriteSet};
use crmsync_store_sqlite::SqliteCatalog;
use sqlx::Connection;

const BATCH: u64 = 2000;
const ACCOUNTS: u64 = 20_000;

async fn loaded_rows(dir: &std::path::Path) -> i64 {
    let Ok(catalog) = SqliteCatalog::open(dir).await else {
        return 0;
    };
    match catalog.open_org(&OrgName::parse("acme").unwrap()).await {
        Ok(org) => org.current_version().await.unwrap_or(0),
        Err(_) => 0,
    }
}

async fn check_consistent(dir: &std::path::Path) -> u64 {
    let catalog = SqliteCatalog::open(dir).await.unwrap();
    let name = OrgName::parse("acme").unwrap();
    let org = catalog
        .open_org(&name)
        .await
        .expect("the org was created before loading began");
    let generator = crmsync_sample::SampleGenerator::new(1, ACCOUNTS);
    let mut total = 0;
    for entity in SampleEntity::ALL {
        let count = org.count(&entity.entity_name()).await.unwrap();
        let full = generator.count(entity);
        assert!(
            count % BATCH == 0 || count == full,
            "{entity}: {count} rows is not a whole number of batches"
        );
        total += count;
    }
    assert_eq!(
        org.current_version().await.unwrap() as u64,
        total,
        "every committed row has exactly one version"
    );
    let path = catalog.org_path(&name);
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let rec = Record::new(RecordId::new_random()).with("name", Value::String("after the crash".into()));
    org.write(WriteSet::new().record(SampleEntity::Account.entity_name(), rec, UpsertMode::CreateOnly))
        .await
        .unwrap();
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_load_killed_midway_leaves_whole_batches_only() {
    let full = ACCOUNTS * 13 / 2;
    let mut partial_loads = 0;
    for attempt in 0..3u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
            .arg("--data")
            .arg(dir.path())
            .args([
                "org",
                "create",
                "acme",
                "--admin-email",
                "admin@example.com",
                "--admin-password",
                "password-1",
            ])
            .args([
                "--sample",
                "crm",
                "--records",
                &ACCOUNTS.to_string(),
                "--batch-size",
                &BATCH.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the first committed batch, then let the load run a little longer.
        let deadline = Instant::now() + Duration::from_secs(120);
        while loaded_rows(dir.path()).await == 0 {
            assert!(Instant::now() < deadline, "the load never committed a batch");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the load ended before it could be killed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(150 * attempt)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        let total = check_consistent(dir.path()).await;
        if total > 0 && total < full {
            partial_loads += 1;
        }
    }
    assert!(partial_loads > 0, "no kill landed in the middle of the load");
}
