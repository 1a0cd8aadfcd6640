//! The Sync Job screen over real HTTP, against a server whose scheduler runs (as under
//! `crmsync serve`): a client org `field` registered through the Connect page and connected to
//! the server org `acme`. A bad frequency is refused next to its field and stores nothing; a
//! job created, published and activated on the screen is the webservice's process, runs when
//! asked to, and its history links the log of its sync run; forged posts change nothing.

use crate::browser;
use crate::common;

use std::time::Duration;

use browser::{Browser, FIELD, register_field, start};
use common::{TestServer, json};
use reqwest::StatusCode;
use serde_json::Value;

const JOBS: &str = "/admin/field/sync/jobs";

fn api(s: &TestServer, path: &str) -> String {
    format!("{}/rest/v1/sync/field/{path}", s.url)
}

/// The processes of `field` as the webservice lists them.
async fn processes(s: &TestServer) -> Vec<Value> {
    let r = s
        .client
        .get(api(s, "processes"))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    json(r).await["value"].as_array().unwrap().clone()
}

async fn process(s: &TestServer, id: &str) -> Value {
    let r = s
        .client
        .get(api(s, &format!("processes/{id}")))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    json(r).await
}

/// Creates a job on the New Sync Job page with `fields` (besides the CSRF token).
async fn create(b: &mut Browser, fields: &[(&str, &str)]) -> browser::Page {
    b.submit(&format!("{JOBS}/new"), JOBS, fields).await
}

/// Clicks the action button `action` on the page of job `id`.
async fn act(b: &mut Browser, id: &str, action: &str) -> browser::Page {
    let page = format!("{JOBS}/{id}");
    b.submit(&page, &format!("{page}/action"), &[("action", action)])
        .await
}

#[tokio::test]
async fn a_bad_frequency_is_shown_next_to_its_field_and_nothing_is_stored() {
    let s = start().await;
    let mut b = register_field(&s).await;
    let r = b.get(&format!("{JOBS}/new")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("id=\"f-entity-account\""), "{}", r.body);
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            &[
                ("name", "Too often"),
                ("kind", "every"),
                ("every", "0"),
                ("unit", "minutes"),
            ],
            "every",
            "out of range: use 1 minute to 366 days",
        ),
        (
            &[
                ("name", "Never"),
                ("kind", "every"),
                ("every", "soon"),
                ("unit", "hours"),
            ],
            "every",
            "whole number",
        ),
        (
            &[("name", "Bad cron"), ("kind", "cron"), ("cron", "61 * * * *")],
            "cron",
            "'61 * * * *' is not a valid frequency",
        ),
        (
            &[
                ("name", "Nothing"),
                ("kind", "every"),
                ("every", "1"),
                ("unit", "days"),
                ("scope", "some"),
            ],
            "entities",
            "Check the entities",
        ),
    ];
    for (fields, field, message) in cases {
        let r = create(&mut b, fields).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        let shown = r
            .field_error(field)
            .unwrap_or_else(|| panic!("{fields:?}: {}", r.body));
        assert!(shown.contains(message), "{fields:?}: {shown}");
        // What was typed is kept.
        assert!(
            r.body.contains(&format!("value=\"{}\"", fields[0].1)),
            "{}",
            r.body
        );
    }
    // A name the API refuses lands next to the name.
    let long = "n".repeat(101);
    let r = create(&mut b, &[("name", &long), ("every", "1"), ("unit", "hours")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.field_error("name").unwrap().contains("1 to 100 characters"));
    assert!(processes(&s).await.is_empty(), "nothing stored");
    assert!(b.get(JOBS).await.body.contains("No Sync Job yet"));
}

