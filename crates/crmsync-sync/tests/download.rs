//! Server -> client download through the engine, with a real server org (SQLite) behind a
//! LocalConnector: initial sync, incremental changes, deletes, filter exits of every kind,
//! filter changes, expired tokens and interrupted runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use crmsync_model::{AttributeName, EntityMetadata, EntityName, OrgName, Record, RecordId, Value};
use crmsync_query::{EvalContext, Query, parse_fetchxml};
use crmsync_sample::{SampleEntity, SampleGenerator};
use crmsync_store::{
    Catalog, Change, ChangeCursor, DeleteMode, NewUser, OrgStore, PageRequest, Role, UpsertMode, WriteSet,
};
#[cfg(not(feature = "postgres-tests"))]
use crmsync_store_sqlite::SqliteCatalog;
use crmsync_sync::metadata::diff;
use crmsync_sync::{
    ChangesPage, Connector, FetchPage, LocalConnector, NoProgress, ReadPosition, RunLog, RunStatus,
    ServerIdentity, SyncError, SyncRunner, SyncSettings, Trigger,
};

struct Env {
    /// Keeps the storage alive (a temporary directory, or a PostgreSQL namespace).
    _storage: Box<dyn std::any::Any + Send>,
    server: Arc<dyn OrgStore>,
    client: Arc<dyn OrgStore>,
    connector: Arc<LocalConnector>,
}

fn en(s: &str) -> EntityName {
    EntityName::parse(s).unwrap()
}

/// SQLite by default; PostgreSQL with the `postgres-tests` feature (CI runs both).
#[cfg(not(feature = "postgres-tests"))]
async fn storage() -> (Box<dyn std::any::Any + Send>, Arc<dyn Catalog>) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqliteCatalog::open(dir.path()).await.unwrap();
    (Box::new(dir), Arc::new(catalog))
}

#[cfg(feature = "postgres-tests")]
async fn storage() -> (Box<dyn std::any::Any + Send>, Arc<dyn Catalog>) {
    let db = crmsync_store_postgres::testing::TestDatabase::fresh();
    let catalog = db.catalog().await;
    (Box::new(db), Arc::new(catalog))
}

async fn env(accounts: u64) -> Env {
    let (storage, catalog) = storage().await;
    let admin = || NewUser {
        email: "admin@example.com".into(),
        password: "password-1".into(),
        role: Role::Admin,
    };
    for org in ["server", "client"] {
        catalog
            .create_org(&OrgName::parse(org).unwrap(), admin())
            .await
            .unwrap();
    }
    let server = catalog
        .open_org(&OrgName::parse("server").unwrap())
        .await
        .unwrap();
    let client = catalog
        .open_org(&OrgName::parse("client").unwrap())
        .await
        .unwrap();
    let changes = crmsync_sample::crm_entities()
        .into_iter()
        .map(|entity| crmsync_model::MetadataChange::CreateEntity { entity })
        .collect::<Vec<_>>();
    server.apply_metadata(&changes).await.unwrap();
    let generator = SampleGenerator::new(3, accounts);
    for entity in [SampleEntity::Account, SampleEntity::Contact] {
        for batch in generator.batches(entity, 10_000) {
            server
                .write(WriteSet::new().upsert(entity.entity_name(), batch, UpsertMode::Upsert))
                .await
                .unwrap();
        }
    }
    let update = diff(
        &server.entities().await.unwrap(),
        &[],
        Some(&[en("account"), en("contact")]),
    );
    client.apply_metadata(&update.changes).await.unwrap();
    let connector = Arc::new(LocalConnector::new(server.clone()));
    Env {
        _storage: storage,
        server,
        client,
        connector,
    }
}

fn settings(filters: &[(&str, &str)]) -> SyncSettings {
    SyncSettings {
        entities: vec![en("contact"), en("account")],
        filters: filters.iter().map(|(e, f)| (en(e), (*f).to_owned())).collect(),
        ..Default::default()
    }
}

