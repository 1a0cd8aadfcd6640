//! The work queue's `start`: a caller that runs its work itself, atomically with the
//! instances' claims.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::work::{catalog_with_orgs, drain, lease, t, work};
use crate::conformance::{TestBackend, org};
use crate::{NewWork, Retry, StoreError, WorkStatus, WorkStore};

/// A caller that runs its work itself starts it: Running under its lease at once, one attempt,
/// seen and counted like a claimed item, and ended the same way.
pub async fn start_runs_work_of_an_idle_org_at_once(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme"]).await;
    let queue = catalog.work();
    let item = queue
        .start(work("acme", "sync", 3), &lease("cli-host-1", 3, 13))
        .await
        .unwrap();
    assert_eq!(item.status, WorkStatus::Running);
    assert_eq!(item.lease_owner.as_deref(), Some("cli-host-1"));
    assert_eq!(
        (item.lease_expires, item.attempts, item.created, item.due),
        (Some(t(13)), 1, t(3), t(3))
    );
    assert!(item.leased_by("cli-host-1", t(12)));
    assert_eq!(item.payload, work("acme", "sync", 3).payload);
    let other = b.catalog().await.work();
    assert_eq!(other.work_item(item.id).await.unwrap(), item);
    let counts: HashMap<WorkStatus, u64> = other.work_counts().await.unwrap().into_iter().collect();
    assert_eq!(counts[&WorkStatus::Running], 1);
    let renewed = other
        .renew_lease(item.id, &lease("cli-host-1", 8, 18), Some(&json!({"done": 1})))
        .await
        .unwrap();
    assert_eq!(renewed.lease_expires, Some(t(18)));
    let done = queue
        .complete(
            item.id,
            "cli-host-1",
            WorkStatus::Succeeded,
            &json!({"runId": "r1"}),
            t(9),
        )
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.result),
        (WorkStatus::Succeeded, Some(json!({"runId": "r1"})))
    );

    let err = queue
        .start(work("nope", "sync", 0), &lease("cli", 10, 20))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(m) if m.contains("nope")),
        "{err}"
    );
    let err = queue
        .start(work("acme", "Sync Now", 0), &lease("cli", 10, 20))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BadRequest(_)), "{err}");
    let registration = NewWork {
        for_new_org: true,
        ..work("newcomer", "connect", 10)
    };
    let started = queue.start(registration, &lease("ui", 10, 20)).await.unwrap();
    assert_eq!(started.status, WorkStatus::Running);
    assert_eq!(queue.list_work(&org("acme"), 10).await.unwrap().len(), 1);
}

/// While a claimed item runs, its org cannot be started: the refusal names the kind of that
/// run and the instance holding it, and stores nothing. Other orgs are not held up, and once
/// the run ends the org can be started.
pub async fn start_is_refused_while_a_claim_holds_the_org(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme", "beta"]).await;
    let queue = catalog.work();
    let claimed = queue.enqueue(work("acme", "metadata", 0), t(0)).await.unwrap();
    assert_eq!(
        queue.claim_due(&lease("serve-a", 1, 11), 5).await.unwrap()[0].id,
        claimed.id
    );
    let err = b
        .catalog()
        .await
        .work()
        .start(work("acme", "sync", 2), &lease("cli-host-7", 2, 12))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("metadata") && m.contains("serve-a") && m.contains("acme")),
        "{err}"
    );
    assert_eq!(
        queue.list_work(&org("acme"), 10).await.unwrap().len(),
        1,
        "nothing stored"
    );
    let beta = queue
        .start(work("beta", "sync", 2), &lease("cli-host-7", 2, 12))
        .await
        .unwrap();
    // A started item holds its org against other starts too.
    let err = queue
        .start(work("beta", "connect", 3), &lease("ui-1", 3, 13))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("cli-host-7") && m.contains("sync")),
        "{err}"
    );
    queue
        .complete(claimed.id, "serve-a", WorkStatus::Succeeded, &json!({}), t(4))
        .await
        .unwrap();
    let started = queue
        .start(work("acme", "sync", 5), &lease("cli-host-7", 5, 15))
        .await
        .unwrap();
    assert_eq!(started.lease_owner.as_deref(), Some("cli-host-7"));
    assert_ne!(started.id, beta.id);
}

/// A claim passes over an org held by a started item, and claims its queued work once the
/// started item has ended.
pub async fn claims_skip_an_org_held_by_a_start(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme", "beta"]).await;
    let queue = catalog.work();
    let queued = queue.enqueue(work("acme", "sync-job", 0), t(0)).await.unwrap();
    let other = queue.enqueue(work("beta", "sync", 1), t(0)).await.unwrap();
    let started = queue
        .start(work("acme", "sync", 2), &lease("cli-host-1", 2, 32))
        .await
        .unwrap();
    let claimed = b
        .catalog()
        .await
        .work()
        .claim_due(&lease("serve-a", 3, 13), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|w| w.id).collect::<Vec<_>>(),
        [other.id],
        "acme is held by the started item"
    );
    assert_eq!(
        queue.work_item(queued.id).await.unwrap().status,
        WorkStatus::Queued
    );
    queue
        .fail(started.id, "cli-host-1", "server unreachable", Retry::Never, t(4))
        .await
        .unwrap();
    let claimed = queue.claim_due(&lease("serve-a", 5, 15), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|w| w.id).collect::<Vec<_>>(), [queued.id]);
}

