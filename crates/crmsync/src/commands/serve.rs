//! `crmsync serve`: the HTTP server and the scheduler worker (`crmsync_server::serve`) until
//! Ctrl-C or SIGTERM, then a graceful shutdown.

use anyhow::{Context, bail};
use crmsync_server::scheduler::SchedulerConfig;
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
    let mut scheduler = SchedulerConfig::default();
    if let Some(name) = cmd.instance {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            bail!("--instance takes a name of 1 to 100 characters");
        }
        scheduler.owner = name.to_owned();
    }
    if let Some(secs) = cmd.lease_secs {
        scheduler.lease = chrono::Duration::seconds(i64::from(secs));
    }
    tracing::info!(instance = %scheduler.owner, "scheduler instance");
    println!("crmsync listening on http://{address}");
    let state = AppState::new(catalog, config);
    crmsync_server::serve_with(listener, state, scheduler, shutdown_signal()).await?;
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
