//! Metadata changes and the tables behind them.

use crmsync_model::{
    AttributeMetadata, AttributeName, AttributeType, EntityMetadata, MetadataChange, OptionMetadata, Record,
    RecordId, Value,
};

use crate::conformance::{TestBackend, entity_name, org, org_with_thing, thing};
use crate::{Change, ChangeCursor, StoreError, UpsertMode, WriteSet};

fn attr(n: &str) -> AttributeName {
    AttributeName::parse(n).unwrap()
}

pub async fn metadata_changes_create_and_alter_tables(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    assert_eq!(store.entity("thing").await.unwrap(), thing());
    let id = RecordId::new_random();
    let rec = Record::new(id).with("name", Value::String("before".into()));
    store
        .write(WriteSet::new().record(entity_name("thing"), rec, UpsertMode::CreateOnly))
        .await
        .unwrap();

    let note = AttributeMetadata::new("note", AttributeType::String { max_length: 10 }).unwrap();
    let owner = AttributeMetadata::new(
        "ownerid",
        AttributeType::Lookup {
            targets: vec![entity_name("thing")],
        },
    )
    .unwrap();
    let other = EntityMetadata::new("other", "others", "title").unwrap();
    store
        .apply_metadata(&[
            MetadataChange::AddAttribute {
                entity: entity_name("thing"),
                attribute: note,
            },
            MetadataChange::AddAttribute {
                entity: entity_name("thing"),
                attribute: owner,
            },
            MetadataChange::WidenAttribute {
                entity: entity_name("thing"),
                attribute: attr("short"),
                max_length: 50,
            },
            MetadataChange::AddOptions {
                entity: entity_name("thing"),
                attribute: attr("kind"),
                options: vec![OptionMetadata::new(3, "Three")],
            },
            MetadataChange::CreateEntity { entity: other },
            MetadataChange::AddLookupTarget {
                entity: entity_name("thing"),
                attribute: attr("ownerid"),
                target: entity_name("other"),
            },
        ])
        .await
        .unwrap();

    let names: Vec<String> = store
        .entities()
        .await
        .unwrap()
        .iter()
        .map(|e| e.logical_name.to_string())
        .collect();
    assert_eq!(names, ["thing", "other"]);
    // The existing record has the new column, empty; the widened and extended attributes take new values.
    let got = store.retrieve(&entity_name("thing"), id, None).await.unwrap();
    assert_eq!(got.get("note"), Some(&Value::Null));
    assert_eq!(got.get("name"), Some(&Value::String("before".into())));
    let update = Record::new(id)
        .with("note", Value::String("ten chars!".into()))
        .with("short", Value::String("now longer than five".into()))
        .with("kind", Value::Integer(3))
        .with(
            "ownerid",
            Value::Lookup(crmsync_model::EntityReference {
                entity: entity_name("other"),
                id,
            }),
        );
    store
        .write(WriteSet::new().record(entity_name("thing"), update, UpsertMode::UpdateOnly))
        .await
        .unwrap();
    let got = store.retrieve(&entity_name("thing"), id, None).await.unwrap();
    assert_eq!(
        got.get("short"),
        Some(&Value::String("now longer than five".into()))
    );
    assert_eq!(got.get("kind"), Some(&Value::OptionSet(3)));
    // The new entity's table works too.
    let rec = Record::new(RecordId::new_random()).with("title", Value::String("x".into()));
    store
        .write(WriteSet::new().record(entity_name("other"), rec, UpsertMode::CreateOnly))
        .await
        .unwrap();
    assert_eq!(store.count(&entity_name("other")).await.unwrap(), 1);
}

