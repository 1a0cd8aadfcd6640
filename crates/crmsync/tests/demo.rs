//! The main job as a user runs it: `crmsync demo --no-serve`, then the sync commands on the
//! organizations it left behind.

use crate::common;
use common::{crmsync, stdout as run};

#[test]
fn demo_syncs_two_orgs_over_http_and_leaves_logs_and_a_working_connection() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(crmsync(dir.path()).args(["demo", "--no-serve", "--records", "100"]));
    for expected in [
        "Creating the server organization 'demo-server'",
        "100 accounts, 200 contacts, 100 opportunities, 50 leads, 200 tasks",
        "Metadata update: 3 change(s)",
        "removed: no longer matches the sync filter (filtered-out)",
        "removed: deleted on the server",
        "Offline transactions: 2 Pending, 0 Processed, 0 Error, 0 Archived.",
        "upload: 1 processed, 1 failed (Error)",
        "exceeds the maximum length of 160",
        "1 transaction(s) set from Error to Pending.",
        "Offline transactions: 0 Pending, 2 Processed, 0 Error, 0 Archived.",
    ] {
        assert!(out.contains(expected), "missing '{expected}' in:\n{out}");
    }
    // The second run moved exactly the four server changes, and the client's offline rename
    // back from the server (an update, and no new transaction).
    let second = out.split("Sync All again").nth(1).unwrap();
    let total = second
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .unwrap();
    let figures: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(&figures[1..6], ["1", "2", "1", "1", "0"], "{total}");

    let logs = run(crmsync(dir.path()).args(["logs", "demo-client"]));
    assert_eq!(logs.lines().count(), 3, "{logs}");
    let run_id = logs
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let detail = run(crmsync(dir.path()).args(["logs", "demo-client", &run_id]));
    assert!(detail.contains("reconciled"), "{detail}");
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn connect_metadata_update_sync_and_logs_against_a_running_server() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    run(crmsync(dir.path()).args([
        "org",
        "create",
        "hq-1",
        "--admin-email",
        "admin@hq.example",
        "--admin-password",
        "password-1",
        "--sample",
        "crm",
        "--records",
        "50",
    ]));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
        .arg("--data")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Server(child);
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    let filters = dir.path().join("filters.xml");
    std::fs::write(&filters, r#"<SyncFilters><fetch><entity name="account"><filter><condition attribute="statecode" operator="eq" value="0"/></filter></entity></fetch></SyncFilters>"#).unwrap();
    let out = run(crmsync(dir.path())
        .args([
            "connect",
            "field",
            "--server-url",
            &format!("{base}/hq-1"),
            "--backend",
            "crmsync",
            "--user",
            "admin@hq.example",
            "--password",
            "password-1",
            "--entities",
            "account,contact",
            "--allow-private-urls",
            "--filters",
        ])
        .arg(&filters));
    assert!(
        out.contains("Connected 'field'") && out.contains("filtered: 1"),
        "{out}"
    );
    let preview = run(crmsync(dir.path()).args(["metadata", "update", "field", "--preview"]));
    assert!(preview.contains("up to date"), "{preview}");
    let synced = run(crmsync(dir.path()).args(["sync", "field"]));
    assert!(
        synced.contains("Succeeded") && synced.contains("account"),
        "{synced}"
    );
    let again = run(crmsync(dir.path()).args(["sync", "field", "--full"]));
    assert!(again.contains("(reconciled)"), "{again}");
    assert_eq!(
        run(crmsync(dir.path()).args(["logs", "field"])).lines().count(),
        2
    );
    // The stored connection never holds the password in clear.
    let db = std::fs::read(dir.path().join("orgs").join("field.db")).unwrap();
    assert!(
        !db.windows(10).any(|w| w == b"password-1"),
        "the server password is stored sealed"
    );
}

#[test]
fn sync_commands_explain_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    run(crmsync(dir.path()).args([
        "org",
        "create",
        "lonely",
        "--admin-email",
        "a@b.example",
        "--admin-password",
        "password-1",
    ]));
    let err = crmsync(dir.path())
        .args(["sync", "lonely"])
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("has no connection"), "{err}");
    let err = crmsync(dir.path())
        .args([
            "connect",
            "lonely",
            "--server-url",
            "http://127.0.0.1:9/x",
            "--backend",
            "salesforce",
            "--user",
            "u",
            "--password",
            "p",
        ])
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    assert!(
        String::from_utf8(err)
            .unwrap()
            .contains("unknown backend type 'salesforce'")
    );
    let err = crmsync(dir.path())
        .args([
            "connect",
            "lonely",
            "--server-url",
            "http://127.0.0.1:9/x",
            "--user",
            "u",
            "--password",
            "p",
        ])
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains("private") || err.contains("loopback"),
        "a loopback server needs --allow-private-urls: {err}"
    );
}
