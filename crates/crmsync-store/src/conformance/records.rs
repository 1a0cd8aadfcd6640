//! Typed records: round trips, validation, partial updates, atomic write sets.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use crmsync_model::{
    AttributeMetadata, AttributeName, AttributeType, EntityMetadata, EntityReference, MetadataChange, Record,
    RecordBatch, RecordId, Value,
};
use rust_decimal::Decimal;

use crate::conformance::{TestBackend, admin, entity_name, org, org_with_thing};
use crate::{DeleteMode, ListRequest, StoreError, UpsertMode, WriteSet};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn dec(s: &str) -> Value {
    Value::Decimal(Decimal::from_str(s).unwrap())
}

/// A record with a demanding value for every attribute of `thing`.
pub(crate) fn full_record(id: RecordId) -> Record {
    Record::new(id)
        .with(
            "name",
            Value::String("Ünïcødé 名前 🚀 'quoted' \"double\"".into()),
        )
        .with(
            "memo",
            Value::String("line one\nline two\t\u{1}\u{7f} ".repeat(2000)),
        )
        .with("short", Value::String("abcde".into()))
        .with("count", Value::Integer(-1000))
        .with("big", Value::BigInt(i64::MIN))
        .with("ratio", dec("-12345678901.0123456789"))
        .with("amount", dec("922337203685477.5807"))
        .with("score", Value::Double(0.1 + 0.2))
        .with("flag", Value::Boolean(true))
        .with("when", Value::DateTime(utc("1969-07-20T20:17:40.123456Z")))
        .with("ref", Value::Guid(RecordId::new_random()))
        .with(
            "parentid",
            Value::Lookup(EntityReference {
                entity: entity_name("other"),
                id: RecordId::new_random(),
            }),
        )
        .with("kind", Value::OptionSet(100_000_000))
        .with("statecode", Value::OptionSet(1))
        .with("statuscode", Value::OptionSet(2))
        .with("createdon", Value::DateTime(utc("2001-02-03T04:05:06.789Z")))
}

pub async fn values_of_every_type_round_trip_exactly(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let id = RecordId::new_random();
    let rec = full_record(id);
    let outcome = store
        .write(WriteSet::new().record(entity_name("thing"), rec.clone(), UpsertMode::CreateOnly))
        .await
        .unwrap();
    assert_eq!(outcome.first_version, Some(1));
    let got = store.retrieve(&entity_name("thing"), id, None).await.unwrap();
    assert_eq!(got.id, Some(id));
    for (name, value) in &rec.values {
        assert_eq!(got.values.get(name), Some(value), "attribute {name}");
    }
    assert_eq!(got.get("thingid"), Some(&Value::Guid(id)));
    assert_eq!(got.get("versionnumber"), Some(&Value::BigInt(1)));
    let modified = match got.get("modifiedon") {
        Some(Value::DateTime(d)) => *d,
        other => panic!("modifiedon {other:?}"),
    };
    assert!(
        (Utc::now() - modified).num_seconds().abs() < 60,
        "modifiedon is now: {modified}"
    );
    // Selected columns only.
    let cols = [AttributeName::parse("amount").unwrap()];
    let some = store
        .retrieve(&entity_name("thing"), id, Some(&cols))
        .await
        .unwrap();
    assert_eq!(some.values.len(), 2, "{some:?}");
    assert_eq!(some.get("amount"), rec.get("amount"));
}

pub async fn nulls_round_trip_for_every_type(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let id = RecordId::new_random();
    store
        .write(WriteSet::new().record(entity_name("thing"), full_record(id), UpsertMode::CreateOnly))
        .await
        .unwrap();
    let mut nulls = Record::new(id);
    for a in [
        "name", "memo", "short", "count", "big", "ratio", "amount", "score", "flag", "when", "ref",
        "parentid", "kind",
    ] {
        nulls.set(a, Value::Null);
    }
    store
        .write(WriteSet::new().record(entity_name("thing"), nulls.clone(), UpsertMode::UpdateOnly))
        .await
        .unwrap();
    let got = store.retrieve(&entity_name("thing"), id, None).await.unwrap();
    for (name, value) in &nulls.values {
        assert_eq!(got.values.get(name), Some(value), "attribute {name}");
    }
    assert_eq!(
        got.get("statecode"),
        Some(&Value::OptionSet(1)),
        "untouched attributes keep their value"
    );
}

