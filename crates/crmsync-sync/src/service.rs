//! Operations on a client org's connection shared by the command line and the sync
//! webservice: connect (SPEC §5.3 ConnectAsync), metadata update and Sync All. The caller
//! supplies how to build a connector for a connection, so this crate stays free of HTTP.

use std::sync::Arc;

use crmsync_model::{EntityName, OrgName};
use crmsync_store::{Catalog, NewUser, OrgStore, Role, StoreError};

use crate::metadata::{MetadataDiff, diff};
use crate::{BackendType, Connection, Connector, SealedSecret, SyncError, SyncSettings};

/// Builds a connector for a connection of an org.
pub type ConnectorFactory<'a> =
    &'a (dyn Fn(&OrgName, &Connection) -> Result<Arc<dyn Connector>, SyncError> + Send + Sync);

/// What a connect needs.
#[derive(Clone)]
pub struct ConnectRequest {
    pub client_org: OrgName,
    pub server_url: String,
    pub backend: BackendType,
    pub user: String,
    pub password: String,
    /// Entities to sync (empty: all of the server's).
    pub entities: Vec<EntityName>,
    /// `SyncFiltersXml`.
    pub filters_xml: Option<String>,
    pub write_offline: bool,
    pub allow_private_urls: bool,
    /// The admin of a client org created by this connect (default: the server user).
    pub registration: Option<NewUser>,
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("client_org", &self.client_org)
            .field("server_url", &self.server_url)
            .field("backend", &self.backend)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Checks the server, creates the client org if it does not exist, applies the metadata
/// update for the synced entities and stores the connection. Nothing is stored when the
/// server, the credentials, the entities or the filters fail their checks.
pub async fn connect(
    catalog: &dyn Catalog,
    secrets_key: &[u8; 32],
    request: ConnectRequest,
    connector_for: ConnectorFactory<'_>,
) -> Result<(Connection, MetadataDiff), SyncError> {
    let org = request.client_org.clone();
    let mut conn = Connection {
        server_url: request.server_url.trim().trim_end_matches('/').to_owned(),
        backend: request.backend,
        user: request.user.clone(),
        password: SealedSecret::seal(secrets_key, &org, &request.password),
        allow_private_urls: request.allow_private_urls,
        settings: SyncSettings {
            write_offline: request.write_offline,
            ..Default::default()
        },
        connected_on: chrono::Utc::now(),
    };
    let server = connector_for(&org, &conn)?;
    server.who_am_i().await?;
    let server_entities = server.entities().await?;
    conn.settings.entities = if request.entities.is_empty() {
        server_entities.iter().map(|e| e.logical_name.clone()).collect()
    } else {
        request.entities.clone()
    };
    if let Some(xml) = &request.filters_xml {
        conn.settings.filters = crate::parse_sync_filters(xml)?;
    }
    conn.settings.validate(&server_entities)?;
    match catalog.org_info(&org).await {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {
            let admin = request.registration.clone().unwrap_or(NewUser {
                email: request.user.clone(),
                password: request.password.clone(),
                role: Role::Admin,
            });
            catalog
                .create_org(
                    &org,
                    NewUser {
                        role: Role::Admin,
                        ..admin
                    },
                )
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    let client = catalog.open_org(&org).await?;
    let update = diff(
        &server_entities,
        &client.entities().await?,
        Some(&conn.settings.entities),
    );
    client.apply_metadata(&update.changes).await?;
    crate::transactions::ensure_entity(&*client).await?;
    conn.save(&*client).await?;
    Ok((conn, update))
}

/// The metadata update of a connected client org; applied unless `preview`.
pub async fn update_metadata(
    client: &dyn OrgStore,
    conn: &Connection,
    server: &dyn Connector,
    preview: bool,
) -> Result<MetadataDiff, SyncError> {
    let update = diff(
        &server.entities().await?,
        &client.entities().await?,
        Some(&conn.settings.entities),
    );
    if !preview {
        client.apply_metadata(&update.changes).await?;
    }
    Ok(update)
}
