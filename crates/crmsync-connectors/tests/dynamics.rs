//! The connector with the `dynamics` backend against a scripted server answering in
//! Dataverse's shapes: OAuth2 bearer tokens, metadata whose option sets are only available
//! through type-cast segments, and a change-tracking page with Dataverse's annotations.

use crate::common;

use common::fast_retries;
use crmsync_connectors::{Backend, Credentials, DataverseConfig, DataverseConnector, Secret};
use crmsync_model::{AttributeType, RecordId, Value};
use crmsync_sync::{Connector, Continuation, ReadPosition};
use futures::StreamExt;
use serde_json::{Value as Json, json};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn label(text: &str) -> Json {
    json!({"LocalizedLabels": [{"Label": text, "LanguageCode": 1033}], "UserLocalizedLabel": {"Label": text, "LanguageCode": 1033}})
}

fn options(list: &[(i32, &str, Option<i32>)]) -> Json {
    let options: Vec<Json> = list
        .iter()
        .map(|(v, l, s)| match s {
            Some(state) => json!({"Value": v, "Label": label(l), "State": state}),
            None => json!({"Value": v, "Label": label(l)}),
        })
        .collect();
    json!({"Options": options})
}

/// `EntityDefinitions?$expand=Attributes` as Dataverse answers it: no option sets inline.
fn definitions() -> Json {
    let a = |name: &str, ty: &str, extra: Json| {
        let mut m = json!({"@odata.type": format!("#Microsoft.Dynamics.CRM.{ty}AttributeMetadata"),
            "LogicalName": name, "AttributeType": ty, "AttributeOf": null, "DisplayName": label(name), "IsValidForRead": true});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    };
    json!({"value": [
        {"LogicalName": "account", "EntitySetName": "accounts", "PrimaryIdAttribute": "accountid",
         "PrimaryNameAttribute": "name", "DisplayName": label("Account"), "MetadataId": "70816501-edb9-4740-a16c-6a5efbc05d84",
         "Attributes": [
            a("accountid", "Uniqueidentifier", json!({})),
            a("createdon", "DateTime", json!({})),
            a("modifiedon", "DateTime", json!({})),
            a("versionnumber", "BigInt", json!({})),
            a("statecode", "State", json!({})),
            a("statuscode", "Status", json!({})),
            a("name", "String", json!({"MaxLength": 160})),
            a("industrycode", "Picklist", json!({})),
            a("ownerid", "Owner", json!({"Targets": ["systemuser", "team"]})),
            a("owneridname", "String", json!({"AttributeOf": "ownerid", "MaxLength": 100})),
            a("revenue", "Money", json!({"Precision": 2})),
         ]},
        {"LogicalName": "activitypointer", "EntitySetName": "activitypointers", "PrimaryIdAttribute": "activityid",
         "PrimaryNameAttribute": "subject", "Attributes": []},
    ]})
}

