//! The Dataverse connector against a real crmsync server (in-process, loopback port):
//! identity, metadata, change tracking with deltas and expiry, FetchXML paging, credentials
//! and URL checks.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use common::{ADMIN, TestServer};
use crmsync_connectors::{Backend, Credentials, DataverseConfig, DataverseConnector, Secret};
use crmsync_model::{AttributeName, EntityMetadata, Record, RecordId, Value};
use crmsync_query::parse_fetchxml;
use crmsync_store::{DeleteMode, UpsertMode, WriteSet};
use crmsync_sync::{ChangesPage, Connector, Continuation, ReadPosition, SyncError};
use rust_decimal::Decimal;

/// Reads a whole change-tracking pass: every page's upserts and deletes, the page count and
/// the token that ends it.
async fn read_all(
    c: &DataverseConnector,
    entity: &EntityMetadata,
    columns: &[AttributeName],
    start: ReadPosition,
    page_size: usize,
) -> (Vec<Record>, Vec<RecordId>, usize, String) {
    let (mut upserts, mut deletes, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut position = start;
    loop {
        let page: ChangesPage = c.changes(entity, columns, &position, page_size).await.unwrap();
        pages += 1;
        assert!(page.upsert_count() + page.deletes.len() <= page_size);
        for batch in page.upserts {
            upserts.extend(batch.into_records(&entity.primary_id_attribute));
        }
        deletes.extend(page.deletes);
        match page.next {
            Continuation::More(link) => position = ReadPosition::Next(link),
            Continuation::Done(token) => return (upserts, deletes, pages, token),
        }
    }
}

fn by_id(records: Vec<Record>) -> BTreeMap<RecordId, Record> {
    records
        .into_iter()
        .map(|r| (r.id.expect("records have ids"), r))
        .collect()
}

fn names(list: &[&str]) -> Vec<AttributeName> {
    list.iter().map(|n| AttributeName::parse(n).unwrap()).collect()
}

#[tokio::test]
async fn who_am_i_names_the_signed_in_user() {
    let s = TestServer::start().await;
    let me = s.connector().who_am_i().await.unwrap();
    let acme = crmsync_model::OrgName::parse("acme").unwrap();
    let admin = s.catalog.find_user(&acme, ADMIN.0).await.unwrap().unwrap();
    assert_eq!(me.user_id, RecordId::from_uuid(admin.id));
    assert_ne!(me.organization_id, me.user_id);
}

#[tokio::test]
async fn entities_map_back_to_exactly_the_server_orgs_metadata() {
    let s = TestServer::start().await;
    let mapped = s.connector().entities().await.unwrap();
    let stored = s.store.entities().await.unwrap();
    assert_eq!(mapped.len(), 5);
    assert_eq!(mapped, stored);
}

#[tokio::test]
async fn tracked_read_returns_every_record_typed_then_a_delta_returns_exactly_the_changes() {
    let s = TestServer::start().await;
    let c = s.connector();
    let account = s.entity("account").await;
    let (upserts, deletes, pages, token) = read_all(&c, &account, &[], ReadPosition::Initial, 7).await;
    assert_eq!((pages, deletes.len()), (3, 0), "20 accounts in pages of 7");
    let read = by_id(upserts);
    let stored = by_id(s.records(&account).await);
    assert_eq!(read.len(), 20);
    assert_eq!(read, stored, "every value as the store has it");
    let has = |name: &str, f: fn(&Value) -> bool| read.values().any(|r| r.get(name).is_some_and(f));
    assert!(has(
        "revenue",
        |v| matches!(v, Value::Decimal(d) if !d.fract().is_zero())
    ));
    assert!(has("parentaccountid", |v| matches!(v, Value::Lookup(_))));
    assert!(has("industrycode", |v| matches!(v, Value::OptionSet(_))));
    assert!(has("createdon", |v| matches!(v, Value::DateTime(_))));

    // Changes on the server: two creates, one update, one delete.
    let entity_name = account.logical_name.clone();
    let created: Vec<RecordId> = (0..2).map(|_| RecordId::new_random()).collect();
    let mut existing = stored.keys().copied();
    let (updated, deleted) = (existing.next().unwrap(), existing.next().unwrap());
    let mut set = WriteSet::new();
    // Money of more digits than a double holds travels exactly.
    for (i, (id, revenue)) in created
        .iter()
        .zip(["1234567.89", "922337203685477.58"])
        .enumerate()
    {
        let record = Record::new(*id)
            .with("name", Value::String(format!("new {i}")))
            .with("revenue", Value::Decimal(Decimal::from_str(revenue).unwrap()));
        set = set.record(entity_name.clone(), record, UpsertMode::CreateOnly);
    }
    let renamed = Record::new(updated).with("name", Value::String("renamed".into()));
    set = set
        .record(entity_name.clone(), renamed, UpsertMode::UpdateOnly)
        .delete(entity_name, vec![deleted], DeleteMode::MustExist);
    s.store.write(set).await.unwrap();

    let (upserts, deletes, _, next_token) = read_all(&c, &account, &[], ReadPosition::Delta(token), 7).await;
    assert_eq!(deletes, vec![deleted]);
    let changed = by_id(upserts);
    let expected: BTreeSet<RecordId> = created.iter().copied().chain([updated]).collect();
    assert_eq!(changed.keys().copied().collect::<BTreeSet<_>>(), expected);
    let now_stored = by_id(s.records(&account).await);
    for (id, record) in &changed {
        assert_eq!(Some(record), now_stored.get(id));
    }
    assert_eq!(
        changed[&updated].get("name"),
        Some(&Value::String("renamed".into()))
    );
    assert_eq!(
        changed[&created[1]].get("revenue"),
        Some(&Value::Decimal(Decimal::from_str("922337203685477.58").unwrap()))
    );

    let (none, gone, pages, _) = read_all(&c, &account, &[], ReadPosition::Delta(next_token), 7).await;
    assert!(none.is_empty() && gone.is_empty() && pages == 1);
}

#[tokio::test]
async fn selected_columns_come_back_with_lookup_targets_from_annotations() {
    let s = TestServer::start().await;
    let c = s.connector();
    let contact = s.entity("contact").await;
    let columns = names(&[
        "fullname",
        "parentcustomerid",
        "birthdate",
        "preferredcontactmethodcode",
    ]);
    let (upserts, _, pages, _) = read_all(&c, &contact, &columns, ReadPosition::Initial, 15).await;
    assert_eq!(pages, 3, "40 contacts in pages of 15");
    let read = by_id(upserts);
    let keep: BTreeSet<&str> = [
        "contactid",
        "fullname",
        "parentcustomerid",
        "birthdate",
        "preferredcontactmethodcode",
    ]
    .into();
    let expected: BTreeMap<RecordId, Record> = by_id(s.records(&contact).await)
        .into_iter()
        .map(|(id, mut r)| {
            r.values.retain(|k, _| keep.contains(k.as_str()));
            (id, r)
        })
        .collect();
    assert_eq!(read, expected);
    assert!(
        read.values().any(
            |r| matches!(r.get("parentcustomerid"), Some(Value::Lookup(l)) if l.entity.as_str() == "account")
        ),
        "a multi-target lookup is typed by the server's annotation"
    );
}

#[tokio::test]
async fn a_token_older_than_the_purged_tombstones_is_expired() {
    let s = TestServer::start().await;
    let c = s.connector();
    let account = s.entity("account").await;
    let (records, _, _, token) = read_all(&c, &account, &[], ReadPosition::Initial, 50).await;
    let victim = records[0].id.unwrap();
    s.store
        .write(WriteSet::new().delete(account.logical_name.clone(), vec![victim], DeleteMode::MustExist))
        .await
        .unwrap();
    s.store
        .purge_tombstones(chrono::Utc::now() + chrono::Duration::seconds(5))
        .await
        .unwrap();
    let err = c
        .changes(&account, &[], &ReadPosition::Delta(token), 50)
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Expired(_)), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn fetch_pages_a_filter_with_the_paging_cookie() {
    let s = TestServer::start().await;
    let c = s.connector();
    let contact = s.entity("contact").await;
    let entities = s.store.entities().await.unwrap();
    let xml = r#"<fetch count="6"><entity name="contact"><attribute name="fullname"/><attribute name="parentcustomerid"/>
        <filter><condition attribute="statecode" operator="eq" value="0"/></filter>
        <order attribute="contactid"/></entity></fetch>"#;
    let mut query = parse_fetchxml(xml, &entities).unwrap();
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = c.fetch(&contact, &query).await.unwrap();
        pages += 1;
        assert!(
            page.records
                .iter()
                .all(|r| r.get("fullname").is_some() && r.get("telephone1").is_none())
        );
        ids.extend(page.records.iter().map(|r| r.id.unwrap()));
        if !page.more {
            break;
        }
        let cookie = page.paging_cookie.expect("a page with more records has a cookie");
        let last = page.records.last().unwrap().id.unwrap();
        assert!(
            cookie.contains(&format!("last=\"{{{last}}}\"")),
            "decoded cookie: {cookie}"
        );
        query.page = Some(query.page.unwrap_or(1) + 1);
        query.paging_cookie = Some(cookie);
    }
    let expected: Vec<RecordId> = s
        .records(&contact)
        .await
        .into_iter()
        .filter(|r| r.get("statecode") == Some(&Value::OptionSet(0)))
        .map(|r| r.id.unwrap())
        .collect();
    assert!(
        expected.len() > 12 && expected.len() < 40,
        "the filter keeps some: {}",
        expected.len()
    );
    assert_eq!(pages, expected.len().div_ceil(6));
    assert_eq!(ids, expected, "every active contact once, in id order");
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized_and_token_sign_in_works() {
    let s = TestServer::start().await;
    let wrong = DataverseConnector::new(s.config("not-the-password")).unwrap();
    let err = wrong.who_am_i().await.unwrap_err();
    assert!(matches!(err, SyncError::Unauthorized(_)), "{err:?}");

    let token = |password: &str| {
        let mut config = s.config(password);
        config.credentials = Credentials::Password {
            user: ADMIN.0.into(),
            password: Secret::new(password),
            client_id: None,
            token_url: None,
        };
        DataverseConnector::new(config).unwrap()
    };
    assert!(
        token(ADMIN.1).who_am_i().await.is_ok(),
        "bearer token from {{url}}/oauth2/token"
    );
    let err = token("nope").who_am_i().await.unwrap_err();
    assert!(matches!(err, SyncError::Unauthorized(_)), "{err:?}");
}

#[tokio::test]
async fn private_urls_are_refused_unless_allowed() {
    let s = TestServer::start().await;
    let mut config = s.config(ADMIN.1);
    config.allow_private_urls = false;
    let err = DataverseConnector::new(config.clone()).unwrap_err();
    assert!(
        matches!(err, SyncError::Invalid(ref m) if m.contains("127.0.0.1")),
        "{err:?}"
    );

    // A name that resolves to loopback is refused when the connection is made.
    let port = s.url.rsplit(':').next().unwrap();
    config.url = format!("http://localhost:{port}/acme");
    let c = DataverseConnector::new(config.clone()).unwrap();
    let err = c.who_am_i().await.unwrap_err();
    assert!(
        matches!(err, SyncError::Invalid(ref m) if m.contains("localhost")),
        "{err:?}"
    );

    config.allow_private_urls = true;
    assert!(DataverseConnector::new(config).unwrap().who_am_i().await.is_ok());
    let dynamics = DataverseConfig::new(
        "ftp://contoso.crm.dynamics.com",
        Backend::Dynamics,
        Credentials::ClientCredentials {
            tenant_id: Some("t".into()),
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            token_url: None,
        },
    );
    assert!(matches!(
        DataverseConnector::new(dynamics),
        Err(SyncError::Invalid(_))
    ));
}

#[tokio::test]
async fn activities_travel_under_activityid_both_ways() {
    let s = TestServer::start().await;
    let call = EntityMetadata::activity("phonecall", "phonecalls", "subject").unwrap();
    s.store
        .apply_metadata(&[crmsync_model::MetadataChange::CreateEntity { entity: call }])
        .await
        .unwrap();
    let c = s.connector();
    // The server's metadata maps back with the activity's own primary id.
    let mapped = c.entities().await.unwrap();
    let call = mapped
        .iter()
        .find(|e| e.logical_name.as_str() == "phonecall")
        .expect("phonecall is mapped")
        .clone();
    assert_eq!(call.primary_id_attribute.as_str(), "activityid");
    assert_eq!(call, s.entity("phonecall").await);

    // Written through $batch (PATCH phonecalls(<id>)), read back through change tracking.
    let ids: Vec<RecordId> = (0..3).map(|_| RecordId::new_random()).collect();
    let writes: Vec<crmsync_sync::ServerWrite> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| crmsync_sync::ServerWrite {
            entity: call.logical_name.clone(),
            id: *id,
            action: crmsync_sync::WriteAction::Upsert,
            values: [(
                AttributeName::parse("subject").unwrap(),
                Value::String(format!("Call {n}")),
            )]
            .into(),
        })
        .collect();
    let answers = c.write(&mapped, &writes, false).await.unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let (upserts, deletes, _, token) = read_all(&c, &call, &[], ReadPosition::Initial, 2).await;
    assert!(deletes.is_empty());
    let read = by_id(upserts);
    assert_eq!(
        read.keys().copied().collect::<BTreeSet<_>>(),
        ids.iter().copied().collect()
    );
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(read[id].get("activityid"), Some(&Value::Guid(*id)));
        assert_eq!(read[id].get("subject"), Some(&Value::String(format!("Call {n}"))));
    }

    // A delete on the server reaches the next delta by its activityid.
    s.store
        .write(WriteSet::new().delete(call.logical_name.clone(), vec![ids[1]], DeleteMode::MustExist))
        .await
        .unwrap();
    let (upserts, deletes, _, _) = read_all(&c, &call, &[], ReadPosition::Delta(token), 10).await;
    assert!(upserts.is_empty());
    assert_eq!(deletes, vec![ids[1]]);
}