async fn sync_with(env: &Env, connector: Arc<dyn Connector>, settings: SyncSettings) -> RunLog {
    let mut runner = SyncRunner::new(env.client.clone(), connector, settings);
    runner.page_size = 7;
    runner.batch_rows = 25;
    runner.run(Trigger::Manual, &NoProgress).await.unwrap()
}

async fn sync(env: &Env, settings: SyncSettings) -> RunLog {
    sync_with(env, env.connector.clone(), settings).await
}

/// Every live record of an entity, without `versionnumber` (each org numbers its own).
async fn records(store: &dyn OrgStore, entity: &str) -> BTreeMap<RecordId, Record> {
    let mut out = BTreeMap::new();
    let mut cursor = ChangeCursor::start(0);
    loop {
        let page = store.changes(&en(entity), cursor, 1000).await.unwrap();
        for c in page.changes {
            if let Change::Upsert(mut r) = c {
                r.values.remove("versionnumber");
                out.insert(r.id.unwrap(), r);
            }
        }
        if !page.more {
            return out;
        }
        cursor = page.next;
    }
}

/// The server's records matching `fetch` (all of them when `None`).
async fn expected(env: &Env, entity: &str, fetch: Option<&str>) -> BTreeMap<RecordId, Record> {
    let all = records(&*env.server, entity).await;
    let Some(fetch) = fetch else { return all };
    let query: Query = parse_fetchxml(fetch, &env.server.entities().await.unwrap()).unwrap();
    let page = env
        .server
        .query(
            &query,
            &EvalContext::new(chrono::Utc::now()),
            &PageRequest::first(100_000),
        )
        .await
        .unwrap();
    page.rows
        .iter()
        .map(|r| r.record.id.unwrap())
        .map(|id| (id, all[&id].clone()))
        .collect()
}

async fn assert_mirror(env: &Env, entity: &str, fetch: Option<&str>) {
    let want = expected(env, entity, fetch).await;
    let got = records(&*env.client, entity).await;
    assert_eq!(got.len(), want.len(), "{entity}: record count");
    assert_eq!(got, want, "{entity}: client equals the server's (filtered) data");
}

fn figures<'a>(log: &'a RunLog, entity: &str) -> &'a crmsync_sync::EntityFigures {
    log.entities.iter().find(|e| e.entity == entity).unwrap()
}

async fn put(store: &dyn OrgStore, entity: &str, record: Record) {
    store
        .write(WriteSet::new().record(en(entity), record, UpsertMode::Upsert))
        .await
        .unwrap();
}

const ACTIVE_ACCOUNTS: &str = r#"<fetch><entity name="account"><filter><condition attribute="statecode" operator="eq" value="0"/></filter></entity></fetch>"#;

#[tokio::test]
async fn initial_then_incremental_sync_mirrors_the_server_with_deletes() {
    let env = env(40).await;
    let log = sync(&env, settings(&[])).await;
    assert_eq!(log.status, RunStatus::Succeeded, "{:?}", log.messages);
    assert_eq!(figures(&log, "account").created, 40);
    assert_eq!(figures(&log, "contact").created, 80);
    assert_mirror(&env, "account", None).await;
    assert_mirror(&env, "contact", None).await;

    let ids: Vec<RecordId> = records(&*env.server, "account").await.keys().copied().collect();
    put(
        &*env.server,
        "account",
        Record::new(ids[0]).with("name", Value::String("Renamed".into())),
    )
    .await;
    put(
        &*env.server,
        "account",
        Record::new(RecordId::new_random()).with("name", Value::String("Brand new".into())),
    )
    .await;
    env.server
        .write(WriteSet::new().delete(en("account"), vec![ids[1], ids[2]], DeleteMode::MustExist))
        .await
        .unwrap();
    let log = sync(&env, settings(&[])).await;
    let f = figures(&log, "account");
    assert_eq!(
        (f.created, f.updated, f.deleted, f.filtered_out),
        (1, 1, 2, 0),
        "{f:?}"
    );
    assert!(
        log.messages
            .iter()
            .any(|m| m.record_id == Some(ids[1]) && m.text.contains("deleted on the server"))
    );
    assert_mirror(&env, "account", None).await;

    let log = sync(&env, settings(&[])).await;
    let f = figures(&log, "account");
    assert_eq!(
        (f.created, f.updated, f.deleted),
        (0, 0, 0),
        "nothing changed: {f:?}"
    );
    assert_eq!(
        crmsync_sync::logs(&*env.client, 10).await.unwrap().len(),
        3,
        "every run left a log"
    );
}

