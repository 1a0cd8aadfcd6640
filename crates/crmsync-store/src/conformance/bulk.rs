//! Writes that span many statements: upserts and updates of thousands of rows in one op,
//! lookups of existing records set among created ones, and bulk transactions.

use crmsync_model::{AttributeName, EntityReference, Record, RecordBatch, RecordId, Value};

use crate::conformance::{TestBackend, entity_name, org_with_thing};
use crate::{DeleteMode, StoreError, UpsertMode, WriteSet};

/// Attribute names for a batch's columns.
fn names(list: &[&str]) -> Vec<AttributeName> {
    list.iter().map(|c| AttributeName::parse(c).unwrap()).collect()
}

pub async fn bulk_upsert_spans_many_statements(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let columns = names(&["name", "count", "when", "parentid"]);
    let row = |i: i32| {
        vec![
            Value::String(format!("row {i}")),
            Value::Integer(i % 1000),
            Value::String("2026-01-01T00:00:00Z".into()),
            Value::Null,
        ]
    };
    let ids: Vec<RecordId> = (0..3000).map(|_| RecordId::new_random()).collect();
    let mut batch = RecordBatch::new(columns.clone());
    for (i, id) in ids.iter().enumerate() {
        batch.push(*id, row(i as i32));
    }
    let out = store
        .write(
            WriteSet::new()
                .upsert(entity_name("thing"), batch, UpsertMode::Upsert)
                .counting_created(),
        )
        .await
        .unwrap();
    assert_eq!((out.created, out.updated), (3000, 0));
    assert_eq!((out.first_version, out.last_version), (Some(1), Some(3000)));
    let mut again = RecordBatch::new(columns.clone());
    for id in &ids[..1000] {
        again.push(*id, row(-1));
    }
    for _ in 0..500 {
        again.push(RecordId::new_random(), row(-2));
    }
    let out = store
        .write(
            WriteSet::new()
                .upsert(entity_name("thing"), again, UpsertMode::Upsert)
                .counting_created(),
        )
        .await
        .unwrap();
    assert_eq!((out.created, out.updated), (500, 1000));
    assert_eq!(store.count(&entity_name("thing")).await.unwrap(), 3500);
    let got = store
        .retrieve(&entity_name("thing"), ids[999], None)
        .await
        .unwrap();
    assert_eq!(got.get("count"), Some(&Value::Integer(-1)));
    let got = store
        .retrieve(&entity_name("thing"), ids[1000], None)
        .await
        .unwrap();
    assert_eq!(got.get("count"), Some(&Value::Integer(0)));

    // A value that fails in a late statement of the op: nothing of the op stays.
    let version = store.current_version().await.unwrap();
    let mut late = RecordBatch::new(columns);
    for i in 0..3000 {
        let mut values = row(i);
        if i == 2500 {
            values[1] = Value::Integer(5000);
        }
        late.push(RecordId::new_random(), values);
    }
    let err = store
        .write(
            WriteSet::new()
                .upsert(entity_name("thing"), late, UpsertMode::Upsert)
                .counting_created(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("count") && err.contains("outside"), "{err}");
    assert_eq!(store.count(&entity_name("thing")).await.unwrap(), 3500);
    assert_eq!(store.current_version().await.unwrap(), version);
}

/// Upserts over existing records set their lookups exactly as given: changed, cleared, set,
/// re-targeted or unchanged, in statements that also create records, with an id given twice
/// (its last row wins), and queries through the lookup find them.
pub async fn upserts_set_lookups_of_existing_records(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let columns = names(&["name", "parentid"]);
    let parents: Vec<RecordId> = (0..4).map(|_| RecordId::new_random()).collect();
    let to = |entity: &str, p: usize| {
        Value::Lookup(EntityReference {
            entity: entity_name(entity),
            id: parents[p],
        })
    };
    // Before: none, thing P0 or thing P1, by turns.
    let before = |i: usize| match i % 3 {
        0 => Value::Null,
        1 => to("thing", 0),
        _ => to("thing", 1),
    };
    let ids: Vec<RecordId> = (0..1200).map(|_| RecordId::new_random()).collect();
    let mut batch = RecordBatch::new(columns.clone());
    for (i, id) in ids.iter().enumerate() {
        batch.push(*id, vec![Value::String(format!("row {i}")), before(i)]);
    }
    store
        .write(WriteSet::new().upsert(entity_name("thing"), batch, UpsertMode::Upsert))
        .await
        .unwrap();
    // After: unchanged for even rows; odd rows by turns cleared, moved to P2, re-targeted
    // (other P0) or set to P3.
    let after = |i: usize| match (i % 2, i % 8) {
        (0, _) => before(i),
        (_, 1) => Value::Null,
        (_, 3) => to("thing", 2),
        (_, 5) => to("other", 0),
        _ => to("thing", 3),
    };
    let mut expected: std::collections::HashMap<RecordId, Value> =
        ids.iter().enumerate().map(|(i, id)| (*id, after(i))).collect();
    let mut again = RecordBatch::new(columns.clone());
    let fresh: Vec<RecordId> = (0..300).map(|_| RecordId::new_random()).collect();
    for (i, id) in ids.iter().enumerate() {
        again.push(*id, vec![Value::String(format!("new {i}")), after(i)]);
        if i % 4 == 0 {
            // New records among the existing ones, one of them twice in a row.
            let new = fresh[i / 4];
            again.push(new, vec![Value::String("first".into()), to("thing", 0)]);
            expected.insert(new, to("thing", 0));
            if i == 400 {
                again.push(new, vec![Value::String("second".into()), to("thing", 2)]);
                expected.insert(new, to("thing", 2));
            }
        }
    }
    // An existing record given twice: its last row wins.
    again.push(ids[10], vec![Value::String("again".into()), to("thing", 1)]);
    expected.insert(ids[10], to("thing", 1));
    let rows = again.rows.len() as u64;
    let out = store
        .write(
            WriteSet::new()
                .upsert(entity_name("thing"), again, UpsertMode::Upsert)
                .counting_created(),
        )
        .await
        .unwrap();
    assert_eq!((out.created, out.updated), (300, rows - 300));
    let stored = crate::conformance::query::stored(&*store, "thing").await;
    assert_eq!(stored.len(), 1500);
    for record in &stored {
        let id = record.id.unwrap();
        assert_eq!(record.get("parentid"), expected.get(&id), "{id}");
    }
    let got = store
        .retrieve(&entity_name("thing"), ids[10], None)
        .await
        .unwrap();
    assert_eq!(got.get("name"), Some(&Value::String("again".into())));
    // The lookup's index agrees with the rows.
    let entities = store.entities().await.unwrap();
    for (p, parent) in parents.iter().enumerate() {
        let xml = format!(
            "<fetch><entity name='thing'><filter><condition attribute='parentid' operator='eq' value='{parent}'/></filter></entity></fetch>"
        );
        let query = crmsync_query::parse_fetchxml(&xml, &entities).unwrap();
        let mut found = crate::conformance::query::ids_of(
            &crate::conformance::query::all_rows(&*store, &query, 1000).await,
        );
        found.sort();
        let mut want: Vec<RecordId> = expected
            .iter()
            .filter(|(_, v)| matches!(v, Value::Lookup(r) if r.id == *parent))
            .map(|(id, _)| *id)
            .collect();
        want.sort();
        assert_eq!(found, want, "records under parent {p}");
    }
}

pub async fn bulk_update_spans_many_statements(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let columns = names(&["name", "count"]);
    let ids: Vec<RecordId> = (0..1200).map(|_| RecordId::new_random()).collect();
    let mut batch = RecordBatch::new(columns.clone());
    for (i, id) in ids.iter().enumerate() {
        batch.push(*id, vec![Value::String(format!("row {i}")), Value::Integer(1)]);
    }
    store
        .write(WriteSet::new().upsert(entity_name("thing"), batch, UpsertMode::Upsert))
        .await
        .unwrap();
    let before = store.current_version().await.unwrap();
    // Every record once (nulls among them), then one of them again: applied in batch order.
    let mut update = RecordBatch::new(columns.clone());
    for (i, id) in ids.iter().enumerate() {
        let name = if i % 3 == 0 {
            Value::Null
        } else {
            Value::String(format!("new {i}"))
        };
        update.push(*id, vec![name, Value::Integer(i as i32 % 7)]);
    }
    update.push(ids[5], vec![Value::String("last".into()), Value::Integer(99)]);
    let out = store
        .write(WriteSet::new().upsert(entity_name("thing"), update, UpsertMode::UpdateOnly))
        .await
        .unwrap();
    assert_eq!((out.created, out.updated), (0, 1201));
    assert_eq!(
        (out.first_version, out.last_version),
        (Some(before + 1), Some(before + 1201))
    );
    assert_eq!(store.count(&entity_name("thing")).await.unwrap(), 1200);
    let got = |id| {
        let store = store.clone();
        async move { store.retrieve(&entity_name("thing"), id, None).await.unwrap() }
    };
    let fifth = got(ids[5]).await;
    assert_eq!(fifth.get("name"), Some(&Value::String("last".into())));
    assert_eq!(fifth.get("count"), Some(&Value::Integer(99)));
    assert_eq!(fifth.get("versionnumber"), Some(&Value::BigInt(before + 1201)));
    assert_eq!(got(ids[3]).await.get("name"), Some(&Value::Null));
    assert_eq!(got(ids[1100]).await.get("count"), Some(&Value::Integer(1100 % 7)));

    // One missing record fails the whole set and is named.
    let missing = RecordId::new_random();
    let mut update = RecordBatch::new(columns);
    for id in [ids[0], missing, ids[1]] {
        update.push(id, vec![Value::String("never".into()), Value::Integer(0)]);
    }
    let err = store
        .write(WriteSet::new().upsert(entity_name("thing"), update, UpsertMode::UpdateOnly))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    assert_ne!(
        got(ids[1]).await.get("name"),
        Some(&Value::String("never".into()))
    );
    assert_eq!(store.current_version().await.unwrap(), before + 1201);
}

pub async fn bulk_writes_commit_together_or_not_at_all(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, "acme").await;
    let thing = entity_name("thing");
    let rec = |name: &str| Record::new(RecordId::new_random()).with("name", Value::String(name.into()));
    let (a, b2, c) = (rec("a"), rec("b"), rec("c"));

    // Dropped without a commit: nothing of its sets is stored.
    let mut bulk = store.begin_bulk().await.unwrap();
    bulk.write(WriteSet::new().record(thing.clone(), a.clone(), UpsertMode::Upsert))
        .await
        .unwrap();
    drop(bulk);
    assert_eq!(store.count(&thing).await.unwrap(), 0);

    // Committed: every set, with the state of the last one, and versions in order.
    let mut bulk = store.begin_bulk().await.unwrap();
    let first = bulk
        .write(
            WriteSet::new()
                .record(thing.clone(), a.clone(), UpsertMode::Upsert)
                .counting_created(),
        )
        .await
        .unwrap();
    let second = bulk
        .write(
            WriteSet::new()
                .record(thing.clone(), b2.clone(), UpsertMode::Upsert)
                .delete(thing.clone(), vec![a.id.unwrap()], DeleteMode::MustExist)
                .set_state("token", Some("t1".into())),
        )
        .await
        .unwrap();
    assert_eq!((first.created, second.updated, second.deleted), (1, 1, 1));
    assert!(second.first_version > first.last_version);
    bulk.commit().await.unwrap();
    assert_eq!(store.count(&thing).await.unwrap(), 1);
    assert_eq!(store.state("token").await.unwrap().as_deref(), Some("t1"));

    // A set that fails ends the bulk write; the sets before it are rolled back with it.
    let mut bulk = store.begin_bulk().await.unwrap();
    bulk.write(WriteSet::new().record(thing.clone(), c.clone(), UpsertMode::Upsert))
        .await
        .unwrap();
    let missing = WriteSet::new().delete(thing.clone(), vec![RecordId::new_random()], DeleteMode::MustExist);
    assert!(matches!(bulk.write(missing).await, Err(StoreError::NotFound(_))));
    assert!(bulk.commit().await.is_err());
    assert_eq!(store.count(&thing).await.unwrap(), 1);
    // The org is writable again afterwards.
    store
        .write(WriteSet::new().record(thing.clone(), c, UpsertMode::Upsert))
        .await
        .unwrap();
    assert_eq!(store.count(&thing).await.unwrap(), 2);
}
