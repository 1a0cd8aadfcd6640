//! The durable work queue: enqueue, claims by lease, one running item per org, expired
//! leases, retries, claims from several instances at once, and work started by the caller
//! that runs it, racing with claims. Every time is passed in, from
//! a fixed origin, so nothing here depends on the wall clock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::conformance::{TestBackend, admin, org};
use crate::{Catalog, Lease, NewWork, Retry, StoreError, WorkStatus, WorkStore};

pub(super) fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
        + Duration::minutes(minutes)
}

pub(super) fn lease(owner: &str, now: i64, until: i64) -> Lease<'_> {
    Lease {
        owner,
        now: t(now),
        until: t(until),
    }
}

pub(super) fn work(org_name: &str, kind: &str, due: i64) -> NewWork {
    NewWork {
        org: org(org_name),
        kind: kind.into(),
        payload: json!({"entities": ["account"], "note": "bob\"e'); DROP TABLE work;--"}),
        due: t(due),
        for_new_org: false,
    }
}

pub(super) async fn catalog_with_orgs(b: &impl TestBackend, names: &[&str]) -> Arc<dyn Catalog> {
    let catalog = b.catalog().await;
    for name in names {
        catalog.create_org(&org(name), admin()).await.expect("create org");
    }
    catalog
}

pub async fn work_is_enqueued_read_listed_and_deleted_with_its_org(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme", "beta"]).await;
    let queue = catalog.work();
    let first = queue.enqueue(work("acme", "sync", 5), t(0)).await.unwrap();
    assert_eq!(first.status, WorkStatus::Queued);
    assert_eq!((first.due, first.created, first.attempts), (t(5), t(0), 0));
    assert_eq!(first.lease_owner, None);
    let second = queue.enqueue(work("acme", "sync-job", 0), t(1)).await.unwrap();
    queue.enqueue(work("beta", "connect", 0), t(2)).await.unwrap();

    // Read back from another instance, payload verbatim.
    let other = b.catalog().await.work();
    let read = other.work_item(first.id).await.unwrap();
    assert_eq!(read, first);
    assert_eq!(read.payload, work("acme", "sync", 5).payload);
    let listed: Vec<Uuid> = other
        .list_work(&org("acme"), 10)
        .await
        .unwrap()
        .iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(listed, [second.id, first.id], "newest first, of that org only");
    assert_eq!(other.list_work(&org("acme"), 1).await.unwrap().len(), 1);

    assert!(matches!(
        queue.work_item(Uuid::new_v4()).await,
        Err(StoreError::NotFound(_))
    ));
    let err = queue.enqueue(work("nope", "sync", 0), t(0)).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(m) if m.contains("nope")),
        "{err}"
    );
    let err = queue
        .enqueue(work("acme", "Sync Now", 0), t(0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::BadRequest(m) if m.contains("Sync Now")),
        "{err}"
    );

    catalog.delete_org(&org("acme")).await.unwrap();
    assert!(matches!(
        queue.work_item(first.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(queue.list_work(&org("beta"), 10).await.unwrap().len(), 1);
}

/// A registration's item is queued before its org exists, runs under the same one-per-org
/// rule, and stays readable whatever becomes of the org; once the org exists and is deleted,
/// its items go with it.
pub async fn work_for_a_new_org_is_queued_before_the_org_exists(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &[]).await;
    let queue = catalog.work();
    let new_org = NewWork {
        for_new_org: true,
        ..work("newcomer", "connect", 0)
    };
    let first = queue.enqueue(new_org.clone(), t(0)).await.unwrap();
    let second = queue.enqueue(new_org, t(1)).await.unwrap();
    let claimed = queue.claim_due(&lease("one", 1, 11), 5).await.unwrap();
    assert_eq!(
        claimed.iter().map(|w| w.id).collect::<Vec<_>>(),
        [first.id],
        "one at a time for that name too"
    );
    queue
        .fail(
            first.id,
            "one",
            "the server refused the credentials",
            Retry::Never,
            t(2),
        )
        .await
        .unwrap();
    let failed = b.catalog().await.work().work_item(first.id).await.unwrap();
    assert_eq!(
        (failed.status, failed.last_error.as_deref()),
        (WorkStatus::Failed, Some("the server refused the credentials"))
    );

    catalog.create_org(&org("newcomer"), admin()).await.unwrap();
    let claimed = queue.claim_due(&lease("one", 3, 13), 5).await.unwrap();
    assert_eq!(claimed.iter().map(|w| w.id).collect::<Vec<_>>(), [second.id]);
    queue
        .complete(second.id, "one", WorkStatus::Succeeded, &json!({}), t(4))
        .await
        .unwrap();
    catalog.delete_org(&org("newcomer")).await.unwrap();
    assert!(queue.list_work(&org("newcomer"), 10).await.unwrap().is_empty());
    assert!(matches!(
        queue.work_item(second.id).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn claims_take_due_items_earliest_first_under_a_lease(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme", "beta", "gamma"]).await;
    let queue = catalog.work();
    let later = queue.enqueue(work("acme", "sync", 10), t(0)).await.unwrap();
    let early = queue.enqueue(work("beta", "sync", 2), t(0)).await.unwrap();
    let earliest = queue.enqueue(work("gamma", "sync", 1), t(0)).await.unwrap();

    assert!(
        queue
            .claim_due(&lease("one", 0, 30), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing due yet"
    );
    let claimed = queue.claim_due(&lease("one", 5, 35), 10).await.unwrap();
    let ids: Vec<Uuid> = claimed.iter().map(|w| w.id).collect();
    assert_eq!(ids, [earliest.id, early.id], "due items only, earliest first");
    for item in &claimed {
        assert_eq!(item.status, WorkStatus::Running);
        assert_eq!(item.lease_owner.as_deref(), Some("one"));
        assert_eq!(
            (item.lease_expires, item.attempts, item.updated),
            (Some(t(35)), 1, t(5))
        );
        assert!(
            item.leased_by("one", t(34)) && !item.leased_by("one", t(35)) && !item.leased_by("two", t(6))
        );
    }
    assert!(
        queue
            .claim_due(&lease("two", 6, 36), 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed once"
    );
    let limited = queue.claim_due(&lease("two", 10, 40), 0).await.unwrap();
    assert!(limited.is_empty(), "limit 0 claims nothing");
    let last = queue.claim_due(&lease("two", 10, 40), 1).await.unwrap();
    assert_eq!(last.iter().map(|w| w.id).collect::<Vec<_>>(), [later.id]);
}

pub async fn an_org_never_has_two_running_items(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme", "beta"]).await;
    let queue = catalog.work();
    let a1 = queue.enqueue(work("acme", "sync", 0), t(0)).await.unwrap();
    let a2 = queue.enqueue(work("acme", "metadata", 1), t(0)).await.unwrap();
    let b1 = queue.enqueue(work("beta", "sync", 2), t(0)).await.unwrap();

    let claimed = queue.claim_due(&lease("one", 5, 35), 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|w| w.id).collect::<Vec<_>>(),
        [a1.id, b1.id],
        "one per org"
    );
    assert!(
        queue
            .claim_due(&lease("two", 6, 36), 10)
            .await
            .unwrap()
            .is_empty(),
        "acme already runs a1 under a live lease"
    );
    queue
        .complete(a1.id, "one", WorkStatus::Succeeded, &json!({"runId": "r1"}), t(7))
        .await
        .unwrap();
    let next = queue.claim_due(&lease("two", 8, 38), 10).await.unwrap();
    assert_eq!(next.iter().map(|w| w.id).collect::<Vec<_>>(), [a2.id]);
}

pub async fn an_expired_lease_is_taken_over_and_the_old_owner_is_refused(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme"]).await;
    let queue = catalog.work();
    let item = queue.enqueue(work("acme", "sync", 0), t(0)).await.unwrap();
    queue.claim_due(&lease("one", 1, 11), 1).await.unwrap();
    assert!(
        queue
            .claim_due(&lease("two", 10, 20), 1)
            .await
            .unwrap()
            .is_empty(),
        "lease still live"
    );

    let taken = queue.claim_due(&lease("two", 11, 21), 1).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].id, taken[0].attempts), (item.id, 2));
    assert_eq!(taken[0].lease_owner.as_deref(), Some("two"));

    let err = queue
        .renew_lease(item.id, &lease("one", 12, 22), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("one")),
        "{err}"
    );
    let err = queue
        .complete(item.id, "one", WorkStatus::Succeeded, &json!({}), t(12))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = queue
        .fail(item.id, "one", "late", Retry::Never, t(12))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");

    let done = queue
        .complete(
            item.id,
            "two",
            WorkStatus::PartiallySucceeded,
            &json!({"failed": 1}),
            t(13),
        )
        .await
        .unwrap();
    assert_eq!(done.status, WorkStatus::PartiallySucceeded);
    assert_eq!(done.result, Some(json!({"failed": 1})));
    assert_eq!(
        done.lease_owner.as_deref(),
        Some("two"),
        "who ran it stays visible"
    );
    assert!(
        queue
            .claim_due(&lease("three", 100, 110), 1)
            .await
            .unwrap()
            .is_empty(),
        "done for good"
    );
    let err = queue
        .complete(item.id, "two", WorkStatus::Succeeded, &json!({}), t(14))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "an ended item cannot end twice: {err}"
    );
}

