//! The sync webservice end to end: a client org registered and connected to the server org
//! `acme` of the same running server, over HTTP, then synced, inspected and reconfigured.

use crate::common;

use std::time::Duration;

use common::{ACME_ADMIN, BETA_ADMIN, TestServer, error, json, sync_url, wait_job};
use crmsync_server::ServerConfig;
use serde_json::Value;

const FIELD: (&str, &str) = ("lead@field.example", "field-admin-pw");

fn connect_xml(s: &TestServer, provider: &str, url: &str) -> String {
    format!(
        r#"<ConnectRequest><SyncSetup>
            <ProviderID>{provider}</ProviderID><Url>{url}</Url>
            <UserName>{}</UserName><Password>{}</Password>
            <RegistrationInfo><Email>{}</Email><Password>{}</Password></RegistrationInfo>
            <Entities>account,contact</Entities>
            <SyncFiltersXml><![CDATA[<SyncFilters><fetch><entity name="account"><filter><condition attribute="statecode" operator="eq" value="0"/></filter></entity></fetch></SyncFilters>]]></SyncFiltersXml>
          </SyncSetup></ConnectRequest>"#,
        ACME_ADMIN.0, ACME_ADMIN.1, FIELD.0, FIELD.1
    )
    .replace("{url}", &s.url)
}

async fn start() -> TestServer {
    TestServer::start_with(ServerConfig {
        allow_private_urls: true,
        ..ServerConfig::default()
    })
    .await
}

