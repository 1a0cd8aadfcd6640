//! The Dataverse Web API connector (crmsync and Dynamics 365 servers).
//!
//! - `config`: [`DataverseConfig`], credentials with redacted secrets, URL checks;
//! - `auth`: Basic, or OAuth2 tokens fetched, cached and refreshed;
//! - `transport`: the HTTP client (no redirects, public addresses only), GET with retries,
//!   HTTP failures as `SyncError`s;
//! - `retry`: the backoff schedule and `Retry-After` (pure);
//! - `mapping`: Dataverse JSON to entity metadata, `$select` lists, paging cookies;
//! - `decode`: record pages decoded from the response bytes into typed batches;
//! - `write`: client changes as a `$batch`, and its answers;
//! - `client`: [`DataverseConnector`], the `Connector` implementation.

mod auth;
mod client;
mod config;
pub mod decode;
pub mod mapping;
mod retry;
mod transport;
pub mod write;

pub use auth::DEFAULT_PUBLIC_CLIENT_ID;
pub use client::DataverseConnector;
pub use config::{Backend, Credentials, DataverseConfig, Secret, check_url, is_public_ip};
pub use retry::{RetryPolicy, parse_retry_after};