pub async fn invalid_values_are_refused_and_store_nothing(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("short", Value::String("toolong".into()), "maximum length"),
        ("count", Value::String("12".into()), "expected integer"),
        ("count", Value::Integer(1001), "outside"),
        ("kind", Value::Integer(7), "not a valid option"),
        ("ref", Value::String("not-a-guid".into()), "invalid GUID"),
        ("flag", Value::Integer(1), "expected boolean"),
        ("when", Value::String("31/12/2020".into()), "date/time"),
        ("score", Value::Double(f64::NAN), "finite"),
        ("memo", Value::String("nul \u{0} inside".into()), "U+0000"),
        ("statecode", Value::Null, "required"),
        ("versionnumber", Value::BigInt(5), "read-only"),
        ("thingid", Value::Guid(RecordId::new_random()), "read-only"),
    ];
    for (attribute, value, expected) in cases {
        let good = Record::new(RecordId::new_random()).with("name", Value::String("fine".into()));
        let bad = Record::new(RecordId::new_random()).with(attribute, value);
        let set = WriteSet::new()
            .record(entity_name("thing"), good, UpsertMode::CreateOnly)
            .record(entity_name("thing"), bad, UpsertMode::CreateOnly);
        let err = store.write(set).await.unwrap_err().to_string();
        assert!(
            err.contains(attribute) && err.contains(expected),
            "{attribute}: {err}"
        );
    }
    let mut unknown = RecordBatch::new(vec![AttributeName::parse("nosuch").unwrap()]);
    unknown.push(RecordId::new_random(), vec![Value::Null]);
    let err = store
        .write(WriteSet::new().upsert(entity_name("thing"), unknown, UpsertMode::Upsert))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nosuch"), "{err}");
    let err = store
        .write(WriteSet::new().record(
            entity_name("nothing"),
            Record::new(RecordId::new_random()),
            UpsertMode::Upsert,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(m) if m.contains("nothing")),
        "{err}"
    );
    assert_eq!(store.count(&entity_name("thing")).await.unwrap(), 0);
    assert_eq!(
        store.current_version().await.unwrap(),
        0,
        "failed writes consume no versions"
    );
}

pub async fn partial_update_changes_only_given_attributes(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let id = RecordId::new_random();
    let rec = Record::new(id)
        .with("name", Value::String("A".into()))
        .with("count", Value::Integer(1));
    store
        .write(WriteSet::new().record(entity_name("thing"), rec, UpsertMode::CreateOnly))
        .await
        .unwrap();
    let before = store.retrieve(&entity_name("thing"), id, None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let update = Record::new(id).with("count", Value::Integer(2));
    let outcome = store
        .write(WriteSet::new().record(entity_name("thing"), update, UpsertMode::UpdateOnly))
        .await
        .unwrap();
    assert_eq!(outcome.updated, 1);
    let after = store.retrieve(&entity_name("thing"), id, None).await.unwrap();
    assert_eq!(after.get("name"), Some(&Value::String("A".into())));
    assert_eq!(after.get("count"), Some(&Value::Integer(2)));
    assert_eq!(after.get("createdon"), before.get("createdon"));
    assert_eq!(
        after.get("statecode"),
        Some(&Value::OptionSet(0)),
        "defaults to active"
    );
    assert_eq!(after.get("statuscode"), Some(&Value::OptionSet(1)));
    let (Some(Value::DateTime(m0)), Some(Value::DateTime(m1))) =
        (before.get("modifiedon"), after.get("modifiedon"))
    else {
        panic!("modifiedon missing")
    };
    assert!(m1 > m0, "modifiedon moves forward");
    let (Some(Value::BigInt(v0)), Some(Value::BigInt(v1))) =
        (before.get("versionnumber"), after.get("versionnumber"))
    else {
        panic!("versionnumber missing")
    };
    assert!(v1 > v0);
}

pub async fn create_only_conflicts_and_update_only_requires_existing(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let id = RecordId::new_random();
    let rec = Record::new(id).with("name", Value::String("A".into()));
    store
        .write(WriteSet::new().record(entity_name("thing"), rec.clone(), UpsertMode::CreateOnly))
        .await
        .unwrap();
    let err = store
        .write(WriteSet::new().record(entity_name("thing"), rec, UpsertMode::CreateOnly))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains(&id.to_string())),
        "{err}"
    );
    let missing = RecordId::new_random();
    let rec = Record::new(missing).with("name", Value::String("B".into()));
    let err = store
        .write(WriteSet::new().record(entity_name("thing"), rec, UpsertMode::UpdateOnly))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(m) if m.contains(&missing.to_string())),
        "{err}"
    );
    let err = store
        .retrieve(&entity_name("thing"), missing, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
    assert_eq!(store.count(&entity_name("thing")).await.unwrap(), 1);
}

