//! `crmsync org …` as a user runs it: output, exit codes and one-line errors.

use crate::common;
use common::{crmsync, failure, stdout};

use assert_cmd::Command;

#[test]
fn org_create_with_sample_prints_what_it_created_and_org_list_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(crmsync(dir.path()).args([
        "org",
        "create",
        "acme",
        "--admin-email",
        "Admin@Acme.example",
        "--admin-password",
        "password-1",
        "--sample",
        "crm",
        "--records",
        "200",
    ]));
    assert!(
        out.contains("Created organization 'acme' with administrator admin@acme.example."),
        "{out}"
    );
    assert!(
        out.contains("200 accounts, 400 contacts, 200 opportunities, 100 leads, 400 tasks"),
        "{out}"
    );
    let out = stdout(crmsync(dir.path()).args(["org", "list"]));
    assert!(out.starts_with("acme\tcreated "), "{out}");
}

#[test]
fn bad_input_exits_non_zero_with_a_one_line_reason_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let err = failure(crmsync(dir.path()).args([
        "org",
        "create",
        "Bad_Name",
        "--admin-email",
        "a@b.example",
        "--admin-password",
        "password-1",
    ]));
    assert!(err.contains("invalid organization name 'Bad_Name'"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let err = failure(crmsync(dir.path()).args([
        "org",
        "create",
        "acme",
        "--admin-email",
        "nobody",
        "--admin-password",
        "password-1",
    ]));
    assert!(err.contains("'nobody' is not a valid email address"), "{err}");
    let err = failure(crmsync(dir.path()).args([
        "org",
        "create",
        "acme",
        "--admin-email",
        "a@b.example",
        "--admin-password",
        "short",
    ]));
    assert!(err.contains("at least 8 characters"), "{err}");
    assert_eq!(
        stdout(crmsync(dir.path()).args(["org", "list"])).trim(),
        "No organizations."
    );
    stdout(crmsync(dir.path()).args([
        "org",
        "create",
        "acme",
        "--admin-email",
        "a@b.example",
        "--admin-password",
        "password-1",
    ]));
    let err = failure(crmsync(dir.path()).args([
        "org",
        "create",
        "acme",
        "--admin-email",
        "a@b.example",
        "--admin-password",
        "password-1",
    ]));
    assert!(err.contains("organization 'acme' already exists"), "{err}");
    let err = failure(crmsync(dir.path()).args(["--database", "mysql://x", "org", "list"]));
    assert!(err.contains("unsupported database URL"), "{err}");
}

#[test]
fn environment_variable_stands_for_the_data_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("crmsync").unwrap();
    cmd.env("CRMSYNC_DATA", dir.path())
        .env_remove("CRMSYNC_DATABASE_URL");
    stdout(cmd.args([
        "org",
        "create",
        "envorg",
        "--admin-email",
        "a@b.example",
        "--admin-password",
        "password-1",
    ]));
    let out = stdout(crmsync(dir.path()).args(["org", "list"]));
    assert!(out.contains("envorg"), "{out}");
}
