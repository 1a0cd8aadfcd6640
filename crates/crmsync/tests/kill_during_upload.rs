//! A sync process killed (SIGKILL) at twenty points while it uploads offline transactions
//! (a thousand creates, then before each run more updates — some records changed several
//! times — deletes and creates), then run to completion: every transaction is Processed
//! exactly once in effect — the server holds each created record once, the last value of each
//! updated one, none of the deleted ones — and the client ends equal to the server.
//!
//! Each killed run holds the org in the work queue until its (short) lease expires; the next
//! round waits for that, then starts where the killed run stopped.

use crate::common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use crmsync_model::{AttributeName, EntityName, OrgName, Record, RecordId, Value};
use crmsync_store::{Catalog, Change, ChangeCursor, DeleteMode, OrgStore, UpsertMode};
use crmsync_store_sqlite::SqliteCatalog;

use common::{connect_field, crmsync, serve_sample, wait_until_free};
use crmsync_sync::transactions::{self, ClientChange, Operation, TxStatus};

fn account() -> EntityName {
    EntityName::parse("account").unwrap()
}

async fn accounts(store: &dyn OrgStore) -> BTreeMap<RecordId, Record> {
    let mut out = BTreeMap::new();
    let mut cursor = ChangeCursor::start(0);
    loop {
        let page = store.changes(&account(), cursor, 2000).await.unwrap();
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

/// Writes `changes` on the client as its offline write plugin does: the records and their
/// queue rows in one transaction.
async fn write_offline(client: &dyn OrgStore, changes: &[ClientChange]) {
    let mut set = transactions::queue(client, changes).await.unwrap();
    for c in changes {
        let mut record = Record::new(c.id);
        record.values = c.values.clone();
        set = match c.operation {
            Operation::Create => set.record(account(), record, UpsertMode::Upsert),
            Operation::Update => set.record(account(), record, UpsertMode::UpdateOnly),
            Operation::Delete => set.delete(account(), vec![c.id], DeleteMode::IgnoreMissing),
        };
    }
    client.write(set).await.unwrap();
}

fn change(id: RecordId, operation: Operation, name: Option<String>) -> ClientChange {
    ClientChange {
        entity: account(),
        id,
        operation,
        values: name
            .map(|n| (AttributeName::parse("name").unwrap(), Value::String(n)))
            .into_iter()
            .collect(),
    }
}

async fn processed(client: &dyn OrgStore) -> u64 {
    transactions::list(client, Some(TxStatus::Processed), 1, 0)
        .await
        .unwrap()
        .total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_killed_at_twenty_points_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The server org on a data directory of its own: no server instance shares the client's
    // work queue, so a killed run's work waits for the next run here, not for a takeover.
    let server_dir = dir.path().join("server");
    let (_server, base) = serve_sample(&server_dir, 600);
    connect_field(dir.path(), &base, &["--entities", "account", "--write-offline"]);
    crmsync(dir.path()).args(["sync", "field"]).assert().success();

    let catalog = SqliteCatalog::open(dir.path()).await.unwrap();
    let server_catalog = SqliteCatalog::open(&server_dir).await.unwrap();
    let server = server_catalog
        .open_org(&OrgName::parse("hq-1").unwrap())
        .await
        .unwrap();
    let client = catalog.open_org(&OrgName::parse("field").unwrap()).await.unwrap();
    let existing: Vec<RecordId> = accounts(&*client).await.into_keys().collect();
    assert_eq!(existing.len(), 600);

    // Expected name of every account on the server at the end (None: deleted).
    let mut expected: BTreeMap<RecordId, Option<String>> = BTreeMap::new();
    let mut queued = 0u64;
    // 1,000 creates first; then before each run more updates (some records changed several
    // times), creates and deletes, so that every run has an upload to be killed in.
    let created: Vec<RecordId> = (0..1000).map(|_| RecordId::new_random()).collect();
    let creates: Vec<ClientChange> = created
        .iter()
        .enumerate()
        .map(|(i, id)| {
            expected.insert(*id, Some(format!("Created {i}")));
            change(*id, Operation::Create, Some(format!("Created {i}")))
        })
        .collect();
    for chunk in creates.chunks(500) {
        write_offline(&*client, chunk).await;
    }
    queued += creates.len() as u64;
    let names = accounts(&*client).await;
    for id in &existing {
        if let Some(Value::String(n)) = names[id].get("name") {
            expected.insert(*id, Some(n.clone()));
        }
    }

    let mut killed_mid_run = 0;
    let mut mid_upload = 0;
    // Kill runs until twenty kills have landed while a sync was running (bounded).
    for round in 0..60usize {
        if killed_mid_run >= 20 {
            break;
        }
        // A killed run holds the org until its (short) lease expires.
        wait_until_free(dir.path(), "field").await;
        let mut more = Vec::new();
        for k in 0..60 {
            let id = existing[(round * 17 + k) % 400];
            let name = format!("Round {round} update {k}");
            expected.insert(id, Some(name.clone()));
            more.push(change(id, Operation::Update, Some(name)));
        }
        for k in 0..3 {
            let id = existing[400 + round * 3 + k];
            expected.insert(id, None);
            more.push(change(id, Operation::Delete, None));
        }
        let fresh = RecordId::new_random();
        expected.insert(fresh, Some(format!("Fresh {round}")));
        more.push(change(fresh, Operation::Create, Some(format!("Fresh {round}"))));
        write_offline(&*client, &more).await;
        queued += more.len() as u64;

        let before = processed(&*client).await;
        let mut sync = Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
            .arg("--data")
            .arg(dir.path())
            .args(["sync", "field", "--upload-batch", "20", "--lease-secs", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20 + (round as u64 * 29) % 150)).await;
        if sync.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = sync.kill();
        let _ = sync.wait();
        // Killed after some of the queue went and before all of it did.
        let after = processed(&*client).await;
        if after > before && after < queued {
            mid_upload += 1;
        }
    }
    assert!(
        killed_mid_run >= 20,
        "only {killed_mid_run} kills landed while the sync was running"
    );
    assert!(
        mid_upload >= 5,
        "only {mid_upload} kills landed in the middle of an upload"
    );
    crmsync(dir.path()).args(["sync", "field"]).assert().success();

    let pending = transactions::list(&*client, Some(TxStatus::Pending), 1, 0)
        .await
        .unwrap();
    let errors = transactions::list(&*client, Some(TxStatus::Error), 5, 0)
        .await
        .unwrap();
    assert_eq!((pending.total, errors.total), (0, 0), "{:?}", errors.transactions);
    let processed = transactions::list(&*client, Some(TxStatus::Processed), 1, 0)
        .await
        .unwrap();
    assert_eq!(processed.total, queued);

    let on_server = accounts(&*server).await;
    let alive: Vec<&RecordId> = expected
        .iter()
        .filter(|(_, n)| n.is_some())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(on_server.len(), alive.len(), "no record lost, none duplicated");
    for (id, name) in &expected {
        match name {
            Some(name) => assert_eq!(
                on_server.get(id).and_then(|r| r.get("name")),
                Some(&Value::String(name.clone())),
                "{id}: the last change wins"
            ),
            None => assert!(!on_server.contains_key(id), "deleted {id} is gone"),
        }
    }
    let on_client = accounts(&*client).await;
    assert_eq!(on_client.len(), on_server.len());
    for (id, record) in &on_server {
        assert_eq!(
            on_client.get(id).and_then(|r| r.get("name")),
            record.get("name"),
            "{id}"
        );
    }
}
