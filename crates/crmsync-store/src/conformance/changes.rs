//! Change tracking: versions, tombstones, paging and expiry.

use chrono::{Duration, Utc};
use crmsync_model::{AttributeName, Record, RecordBatch, RecordId, Value, Version};

use crate::conformance::{TestBackend, entity_name, org_with_thing};
use crate::{Change, ChangeCursor, DeleteMode, OrgStore, StoreError, UpsertMode, WriteSet};

async fn put(store: &dyn OrgStore, id: RecordId, name: &str) -> Version {
    let rec = Record::new(id).with("name", Value::String(name.into()));
    let out = store
        .write(WriteSet::new().record(entity_name("thing"), rec, UpsertMode::Upsert))
        .await
        .unwrap();
    out.last_version.unwrap()
}

async fn delete(store: &dyn OrgStore, id: RecordId) -> Version {
    let out = store
        .write(WriteSet::new().delete(entity_name("thing"), vec![id], DeleteMode::MustExist))
        .await
        .unwrap();
    out.last_version.unwrap()
}

/// Follows the change feed from `since` to its end with pages of `limit`.
async fn all_changes(store: &dyn OrgStore, since: Version, limit: usize) -> (Vec<Change>, Version) {
    let mut out = Vec::new();
    let mut cursor = ChangeCursor::start(since);
    loop {
        let page = store.changes(&entity_name("thing"), cursor, limit).await.unwrap();
        assert!(page.changes.len() <= limit);
        out.extend(page.changes);
        cursor = page.next;
        if !page.more {
            return (out, cursor.after);
        }
    }
}

async fn first_page(
    store: &dyn OrgStore,
    since: Version,
    limit: usize,
) -> crate::StoreResult<crate::ChangePage> {
    store
        .changes(&entity_name("thing"), ChangeCursor::start(since), limit)
        .await
}

fn summary(changes: &[Change]) -> Vec<(String, RecordId, Version)> {
    changes
        .iter()
        .map(|c| match c {
            Change::Upsert(r) => ("upsert".to_string(), r.id.unwrap(), c.version()),
            Change::Delete { id, version } => ("delete".to_string(), *id, *version),
        })
        .collect()
}

pub async fn delete_leaves_a_tombstone_reported_by_changes(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let id = RecordId::new_random();
    let created = put(&*store, id, "A").await;
    let deleted = delete(&*store, id).await;
    assert!(deleted > created);
    assert!(matches!(
        store.retrieve(&entity_name("thing"), id, None).await,
        Err(StoreError::NotFound(_))
    ));
    let page = first_page(&*store, created, 10).await.unwrap();
    assert_eq!(page.changes, vec![Change::Delete { id, version: deleted }]);
    assert_eq!(page.next.after, deleted);
    // Deleting again: an error when it must exist, nothing when missing is fine.
    let err = store
        .write(WriteSet::new().delete(entity_name("thing"), vec![id], DeleteMode::MustExist))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(m) if m.contains(&id.to_string())),
        "{err}"
    );
    let out = store
        .write(WriteSet::new().delete(entity_name("thing"), vec![id], DeleteMode::IgnoreMissing))
        .await
        .unwrap();
    assert_eq!(out.deleted, 0);
    assert_eq!(out.op_counts, vec![0]);
    assert_eq!(first_page(&*store, deleted, 10).await.unwrap().changes, vec![]);
}

pub async fn changes_are_in_version_order_and_paged(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let base = put(&*store, RecordId::new_random(), "before").await;
    let ids: Vec<RecordId> = (0..12).map(|_| RecordId::new_random()).collect();
    let mut expected = std::collections::BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let v = put(&*store, *id, &format!("v{i}")).await;
        expected.insert(*id, ("upsert", v));
    }
    for id in ids.iter().step_by(3) {
        let v = delete(&*store, *id).await;
        expected.insert(*id, ("delete", v));
    }
    for id in ids.iter().skip(1).step_by(4) {
        let v = put(&*store, *id, "updated").await;
        expected.insert(*id, ("upsert", v));
    }
    let (changes, end) = all_changes(&*store, base, 5).await;
    let got = summary(&changes);
    let versions: Vec<Version> = got.iter().map(|c| c.2).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {versions:?}"
    );
    // Each record appears once, with its latest state.
    let mut want: Vec<(String, RecordId, Version)> = expected
        .iter()
        .map(|(id, (k, v))| (k.to_string(), *id, *v))
        .collect();
    want.sort_by_key(|c| c.2);
    assert_eq!(got, want);
    assert_eq!(end, store.current_version().await.unwrap());
    // Nothing new: an empty page that keeps the position.
    let page = first_page(&*store, end, 5).await.unwrap();
    assert!(page.changes.is_empty() && !page.more);
    assert_eq!(page.next.after, end);
}

