//! Collection queries over HTTP: OData options, paging with next links, FetchXML with link
//! entities and paging cookies, and query errors.

use crate::common;

use std::collections::BTreeSet;

use common::{ACME_ADMIN, TestServer, error, json};
use serde_json::Value;

async fn get(s: &TestServer, path: &str) -> Value {
    json(s.get("acme", path, ACME_ADMIN).send().await.unwrap()).await
}

fn names(body: &Value) -> Vec<String> {
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn odata_options_filter_select_order_top_and_count() {
    let s = TestServer::start().await;
    let all = get(&s, "accounts?$select=name&$orderby=name asc&$count=true").await;
    assert_eq!(all["@odata.count"], 20);
    let sorted = names(&all);
    let mut expected = sorted.clone();
    expected.sort_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(sorted, expected, "ordered by name, case-insensitively");
    assert!(
        all["value"][0].get("accountid").is_some(),
        "the primary id always comes back"
    );
    assert!(all["value"][0].get("revenue").is_none());

    let first = &sorted[0];
    let quoted = first.replace('\'', "''");
    let one = get(
        &s,
        &format!(
            "accounts?$select=name&$filter=name eq '{}'",
            quoted.to_uppercase()
        ),
    )
    .await;
    assert_eq!(names(&one), vec![first.clone()], "eq on text ignores case");
    let top = get(&s, "accounts?$select=name&$orderby=name desc&$top=3").await;
    assert_eq!(
        names(&top),
        sorted.iter().rev().take(3).cloned().collect::<Vec<_>>()
    );
    let inactive = get(
        &s,
        "accounts?$select=name,statecode&$filter=statecode eq 1 or (statecode eq 0 and not (statecode eq 0))",
    )
    .await;
    assert!(
        inactive["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["statecode"] == 1)
    );
    let starts = get(
        &s,
        &format!(
            "accounts?$select=name&$filter=startswith(name,'{}')",
            &quoted[..3]
        ),
    )
    .await;
    assert!(
        names(&starts)
            .iter()
            .all(|n| n.to_lowercase().starts_with(&first[..3].to_lowercase()))
    );
}

#[tokio::test]
async fn next_links_page_through_every_record_exactly_once() {
    let s = TestServer::start().await;
    for prefer in [
        "odata.maxpagesize=3",
        "odata.include-annotations=\"*\",odata.maxpagesize=3",
    ] {
        let mut body = json(
            s.get("acme", "contacts?$select=fullname", ACME_ADMIN)
                .header("prefer", prefer)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(body["value"].as_array().unwrap().len() <= 3);
            seen.extend(
                body["value"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v["contactid"].as_str().unwrap().to_owned()),
            );
            let Some(next) = body["@odata.nextLink"].as_str().map(str::to_owned) else {
                break;
            };
            assert!(next.starts_with(&s.api("acme")), "absolute: {next}");
            body = json(
                s.client
                    .get(next)
                    .basic_auth(ACME_ADMIN.0, Some(ACME_ADMIN.1))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
        }
        assert_eq!(seen.len(), 40);
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 40);
        assert_eq!(pages, 14);
    }
}

#[tokio::test]
async fn fetchxml_filters_links_and_pages_with_cookies() {
    let s = TestServer::start().await;
    let fetch = r#"<fetch count="7" returntotalrecordcount="true">
        <entity name="contact">
          <attribute name="fullname" />
          <filter type="and"><condition attribute="statecode" operator="eq" value="0" /></filter>
          <link-entity name="account" from="accountid" to="parentcustomerid" alias="acct" link-type="outer">
            <attribute name="name" />
          </link-entity>
        </entity></fetch>"#;
    let mut body = get(&s, &format!("contacts?fetchXml={}", urlencode(fetch))).await;
    let total = body["@Microsoft.Dynamics.CRM.totalrecordcount"].as_u64().unwrap();
    assert!(total > 0 && total <= 40);
    let mut seen = BTreeSet::new();
    let mut page = 1;
    loop {
        for v in body["value"].as_array().unwrap() {
            assert!(
                seen.insert(v["contactid"].as_str().unwrap().to_owned()),
                "no duplicates"
            );
            assert!(v.get("acct.name").is_some(), "linked attribute: {v}");
        }
        if body["@Microsoft.Dynamics.CRM.morerecords"] != true {
            break;
        }
        // What a Dataverse client does: decode the cookie twice and send it back.
        let annotation = body["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]
            .as_str()
            .unwrap();
        let decoded = urldecode(&urldecode(annotation));
        let start = decoded.find("pagingcookie=\"").unwrap() + 14;
        let cookie = &decoded[start..decoded.rfind("</cookie>").unwrap() + 9];
        page += 1;
        let next = fetch.replace(
            r#"<fetch count="7" returntotalrecordcount="true">"#,
            &format!(
                r#"<fetch count="7" page="{page}" paging-cookie="{}">"#,
                xml_escape(cookie)
            ),
        );
        body = get(&s, &format!("contacts?fetchXml={}", urlencode(&next))).await;
    }
    assert_eq!(seen.len() as u64, total);
}

#[tokio::test]
async fn query_errors_name_what_is_wrong() {
    let s = TestServer::start().await;
    let r = s
        .get("acme", "accounts?$filter=nosuch eq 1", ACME_ADMIN)
        .send()
        .await
        .unwrap();
    let msg = error(r, 400).await;
    assert!(msg.contains("nosuch"), "{msg}");
    let r = s
        .get("acme", "accounts?$filter=numberofemployees eq 'many'", ACME_ADMIN)
        .send()
        .await
        .unwrap();
    assert!(error(r, 400).await.contains("numberofemployees"));
    let doctype = r#"<!DOCTYPE x [<!ENTITY a "b">]><fetch><entity name="account"/></fetch>"#;
    let r = s
        .get(
            "acme",
            &format!("accounts?fetchXml={}", urlencode(doctype)),
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap();
    assert!(error(r, 400).await.to_lowercase().contains("doctype"));
    let other = r#"<fetch><entity name="contact"/></fetch>"#;
    let r = s
        .get(
            "acme",
            &format!("accounts?fetchXml={}", urlencode(other)),
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap();
    assert!(error(r, 400).await.contains("contact"));
    let hostile = urlencode("name eq 'bob\"e''); DROP TABLE account;--'");
    let body = get(&s, &format!("accounts?$filter={hostile}")).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 0);
    assert_eq!(
        get(&s, "accounts?$count=true&$top=1").await["@odata.count"],
        20,
        "the table is intact"
    );
    let r = s
        .get("acme", "accounts?$skiptoken=zzz", ACME_ADMIN)
        .send()
        .await
        .unwrap();
    assert!(error(r, 400).await.contains("zzz"));
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn urldecode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