pub async fn upsert_creates_then_updates_and_counts_them(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let id = RecordId::new_random();
    let rec = Record::new(id).with("name", Value::String("A".into()));
    let first = store
        .write(
            WriteSet::new()
                .record(entity_name("thing"), rec.clone(), UpsertMode::Upsert)
                .counting_created(),
        )
        .await
        .unwrap();
    assert_eq!((first.created, first.updated), (1, 0));
    let again = store
        .write(
            WriteSet::new()
                .record(entity_name("thing"), rec, UpsertMode::Upsert)
                .counting_created(),
        )
        .await
        .unwrap();
    assert_eq!((again.created, again.updated), (0, 1));
    assert!(again.first_version > first.first_version);
}

pub async fn write_sets_are_atomic(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let keep = RecordId::new_random();
    let rec = Record::new(keep).with("name", Value::String("keep".into()));
    store
        .write(WriteSet::new().record(entity_name("thing"), rec, UpsertMode::CreateOnly))
        .await
        .unwrap();
    let version = store.current_version().await.unwrap();
    // A delete, a valid create and an update of a missing record: the last one fails.
    let set = WriteSet::new()
        .delete(entity_name("thing"), vec![keep], DeleteMode::MustExist)
        .record(
            entity_name("thing"),
            Record::new(RecordId::new_random()).with("name", Value::String("new".into())),
            UpsertMode::CreateOnly,
        )
        .record(
            entity_name("thing"),
            Record::new(RecordId::new_random()).with("name", Value::String("x".into())),
            UpsertMode::UpdateOnly,
        )
        .set_state("token", Some("should-not-stick".into()));
    assert!(store.write(set).await.is_err());
    assert_eq!(store.count(&entity_name("thing")).await.unwrap(), 1);
    assert!(store.retrieve(&entity_name("thing"), keep, None).await.is_ok());
    assert_eq!(store.current_version().await.unwrap(), version);
    assert_eq!(store.state("token").await.unwrap(), None);
    let page = store
        .changes(&entity_name("thing"), crate::ChangeCursor::start(version), 10)
        .await
        .unwrap();
    assert!(page.changes.is_empty());
}

