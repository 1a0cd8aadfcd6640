//! A real crmsync server on a loopback port, with one org `acme` holding the sample CRM
//! entities and records, and connectors configured for it. Its storage is SQLite, or
//! PostgreSQL with the `postgres-tests` feature (`CRMSYNC_TEST_DATABASE_URL`).

#![allow(dead_code)]

pub mod proxy;

use std::sync::Arc;
use std::time::Duration;

use crmsync_connectors::{Backend, Credentials, DataverseConfig, DataverseConnector, RetryPolicy, Secret};
use crmsync_model::{EntityMetadata, MetadataChange, OrgName, Record};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};
use crmsync_server::{AppState, ServerConfig};
use crmsync_store::{Catalog, ListRequest, NewUser, OrgStore, Role, UpsertMode, WriteSet};

pub const ADMIN: (&str, &str) = ("admin@acme.example", "acme-password");
/// Accounts in the sample data (contacts and tasks twice as many).
pub const ACCOUNTS: u64 = 20;

#[cfg(not(feature = "postgres-tests"))]
async fn storage() -> (Box<dyn std::any::Any + Send>, Arc<dyn Catalog>) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = crmsync_store_sqlite::SqliteCatalog::open(dir.path())
        .await
        .unwrap();
    (Box::new(dir), Arc::new(catalog))
}

#[cfg(feature = "postgres-tests")]
async fn storage() -> (Box<dyn std::any::Any + Send>, Arc<dyn Catalog>) {
    let db = crmsync_store_postgres::testing::TestDatabase::fresh();
    let catalog = db.catalog().await;
    (Box::new(db), Arc::new(catalog))
}

pub struct TestServer {
    /// `http://127.0.0.1:port`.
    pub url: String,
    pub catalog: Arc<dyn Catalog>,
    pub store: Arc<dyn OrgStore>,
    /// The listening address of the server.
    pub addr: std::net::SocketAddr,
    /// Keeps the storage alive (a temporary directory, or a PostgreSQL namespace).
    _storage: Box<dyn std::any::Any + Send>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let (storage, catalog) = storage().await;
        let acme = OrgName::parse("acme").unwrap();
        let admin = NewUser {
            email: ADMIN.0.into(),
            password: ADMIN.1.into(),
            role: Role::Admin,
        };
        catalog.create_org(&acme, admin).await.unwrap();
        let store = catalog.open_org(&acme).await.unwrap();
        let changes: Vec<MetadataChange> = crm_entities()
            .into_iter()
            .map(|entity| MetadataChange::CreateEntity { entity })
            .collect();
        store.apply_metadata(&changes).await.unwrap();
        let generator = SampleGenerator::new(7, ACCOUNTS);
        for entity in SampleEntity::ALL {
            for batch in generator.batches(entity, 1000) {
                store
                    .write(WriteSet::new().upsert(entity.entity_name(), batch, UpsertMode::Upsert))
                    .await
                    .unwrap();
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(catalog.clone(), ServerConfig::default());
        tokio::spawn(crmsync_server::serve(listener, state, async {
            let _ = rx.await;
        }));
        TestServer {
            url,
            catalog,
            store,
            addr,
            _storage: storage,
            _shutdown: tx,
        }
    }

    /// The base URL of the `acme` org.
    pub fn org_url(&self) -> String {
        format!("{}/acme", self.url)
    }

    /// A configuration for `acme` with Basic credentials; private URLs allowed (loopback).
    pub fn config(&self, password: &str) -> DataverseConfig {
        let mut config = DataverseConfig::new(
            self.org_url(),
            Backend::Crmsync,
            Credentials::Basic {
                user: ADMIN.0.into(),
                password: Secret::new(password),
            },
        );
        config.allow_private_urls = true;
        config.timeout = Duration::from_secs(30);
        config
    }

    pub fn connector(&self) -> DataverseConnector {
        DataverseConnector::new(self.config(ADMIN.1))
            .unwrap()
            .with_retry_policy(fast_retries(2))
    }

    pub async fn entity(&self, name: &str) -> EntityMetadata {
        self.store.entity(name).await.unwrap()
    }

    /// Every record of `entity` as the store reads it, ordered by id.
    pub async fn records(&self, entity: &EntityMetadata) -> Vec<Record> {
        let page = self
            .store
            .list(
                &entity.logical_name,
                &ListRequest {
                    columns: None,
                    after: None,
                    limit: 100_000,
                },
            )
            .await
            .unwrap();
        assert!(page.next.is_none());
        page.records
    }
}

/// Retries with short waits, so fault tests run fast.
pub fn fast_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    }
}
