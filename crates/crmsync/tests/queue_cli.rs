//! The sync commands take their turn in the work queue that `crmsync serve` instances share
//! (here, one instance on the same data directory): a `crmsync sync` waits while the
//! instance runs the organization, then runs, and shows in the queue like any other run;
//! with `--no-wait` it fails at once and syncs nothing; while a command runs an organization,
//! the instance's claims pass over it; and when a command dies, the instance takes its run
//! over once the command's lease has expired.
//!
//! What holds an organization in these tests is a connect to a server that does not answer
//! until the test lets it (then it refuses the credentials), so every wait is decided by the
//! test, not by timing.

use crate::common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crmsync_model::{EntityName, OrgName};
use crmsync_store::{Catalog, WorkItem, WorkStatus};
use crmsync_store_sqlite::SqliteCatalog;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{connect_field, crmsync, failure, serve_sample_with};

const SERVER_USER: (&str, &str) = ("admin@hq.example", "password-1");

/// A server org address that accepts connections and answers nothing until released; from
/// then on it answers every request `401`.
struct Silent {
    url: String,
    release: tokio::sync::watch::Sender<bool>,
    _task: tokio::task::JoinHandle<()>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hq-1", listener.local_addr().unwrap());
        let (release, released) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut released = released.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let _ = socket.read(&mut buf).await;
                    let _ = released.wait_for(|r| *r).await;
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Silent {
            url,
            release,
            _task: task,
        }
    }

    fn release(&self) {
        self.release.send_replace(true);
    }
}

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `crmsync --data DIR ARGS…` in the background; its standard output line by line.
fn spawn(dir: &std::path::Path, args: &[&str]) -> (Running, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
        .arg("--data")
        .arg(dir)
        .args(args)
        .env_remove("CRMSYNC_DATABASE_URL")
        .env_remove("CRMSYNC_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Running(child), rx)
}

/// Waits for a child to end; its status and standard error.
fn finish(mut child: Running, limit: Duration) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
            return (status, err);
        }
        assert!(
            started.elapsed() < limit,
            "the command did not end within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn field() -> OrgName {
    OrgName::parse("field").unwrap()
}