#[tokio::test]
async fn a_job_created_published_and_activated_on_the_screen_is_the_apis_and_runs_now_with_its_log_linked() {
    let s = start().await;
    let mut b = register_field(&s).await;
    let r = create(
        &mut b,
        &[
            ("name", "Accounts every 15 minutes"),
            ("kind", "every"),
            ("every", "15"),
            ("unit", "minutes"),
            ("scope", "some"),
            ("entity", "account"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.location.unwrap();
    let id = to
        .strip_prefix(&format!("{JOBS}/"))
        .and_then(|rest| rest.strip_suffix("?notice=job-created"))
        .unwrap_or_else(|| panic!("{to}"))
        .to_owned();
    let stored = process(&s, &id).await;
    assert_eq!(stored["name"], "Accounts every 15 minutes");
    assert_eq!(
        stored["frequency"],
        serde_json::json!({"every": 15, "unit": "minutes"})
    );
    assert_eq!(
        stored["steps"],
        serde_json::json!([{"function": "SyncService", "entities": ["account"]}])
    );
    assert_eq!(
        (stored["published"].as_bool(), stored["activated"].as_bool()),
        (Some(false), Some(false))
    );
    let r = b.get(&to).await;
    assert!(r.body.contains("created as a draft"), "{}", r.body);
    assert!(r.body.contains("Not scheduled (draft)"));

    // Run now is refused for a draft, by the API and by the screen.
    let r = s
        .client
        .post(api(&s, &format!("processes/{id}/run")))
        .basic_auth(FIELD.0, Some(FIELD.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = act(&mut b, &id, "run").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("publish and activate it before running it"),
        "{}",
        r.body
    );
    // So is activating a draft.
    let r = act(&mut b, &id, "activate").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("publish it before activating it"), "{}", r.body);
    assert_eq!(process(&s, &id).await["activated"], false);

    let r = act(&mut b, &id, "publish").await;
    assert_eq!(
        r.location.as_deref(),
        Some(&*format!("{JOBS}/{id}?notice=job-published"))
    );
    assert_eq!(process(&s, &id).await["published"], true);
    let r = act(&mut b, &id, "activate").await;
    assert_eq!(
        r.location.as_deref(),
        Some(&*format!("{JOBS}/{id}?notice=job-activated"))
    );
    let active = process(&s, &id).await;
    assert_eq!(active["activated"], true);
    let next: chrono::DateTime<chrono::Utc> = active["nextRun"].as_str().unwrap().parse().unwrap();
    assert!(next > chrono::Utc::now(), "scheduled in the future: {next}");
    let list = b.get(JOBS).await.body;
    assert!(
        list.contains("Accounts every 15 minutes") && list.contains("Every 15 minutes"),
        "{list}"
    );
    assert!(
        list.contains(&next.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "{list}"
    );

    // Run now: the scheduler of this server runs it; the history links its sync run's log.
    let r = act(&mut b, &id, "run").await;
    assert_eq!(
        r.location.as_deref(),
        Some(&*format!("{JOBS}/{id}?notice=job-run-queued"))
    );
    let mut history = Vec::new();
    for _ in 0..300 {
        let r = s
            .client
            .get(api(&s, &format!("processes/{id}/history")))
            .basic_auth(FIELD.0, Some(FIELD.1))
            .send()
            .await
            .unwrap();
        history = json(r).await["value"].as_array().unwrap().clone();
        if !history.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(history.len(), 1, "one execution");
    assert_eq!(history[0]["status"], "Succeeded", "{history:?}");
    let run = history[0]["runId"].as_str().unwrap().to_owned();
    let page = b.get(&format!("{JOBS}/{id}")).await.body;
    let link = format!("href=\"/admin/field/sync/logs/{run}\"");
    assert!(page.contains(&link), "{page}");
    assert!(
        !page.contains("hx-trigger=\"every 2s\""),
        "no more polling once the run ended"
    );
    let log = b.get(&format!("/admin/field/sync/logs/{run}")).await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(log.body.contains("Sync Job"), "trigger shown: {}", log.body);
    let entity_row = |e: &str| format!("<th scope=\"row\"><code>{e}</code></th>");
    assert!(log.body.contains(&entity_row("account")), "{}", log.body);
    assert!(
        !log.body.contains(&entity_row("contact")),
        "only the job's entities"
    );
    // The schedule goes on from the next slot after the run.
    let after = process(&s, &id).await;
    assert!(
        after["nextRun"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            > chrono::Utc::now()
    );

    // Deactivate, back to draft, delete.
    act(&mut b, &id, "deactivate").await;
    assert_eq!(process(&s, &id).await["nextRun"], Value::Null);
    act(&mut b, &id, "unpublish").await;
    assert_eq!(process(&s, &id).await["published"], false);
    let r = act(&mut b, &id, "delete").await;
    assert_eq!(
        r.location.as_deref(),
        Some(&*format!("{JOBS}?notice=job-deleted"))
    );
    assert!(processes(&s).await.is_empty());
    assert_eq!(b.get(&format!("{JOBS}/{id}")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn editing_a_job_applies_the_apis_rules_and_keeps_the_history_paged() {
    let s = start().await;
    let mut b = register_field(&s).await;
    let r = create(&mut b, &[("name", "Hourly"), ("every", "1"), ("unit", "hours")]).await;
    let id = r
        .location
        .unwrap()
        .split('/')
        .nth(5)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let page = format!("{JOBS}/{id}");
    let r = b
        .submit(
            &page,
            &page,
            &[
                ("name", "Mornings"),
                ("kind", "cron"),
                ("cron", "0 6 * * MON-FRI"),
            ],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some(&*format!("{page}?notice=job-saved")),
        "{}",
        r.body
    );
    let p = process(&s, &id).await;
    assert_eq!(
        (p["name"].as_str(), p["frequency"]["cron"].as_str()),
        (Some("Mornings"), Some("0 6 * * MON-FRI"))
    );
    assert_eq!(
        p["steps"],
        serde_json::json!([{"function": "SyncService"}]),
        "all enabled entities"
    );
    let r = b
        .submit(
            &page,
            &page,
            &[("name", "Mornings"), ("kind", "cron"), ("cron", "every morning")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.field_error("cron").unwrap().contains("not a valid frequency"));
    assert!(r.body.contains("value=\"every morning\""), "typed value kept");
    assert_eq!(
        process(&s, &id).await["frequency"]["cron"],
        "0 6 * * MON-FRI",
        "unchanged"
    );

    // Forty-five executions: twenty per page, newest first.
    let store = s
        .catalog
        .open_org(&crmsync_model::OrgName::parse("field").unwrap())
        .await
        .unwrap();
    let start = chrono::Utc::now() - chrono::Duration::hours(50);
    for i in 0..45 {
        let started = start + chrono::Duration::hours(i);
        let execution = crmsync_sync::process::Execution {
            process: id.parse().unwrap(),
            work: uuid::Uuid::new_v4(),
            started,
            ended: started + chrono::Duration::seconds(3),
            status: if i == 44 { "Failed" } else { "Succeeded" }.into(),
            run_id: None,
            error: (i == 44).then(|| "the server cannot be reached".to_owned()),
        };
        store
            .write(crmsync_sync::process::execution_write(&execution).unwrap())
            .await
            .unwrap();
    }
    let first = b.get(&page).await.body;
    assert!(first.contains("Page 1 of 3 (45 rows)"), "{first}");
    assert!(first.contains("the server cannot be reached"), "newest first");
    let last = b.get(&format!("{page}?page=3")).await.body;
    assert_eq!(last.matches("<td class=\"when\">").count(), 5);
    assert!(
        last.contains(&start.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "oldest on the last page"
    );
}

#[tokio::test]
async fn a_forged_cross_site_post_to_the_sync_job_screen_is_refused_and_changes_nothing() {
    let s = start().await;
    let mut b = register_field(&s).await;
    let fields = [("name", "Forged"), ("every", "1"), ("unit", "minutes")];
    // The session cookie alone (what a cross-site form sends) is not enough.
    assert_eq!(b.post(JOBS, &fields).await.status, StatusCode::FORBIDDEN);
    // Nor a valid token sent from another origin.
    let token = b.get(JOBS).await.csrf();
    let mut with_token = vec![("_csrf", token.as_str())];
    with_token.extend_from_slice(&fields);
    let r = b
        .client
        .post(format!("{}{JOBS}", s.url))
        .header("cookie", b.cookie_header())
        .header("origin", "https://evil.example")
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(processes(&s).await.is_empty());

    let r = create(&mut b, &fields).await;
    let id = r
        .location
        .unwrap()
        .split('/')
        .nth(5)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    for action in ["publish", "delete"] {
        let r = b
            .post(&format!("{JOBS}/{id}/action"), &[("action", action)])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{action}");
    }
    let r = b
        .post(
            &format!("{JOBS}/{id}"),
            &[("name", "Renamed"), ("every", "2"), ("unit", "days")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let p = process(&s, &id).await;
    assert_eq!(
        (p["name"].as_str(), p["published"].as_bool()),
        (Some("Forged"), Some(false))
    );
}
