//! Whole sync runs through a faulty network: a client org synced from a real crmsync server
//! over HTTP, with a fault-injecting proxy in between (500s, 429 with `Retry-After`, answers
//! cut mid-body, the server going down mid-run). A run either retries its way through or
//! fails cleanly with the reason in its log; the next run leaves the client equal to the
//! server: nothing missing, nothing duplicated. Small pages and batches make every run commit
//! several batches, so failures land between commits as well as within them.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::proxy::{Action, Proxy};
use common::{ADMIN, TestServer, fast_retries};
use crmsync_connectors::{Backend, Credentials, DataverseConfig, DataverseConnector, Secret};
use crmsync_model::{EntityName, OrgName, Record, RecordId, Value};
use crmsync_sample::SampleEntity;
use crmsync_store::{Change, ChangeCursor, DeleteMode, NewUser, OrgStore, Role, UpsertMode, WriteSet};
use crmsync_sync::metadata::diff;
use crmsync_sync::{NoProgress, RunLog, RunStatus, SyncRunner, SyncSettings, Trigger};

struct Env {
    server: TestServer,
    proxy: Proxy,
    client: Arc<dyn OrgStore>,
}

async fn env() -> Env {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr).await;
    let field = OrgName::parse("field").unwrap();
    let admin = NewUser {
        email: "lead@field.example".into(),
        password: "field-password".into(),
        role: Role::Admin,
    };
    server.catalog.create_org(&field, admin).await.unwrap();
    let client = server.catalog.open_org(&field).await.unwrap();
    let update = diff(&server.store.entities().await.unwrap(), &[], None);
    client.apply_metadata(&update.changes).await.unwrap();
    Env {
        server,
        proxy,
        client,
    }
}

fn entities() -> Vec<EntityName> {
    SampleEntity::ALL.iter().map(|e| e.entity_name()).collect()
}

/// One run through the proxy, with two retries per request.
async fn run(env: &Env) -> RunLog {
    let mut config = DataverseConfig::new(
        format!("{}/acme", env.proxy.url()),
        Backend::Crmsync,
        Credentials::Basic {
            user: ADMIN.0.into(),
            password: Secret::new(ADMIN.1),
        },
    );
    config.allow_private_urls = true;
    let connector = DataverseConnector::new(config)
        .unwrap()
        .with_retry_policy(fast_retries(2));
    let settings = SyncSettings {
        entities: entities(),
        ..Default::default()
    };
    let mut runner = SyncRunner::new(env.client.clone(), Arc::new(connector), settings);
    runner.page_size = 7;
    runner.batch_rows = 20;
    runner.run(Trigger::Manual, &NoProgress).await.unwrap()
}

/// Every live record of an entity, without `versionnumber` (each org numbers its own).
async fn records(store: &dyn OrgStore, entity: &EntityName) -> BTreeMap<RecordId, Record> {
    let mut out = BTreeMap::new();
    let mut cursor = ChangeCursor::start(0);
    loop {
        let page = store.changes(entity, cursor, 1000).await.unwrap();
        for change in page.changes {
            if let Change::Upsert(mut r) = change {
                r.values.remove("versionnumber");
                assert!(out.insert(r.id.unwrap(), r).is_none(), "a record listed twice");
            }
        }
        if !page.more {
            return out;
        }
        cursor = page.next;
    }
}

async fn assert_client_equals_server(env: &Env) {
    for entity in entities() {
        let want = records(&*env.server.store, &entity).await;
        let got = records(&*env.client, &entity).await;
        assert_eq!(got.len(), want.len(), "{entity}: record count");
        assert_eq!(got, want, "{entity}: the client equals the server");
    }
}

/// Creates, updates and deletes on the server.
async fn change_server(env: &Env, round: usize) {
    let account = SampleEntity::Account.entity_name();
    let ids: Vec<RecordId> = records(&*env.server.store, &account).await.into_keys().collect();
    let created = Record::new(RecordId::new_random()).with("name", Value::String(format!("New {round}")));
    let renamed = Record::new(ids[round]).with("name", Value::String(format!("Renamed {round}")));
    let set = WriteSet::new()
        .record(account.clone(), created, UpsertMode::CreateOnly)
        .record(account.clone(), renamed, UpsertMode::UpdateOnly)
        .delete(account, vec![ids[round + 1]], DeleteMode::MustExist);
    env.server.store.write(set).await.unwrap();
}