pub async fn hostile_values_and_names_are_stored_verbatim(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    catalog.create_org(&org("acme"), admin()).await.unwrap();
    let store = catalog.open_org(&org("acme")).await.unwrap();
    // SQL keywords as entity and attribute names.
    let select = EntityMetadata::new("select", "from", "order")
        .unwrap()
        .with_attribute(AttributeMetadata::new("where", AttributeType::Memo { max_length: 1000 }).unwrap())
        .unwrap()
        .with_attribute(AttributeMetadata::new("group", AttributeType::Integer { min: 0, max: 10 }).unwrap())
        .unwrap();
    store
        .apply_metadata(&[MetadataChange::CreateEntity { entity: select }])
        .await
        .unwrap();
    let hostile = [
        "bob\"e'); DROP TABLE x;--",
        "'; DELETE FROM _org_state; --",
        "Robert'); DROP TABLE \"select\";--",
        "\\' OR 1=1 --",
        "null",
        "日本語テキスト 🎉 Ωμέγα",
        "",
    ];
    let mut ids = Vec::new();
    for h in hostile {
        let id = RecordId::new_random();
        ids.push(id);
        let rec = Record::new(id)
            .with("order", Value::String(h.chars().take(100).collect()))
            .with("where", Value::String(h.into()));
        store
            .write(WriteSet::new().record(entity_name("select"), rec, UpsertMode::CreateOnly))
            .await
            .unwrap();
    }
    for (id, h) in ids.iter().zip(hostile) {
        let got = store.retrieve(&entity_name("select"), *id, None).await.unwrap();
        assert_eq!(got.get("where"), Some(&Value::String(h.into())));
    }
    assert_eq!(
        store.count(&entity_name("select")).await.unwrap(),
        hostile.len() as u64
    );
    assert_eq!(store.current_version().await.unwrap(), hostile.len() as i64);
}

pub async fn list_pages_through_records_by_id(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let mut batch = RecordBatch::new(vec![AttributeName::parse("name").unwrap()]);
    let mut ids: Vec<RecordId> = (0..25).map(|_| RecordId::new_random()).collect();
    for (i, id) in ids.iter().enumerate() {
        batch.push(*id, vec![Value::String(format!("r{i}"))]);
    }
    store
        .write(WriteSet::new().upsert(entity_name("thing"), batch, UpsertMode::Upsert))
        .await
        .unwrap();
    ids.sort();
    let mut seen = Vec::new();
    let mut request = ListRequest {
        columns: Some(vec![AttributeName::parse("name").unwrap()]),
        after: None,
        limit: 10,
    };
    let mut pages = 0;
    loop {
        let page = store.list(&entity_name("thing"), &request).await.unwrap();
        pages += 1;
        seen.extend(page.records.iter().map(|r| r.id.unwrap()));
        match page.next {
            Some(next) => request.after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);
    assert_eq!(store.count(&entity_name("thing")).await.unwrap(), 25);
}

pub async fn state_is_committed_with_records(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    assert_eq!(store.state("token").await.unwrap(), None);
    let rec = Record::new(RecordId::new_random()).with("name", Value::String("A".into()));
    store
        .write(
            WriteSet::new()
                .record(entity_name("thing"), rec, UpsertMode::Upsert)
                .set_state("token", Some("v1".into())),
        )
        .await
        .unwrap();
    assert_eq!(store.state("token").await.unwrap().as_deref(), Some("v1"));
    store
        .write(WriteSet::new().set_state("token", Some("v2".into())))
        .await
        .unwrap();
    assert_eq!(store.state("token").await.unwrap().as_deref(), Some("v2"));
    store
        .write(WriteSet::new().set_state("token", None))
        .await
        .unwrap();
    assert_eq!(store.state("token").await.unwrap(), None);
}

/// A write set that expects a state entry's value applies only while the entry still has it,
/// and then not at all: a read-modify-write cannot overwrite a change made since its read,
/// whichever instance made it.
pub async fn expected_state_guards_the_whole_set(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let thing = entity_name("thing");
    store
        .write(
            WriteSet::new()
                .expect_state("process", None)
                .set_state("process", Some("v1".into())),
        )
        .await
        .unwrap();
    // Another instance changes the entry after this one read "v1".
    let other = b.catalog().await.open_org(&org("acme")).await.unwrap();
    other
        .write(
            WriteSet::new()
                .expect_state("process", Some("v1".into()))
                .set_state("process", Some("v2".into())),
        )
        .await
        .unwrap();
    let rec = Record::new(RecordId::new_random()).with("name", Value::String("A".into()));
    let stale = WriteSet::new()
        .record(thing.clone(), rec, UpsertMode::Upsert)
        .expect_state("process", Some("v1".into()))
        .set_state("process", Some("v1 changed".into()))
        .set_state("history", Some("h".into()));
    let err = store.write(stale).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("process")),
        "{err}"
    );
    assert_eq!(store.state("process").await.unwrap().as_deref(), Some("v2"));
    assert_eq!(store.state("history").await.unwrap(), None, "nothing of the set");
    assert_eq!(store.count(&thing).await.unwrap(), 0, "nothing of the set");
    // A deleted entry is not brought back by a write that read it.
    other
        .write(WriteSet::new().set_state("process", None))
        .await
        .unwrap();
    let err = store
        .write(
            WriteSet::new()
                .expect_state("process", Some("v2".into()))
                .set_state("process", Some("v3".into())),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.state("process").await.unwrap(), None);
}

