//! Connectors for stored connections: the one place that turns a client org's
//! [`Connection`] (with its sealed password) into a live [`Connector`].

use std::sync::Arc;

use crmsync_model::OrgName;
use crmsync_sync::{BackendType, Connection, Connector, SyncError};

use crate::{Backend, Credentials, DataverseConfig, DataverseConnector, Secret};

/// Retries of a connector that a person is waiting on (a write forwarded to the server).
pub const INTERACTIVE_RETRIES: u32 = 2;

/// A connector for `conn`, the connection of `org`; `secrets_key` opens its password.
pub fn for_connection(
    org: &OrgName,
    conn: &Connection,
    secrets_key: &[u8; 32],
) -> Result<Arc<dyn Connector>, SyncError> {
    connector(org, conn, secrets_key, None)
}

/// [`for_connection`] for requests a person waits on: fewer retries, so a server that is
/// down is reported within seconds.
pub fn interactive_connector(
    org: &OrgName,
    conn: &Connection,
    secrets_key: &[u8; 32],
) -> Result<Arc<dyn Connector>, SyncError> {
    connector(org, conn, secrets_key, Some(INTERACTIVE_RETRIES))
}

fn connector(
    org: &OrgName,
    conn: &Connection,
    secrets_key: &[u8; 32],
    max_retries: Option<u32>,
) -> Result<Arc<dyn Connector>, SyncError> {
    let password = Secret::new(conn.password.open(secrets_key, org)?);
    let user = conn.user.clone();
    let (backend, credentials) = match conn.backend {
        BackendType::Crmsync => (Backend::Crmsync, Credentials::Basic { user, password }),
        BackendType::Dynamics => (
            Backend::Dynamics,
            Credentials::Password {
                user,
                password,
                client_id: None,
                token_url: None,
            },
        ),
    };
    let mut config = DataverseConfig::new(conn.server_url.clone(), backend, credentials);
    config.allow_private_urls = conn.allow_private_urls;
    if let Some(n) = max_retries {
        config.max_retries = n;
    }
    Ok(Arc::new(DataverseConnector::new(config)?))
}
