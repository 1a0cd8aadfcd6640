//! Two `crmsync serve` processes on one PostgreSQL database share the durable work queue:
//! 200 jobs (8 `ConnectAsync` registrations, then 192 `SyncAsync` runs over 8 client orgs of
//! one server org) each complete exactly once; one instance is killed (SIGKILL) while it runs
//! jobs, and once their leases expire the other instance completes them; no client org ever
//! has two sync runs at once, as its stored run logs show (start and end of every run).
//!
//! The server org lives in a third process on its own SQLite data directory, so it keeps
//! serving when an instance dies and has no share in the queue. Each run gets a fresh
//! PostgreSQL database, dropped at the end. Needs `CRMSYNC_TEST_DATABASE_URL` (feature
//! `postgres-tests`).

#![cfg(feature = "postgres-tests")]

use crate::common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crmsync_model::OrgName;
use crmsync_store::Catalog;
use crmsync_store_postgres::PgCatalog;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const MASTER_KEY: &str = "5f1c0a9e3b7d4e2a8c6b0f1e2d3c4b5a69788796a5b4c3d2e1f0011223344556";
const ORGS: usize = 8;
const SYNCS_PER_ORG: usize = 24;
const LEASE_SECS: u64 = 3;
const SERVER_USER: (&str, &str) = ("admin@hq.example", "password-1");

/// A database of its own, dropped (with whatever still uses it) when the test ends.
struct FreshDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    async fn create() -> FreshDatabase {
        let admin_url = std::env::var("CRMSYNC_TEST_DATABASE_URL").expect(
            "CRMSYNC_TEST_DATABASE_URL must name a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/test",
        );
        let name = format!("crmsync_mi_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin_url.as_str(), String::new()),
        };
        let (server, _) = base.rsplit_once('/').expect("a database URL ends with /DBNAME");
        let url = format!("{server}/{name}{query}");
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .expect("connect to the test database");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create a database for the test");
        FreshDatabase { admin_url, name, url }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .map(|_| ())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// A `crmsync serve` instance on the shared database, killed when the test ends.
struct Instance {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Instance {
    fn start(dir: &Path, db: &FreshDatabase, name: &str) -> Instance {
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
            .args(["--database", &db.url, "serve", "--listen", "127.0.0.1:0"])
            .args(["--allow-private-urls", "--instance", name])
            .env("CRMSYNC_MASTER_KEY", MASTER_KEY)
            .env("CRMSYNC_LEASE_SECS", LEASE_SECS.to_string())
            .env("RUST_LOG", "info")
            .env_remove("CRMSYNC_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.contains("listening"),
            "instance {name} did not start: {line}"
        );
        let base = line.trim().rsplit(' ').next().unwrap().to_owned();
        Instance { child, base, log }
    }