pub async fn outcomes_count_rows_per_op_and_state_lists_by_prefix(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let (a, b2) = (RecordId::new_random(), RecordId::new_random());
    let rec = |id| Record::new(id).with("name", Value::String("x".into()));
    store
        .write(WriteSet::new().record(entity_name("thing"), rec(a), UpsertMode::Upsert))
        .await
        .unwrap();
    // An upsert of one row, then a delete of one existing and one missing id.
    let set = WriteSet::new()
        .record(entity_name("thing"), rec(b2), UpsertMode::Upsert)
        .delete(
            entity_name("thing"),
            vec![a, RecordId::new_random()],
            DeleteMode::IgnoreMissing,
        );
    assert_eq!(store.write(set).await.unwrap().op_counts, vec![1, 1]);
    // Listing state by prefix, in key order; `%` and `_` are not wildcards.
    let set = WriteSet::new()
        .set_state("log.b", Some("2".into()))
        .set_state("log.a", Some("1".into()))
        .set_state("logXa", Some("x".into()))
        .set_state("lo%.a", Some("y".into()));
    store.write(set).await.unwrap();
    let listed = store.states("log.").await.unwrap();
    assert_eq!(
        listed,
        vec![
            ("log.a".to_string(), "1".to_string()),
            ("log.b".to_string(), "2".to_string())
        ]
    );
    assert_eq!(store.states("lo%").await.unwrap().len(), 1);
    assert_eq!(store.states("").await.unwrap().len(), 4);
}

/// Activities (`task`, `email`, …) are identified by `activityid`, as in Dataverse: records
/// are written, read, listed, changed and deleted under that id.
pub async fn activities_are_kept_under_activityid(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    catalog.create_org(&org("acme"), admin()).await.unwrap();
    let store = catalog.open_org(&org("acme")).await.unwrap();
    let task = EntityMetadata::activity("task", "tasks", "subject").unwrap();
    store
        .apply_metadata(&[MetadataChange::CreateEntity { entity: task }])
        .await
        .unwrap();
    let tasks = entity_name("task");
    assert_eq!(
        store.entity("task").await.unwrap().primary_id_attribute.as_str(),
        "activityid"
    );
    let id = RecordId::new_random();
    let subject = |s: &str| Record::new(id).with("subject", Value::String(s.into()));
    store
        .write(WriteSet::new().record(tasks.clone(), subject("Call back"), UpsertMode::CreateOnly))
        .await
        .unwrap();
    store
        .write(WriteSet::new().record(tasks.clone(), subject("Called"), UpsertMode::UpdateOnly))
        .await
        .unwrap();
    let got = store.retrieve(&tasks, id, None).await.unwrap();
    assert_eq!(got.get("activityid"), Some(&Value::Guid(id)));
    assert_eq!(got.get("subject"), Some(&Value::String("Called".into())));
    let page = store
        .list(
            &tasks,
            &ListRequest {
                columns: None,
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.records.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![Some(id)]
    );
    store
        .write(WriteSet::new().delete(tasks.clone(), vec![id], DeleteMode::MustExist))
        .await
        .unwrap();
    assert!(matches!(
        store.retrieve(&tasks, id, None).await,
        Err(StoreError::NotFound(_))
    ));
}