/// A started item whose lease expired (the process running it died) is taken over by a claim
/// like any other: one more attempt, the new owner's, and the old owner is refused.
pub async fn an_expired_started_item_is_taken_over_by_a_claim(b: &impl TestBackend) {
    let catalog = catalog_with_orgs(b, &["acme"]).await;
    let queue = catalog.work();
    let started = queue
        .start(work("acme", "connect", 0), &lease("cli-host-1", 0, 10))
        .await
        .unwrap();
    assert!(
        queue
            .claim_due(&lease("serve-a", 9, 19), 5)
            .await
            .unwrap()
            .is_empty(),
        "lease still live"
    );
    let taken = queue.claim_due(&lease("serve-a", 10, 20), 5).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (taken[0].id, taken[0].attempts, taken[0].lease_owner.as_deref()),
        (started.id, 2, Some("serve-a"))
    );
    assert_eq!(taken[0].payload, started.payload);
    let err = queue
        .renew_lease(started.id, &lease("cli-host-1", 11, 21), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = queue
        .complete(started.id, "cli-host-1", WorkStatus::Succeeded, &json!({}), t(11))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = queue
        .start(work("acme", "sync", 11), &lease("cli-host-2", 11, 21))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("serve-a") && m.contains("connect")),
        "the taken-over item holds the org: {err}"
    );
    queue
        .complete(started.id, "serve-a", WorkStatus::Succeeded, &json!({}), t(12))
        .await
        .unwrap();
}

/// Starters and claimers race for the same orgs from several instances: an org is never in
/// the hands of two of them at once, and every queued item still runs exactly once.
pub async fn concurrent_starts_and_claims_never_hold_one_org_twice(b: &impl TestBackend) {
    const ORGS: usize = 3;
    const PER_ORG: usize = 6;
    const STARTS: usize = 8;
    let names: Vec<String> = (0..ORGS).map(|i| format!("org{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let catalog = catalog_with_orgs(b, &refs).await;
    let mut expected = HashSet::new();
    for name in &names {
        for _ in 0..PER_ORG {
            let item = catalog.work().enqueue(work(name, "sync", 0), t(0)).await.unwrap();
            expected.insert(item.id);
        }
    }
    let in_hand = Arc::new(Mutex::new(HashSet::new()));
    let claimed_runs = Arc::new(Mutex::new(Vec::new()));
    let started_runs = Arc::new(Mutex::new(0usize));
    let hold = |set: &Arc<Mutex<HashSet<String>>>, org: &str| {
        assert!(
            set.lock().unwrap().insert(org.to_owned()),
            "{org} is held twice at once"
        );
    };
    let mut tasks = Vec::new();
    for i in 0..4 {
        let queue: Arc<dyn WorkStore> = b.catalog().await.work();
        let (in_hand, claimed_runs, started_runs) =
            (in_hand.clone(), claimed_runs.clone(), started_runs.clone());
        let names = names.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("instance-{i}");
            if i % 2 == 0 {
                // A claimer: until three empty claims in a row.
                let mut idle = 0;
                while idle < 3 {
                    let claimed = queue.claim_due(&lease(&owner, 60, 120), 2).await.expect("claim");
                    idle = if claimed.is_empty() { idle + 1 } else { 0 };
                    for item in claimed {
                        hold(&in_hand, item.org.as_str());
                        tokio::task::yield_now().await;
                        claimed_runs.lock().unwrap().push(item.id);
                        in_hand.lock().unwrap().remove(item.org.as_str());
                        queue
                            .complete(item.id, &owner, WorkStatus::Succeeded, &json!({}), t(61))
                            .await
                            .expect("complete");
                    }
                    tokio::task::yield_now().await;
                }
            } else {
                // A starter: tries each org in turn, and goes on past its round of tries until
                // one start got its org (the claimers may hold every org whenever it tries);
                // the cap only bounds a start that never succeeds.
                let mut mine = 0;
                for n in 0..10_000 {
                    if n >= STARTS * ORGS && mine > 0 {
                        break;
                    }
                    let name = &names[n % ORGS];
                    match queue.start(work(name, "sync", 60), &lease(&owner, 60, 120)).await {
                        Ok(item) => {
                            mine += 1;
                            hold(&in_hand, name);
                            tokio::task::yield_now().await;
                            *started_runs.lock().unwrap() += 1;
                            in_hand.lock().unwrap().remove(name.as_str());
                            queue
                                .complete(item.id, &owner, WorkStatus::Succeeded, &json!({}), t(61))
                                .await
                                .expect("complete");
                        }
                        Err(StoreError::Conflict(_)) if n < STARTS * ORGS => tokio::task::yield_now().await,
                        Err(StoreError::Conflict(_)) => tokio::time::sleep(Duration::from_millis(1)).await,
                        Err(e) => panic!("start: {e}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    drain(&*catalog, &claimed_runs).await;
    let queue = catalog.work();
    let claimed_runs = claimed_runs.lock().unwrap().clone();
    assert_eq!(
        claimed_runs.len(),
        ORGS * PER_ORG,
        "each queued item ran exactly once"
    );
    assert_eq!(claimed_runs.into_iter().collect::<HashSet<_>>(), expected);
    let started = *started_runs.lock().unwrap();
    assert!(started > 0, "some starts got their org");
    let counts: HashMap<WorkStatus, u64> = queue.work_counts().await.unwrap().into_iter().collect();
    assert_eq!(counts[&WorkStatus::Running], 0);
    assert_eq!(
        counts[&WorkStatus::Succeeded],
        u64::try_from(ORGS * PER_ORG + started).unwrap()
    );
}
