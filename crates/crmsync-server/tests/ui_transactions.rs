//! The Offline transactions tab over real HTTP: a client org `field` connected (through the
//! Connect page) to the server org `acme` of the same server, with Write offline turned on in
//! the Connector settings. Offline changes made through the Web API show up Pending, a Sync
//! All processes them, an update of a record deleted on the server goes to Error with its
//! message, and the administrator's transitions and their refusals work from the page.

use crate::browser;
use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use browser::{Browser, FIELD, register_field, start};
use common::{ACME_ADMIN, TestServer, json};
use crmsync_model::{AttributeName, EntityName, OrgName, RecordId, Value};
use crmsync_sync::transactions::{self, ClientChange, Operation, TxStatus};
use reqwest::{Method, StatusCode};
use serde_json::json;

const TAB: &str = "/admin/field/sync/transactions";

/// A row of the table as the page shows it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: String,
    record: String,
    status: String,
    /// The row's HTML.
    html: String,
}

fn rows(body: &str) -> Vec<Row> {
    let attr = |html: &str, name: &str| {
        let marker = format!("{name}=\"");
        let at = html.find(&marker).unwrap() + marker.len();
        html[at..at + html[at..].find('"').unwrap()].to_owned()
    };
    body.split("<tr id=\"tx-")
        .skip(1)
        .map(|chunk| {
            let html = &chunk[..chunk.find("</tr>").unwrap()];
            Row {
                id: html[..html.find('"').unwrap()].to_owned(),
                record: attr(html, "data-record"),
                status: attr(html, "data-status"),
                html: html.to_owned(),
            }
        })
        .collect()
}

/// The count shown on the tab `label`.
fn tab_count(body: &str, label: &str) -> u64 {
    let marker = format!(">{label} <span class=\"count\">");
    let at = body.find(&marker).unwrap_or_else(|| panic!("no tab {label}")) + marker.len();
    body[at..at + body[at..].find('<').unwrap()].parse().unwrap()
}

/// The message shown above the table.
fn refusal(body: &str) -> String {
    let marker = "id=\"tx-error\">";
    let at = body.find(marker).expect("a message above the table") + marker.len();
    browser::html_text(&body[at..at + body[at..].find("</p>").unwrap()])
}