async fn mount_metadata(server: &MockServer) {
    let answers = [
        (
            "Picklist",
            json!({"value": [{"LogicalName": "industrycode", "OptionSet": null,
            "GlobalOptionSet": options(&[(1, "Accounting", None), (2, "Agriculture", None)])}]}),
        ),
        (
            "State",
            json!({"value": [{"LogicalName": "statecode", "OptionSet": options(&[(0, "Active", None), (1, "Inactive", None)])}]}),
        ),
        (
            "Status",
            json!({"value": [{"LogicalName": "statuscode", "OptionSet": options(&[(1, "Active", Some(0)), (2, "Inactive", Some(1))])}]}),
        ),
    ];
    for (ty, body) in answers {
        Mock::given(method("GET"))
            .and(path_regex(format!(
                r"Microsoft\.Dynamics\.CRM\.{ty}AttributeMetadata$"
            )))
            .and(query_param("$select", "LogicalName"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/data/v9.2/EntityDefinitions"))
        .and(query_param("$expand", "Attributes"))
        .and(header("authorization", "Bearer dyn-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(definitions()))
        .mount(server)
        .await;
}

fn connector(server: &MockServer) -> DataverseConnector {
    let mut config = DataverseConfig::new(
        server.uri(),
        Backend::Dynamics,
        Credentials::Password {
            user: "ops@contoso.example".into(),
            password: Secret::new("pw"),
            client_id: Some("my-app".into()),
            token_url: Some(format!("{}/organizations/oauth2/v2.0/token", server.uri())),
        },
    );
    config.allow_private_urls = true;
    DataverseConnector::new(config)
        .unwrap()
        .with_retry_policy(fast_retries(1))
}

async fn mount_token(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/organizations/oauth2/v2.0/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"token_type": "Bearer", "expires_in": "3599", "access_token": "dyn-token"}),
        ))
        .mount(server)
        .await;
}

#[tokio::test]
async fn option_sets_missing_from_dataverse_metadata_are_fetched_through_type_casts() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_metadata(&server).await;
    let entities = connector(&server).entities().await.unwrap();
    assert_eq!(
        entities.len(),
        1,
        "activitypointer (primary id activityid) is skipped"
    );
    let account = &entities[0];
    let ty = |n: &str| account.attribute(n).map(|a| a.attribute_type.clone());
    let industry = ty("industrycode").unwrap();
    assert_eq!(industry.option_set().unwrap().options[1].label, "Agriculture");
    assert_eq!(
        ty("statuscode").unwrap().option_set().unwrap().options[1].state,
        Some(1)
    );
    assert!(matches!(ty("ownerid"), Some(AttributeType::Lookup { targets }) if targets.len() == 2));
    assert_eq!(ty("owneridname"), None);

    let received = server.received_requests().await.unwrap();
    let token = received.iter().find(|r| r.method.as_str() == "POST").unwrap();
    let form = String::from_utf8_lossy(&token.body).into_owned();
    for field in [
        "grant_type=password",
        "username=ops%40contoso.example",
        "client_id=my-app",
    ] {
        assert!(form.contains(field), "{form}");
    }
    assert!(
        form.contains(&format!("scope={}", "http%3A%2F%2F127.0.0.1")),
        "{form}"
    );
    let casts = received
        .iter()
        .filter(|r| r.url.path().contains("AttributeMetadata"))
        .count();
    assert_eq!(
        casts, 3,
        "one request per option attribute type of the one entity that needs it"
    );
}

