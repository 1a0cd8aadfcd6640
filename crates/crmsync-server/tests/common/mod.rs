//! A real crmsync server on a loopback port with two organizations: `acme` (the sample CRM
//! entities, a few records) and `beta`.

#![allow(dead_code)]

use std::sync::Arc;

use crmsync_model::{MetadataChange, OrgName};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};
use crmsync_server::{AppState, ServerConfig};
use crmsync_store::{Catalog, NewUser, Role, UpsertMode, WriteSet};
#[cfg(not(feature = "postgres-tests"))]
use crmsync_store_sqlite::SqliteCatalog;

/// SQLite by default; PostgreSQL with the `postgres-tests` feature (CI runs both).
#[cfg(not(feature = "postgres-tests"))]
async fn storage() -> (Box<dyn std::any::Any + Send + Sync>, Arc<dyn Catalog>) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqliteCatalog::open(dir.path()).await.unwrap();
    (Box::new(dir), Arc::new(catalog))
}

#[cfg(feature = "postgres-tests")]
async fn storage() -> (Box<dyn std::any::Any + Send + Sync>, Arc<dyn Catalog>) {
    let db = crmsync_store_postgres::testing::TestDatabase::fresh();
    let catalog = db.catalog().await;
    (Box::new(db), Arc::new(catalog))
}

pub const ACME_ADMIN: (&str, &str) = ("admin@acme.example", "acme-password");
pub const ACME_USER: (&str, &str) = ("field@acme.example", "field-password");
pub const BETA_ADMIN: (&str, &str) = ("admin@beta.example", "beta-password");

pub struct TestServer {
    pub url: String,
    pub client: reqwest::Client,
    pub catalog: Arc<dyn Catalog>,
    /// Keeps the storage alive: a temporary directory, or a PostgreSQL namespace.
    _storage: Box<dyn std::any::Any + Send + Sync>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> TestServer {
        Self::start_with_scheduler(config, crmsync_server::scheduler::SchedulerConfig::default()).await
    }

    /// A server whose scheduler worker runs with `scheduler` (e.g. a poll so long that it
    /// only runs what is queued through this server).
    pub async fn start_with_scheduler(
        config: ServerConfig,
        scheduler: crmsync_server::scheduler::SchedulerConfig,
    ) -> TestServer {
        let (storage, catalog) = storage().await;
        let acme = OrgName::parse("acme").unwrap();
        let admin = |(email, password): (&str, &str), role| NewUser {
            email: email.into(),
            password: password.into(),
            role,
        };
        catalog
            .create_org(&acme, admin(ACME_ADMIN, Role::Admin))
            .await
            .unwrap();
        catalog
            .create_user(&acme, admin(ACME_USER, Role::User))
            .await
            .unwrap();
        catalog
            .create_org(&OrgName::parse("beta").unwrap(), admin(BETA_ADMIN, Role::Admin))
            .await
            .unwrap();
        let store = catalog.open_org(&acme).await.unwrap();
        let changes: Vec<MetadataChange> = crm_entities()
            .into_iter()
            .map(|entity| MetadataChange::CreateEntity { entity })
            .collect();
        store.apply_metadata(&changes).await.unwrap();
        let generator = SampleGenerator::new(7, 20);
        for entity in [SampleEntity::Account, SampleEntity::Contact] {
            for batch in generator.batches(entity, 1000) {
                store
                    .write(WriteSet::new().upsert(entity.entity_name(), batch, UpsertMode::Upsert))
                    .await
                    .unwrap();
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(catalog.clone(), config);
        tokio::spawn(crmsync_server::serve_with(listener, state, scheduler, async {
            let _ = rx.await;
        }));
        TestServer {
            url,
            client: reqwest::Client::new(),
            catalog,
            _storage: storage,
            _shutdown: tx,
        }
    }

    /// The Web API base of an org.
    pub fn api(&self, org: &str) -> String {
        format!("{}/{org}/api/data/v9.2/", self.url)
    }

    pub fn get(&self, org: &str, path: &str, who: (&str, &str)) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.api(org)))
            .basic_auth(who.0, Some(who.1))
    }

    pub fn send(
        &self,
        method: reqwest::Method,
        org: &str,
        path: &str,
        who: (&str, &str),
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.api(org)))
            .basic_auth(who.0, Some(who.1))
    }
}

/// A route of the sync webservice of `org`.
pub fn sync_url(s: &TestServer, org: &str, path: &str) -> String {
    format!("{}/rest/v1/sync/{org}/{path}", s.url)
}

/// Polls an asynchronous job (its `Location`) as `who` until it ends; returns its final JSON.
pub async fn wait_job(s: &TestServer, location: &str, who: (&str, &str)) -> serde_json::Value {
    for _ in 0..600 {
        let job = json(
            s.client
                .get(format!("{}{location}", s.url))
                .basic_auth(who.0, Some(who.1))
                .send()
                .await
                .unwrap(),
        )
        .await;
        if !matches!(job["status"].as_str(), Some("Queued" | "Running")) {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {location} did not end");
}

/// The record id of an `OData-EntityId` header (`…/accounts(<id>)`).
pub fn id_in(entity_id: &str) -> String {
    entity_id
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_owned()
}

/// The record id of a create's answer, from its `OData-EntityId` header.
pub fn created_id(r: &reqwest::Response) -> String {
    id_in(r.headers()["odata-entityid"].to_str().unwrap())
}

pub async fn json(response: reqwest::Response) -> serde_json::Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"))
}

/// Asserts the Dataverse-style error body and returns its message.
pub async fn error(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let body = json(response).await;
    let code = body["error"]["code"].as_str().unwrap_or_default();
    assert!(!code.is_empty(), "error code missing: {body}");
    body["error"]["message"].as_str().unwrap_or_default().to_owned()
}
