//! Organizations, users and applications.

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

pub async fn apps_are_created_found_listed_and_deleted(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    catalog.create_org(&org("acme"), admin()).await.unwrap();
    let (sync, secret) = catalog
        .create_app(&org("acme"), " Sync service ", Role::Admin)
        .await
        .unwrap();
    assert_eq!(sync.name, "Sync service");
    assert_eq!(sync.org, org("acme"));
    assert_eq!(sync.role, Role::Admin);
    let (reader, _) = catalog
        .create_app(&org("acme"), "Reporting", Role::User)
        .await
        .unwrap();
    assert_ne!(sync.client_id, reader.client_id);
    // Another instance on the same storage finds the app exactly as created.
    let other = b.catalog().await;
    let found = other
        .find_app(&org("acme"), sync.client_id)
        .await
        .unwrap()
        .expect("the app exists");
    assert_eq!(found, sync);
    assert!(password::verify(secret.expose(), &found.secret_hash));
    let listed: Vec<(String, Role)> = other
        .list_apps(&org("acme"))
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.name, a.role))
        .collect();
    assert_eq!(
        listed,
        [
            ("Sync service".to_owned(), Role::Admin),
            ("Reporting".to_owned(), Role::User)
        ]
    );
    catalog.delete_app(&org("acme"), sync.client_id).await.unwrap();
    assert!(
        other
            .find_app(&org("acme"), sync.client_id)
            .await
            .unwrap()
            .is_none()
    );
    let err = catalog
        .delete_app(&org("acme"), sync.client_id)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(m) if m.contains(&sync.client_id.to_string())),
        "{err}"
    );
    assert_eq!(catalog.list_apps(&org("acme")).await.unwrap(), [reader]);
    assert!(matches!(
        catalog.create_app(&org("acme"), "  ", Role::User).await,
        Err(StoreError::BadRequest(_))
    ));
}

pub async fn app_secrets_are_stored_only_as_hashes(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    catalog.create_org(&org("acme"), admin()).await.unwrap();
    let (app, secret) = catalog
        .create_app(&org("acme"), "Sync", Role::Admin)
        .await
        .unwrap();
    let (_, second) = catalog
        .create_app(&org("acme"), "Sync", Role::Admin)
        .await
        .unwrap();
    assert_ne!(secret, second, "every app gets its own secret");
    assert!(secret.expose().len() >= 43, "32 random bytes at least");
    let stored = catalog
        .find_app(&org("acme"), app.client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_hash.starts_with("$argon2id$"));
    assert!(!stored.secret_hash.contains(secret.expose()));
    assert!(!password::verify(second.expose(), &stored.secret_hash));
    assert!(!format!("{stored:?}").contains(&stored.secret_hash));
    assert!(!format!("{secret:?}").contains(secret.expose()));
}

pub async fn apps_of_another_org_are_invisible(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    catalog.create_org(&org("acme"), admin()).await.unwrap();
    catalog.create_org(&org("beta"), admin()).await.unwrap();
    let (app, _) = catalog
        .create_app(&org("acme"), "Sync", Role::Admin)
        .await
        .unwrap();
    assert!(
        catalog
            .find_app(&org("beta"), app.client_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(catalog.list_apps(&org("beta")).await.unwrap().is_empty());
    assert!(matches!(
        catalog.delete_app(&org("beta"), app.client_id).await,
        Err(StoreError::NotFound(_))
    ));
    // The failed delete through the other org left the app in place.
    assert!(
        catalog
            .find_app(&org("acme"), app.client_id)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn apps_of_unknown_orgs_are_not_found(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    let err = catalog
        .create_app(&org("nope"), "Sync", Role::User)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(m) if m.contains("nope")),
        "{err}"
    );
    assert!(matches!(
        catalog.list_apps(&org("nope")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        catalog.delete_app(&org("nope"), uuid::Uuid::new_v4()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        catalog
            .find_app(&org("nope"), uuid::Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn deleting_an_org_deletes_its_apps(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    catalog.create_org(&org("acme"), admin()).await.unwrap();
    catalog.create_org(&org("beta"), admin()).await.unwrap();
    let (gone, _) = catalog
        .create_app(&org("acme"), "Sync", Role::Admin)
        .await
        .unwrap();
    let (kept, _) = catalog
        .create_app(&org("beta"), "Sync", Role::Admin)
        .await
        .unwrap();
    catalog.delete_org(&org("acme")).await.unwrap();
    // A new org of the same name does not inherit the old one's apps.
    catalog.create_org(&org("acme"), admin()).await.unwrap();
    assert!(catalog.list_apps(&org("acme")).await.unwrap().is_empty());
    assert!(
        catalog
            .find_app(&org("acme"), gone.client_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(catalog.list_apps(&org("beta")).await.unwrap(), [kept]);
}
