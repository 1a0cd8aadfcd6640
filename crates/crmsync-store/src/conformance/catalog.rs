//! Organizations and users.

use crate::conformance::{TestBackend, admin, org, org_with_thing};
use crate::{NewUser, Role, StoreError, password};

pub async fn catalog_creates_lists_and_deletes_orgs(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    assert!(catalog.list_orgs().await.unwrap().is_empty());
    catalog.create_org(&org("beta"), admin()).await.unwrap();
    let acme = catalog.create_org(&org("acme"), admin()).await.unwrap();
    assert_eq!(acme.name, org("acme"));
    let names: Vec<String> = catalog
        .list_orgs()
        .await
        .unwrap()
        .iter()
        .map(|o| o.name.to_string())
        .collect();
    assert_eq!(names, ["acme", "beta"]);
    catalog.delete_org(&org("acme")).await.unwrap();
    let names: Vec<String> = catalog
        .list_orgs()
        .await
        .unwrap()
        .iter()
        .map(|o| o.name.to_string())
        .collect();
    assert_eq!(names, ["beta"]);
    assert!(matches!(
        catalog.open_org(&org("acme")).await,
        Err(StoreError::NotFound(_))
    ));
    // The name is free again, and the new org starts empty.
    let store = org_with_thing(&*catalog, "acme").await;
    assert_eq!(store.current_version().await.unwrap(), 0);
}

pub async fn org_names_are_unique_and_missing_orgs_are_not_found(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    catalog.create_org(&org("acme"), admin()).await.unwrap();
    let err = catalog.create_org(&org("acme"), admin()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("acme")),
        "{err}"
    );
    let err = catalog.org_info(&org("nope")).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(m) if m.contains("nope")),
        "{err}"
    );
    assert!(matches!(
        catalog.delete_org(&org("nope")).await,
        Err(StoreError::NotFound(_))
    ));
    // Another instance on the same storage sees the org.
    let other = b.catalog().await;
    assert_eq!(other.org_info(&org("acme")).await.unwrap().name, org("acme"));
}

pub async fn users_are_unique_per_org_case_insensitively(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    catalog.create_org(&org("acme"), admin()).await.unwrap();
    catalog.create_org(&org("beta"), admin()).await.unwrap();
    let found = catalog
        .find_user(&org("acme"), "ADMIN@example.COM")
        .await
        .unwrap()
        .expect("admin exists");
    assert_eq!(found.email, "admin@example.com");
    assert_eq!(found.role, Role::Admin);
    assert!(password::verify("s3cret-passw0rd", &found.password_hash));
    assert!(!found.password_hash.contains("s3cret"));
    let dup = NewUser {
        email: "admin@EXAMPLE.com".into(),
        password: "another-passw0rd".into(),
        role: Role::User,
    };
    assert!(matches!(
        catalog.create_user(&org("acme"), dup).await,
        Err(StoreError::Conflict(_))
    ));
    let user = NewUser {
        email: "field@example.com".into(),
        password: "field-passw0rd".into(),
        role: Role::User,
    };
    catalog.create_user(&org("acme"), user).await.unwrap();
    let emails: Vec<String> = catalog
        .list_users(&org("acme"))
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(emails, ["admin@example.com", "field@example.com"]);
    // Users of one org are not users of another.
    assert!(
        catalog
            .find_user(&org("beta"), "field@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn bad_user_input_is_refused(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let short = NewUser {
        password: "short".into(),
        ..admin()
    };
    assert!(matches!(
        catalog.create_org(&org("acme"), short).await,
        Err(StoreError::BadRequest(_))
    ));
    let bad_email = NewUser {
        email: "not an email".into(),
        ..admin()
    };
    let err = catalog.create_org(&org("acme"), bad_email).await.unwrap_err();
    assert!(err.to_string().contains("not an email"), "{err}");
    // Neither attempt left an org behind.
    assert!(catalog.list_orgs().await.unwrap().is_empty());
    let user = NewUser {
        email: "x@example.com".into(),
        password: "long-enough".into(),
        role: Role::User,
    };
    assert!(matches!(
        catalog.create_user(&org("nope"), user).await,
        Err(StoreError::NotFound(_))
    ));
}
