//! `crmsync process …` as an administrator runs it: Sync Jobs created, listed, published and
//! activated, run now, refused with a reason when wrong, and deleted, on the embedded store.

use crate::common;
use common::{crmsync, failure, stdout};

#[test]
fn processes_are_created_scheduled_refused_with_reasons_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    stdout(crmsync(d).args([
        "org",
        "create",
        "field",
        "--admin-email",
        "admin@field.example",
        "--admin-password",
        "field-password",
    ]));

    let err = failure(crmsync(d).args([
        "process",
        "create",
        "field",
        "--name",
        "J",
        "--frequency",
        "61 * * * *",
    ]));
    assert!(err.contains("61 * * * *") && err.contains("frequency"), "{err}");
    let err = failure(crmsync(d).args([
        "process",
        "create",
        "field",
        "--name",
        "J",
        "--frequency",
        "1h",
        "--activate",
    ]));
    assert!(err.contains("publish it before activating"), "{err}");
    assert_eq!(
        stdout(crmsync(d).args(["process", "list", "field"])).trim(),
        "No processes."
    );

    let out = stdout(crmsync(d).args([
        "process",
        "create",
        "field",
        "--name",
        "Hourly accounts",
        "--frequency",
        "1h",
        "--entities",
        "account",
    ]));
    assert!(
        out.contains("Hourly accounts") && out.contains("draft") && out.contains("next -"),
        "{out}"
    );
    let id = out.split_whitespace().next().unwrap().to_owned();

    let err = failure(crmsync(d).args(["process", "update", "field", &id, "--activate"]));
    assert!(err.contains("publish it before activating"), "{err}");
    let err = failure(crmsync(d).args(["process", "run", "field", &id]));
    assert!(err.contains("publish and activate it before running it"), "{err}");
    let out = stdout(crmsync(d).args(["process", "update", "field", &id, "--publish", "--activate"]));
    assert!(
        out.contains("published, activated") && !out.contains("next -"),
        "{out}"
    );
    let err = failure(crmsync(d).args(["process", "update", "field", &id, "--unpublish"]));
    assert!(err.contains("deactivate it before"), "{err}");
    let listed = stdout(crmsync(d).args(["process", "list", "field"]));
    assert!(
        listed.contains(&id) && listed.contains("published, activated"),
        "{listed}"
    );
    assert_eq!(
        stdout(crmsync(d).args(["process", "history", "field", &id])).trim(),
        "No executions yet."
    );
    // Run now: the next run is now rather than the next slot an hour away.
    let out = stdout(crmsync(d).args(["process", "run", "field", &id]));
    assert!(
        out.contains(&format!("A run of process {id} is queued now.")),
        "{out}"
    );
    let next = out
        .split("next ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let next = chrono::DateTime::parse_from_rfc3339(next).unwrap();
    assert!(next <= chrono::Utc::now(), "{out}");

    stdout(crmsync(d).args(["process", "delete", "field", &id]));
    assert_eq!(
        stdout(crmsync(d).args(["process", "list", "field"])).trim(),
        "No processes."
    );
    let err = failure(crmsync(d).args(["process", "delete", "field", &id]));
    assert!(err.contains(&id), "{err}");
    let err = failure(crmsync(d).args(["process", "history", "field", "not-an-id"]));
    assert!(err.contains("not a process id"), "{err}");
}
