//! The scheduler worker end to end, on a clock the test moves: a Sync Job created through the
//! webservice syncs a server change to the client when its run is due, missed runs collapse
//! into one, and a job that cannot run fails visibly and keeps its schedule.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use common::{ACME_ADMIN, TestServer, json, sync_url, wait_job};
use crmsync_server::scheduler::{Clock, Scheduler, SchedulerConfig};
use crmsync_server::{AppState, ServerConfig};
use serde_json::{Value, json};

const FIELD: (&str, &str) = ("lead@field.example", "field-admin-pw");

struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A server with `acme`, and `field` connected to it (account and contact), plus a scheduler
/// on the same storage and secrets whose clock the test sets.
async fn setup() -> (TestServer, Scheduler, Arc<TestClock>) {
    let config = ServerConfig {
        allow_private_urls: true,
        ..ServerConfig::default()
    };
    let s = TestServer::start_with(config.clone()).await;
    let body = format!(
        r#"<ConnectRequest><SyncSetup><ProviderID>crmsync</ProviderID><Url>{}/acme</Url>
            <UserName>{}</UserName><Password>{}</Password>
            <RegistrationInfo><Email>{}</Email><Password>{}</Password></RegistrationInfo>
            <Entities>account,contact</Entities></SyncSetup></ConnectRequest>"#,
        s.url, ACME_ADMIN.0, ACME_ADMIN.1, FIELD.0, FIELD.1
    );
    let r = s
        .client
        .post(sync_url(&s, "field", "ConnectAsync"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let mut status = Value::Null;
    for _ in 0..400 {
        let job = json(s.client.get(format!("{}{location}", s.url)).send().await.unwrap()).await;
        status = job["status"].clone();
        if status != "Queued" && status != "Running" {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(status, "Succeeded");
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let scheduler = Scheduler::new(
        AppState::new(s.catalog.clone(), config),
        clock.clone(),
        SchedulerConfig {
            owner: "test-instance".into(),
            ..SchedulerConfig::default()
        },
    );
    (s, scheduler, clock)
}

async fn create_process(s: &TestServer, body: Value) -> Value {
    let r = s
        .client
        .post(sync_url(s, "field", "processes"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    json(r).await
}

async fn get(s: &TestServer, path: &str) -> Value {
    let r = s
        .client
        .get(sync_url(s, "field", path))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    json(r).await
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_sync_job_runs_when_due_and_brings_server_changes_to_the_client() {
    let (s, scheduler, clock) = setup().await;
    let created = create_process(
        &s,
        json!({"name": "Every 15 minutes", "frequency": {"every": 15, "unit": "minutes"},
               "published": true, "activated": true}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let next = time(&created["nextRun"]);
    assert!(
        next > Utc::now() && next <= Utc::now() + Duration::minutes(15),
        "{created}"
    );

    clock.set(next - Duration::seconds(1));
    assert_eq!(scheduler.run_due().await.unwrap(), 0, "not due yet");

    // A change on the server, then the run.
    let r = s
        .send(reqwest::Method::POST, "acme", "accounts", ACME_ADMIN)
        .json(&json!({"name": "Scheduled Ltd"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    clock.set(next);
    assert_eq!(scheduler.run_due().await.unwrap(), 1);
    assert_eq!(scheduler.run_due().await.unwrap(), 0, "ran once");

    let found = json(
        s.get("field", "accounts?$filter=name eq 'Scheduled Ltd'", FIELD)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(found["value"].as_array().unwrap().len(), 1, "{found}");

    let history = get(&s, &format!("processes/{id}/history")).await;
    let runs = history["value"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{history}");
    assert_eq!(runs[0]["status"], "Succeeded");
    let logs = get(&s, "logs").await;
    let run = logs["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == runs[0]["runId"])
        .cloned();
    let run_log = run.expect("the run's log");
    assert_eq!(run_log["trigger"], "job");
    let process = get(&s, &format!("processes/{id}")).await;
    assert_eq!(time(&process["nextRun"]), next + Duration::minutes(15));

    // Operations: the store is healthy, and the queue and request latencies are exposed.
    let health = s.client.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(
        (health.status().as_u16(), health.text().await.unwrap()),
        (200, "ok".to_owned())
    );
    let before = Utc::now();
    let metrics = s.client.get(format!("{}/metrics", s.url)).send().await.unwrap();
    let after = Utc::now();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    // The sync lag of `field`: seconds since its run ended, as of the scrape.
    let ended = time(&run_log["ended"]);
    let lag: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("crmsync_sync_lag_seconds{org=\"field\"} "))
        .unwrap_or_else(|| panic!("no sync lag of field: {text}"))
        .parse()
        .unwrap();
    let bounds = (
        (before - ended).num_milliseconds() as f64 / 1000.0 - 0.001,
        (after - ended).num_milliseconds() as f64 / 1000.0 + 0.001,
    );
    assert!(lag >= bounds.0 && lag <= bounds.1, "lag {lag} outside {bounds:?}");
    assert!(
        !text.contains("crmsync_sync_lag_seconds{org=\"acme\"}"),
        "acme has no connection: {text}"
    );
    assert!(
        text.contains("crmsync_work_items{status=\"Succeeded\"} 2\n"),
        "the connect and the run: {text}"
    );
    assert!(
        text.contains("crmsync_work_items{status=\"Queued\"} 1\n"),
        "the next run: {text}"
    );
    assert!(
        text.contains("crmsync_http_request_duration_seconds_count{method=\"POST\",status=\"201\"} 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn runs_missed_while_stopped_run_once_then_the_schedule_resumes() {
    let (s, scheduler, clock) = setup().await;
    let created = create_process(
        &s,
        json!({"name": "Hourly", "frequency": {"every": 1, "unit": "hours"},
               "published": true, "activated": true}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let next = time(&created["nextRun"]);
    // Nobody ran anything for five hours.
    let later = next + Duration::hours(5) + Duration::minutes(10);
    clock.set(later);
    assert_eq!(scheduler.run_due().await.unwrap(), 1);
    assert_eq!(
        scheduler.run_due().await.unwrap(),
        0,
        "one run for all the missed slots"
    );
    let process = get(&s, &format!("processes/{id}")).await;
    assert_eq!(
        time(&process["nextRun"]),
        next + Duration::hours(6),
        "the next slot after now"
    );
    assert_eq!(
        get(&s, &format!("processes/{id}/history")).await["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_job_that_cannot_run_fails_visibly_and_keeps_its_schedule() {
    let (s, scheduler, clock) = setup().await;
    // `lead` is not enabled for sync: every run of this job fails, and retrying cannot help.
    let created = create_process(
        &s,
        json!({"name": "Leads", "frequency": {"cron": "*/30 * * * *"},
               "steps": [{"function": "SyncService", "entities": ["lead"]}],
               "published": true, "activated": true}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let next = time(&created["nextRun"]);
    clock.set(next);
    assert_eq!(scheduler.run_due().await.unwrap(), 1);
    let process = get(&s, &format!("processes/{id}")).await;
    assert_eq!(process["consecutiveFailures"], 1, "{process}");
    assert!(
        process["lastError"].as_str().unwrap().contains("lead"),
        "{process}"
    );
    assert_eq!(time(&process["nextRun"]), next + Duration::minutes(30));
    let history = get(&s, &format!("processes/{id}/history")).await;
    assert_eq!(history["value"][0]["status"], "Failed");
    let worker = get(&s, "worker").await;
    assert!(
        worker["lastError"]["message"].as_str().unwrap().contains("lead"),
        "{worker}"
    );
    assert_eq!(worker["queue"]["Failed"], 1, "{worker}");
    assert_eq!(worker["queue"]["Queued"], 1, "the next run is queued: {worker}");
}

#[tokio::test]
async fn deactivating_a_job_skips_its_queued_run() {
    let (s, scheduler, clock) = setup().await;
    let created = create_process(
        &s,
        json!({"name": "Daily", "frequency": {"every": 1, "unit": "days"},
               "published": true, "activated": true}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let r = s
        .client
        .put(sync_url(&s, "field", &format!("processes/{id}")))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .json(&json!({"activated": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["nextRun"], Value::Null);
    // Another one is deleted while its run waits in the queue.
    let doomed = create_process(
        &s,
        json!({"name": "Doomed", "frequency": {"every": 1, "unit": "days"},
               "published": true, "activated": true}),
    )
    .await;
    let r = s
        .client
        .delete(sync_url(
            &s,
            "field",
            &format!("processes/{}", doomed["id"].as_str().unwrap()),
        ))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    clock.set(time(&created["nextRun"]).max(time(&doomed["nextRun"])));
    assert_eq!(
        scheduler.run_due().await.unwrap(),
        1,
        "the stale items are claimed and skipped, one per org at a time"
    );
    assert_eq!(scheduler.run_due().await.unwrap(), 1);
    assert_eq!(scheduler.run_due().await.unwrap(), 0);
    let work = s.catalog.work();
    let field = crmsync_model::OrgName::parse("field").unwrap();
    let mut reasons: Vec<String> = work
        .list_work(&field, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.kind == "sync-job")
        .map(|w| {
            assert_eq!(w.status.as_str(), "Skipped", "{w:?}");
            w.result.unwrap()["skipped"].as_str().unwrap().to_owned()
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "the process was changed or deactivated since this run was queued",
            "the process was deleted"
        ]
    );
    let worker = get(&s, "worker").await;
    assert_eq!(worker["queue"]["Skipped"], 2, "{worker}");
    let metrics = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("crmsync_work_items{status=\"Skipped\"} 2\n"),
        "{metrics}"
    );
    assert!(
        get(&s, &format!("processes/{id}/history")).await["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        get(&s, "logs").await["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["trigger"] != "job")
    );
}

#[tokio::test]
async fn process_routes_refuse_bad_input_clearly() {
    let (s, _scheduler, _clock) = setup().await;
    let post = |body: Value| {
        s.client
            .post(sync_url(&s, "field", "processes"))
            .basic_auth(FIELD.0, Some(FIELD.1))
            .json(&body)
            .send()
    };
    let r = post(json!({"name": "J", "frequency": {"cron": "61 * * * *"}}))
        .await
        .unwrap();
    assert!(common::error(r, 400).await.contains("61 * * * *"));
    let r = post(json!({"name": "J", "frequency": {"every": 1, "unit": "days"},
                        "steps": [{"function": "Wash"}]}))
    .await
    .unwrap();
    assert!(common::error(r, 400).await.contains("SyncService"));
    let r = post(json!({"name": "J", "frequency": {"every": 1, "unit": "days"}, "activated": true}))
        .await
        .unwrap();
    assert!(common::error(r, 400).await.contains("publish"));
    let r = s
        .client
        .get(sync_url(&s, "field", "processes"))
        .basic_auth(ACME_ADMIN.0, Some(ACME_ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "another org's admin");
    let created = create_process(
        &s,
        json!({"name": "Draft", "frequency": {"every": 2, "unit": "hours"}}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(get(&s, "processes").await["value"][0]["name"], "Draft");
    let r = s
        .client
        .delete(sync_url(&s, "field", &format!("processes/{id}")))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .client
        .get(sync_url(&s, "field", &format!("processes/{id}")))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn webservice_jobs_survive_a_restart_and_a_dead_instance() {
    use crmsync_model::OrgName;
    use crmsync_store::{Lease, NewWork};
    use tower::ServiceExt;

    let (s, scheduler, clock) = setup().await;
    let r = s
        .client
        .post(sync_url(&s, "field", "SyncAsync"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .json(&json!({"entities": ["account"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job = wait_job(&s, &location, FIELD).await;
    assert_eq!(job["status"], "Succeeded", "{job}");
    assert_eq!(job["kind"], "sync");

    // A new instance, with nothing in memory, answers for the job from the store.
    let fresh = crmsync_server::app(AppState::new(s.catalog.clone(), ServerConfig::default()));
    let request = axum::http::Request::get(&location)
        .header("authorization", format!("Basic {}", base64_credentials(FIELD)))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = fresh.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let read: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (read["status"].clone(), read["runId"].clone()),
        (job["status"].clone(), job["runId"].clone())
    );
    assert_eq!(read["result"]["entities"][0]["entity"], "account", "{read}");

    // An instance died while running a job: once its lease expires, another one finishes it.
    let due = Utc::now() + Duration::days(1);
    let work = s.catalog.work();
    let field = OrgName::parse("field").unwrap();
    let item = NewWork {
        org: field.clone(),
        kind: "sync".into(),
        payload: json!({"entities": [], "full": false}),
        due,
        for_new_org: false,
    };
    let item = work.enqueue(item, Utc::now()).await.unwrap();
    let dead = Lease {
        owner: "dead-instance",
        now: due,
        until: due + Duration::seconds(60),
    };
    assert_eq!(work.claim_due(&dead, 10).await.unwrap().len(), 1);
    // The worker status shows what runs, where, until when.
    let worker = get(&s, "worker").await;
    assert_eq!(worker["queue"]["Running"], 1, "{worker}");
    let running = &worker["running"][0];
    assert_eq!(
        (
            running["id"].as_str(),
            running["instance"].as_str(),
            running["attempts"].as_u64()
        ),
        (Some(item.id.to_string().as_str()), Some("dead-instance"), Some(1)),
        "{worker}"
    );
    assert_eq!(
        time(&running["leaseExpires"]).timestamp_micros(),
        (due + Duration::seconds(60)).timestamp_micros(),
        "stored to the microsecond"
    );
    clock.set(due + Duration::seconds(30));
    assert_eq!(scheduler.run_due().await.unwrap(), 0, "the lease is still live");
    clock.set(due + Duration::seconds(61));
    assert_eq!(scheduler.run_due().await.unwrap(), 1);
    let done = work.work_item(item.id).await.unwrap();
    assert_eq!(done.status.as_str(), "Succeeded");
    assert_eq!(
        (done.attempts, done.lease_owner.as_deref()),
        (2, Some("test-instance"))
    );
    let job = get(&s, &format!("jobs/{}", item.id)).await;
    assert_eq!(job["status"], "Succeeded", "{job}");
    assert!(job["runId"].is_string(), "{job}");
}

fn base64_credentials((user, password): (&str, &str)) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Sends `request` to an instance of its own (no scheduler, nothing in memory) on the same
/// storage and secrets; the status and the JSON body.
async fn oneshot(state: AppState, request: axum::http::Request<axum::body::Body>) -> (u16, Value) {
    use tower::ServiceExt;
    let response = crmsync_server::app(state).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn connect_request(
    s: &TestServer,
    org: &str,
    registrant: (&str, &str),
) -> axum::http::Request<axum::body::Body> {
    let body = format!(
        r#"<ConnectRequest><SyncSetup><ProviderID>crmsync</ProviderID><Url>{}/acme</Url>
            <UserName>{}</UserName><Password>{}</Password>
            <RegistrationInfo><Email>{}</Email><Password>{}</Password></RegistrationInfo>
            <Entities>account</Entities></SyncSetup></ConnectRequest>"#,
        s.url, ACME_ADMIN.0, ACME_ADMIN.1, registrant.0, registrant.1
    );
    axum::http::Request::post(format!("/rest/v1/sync/{org}/ConnectAsync"))
        .body(axum::body::Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn a_connect_job_waits_in_the_queue_sealed_and_is_finished_by_another_instance() {
    use crmsync_model::OrgName;
    use crmsync_store::{Lease, NewUser, Role};

    let config = ServerConfig {
        allow_private_urls: true,
        ..ServerConfig::default()
    };
    // The server's own worker runs nothing: the instances below do.
    let s = TestServer::start_with_scheduler(
        config.clone(),
        SchedulerConfig {
            concurrency: 0,
            ..SchedulerConfig::default()
        },
    )
    .await;
    let state = || AppState::new(s.catalog.clone(), config.clone());
    let (status, accepted) = oneshot(state(), connect_request(&s, "field", FIELD)).await;
    assert_eq!(status, 202, "{accepted}");
    let id: uuid::Uuid = accepted["jobId"].as_str().unwrap().parse().unwrap();
    // Someone else asks to register the same name before the first registration ran.
    let (status, rival) = oneshot(
        state(),
        connect_request(&s, "field", ("rival@other.example", "rival-password")),
    )
    .await;
    assert_eq!(status, 202, "{rival}");

    let work = s.catalog.work();
    let item = work.work_item(id).await.unwrap();
    assert_eq!((item.kind.as_str(), item.status.as_str()), ("connect", "Queued"));
    let stored = item.payload.to_string();
    assert!(
        !stored.contains(ACME_ADMIN.1) && !stored.contains(FIELD.1),
        "no password in clear in the queue: {stored}"
    );
    let field = OrgName::parse("field").unwrap();
    assert!(
        s.catalog.org_info(&field).await.is_err(),
        "nothing registered yet"
    );

    // An instance claims it and dies after registering the org, before connecting it.
    let now = Utc::now();
    let dead = Lease {
        owner: "dead-instance",
        now,
        until: now + Duration::seconds(60),
    };
    let claimed = work.claim_due(&dead, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|w| w.id).collect::<Vec<_>>(), [id]);
    let admin = NewUser {
        email: FIELD.0.into(),
        password: FIELD.1.into(),
        role: Role::Admin,
    };
    s.catalog.create_org(&field, admin).await.unwrap();

    // Another instance, with nothing in memory, takes over once the lease expired.
    let clock = Arc::new(TestClock(Mutex::new(now + Duration::seconds(30))));
    let scheduler = Scheduler::new(
        state(),
        clock.clone(),
        SchedulerConfig {
            owner: "second-instance".into(),
            ..SchedulerConfig::default()
        },
    );
    assert_eq!(scheduler.run_due().await.unwrap(), 0, "the lease is still live");
    clock.set(now + Duration::seconds(61));
    assert_eq!(scheduler.run_due().await.unwrap(), 1);
    // The registrant reads the job by its id alone, from any instance.
    let read = axum::http::Request::get(format!("/rest/v1/sync/field/jobs/{id}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, job) = oneshot(state(), read).await;
    assert_eq!(status, 200);
    assert_eq!(job["status"], "Succeeded", "{job}");
    assert_eq!(job["result"]["entities"], json!(["account"]), "{job}");
    let done = work.work_item(id).await.unwrap();
    assert_eq!(
        (done.attempts, done.lease_owner.as_deref()),
        (2, Some("second-instance"))
    );
    let conn = get(&s, "connection").await;
    assert_eq!(conn["userName"], ACME_ADMIN.0, "{conn}");

    // The rival registration runs next and does not take the org over.
    assert_eq!(scheduler.run_due().await.unwrap(), 1);
    let rival_id = rival["jobId"].as_str().unwrap();
    let read = axum::http::Request::get(format!("/rest/v1/sync/field/jobs/{rival_id}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let (_, job) = oneshot(state(), read).await;
    assert_eq!(job["status"], "Failed", "{job}");
    assert!(job["error"].as_str().unwrap().contains("already exists"), "{job}");
    let users = s.catalog.list_users(&field).await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        [FIELD.0]
    );
}

#[tokio::test]
async fn a_sync_that_fails_says_why_in_its_job_and_in_the_worker_status() {
    let (s, _scheduler, _clock) = setup().await;
    // The server organization goes away: the client's next sync cannot read it.
    let acme = crmsync_model::OrgName::parse("acme").unwrap();
    s.catalog.delete_org(&acme).await.unwrap();
    let r = s
        .client
        .post(sync_url(&s, "field", "SyncAsync"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job = wait_job(&s, &location, FIELD).await;
    assert_eq!(job["status"], "Failed", "{job}");
    let error = job["error"].as_str().expect("the reason").to_owned();
    assert!(!error.is_empty() && job["runId"].is_string(), "{job}");
    let run = get(&s, &format!("logs/{}", job["runId"].as_str().unwrap())).await;
    assert_eq!(run["status"], "Failed", "{run}");
    let worker = get(&s, "worker").await;
    assert_eq!(worker["lastError"]["message"], error.as_str(), "{worker}");
    assert_eq!(worker["lastError"]["workId"], job["id"], "{worker}");
    assert_eq!(worker["queue"]["Failed"], 1, "{worker}");
}
