//! Connectors to the Server organization of a sync: implementations of
//! `crmsync_sync::Connector`.
//!
//! Both backend types, another crmsync org and Dynamics 365 / Dataverse, speak the Dataverse
//! Web API, so one connector ([`DataverseConnector`], in `dataverse/`) serves both; the
//! backend only decides authentication (Basic or crmsync tokens, or OAuth2 with Microsoft
//! Entra ID). The folder has the connector shape every connector follows: `config.rs`,
//! `client.rs`, `mapping.rs`, `retry.rs`, plus `auth.rs` and `transport.rs` (HTTP, URL safety,
//! error mapping).

mod connection;
pub mod dataverse;

pub use connection::{INTERACTIVE_RETRIES, for_connection, interactive_connector};
pub use dataverse::{Backend, Credentials, DataverseConfig, DataverseConnector, RetryPolicy, Secret};
