//! Query plans on PostgreSQL (feature `postgres-tests`): with statistics, a filter on a
//! lookup's id uses its index (the plan is what `QueryStore::explain` returns).
#![cfg(feature = "postgres-tests")]

use crate::common;

use chrono::Utc;
use crmsync_model::{
    AttributeMetadata, AttributeName, AttributeType, EntityMetadata, EntityName, EntityReference,
    MetadataChange, OrgName, RecordBatch, RecordId, Value,
};
use crmsync_query::{EvalContext, parse_fetchxml};
use crmsync_store::conformance::TestBackend;
use crmsync_store::{Catalog, NewUser, PageRequest, Role, UpsertMode, WriteSet};
use sqlx::AssertSqlSafe;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_filter_uses_the_lookup_index() {
    let b = common::Postgres::fresh().await;
    let catalog = b.connect().await;
    let name = OrgName::parse("plans").unwrap();
    let admin = NewUser {
        email: "admin@example.com".into(),
        password: "s3cret-passw0rd".into(),
        role: Role::Admin,
    };
    catalog.create_org(&name, admin).await.unwrap();
    let store = catalog.open_org(&name).await.unwrap();
    let contact_name = EntityName::parse("contact").unwrap();
    let contact = EntityMetadata::new("contact", "contacts", "fullname")
        .unwrap()
        .with_attribute(
            AttributeMetadata::new(
                "parentcustomerid",
                AttributeType::Lookup {
                    targets: vec![contact_name.clone()],
                },
            )
            .unwrap(),
        )
        .unwrap();
    store
        .apply_metadata(&[MetadataChange::CreateEntity { entity: contact }])
        .await
        .unwrap();
    let parents: Vec<RecordId> = (0..1000).map(|_| RecordId::new_random()).collect();
    let mut batch = RecordBatch::new(vec![
        AttributeName::parse("fullname").unwrap(),
        AttributeName::parse("parentcustomerid").unwrap(),
    ]);
    for i in 0..20_000 {
        let parent = Value::Lookup(EntityReference {
            entity: contact_name.clone(),
            id: parents[i % parents.len()],
        });
        batch.push(
            RecordId::new_random(),
            vec![Value::String(format!("c{i}")), parent],
        );
    }
    store
        .write(WriteSet::new().upsert(contact_name, batch, UpsertMode::CreateOnly))
        .await
        .unwrap();
    let analyze = format!("ANALYZE \"{}\".\"contact\"", catalog.org_schema(&name));
    sqlx::raw_sql(AssertSqlSafe(analyze))
        .execute(catalog.pool())
        .await
        .unwrap();
    let entities = store.entities().await.unwrap();
    let fetch = format!(
        "<fetch><entity name='contact'><attribute name='fullname'/><filter>\
         <condition attribute='parentcustomerid' operator='eq' value='{}'/></filter></entity></fetch>",
        parents[7]
    );
    let query = parse_fetchxml(&fetch, &entities).unwrap();
    let context = EvalContext::new(Utc::now());
    let plan = store
        .explain(&query, &context, &PageRequest::first(50))
        .await
        .unwrap();
    assert!(plan.contains("ix_contact_parentcustomerid"), "{plan}");
    let page = store
        .query(&query, &context, &PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 20, "every child of the parent");
}
