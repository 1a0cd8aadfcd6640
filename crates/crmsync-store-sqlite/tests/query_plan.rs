//! Query plans on SQLite: filters on a lookup's id and on the primary id use their indexes
//! (the plan is what `QueryStore::explain` returns, as the benchmark prints it).

use chrono::Utc;
use crmsync_model::{
    AttributeMetadata, AttributeType, EntityMetadata, EntityName, MetadataChange, OrgName, RecordId,
};
use crmsync_query::{EvalContext, parse_fetchxml};
use crmsync_store::{Catalog, NewUser, OrgStore, PageRequest, Role};
use crmsync_store_sqlite::SqliteCatalog;

async fn org_with_contacts(dir: &std::path::Path) -> std::sync::Arc<dyn OrgStore> {
    let catalog = SqliteCatalog::open(dir).await.unwrap();
    let name = OrgName::parse("plans").unwrap();
    let admin = NewUser {
        email: "admin@example.com".into(),
        password: "s3cret-passw0rd".into(),
        role: Role::Admin,
    };
    catalog.create_org(&name, admin).await.unwrap();
    let store = catalog.open_org(&name).await.unwrap();
    let contact = EntityMetadata::new("contact", "contacts", "fullname")
        .unwrap()
        .with_attribute(
            AttributeMetadata::new(
                "parentcustomerid",
                AttributeType::Lookup {
                    targets: vec![EntityName::parse("contact").unwrap()],
                },
            )
            .unwrap(),
        )
        .unwrap();
    store
        .apply_metadata(&[MetadataChange::CreateEntity { entity: contact }])
        .await
        .unwrap();
    store
}

async fn plan(store: &dyn OrgStore, fetch: &str) -> String {
    let entities = store.entities().await.unwrap();
    let query = parse_fetchxml(fetch, &entities).unwrap();
    store
        .explain(&query, &EvalContext::new(Utc::now()), &PageRequest::first(50))
        .await
        .unwrap()
}

#[tokio::test]
async fn lookup_and_primary_id_filters_use_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = org_with_contacts(dir.path()).await;
    let id = RecordId::new_random();
    let by_parent = plan(
        &*store,
        &format!(
            "<fetch><entity name='contact'><attribute name='fullname'/><filter>\
             <condition attribute='parentcustomerid' operator='eq' value='{id}'/></filter></entity></fetch>"
        ),
    )
    .await;
    assert!(
        by_parent.contains("USING INDEX ix_contact_parentcustomerid"),
        "{by_parent}"
    );
    let in_list = plan(
        &*store,
        &format!(
            "<fetch><entity name='contact'><filter><condition attribute='parentcustomerid' operator='in'>\
             <value>{id}</value><value>{}</value></condition></filter></entity></fetch>",
            RecordId::new_random()
        ),
    )
    .await;
    assert!(
        in_list.contains("USING INDEX ix_contact_parentcustomerid"),
        "{in_list}"
    );
    let by_id = plan(
        &*store,
        &format!(
            "<fetch><entity name='contact'><filter><condition attribute='contactid' operator='eq' value='{id}'/></filter></entity></fetch>"
        ),
    )
    .await;
    assert!(
        by_id.contains("SEARCH t0 USING COVERING INDEX sqlite_autoindex_contact_1 (contactid=?)"),
        "{by_id}"
    );
    assert!(!by_id.contains("SCAN"), "{by_id}");
}

#[tokio::test]
async fn inner_link_without_columns_is_an_exists_probe_on_the_lookup_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = org_with_contacts(dir.path()).await;
    let plan = plan(
        &*store,
        "<fetch><entity name='contact'><attribute name='fullname'/>\
         <link-entity name='contact' from='parentcustomerid' to='contactid' alias='child'>\
         <filter><condition attribute='fullname' operator='eq' value='x'/></filter></link-entity></entity></fetch>",
    )
    .await;
    // SQLite runs the EXISTS as a semi-join probing the lookup index once per parent.
    assert!(
        plan.contains("SEARCH t1 EXISTS USING INDEX ix_contact_parentcustomerid"),
        "{plan}"
    );
}
