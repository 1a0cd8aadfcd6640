//! `$batch` over HTTP: requests and atomic change sets with `$id` references, stopping or
//! continuing after a failure, the operation limit, malformed bodies and authentication.

use crate::common;

use common::{ACME_ADMIN, BETA_ADMIN, TestServer, error, id_in, json};
use crmsync_model::{EntityName, OrgName};
use reqwest::Method;
use serde_json::{Value, json};

/// One operation of a batch being written.
struct Op<'a> {
    content_id: Option<&'a str>,
    method: &'a str,
    target: String,
    body: Option<Value>,
}

fn op<'a>(method: &'a str, target: impl Into<String>) -> Op<'a> {
    Op {
        content_id: None,
        method,
        target: target.into(),
        body: None,
    }
}

impl<'a> Op<'a> {
    fn id(mut self, content_id: &'a str) -> Self {
        self.content_id = Some(content_id);
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn write(&self, out: &mut Vec<String>) {
        out.push("Content-Type: application/http".into());
        out.push("Content-Transfer-Encoding: binary".into());
        if let Some(id) = self.content_id {
            out.push(format!("Content-ID: {id}"));
        }
        out.push(String::new());
        out.push(format!("{} {} HTTP/1.1", self.method, self.target));
        if let Some(body) = &self.body {
            out.push("Content-Type: application/json; type=entry".into());
            out.push(String::new());
            out.push(body.to_string());
        } else {
            out.push(String::new());
        }
    }
}

/// A batch body written line by line, joined with CRLF (or LF with `lf_only`).
struct BatchBody {
    lines: Vec<String>,
}

impl BatchBody {
    fn new() -> Self {
        BatchBody { lines: Vec::new() }
    }

    fn request(mut self, op: Op<'_>) -> Self {
        self.lines.push("--batch_T".into());
        op.write(&mut self.lines);
        self
    }

    fn change_set(mut self, name: &str, ops: Vec<Op<'_>>) -> Self {
        self.lines.push("--batch_T".into());
        self.lines.push(format!(
            "Content-Type: multipart/mixed; boundary=\"changeset_{name}\""
        ));
        self.lines.push(String::new());
        for op in ops {
            self.lines.push(format!("--changeset_{name}"));
            op.write(&mut self.lines);
        }
        self.lines.push(format!("--changeset_{name}--"));
        self
    }

    fn finish(mut self, line_end: &str) -> String {
        self.lines.push("--batch_T--".into());
        self.lines.join(line_end) + line_end
    }
}

const CONTENT_TYPE: &str = "multipart/mixed; boundary=\"batch_T\"";

/// One answer in a batch response.
#[derive(Debug)]
struct Answer {
    content_id: Option<String>,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

#[derive(Debug)]
enum Item {
    Single(Answer),
    ChangeSet(Vec<Answer>),
}

impl Item {
    fn single(&self) -> &Answer {
        match self {
            Item::Single(a) => a,
            Item::ChangeSet(_) => panic!("expected one answer, got a change set: {self:?}"),
        }
    }