#[tokio::test]
async fn connect_registers_the_client_then_sync_and_logs_follow() {
    let s = start().await;
    let body = connect_xml(&s, "crmsync", &format!("{}/acme", s.url));
    let r = s
        .client
        .post(sync_url(&s, "field", "ConnectAsync"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(json(r).await["status"], "Queued");
    let job = wait_job(&s, &location, FIELD).await;
    assert_eq!(job["status"], "Succeeded", "{job}");
    assert_eq!(
        job["result"]["entities"],
        serde_json::json!(["account", "contact"])
    );

    let conn = json(
        s.client
            .get(sync_url(&s, "field", "connection"))
            .basic_auth(FIELD.0, Some(FIELD.1))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(conn["userName"], ACME_ADMIN.0);
    assert!(
        !conn.to_string().contains(ACME_ADMIN.1),
        "the password is never returned: {conn}"
    );

    let r = s
        .client
        .post(sync_url(&s, "field", "SyncAsync"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job = wait_job(&s, &location, FIELD).await;
    assert_eq!(job["status"], "Succeeded", "{job}");
    assert_eq!(job["progress"]["done"], 2);
    let run_id = job["runId"].as_str().unwrap().to_owned();
    let logs = json(
        s.client
            .get(sync_url(&s, "field", "logs"))
            .basic_auth(FIELD.0, Some(FIELD.1))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(logs["value"].as_array().unwrap().len(), 1);
    let run = json(
        s.client
            .get(sync_url(&s, "field", &format!("logs/{run_id}")))
            .basic_auth(FIELD.0, Some(FIELD.1))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let contacts = run["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity"] == "contact")
        .unwrap()
        .clone();
    assert_eq!(contacts["created"], 40, "{run}");

    let r = s
        .client
        .post(sync_url(&s, "field", "UpdateMetadataAsync"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .body(r#"{"preview":true}"#)
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job = wait_job(&s, &location, FIELD).await;
    assert_eq!(job["result"]["changes"], serde_json::json!([]), "{job}");

    let bad = r#"<SyncFilters><fetch><entity name="account"><filter><condition attribute="nosuch" operator="eq" value="1"/></filter></entity></fetch></SyncFilters>"#;
    let r = s
        .client
        .put(sync_url(&s, "field", "connection/filters"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .body(bad)
        .send()
        .await
        .unwrap();
    assert!(error(r, 400).await.contains("nosuch"));
    let r = s
        .client
        .put(sync_url(&s, "field", "connection/settings"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .body(r#"{"writeOffline":true,"conflictPolicy":"ServerWins"}"#)
        .send()
        .await
        .unwrap();
    let conn = json(r).await;
    assert_eq!(
        (conn["writeOffline"].clone(), conn["conflictPolicy"].clone()),
        (Value::Bool(true), Value::String("ServerWins".into()))
    );
    let r = s
        .client
        .put(sync_url(&s, "field", "connection/entities"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .body(r#"{"entities":["account","nosuch"]}"#)
        .send()
        .await
        .unwrap();
    assert!(error(r, 400).await.contains("nosuch"));
}

#[tokio::test]
async fn bad_connect_requests_are_refused_and_store_nothing() {
    let s = start().await;
    let url = format!("{}/acme", s.url);
    let r = s
        .client
        .post(sync_url(&s, "field", "ConnectAsync"))
        .body(connect_xml(&s, "salesforce", &url))
        .send()
        .await
        .unwrap();
    let msg = error(r, 400).await;
    assert!(
        msg.contains("salesforce") && msg.contains("60650fb3-5d8b-45dd-b82e-459f3b019e9a"),
        "{msg}"
    );
    let r = s
        .client
        .post(sync_url(&s, "field", "ConnectAsync"))
        .body("<!DOCTYPE x><ConnectRequest/>")
        .send()
        .await
        .unwrap();
    assert!(error(r, 400).await.to_lowercase().contains("doctype"));
    // An existing org needs its admin: another org's admin learns nothing.
    let r = s
        .client
        .post(sync_url(&s, "acme", "ConnectAsync"))
        .basic_auth(BETA_ADMIN.0, Some(BETA_ADMIN.1))
        .body(connect_xml(&s, "crmsync", &url))
        .send()
        .await
        .unwrap();
    error(r, 401).await;
    // Wrong server credentials: the job fails with the server's answer, and no org is created.
    let wrong = connect_xml(&s, "crmsync", &url).replace(ACME_ADMIN.1, "not-the-password");
    let r = s
        .client
        .post(sync_url(&s, "field", "ConnectAsync"))
        .body(wrong)
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let org = crmsync_model::OrgName::parse("field").unwrap();
    // The registrant reads the job by its id (there is no admin yet) and learns why it failed.
    let job = wait_job(&s, &location, ("anyone@example.com", "whatever-pw")).await;
    assert_eq!(job["status"], "Failed");
    assert!(job["error"].as_str().unwrap().contains("credentials"), "{job}");
    assert!(s.catalog.org_info(&org).await.is_err(), "nothing was stored");
    // A server on a private address is refused when the server does not allow them.
    let strict = TestServer::start().await;
    let r = strict
        .client
        .post(sync_url(&strict, "field", "ConnectAsync"))
        .body(connect_xml(&strict, "crmsync", &format!("{}/acme", strict.url)))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job = wait_job(&strict, &location, FIELD).await;
    assert_eq!(job["status"], "Failed");
    assert!(
        job["error"].as_str().unwrap().contains("private")
            || job["error"].as_str().unwrap().contains("loopback"),
        "{job}"
    );
    assert!(strict.catalog.org_info(&org).await.is_err());
}

#[tokio::test]
async fn sync_routes_need_a_connection_and_an_admin() {
    let s = start().await;
    let r = s
        .client
        .post(sync_url(&s, "acme", "SyncAsync"))
        .basic_auth(ACME_ADMIN.0, Some(ACME_ADMIN.1))
        .send()
        .await
        .unwrap();
    assert!(error(r, 404).await.contains("no connection"));
    let r = s
        .client
        .get(sync_url(&s, "acme", "logs"))
        .basic_auth(common::ACME_USER.0, Some(common::ACME_USER.1))
        .send()
        .await
        .unwrap();
    error(r, 403).await;
    let r = s
        .client
        .get(sync_url(&s, "acme", "jobs/not-a-job"))
        .basic_auth(ACME_ADMIN.0, Some(ACME_ADMIN.1))
        .send()
        .await
        .unwrap();
    error(r, 400).await;
    let r = s
        .client
        .post(sync_url(&s, "acme", "SyncAsync"))
        .basic_auth(ACME_ADMIN.0, Some(ACME_ADMIN.1))
        .body("{\"bogus\":1}")
        .send()
        .await
        .unwrap();
    error(r, 400).await;
}

#[tokio::test]
async fn closed_registration_refuses_new_orgs_but_not_existing_admins() {
    let s = TestServer::start_with(ServerConfig {
        allow_private_urls: true,
        registration_open: false,
        ..ServerConfig::default()
    })
    .await;
    let url = format!("{}/acme", s.url);
    let r = s
        .client
        .post(sync_url(&s, "field", "ConnectAsync"))
        .body(connect_xml(&s, "crmsync", &url))
        .send()
        .await
        .unwrap();
    assert!(error(r, 403).await.contains("registration"));
    assert!(
        s.catalog
            .org_info(&crmsync_model::OrgName::parse("field").unwrap())
            .await
            .is_err()
    );
    // An existing org's admin may still (re)connect it.
    let r = s
        .client
        .post(sync_url(&s, "beta", "ConnectAsync"))
        .basic_auth(BETA_ADMIN.0, Some(BETA_ADMIN.1))
        .body(connect_xml(&s, "crmsync", &url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job = wait_job(&s, &location, BETA_ADMIN).await;
    assert_eq!(job["status"], "Succeeded", "{job}");
}

#[tokio::test]
async fn registration_through_connect_is_rate_limited_per_address() {
    let s = TestServer::start_with(ServerConfig {
        allow_private_urls: true,
        registration_limit: crmsync_server::RateLimit {
            attempts: 2,
            window: Duration::from_secs(3600),
        },
        ..ServerConfig::default()
    })
    .await;
    let url = format!("{}/acme", s.url);
    for org in ["field-a", "field-b"] {
        let r = s
            .client
            .post(sync_url(&s, org, "ConnectAsync"))
            .body(connect_xml(&s, "crmsync", &url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{org}");
    }
    let r = s
        .client
        .post(sync_url(&s, "field-c", "ConnectAsync"))
        .body(connect_xml(&s, "crmsync", &url))
        .send()
        .await
        .unwrap();
    assert!(error(r, 429).await.contains("too many registrations"));
    // An existing org's admin is not registering: not limited.
    let r = s
        .client
        .post(sync_url(&s, "beta", "ConnectAsync"))
        .basic_auth(BETA_ADMIN.0, Some(BETA_ADMIN.1))
        .body(connect_xml(&s, "crmsync", &url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}