/// Polls the queue of `field` until an item satisfies `wanted`.
async fn wait_for_item(catalog: &dyn Catalog, what: &str, wanted: impl Fn(&WorkItem) -> bool) -> WorkItem {
    let started = Instant::now();
    loop {
        let items = catalog.work().list_work(&field(), 100).await.unwrap();
        if let Some(item) = items.into_iter().find(&wanted) {
            return item;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no work item {what} of 'field'"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Queues a job through the instance's sync webservice as the admin of `field`; its id.
async fn queue_job(base: &str, route: &str, body: Value) -> uuid::Uuid {
    let response = reqwest::Client::new()
        .post(format!("{base}/rest/v1/sync/field/{route}"))
        .basic_auth(SERVER_USER.0, Some(SERVER_USER.1))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let job: Value = response.json().await.unwrap();
    job["jobId"].as_str().unwrap().parse().unwrap()
}

async fn get_json(base: &str, route: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/rest/v1/sync/field/{route}"))
        .basic_auth(SERVER_USER.0, Some(SERVER_USER.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn connect_to(url: &str) -> Value {
    json!({"ProviderID": "crmsync", "Url": url, "UserName": SERVER_USER.0, "Password": SERVER_USER.1})
}

async fn accounts(catalog: &dyn Catalog) -> u64 {
    let store = catalog.open_org(&field()).await.unwrap();
    store.count(&EntityName::parse("account").unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_waits_while_a_server_instance_runs_the_org_and_no_wait_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) =
        serve_sample_with(dir.path(), 30, &["--instance", "serve-a", "--allow-private-urls"]);
    connect_field(dir.path(), &base, &["--entities", "account,contact"]);
    let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(dir.path()).await.unwrap());
    let connected = wait_for_item(&*catalog, "connect", |w| w.kind == "connect").await;
    assert_eq!(connected.status, WorkStatus::Succeeded, "{connected:?}");
    assert!(
        connected
            .lease_owner
            .as_deref()
            .is_some_and(|o| o.starts_with("cli-")),
        "{connected:?}"
    );
    assert!(
        !connected.payload.to_string().contains(SERVER_USER.1),
        "the queued connect holds the password sealed: {}",
        connected.payload
    );

    // The instance runs a reconnect of `field` to a server that keeps it waiting.
    let silent = Silent::start().await;
    let held = queue_job(&base, "ConnectAsync", connect_to(&silent.url)).await;
    wait_for_item(&*catalog, "held by serve-a", |w| {
        w.id == held && w.status == WorkStatus::Running && w.lease_owner.as_deref() == Some("serve-a")
    })
    .await;

    let err = failure(crmsync(dir.path()).args(["sync", "field", "--no-wait"]));
    assert!(
        err.contains("'field' is busy with a run of connect on instance 'serve-a'")
            && err.contains("--no-wait"),
        "{err}"
    );
    let sync_items = |items: Vec<WorkItem>| items.into_iter().filter(|w| w.kind == "sync").count();
    assert_eq!(
        sync_items(catalog.work().list_work(&field(), 100).await.unwrap()),
        0
    );
    assert_eq!(accounts(&*catalog).await, 0, "nothing synced");

    let (waiting, lines) = spawn(dir.path(), &["sync", "field"]);
    let first = lines.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        first.starts_with("Waiting") && first.contains("a run of connect on instance 'serve-a'"),
        "{first}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        lines.try_recv().is_err(),
        "the waiting command says so once and does nothing else"
    );
    assert_eq!(accounts(&*catalog).await, 0, "still waiting");
    assert!(
        crmsync_sync::logs(&*catalog.open_org(&field()).await.unwrap(), 10)
            .await
            .unwrap()
            .is_empty()
    );

    silent.release();
    let (status, err) = finish(waiting, Duration::from_secs(60));
    assert!(status.success(), "{err}");
    let out: Vec<String> = lines.try_iter().collect();
    assert!(out.iter().any(|l| l.contains("Succeeded")), "{out:?}");
    assert_eq!(accounts(&*catalog).await, 30);

    // The reconnect failed (the server refused the credentials) before the sync started;
    // the sync is a work item of the command's, with its run as its result.
    let refused = catalog.work().work_item(held).await.unwrap();
    assert_eq!(refused.status, WorkStatus::Failed, "{refused:?}");
    let sync = wait_for_item(&*catalog, "sync", |w| w.kind == "sync").await;
    assert_eq!(sync.status, WorkStatus::Succeeded, "{sync:?}");
    assert_eq!(sync.attempts, 1);
    assert_eq!(sync.payload["trigger"], "manual");
    let owner = sync.lease_owner.clone().unwrap();
    assert!(owner.starts_with("cli-"), "{owner}");
    let runs = crmsync_sync::logs(&*catalog.open_org(&field()).await.unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(sync.result.as_ref().unwrap()["runId"], runs[0].id.to_string());
    assert!(
        runs[0].started >= refused.updated,
        "the sync started after the instance's run ended"
    );
    // The instance's webservice shows it as it shows its own jobs.
    let job = get_json(&base, &format!("jobs/{}", sync.id)).await;
    assert_eq!(
        (job["kind"].as_str(), job["status"].as_str()),
        (Some("sync"), Some("Succeeded")),
        "{job}"
    );
    assert_eq!(job["runId"], runs[0].id.to_string());
    let worker = get_json(&base, "worker").await;
    assert_eq!(worker["queue"]["Succeeded"], 2, "{worker}");
    assert_eq!(worker["queue"]["Failed"], 1, "{worker}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_instance_skips_the_org_a_command_runs_and_takes_over_when_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) =
        serve_sample_with(dir.path(), 30, &["--instance", "serve-a", "--allow-private-urls"]);
    connect_field(dir.path(), &base, &["--entities", "account,contact"]);
    let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(dir.path()).await.unwrap());
    let silent = Silent::start().await;
    let reconnect = [
        "connect",
        "field",
        "--server-url",
        &silent.url,
        "--user",
        SERVER_USER.0,
        "--password",
        SERVER_USER.1,
        "--allow-private-urls",
    ];

    // A command holds `field`; a sync queued through the instance waits for it.
    let (command, _) = spawn(dir.path(), &reconnect);
    let held = wait_for_item(&*catalog, "held by the command", |w| {
        w.kind == "connect" && w.status == WorkStatus::Running
    })
    .await;
    let owner = held.lease_owner.clone().unwrap();
    assert!(owner.starts_with("cli-"), "{owner}");
    let job = queue_job(&base, "SyncAsync", json!({})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = get_json(&base, &format!("jobs/{job}")).await;
    assert_eq!(
        waiting["status"], "Queued",
        "the instance's claims skip 'field': {waiting}"
    );
    let worker = get_json(&base, "worker").await;
    assert_eq!(worker["running"][0]["kind"], "connect", "{worker}");
    assert_eq!(worker["running"][0]["instance"], owner.as_str(), "{worker}");

    // The server refuses the credentials: the command fails, and the sync runs on the instance.
    silent.release();
    let (status, err) = finish(command, Duration::from_secs(60));
    assert!(!status.success());
    assert!(err.contains("error:"), "{err}");
    let refused = catalog.work().work_item(held.id).await.unwrap();
    assert_eq!(
        (refused.status, refused.lease_owner.as_deref()),
        (WorkStatus::Failed, Some(owner.as_str()))
    );
    let synced = wait_for_item(&*catalog, "synced", |w| {
        w.id.to_string() == job.to_string() && w.status.is_final()
    })
    .await;
    assert_eq!(
        (synced.status, synced.lease_owner.as_deref()),
        (WorkStatus::Succeeded, Some("serve-a")),
        "{synced:?}"
    );
    assert_eq!(accounts(&*catalog).await, 30);

    // A command killed while it runs: its lease (3 s here) expires and the instance takes the
    // run over, opening the sealed connect request with the shared master key.
    silent.release.send_replace(false);
    let (command, _) = spawn(dir.path(), &[&reconnect[..], &["--lease-secs", "3"]].concat());
    let held = wait_for_item(&*catalog, "held by the second command", |w| {
        w.kind == "connect" && w.status == WorkStatus::Running && w.id != refused.id
    })
    .await;
    drop(command);
    silent.release();
    let taken = wait_for_item(&*catalog, "taken over", |w| {
        w.id == held.id && w.status.is_final()
    })
    .await;
    assert_eq!(
        (taken.lease_owner.as_deref(), taken.attempts),
        (Some("serve-a"), 2),
        "{taken:?}"
    );
    let error = taken.last_error.unwrap_or_default();
    assert!(
        error.to_lowercase().contains("refused") || error.contains("401"),
        "the instance ran the connect itself: {error}"
    );
}