    fn change_set(&self) -> &[Answer] {
        match self {
            Item::ChangeSet(a) => a,
            Item::Single(_) => panic!("expected a change set, got one answer: {self:?}"),
        }
    }
}

fn boundary_of(content_type: &str) -> String {
    content_type
        .split_once("boundary=")
        .unwrap_or_else(|| panic!("no boundary in {content_type}"))
        .1
        .trim_matches('"')
        .to_owned()
}

/// Splits a multipart body (as this server writes it, CRLF) into its parts.
fn parts(body: &str, boundary: &str) -> Vec<String> {
    let closing = format!("--{boundary}--");
    assert!(body.contains(&closing), "not terminated by {closing}: {body}");
    // Each delimiter is preceded by a line break that belongs to it.
    let body = format!("\r\n{body}");
    let pieces: Vec<&str> = body.split(&format!("\r\n--{boundary}")).collect();
    // pieces[0] is the (empty) preamble; the last piece is "--" and the epilogue.
    pieces[1..pieces.len() - 1]
        .iter()
        .map(|p| p.strip_prefix("\r\n").unwrap_or(p).to_owned())
        .collect()
}

fn split_head(part: &str) -> (Vec<(String, String)>, &str) {
    let (head, rest) = part.split_once("\r\n\r\n").unwrap_or((part, ""));
    let headers = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    (headers, rest)
}

fn answer(part: &str) -> Answer {
    let (mime, http) = split_head(part);
    let content_id = mime
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-id"))
        .map(|(_, v)| v.clone());
    let (status_line, rest) = http.split_once("\r\n").unwrap();
    let status = status_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let (headers, body) = split_head(rest);
    Answer {
        content_id,
        status,
        headers,
        body: body.strip_suffix("\r\n").unwrap_or(body).to_owned(),
    }
}

fn read_items(content_type: &str, body: &str) -> Vec<Item> {
    let boundary = boundary_of(content_type);
    assert!(boundary.starts_with("batchresponse_"), "{boundary}");
    parts(body, &boundary)
        .into_iter()
        .map(|part| {
            let (mime, rest) = split_head(&part);
            let ct = mime
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.clone())
                .unwrap();
            if ct.starts_with("multipart/mixed") {
                let inner = boundary_of(&ct);
                assert!(inner.starts_with("changesetresponse_"), "{inner}");
                Item::ChangeSet(parts(rest, &inner).iter().map(|p| answer(p)).collect())
            } else {
                assert_eq!(ct, "application/http");
                Item::Single(answer(&part))
            }
        })
        .collect()
}

/// Sends a batch; returns the status, the response headers and the answers.
async fn send(
    s: &TestServer,
    prefer: Option<&str>,
    body: String,
) -> (u16, reqwest::header::HeaderMap, Vec<Item>) {
    let mut request = s
        .send(Method::POST, "acme", "$batch", ACME_ADMIN)
        .header("content-type", CONTENT_TYPE)
        .body(body);
    if let Some(prefer) = prefer {
        request = request.header("prefer", prefer);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let content_type = headers["content-type"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    (status, headers, read_items(&content_type, &text))
}

async fn count(s: &TestServer, entity: &str) -> u64 {
    let org = s
        .catalog
        .open_org(&OrgName::parse("acme").unwrap())
        .await
        .unwrap();
    org.count(&EntityName::parse(entity).unwrap()).await.unwrap()
}

async fn create_account(s: &TestServer, name: &str) -> String {
    let r = s
        .send(Method::POST, "acme", "accounts", ACME_ADMIN)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    id_in(r.headers()["odata-entityid"].to_str().unwrap())
}

#[tokio::test]
async fn a_batch_runs_gets_and_a_change_set_whose_operations_reference_each_other() {
    let s = TestServer::start().await;
    let doomed = create_account(&s, "Doomed Ltd").await;
    let kept = create_account(&s, "Kept Ltd").await;
    let api = s.api("acme");
    let body = BatchBody::new()
        .request(op("GET", format!("accounts({kept})?$select=name")))
        .change_set(
            "A",
            vec![
                op("POST", "/acme/api/data/v9.2/accounts")
                    .id("1")
                    .body(json!({"name": "Batch Parent"})),
                op("POST", format!("{api}contacts"))
                    .id("2")
                    .body(json!({"fullname": "Batch Child", "parentcustomerid_account@odata.bind": "$1"})),
                op("PATCH", "$1").id("3").body(json!({"numberofemployees": 7})),
                op("DELETE", format!("/api/data/v9.2/accounts({doomed})")).id("4"),
            ],
        )
        .request(op("GET", "WhoAmI"))
        .finish("\r\n");
    let (status, headers, items) = send(&s, None, body).await;
    assert_eq!(status, 200, "{items:?}");
    assert_eq!(headers["odata-version"], "4.0");
    assert_eq!(items.len(), 3, "{items:?}");

    let read = items[0].single();
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["name"], "Kept Ltd");
    assert!(
        read.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );

    let set = items[1].change_set();
    assert_eq!(set.len(), 4);
    for (answer, id) in set.iter().zip(["1", "2", "3", "4"]) {
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(answer.content_id.as_deref(), Some(id));
        assert_eq!(answer.header("odata-version"), Some("4.0"));
    }
    let parent_url = set[0].header("odata-entityid").unwrap();
    assert!(parent_url.starts_with(&format!("{api}accounts(")), "{parent_url}");
    assert_eq!(set[0].header("location"), Some(parent_url));
    assert_eq!(set[2].header("odata-entityid"), Some(parent_url));
    let parent = id_in(parent_url);
    let child = id_in(set[1].header("odata-entityid").unwrap());

    assert_eq!(items[2].single().status, 200);
    assert!(items[2].single().json()["UserId"].is_string());

    // What the change set stored.
    let got = json(
        s.get("acme", &format!("accounts({parent})"), ACME_ADMIN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got["name"], "Batch Parent");
    assert_eq!(got["numberofemployees"], 7);
    let got = json(
        s.get("acme", &format!("contacts({child})"), ACME_ADMIN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got["_parentcustomerid_value"], parent.as_str());
    error(
        s.get("acme", &format!("accounts({doomed})"), ACME_ADMIN)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn lf_only_batches_and_return_representation_in_a_change_set_work() {
    let s = TestServer::start().await;
    let id = uuid::Uuid::new_v4();
    let mut upsert = op("PATCH", format!("accounts({id})"))
        .id("a")
        .body(json!({"name": "Upserted"}));
    upsert.target = format!("accounts({id})?$select=name");
    let body = BatchBody::new()
        .change_set("B", vec![upsert])
        .finish("\n")
        .replace(
            &format!("PATCH accounts({id})?$select=name HTTP/1.1\n"),
            &format!("PATCH accounts({id})?$select=name HTTP/1.1\nPrefer: return=representation\n"),
        );
    let (status, _, items) = send(&s, None, body).await;
    assert_eq!(status, 200, "{items:?}");
    let answer = &items[0].change_set()[0];
    assert_eq!(
        answer.status, 201,
        "an upsert that inserts answers 201: {answer:?}"
    );
    assert_eq!(answer.content_id.as_deref(), Some("a"));
    assert_eq!(answer.json()["name"], "Upserted");
    assert_eq!(answer.json()["accountid"], id.to_string());
}

#[tokio::test]
async fn a_change_set_with_one_failing_operation_stores_nothing() {
    let s = TestServer::start().await;
    let (accounts, contacts) = (count(&s, "account").await, count(&s, "contact").await);
    let missing = uuid::Uuid::new_v4();
    let body = BatchBody::new()
        // Fails while planning: an unknown column.
        .change_set(
            "A",
            vec![
                op("POST", "accounts")
                    .id("1")
                    .body(json!({"name": "Never stored"})),
                op("POST", "contacts").id("2").body(
                    json!({"fullname": "Never", "nosuch": 1, "parentcustomerid_account@odata.bind": "$1"}),
                ),
            ],
        )
        // Fails in the store: the delete of a missing record rolls back the create before it.
        .change_set(
            "B",
            vec![
                op("POST", "accounts")
                    .id("1")
                    .body(json!({"name": "Rolled back"})),
                op("DELETE", format!("accounts({missing})")).id("2"),
            ],
        )
        // A reference to a Content-ID that was not declared before.
        .change_set(
            "C",
            vec![
                op("POST", "contacts")
                    .id("1")
                    .body(json!({"fullname": "x", "parentcustomerid_account@odata.bind": "$2"})),
                op("POST", "accounts").id("2").body(json!({"name": "late"})),
            ],
        )
        .finish("\r\n");
    let (status, _, items) = send(&s, Some("odata.continue-on-error"), body).await;
    assert_eq!(status, 200);
    assert_eq!(items.len(), 3, "{items:?}");

    let planning = items[0].single();
    assert_eq!(planning.status, 400);
    assert_eq!(planning.content_id.as_deref(), Some("2"));
    assert!(
        planning.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'nosuch' does not exist")
    );
    assert!(planning.json()["error"]["code"].is_string());

    let store = items[1].single();
    assert_eq!(store.status, 404, "{store:?}");
    assert!(
        store.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&missing.to_string())
    );

    let reference = items[2].single();
    assert_eq!(reference.status, 400);
    assert!(
        reference.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'$2' does not exist")
    );

    assert_eq!(count(&s, "account").await, accounts);
    assert_eq!(count(&s, "contact").await, contacts);
}

#[tokio::test]
async fn a_failure_stops_the_batch_unless_continue_on_error_is_preferred() {
    let s = TestServer::start().await;
    let before = count(&s, "account").await;
    let batch = || {
        BatchBody::new()
            .request(op("POST", "accounts").body(json!({"name": "first", "nosuch": true})))
            .request(op("POST", "accounts").body(json!({"name": "second"})))
            .finish("\r\n")
    };
    // Dataverse stops at the first failure and answers with its status.
    let (status, headers, items) = send(&s, None, batch()).await;
    assert_eq!(status, 400);
    assert!(headers.get("preference-applied").is_none());
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].single().status, 400);
    assert_eq!(count(&s, "account").await, before);

    let (status, headers, items) = send(&s, Some("odata.continue-on-error"), batch()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["preference-applied"], "odata.continue-on-error");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].single().status, 400);
    assert_eq!(items[1].single().status, 204);
    assert_eq!(count(&s, "account").await, before + 1);
}

#[tokio::test]
async fn a_thousand_operations_run_in_one_change_set_and_one_more_is_refused() {
    let s = TestServer::start().await;
    let before = count(&s, "account").await;
    let creates = |n: usize| {
        (0..n)
            .map(|i| op("POST", "accounts").body(json!({ "name": format!("Bulk {i}") })))
            .collect::<Vec<_>>()
    };
    let body = BatchBody::new().change_set("BULK", creates(1000)).finish("\r\n");
    let (status, _, items) = send(&s, None, body).await;
    assert_eq!(status, 200);
    assert_eq!(items[0].change_set().len(), 1000);
    assert_eq!(count(&s, "account").await, before + 1000);

    let body = BatchBody::new()
        .change_set("BULK", creates(1000))
        .request(op("GET", "WhoAmI"))
        .finish("\r\n");
    let r = s
        .send(Method::POST, "acme", "$batch", ACME_ADMIN)
        .header("content-type", CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    let msg = error(r, 400).await;
    assert!(msg.contains("1001 operations") && msg.contains("1000"), "{msg}");
    assert_eq!(count(&s, "account").await, before + 1000);
}

#[tokio::test]
async fn malformed_batches_are_refused_with_clear_messages() {
    let s = TestServer::start().await;
    let post = |content_type: Option<&'static str>, body: String| {
        let mut r = s.send(Method::POST, "acme", "$batch", ACME_ADMIN).body(body);
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let ok_body = || BatchBody::new().request(op("GET", "WhoAmI")).finish("\r\n");
    let msg = error(post(Some("multipart/mixed"), ok_body()).await.unwrap(), 400).await;
    assert!(msg.contains("no boundary"), "{msg}");
    let msg = error(post(None, ok_body()).await.unwrap(), 400).await;
    assert!(msg.contains("multipart/mixed"), "{msg}");
    let msg = error(post(Some("application/json"), ok_body()).await.unwrap(), 400).await;
    assert!(msg.contains("multipart/mixed"), "{msg}");
    let msg = error(post(Some(CONTENT_TYPE), "garbage".into()).await.unwrap(), 400).await;
    assert!(msg.contains("'--batch_T'"), "{msg}");
    let truncated = ok_body().replace("--batch_T--", "");
    let msg = error(post(Some(CONTENT_TYPE), truncated).await.unwrap(), 400).await;
    assert!(msg.contains("not terminated"), "{msg}");

    let get_in_change_set = BatchBody::new()
        .change_set(
            "G",
            vec![
                op("POST", "accounts").body(json!({"name": "not stored"})),
                op("GET", "WhoAmI"),
            ],
        )
        .finish("\r\n");
    let before = count(&s, "account").await;
    let msg = error(post(Some(CONTENT_TYPE), get_in_change_set).await.unwrap(), 400).await;
    assert!(msg.contains("GET WhoAmI is in a change set"), "{msg}");
    assert_eq!(count(&s, "account").await, before);

    // A nested batch and a part outside the org's Web API fail as parts.
    let body = BatchBody::new()
        .request(op("POST", "/beta/api/data/v9.2/accounts").body(json!({"name": "x"})))
        .request(op("POST", "$batch"))
        .finish("\r\n");
    let (status, _, items) = send(&s, Some("odata.continue-on-error"), body).await;
    assert_eq!(status, 200);
    let outside = items[0].single();
    assert_eq!(outside.status, 400);
    assert!(
        outside.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not under this organization")
    );
    let nested = items[1].single();
    assert_eq!(nested.status, 400);
    assert!(
        nested.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another batch")
    );
}

#[tokio::test]
async fn batches_need_the_org_credentials() {
    let s = TestServer::start().await;
    let before = count(&s, "account").await;
    let body = || {
        BatchBody::new()
            .request(op("POST", "accounts").body(json!({"name": "intruder"})))
            .finish("\r\n")
    };
    let r = s
        .client
        .post(format!("{}$batch", s.api("acme")))
        .header("content-type", CONTENT_TYPE)
        .body(body())
        .send()
        .await
        .unwrap();
    error(r, 401).await;
    let r = s
        .send(Method::POST, "acme", "$batch", BETA_ADMIN)
        .header("content-type", CONTENT_TYPE)
        .body(body())
        .send()
        .await
        .unwrap();
    error(r, 401).await;
    assert_eq!(count(&s, "account").await, before);
}

#[tokio::test]
async fn independent_writes_answer_one_by_one_even_when_stored_together() {
    let s = TestServer::start().await;
    let before = count(&s, "account").await;
    let id = "5b0c1a2e-0000-4000-8000-0000000000aa";
    let missing = "5b0c1a2e-0000-4000-8000-0000000000bb";
    let body = BatchBody::new()
        .request(op("POST", "accounts").body(json!({"name": "one"})))
        .request(op("PATCH", format!("accounts({id})")).body(json!({"name": "first"})))
        .request(op("POST", "accounts").body(json!({"name": "two"})))
        // The same record again: it sees the write before it.
        .request(op("PATCH", format!("accounts({id})")).body(json!({"name": "second"})))
        .request(op("DELETE", format!("accounts({missing})")))
        .request(op("POST", "accounts").body(json!({"name": "three"})))
        .finish("\r\n");
    let (status, _, items) = send(&s, Some("odata.continue-on-error"), body).await;
    assert_eq!(status, 200);
    let statuses: Vec<u16> = items.iter().map(|i| i.single().status).collect();
    assert_eq!(statuses, [204, 204, 204, 204, 404, 204]);
    assert_eq!(count(&s, "account").await, before + 4);
    let record = json(
        s.get("acme", &format!("accounts({id})"), ACME_ADMIN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(record["name"], "second");
}
