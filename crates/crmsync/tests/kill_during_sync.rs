//! A sync process killed (SIGKILL) at twenty points of its run, with the server changing in
//! between, and then run to completion: the client ends equal to the server's (filtered)
//! data — nothing missing, nothing duplicated, no stale value.
//!
//! Each killed run holds the org in the work queue until its (short) lease expires; the next
//! round waits for that, then starts where the killed run stopped.

use crate::common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use crmsync_model::{EntityName, OrgName, Record, RecordId, Value};
use crmsync_query::{EvalContext, parse_fetchxml};
use crmsync_store::{Catalog, Change, ChangeCursor, DeleteMode, OrgStore, PageRequest, UpsertMode, WriteSet};
use crmsync_store_sqlite::SqliteCatalog;

use common::{connect_field, crmsync, serve_sample, wait_until_free};

const ACTIVE_CONTACTS: &str = r#"<fetch><entity name="contact"><filter><condition attribute="statecode" operator="eq" value="0"/></filter></entity></fetch>"#;

fn en(s: &str) -> EntityName {
    EntityName::parse(s).unwrap()
}

async fn records(store: &dyn OrgStore, entity: &str) -> BTreeMap<RecordId, Record> {
    let mut out = BTreeMap::new();
    let mut cursor = ChangeCursor::start(0);
    loop {
        let page = store.changes(&en(entity), cursor, 2000).await.unwrap();
        for c in page.changes {
            if let Change::Upsert(mut r) = c {
                r.values.remove("versionnumber");
                out.insert(r.id.unwrap(), r);
            }
        }
        if !page.more {
            return out;
        }
        cursor = page.next;
    }
}

async fn change_server(server: &dyn OrgStore, round: usize) {
    let accounts: Vec<RecordId> = records(server, "account").await.into_keys().collect();
    let renamed = Record::new(accounts[round * 7 % accounts.len()])
        .with("name", Value::String(format!("round {round}")));
    server
        .write(WriteSet::new().record(en("account"), renamed, UpsertMode::Upsert))
        .await
        .unwrap();
    let doomed = accounts[(round * 13 + 1) % accounts.len()];
    server
        .write(WriteSet::new().delete(en("account"), vec![doomed], DeleteMode::IgnoreMissing))
        .await
        .unwrap();
    let contacts: Vec<RecordId> = records(server, "contact").await.into_keys().collect();
    let leaving = Record::new(contacts[round * 11 % contacts.len()])
        .with("statecode", Value::OptionSet(1))
        .with("statuscode", Value::OptionSet(2));
    server
        .write(WriteSet::new().record(en("contact"), leaving, UpsertMode::Upsert))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_killed_at_twenty_points_converges_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    // The server org on a data directory of its own: no server instance shares the client's
    // work queue, so a killed run's work waits for the next run here, not for a takeover.
    let server_dir = dir.path().join("server");
    let (_server, base) = serve_sample(&server_dir, 1500);
    let filters = dir.path().join("filters.xml");
    std::fs::write(&filters, format!("<SyncFilters>{ACTIVE_CONTACTS}</SyncFilters>")).unwrap();
    let filters = filters.to_str().unwrap().to_owned();
    connect_field(
        dir.path(),
        &base,
        &["--entities", "account,contact,opportunity", "--filters", &filters],
    );

    let catalog = SqliteCatalog::open(dir.path()).await.unwrap();
    let server_catalog = SqliteCatalog::open(&server_dir).await.unwrap();
    let server = server_catalog
        .open_org(&OrgName::parse("hq-1").unwrap())
        .await
        .unwrap();
    let mut killed_mid_run = 0;
    for round in 0..20usize {
        // A killed run holds the org until its (short) lease expires.
        wait_until_free(dir.path(), "field").await;
        let mut sync = Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
            .arg("--data")
            .arg(dir.path())
            .args(["sync", "field", "--page-size", "97", "--batch-rows", "400"])
            .args(["--lease-secs", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the run: from just after start to well into it.
        tokio::time::sleep(Duration::from_millis(15 + (round as u64 * 53) % 250)).await;
        if sync.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = sync.kill();
        let _ = sync.wait();
        if round % 3 == 2 {
            change_server(&*server, round).await;
        }
    }
    assert!(
        killed_mid_run >= 10,
        "only {killed_mid_run} kills landed while the sync was running"
    );
    let out = crmsync(dir.path())
        .args(["sync", "field"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8(out).unwrap().contains("Succeeded"));

    let client = catalog.open_org(&OrgName::parse("field").unwrap()).await.unwrap();
    for entity in ["account", "opportunity"] {
        assert_eq!(
            records(&*client, entity).await,
            records(&*server, entity).await,
            "{entity}"
        );
    }
    let query = parse_fetchxml(ACTIVE_CONTACTS, &server.entities().await.unwrap()).unwrap();
    let page = server
        .query(
            &query,
            &EvalContext::new(chrono::Utc::now()),
            &PageRequest::first(100_000),
        )
        .await
        .unwrap();
    let all = records(&*server, "contact").await;
    let expected: BTreeMap<RecordId, Record> = page
        .rows
        .iter()
        .map(|r| r.record.id.unwrap())
        .map(|id| (id, all[&id].clone()))
        .collect();
    assert_same(
        "contact (filtered)",
        &records(&*client, "contact").await,
        &expected,
    );
}

/// Equal record sets, reported by what differs rather than by dumping thousands of records.
fn assert_same(what: &str, got: &BTreeMap<RecordId, Record>, want: &BTreeMap<RecordId, Record>) {
    let missing: Vec<_> = want.keys().filter(|id| !got.contains_key(id)).take(5).collect();
    let extra: Vec<_> = got.keys().filter(|id| !want.contains_key(id)).take(5).collect();
    let stale: Vec<_> = want
        .iter()
        .filter(|(id, r)| got.get(id).is_some_and(|g| g != *r))
        .map(|(id, _)| id)
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && stale.is_empty(),
        "{what}: {} on the client, {} expected; missing {missing:?}, extra {extra:?}, stale {stale:?}",
        got.len(),
        want.len()
    );
}
