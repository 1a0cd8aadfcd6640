//! `crmsync app …` as a user runs it: an application created on the command line obtains a
//! token from a running `crmsync serve` with the client_credentials grant and calls the Web API.

use crate::common;
use common::{crmsync, failure, stdout};

use std::io::BufRead;

/// The value after `label` on its line of `out`.
fn field(out: &str, label: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no '{label}' in:\n{out}"));
    line[label.len()..].trim().to_owned()
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `crmsync serve` on a free port and returns it with its base URL.
fn serve(dir: &std::path::Path) -> (Server, String) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
        .arg("--data")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("CRMSYNC_DATABASE_URL")
        .env_remove("CRMSYNC_MASTER_KEY")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    (Server(child), base)
}

fn create_org(dir: &std::path::Path, name: &str) {
    stdout(crmsync(dir).args([
        "org",
        "create",
        name,
        "--admin-email",
        "admin@example.com",
        "--admin-password",
        "password-1",
    ]));
}

#[test]
fn app_created_on_the_command_line_gets_a_token_and_calls_who_am_i() {
    let dir = tempfile::tempdir().unwrap();
    create_org(dir.path(), "acme");
    create_org(dir.path(), "beta");
    let out = stdout(crmsync(dir.path()).args([
        "app",
        "create",
        "acme",
        "--name",
        "Sync service",
        "--role",
        "admin",
    ]));
    assert!(
        out.contains("Created application 'Sync service' in organization 'acme' with role admin."),
        "{out}"
    );
    assert!(out.contains("cannot be shown again"), "{out}");
    let client_id = field(&out, "client_id:");
    let secret = field(&out, "client_secret:");
    assert_eq!(secret.len(), 43, "{out}");

    let list = stdout(crmsync(dir.path()).args(["app", "list", "acme"]));
    let line = list.lines().find(|l| l.starts_with(&client_id)).expect("listed");
    assert!(line.contains("\tadmin\tSync service\t"), "{list}");
    assert!(!list.contains(&secret), "the secret is never shown again");
    let other = stdout(crmsync(dir.path()).args(["app", "list", "beta"]));
    assert!(
        other.contains("No applications in organization 'beta'."),
        "{other}"
    );

    let (_server, base) = serve(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        let r = client
            .post(format!("{base}/acme/oauth2/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        let who_am_i = |org: &str| {
            client
                .get(format!("{base}/{org}/api/data/v9.2/WhoAmI"))
                .bearer_auth(&token)
                .send()
        };
        let me = who_am_i("acme").await.unwrap();
        assert_eq!(me.status(), 200);
        let me: serde_json::Value = me.json().await.unwrap();
        assert_eq!(me["UserId"], client_id.as_str());
        assert_eq!(who_am_i("beta").await.unwrap().status(), 401);

        // Deleting the app on the command line revokes the token of the running server.
        let out = stdout(crmsync(dir.path()).args(["app", "delete", "acme", &client_id]));
        assert!(out.contains(&format!("Deleted application {client_id}")), "{out}");
        assert_eq!(who_am_i("acme").await.unwrap().status(), 401);
    });
}

#[test]
fn app_commands_explain_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    create_org(dir.path(), "acme");
    let err = failure(crmsync(dir.path()).args(["app", "create", "nope", "--name", "x"]));
    assert!(err.contains("organization 'nope' not found"), "{err}");
    let err = failure(crmsync(dir.path()).args(["app", "create", "acme", "--name", " "]));
    assert!(err.contains("not a valid application name"), "{err}");
    let err = failure(crmsync(dir.path()).args(["app", "delete", "acme", "not-a-guid"]));
    assert!(err.contains("'not-a-guid' is not a client id"), "{err}");
    let unknown = "7f1d4c4e-0000-4000-8000-000000000000";
    let err = failure(crmsync(dir.path()).args(["app", "delete", "acme", unknown]));
    assert!(
        err.contains(&format!(
            "application '{unknown}' of organization 'acme' not found"
        )),
        "{err}"
    );
    let err = failure(crmsync(dir.path()).args(["app", "list", "nope"]));
    assert!(err.contains("organization 'nope' not found"), "{err}");
}