fn errors(log: &RunLog) -> Vec<&str> {
    log.messages
        .iter()
        .filter(|m| m.level == crmsync_sync::Level::Error)
        .map(|m| m.text.as_str())
        .collect()
}

#[tokio::test]
async fn a_server_answering_500_for_a_while_is_retried_and_runs_converge() {
    let env = env().await;
    // Every other request of the first forty fails once; its retry goes through.
    env.proxy.script(|n, _| match n {
        ..=40 if n.is_multiple_of(2) => Action::Answer {
            status: 500,
            retry_after: None,
        },
        _ => Action::Forward,
    });
    let log = run(&env).await;
    assert_eq!(log.status, RunStatus::Succeeded, "{:?}", errors(&log));
    assert!(
        env.proxy.count(Action::Answer {
            status: 500,
            retry_after: None
        }) >= 15
    );
    assert_client_equals_server(&env).await;

    // Then 500s past the retries: the run fails, saying why; the next one converges.
    change_server(&env, 1).await;
    let start = env.proxy.requests();
    env.proxy.script(move |n, _| {
        if n > start + 3 {
            Action::Answer {
                status: 500,
                retry_after: None,
            }
        } else {
            Action::Forward
        }
    });
    let log = run(&env).await;
    assert_ne!(log.status, RunStatus::Succeeded);
    assert!(
        errors(&log).iter().any(|e| e.contains("answered 500")),
        "{:?}",
        errors(&log)
    );
    env.proxy.script(|_, _| Action::Forward);
    change_server(&env, 2).await;
    assert_eq!(run(&env).await.status, RunStatus::Succeeded);
    assert_client_equals_server(&env).await;
}

#[tokio::test]
async fn too_many_requests_are_retried_after_the_servers_retry_after() {
    let env = env().await;
    env.proxy.script(|n, _| match n {
        3 | 9 => Action::Answer {
            status: 429,
            retry_after: Some(1),
        },
        _ => Action::Forward,
    });
    let log = run(&env).await;
    assert_eq!(log.status, RunStatus::Succeeded, "{:?}", errors(&log));
    let throttled = Action::Answer {
        status: 429,
        retry_after: Some(1),
    };
    assert_eq!(env.proxy.count(throttled), 2);
    assert_client_equals_server(&env).await;
}

#[tokio::test]
async fn answers_cut_mid_body_are_retried_and_runs_converge() {
    let env = env().await;
    // Every third data page is cut after its headers and part of its body.
    env.proxy.script(|n, path| {
        if path.contains("/api/data/v9.2/") && !path.contains("EntityDefinitions") && n.is_multiple_of(3) {
            Action::Cut { after: 600 }
        } else {
            Action::Forward
        }
    });
    let log = run(&env).await;
    assert_eq!(log.status, RunStatus::Succeeded, "{:?}", errors(&log));
    assert!(env.proxy.count(Action::Cut { after: 600 }) >= 5);
    assert_client_equals_server(&env).await;
    change_server(&env, 1).await;
    let log = run(&env).await;
    assert_eq!(log.status, RunStatus::Succeeded, "{:?}", errors(&log));
    assert_client_equals_server(&env).await;
}

#[tokio::test]
async fn a_server_going_down_mid_run_fails_it_cleanly_and_the_next_run_converges() {
    let env = env().await;
    // The server goes away during the download of the second entity or so.
    env.proxy
        .script(|n, _| if n == 12 { Action::Down } else { Action::Forward });
    let log = run(&env).await;
    assert_ne!(log.status, RunStatus::Succeeded);
    assert!(
        errors(&log).iter().any(|e| e.contains("cannot reach the server")),
        "{:?}",
        errors(&log)
    );
    // Whatever was committed is consistent: every client record is the server's.
    for entity in entities() {
        let server = records(&*env.server.store, &entity).await;
        for (id, record) in records(&*env.client, &entity).await {
            assert_eq!(Some(&record), server.get(&id), "{entity}: a committed record");
        }
    }
    change_server(&env, 3).await;
    env.proxy.script(|_, _| Action::Forward);
    env.proxy.restart().await;
    let log = run(&env).await;
    assert_eq!(log.status, RunStatus::Succeeded, "{:?}", errors(&log));
    assert_client_equals_server(&env).await;
}