    /// SIGKILL: no shutdown, no lease given back.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect_body(server: &str, org: usize) -> String {
    format!(
        r#"<ConnectRequest><SyncSetup><ProviderID>crmsync</ProviderID><Url>{server}/hq-1</Url>
        <UserName>{}</UserName><Password>{}</Password>
        <RegistrationInfo><Email>lead@field-{org}.example</Email><Password>field-password-{org}</Password></RegistrationInfo>
        <Entities>account,contact</Entities></SyncSetup></ConnectRequest>"#,
        SERVER_USER.0, SERVER_USER.1
    )
}

fn admin_of(org: usize) -> (String, String) {
    (
        format!("lead@field-{org}.example"),
        format!("field-password-{org}"),
    )
}

/// The queue as it is stored: one row per item.
#[derive(Debug)]
struct Row {
    id: uuid::Uuid,
    org: String,
    kind: String,
    status: String,
    owner: Option<String>,
    attempts: i32,
    payload: String,
    result: Option<Value>,
}

async fn queue(conn: &mut PgConnection) -> Vec<Row> {
    use sqlx::Row as _;
    let rows = sqlx::query(
        "SELECT id, org, kind, status, lease_owner, attempts, payload, result FROM crmsync_catalog.work",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    rows.iter()
        .map(|row| Row {
            id: row.get("id"),
            org: row.get("org"),
            kind: row.get("kind"),
            status: row.get("status"),
            owner: row.get("lease_owner"),
            attempts: row.get("attempts"),
            payload: row.get("payload"),
            result: row
                .get::<Option<String>, _>("result")
                .map(|r| serde_json::from_str(&r).unwrap()),
        })
        .collect()
}

fn is_final(status: &str) -> bool {
    matches!(status, "Succeeded" | "PartiallySucceeded" | "Failed" | "Skipped")
}

/// Polls until every item has ended; panics with the instances' logs after `limit`.
async fn wait_until_all_ended(conn: &mut PgConnection, expected: usize, limit: Duration, logs: &[&Path]) {
    let started = Instant::now();
    loop {
        let rows = queue(conn).await;
        if rows.len() == expected && rows.iter().all(|r| is_final(&r.status)) {
            return;
        }
        if started.elapsed() > limit {
            let pending: Vec<String> = rows
                .iter()
                .filter(|r| !is_final(&r.status))
                .map(|r| format!("{} {} {} {:?}", r.org, r.kind, r.status, r.owner))
                .collect();
            for log in logs {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!(
                    "--- {}:\n{}",
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            panic!(
                "{} items still pending after {limit:?}: {pending:?}",
                pending.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_run_each_job_once_and_take_over_a_killed_ones_work() {
    let t0 = Instant::now();
    let db = FreshDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let (_server, server) = common::serve_sample(&server_dir, 30);
    let mut a = Instance::start(dir.path(), &db, "instance-a");
    let b = Instance::start(dir.path(), &db, "instance-b");
    let (a_log, b_log) = (a.log.clone(), b.log.clone());
    let logs = [a_log.as_path(), b_log.as_path()];
    let http = reqwest::Client::new();
    let mut conn = PgConnection::connect(&db.url).await.unwrap();

    // Registrations, half through each instance; they run on either.
    for org in 0..ORGS {
        let base = if org % 2 == 0 { &a.base } else { &b.base };
        let r = http
            .post(format!("{base}/rest/v1/sync/field-{org}/ConnectAsync"))
            .body(connect_body(&server, org))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    wait_until_all_ended(&mut conn, ORGS, Duration::from_secs(60), &logs).await;
    eprintln!("{:?}: {ORGS} orgs registered and connected", t0.elapsed());
    let connects = queue(&mut conn).await;
    for row in &connects {
        assert_eq!(
            (row.kind.as_str(), row.status.as_str()),
            ("connect", "Succeeded"),
            "{row:?}"
        );
        assert!(
            !row.payload.contains(SERVER_USER.1) && !row.payload.contains("field-password-"),
            "no secret in clear in the queue: {}",
            row.payload
        );
    }

    // 192 syncs, queued through both instances, all due now. Bearer tokens (signed with a
    // key from the shared master key) are accepted by both.
    let mut tokens = Vec::new();
    for org in 0..ORGS {
        let (user, password) = admin_of(org);
        let r = http
            .post(format!("{}/field-{org}/oauth2/token", a.base))
            .form(&[
                ("grant_type", "password"),
                ("username", &user),
                ("password", &password),
            ])
            .send()
            .await
            .unwrap();
        let token: Value = r.json().await.unwrap();
        tokens.push(token["access_token"].as_str().expect("a token").to_owned());
    }
    for round in 0..SYNCS_PER_ORG {
        for (org, token) in tokens.iter().enumerate() {
            let base = if (round + org) % 2 == 0 { &a.base } else { &b.base };
            let r = http
                .post(format!("{base}/rest/v1/sync/field-{org}/SyncAsync"))
                .bearer_auth(token)
                .json(&serde_json::json!({"entities": ["account", "contact"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        }
    }

    eprintln!("{:?}: {} syncs queued", t0.elapsed(), ORGS * SYNCS_PER_ORG);
    // Kill instance A while it holds work, once both have done some.
    let started = Instant::now();
    let (killed_at, held) = loop {
        let rows = queue(&mut conn).await;
        let done_by = |owner: &str| {
            rows.iter()
                .filter(|r| r.kind == "sync" && is_final(&r.status) && r.owner.as_deref() == Some(owner))
                .count()
        };
        let held: Vec<uuid::Uuid> = rows
            .iter()
            .filter(|r| r.status == "Running" && r.owner.as_deref() == Some("instance-a"))
            .map(|r| r.id)
            .collect();
        if done_by("instance-a") >= 5 && done_by("instance-b") >= 5 && !held.is_empty() {
            a.kill();
            let killed_at = Utc::now();
            // What A held when it died (it cannot have finished anything since).
            let held: HashSet<uuid::Uuid> = queue(&mut conn)
                .await
                .into_iter()
                .filter(|r| r.status == "Running" && r.owner.as_deref() == Some("instance-a"))
                .map(|r| r.id)
                .collect();
            break (killed_at, held);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "instance A never held work while both had done some"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(!held.is_empty(), "A was killed holding work");
    eprintln!("{:?}: instance A killed", t0.elapsed());

    wait_until_all_ended(
        &mut conn,
        ORGS * (SYNCS_PER_ORG + 1),
        Duration::from_secs(120),
        &logs,
    )
    .await;
    eprintln!("{:?}: every job ended", t0.elapsed());
    let rows = queue(&mut conn).await;
    let syncs: Vec<&Row> = rows.iter().filter(|r| r.kind == "sync").collect();
    assert_eq!(syncs.len(), ORGS * SYNCS_PER_ORG);

    // Each job ended once, successfully, with a run of its own.
    let mut run_of: HashMap<String, uuid::Uuid> = HashMap::new();
    for row in &syncs {
        assert_eq!(row.status, "Succeeded", "{row:?}");
        let run = row
            .result
            .as_ref()
            .and_then(|r| r["runId"].as_str())
            .expect("a run id");
        assert!(
            run_of.insert(run.to_owned(), row.id).is_none(),
            "run {run} claimed by two jobs"
        );
    }
    // A's work in hand was taken over by B, after the lease ran out.
    let mut taken_over_runs = Vec::new();
    for id in &held {
        let row = rows.iter().find(|r| r.id == *id).unwrap();
        assert_eq!(row.status, "Succeeded", "{row:?}");
        assert_eq!(
            (row.owner.as_deref(), row.attempts),
            (Some("instance-b"), 2),
            "taken over once: {row:?}"
        );
        if row.kind == "sync" {
            taken_over_runs.push(row.result.as_ref().unwrap()["runId"].as_str().unwrap().to_owned());
        }
    }
    for row in &syncs {
        assert!(
            matches!(row.owner.as_deref(), Some("instance-a" | "instance-b")),
            "{row:?}"
        );
    }

    // The run logs of every client org: one run at a time, and every job's run is there.
    let catalog = PgCatalog::connect_default(&db.url).await.unwrap();
    let mut finished_runs = 0;
    let mut starts: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for org in 0..ORGS {
        let store = catalog
            .open_org(&OrgName::parse(&format!("field-{org}")).unwrap())
            .await
            .unwrap();
        let mut runs = crmsync_sync::logs(&*store, usize::MAX).await.unwrap();
        runs.sort_by_key(|r| r.started);
        for pair in runs.windows(2) {
            let ended = pair[0].ended.expect("a stored run has ended");
            assert!(
                ended <= pair[1].started,
                "field-{org}: run {} ({} .. {ended}) overlaps run {} (from {})",
                pair[0].id,
                pair[0].started,
                pair[1].id,
                pair[1].started
            );
        }
        for run in &runs {
            starts.insert(run.id.to_string(), run.started);
        }
        finished_runs += runs.len();
    }
    for run in run_of.keys() {
        assert!(starts.contains_key(run), "the log of run {run} is stored");
    }
    // A run A finished just before it died (its job not yet marked done) is run again by B:
    // at most one extra run per job taken over, never more.
    assert!(
        finished_runs >= syncs.len() && finished_runs <= syncs.len() + held.len(),
        "{finished_runs} runs stored for {} jobs ({} taken over)",
        syncs.len(),
        held.len()
    );
    for run in &taken_over_runs {
        assert!(
            starts[run] > killed_at,
            "B started the taken-over run {run} only after A died"
        );
    }
    let by_a = syncs
        .iter()
        .filter(|r| r.owner.as_deref() == Some("instance-a"))
        .count();
    eprintln!(
        "{} jobs: {by_a} syncs ended by A before it was killed holding {} items, {} by B; {finished_runs} runs stored",
        rows.len(),
        held.len(),
        syncs.len() - by_a
    );
    drop(catalog);
    drop(b);
    drop(a);
    drop(db);
}
