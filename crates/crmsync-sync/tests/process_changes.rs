//! Concurrent changes of a stored process: a change that lands between another change's read
//! and its write (a `PUT` while the scheduler records a run and computes the next one) is
//! kept, and the other change is made again on top of it; a process deleted meanwhile is not
//! brought back. SQLite by default, PostgreSQL with the `postgres-tests` feature.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use crmsync_model::OrgName;
use crmsync_store::{Catalog, NewUser, Role, WorkStatus, WriteSet};
#[cfg(not(feature = "postgres-tests"))]
use crmsync_store_sqlite::SqliteCatalog;
use crmsync_sync::SyncError;
use crmsync_sync::process::{self, Execution, Process, ProcessInput, schedule};
use uuid::Uuid;

#[cfg(not(feature = "postgres-tests"))]
async fn storage() -> (Box<dyn std::any::Any + Send>, Arc<dyn Catalog>) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqliteCatalog::open(dir.path()).await.unwrap();
    (Box::new(dir), Arc::new(catalog))
}

#[cfg(feature = "postgres-tests")]
async fn storage() -> (Box<dyn std::any::Any + Send>, Arc<dyn Catalog>) {
    let db = crmsync_store_postgres::testing::TestDatabase::fresh();
    let catalog = db.catalog().await;
    (Box::new(db), Arc::new(catalog))
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 10, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn input(json: &str) -> ProcessInput {
    serde_json::from_str(json).unwrap()
}

async fn field() -> (
    Box<dyn std::any::Any + Send>,
    Arc<dyn Catalog>,
    Arc<dyn crmsync_store::OrgStore>,
) {
    let (keep, catalog) = storage().await;
    let org = OrgName::parse("field").unwrap();
    let admin = NewUser {
        email: "admin@field.example".into(),
        password: "field-password".into(),
        role: Role::Admin,
    };
    catalog.create_org(&org, admin).await.unwrap();
    let store = catalog.open_org(&org).await.unwrap();
    (keep, catalog, store)
}

/// An active process every 15 minutes, and its queued run, claimed as the scheduler would.
async fn running_job(
    catalog: &dyn Catalog,
    store: &dyn crmsync_store::OrgStore,
) -> (Process, crmsync_store::WorkItem) {
    let work = catalog.work();
    let created = schedule::create(
        &*work,
        store,
        input(r#"{"name":"Quarter","frequency":{"every":15,"unit":"minutes"},"published":true,"activated":true}"#),
        at(0),
    )
    .await
    .unwrap();
    let lease = crmsync_store::Lease {
        owner: "test",
        now: at(15),
        until: at(16),
    };
    let item = work.claim_due(&lease, 1).await.unwrap().remove(0);
    assert_eq!(Some(item.id), created.scheduled_work);
    (created, item)
}

fn execution(process: &Process, item: &crmsync_store::WorkItem) -> Execution {
    Execution {
        process: process.id,
        work: item.id,
        started: at(15),
        ended: at(16),
        status: "Succeeded".into(),
        run_id: Some(Uuid::new_v4()),
        error: None,
    }
}

#[tokio::test]
async fn a_change_made_between_a_read_and_its_write_is_kept_and_the_write_made_again_on_top() {
    let (_keep, catalog, store) = field().await;
    let work = catalog.work();
    let (created, _item) = running_job(&*catalog, &*store).await;
    let mut calls = 0;
    let (work, store2) = (&*work, &*store);
    let (saved, ()) = process::modify(&*store, created.id, |mut p: Process| {
        calls += 1;
        let first = calls == 1;
        async move {
            if first {
                // The administrator deactivates the job after this change read it.
                schedule::update(work, store2, created.id, input(r#"{"activated":false}"#), at(16))
                    .await
                    .unwrap();
            }
            p.consecutive_failures = 0;
            p.last_error = Some("seen".into());
            Ok((p, WriteSet::new(), ()))
        }
    })
    .await
    .unwrap();
    assert_eq!(calls, 2, "made again on a fresh read");
    let stored = process::load(&*store, created.id).await.unwrap();
    assert_eq!(stored, saved);
    assert!(!stored.activated && stored.next_run.is_none(), "{stored:?}");
    assert_eq!(
        stored.last_error.as_deref(),
        Some("seen"),
        "and the change made on top"
    );
}

#[tokio::test]
async fn a_run_ending_after_the_job_was_deactivated_does_not_reactivate_or_reschedule_it() {
    let (_keep, catalog, store) = field().await;
    let work = catalog.work();
    let (created, item) = running_job(&*catalog, &*store).await;
    let old = process::load(&*store, created.id).await.unwrap();
    schedule::update(
        &*work,
        &*store,
        created.id,
        input(r#"{"activated":false,"name":"Renamed"}"#),
        at(15),
    )
    .await
    .unwrap();
    let after = schedule::finish_run(&*work, &*store, &item, &execution(&old, &item), None, at(16))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            after.name.as_str(),
            after.activated,
            after.next_run,
            after.scheduled_work
        ),
        ("Renamed", false, None, None)
    );
    assert_eq!(process::load(&*store, created.id).await.unwrap(), after);
    assert_eq!(
        process::history(&*store, created.id, 10).await.unwrap().len(),
        1,
        "the run is recorded"
    );
    let queued = work
        .list_work(store.org(), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.status == WorkStatus::Queued)
        .count();
    assert_eq!(queued, 0, "no next run queued for a deactivated job");
}

#[tokio::test]
async fn a_run_ending_after_the_job_was_deleted_leaves_nothing_behind() {
    let (_keep, catalog, store) = field().await;
    let work = catalog.work();
    let (created, item) = running_job(&*catalog, &*store).await;
    process::delete(&*store, created.id).await.unwrap();
    let after = schedule::finish_run(&*work, &*store, &item, &execution(&created, &item), None, at(16))
        .await
        .unwrap();
    assert_eq!(after, None);
    assert!(matches!(
        process::load(&*store, created.id).await,
        Err(SyncError::NotFound(_))
    ));
    assert!(
        process::history(&*store, created.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(process::list(&*store).await.unwrap().is_empty());
}