async fn sync_all(b: &mut Browser) {
    let r = b
        .submit("/admin/field/sync/run", "/admin/field/sync/run", &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let job = r.location.unwrap();
    for _ in 0..400 {
        let panel = b.get(&format!("{job}/progress")).await.body;
        if panel.contains("Sync finished") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sync did not finish");
}

async fn account_ids(s: &TestServer, n: usize) -> Vec<String> {
    let r = s
        .get(
            "acme",
            &format!("accounts?$select=accountid&$top={n}"),
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap();
    json(r).await["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["accountid"].as_str().unwrap().to_owned())
        .collect()
}

async fn rename(s: &TestServer, org: &str, who: (&str, &str), id: &str, name: &str) -> StatusCode {
    s.send(Method::PATCH, org, &format!("accounts({id})"), who)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap()
        .status()
}

/// `field` registered, synced once, and Write offline turned on in the Connector settings.
async fn offline_field(s: &TestServer) -> Browser {
    let mut b = register_field(s).await;
    sync_all(&mut b).await;
    let r = b
        .submit(
            "/admin/field/sync/connector",
            "/admin/field/sync/settings",
            &[("write_offline", "true"), ("conflict_policy", "ClientWins")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = b.get("/admin/field/sync/connector").await;
    assert!(
        r.body
            .contains("id=\"f-write_offline\" name=\"write_offline\" value=\"true\" checked")
    );
    b
}

/// Posts the toolbar form of the tab `status` with `action` and the ids checked.
async fn act(b: &mut Browser, status: &str, action: &str, ids: &[&str]) -> browser::Page {
    let mut form = vec![("status", status), ("page", "1"), ("action", action)];
    form.extend(ids.iter().map(|id| ("id", *id)));
    b.submit(&format!("{TAB}?status={status}"), TAB, &form).await
}

async fn status_of(b: &mut Browser, id: &str) -> String {
    let all = rows(&b.get(TAB).await.body);
    all.into_iter().find(|r| r.id == id).unwrap().status
}

#[tokio::test]
async fn offline_changes_show_pending_then_processed_and_a_deleted_record_shows_its_error() {
    let s = start().await;
    let mut b = offline_field(&s).await;
    let ids = account_ids(&s, 2).await;
    let (kept, deleted) = (ids[0].as_str(), ids[1].as_str());
    assert_eq!(
        rename(&s, "field", FIELD, kept, "Renamed offline").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        rename(&s, "field", FIELD, deleted, "Doomed").await,
        StatusCode::NO_CONTENT
    );

    let r = b.get(TAB).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("aria-current=\"page\">Offline transactions</a>"),
        "in the navigation"
    );
    let listed = rows(&r.body);
    assert_eq!(
        listed
            .iter()
            .map(|r| (r.record.as_str(), r.status.as_str()))
            .collect::<Vec<_>>(),
        [(kept, "Pending"), (deleted, "Pending")],
        "queue order"
    );
    assert!(
        listed[0].html.contains("name = &#34;Renamed offline&#34;"),
        "{}",
        listed[0].html
    );
    assert!(
        listed[0]
            .html
            .contains("<span class=\"op\">Update</span> <code>account</code>")
    );
    assert_eq!((tab_count(&r.body, "All"), tab_count(&r.body, "Pending")), (2, 2));

    let gone = s
        .send(
            Method::DELETE,
            "acme",
            &format!("accounts({deleted})"),
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    sync_all(&mut b).await;

    let r = b.get(&format!("{TAB}?status=processed")).await;
    let processed = rows(&r.body);
    assert_eq!(processed.len(), 1);
    assert_eq!(processed[0].record, kept);
    assert!(
        !processed[0].html.contains("type=\"checkbox\""),
        "Processed is final"
    );
    let r = b.get(&format!("{TAB}?status=error")).await;
    let failed = rows(&r.body);
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].record.as_str(), failed[0].status.as_str()),
        (deleted, "Error")
    );
    assert!(
        failed[0]
            .html
            .contains("<td class=\"error-text\">deleted on the server</td>"),
        "{}",
        failed[0].html
    );
    let r = b.get(&format!("{TAB}?status=pending")).await;
    assert!(rows(&r.body).is_empty() && r.body.contains("No offline transaction with this status."));
    assert_eq!(
        (
            tab_count(&r.body, "All"),
            tab_count(&r.body, "Pending"),
            tab_count(&r.body, "Processed"),
            tab_count(&r.body, "Error"),
            tab_count(&r.body, "Archived")
        ),
        (2, 0, 1, 1, 0)
    );
}

/// `field` with one Processed transaction and one in Error; returns their transaction ids.
async fn processed_and_error(s: &TestServer, b: &mut Browser) -> (String, String) {
    let ids = account_ids(s, 2).await;
    rename(s, "field", FIELD, &ids[0], "Fine").await;
    rename(s, "field", FIELD, &ids[1], "Too late").await;
    s.send(
        Method::DELETE,
        "acme",
        &format!("accounts({})", ids[1]),
        ACME_ADMIN,
    )
    .send()
    .await
    .unwrap();
    sync_all(b).await;
    let all = rows(&b.get(TAB).await.body);
    let find = |status: &str| all.iter().find(|r| r.status == status).unwrap().id.clone();
    (find("Processed"), find("Error"))
}

#[tokio::test]
async fn set_to_pending_archived_and_all_to_pending_move_the_selected_transactions() {
    let s = start().await;
    let mut b = offline_field(&s).await;
    let (_, failed) = processed_and_error(&s, &mut b).await;

    let r = act(&mut b, "error", "archive", &[&failed]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.location.unwrap();
    assert_eq!(to, format!("{TAB}?status=error&notice=archived"));
    let r = b.get(&to).await;
    assert!(r.body.contains("were archived") && rows(&r.body).is_empty());
    assert_eq!(status_of(&mut b, &failed).await, "Archived");

    let r = act(&mut b, "archived", "pending", &[&failed]).await;
    assert_eq!(
        r.location.unwrap(),
        format!("{TAB}?status=archived&notice=set-pending")
    );
    assert_eq!(status_of(&mut b, &failed).await, "Pending");

    sync_all(&mut b).await;
    assert_eq!(
        status_of(&mut b, &failed).await,
        "Error",
        "still deleted on the server"
    );
    let r = act(&mut b, "all", "all-pending", &[]).await;
    assert_eq!(
        r.location.unwrap(),
        format!("{TAB}?status=all&notice=all-pending")
    );
    assert_eq!(status_of(&mut b, &failed).await, "Pending");
    let r = act(&mut b, "all", "all-pending", &[]).await;
    let r = b.get(&r.location.unwrap()).await;
    assert!(
        r.body
            .contains("No transaction is in Error: nothing was changed."),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn refusals_are_shown_above_the_table_and_change_nothing() {
    let s = start().await;
    let mut b = offline_field(&s).await;
    let (done, failed) = processed_and_error(&s, &mut b).await;

    let r = act(&mut b, "all", "pending", &[&failed, &done]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let message = refusal(&r.body);
    assert!(
        message.starts_with("Nothing was changed") && message.contains("Processed is final"),
        "{message}"
    );
    assert!(
        r.body.contains(&format!("id=\"sel-{failed}\" checked")),
        "the selection is kept"
    );
    assert_eq!(status_of(&mut b, &failed).await, "Error", "all or none");
    assert_eq!(status_of(&mut b, &done).await, "Processed");

    let r = act(&mut b, "all", "archive", &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refusal(&r.body).contains("select the transactions to set to Archived first"));

    let unknown = RecordId::new_random().to_string();
    let r = act(&mut b, "error", "archive", &[&failed, &unknown]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(refusal(&r.body).contains(&format!("transaction {unknown} was not found")));
    assert!(
        r.body.contains("aria-current=\"page\">Error <span"),
        "the same tab"
    );
    let r = act(&mut b, "all", "archive", &["not-an-id"]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refusal(&r.body).contains("'not-an-id' is not a transaction id"));
    let r = act(&mut b, "all", "delete", &[&failed]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status_of(&mut b, &failed).await, "Error");
}

#[tokio::test]
async fn a_forged_post_is_refused_and_changes_nothing() {
    let s = start().await;
    let mut b = offline_field(&s).await;
    let (_, failed) = processed_and_error(&s, &mut b).await;
    let form = [("status", "all"), ("action", "archive"), ("id", failed.as_str())];
    let r = b.post(TAB, &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no token");
    let token = b.get(TAB).await.csrf();
    let r = b
        .client
        .post(format!("{}{TAB}", b.base))
        .header("cookie", b.cookie_header())
        .header("origin", "https://evil.example")
        .form(&[("_csrf", token.as_str()), ("action", "all-pending")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "cross-site");
    let mut stranger = Browser::new(&s);
    let r = stranger.post(TAB, &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "not signed in");
    assert_eq!(
        stranger.get(TAB).await.status,
        StatusCode::SEE_OTHER,
        "sign in first"
    );
    assert_eq!(status_of(&mut b, &failed).await, "Error");
}

#[tokio::test]
async fn a_long_queue_is_paged_fifty_rows_at_a_time_in_queue_order() {
    let s = start().await;
    let b = &mut register_field(&s).await;
    let store = s
        .catalog
        .open_org(&OrgName::parse("field").unwrap())
        .await
        .unwrap();
    let records: Vec<RecordId> = (0..120).map(|_| RecordId::new_random()).collect();
    let changes: Vec<ClientChange> = records
        .iter()
        .enumerate()
        .map(|(i, id)| ClientChange {
            entity: EntityName::parse("account").unwrap(),
            id: *id,
            operation: Operation::Create,
            values: BTreeMap::from([(
                AttributeName::parse("name").unwrap(),
                Value::String(format!("Queued {i}")),
            )]),
        })
        .collect();
    store
        .write(transactions::queue(&*store, &changes).await.unwrap())
        .await
        .unwrap();
    let page = |n: usize| format!("{TAB}?status=pending&page={n}");
    let mut shown = Vec::new();
    for n in 1..=3 {
        let r = b.get(&page(n)).await;
        assert!(
            r.body.contains(&format!("Page {n} of 3 (120 rows)")),
            "{}",
            r.body
        );
        shown.extend(rows(&r.body).into_iter().map(|r| r.record));
    }
    let expected: Vec<String> = records.iter().map(RecordId::to_string).collect();
    assert_eq!(shown, expected);
    let r = b.get(&page(9)).await;
    assert_eq!(rows(&r.body).len(), 20, "clamped to the last page");
    let r = b.get(&format!("{TAB}?status=processed")).await;
    assert!(rows(&r.body).is_empty() && !r.body.contains("rel=\"next\""));
    let pending = transactions::list(&*store, Some(TxStatus::Pending), 1, 0)
        .await
        .unwrap();
    assert_eq!(pending.total, 120);
}

#[tokio::test]
async fn the_header_box_selects_every_row_of_its_page_and_no_other() {
    let s = start().await;
    let b = &mut register_field(&s).await;
    let store = s
        .catalog
        .open_org(&OrgName::parse("field").unwrap())
        .await
        .unwrap();
    let changes: Vec<ClientChange> = (0..60)
        .map(|i| ClientChange {
            entity: EntityName::parse("account").unwrap(),
            id: RecordId::new_random(),
            operation: Operation::Create,
            values: BTreeMap::from([(
                AttributeName::parse("name").unwrap(),
                Value::String(format!("Queued {i}")),
            )]),
        })
        .collect();
    store
        .write(transactions::queue(&*store, &changes).await.unwrap())
        .await
        .unwrap();
    // The second page of Pending (ten rows), sent as its form is: every row's `shown` id,
    // the header box checked, no row box checked.
    let page = b.get(&format!("{TAB}?status=pending&page=2")).await;
    assert!(page.body.contains("id=\"sel-all\""), "{}", page.body);
    assert!(page.body.contains("Select all on this page"));
    let on_page: Vec<String> = rows(&page.body).into_iter().map(|r| r.id).collect();
    assert_eq!(on_page.len(), 10);
    let shown: Vec<String> = page
        .body
        .split("name=\"shown\" value=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect();
    assert_eq!(shown, on_page);
    let mut form = vec![
        ("_csrf", page.csrf()),
        ("status", "pending".to_owned()),
        ("page", "2".to_owned()),
        ("action", "archive".to_owned()),
        ("all", "page".to_owned()),
    ];
    form.extend(shown.iter().map(|id| ("shown", id.clone())));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = b.post(TAB, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let archived = b.get(&format!("{TAB}?status=archived")).await.body;
    let archived: Vec<String> = rows(&archived).into_iter().map(|r| r.id).collect();
    assert_eq!(archived, on_page, "the rows of page 2, and only those");
    let pending = transactions::list(&*store, Some(TxStatus::Pending), 1, 0)
        .await
        .unwrap();
    assert_eq!(pending.total, 50);
    // A refused request keeps the selection, the header box with it.
    let page = b.get(&format!("{TAB}?status=archived")).await;
    let unchecked = "id=\"sel-all\" data-select-all=\"id\">";
    assert!(page.body.contains(unchecked), "nothing checked yet");
    let mut form = vec![
        ("_csrf", page.csrf()),
        ("status", "archived".to_owned()),
        ("action", "bogus".to_owned()),
        ("all", "page".to_owned()),
    ];
    form.extend(archived.iter().map(|id| ("shown", id.clone())));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = b.post(TAB, &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("id=\"sel-all\" data-select-all=\"id\" checked>"),
        "{}",
        r.body
    );
    assert_eq!(
        rows(&r.body)
            .iter()
            .filter(|row| row.html.contains(" checked>"))
            .count(),
        10
    );
}
