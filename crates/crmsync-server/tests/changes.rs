//! Change tracking over HTTP: initial tracked read, delta links, deletes, expiry.

use crate::common;

use std::collections::BTreeSet;

use common::{ACME_ADMIN, TestServer, created_id, error, json};
use reqwest::Method;
use serde_json::{Value, json};

/// Follows `@odata.nextLink`s (without the Prefer header) and returns all entries and the
/// final delta link.
async fn read_all(s: &TestServer, first: reqwest::RequestBuilder) -> (Vec<Value>, String) {
    let mut body = json(first.send().await.unwrap()).await;
    let mut entries = Vec::new();
    loop {
        entries.extend(body["value"].as_array().unwrap().iter().cloned());
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                body = json(
                    s.client
                        .get(next)
                        .basic_auth(ACME_ADMIN.0, Some(ACME_ADMIN.1))
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            }
            None => {
                return (
                    entries,
                    body["@odata.deltaLink"]
                        .as_str()
                        .expect("a delta link ends the read")
                        .to_owned(),
                );
            }
        }
    }
}

fn ids(entries: &[Value]) -> BTreeSet<String> {
    entries
        .iter()
        .filter_map(|e| e["accountid"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn tracked_read_pages_all_records_then_delta_returns_changes_and_deletes() {
    let s = TestServer::start().await;
    let first = s
        .get("acme", "accounts?$select=name,revenue", ACME_ADMIN)
        .header("prefer", "odata.maxpagesize=7,odata.track-changes");
    let response = first.try_clone().unwrap().send().await.unwrap();
    let applied = response.headers()["preference-applied"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        applied.contains("odata.track-changes") && applied.contains("odata.maxpagesize=7"),
        "{applied}"
    );
    let (entries, delta) = read_all(&s, first).await;
    assert_eq!(entries.len(), 20);
    assert_eq!(ids(&entries).len(), 20, "no record twice");
    assert!(
        entries
            .iter()
            .all(|e| e.get("name").is_some() && e.get("telephone1").is_none()),
        "$select is honoured"
    );
    assert!(delta.contains("$deltatoken="), "{delta}");
    assert!(
        delta.contains("%24select=name%2Crevenue") || delta.contains("$select=name,revenue"),
        "{delta}"
    );

    // Changes: two creates, one update, one delete.
    let mut created = Vec::new();
    for name in ["new one", "new two"] {
        let r = s
            .send(Method::POST, "acme", "accounts", ACME_ADMIN)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        created.push(created_id(&r));
    }
    let mut existing = ids(&entries).into_iter();
    let (updated, deleted) = (existing.next().unwrap(), existing.next().unwrap());
    let r = s
        .send(Method::PATCH, "acme", &format!("accounts({updated})"), ACME_ADMIN)
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .send(
            Method::DELETE,
            "acme",
            &format!("accounts({deleted})"),
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let (changes, next_delta) = read_all(
        &s,
        s.client.get(&delta).basic_auth(ACME_ADMIN.0, Some(ACME_ADMIN.1)),
    )
    .await;
    let upserted = ids(&changes);
    let expected: BTreeSet<String> = created.iter().cloned().chain([updated.clone()]).collect();
    assert_eq!(upserted, expected);
    let deletes: Vec<&Value> = changes.iter().filter(|c| c["reason"] == "deleted").collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0]["id"], deleted.as_str());
    assert!(
        deletes[0]["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#accounts/$deletedEntity")
    );
    assert!(changes.iter().any(|c| c["name"] == "renamed"));

    // Nothing new since: an empty delta with a link to go on from.
    let (none, _) = read_all(
        &s,
        s.client
            .get(&next_delta)
            .basic_auth(ACME_ADMIN.0, Some(ACME_ADMIN.1)),
    )
    .await;
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn expired_tokens_and_unsupported_options_are_clear_errors() {
    let s = TestServer::start().await;
    let (entries, delta) = read_all(
        &s,
        s.get("acme", "accounts", ACME_ADMIN)
            .header("prefer", "odata.track-changes"),
    )
    .await;
    let victim = entries[0]["accountid"].as_str().unwrap();
    s.send(Method::DELETE, "acme", &format!("accounts({victim})"), ACME_ADMIN)
        .send()
        .await
        .unwrap();
    let org = s
        .catalog
        .open_org(&crmsync_model::OrgName::parse("acme").unwrap())
        .await
        .unwrap();
    org.purge_tombstones(chrono::Utc::now() + chrono::Duration::seconds(5))
        .await
        .unwrap();
    let r = s
        .client
        .get(&delta)
        .basic_auth(ACME_ADMIN.0, Some(ACME_ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let body = json(r).await;
    assert_eq!(body["error"]["code"], "ChangeTokenExpired");
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"));

    let r = s
        .get("acme", "accounts?$filter=name eq 'x'", ACME_ADMIN)
        .header("prefer", "odata.track-changes")
        .send()
        .await
        .unwrap();
    let msg = error(r, 400).await;
    assert!(
        msg.contains("$filter cannot be combined with change tracking"),
        "{msg}"
    );
    let msg = error(
        s.get("acme", "accounts?$deltatoken=garbage", ACME_ADMIN)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(msg.contains("garbage"), "{msg}");
    let msg = error(
        s.get("acme", "accounts?$skiptoken=ct.1.x.0.5", ACME_ADMIN)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(msg.contains("$skiptoken"), "{msg}");
}
