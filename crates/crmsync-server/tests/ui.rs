//! The admin UI and the public Connect page over real HTTP: sign-in, CSRF refusal, messages
//! next to the fields of bad forms, registration (open, closed, rate-limited), and the CRM
//! Sync screens driving a client org connected to the server org `acme` of the same server.

use crate::browser;
use crate::common;

use std::time::Duration;

use browser::{Browser, FIELD, connection, html_text, register_field, register_form, start, start_with};
use common::{ACME_ADMIN, ACME_USER};
use crmsync_model::{AttributeMetadata, AttributeType, EntityName, MetadataChange, OrgName};
use crmsync_server::{RateLimit, ServerConfig};
use reqwest::StatusCode;

#[tokio::test]
async fn signing_in_as_an_admin_opens_the_page_asked_for() {
    let s = start().await;
    let mut b = Browser::new(&s);
    let r = b.get("/admin/acme/sync/logs").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let to = r.location.unwrap();
    assert!(
        to.starts_with("/admin/signin?org=acme&next=%2Fadmin%2Facme%2Fsync%2Flogs"),
        "{to}"
    );
    let r = b.sign_in("acme", (ACME_ADMIN.0, "wrong-password")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.field_error("password").unwrap().contains("wrong"), "{}", r.body);
    let r = b
        .submit(
            &to,
            "/admin/signin",
            &[
                ("org", "acme"),
                ("email", ACME_ADMIN.0),
                ("password", ACME_ADMIN.1),
                ("next", "/admin/acme/sync/logs"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location.as_deref(), Some("/admin/acme/sync/logs"));
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let r = b.get("/admin/acme/sync/logs").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("No sync run yet"), "{}", r.body);
    // The session of acme does not open another org's pages.
    let r = b.get("/admin/beta/sync/logs").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Signing out ends the session.
    let r = b.submit("/admin/acme/sync/logs", "/admin/signout", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/admin/acme/sync/logs").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_messages_stand_next_to_their_fields_and_users_without_the_admin_role_are_refused() {
    let s = start().await;
    let mut b = Browser::new(&s);
    let r = b.sign_in("Not An Org!", ("", "")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.field_error("org").is_some(), "{}", r.body);
    assert!(r.field_error("email").unwrap().contains("email"));
    assert!(r.field_error("password").unwrap().contains("password"));
    let r = b.sign_in("acme", ACME_USER).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.field_error("email").unwrap().contains("not an administrator"));
    assert!(!b.cookies.contains_key("crmsync_session"));
}

#[tokio::test]
async fn a_forged_cross_site_post_is_refused_and_changes_nothing() {
    let s = start().await;
    let mut b = register_field(&s).await;
    let before = connection(&s, "field").await.unwrap();
    let acme = format!("{}/acme", s.url);
    let change = [
        ("backend", "crmsync"),
        ("server_url", acme.as_str()),
        ("server_user", ACME_ADMIN.0),
        ("server_password", ACME_ADMIN.1),
    ];
    // The session cookie alone (what a cross-site form would send) is not enough.
    let r = b.post("/admin/field/sync/connector", &change).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut wrong = vec![("_csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")];
    wrong.extend_from_slice(&change);
    assert_eq!(
        b.post("/admin/field/sync/connector", &wrong).await.status,
        StatusCode::FORBIDDEN
    );
    // A valid token from another origin is refused too.
    let token = b.get("/admin/field/sync/connector").await.csrf();
    let r = b
        .client
        .post(format!("{}/admin/field/sync/run", s.url))
        .header("cookie", b.cookie_header())
        .header("origin", "https://evil.example")
        .form(&[("_csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Sign-in and registration forms need their own token as well.
    let mut fresh = Browser::new(&s);
    let r = fresh
        .post(
            "/admin/signin",
            &[
                ("org", "acme"),
                ("email", ACME_ADMIN.0),
                ("password", ACME_ADMIN.1),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = fresh
        .post("/register?otype=connect", &register_form("forged", &acme))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        s.catalog
            .org_info(&OrgName::parse("forged").unwrap())
            .await
            .is_err()
    );
    assert_eq!(connection(&s, "field").await.unwrap(), before);
    assert!(
        crmsync_sync::logs(
            &*s.catalog
                .open_org(&OrgName::parse("field").unwrap())
                .await
                .unwrap(),
            10
        )
        .await
        .unwrap()
        .is_empty()
    );
}

#[tokio::test]
async fn the_connect_page_registers_connects_and_signs_in_on_the_new_org() {
    let s = start().await;
    let mut b = Browser::new(&s);
    let acme = format!("{}/acme", s.url);
    let r = b.get("/register?otype=connect").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Server organization URL"));
    let r = b
        .submit(
            "/register?otype=connect",
            "/register?otype=connect",
            &register_form("field", &acme),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.location.as_deref(),
        Some("/admin/field/sync/connector?notice=registered")
    );
    let r = b.get("/admin/field/sync/connector?notice=registered").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Your organization was created and connected"));
    assert!(r.body.contains(&acme) && r.body.contains(FIELD.0));
    let conn = connection(&s, "field").await.unwrap();
    assert_eq!(conn.server_url, acme);
    assert!(
        conn.settings
            .entities
            .contains(&EntityName::parse("account").unwrap())
    );
    // The new admin signs in with the password chosen on the page.
    assert_eq!(
        Browser::new(&s).sign_in("field", FIELD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        b.get("/Register.aspx?otype=signup").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn connect_page_messages_stand_next_to_their_fields_and_nothing_is_created() {
    let s = start().await;
    let mut b = Browser::new(&s);
    let page = "/Register.aspx?otype=connect";
    let acme = format!("{}/acme", s.url);
    let mut form = register_form("Bad Name", "ftp://x");
    form[3] = ("password_confirm", "something-else");
    form[4] = ("backend", "salesforce");
    form[6] = ("server_user", "");
    let r = b.submit(page, page, &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["org", "password_confirm", "backend", "server_url", "server_user"] {
        assert!(r.field_error(field).is_some(), "{field}: {}", r.body);
    }
    assert!(r.body.contains("value=\"Bad Name\""), "typed values are kept");
    let r = b.submit(page, page, &register_form("acme", &acme)).await;
    assert!(r.field_error("org").unwrap().contains("already exists"));
    let mut wrong_password = register_form("field", &acme);
    wrong_password[7] = ("server_password", "not-the-password");
    let r = b.submit(page, page, &wrong_password).await;
    assert!(
        r.field_error("server_password").unwrap().contains("refused"),
        "{}",
        r.body
    );
    let unreachable = "http://127.0.0.1:9/acme";
    let r = b.submit(page, page, &register_form("field", unreachable)).await;
    assert!(
        r.field_error("server_url").unwrap().contains("cannot be reached"),
        "{}",
        r.body
    );
    assert!(
        s.catalog
            .org_info(&OrgName::parse("field").unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn with_registration_closed_the_connect_page_says_so_and_creates_nothing() {
    let s = start_with(ServerConfig {
        registration_open: false,
        ..ServerConfig::default()
    })
    .await;
    let mut b = Browser::new(&s);
    let r = b.get("/Register.aspx?otype=connect").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Registration is closed"));
    assert!(r.body.contains("does not accept new organizations"));
    let token = b.get("/admin/signin").await.csrf();
    let acme = format!("{}/acme", s.url);
    let mut form = vec![("_csrf", token.as_str())];
    form.extend(register_form("field", &acme));
    let r = b.post("/Register.aspx?otype=connect", &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        s.catalog
            .org_info(&OrgName::parse("field").unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn registration_attempts_are_rate_limited_per_client_address() {
    let s = start_with(ServerConfig {
        registration_limit: RateLimit {
            attempts: 2,
            window: Duration::from_secs(600),
        },
        ..ServerConfig::default()
    })
    .await;
    let mut b = Browser::new(&s);
    let page = "/register?otype=connect";
    let bad = register_form("x", "");
    for _ in 0..2 {
        assert_eq!(
            b.submit(page, page, &bad).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let acme = format!("{}/acme", s.url);
    let r = b.submit(page, page, &register_form("field", &acme)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key("retry-after"));
    assert!(r.body.contains("Try again in 10 minute(s)"), "{}", r.body);
    assert!(
        s.catalog
            .org_info(&OrgName::parse("field").unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_client_address_with_a_clear_message() {
    let s = start_with(ServerConfig {
        signin_limit: RateLimit {
            attempts: 2,
            window: Duration::from_secs(300),
        },
        ..ServerConfig::default()
    })
    .await;
    let mut b = Browser::new(&s);
    for _ in 0..2 {
        let r = b.sign_in("acme", (ACME_ADMIN.0, "guess")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Over the limit even the right password is not checked.
    let r = b.sign_in("acme", ACME_ADMIN).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 240 && retry_after <= 300, "{retry_after}");
    assert!(
        r.body
            .contains("Too many sign-in attempts from this address. Try again in 5 minute(s)"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("value=\"admin@acme.example\""),
        "the email is kept"
    );
    assert!(!b.cookies.contains_key("crmsync_session"));
    assert_eq!(b.get("/admin/acme/sync/logs").await.status, StatusCode::SEE_OTHER);
    // The Connect page counts its own attempts.
    let page = "/register?otype=connect";
    assert_eq!(
        b.submit(page, page, &register_form("x", "")).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn the_connector_shows_connect_errors_next_to_their_fields_and_keeps_the_connection() {
    let s = start().await;
    let mut b = register_field(&s).await;
    let before = connection(&s, "field").await.unwrap();
    let page = "/admin/field/sync/connector";
    let r = b
        .submit(
            page,
            page,
            &[("backend", "x"), ("server_url", ""), ("server_user", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["backend", "server_url", "server_user"] {
        assert!(r.field_error(field).is_some(), "{field}");
    }
    assert!(
        r.field_error("server_password").is_none(),
        "a blank password keeps the stored one"
    );
    let acme = format!("{}/acme", s.url);
    let r = b
        .submit(
            page,
            page,
            &[
                ("backend", "crmsync"),
                ("server_url", &acme),
                ("server_user", ACME_ADMIN.0),
                ("server_password", "wrong"),
            ],
        )
        .await;
    assert!(r.field_error("server_password").unwrap().contains("refused"));
    assert_eq!(connection(&s, "field").await.unwrap(), before);
    // Reconnecting with the stored password keeps the entities and filters.
    let r = b
        .submit(
            page,
            page,
            &[
                ("backend", "crmsync"),
                ("server_url", &acme),
                ("server_user", ACME_ADMIN.0),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let after = connection(&s, "field").await.unwrap();
    assert_eq!(after.settings, before.settings);
    assert!(after.connected_on > before.connected_on);
}

fn account_filter(value: &str) -> Vec<(&str, &str)> {
    vec![
        ("action", "save"),
        ("r.type", "and"),
        ("r.0.kind", "cond"),
        ("r.0.attr", "statecode"),
        ("r.0.op", "eq"),
        ("r.0.v", "0"),
        ("r.1.kind", "group"),
        ("r.1.type", "or"),
        ("r.1.0.kind", "cond"),
        ("r.1.0.attr", "numberofemployees"),
        ("r.1.0.op", "gt"),
        ("r.1.0.v", value),
        ("r.1.1.kind", "cond"),
        ("r.1.1.attr", "name"),
        ("r.1.1.op", "begins-with"),
        ("r.1.1.v", "A"),
    ]
}

#[tokio::test]
async fn the_filter_editor_checks_each_condition_and_saves_valid_filters() {
    let s = start().await;
    let mut b = register_field(&s).await;
    let page = "/admin/field/sync/entities/account/filter";
    let r = b.get(page).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("No filter is saved"));
    // Editing actions re-render without saving.
    let r = b.submit(page, page, &[("action", "add-cond:r")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("name=\"r.0.attr\""));
    let r = b.submit(page, page, &account_filter("many")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = r.field_error("r-1-0").expect("a message on the bad condition");
    assert!(
        message.contains("numberofemployees") && message.contains("many"),
        "{message}"
    );
    assert!(r.field_error("r-0").is_none() && r.field_error("r-1-1").is_none());
    assert!(connection(&s, "field").await.unwrap().settings.filters.is_empty());
    let r = b.submit(page, page, &account_filter("100")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let conn = connection(&s, "field").await.unwrap();
    let xml = &conn.settings.filters[&EntityName::parse("account").unwrap()];
    assert_eq!(
        xml,
        r#"<fetch><entity name="account"><filter type="and"><condition attribute="statecode" operator="eq" value="0"/><filter type="or"><condition attribute="numberofemployees" operator="gt" value="100"/><condition attribute="name" operator="begins-with" value="A"/></filter></filter></entity></fetch>"#
    );
    let r = b.get(page).await;
    assert!(r.body.contains("A filter is saved") && r.body.contains("numberofemployees"));
    // Raw FetchXML: bad XML gets a message next to the text box; good XML is saved as typed.
    let r = b
        .submit(
            page,
            page,
            &[
                ("action", "xml-save"),
                ("xml", "<fetch><entity name=\"account\">"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.field_error("xml").is_some(), "{}", r.body);
    let linked = r#"<fetch><entity name="contact"><link-entity name="account" from="accountid" to="parentcustomerid" link-type="inner"><filter type="and"><condition attribute="statecode" operator="eq" value="0"/></filter></link-entity></entity></fetch>"#;
    let r = b
        .submit(page, page, &[("action", "xml-save"), ("xml", linked)])
        .await;
    assert!(
        r.field_error("xml").unwrap().contains("contact"),
        "another entity's filter is refused"
    );
    let contact = "/admin/field/sync/entities/contact/filter";
    let r = b
        .submit(contact, contact, &[("action", "xml-save"), ("xml", linked)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = b.get(contact).await;
    assert!(
        r.body.contains("name=\"l0.link\"") && r.body.contains("value=\"parentcustomerid:account\" selected")
    );
    let r = b.submit(contact, contact, &[("action", "clear")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(connection(&s, "field").await.unwrap().settings.filters.len(), 1);
}

#[tokio::test]
async fn entities_are_enabled_and_disabled_page_by_page() {
    let s = start().await;
    let mut b = register_field(&s).await;
    let page = "/admin/field/sync/entities";
    let r = b.get(page).await;
    assert!(
        r.body.contains("value=\"contact\" id=\"en-contact\" checked"),
        "{}",
        r.body
    );
    let r = b
        .submit(
            page,
            page,
            &[("shown", "account"), ("shown", "contact"), ("entity", "account")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let entities = connection(&s, "field").await.unwrap().settings.entities;
    assert!(entities.contains(&EntityName::parse("account").unwrap()));
    assert!(!entities.contains(&EntityName::parse("contact").unwrap()));
    let r = b
        .submit(
            page,
            page,
            &[("shown", "nosuchentity"), ("entity", "nosuchentity")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("nosuchentity"), "{}", r.body);
}

#[tokio::test]
async fn update_metadata_previews_the_diff_then_applies_it() {
    let s = start().await;
    let mut b = register_field(&s).await;
    let r = b.get("/admin/field/sync/metadata").await;
    assert!(r.body.contains("matches the server"), "{}", r.body);
    let acme = s
        .catalog
        .open_org(&OrgName::parse("acme").unwrap())
        .await
        .unwrap();
    acme.apply_metadata(&[MetadataChange::AddAttribute {
        entity: EntityName::parse("account").unwrap(),
        attribute: AttributeMetadata::new("new_region", AttributeType::String { max_length: 50 }).unwrap(),
    }])
    .await
    .unwrap();
    let r = b.get("/admin/field/sync/metadata").await;
    assert!(r.body.contains("add attribute account.new_region"), "{}", r.body);
    let field = s
        .catalog
        .open_org(&OrgName::parse("field").unwrap())
        .await
        .unwrap();
    let has_region = |entities: Vec<crmsync_model::EntityMetadata>| {
        entities
            .iter()
            .any(|e| e.logical_name.as_str() == "account" && e.attribute("new_region").is_some())
    };
    assert!(
        !has_region(field.entities().await.unwrap()),
        "a preview applies nothing"
    );
    let r = b
        .submit("/admin/field/sync/metadata", "/admin/field/sync/metadata", &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(has_region(field.entities().await.unwrap()));
    let r = b.get("/admin/field/sync/metadata?notice=metadata-applied").await;
    assert!(r.body.contains("was applied") && r.body.contains("matches the server"));
}

#[tokio::test]
async fn sync_all_shows_progress_until_done_and_the_run_is_in_the_logs() {
    let s = start().await;
    let mut b = register_field(&s).await;
    let r = b
        .submit("/admin/field/sync/run", "/admin/field/sync/run", &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let job = r.location.unwrap();
    let r = b.get(&job).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut panel = String::new();
    for _ in 0..200 {
        panel = b.get(&format!("{job}/progress")).await.body;
        if panel.contains("Sync finished") {
            break;
        }
        assert!(
            panel.contains("hx-trigger=\"every 1s\""),
            "a running job polls: {panel}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        panel.contains("Succeeded") && !panel.contains("hx-trigger"),
        "{panel}"
    );
    let at = panel.find("/admin/field/sync/logs/").unwrap();
    let run = &panel[at..at + panel[at..].find('"').unwrap()];
    let r = b.get("/admin/field/sync/logs").await;
    assert!(r.body.contains(run) && r.body.contains("Sync All"), "{}", r.body);
    let r = b.get("/admin/field/sync/logs?status=failed").await;
    assert!(!r.body.contains(run) && r.body.contains("No sync run with this status"));
    let r = b.get(run).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("<code>account</code>") && r.body.contains("Succeeded"));
    assert_eq!(
        b.get("/admin/field/sync/logs/00000000-0000-0000-0000-000000000000")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn connects_from_the_ui_are_work_items_and_a_busy_org_is_said_so_at_once() {
    use crmsync_store::{Lease, NewWork, WorkStatus};
    let s = start().await;
    let mut b = register_field(&s).await;
    let field = OrgName::parse("field").unwrap();
    let work = s.catalog.work();
    let items = work.list_work(&field, 10).await.unwrap();
    assert_eq!(items.len(), 1, "the registration is a connect item");
    assert_eq!(
        (items[0].kind.as_str(), items[0].status, items[0].attempts),
        ("connect", WorkStatus::Succeeded, 1)
    );
    assert!(
        !items[0].payload.to_string().contains(ACME_ADMIN.1)
            && !items[0].payload.to_string().contains(FIELD.1),
        "passwords sealed: {}",
        items[0].payload
    );
    assert_eq!(
        items[0].result.as_ref().unwrap()["entities"][0],
        "account",
        "{:?}",
        items[0].result
    );

    // Another instance runs a sync of `field`: Connect says so at once and changes nothing.
    let before = connection(&s, "field").await.unwrap();
    let now = chrono::Utc::now();
    let held = work
        .start(
            NewWork {
                org: field.clone(),
                kind: "sync".into(),
                payload: serde_json::json!({"entities": [], "full": false, "trigger": "webservice"}),
                due: now,
                for_new_org: false,
            },
            &Lease {
                owner: "serve-b",
                now,
                until: now + chrono::Duration::seconds(60),
            },
        )
        .await
        .unwrap();
    let page = "/admin/field/sync/connector";
    let acme = format!("{}/acme", s.url);
    let reconnect = [
        ("backend", "crmsync"),
        ("server_url", acme.as_str()),
        ("server_user", ACME_ADMIN.0),
    ];
    let started = std::time::Instant::now();
    let r = b.submit(page, page, &reconnect).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(5), "not waited for");
    assert!(
        html_text(&r.body).contains("'field' is busy with a run of sync on instance 'serve-b'"),
        "{}",
        r.body
    );
    assert_eq!(connection(&s, "field").await.unwrap(), before);
    assert_eq!(work.list_work(&field, 10).await.unwrap().len(), 2);

    work.complete(
        held.id,
        "serve-b",
        WorkStatus::Succeeded,
        &serde_json::json!({}),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let r = b.submit(page, page, &reconnect).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let items = work.list_work(&field, 10).await.unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(
        (items[0].kind.as_str(), items[0].status),
        ("connect", WorkStatus::Succeeded)
    );
    assert_eq!(items[0].lease_owner, items[2].lease_owner, "run by this instance");
}