pub async fn failed_metadata_change_applies_nothing(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let good = AttributeMetadata::new("note", AttributeType::Memo { max_length: 10 }).unwrap();
    let cases = [
        MetadataChange::CreateEntity { entity: thing() },
        MetadataChange::WidenAttribute {
            entity: entity_name("thing"),
            attribute: attr("short"),
            max_length: 2,
        },
        MetadataChange::WidenAttribute {
            entity: entity_name("thing"),
            attribute: attr("count"),
            max_length: 20,
        },
        MetadataChange::AddOptions {
            entity: entity_name("thing"),
            attribute: attr("kind"),
            options: vec![OptionMetadata::new(1, "Again")],
        },
        MetadataChange::AddAttribute {
            entity: entity_name("nosuch"),
            attribute: AttributeMetadata::new("x", AttributeType::BigInt).unwrap(),
        },
        MetadataChange::CreateEntity {
            entity: EntityMetadata::new("twin", "things", "name").unwrap(),
        },
    ];
    for bad in cases {
        let changes = [
            MetadataChange::AddAttribute {
                entity: entity_name("thing"),
                attribute: good.clone(),
            },
            bad.clone(),
        ];
        let err = store.apply_metadata(&changes).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Invalid(_) | StoreError::Conflict(_) | StoreError::NotFound(_)
            ),
            "{bad:?}: {err}"
        );
        // The first, valid change was rolled back with the failing one.
        assert_eq!(store.entity("thing").await.unwrap(), thing(), "{bad:?}");
    }
    // The table has no leftover column either: adding the attribute now works.
    store
        .apply_metadata(&[MetadataChange::AddAttribute {
            entity: entity_name("thing"),
            attribute: good,
        }])
        .await
        .unwrap();
    assert!(matches!(store.entity("nosuch").await, Err(StoreError::NotFound(m)) if m.contains("nosuch")));
}

pub async fn metadata_change_is_seen_by_another_instance(b: &impl TestBackend) {
    let first = b.catalog().await;
    let store = org_with_thing(&*first, "acme").await;
    let second = b.catalog().await.open_org(&org("acme")).await.unwrap();
    assert_eq!(second.entities().await.unwrap().len(), 1);
    let note = AttributeMetadata::new("note", AttributeType::String { max_length: 10 }).unwrap();
    store
        .apply_metadata(&[MetadataChange::AddAttribute {
            entity: entity_name("thing"),
            attribute: note,
        }])
        .await
        .unwrap();
    // The other instance writes the new attribute without being told about the change.
    let id = RecordId::new_random();
    let rec = Record::new(id).with("note", Value::String("hello".into()));
    second
        .write(WriteSet::new().record(entity_name("thing"), rec, UpsertMode::CreateOnly))
        .await
        .unwrap();
    let got = store.retrieve(&entity_name("thing"), id, None).await.unwrap();
    assert_eq!(got.get("note"), Some(&Value::String("hello".into())));
    // And reads changes with it, though it last read them before the change.
    let page = second
        .changes(&entity_name("thing"), ChangeCursor::start(0), 10)
        .await
        .unwrap();
    let late = Record::new(RecordId::new_random()).with("note", Value::String("late".into()));
    let late_id = late.id.unwrap();
    let size = AttributeMetadata::new("size", AttributeType::Integer { min: 0, max: 9 }).unwrap();
    store
        .apply_metadata(&[MetadataChange::AddAttribute {
            entity: entity_name("thing"),
            attribute: size,
        }])
        .await
        .unwrap();
    store
        .write(WriteSet::new().record(
            entity_name("thing"),
            late.with("size", Value::Integer(7)),
            UpsertMode::CreateOnly,
        ))
        .await
        .unwrap();
    let next = second
        .changes(&entity_name("thing"), page.next, 10)
        .await
        .unwrap();
    let records: Vec<&Record> = next
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(r) => Some(r),
            Change::Delete { .. } => None,
        })
        .collect();
    assert_eq!(records.len(), 1, "{next:?}");
    assert_eq!(records[0].id, Some(late_id));
    assert_eq!(records[0].get("size"), Some(&Value::Integer(7)));
}