#[tokio::test]
async fn a_dataverse_delta_page_maps_records_deletes_and_the_token() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_metadata(&server).await;
    let c = connector(&server);
    let account = c.entities().await.unwrap().remove(0);
    let (id, owner, gone) = (
        RecordId::new_random(),
        RecordId::new_random(),
        RecordId::new_random(),
    );
    let base = server.uri();
    let page: Json = serde_json::from_str(&format!(
        r#"{{"@odata.context":"{base}/api/data/v9.2/$metadata#accounts(name,_ownerid_value,revenue)/$delta",
        "@odata.deltaLink":"{base}/api/data/v9.2/accounts?$select=name,_ownerid_value,revenue&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44",
        "value":[
          {{"@odata.etag":"W/\"915\"","name":"Monte Orderly","revenue":1234567.25,
            "_ownerid_value":"{owner}","_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname":"systemuser",
            "_ownerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty":"owninguser",
            "accountid":"{id}"}},
          {{"@odata.context":"{base}/api/data/v9.2/$metadata#accounts/$deletedEntity","id":"{gone}","reason":"deleted"}}
        ]}}"#
    ))
    .unwrap();
    Mock::given(method("GET"))
        .and(path("/api/data/v9.2/accounts"))
        .and(query_param("$deltatoken", "919000!08/21/2017 08:10:44"))
        .and(query_param("$select", "name,_ownerid_value,revenue"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(&server)
        .await;
    let columns = ["name", "ownerid", "revenue"].map(|n| crmsync_model::AttributeName::parse(n).unwrap());
    let position = ReadPosition::Delta("919000!08/21/2017 08:10:44".into());
    let page = c.changes(&account, &columns, &position, 500).await.unwrap();
    assert_eq!(page.deletes, vec![gone]);
    assert_eq!(page.next, Continuation::Done("919042!08/22/2017 08:10:44".into()));
    let records = page.upserts[0]
        .clone()
        .into_records(&account.primary_id_attribute);
    let r = &records[0];
    assert_eq!(r.id, Some(id));
    assert_eq!(
        r.get("revenue"),
        Some(&Value::Decimal("1234567.25".parse().unwrap()))
    );
    assert!(
        matches!(r.get("ownerid"), Some(Value::Lookup(l)) if l.entity.as_str() == "systemuser" && l.id == owner)
    );
    let received = server.received_requests().await.unwrap();
    let read = received
        .iter()
        .find(|r| r.url.path() == "/api/data/v9.2/accounts")
        .unwrap();
    assert_eq!(
        read.headers.get("prefer").unwrap().to_str().unwrap(),
        "odata.track-changes,odata.maxpagesize=500,odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname\""
    );
}

#[tokio::test]
async fn change_pages_read_ahead_and_follow_the_link_each_page_gives() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_metadata(&server).await;
    let c = connector(&server);
    let account = c.entities().await.unwrap().remove(0);
    let ids: Vec<RecordId> = (0..4).map(|_| RecordId::new_random()).collect();
    let api = format!("{}/api/data/v9.2", server.uri());
    let record = |id: &RecordId, extra: &str| format!(r#"{{"accountid":"{id}","name":"n {id}"{extra}}}"#);
    // The first page names its next link before its records, and one record carries a
    // member of the same name: the link picked out of the body before decoding is the wrong
    // one, and the page read from it must not be used.
    let decoy = format!(r#","extra":{{"@odata.nextLink":"{api}/accounts?$skiptoken=decoy"}}"#);
    let pages = [
        (
            "$deltatoken",
            "start",
            format!(
                r#"{{"@odata.nextLink":"{api}/accounts?$skiptoken=two","value":[{},{}]}}"#,
                record(&ids[0], ""),
                record(&ids[1], &decoy)
            ),
        ),
        (
            "$skiptoken",
            "two",
            format!(
                r#"{{"value":[{}],"@odata.nextLink":"{api}/accounts?$skiptoken=three"}}"#,
                record(&ids[2], "")
            ),
        ),
        (
            "$skiptoken",
            "three",
            format!(
                r#"{{"value":[{}],"@odata.deltaLink":"{api}/accounts?$deltatoken=end"}}"#,
                record(&ids[3], "")
            ),
        ),
        (
            "$skiptoken",
            "decoy",
            r#"{"value":[],"@odata.deltaLink":"https://elsewhere.example/"}"#.to_owned(),
        ),
    ];
    for (param, value, body) in pages {
        Mock::given(method("GET"))
            .and(path("/api/data/v9.2/accounts"))
            .and(query_param(param, value))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .mount(&server)
            .await;
    }
    let sizes = crmsync_sync::PageSizes { first: 2, max: 3 };
    let mut pages = c.change_pages(&account, &[], ReadPosition::Delta("start".into()), sizes);
    let mut read = vec![
        pages.next().await.unwrap().unwrap(),
        pages.next().await.unwrap().unwrap(),
    ];
    // The third page is asked for while the second is with the caller.
    let asked = async {
        loop {
            let received = server.received_requests().await.unwrap();
            if received
                .iter()
                .any(|r| r.url.query().is_some_and(|q| q.contains("three")))
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), asked)
        .await
        .expect("the third page is read ahead");
    read.push(pages.next().await.unwrap().unwrap());
    assert!(pages.next().await.is_none(), "the stream ends with the token");
    drop(pages);
    let got: Vec<Vec<RecordId>> = read
        .iter()
        .map(|p| {
            p.upserts
                .iter()
                .flat_map(|b| b.rows.iter().map(|(id, _)| *id))
                .collect()
        })
        .collect();
    assert_eq!(got, vec![ids[..2].to_vec(), vec![ids[2]], vec![ids[3]]]);
    assert_eq!(read[2].next, Continuation::Done("end".into()));

    let received = server.received_requests().await.unwrap();
    let reads: Vec<(String, String)> = received
        .iter()
        .filter(|r| r.url.path() == "/api/data/v9.2/accounts")
        .map(|r| {
            let prefer = r.headers.get("prefer").unwrap().to_str().unwrap();
            let size = prefer
                .split(',')
                .find_map(|p| p.strip_prefix("odata.maxpagesize="))
                .unwrap()
                .to_owned();
            (r.url.query().unwrap_or_default().to_owned(), size)
        })
        .collect();
    let query = |q: &str| reads.iter().filter(|(r, _)| r.contains(q)).collect::<Vec<_>>();
    // The decoy is read ahead and dropped once the decoded page names another link (the
    // request may not have gone out by then).
    assert!(query("decoy").len() <= 1, "{reads:?}");
    assert_eq!(query("skiptoken=two").len(), 1, "{reads:?}");
    assert_eq!(
        query("skiptoken=three").len(),
        1,
        "read ahead, not again: {reads:?}"
    );
    let sizes: Vec<&str> = ["start", "two", "three"]
        .iter()
        .map(|q| query(q)[0].1.as_str())
        .collect();
    assert_eq!(
        sizes,
        ["2", "3", "3"],
        "each page asks for twice the one before, up to the most"
    );
}