pub async fn renewing_a_lease_keeps_the_item_and_records_progress(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme"]).await;
    let queue = catalog.work();
    let item = queue.enqueue(work("acme", "sync", 0), t(0)).await.unwrap();
    queue.claim_due(&lease("one", 1, 11), 1).await.unwrap();
    let progress = json!({"phase": "download", "entity": "account", "done": 5, "total": 9});
    let renewed = queue
        .renew_lease(item.id, &lease("one", 9, 19), Some(&progress))
        .await
        .unwrap();
    assert_eq!(renewed.lease_expires, Some(t(19)));
    assert_eq!(renewed.result, Some(progress.clone()));
    let renewed = queue
        .renew_lease(item.id, &lease("one", 10, 20), None)
        .await
        .unwrap();
    assert_eq!(renewed.result, Some(progress), "progress kept when none is given");
    assert!(
        queue
            .claim_due(&lease("two", 15, 25), 1)
            .await
            .unwrap()
            .is_empty(),
        "renewed lease is live"
    );

    // A lease that already expired cannot be renewed: another instance may own the item.
    let err = queue
        .renew_lease(item.id, &lease("one", 20, 30), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = queue
        .renew_lease(Uuid::new_v4(), &lease("one", 1, 2), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

pub async fn failed_attempts_retry_later_or_fail_for_good(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme"]).await;
    let queue = catalog.work();
    let item = queue.enqueue(work("acme", "sync", 0), t(0)).await.unwrap();
    queue.claim_due(&lease("one", 1, 11), 1).await.unwrap();
    let err = queue
        .complete(item.id, "one", WorkStatus::Running, &json!({}), t(2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BadRequest(_)), "{err}");

    let retried = queue
        .fail(item.id, "one", "server unreachable", Retry::At(t(7)), t(2))
        .await
        .unwrap();
    assert_eq!(retried.status, WorkStatus::Queued);
    assert_eq!(retried.due, t(7));
    assert_eq!(retried.last_error.as_deref(), Some("server unreachable"));
    assert!(
        queue.claim_due(&lease("one", 6, 16), 1).await.unwrap().is_empty(),
        "backing off"
    );
    let again = queue.claim_due(&lease("two", 7, 17), 1).await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (item.id, 2));

    let failed = queue
        .fail(item.id, "two", "still unreachable", Retry::Never, t(8))
        .await
        .unwrap();
    assert_eq!(failed.status, WorkStatus::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("still unreachable"));
    assert!(
        queue
            .claim_due(&lease("one", 100, 110), 1)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn work_counts_cover_every_status(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme", "beta"]).await;
    let queue = catalog.work();
    let zeros: Vec<(WorkStatus, u64)> = WorkStatus::ALL.into_iter().map(|s| (s, 0)).collect();
    assert_eq!(queue.work_counts().await.unwrap(), zeros);
    let a = queue.enqueue(work("acme", "sync", 0), t(0)).await.unwrap();
    queue.enqueue(work("acme", "sync", 1), t(0)).await.unwrap();
    queue.enqueue(work("beta", "sync", 50), t(0)).await.unwrap();
    queue.claim_due(&lease("one", 1, 11), 5).await.unwrap();
    queue.fail(a.id, "one", "boom", Retry::Never, t(2)).await.unwrap();
    let b = queue.claim_due(&lease("one", 3, 13), 5).await.unwrap();
    assert_eq!(b.len(), 1);
    queue
        .complete(
            b[0].id,
            "one",
            WorkStatus::Skipped,
            &json!({"skipped": "stale"}),
            t(4),
        )
        .await
        .unwrap();
    let counts: HashMap<WorkStatus, u64> = queue.work_counts().await.unwrap().into_iter().collect();
    assert_eq!(counts[&WorkStatus::Queued], 1);
    assert_eq!(counts[&WorkStatus::Running], 0);
    assert_eq!(counts[&WorkStatus::Failed], 1);
    assert_eq!(counts[&WorkStatus::Skipped], 1);
}

/// Two instances claim and complete concurrently: each item runs exactly once, and no org
/// ever has two items in hand at the same moment.
pub async fn concurrent_claimers_run_each_item_once_and_each_org_alone(b: &impl TestBackend) {
    const ORGS: usize = 6;
    const PER_ORG: usize = 5;
    let names: Vec<String> = (0..ORGS).map(|i| format!("org{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let catalog = catalog_with_orgs(b, &refs).await;
    let mut expected = HashSet::new();
    for name in &names {
        for _ in 0..PER_ORG {
            expected.insert(
                catalog
                    .work()
                    .enqueue(work(name, "sync", 0), t(0))
                    .await
                    .unwrap()
                    .id,
            );
        }
    }
    let running = Arc::new(Mutex::new(HashSet::new()));
    let runs = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let queue: Arc<dyn WorkStore> = b.catalog().await.work();
        let (running, runs) = (running.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            let owner = format!("instance-{i}");
            let mut idle = 0;
            while idle < 3 {
                let claimed = queue.claim_due(&lease(&owner, 60, 120), 3).await.expect("claim");
                idle = if claimed.is_empty() { idle + 1 } else { 0 };
                for item in claimed {
                    assert!(
                        running.lock().unwrap().insert(item.org.clone()),
                        "{} runs twice at once",
                        item.org
                    );
                    tokio::task::yield_now().await;
                    runs.lock().unwrap().push(item.id);
                    // Leave the set before completing: from here on only the stored lease guards the org.
                    running.lock().unwrap().remove(&item.org);
                    queue
                        .complete(item.id, &owner, WorkStatus::Succeeded, &json!({}), t(61))
                        .await
                        .expect("complete");
                }
                if idle > 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    // Claimers stop after three empty claims in a row, which can happen while another one
    // still holds the last items of an org; finish whatever is left from here.
    for task in tasks {
        task.await.expect("claimer");
    }
    drain(&*catalog, &runs).await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), ORGS * PER_ORG, "each item ran exactly once");
    assert_eq!(runs.iter().copied().collect::<HashSet<_>>(), expected);
}

/// Claims and completes, as instance `finisher`, whatever is left in the queue (racing
/// claimers may stop while another still holds an org's last items), recording each run.
pub(super) async fn drain(catalog: &dyn Catalog, runs: &Mutex<Vec<Uuid>>) {
    let queue = catalog.work();
    loop {
        let claimed = queue.claim_due(&lease("finisher", 60, 120), 10).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        for item in claimed {
            runs.lock().unwrap().push(item.id);
            queue
                .complete(item.id, "finisher", WorkStatus::Succeeded, &json!({}), t(61))
                .await
                .unwrap();
        }
    }
}
