//! The crmsync HTTP server. [`app`] builds the whole router without a socket, so tests call
//! it in-process or bind port 0; [`serve`] runs it until the shutdown future completes.
//!
//! Routes:
//! - `GET /healthz` (checks the store), `GET /metrics` (Prometheus text, `metrics`)
//! - `POST /{org}/oauth2/token` — bearer tokens for users (`password` grant) and applications
//!   (`client_credentials` grant) (`auth`)
//! - `/{org}/api/data/v9.2/…` — the Dataverse-compatible Web API (`webapi`)
//! - `/rest/v1/sync/{org}/…` — the sync webservice (`syncapi`)
//! - `/admin/…` — the admin UI, and `/Register.aspx?otype=connect` (also `/register`), the
//!   public Connect page (`ui`)
//!
//! The scheduler worker (`scheduler`) runs beside the routes: `crmsync serve` starts it on the
//! same state.
//!
//! Every org-scoped route authenticates the caller against that org's users and applications; a caller of
//! another org, a missing org and wrong credentials all get the same 401, so nothing leaks.

pub mod auth;
mod error;
pub mod metrics;
mod ratelimit;
pub mod scheduler;
mod state;
pub mod syncapi;
pub mod ui;
pub mod webapi;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;

pub use error::ApiError;
pub use ratelimit::{RateLimit, RateLimiter};
pub use state::{AppState, ServerConfig};

/// Purpose of the master-key derivation that seals connection secrets.
pub const SECRETS_PURPOSE: &str = "connection-secrets";

/// Largest request body accepted (a `$batch` of 1,000 operations fits).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(metrics::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/{org}/oauth2/token", post(auth::token))
        .route("/{org}/api/data/v9.2", axum::routing::any(webapi::dispatch_root))
        .route("/{org}/api/data/v9.2/", axum::routing::any(webapi::dispatch_root))
        .route(
            "/{org}/api/data/v9.2/{*path}",
            axum::routing::any(webapi::dispatch),
        )
        .merge(syncapi::routes())
        .merge(ui::routes(state.clone()))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Serves `app(state)` on `listener`, with the scheduler worker beside it, until `shutdown`
/// completes, then finishes the requests in flight. Handlers see the peer address (`ConnectInfo`), which rate limits key on.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, scheduler::SchedulerConfig::default(), shutdown).await
}

/// [`serve`] with the scheduler worker configured (its instance name, lease length).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    scheduler: scheduler::SchedulerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let state = AppState {
        instance: scheduler.owner.as_str().into(),
        ..state
    };
    let scheduler = std::sync::Arc::new(scheduler::Scheduler::new(
        state.clone(),
        std::sync::Arc::new(scheduler::SystemClock),
        scheduler,
    ));
    // The worker stops when the shutdown future completes, or is dropped because the server
    // ended otherwise.
    let worker = tokio::spawn(scheduler.run(async move {
        let _ = stopped.changed().await;
    }));
    let served = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    let _ = worker.await;
    served
}
