//! Operations on a client org's connection shared by the command line and the sync
//! webservice: connect (SPEC §5.3 ConnectAsync), metadata update and Sync All. The caller
//! supplies how to build a connector for a connection, so this crate stays free of HTTP.
//!
//! A connect can wait in the durable work queue ([`SealedConnectRequest`]): its secrets (the
//! server password, and a registrant's password) are sealed like a connection's, so the queue
//! never holds them in clear.

use std::sync::Arc;

use crmsync_model::{EntityName, OrgName};
use crmsync_store::{Catalog, NewUser, OrgStore, Role, StoreError};
use serde::{Deserialize, Serialize};

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
        Ok(_) => {
            if let Some(registrant) = &request.registration {
                check_registrant(catalog, &org, registrant).await?;
            }
        }
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

/// A registration that finds its org existing goes on only if the registrant is already its
/// admin with that password (the same registration tried again, after an instance died
/// half-way); an org someone else registered meanwhile is refused, not taken over.
async fn check_registrant(
    catalog: &dyn Catalog,
    org: &OrgName,
    registrant: &NewUser,
) -> Result<(), SyncError> {
    let user = catalog.find_user(org, &registrant.email).await?;
    let same = user.is_some_and(|u| {
        u.role == Role::Admin && crmsync_store::password::verify(&registrant.password, &u.password_hash)
    });
    if same {
        Ok(())
    } else {
        Err(SyncError::Conflict(format!(
            "the organization '{org}' already exists: choose another name, or connect it as its admin"
        )))
    }
}

/// A [`ConnectRequest`] as the work queue keeps it: secrets sealed for the client org
/// ([`SealedSecret`], the connection's own mechanism), so that only an instance holding the
/// master key can open them. Whether private server addresses are allowed is not kept: the
/// instance that runs the connect applies its own setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedConnectRequest {
    pub server_url: String,
    pub backend: BackendType,
    pub user: String,
    pub password: SealedSecret,
    pub entities: Vec<EntityName>,
    pub filters_xml: Option<String>,
    pub write_offline: bool,
    pub registration: Option<SealedRegistrant>,
}

/// The admin of an org a connect registers, password sealed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SealedRegistrant {
    pub email: String,
    pub password: SealedSecret,
}

impl SealedConnectRequest {
    pub fn seal(key: &[u8; 32], request: &ConnectRequest) -> SealedConnectRequest {
        let org = &request.client_org;
        SealedConnectRequest {
            server_url: request.server_url.clone(),
            backend: request.backend,
            user: request.user.clone(),
            password: SealedSecret::seal(key, org, &request.password),
            entities: request.entities.clone(),
            filters_xml: request.filters_xml.clone(),
            write_offline: request.write_offline,
            registration: request.registration.as_ref().map(|r| SealedRegistrant {
                email: r.email.clone(),
                password: SealedSecret::seal(key, org, &r.password),
            }),
        }
    }

    /// The request for `org`; fails if the secrets were sealed for another org or key.
    pub fn open(
        &self,
        key: &[u8; 32],
        org: &OrgName,
        allow_private_urls: bool,
    ) -> Result<ConnectRequest, SyncError> {
        let registration = match &self.registration {
            Some(r) => Some(NewUser {
                email: r.email.clone(),
                password: r.password.open(key, org)?,
                role: Role::Admin,
            }),
            None => None,
        };
        Ok(ConnectRequest {
            client_org: org.clone(),
            server_url: self.server_url.clone(),
            backend: self.backend,
            user: self.user.clone(),
            password: self.password.open(key, org)?,
            entities: self.entities.clone(),
            filters_xml: self.filters_xml.clone(),
            write_offline: self.write_offline,
            allow_private_urls,
            registration,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_connect_keeps_no_secret_in_clear_and_opens_only_for_its_org() {
        let org = OrgName::parse("field").unwrap();
        let request = ConnectRequest {
            client_org: org.clone(),
            server_url: "https://server.example/acme".into(),
            backend: BackendType::Crmsync,
            user: "admin@acme.example".into(),
            password: "server-secret-1".into(),
            entities: vec![EntityName::parse("account").unwrap()],
            filters_xml: Some("<SyncFilters/>".into()),
            write_offline: true,
            allow_private_urls: false,
            registration: Some(NewUser {
                email: "lead@field.example".into(),
                password: "registrant-secret-2".into(),
                role: Role::Admin,
            }),
        };
        let sealed = SealedConnectRequest::seal(&[7; 32], &request);
        let stored = serde_json::to_string(&sealed).unwrap();
        assert!(
            !stored.contains("server-secret-1") && !stored.contains("registrant-secret-2"),
            "{stored}"
        );
        let back: SealedConnectRequest = serde_json::from_str(&stored).unwrap();
        let opened = back.open(&[7; 32], &org, true).unwrap();
        assert_eq!(opened.password, "server-secret-1");
        assert_eq!(opened.registration.unwrap().password, "registrant-secret-2");
        assert_eq!(
            (opened.entities, opened.write_offline, opened.allow_private_urls),
            (request.entities, true, true)
        );
        assert!(back.open(&[8; 32], &org, true).is_err(), "another key");
        assert!(
            back.open(&[7; 32], &OrgName::parse("other").unwrap(), true)
                .is_err(),
            "another org"
        );
    }
}