/// A read of an entity that does not exist fails naming it, and reads after it go on (a
/// failed read leaves nothing behind); a page of size 0 is a page of one.
pub async fn changes_of_an_unknown_entity_fail_and_reads_go_on(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let first = put(&*store, RecordId::new_random(), "one").await;
    put(&*store, RecordId::new_random(), "two").await;
    for _ in 0..3 {
        let err = store
            .changes(&entity_name("nosuch"), ChangeCursor::start(0), 10)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::NotFound(m) if m.contains("nosuch")),
            "{err}"
        );
        let page = store
            .changes(&entity_name("thing"), ChangeCursor::start(0), 0)
            .await
            .unwrap();
        assert_eq!(page.changes.len(), 1);
        assert!(page.more);
        assert_eq!(page.next.after, first);
    }
}

pub async fn changes_from_zero_return_live_records_only(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let mut batch = RecordBatch::new(vec![AttributeName::parse("name").unwrap()]);
    let ids: Vec<RecordId> = (0..30).map(|_| RecordId::new_random()).collect();
    for id in &ids {
        batch.push(*id, vec![Value::String("x".into())]);
    }
    store
        .write(WriteSet::new().upsert(entity_name("thing"), batch, UpsertMode::Upsert))
        .await
        .unwrap();
    store
        .write(WriteSet::new().delete(entity_name("thing"), ids[..10].to_vec(), DeleteMode::MustExist))
        .await
        .unwrap();
    let (changes, end) = all_changes(&*store, 0, 7).await;
    assert_eq!(changes.len(), 20);
    assert!(changes.iter().all(|c| matches!(c, Change::Upsert(_))));
    assert_eq!(end, store.current_version().await.unwrap());
}

pub async fn purged_tombstones_expire_older_tokens(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let a = RecordId::new_random();
    let before = put(&*store, a, "A").await;
    let deleted = delete(&*store, a).await;
    // Nothing is old enough yet.
    assert_eq!(
        store
            .purge_tombstones(Utc::now() - Duration::days(90))
            .await
            .unwrap(),
        0
    );
    assert_eq!(first_page(&*store, before, 10).await.unwrap().changes.len(), 1);
    assert_eq!(
        store
            .purge_tombstones(Utc::now() + Duration::seconds(5))
            .await
            .unwrap(),
        1
    );
    let err = first_page(&*store, before, 10).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Expired { since, horizon, .. } if since == before && horizon == deleted),
        "{err}"
    );
    assert!(err.to_string().contains("expired"));
    // A token at or after the horizon still works, and so does a fresh start.
    assert!(first_page(&*store, deleted, 10).await.unwrap().changes.is_empty());
    assert!(first_page(&*store, 0, 10).await.unwrap().changes.is_empty());
}

/// A record delivered by the first page of an initial read and deleted before the read ends
/// is reported as deleted by a later page: the reader is not left with it.
pub async fn deletes_during_an_initial_read_are_reported(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let ids: Vec<RecordId> = (0..10).map(|_| RecordId::new_random()).collect();
    for id in &ids {
        put(&*store, *id, "x").await;
    }
    let first = first_page(&*store, 0, 3).await.unwrap();
    let delivered = match &first.changes[0] {
        Change::Upsert(r) => r.id.unwrap(),
        Change::Delete { .. } => panic!("an initial read starts with records"),
    };
    delete(&*store, delivered).await;
    let mut cursor = first.next;
    let mut deletes = Vec::new();
    loop {
        let page = store.changes(&entity_name("thing"), cursor, 3).await.unwrap();
        for c in &page.changes {
            if let Change::Delete { id, .. } = c {
                deletes.push(*id);
            }
        }
        cursor = page.next;
        if !page.more {
            break;
        }
    }
    assert_eq!(deletes, vec![delivered]);
}