#[tokio::test]
async fn records_leaving_the_filter_by_their_own_change_are_filtered_out() {
    let env = env(40).await;
    let s = settings(&[("account", ACTIVE_ACCOUNTS)]);
    let log = sync(&env, s.clone()).await;
    assert_eq!(log.status, RunStatus::Succeeded, "{:?}", log.messages);
    assert_mirror(&env, "account", Some(ACTIVE_ACCOUNTS)).await;
    let active: Vec<RecordId> = records(&*env.client, "account").await.keys().copied().collect();
    assert!(active.len() < 40, "the sample has inactive accounts");
    let leaving = active[0];
    put(
        &*env.server,
        "account",
        Record::new(leaving)
            .with("statecode", Value::OptionSet(1))
            .with("statuscode", Value::OptionSet(2)),
    )
    .await;
    let log = sync(&env, s.clone()).await;
    let f = figures(&log, "account");
    assert_eq!((f.filtered_out, f.deleted), (1, 0), "{f:?}");
    assert!(
        log.messages
            .iter()
            .any(|m| m.record_id == Some(leaving) && m.text.contains("filtered-out"))
    );
    assert_mirror(&env, "account", Some(ACTIVE_ACCOUNTS)).await;
    // Coming back into the filter brings the record back.
    put(
        &*env.server,
        "account",
        Record::new(leaving)
            .with("statecode", Value::OptionSet(0))
            .with("statuscode", Value::OptionSet(1)),
    )
    .await;
    let log = sync(&env, s).await;
    assert_eq!(figures(&log, "account").created, 1);
    assert_mirror(&env, "account", Some(ACTIVE_ACCOUNTS)).await;
}

