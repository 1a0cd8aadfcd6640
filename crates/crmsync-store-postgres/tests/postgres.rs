//! Behaviours specific to the PostgreSQL backend (feature `postgres-tests`): the schema
//! layout, and instances sharing one database.
#![cfg(feature = "postgres-tests")]

use crate::common;

use crmsync_model::{EntityMetadata, MetadataChange, OrgName};
use crmsync_store::conformance::TestBackend;
use crmsync_store::{Catalog, NewUser, Role, StoreError};
use crmsync_store_postgres::PgCatalog;

fn org(name: &str) -> OrgName {
    OrgName::parse(name).unwrap()
}

fn admin() -> NewUser {
    NewUser {
        email: "admin@example.com".into(),
        password: "s3cret-passw0rd".into(),
        role: Role::Admin,
    }
}

async fn schema_exists(catalog: &PgCatalog, schema: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(catalog.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_org_lives_in_its_own_schema_created_and_dropped_with_it() {
    let b = common::Postgres::fresh().await;
    let catalog = b.connect().await;
    assert_eq!(catalog.catalog_schema(), format!("{}catalog", b.namespace));
    let schema = catalog.org_schema(&org("my-org"));
    assert_eq!(schema, format!("{}org_my_org", b.namespace));
    catalog.create_org(&org("my-org"), admin()).await.unwrap();
    assert!(schema_exists(&catalog, &schema).await);
    catalog.delete_org(&org("my-org")).await.unwrap();
    assert!(!schema_exists(&catalog, &schema).await);
    assert!(catalog.list_orgs().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_at_once_migrate_the_catalog_once() {
    let b = common::Postgres::fresh().await;
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let (url, namespace) = (b.url.clone(), b.namespace.clone());
            tokio::spawn(async move { PgCatalog::connect(&url, &namespace).await })
        })
        .collect();
    let mut catalogs = Vec::new();
    for s in starts {
        catalogs.push(s.await.unwrap().expect("every instance starts"));
    }
    let statement = format!(
        "SELECT version FROM \"{}\"._schema_version ORDER BY version",
        catalogs[0].catalog_schema()
    );
    let applied: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
        .fetch_all(catalogs[0].pool())
        .await
        .unwrap();
    // Every catalog migration (organizations and users, applications, the work queue, work of
    // orgs yet to be registered), each once.
    assert_eq!(applied, [1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_org_leave_exactly_one() {
    let b = common::Postgres::fresh().await;
    let creates: Vec<_> = (0..4)
        .map(|_| {
            let (url, namespace) = (b.url.clone(), b.namespace.clone());
            tokio::spawn(async move {
                let catalog = PgCatalog::connect(&url, &namespace).await.unwrap();
                catalog.create_org(&org("acme"), admin()).await
            })
        })
        .collect();
    let mut created = 0;
    for c in creates {
        match c.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::Conflict(m)) => assert!(m.contains("acme"), "{m}"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(created, 1);
    let catalog = b.connect().await;
    assert_eq!(catalog.list_users(&org("acme")).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_created_again_is_not_served_from_another_instance_stale_cache() {
    let b = common::Postgres::fresh().await;
    let first = b.connect().await;
    let second = b.connect().await;
    let entity = |name: &str| MetadataChange::CreateEntity {
        entity: EntityMetadata::new(name, &format!("{name}s"), "name").unwrap(),
    };
    first.create_org(&org("acme"), admin()).await.unwrap();
    let stale = second.open_org(&org("acme")).await.unwrap();
    stale.apply_metadata(&[entity("thing")]).await.unwrap();
    assert!(stale.entity("thing").await.is_ok());
    // Deleted and created again elsewhere, with the same metadata version but other entities.
    first.delete_org(&org("acme")).await.unwrap();
    first.create_org(&org("acme"), admin()).await.unwrap();
    let fresh = first.open_org(&org("acme")).await.unwrap();
    fresh.apply_metadata(&[entity("other")]).await.unwrap();
    assert!(matches!(
        stale.entity("thing").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(stale.entity("other").await.is_ok());
}
