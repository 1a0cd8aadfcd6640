//! What the command-line tests share: the binary on a data directory, and a server org
//! served by a real `crmsync serve` process with a client org connected to it.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `crmsync --data DIR`, free of the caller's environment.
pub fn crmsync(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("crmsync").unwrap();
    cmd.arg("--data")
        .arg(dir)
        .env_remove("CRMSYNC_DATABASE_URL")
        .env_remove("CRMSYNC_MASTER_KEY");
    cmd
}

/// The standard output of a command that must succeed.
pub fn stdout(cmd: &mut assert_cmd::Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

/// The standard error of a command that must fail.
pub fn failure(cmd: &mut assert_cmd::Command) -> String {
    String::from_utf8(cmd.assert().failure().get_output().stderr.clone()).unwrap()
}

/// A running `crmsync serve`, killed when the test ends, however it ends.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Creates the server org `hq-1` with `records` sample accounts, serves the data directory
/// on a loopback port and returns the server with its base URL.
pub fn serve_sample(dir: &Path, records: u64) -> (Server, String) {
    serve_sample_with(dir, records, &[])
}

/// [`serve_sample`] with extra `serve` arguments (e.g. `--instance NAME`).
pub fn serve_sample_with(dir: &Path, records: u64, serve_args: &[&str]) -> (Server, String) {
    crmsync(dir)
        .args([
            "org",
            "create",
            "hq-1",
            "--admin-email",
            "admin@hq.example",
            "--admin-password",
            "password-1",
        ])
        .args(["--sample", "crm", "--records", &records.to_string()])
        .assert()
        .success();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
        .arg("--data")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(serve_args)
        .env_remove("CRMSYNC_DATABASE_URL")
        .env_remove("CRMSYNC_MASTER_KEY")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    (Server(child), base)
}

/// Waits until no run holds `org` in the work queue of the data directory (a killed
/// command's lease has expired, or a takeover of its item has ended), so that the next command
/// starts at once.
pub async fn wait_until_free(dir: &Path, org: &str) {
    use crmsync_store::{Catalog, WorkStatus};
    let catalog = crmsync_store_sqlite::SqliteCatalog::open(dir).await.unwrap();
    let org = crmsync_model::OrgName::parse(org).unwrap();
    let started = std::time::Instant::now();
    loop {
        let now = chrono::Utc::now();
        let items = catalog.work().list_work(&org, 10_000).await.unwrap();
        if !items
            .iter()
            .any(|w| w.status == WorkStatus::Running && w.lease_expires.is_some_and(|e| e > now))
        {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "'{org}' stays held"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Connects the client org `field` to `hq-1` at `base`, with extra `connect` arguments.
pub fn connect_field(dir: &Path, base: &str, extra: &[&str]) {
    crmsync(dir)
        .args([
            "connect",
            "field",
            "--server-url",
            &format!("{base}/hq-1"),
            "--user",
            "admin@hq.example",
            "--password",
            "password-1",
            "--allow-private-urls",
        ])
        .args(extra)
        .assert()
        .success();
}
