//! Shared state of the server: the catalog, the authenticator and settings.

use std::sync::Arc;

use crmsync_store::Catalog;

use crate::auth::Authenticator;
use crate::ratelimit::{RateLimit, RateLimiter};

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Key signing bearer tokens (derived from the master key).
    pub token_key: [u8; 32],
    /// Lifetime of bearer tokens, in seconds.
    pub token_ttl_secs: i64,
    /// Default and largest page size of collection reads (`Prefer: odata.maxpagesize`).
    pub max_page_size: usize,
    /// Key sealing connection secrets (derived from the master key).
    pub secrets_key: [u8; 32],
    /// Whether `ConnectAsync` may register new client organizations.
    pub registration_open: bool,
    /// Whether server URLs on loopback or private addresses are accepted.
    pub allow_private_urls: bool,
    /// Registration attempts (the public Connect page) allowed per client address.
    pub registration_limit: RateLimit,
    /// Sign-in attempts (the admin UI's sign-in form) allowed per client address.
    pub signin_limit: RateLimit,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            token_key: rand::random(),
            token_ttl_secs: 3600,
            max_page_size: 5000,
            secrets_key: rand::random(),
            registration_open: true,
            allow_private_urls: false,
            registration_limit: RateLimit {
                attempts: 10,
                window: std::time::Duration::from_secs(3600),
            },
            signin_limit: RateLimit {
                attempts: 20,
                window: std::time::Duration::from_secs(15 * 60),
            },
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub auth: Arc<Authenticator>,
    pub config: Arc<ServerConfig>,
    /// Connectors of connected orgs, for writes forwarded to their server.
    pub connectors: Arc<crate::webapi::ConnectorCache>,
    /// Registration attempts per client address.
    pub registrations: Arc<RateLimiter>,
    /// Sign-in attempts per client address.
    pub signins: Arc<RateLimiter>,
    /// The status of this instance's scheduler worker.
    pub worker: Arc<crate::scheduler::WorkerStatus>,
    /// Counters and latencies behind `GET /metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Wakes this instance's scheduler when work was queued here.
    pub work_added: Arc<tokio::sync::Notify>,
    /// The name of this instance in the work queue's leases (its scheduler's owner; set by
    /// `serve_with`), also used for the work its requests run themselves.
    pub instance: Arc<str>,
}

impl AppState {
    pub fn new(catalog: Arc<dyn Catalog>, config: ServerConfig) -> Self {
        let auth = Arc::new(Authenticator::new(
            catalog.clone(),
            config.token_key,
            config.token_ttl_secs,
        ));
        Self {
            catalog,
            auth,
            registrations: Arc::new(RateLimiter::new(config.registration_limit)),
            signins: Arc::new(RateLimiter::new(config.signin_limit)),
            config: Arc::new(config),
            connectors: Arc::default(),
            worker: Arc::default(),
            metrics: Arc::default(),
            work_added: Arc::default(),
            instance: format!("instance-{}", uuid::Uuid::new_v4()).into(),
        }
    }
}
