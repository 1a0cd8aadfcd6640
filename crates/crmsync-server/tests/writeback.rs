//! Client-to-server write-back end to end, on two real servers over HTTP: the Server org
//! `acme` on one, the Client org `field` on the other, connected as a user would connect it.
//! Offline writes queue transactions that the next sync uploads; immediate writes reach the
//! server first. Rejections, conflicts, archived transactions, lost answers and a server that
//! is down are each tested on purpose.

use crate::common;
use crate::proxy;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{ACME_ADMIN, TestServer, created_id, error, json};
use crmsync_model::{EntityName, MetadataChange, OrgName};
use crmsync_server::ServerConfig;
use proxy::Proxy;
use serde_json::{Value, json};

const FIELD: (&str, &str) = ("lead@field.example", "field-admin-pw");
/// The servers' key sealing connection passwords (a test opens the client's connection).
const KEY: [u8; 32] = [7; 32];

struct Pair {
    server: TestServer,
    client: TestServer,
    /// Between the client and the server.
    proxy: Proxy,
}

async fn start() -> TestServer {
    TestServer::start_with(ServerConfig {
        allow_private_urls: true,
        secrets_key: KEY,
        ..ServerConfig::default()
    })
    .await
}

impl Pair {
    /// `field` on the client server, connected to `acme` through the proxy, and synced once.
    async fn connect(write_offline: bool) -> Pair {
        let server = start().await;
        let client = start().await;
        let proxy = Proxy::start(&server.url).await;
        let body = format!(
            r#"<ConnectRequest><SyncSetup>
                <ProviderID>crmsync</ProviderID><Url>{}/acme</Url>
                <UserName>{}</UserName><Password>{}</Password>
                <RegistrationInfo><Email>{}</Email><Password>{}</Password></RegistrationInfo>
                <Entities>account,contact</Entities>
                <WriteOffline>{write_offline}</WriteOffline>
              </SyncSetup></ConnectRequest>"#,
            proxy.url, ACME_ADMIN.0, ACME_ADMIN.1, FIELD.0, FIELD.1
        );
        let pair = Pair {
            server,
            client,
            proxy,
        };
        let r = pair
            .client
            .client
            .post(pair.sync_url("ConnectAsync"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let job = pair.wait(&location).await;
        assert_eq!(job["status"], "Succeeded", "{job}");
        let run = pair.sync().await;
        assert_eq!(run["status"], "Succeeded", "{run}");
        pair
    }

    fn sync_url(&self, path: &str) -> String {
        common::sync_url(&self.client, "field", path)
    }

    async fn wait(&self, location: &str) -> Value {
        common::wait_job(&self.client, location, FIELD).await
    }

    /// Runs Sync All through the webservice; returns the run's log.
    async fn sync(&self) -> Value {
        let r = self
            .client
            .client
            .post(self.sync_url("SyncAsync"))
            .basic_auth(FIELD.0, Some(FIELD.1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let job = self.wait(&location).await;
        let run = job["runId"].as_str().unwrap_or_else(|| panic!("no run: {job}"));
        self.admin_get(&format!("logs/{run}")).await
    }

    async fn admin_get(&self, path: &str) -> Value {
        json(
            self.client
                .client
                .get(self.sync_url(path))
                .basic_auth(FIELD.0, Some(FIELD.1))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .client
            .post(self.sync_url(path))
            .basic_auth(FIELD.0, Some(FIELD.1))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn transactions(&self, status: &str) -> Vec<Value> {
        let page = self
            .admin_get(&format!("transactions?status={status}&top=5000"))
            .await;
        page["value"]
            .as_array()
            .unwrap_or_else(|| panic!("{page}"))
            .clone()
    }

    /// A write on the client's Web API.
    async fn client_write(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.client.send(method, "field", path, FIELD);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn client_get(&self, path: &str) -> reqwest::Response {
        self.client.get("field", path, FIELD).send().await.unwrap()
    }

    async fn server_get(&self, path: &str) -> reqwest::Response {
        self.server.get("acme", path, ACME_ADMIN).send().await.unwrap()
    }

    /// The names of the server's accounts that start with one of `prefixes`, sorted.
    async fn server_names(&self, prefixes: &[&str]) -> Vec<String> {
        let filter = prefixes
            .iter()
            .map(|p| format!("startswith(name,'{p}')"))
            .collect::<Vec<_>>()
            .join(" or ");
        let all = json(
            self.server_get(&format!("accounts?$select=name&$filter={filter}"))
                .await,
        )
        .await;
        let mut names: Vec<String> = all["value"]
            .as_array()
            .unwrap_or_else(|| panic!("{all}"))
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    /// Creates an account named `name` on the client; its id.
    async fn client_create(&self, name: &str) -> String {
        let r = self
            .client_write(reqwest::Method::POST, "accounts", Some(json!({ "name": name })))
            .await;
        assert_eq!(r.status(), 204);
        created_id(&r)
    }

    /// Runs the client's upload phase alone, in rounds of two (two out at once) with
    /// retries 1 ms apart: the queue is read over several pages and each round is prepared
    /// while the one before it is sent.
    async fn upload_in_rounds_of_two(
        &self,
    ) -> (
        Result<crmsync_sync::upload::UploadFigures, crmsync_sync::SyncError>,
        crmsync_sync::RunLog,
    ) {
        let org = OrgName::parse("field").unwrap();
        let field = self.client.catalog.open_org(&org).await.unwrap();
        let conn = crmsync_sync::Connection::load(&*field).await.unwrap().unwrap();
        let connector = crmsync_connectors::for_connection(&org, &conn, &KEY).unwrap();
        let mut upload =
            crmsync_sync::upload::Upload::new(&*field, &*connector, crmsync_sync::ConflictPolicy::ClientWins);
        upload.batch = 2;
        upload.backoff = Duration::from_millis(1);
        let mut log = crmsync_sync::RunLog::start(crmsync_sync::Trigger::Manual);
        let result = upload.run(&mut log).await;
        (result, log)
    }

    async fn server_write(&self, method: reqwest::Method, path: &str, body: Value) {
        let r = self
            .server
            .send(method, "acme", path, ACME_ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    /// Some account id of the server (synced to the client).
    async fn account(&self, n: usize) -> String {
        let page = json(
            self.server_get("accounts?$select=accountid&$orderby=accountid")
                .await,
        )
        .await;
        page["value"][n]["accountid"].as_str().unwrap().to_owned()
    }

    async fn set_settings(&self, body: Value) {
        let r = self
            .client
            .client
            .put(self.sync_url("connection/settings"))
            .basic_auth(FIELD.0, Some(FIELD.1))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

fn ids(transactions: &[Value]) -> Vec<Value> {
    transactions.iter().map(|t| t["id"].clone()).collect()
}

async fn name_on(r: reqwest::Response) -> Option<String> {
    if r.status() == 404 {
        return None;
    }
    json(r).await["name"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn offline_writes_reach_the_server_at_the_next_sync_without_ping_pong() {
    let p = Pair::connect(true).await;
    let (a0, a1) = (p.account(0).await, p.account(1).await);
    let new_id = "7d3c2b1a-0000-4000-8000-000000000001";
    let r = p
        .client_write(
            reqwest::Method::PATCH,
            &format!("accounts({new_id})"),
            Some(json!({"name": "Created offline"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = p
        .client_write(
            reqwest::Method::PATCH,
            &format!("accounts({a0})"),
            Some(json!({"name": "Renamed offline"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = p
        .client_write(reqwest::Method::DELETE, &format!("accounts({a1})"), None)
        .await;
    assert_eq!(r.status(), 204);

    // Stored locally at once, with three Pending transactions, readable like any entity.
    assert_eq!(
        name_on(p.client_get(&format!("accounts({new_id})")).await)
            .await
            .as_deref(),
        Some("Created offline")
    );
    let pending = p.transactions("pending").await;
    let operations: Vec<&str> = pending.iter().map(|t| t["operation"].as_str().unwrap()).collect();
    assert_eq!(operations, ["Create", "Update", "Delete"]);
    assert!(
        pending[1]["originalValues"]["name"].is_string(),
        "{:?}",
        pending[1]
    );
    let second = p.admin_get("transactions?status=all&top=1&skip=1").await;
    assert_eq!(
        (second["total"].clone(), second["value"][0]["operation"].clone()),
        (json!(3), json!("Update"))
    );
    let through_web_api = json(
        p.client_get("migrate_transactions?$select=status,entityname")
            .await,
    )
    .await;
    assert_eq!(through_web_api["value"].as_array().unwrap().len(), 3);
    // Nothing reached the server yet.
    assert_eq!(p.server_get(&format!("accounts({new_id})")).await.status(), 404);

    let run = p.sync().await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["upload"]["processed"], 3, "{run}");
    assert_eq!(p.transactions("processed").await.len(), 3);
    assert_eq!(
        name_on(p.server_get(&format!("accounts({new_id})")).await)
            .await
            .as_deref(),
        Some("Created offline")
    );
    assert_eq!(
        name_on(p.server_get(&format!("accounts({a0})")).await)
            .await
            .as_deref(),
        Some("Renamed offline")
    );
    assert_eq!(p.server_get(&format!("accounts({a1})")).await.status(), 404);

    // No ping-pong: the download of the server's new versions creates no transaction, and a
    // further sync sends nothing and changes nothing on the server.
    let version = |v: Value| v["versionnumber"].as_i64().unwrap();
    let before = version(json(p.server_get(&format!("accounts({a0})")).await).await);
    let run = p.sync().await;
    assert_eq!(run["upload"]["processed"], 0, "{run}");
    let run = p.sync().await;
    assert_eq!(run["upload"]["processed"], 0, "{run}");
    assert_eq!(p.transactions("all").await.len(), 3);
    assert_eq!(
        version(json(p.server_get(&format!("accounts({a0})")).await).await),
        before
    );
}

#[tokio::test]
async fn a_rejected_write_becomes_error_and_set_to_pending_retries_it_after_the_fix() {
    let p = Pair::connect(true).await;
    // The client's administrator allowed longer names than the server does.
    let field = p
        .client
        .catalog
        .open_org(&OrgName::parse("field").unwrap())
        .await
        .unwrap();
    let account = EntityName::parse("account").unwrap();
    let widen = |max_length| MetadataChange::WidenAttribute {
        entity: account.clone(),
        attribute: crmsync_model::AttributeName::parse("name").unwrap(),
        max_length,
    };
    field.apply_metadata(&[widen(300)]).await.unwrap();
    let (a0, a1) = (p.account(0).await, p.account(1).await);
    let long = "L".repeat(250);
    for (id, name) in [(&a0, long.as_str()), (&a1, "Fine")] {
        let r = p
            .client_write(
                reqwest::Method::PATCH,
                &format!("accounts({id})"),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(r.status(), 204);
    }
    let run = p.sync().await;
    assert_eq!(run["status"], "PartiallySucceeded", "{run}");
    assert_eq!(
        (
            run["upload"]["processed"].clone(),
            run["upload"]["errors"].clone()
        ),
        (json!(1), json!(1))
    );
    let errors = p.transactions("error").await;
    assert_eq!(errors.len(), 1);
    let message = errors[0]["lastError"].as_str().unwrap();
    assert!(message.contains("maximum length"), "{message}");
    assert_eq!(
        name_on(p.server_get(&format!("accounts({a1})")).await)
            .await
            .as_deref(),
        Some("Fine")
    );
    // The download keeps the client's value while its transaction is in Error.
    assert_eq!(
        name_on(p.client_get(&format!("accounts({a0})")).await)
            .await
            .as_deref(),
        Some(long.as_str())
    );

    // A Processed transaction cannot go back; an unknown one is named.
    let processed = p.transactions("processed").await;
    let r = p
        .admin_post("transactions/set-pending", json!({"ids": ids(&processed)}))
        .await;
    assert!(error(r, 409).await.contains("Processed"));
    let r = p
        .admin_post(
            "transactions/archive",
            json!({"ids": ["00000000-0000-4000-8000-00000000abcd"]}),
        )
        .await;
    error(r, 404).await;
    let r = p
        .admin_post("transactions/set-pending", json!({"ids": ["nope"]}))
        .await;
    error(r, 400).await;
    let r = p
        .client
        .client
        .get(p.sync_url("transactions?status=done"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    assert!(error(r, 400).await.contains("pending"));

    // The server's administrator widens the field; Set to Pending and a sync process it.
    let acme = p
        .server
        .catalog
        .open_org(&OrgName::parse("acme").unwrap())
        .await
        .unwrap();
    acme.apply_metadata(&[widen(300)]).await.unwrap();
    let r = p
        .admin_post("transactions/set-pending", json!({"ids": ids(&errors)}))
        .await;
    assert_eq!(json(r).await["changed"], 1);
    let run = p.sync().await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["upload"]["processed"], 1, "{run}");
    assert_eq!(
        name_on(p.server_get(&format!("accounts({a0})")).await)
            .await
            .as_deref(),
        Some(long.as_str())
    );
    assert!(p.transactions("error").await.is_empty());
}

#[tokio::test]
async fn small_rounds_keep_each_records_order_and_a_failure_holds_back_only_its_record() {
    let p = Pair::connect(true).await;
    let org = OrgName::parse("field").unwrap();
    let field = p.client.catalog.open_org(&org).await.unwrap();
    // The client allows longer names than the server: a long name is refused there.
    field
        .apply_metadata(&[MetadataChange::WidenAttribute {
            entity: EntityName::parse("account").unwrap(),
            attribute: crmsync_model::AttributeName::parse("name").unwrap(),
            max_length: 300,
        }])
        .await
        .unwrap();
    let mut accounts = Vec::new();
    for n in 0..5 {
        accounts.push(p.account(n).await);
    }
    let refused_before = name_on(p.server_get(&format!("accounts({})", accounts[1])).await).await;
    let long = "L".repeat(250);
    let queue = [
        (0, "A1"),
        (1, long.as_str()),
        (0, "A2"),
        (1, "after the refused one"),
        (2, "B1"),
        (0, "A3"),
        (3, "C1"),
        (4, "D1"),
        (2, "B2"),
    ];
    for (n, name) in queue {
        let r = p
            .client_write(
                reqwest::Method::PATCH,
                &format!("accounts({})", accounts[n]),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(r.status(), 204);
    }

    let (figures, log) = p.upload_in_rounds_of_two().await;
    let figures = figures.unwrap();
    assert_eq!(
        (figures.processed, figures.errors, figures.pending),
        (7, 1, 1),
        "{figures:?} {:?}",
        log.messages
    );
    for (n, name) in [(0, "A3"), (2, "B2"), (3, "C1"), (4, "D1")] {
        let on_server = name_on(p.server_get(&format!("accounts({})", accounts[n])).await).await;
        assert_eq!(on_server.as_deref(), Some(name), "account {n}");
    }
    let refused = name_on(p.server_get(&format!("accounts({})", accounts[1])).await).await;
    assert_eq!(refused, refused_before);
    let errors = p.transactions("error").await;
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("maximum length")
    );
    // The refused record's later change waits behind it.
    let pending = p.transactions("pending").await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["recordId"], json!(accounts[1]), "{pending:?}");
}

#[tokio::test]
async fn a_round_that_cannot_reach_the_server_keeps_what_the_round_beside_it_learnt() {
    let p = Pair::connect(true).await;
    let names = [
        "Round 0",
        "Round 1",
        "Unreachable 2",
        "Unreachable 3",
        "Round 4",
        "Round 5",
    ];
    let mut created = Vec::new();
    for name in names {
        created.push(p.client_create(name).await);
    }
    // Rounds of two, two out at once: the second round's answers never come back (the
    // server applies it every time it is sent), so its sending fails while the first and
    // third rounds are answered.
    *p.proxy.faults.lose_answers_to.lock().unwrap() = Some(b"Unreachable".to_vec());
    let (stopped, _) = p.upload_in_rounds_of_two().await;
    assert!(stopped.is_err(), "{stopped:?}");
    assert!(p.proxy.faults.lost.load(Ordering::SeqCst) >= 1);
    let status_of = |list: &[Value], id: &str| list.iter().any(|t| t["recordId"] == json!(id));
    let pending = p.transactions("pending").await;
    let processed = p.transactions("processed").await;
    // The unanswered round stays Pending; the round out beside it was recorded as answered.
    for id in &created[2..4] {
        assert!(status_of(&pending, id), "{id} pending: {pending:?}");
    }
    for id in &created[..2] {
        assert!(status_of(&processed, id), "{id} processed: {processed:?}");
    }
    assert_eq!(pending.len() + processed.len(), 6, "{pending:?} {processed:?}");

    // The server can be reached again: the next run sends what is Pending, harmlessly.
    *p.proxy.faults.lose_answers_to.lock().unwrap() = None;
    let run = p.sync().await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["upload"]["processed"], json!(pending.len()), "{run}");
    assert!(p.transactions("pending").await.is_empty());
    let on_server = p.server_names(&["Round", "Unreachable"]).await;
    let mut expected = names.to_vec();
    expected.sort();
    assert_eq!(on_server, expected, "each record once on the server");
}

#[tokio::test]
async fn archived_transactions_are_never_sent_and_the_record_is_refreshed() {
    let p = Pair::connect(true).await;
    let a0 = p.account(0).await;
    let original = name_on(p.server_get(&format!("accounts({a0})")).await).await;
    let r = p
        .client_write(
            reqwest::Method::PATCH,
            &format!("accounts({a0})"),
            Some(json!({"name": "Never sent"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let pending = p.transactions("pending").await;
    let r = p
        .admin_post("transactions/archive", json!({"ids": ids(&pending)}))
        .await;
    assert_eq!(json(r).await["changed"], 1);
    let run = p.sync().await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["upload"]["processed"], 0);
    assert_eq!(
        name_on(p.server_get(&format!("accounts({a0})")).await).await,
        original
    );
    // The client's copy is the server's again.
    assert_eq!(
        name_on(p.client_get(&format!("accounts({a0})")).await).await,
        original
    );
    assert_eq!(p.transactions("archived").await.len(), 1);
    // Set to Pending brings an archived transaction back.
    let r = p
        .admin_post("transactions/set-pending", json!({"ids": ids(&pending)}))
        .await;
    assert_eq!(json(r).await["changed"], 1);
    let run = p.sync().await;
    assert_eq!(run["upload"]["processed"], 1, "{run}");
    assert_eq!(
        name_on(p.server_get(&format!("accounts({a0})")).await)
            .await
            .as_deref(),
        Some("Never sent")
    );
}

#[tokio::test]
async fn lost_answers_do_not_duplicate_and_a_later_run_finishes_the_upload() {
    let p = Pair::connect(true).await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(p.client_create(&format!("Lost answer {i}")).await);
    }
    // The first answer is lost: the connector sends the batch again, which must not duplicate.
    p.proxy.faults.lose_batch_answers.store(1, Ordering::SeqCst);
    let run = p.sync().await;
    assert_eq!(p.proxy.faults.lost.load(Ordering::SeqCst), 1);
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["upload"]["processed"], 5, "{run}");

    // Every answer of a run is lost: the server applied the writes, the client could not
    // know, so they stay Pending; the next run sends them again, harmlessly.
    for (i, id) in created.iter().take(3).enumerate() {
        let r = p
            .client_write(
                reqwest::Method::PATCH,
                &format!("accounts({id})"),
                Some(json!({"name": format!("Second {i}")})),
            )
            .await;
        assert_eq!(r.status(), 204);
    }
    p.proxy.faults.lose_batch_answers.store(1000, Ordering::SeqCst);
    let run = p.sync().await;
    p.proxy.faults.lose_batch_answers.store(0, Ordering::SeqCst);
    assert_ne!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["upload"]["pending"], 3, "{run}");
    assert_eq!(p.transactions("pending").await.len(), 3);
    let run = p.sync().await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["upload"]["processed"], 3, "{run}");

    assert_eq!(
        p.server_names(&["Lost answer", "Second"]).await,
        [
            "Lost answer 3",
            "Lost answer 4",
            "Second 0",
            "Second 1",
            "Second 2"
        ]
    );
}

#[tokio::test]
async fn conflicts_follow_the_policy() {
    let p = Pair::connect(true).await;
    let (a0, a1) = (p.account(0).await, p.account(1).await);
    // ClientWins (the default): both sides changed the name; the client's value is sent.
    p.client_write(
        reqwest::Method::PATCH,
        &format!("accounts({a0})"),
        Some(json!({"name": "Client A"})),
    )
    .await;
    p.server_write(
        reqwest::Method::PATCH,
        &format!("accounts({a0})"),
        json!({"name": "Server A"}),
    )
    .await;
    let run = p.sync().await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["upload"]["conflicts"], 1, "{run}");
    assert_eq!(
        name_on(p.server_get(&format!("accounts({a0})")).await)
            .await
            .as_deref(),
        Some("Client A")
    );
    assert!(run.to_string().contains("ClientWins"));

    // ServerWins: the transaction goes to Error "conflict" and the server's value stays.
    p.set_settings(json!({"conflictPolicy": "ServerWins"})).await;
    p.client_write(
        reqwest::Method::PATCH,
        &format!("accounts({a1})"),
        Some(json!({"name": "Client B"})),
    )
    .await;
    p.server_write(
        reqwest::Method::PATCH,
        &format!("accounts({a1})"),
        json!({"name": "Server B"}),
    )
    .await;
    let run = p.sync().await;
    assert_eq!(run["upload"]["errors"], 1, "{run}");
    let errors = p.transactions("error").await;
    assert!(
        errors[0]["lastError"].as_str().unwrap().contains("conflict"),
        "{errors:?}"
    );
    assert_eq!(
        name_on(p.server_get(&format!("accounts({a1})")).await)
            .await
            .as_deref(),
        Some("Server B")
    );
    // Archiving the losing change brings the server's value to the client.
    p.admin_post("transactions/archive", json!({"ids": ids(&errors)}))
        .await;
    p.sync().await;
    assert_eq!(
        name_on(p.client_get(&format!("accounts({a1})")).await)
            .await
            .as_deref(),
        Some("Server B")
    );

    // An update of a record deleted on the server is an Error, never a resurrection.
    let a2 = p.account(2).await;
    p.client_write(
        reqwest::Method::PATCH,
        &format!("accounts({a2})"),
        Some(json!({"name": "Too late"})),
    )
    .await;
    let r = p
        .server
        .send(
            reqwest::Method::DELETE,
            "acme",
            &format!("accounts({a2})"),
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let run = p.sync().await;
    assert_eq!(run["upload"]["errors"], 1, "{run}");
    assert_eq!(p.server_get(&format!("accounts({a2})")).await.status(), 404);
    let errors = p.transactions("error").await;
    assert!(
        errors
            .iter()
            .any(|t| t["lastError"].as_str().unwrap().contains("deleted on the server")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn immediate_writes_reach_the_server_first_or_are_not_stored() {
    let p = Pair::connect(false).await;
    let a0 = p.account(0).await;
    let r = p
        .client_write(
            reqwest::Method::POST,
            "accounts",
            Some(json!({"name": "Immediate"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let id = created_id(&r);
    // Same id on both sides, and no transaction.
    assert_eq!(
        name_on(p.server_get(&format!("accounts({id})")).await)
            .await
            .as_deref(),
        Some("Immediate")
    );
    assert_eq!(
        name_on(p.client_get(&format!("accounts({id})")).await)
            .await
            .as_deref(),
        Some("Immediate")
    );
    assert!(p.transactions("all").await.is_empty());

    // The server refuses (the client allows longer names than the server): its message
    // comes back, and nothing is stored.
    let field = p
        .client
        .catalog
        .open_org(&OrgName::parse("field").unwrap())
        .await
        .unwrap();
    field
        .apply_metadata(&[MetadataChange::WidenAttribute {
            entity: EntityName::parse("account").unwrap(),
            attribute: crmsync_model::AttributeName::parse("name").unwrap(),
            max_length: 300,
        }])
        .await
        .unwrap();
    let r = p
        .client_write(
            reqwest::Method::PATCH,
            &format!("accounts({a0})"),
            Some(json!({"name": "x".repeat(250)})),
        )
        .await;
    let status = r.status().as_u16();
    let message = error(r, status).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("server organization refused"), "{message}");
    assert_ne!(
        name_on(p.client_get(&format!("accounts({a0})")).await)
            .await
            .map(|n| n.len()),
        Some(250)
    );

    // The server is down: 503, with the reason, and nothing stored.
    p.proxy.faults.down.store(true, Ordering::SeqCst);
    let r = p
        .client_write(
            reqwest::Method::POST,
            "accounts",
            Some(json!({"name": "While down"})),
        )
        .await;
    let message = error(r, 503).await;
    assert!(message.contains("not stored"), "{message}");
    p.proxy.faults.down.store(false, Ordering::SeqCst);
    let local = json(p.client_get("accounts?$filter=name eq 'While down'").await).await;
    assert_eq!(local["value"].as_array().unwrap().len(), 0);

    // A delete reaches the server too.
    let r = p
        .client_write(reqwest::Method::DELETE, &format!("accounts({id})"), None)
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(p.server_get(&format!("accounts({id})")).await.status(), 404);

    // No ping-pong: a sync afterwards uploads nothing and leaves the server's versions.
    let version = json(p.server_get(&format!("accounts({a0})")).await).await["versionnumber"].clone();
    let run = p.sync().await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["upload"]["processed"], 0);
    assert_eq!(
        json(p.server_get(&format!("accounts({a0})")).await).await["versionnumber"],
        version
    );
    assert!(p.transactions("all").await.is_empty());
}

#[tokio::test]
async fn an_immediate_change_set_reaches_the_server_whole_or_not_at_all() {
    let p = Pair::connect(false).await;
    // The client allows longer names than the server: the server refuses the second create.
    let field = p
        .client
        .catalog
        .open_org(&OrgName::parse("field").unwrap())
        .await
        .unwrap();
    field
        .apply_metadata(&[MetadataChange::WidenAttribute {
            entity: EntityName::parse("account").unwrap(),
            attribute: crmsync_model::AttributeName::parse("name").unwrap(),
            max_length: 300,
        }])
        .await
        .unwrap();
    let change_set = |second: &str| {
        let part = |id: u8, name: &str| {
            format!(
                "--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {id}\r\n\r\n\
                 POST accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}\r\n",
                json!({ "name": name })
            )
        };
        format!(
            "--b\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n{}{}--cs--\r\n--b--\r\n",
            part(1, "Set member one"),
            part(2, second)
        )
    };
    let send = |body: String| {
        p.client
            .send(reqwest::Method::POST, "field", "$batch", FIELD)
            .header("content-type", "multipart/mixed; boundary=b")
            .body(body)
            .send()
    };
    let count = |r: Value| r["value"].as_array().map(Vec::len).unwrap_or_default();
    let members = "accounts?$select=name&$filter=startswith(name,'Set member')";

    let r = send(change_set(&"x".repeat(250))).await.unwrap();
    let answer = r.text().await.unwrap();
    assert!(answer.contains("server organization refused"), "{answer}");
    assert_eq!(
        count(json(p.server_get(members).await).await),
        0,
        "nothing on the server"
    );
    assert_eq!(
        count(json(p.client_get(members).await).await),
        0,
        "nothing on the client"
    );

    let r = send(change_set("Set member two")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(count(json(p.server_get(members).await).await), 2);
    assert_eq!(count(json(p.client_get(members).await).await), 2);
    assert!(p.transactions("all").await.is_empty());
}

#[tokio::test]
async fn transaction_requests_with_bad_bodies_are_refused_and_change_nothing() {
    let p = Pair::connect(true).await;
    let a0 = p.account(0).await;
    let r = p
        .client_write(
            reqwest::Method::PATCH,
            &format!("accounts({a0})"),
            Some(json!({"name": "Queued"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let too_many: Vec<String> = (0..10_001)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    let r = p
        .admin_post("transactions/archive", json!({ "ids": too_many }))
        .await;
    assert!(error(r, 400).await.contains("limit"));
    let r = p.admin_post("transactions/archive", json!({ "ids": [] })).await;
    assert!(error(r, 400).await.contains("at least one"));
    let r = p.admin_post("transactions/archive", json!({ "id": "x" })).await;
    error(r, 400).await;
    let r = p
        .client
        .client
        .get(p.sync_url("transactions?top=0"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    error(r, 400).await;
    assert_eq!(p.transactions("pending").await.len(), 1);
}
