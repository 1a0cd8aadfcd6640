//! `crmsync serve`: the HTTP server and the scheduler worker until Ctrl-C or SIGTERM, then a
//! graceful shutdown of both (work in flight is left to its lease, see `crmsync_server::scheduler`).

use std::sync::Arc;

use anyhow::Context;
use crmsync_server::scheduler::{Scheduler, SchedulerConfig, SystemClock};
use crmsync_server::{AppState, ServerConfig};

use crate::cli::{Registration, Serve, StoreArgs};
use crate::keys::MasterKey;
use crate::store;

pub async fn run(args: &StoreArgs, cmd: Serve) -> anyhow::Result<()> {
    let catalog = store::open(args).await?;
    let key = MasterKey::load(&args.data)?;
    let config = ServerConfig {
        token_key: key.derive("bearer-tokens"),
        secrets_key: key.derive(crmsync_server::SECRETS_PURPOSE),
        registration_open: cmd.registration != Registration::Closed,
        allow_private_urls: cmd.allow_private_urls,
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(&cmd.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cmd.listen))?;
    let address = listener.local_addr()?;
    println!("crmsync listening on http://{address}");
    let state = AppState::new(catalog, config);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = Arc::new(Scheduler::new(
        state.clone(),
        Arc::new(SystemClock),
        SchedulerConfig::default(),
    ));
    let mut stopped = stopped;
    // The worker stops when the server's shutdown future sends, or is dropped because the
    // server ended otherwise.
    let worker = tokio::spawn(scheduler.run(async move {
        let _ = stopped.changed().await;
    }));
    let served = crmsync_server::serve(listener, state, async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    })
    .await;
    worker.await.context("scheduler worker")?;
    served?;
    println!("crmsync stopped");
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
