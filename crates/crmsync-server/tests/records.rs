//! Single records over HTTP: create, read, update, upsert, delete, and every error path.

use crate::common;

use common::{ACME_ADMIN, TestServer, created_id, error, json};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn records_round_trip_through_create_read_update_delete() {
    let s = TestServer::start().await;
    let parent = json!({"name": "Parent Ltd", "revenue": 1234.5});
    let r = s
        .send(Method::POST, "acme", "accounts", ACME_ADMIN)
        .json(&parent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let parent_id = created_id(&r);
    assert!(
        r.headers()["odata-entityid"]
            .to_str()
            .unwrap()
            .starts_with(&format!("{}accounts(", s.api("acme")))
    );

    let child = json!({
        "name": "Child 'quoted' \"double\" ünïcødé",
        "numberofemployees": 42,
        "creditonhold": true,
        "industrycode": 1,
        "parentaccountid@odata.bind": format!("/accounts({parent_id})"),
    });
    let r = s
        .send(Method::POST, "acme", "accounts", ACME_ADMIN)
        .header("prefer", "return=representation,odata.include-annotations=\"*\"")
        .json(&child)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body = json(r).await;
    let id = body["accountid"].as_str().unwrap().to_owned();
    assert_eq!(body["name"], "Child 'quoted' \"double\" ünïcødé");
    assert_eq!(body["_parentaccountid_value"], parent_id.as_str());
    assert_eq!(
        body["_parentaccountid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "account"
    );
    assert!(body["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert_eq!(body["statecode"], 0);
    assert_eq!(
        body["statecode@OData.Community.Display.V1.FormattedValue"],
        "Active"
    );

    let r = s
        .send(Method::PATCH, "acme", &format!("accounts({id})"), ACME_ADMIN)
        .json(&json!({"numberofemployees": 43, "parentaccountid@odata.bind": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let body = json(
        s.get(
            "acme",
            &format!("accounts({id})?$select=numberofemployees,_parentaccountid_value"),
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(body["numberofemployees"], 43);
    assert_eq!(body["_parentaccountid_value"], serde_json::Value::Null);
    assert!(body.get("name").is_none(), "not selected: {body}");
    assert!(body.get("@odata.etag").is_some());

    let r = s
        .send(Method::DELETE, "acme", &format!("accounts({id})"), ACME_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let msg = error(
        s.get("acme", &format!("accounts({id})"), ACME_ADMIN)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert!(msg.contains(&id), "{msg}");
    error(
        s.send(Method::DELETE, "acme", &format!("accounts({id})"), ACME_ADMIN)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}

/// Money has up to 19 significant digits, more than a double holds: every answer that
/// carries it, and every write, keeps them all.
#[tokio::test]
async fn money_keeps_every_digit_in_writes_reads_and_changes() {
    let s = TestServer::start().await;
    let exact = "\"revenue\":922337203685477.58";
    let r = s
        .send(Method::POST, "acme", "accounts", ACME_ADMIN)
        .header("content-type", "application/json")
        .header("prefer", "return=representation")
        .body(format!(r#"{{"name":"Big",{exact}}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = created_id(&r);
    let text = r.text().await.unwrap();
    assert!(text.contains(exact), "created: {text}");
    let read = |path: String| {
        let request = s.get("acme", &path, ACME_ADMIN);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    for path in [
        format!("accounts({id})"),
        format!("accounts({id})?$select=revenue"),
        "accounts?$select=name,revenue&$filter=name eq 'Big'".to_owned(),
    ] {
        let text = read(path.clone()).await;
        assert!(text.contains(exact), "{path}: {text}");
    }
    let r = s
        .get("acme", "accounts?$select=revenue", ACME_ADMIN)
        .header("prefer", "odata.track-changes")
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains(exact), "changes: {text}");

    // Numbers no money value holds are refused, naming the attribute, and nothing is stored.
    for (number, says) in [
        ("1e30", "invalid value for attribute 'revenue': invalid number"),
        (
            "79228162514264337593543950336",
            "invalid value for attribute 'revenue': invalid number",
        ),
        ("1e400", "number out of range"),
    ] {
        let r = s
            .send(Method::POST, "acme", "accounts", ACME_ADMIN)
            .header("content-type", "application/json")
            .body(format!(r#"{{"name":"Too big","revenue":{number}}}"#))
            .send()
            .await
            .unwrap();
        let message = error(r, 400).await;
        assert!(message.contains(says), "{number}: {message}");
    }
    let text = read("accounts?$select=name&$filter=name eq 'Too big'".to_owned()).await;
    assert!(!text.contains("Too big"), "{text}");
}

#[tokio::test]
async fn patch_is_an_upsert_steered_by_if_match_and_if_none_match() {
    let s = TestServer::start().await;
    let id = uuid::Uuid::new_v4();
    let path = format!("accounts({id})");
    // Update-only on a missing record: 404, nothing created.
    let r = s
        .send(Method::PATCH, "acme", &path, ACME_ADMIN)
        .header("if-match", "*")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    error(r, 404).await;
    // Plain PATCH creates with the id of the URL.
    let r = s
        .send(Method::PATCH, "acme", &path, ACME_ADMIN)
        .json(&json!({"name": "created"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Create-only on an existing record: 412.
    let r = s
        .send(Method::PATCH, "acme", &path, ACME_ADMIN)
        .header("if-none-match", "*")
        .json(&json!({"name": "again"}))
        .send()
        .await
        .unwrap();
    error(r, 412).await;
    let got = s.get("acme", &path, ACME_ADMIN).send().await.unwrap();
    let body = json(got).await;
    assert_eq!(body["name"], "created");
    let etag = body["@odata.etag"].as_str().unwrap().to_owned();
    // A stale etag is refused, the current one accepted; If-None-Match with it answers 304.
    let r = s
        .send(Method::PATCH, "acme", &path, ACME_ADMIN)
        .header("if-match", "W/\"1\"")
        .json(&json!({"name": "stale"}))
        .send()
        .await
        .unwrap();
    error(r, 412).await;
    let r = s
        .get("acme", &path, ACME_ADMIN)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = s
        .send(Method::PATCH, "acme", &path, ACME_ADMIN)
        .header("if-match", &etag)
        .json(&json!({"name": "fresh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        json(s.get("acme", &path, ACME_ADMIN).send().await.unwrap()).await["name"],
        "fresh"
    );
    // A client-chosen id on POST is kept; posting it twice is a conflict.
    let own = uuid::Uuid::new_v4();
    let r = s
        .send(Method::POST, "acme", "accounts", ACME_ADMIN)
        .json(&json!({"accountid": own, "name": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created_id(&r), own.to_string());
    let r = s
        .send(Method::POST, "acme", "accounts", ACME_ADMIN)
        .json(&json!({"accountid": own, "name": "mine"}))
        .send()
        .await
        .unwrap();
    error(r, 409).await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_store_nothing() {
    let s = TestServer::start().await;
    let count = || async {
        let org = s
            .catalog
            .open_org(&crmsync_model::OrgName::parse("acme").unwrap())
            .await
            .unwrap();
        org.count(&crmsync_model::EntityName::parse("account").unwrap())
            .await
            .unwrap()
    };
    let before = count().await;
    let post = |body: &'static str| {
        s.send(Method::POST, "acme", "accounts", ACME_ADMIN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let msg = error(post("{not json").await.unwrap(), 400).await;
    assert!(msg.contains("not valid JSON"), "{msg}");
    let msg = error(post(r#"{"nosuch": 1}"#).await.unwrap(), 400).await;
    assert!(msg.contains("'nosuch' does not exist"), "{msg}");
    let msg = error(post(r#"{"numberofemployees": "many"}"#).await.unwrap(), 400).await;
    assert!(msg.contains("numberofemployees"), "{msg}");
    let msg = error(post(r#"{"industrycode": 999999}"#).await.unwrap(), 400).await;
    assert!(msg.contains("industrycode"), "{msg}");
    let msg = error(post(r#"{"name": "x", "parentaccountid@odata.bind": "/contacts(00000000-0000-0000-0000-000000000001)"}"#).await.unwrap(), 400).await;
    assert!(msg.contains("parentaccountid"), "{msg}");
    let msg = error(
        post(&*Box::leak(
            format!(r#"{{"name": "{}"}}"#, "x".repeat(5000)).into_boxed_str(),
        ))
        .await
        .unwrap(),
        400,
    )
    .await;
    assert!(msg.contains("name") && msg.contains("maximum length"), "{msg}");
    let msg = error(post("").await.unwrap(), 400).await;
    assert!(msg.contains("JSON body"), "{msg}");
    let msg = error(
        s.get("acme", "accounts(12345)", ACME_ADMIN).send().await.unwrap(),
        400,
    )
    .await;
    assert!(msg.contains("12345"), "{msg}");
    error(
        s.get(
            "acme",
            "nosuchset(00000000-0000-0000-0000-000000000001)",
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap(),
        404,
    )
    .await;
    error(
        s.send(Method::PUT, "acme", "accounts", ACME_ADMIN)
            .send()
            .await
            .unwrap(),
        405,
    )
    .await;
    let huge = vec![b' '; crmsync_server::MAX_BODY_BYTES + 1];
    let r = s
        .send(Method::POST, "acme", "accounts", ACME_ADMIN)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(count().await, before, "nothing was stored");
}
