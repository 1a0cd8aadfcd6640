//! Concurrent writers and isolation between organizations.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crmsync_model::{Record, RecordId, Value, Version};

use crate::conformance::{TestBackend, entity_name, org, org_with_thing};
use crate::{Change, ChangeCursor, UpsertMode, WriteSet};

/// Writers on several connections (and two catalog instances) allocate versions while a
/// reader follows the change feed. Every version is unique, and the reader — which only
/// ever asks for versions after the last one it saw — sees every write: a version is never
/// made visible after a higher one.
pub async fn concurrent_writers_get_unique_versions_visible_in_order(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let other = b.catalog().await.open_org(&org("acme")).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let (mut since, mut seen) = (0, HashSet::new());
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = store
                    .changes(&entity_name("thing"), ChangeCursor::start(since), 50)
                    .await
                    .unwrap();
                for c in &page.changes {
                    assert!(c.version() > since, "version {} seen after {since}", c.version());
                    if let Change::Upsert(r) = c {
                        seen.insert(r.id.unwrap());
                    }
                    since = c.version();
                }
                if !page.more {
                    since = page.next.after.max(since);
                    if finished {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..6 {
        let store = if w % 2 == 0 { store.clone() } else { other.clone() };
        writers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 0..25 {
                let id = RecordId::new_random();
                let rec = Record::new(id).with("name", Value::String(format!("w{w} #{i}")));
                let out = store
                    .write(WriteSet::new().record(entity_name("thing"), rec, UpsertMode::CreateOnly))
                    .await
                    .unwrap();
                written.push((id, out.last_version.unwrap()));
            }
            written
        }));
    }
    let mut all: Vec<(RecordId, Version)> = Vec::new();
    for w in writers {
        all.extend(w.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let versions: HashSet<Version> = all.iter().map(|(_, v)| *v).collect();
    assert_eq!(versions.len(), all.len(), "duplicate version numbers");
    let ids: HashSet<RecordId> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(seen, ids, "the change feed missed writes");
    assert_eq!(
        store.current_version().await.unwrap(),
        *versions.iter().max().unwrap()
    );
}

pub async fn orgs_are_isolated_from_each_other(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let acme = org_with_thing(&*catalog, "acme").await;
    let beta = org_with_thing(&*catalog, "beta").await;
    let id = RecordId::new_random();
    let rec = Record::new(id).with("name", Value::String("acme only".into()));
    acme.write(WriteSet::new().record(entity_name("thing"), rec, UpsertMode::CreateOnly))
        .await
        .unwrap();
    assert_eq!(beta.count(&entity_name("thing")).await.unwrap(), 0);
    assert!(beta.retrieve(&entity_name("thing"), id, None).await.is_err());
    assert_eq!(beta.current_version().await.unwrap(), 0);
    assert_eq!(acme.current_version().await.unwrap(), 1);
    assert_eq!(beta.org().as_str(), "beta");
}