#[tokio::test]
async fn a_changed_filter_is_reconciled_by_comparing_ids() {
    let env = env(40).await;
    sync(&env, settings(&[("account", ACTIVE_ACCOUNTS)])).await;
    let inactive = ACTIVE_ACCOUNTS.replace(r#"value="0""#, r#"value="1""#);
    let log = sync(&env, settings(&[("account", &inactive)])).await;
    let f = figures(&log, "account");
    assert!(f.reconciled && f.filtered_out > 0 && f.created > 0, "{f:?}");
    assert_mirror(&env, "account", Some(&inactive)).await;
    // Dropping the filter reconciles again and fetches only what is missing.
    let before = records(&*env.client, "account").await.len() as u64;
    let log = sync(&env, settings(&[])).await;
    let f = figures(&log, "account");
    assert_eq!(f.created, 40 - before, "{f:?}");
    assert_eq!(f.updated, 0, "records already there are not fetched again: {f:?}");
    assert_mirror(&env, "account", None).await;
}

#[tokio::test]
async fn records_leave_when_a_linked_record_changes() {
    let env = env(30).await;
    let fetch = r#"<fetch><entity name="contact"><link-entity name="account" from="accountid" to="parentcustomerid" alias="a"><filter><condition attribute="statecode" operator="eq" value="0"/></filter></link-entity></entity></fetch>"#;
    let s = settings(&[("contact", fetch)]);
    sync(&env, s.clone()).await;
    assert_mirror(&env, "contact", Some(fetch)).await;
    // Deactivate the parent account of a synced contact: the contact leaves the filter
    // although the contact itself did not change.
    let contact = records(&*env.client, "contact")
        .await
        .into_values()
        .find(
            |c| matches!(c.get("parentcustomerid"), Some(Value::Lookup(r)) if r.entity.as_str() == "account"),
        )
        .unwrap();
    let Some(Value::Lookup(parent)) = contact.get("parentcustomerid") else {
        unreachable!()
    };
    put(
        &*env.server,
        "account",
        Record::new(parent.id)
            .with("statecode", Value::OptionSet(1))
            .with("statuscode", Value::OptionSet(2)),
    )
    .await;
    let log = sync(&env, s).await;
    assert!(
        figures(&log, "contact").filtered_out >= 1,
        "{:?}",
        figures(&log, "contact")
    );
    assert!(
        !records(&*env.client, "contact")
            .await
            .contains_key(&contact.id.unwrap())
    );
    assert_mirror(&env, "contact", Some(fetch)).await;
}

#[tokio::test]
async fn records_leave_when_a_relative_date_condition_moves() {
    let env = env(20).await;
    let fetch = r#"<fetch><entity name="account"><filter><condition attribute="modifiedon" operator="last-x-hours" value="1"/></filter></entity></fetch>"#;
    let fresh = RecordId::new_random();
    put(
        &*env.server,
        "account",
        Record::new(fresh).with("name", Value::String("Fresh".into())),
    )
    .await;
    let now = chrono::Utc::now();
    env.connector.set_clock(Some(now));
    let s = settings(&[("account", fetch)]);
    sync(&env, s.clone()).await;
    assert!(records(&*env.client, "account").await.contains_key(&fresh));
    // Two hours later nothing changed on the server, but the record is no longer recent.
    env.connector.set_clock(Some(now + chrono::Duration::hours(2)));
    let log = sync(&env, s).await;
    assert_eq!(
        figures(&log, "account").filtered_out,
        1,
        "{:?}",
        figures(&log, "account")
    );
    assert!(records(&*env.client, "account").await.is_empty());
}

#[tokio::test]
async fn an_expired_token_is_reconciled_and_deletes_are_not_missed() {
    let env = env(20).await;
    sync(&env, settings(&[])).await;
    let ids: Vec<RecordId> = records(&*env.server, "account").await.keys().copied().collect();
    env.server
        .write(WriteSet::new().delete(en("account"), vec![ids[0]], DeleteMode::MustExist))
        .await
        .unwrap();
    put(
        &*env.server,
        "account",
        Record::new(ids[1]).with("name", Value::String("Changed while expired".into())),
    )
    .await;
    env.server
        .purge_tombstones(chrono::Utc::now() + chrono::Duration::seconds(5))
        .await
        .unwrap();
    let log = sync(&env, settings(&[])).await;
    let f = figures(&log, "account");
    assert!(f.reconciled && f.deleted == 1 && f.updated == 1, "{f:?}");
    assert!(log.messages.iter().any(|m| m.text.contains("expired")));
    assert_mirror(&env, "account", None).await;
}

/// A connector that fails every `fail_every`th call, as a flaky network would.
struct Flaky {
    inner: Arc<LocalConnector>,
    calls: std::sync::atomic::AtomicUsize,
    fail_every: usize,
}

impl Flaky {
    fn tick(&self) -> Result<(), SyncError> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n.is_multiple_of(self.fail_every) {
            Err(SyncError::Network("connection reset".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Connector for Flaky {
    async fn who_am_i(&self) -> Result<ServerIdentity, SyncError> {
        self.inner.who_am_i().await
    }
    async fn entities(&self) -> Result<Vec<EntityMetadata>, SyncError> {
        self.inner.entities().await
    }
    async fn changes(
        &self,
        e: &EntityMetadata,
        c: &[AttributeName],
        p: &ReadPosition,
        n: usize,
    ) -> Result<ChangesPage, SyncError> {
        self.tick()?;
        self.inner.changes(e, c, p, n).await
    }
    async fn fetch(&self, e: &EntityMetadata, q: &Query) -> Result<FetchPage, SyncError> {
        self.tick()?;
        self.inner.fetch(e, q).await
    }
    async fn write(
        &self,
        e: &[EntityMetadata],
        w: &[crmsync_sync::ServerWrite],
        atomic: bool,
    ) -> Result<crmsync_sync::WriteResults, SyncError> {
        self.tick()?;
        self.inner.write(e, w, atomic).await
    }
}

#[tokio::test]
async fn interrupted_runs_resume_and_converge_without_duplicates() {
    let env = env(60).await;
    let filters = [(
        "contact",
        r#"<fetch><entity name="contact"><filter><condition attribute="statecode" operator="eq" value="0"/></filter></entity></fetch>"#,
    )];
    for fail_every in [3, 5, 7, 11] {
        let flaky = Arc::new(Flaky {
            inner: env.connector.clone(),
            calls: Default::default(),
            fail_every,
        });
        for _ in 0..40 {
            let log = sync_with(&env, flaky.clone(), settings(&filters)).await;
            if log.status == RunStatus::Succeeded {
                break;
            }
        }
        // Change things between attempts so that resumed reads meet new changes.
        let ids: Vec<RecordId> = records(&*env.server, "account").await.keys().copied().collect();
        put(
            &*env.server,
            "account",
            Record::new(ids[fail_every]).with("name", Value::String(format!("v{fail_every}"))),
        )
        .await;
    }
    let log = sync(&env, settings(&filters)).await;
    assert_eq!(log.status, RunStatus::Succeeded);
    assert_mirror(&env, "account", None).await;
    assert_mirror(&env, "contact", Some(filters[0].1)).await;
}

#[tokio::test]
async fn a_full_sync_removes_what_the_server_no_longer_has_even_without_a_filter() {
    let env = env(20).await;
    sync(&env, settings(&[])).await;
    // A record the server never had (or whose delete the client missed).
    let stray = RecordId::new_random();
    put(
        &*env.client,
        "account",
        Record::new(stray).with("name", Value::String("Stray".into())),
    )
    .await;
    let mut runner = SyncRunner::new(env.client.clone(), env.connector.clone(), settings(&[]));
    runner.page_size = 7;
    runner.full = true;
    let log = runner.run(Trigger::Manual, &NoProgress).await.unwrap();
    let f = figures(&log, "account");
    assert!(
        f.reconciled && f.deleted == 1 && f.created == 0 && f.updated == 0,
        "{f:?}"
    );
    assert_mirror(&env, "account", None).await;
    // The entity goes on incrementally from the fresh token.
    let log = sync(&env, settings(&[])).await;
    assert!(!figures(&log, "account").reconciled);
}

#[tokio::test]
async fn a_page_the_client_refuses_fails_the_entity_and_stops_the_reading_ahead() {
    let env = env(40).await;
    // The server allows longer names than the client, and its first changed account has one.
    let widen = |max_length| crmsync_model::MetadataChange::WidenAttribute {
        entity: en("account"),
        attribute: AttributeName::parse("name").unwrap(),
        max_length,
    };
    env.server.apply_metadata(&[widen(400)]).await.unwrap();
    let long = "L".repeat(300);
    put(
        &*env.server,
        "account",
        Record::new(RecordId::new_random()).with("name", Value::String(long)),
    )
    .await;
    // The other accounts change after it: they come in later pages, which the reader reads
    // ahead while the writer fails on the first.
    for (id, record) in records(&*env.server, "account").await {
        match record.get("name") {
            Some(Value::String(n)) if n.len() >= 300 => {}
            name => {
                let name = name.cloned().unwrap_or(Value::Null);
                put(&*env.server, "account", Record::new(id).with("name", name)).await;
            }
        }
    }
    let log = tokio::time::timeout(std::time::Duration::from_secs(60), sync(&env, settings(&[])))
        .await
        .expect("the run ends when the writer fails");
    assert_ne!(log.status, RunStatus::Succeeded, "{:?}", log.messages);
    assert_eq!(figures(&log, "account").errors, 1, "{:?}", log.messages);
    assert!(
        log.messages
            .iter()
            .any(|m| m.entity.as_deref() == Some("account") && m.text.contains("name")),
        "{:?}",
        log.messages
    );

    // Once the client takes such names too, the next run converges.
    env.client.apply_metadata(&[widen(400)]).await.unwrap();
    let log = sync(&env, settings(&[])).await;
    assert_eq!(log.status, RunStatus::Succeeded, "{:?}", log.messages);
    assert_mirror(&env, "account", None).await;
    assert_mirror(&env, "contact", None).await;
}
