//! The connection of a Client org (SPEC §2): which server, how to sign in, what to sync.
//! Stored in the client org's own state (`sync.connection`), one per org.
//!
//! The server password never rests in clear: it is sealed with ChaCha20-Poly1305 under a key
//! derived from the master key, with the org's name as associated data, so a sealed secret
//! copied into another org does not open. `Debug` never prints it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use chrono::{DateTime, Utc};
use crmsync_model::OrgName;
use crmsync_store::{OrgStore, WriteSet};
use serde::{Deserialize, Serialize};

use crate::{SyncError, SyncSettings};

pub const CONNECTION_KEY: &str = "sync.connection";

/// The ProviderID of Dynamics 365 / Dataverse in Resco-style connect requests.
pub const DYNAMICS_PROVIDER_ID: &str = "60650fb3-5d8b-45dd-b82e-459f3b019e9a";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendType {
    /// Another crmsync organization.
    Crmsync,
    /// Microsoft Dynamics 365 / Dataverse.
    Dynamics,
}

impl BackendType {
    /// Reads a backend type by name or ProviderID (case-insensitive).
    pub fn parse(s: &str) -> Result<BackendType, SyncError> {
        match s.trim().to_ascii_lowercase().trim_matches(['{', '}']) {
            "crmsync" => Ok(BackendType::Crmsync),
            "dynamics" | DYNAMICS_PROVIDER_ID => Ok(BackendType::Dynamics),
            other => Err(SyncError::Invalid(format!(
                "unknown backend type '{other}': use 'crmsync', 'dynamics' or {DYNAMICS_PROVIDER_ID}"
            ))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            BackendType::Crmsync => "crmsync",
            BackendType::Dynamics => "dynamics",
        }
    }
}

/// A secret sealed for one org.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    nonce: String,
    data: String,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[sealed]")
    }
}

fn aad(org: &OrgName) -> Vec<u8> {
    format!("crmsync connection secret for {org}").into_bytes()
}

impl SealedSecret {
    pub fn seal(key: &[u8; 32], org: &OrgName, secret: &str) -> SealedSecret {
        let cipher = ChaCha20Poly1305::new(key.into());
        let nonce: [u8; 12] = rand::random();
        let data = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad(org),
                },
            )
            .expect("sealing a short secret cannot fail");
        SealedSecret {
            nonce: STANDARD.encode(nonce),
            data: STANDARD.encode(data),
        }
    }

    pub fn open(&self, key: &[u8; 32], org: &OrgName) -> Result<String, SyncError> {
        let fail = || {
            SyncError::Invalid(format!(
                "the stored server password of {org} cannot be decrypted (was the master key changed?)"
            ))
        };
        let nonce = STANDARD.decode(&self.nonce).map_err(|_| fail())?;
        let data = STANDARD.decode(&self.data).map_err(|_| fail())?;
        if nonce.len() != 12 {
            return Err(fail());
        }
        let cipher = ChaCha20Poly1305::new(key.into());
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &data,
                    aad: &aad(org),
                },
            )
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// The server org's base URL (`http://host/{org}` or `https://x.crm.dynamics.com`).
    pub server_url: String,
    pub backend: BackendType,
    pub user: String,
    pub password: SealedSecret,
    /// Whether the server may be on a loopback or private address.
    #[serde(default)]
    pub allow_private_urls: bool,
    pub settings: SyncSettings,
    pub connected_on: DateTime<Utc>,
}

impl Connection {
    pub async fn load(store: &dyn OrgStore) -> Result<Option<Connection>, SyncError> {
        match store.state(CONNECTION_KEY).await? {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| SyncError::Invalid(format!("the stored connection is unreadable: {e}"))),
        }
    }

    pub async fn save(&self, store: &dyn OrgStore) -> Result<(), SyncError> {
        let json = serde_json::to_string(self).map_err(|e| SyncError::Invalid(e.to_string()))?;
        store
            .write(WriteSet::new().set_state(CONNECTION_KEY, Some(json)))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_open_only_with_their_key_and_org() {
        let org = OrgName::parse("acme").unwrap();
        let sealed = SealedSecret::seal(&[1; 32], &org, "p@ss");
        assert_eq!(sealed.open(&[1; 32], &org).unwrap(), "p@ss");
        assert!(sealed.open(&[2; 32], &org).is_err());
        assert!(sealed.open(&[1; 32], &OrgName::parse("beta").unwrap()).is_err());
        assert!(!serde_json::to_string(&sealed).unwrap().contains("p@ss"));
        assert_eq!(format!("{sealed:?}"), "[sealed]");
    }

    #[test]
    fn backend_types_parse_by_name_or_provider_id() {
        assert_eq!(BackendType::parse("Dynamics").unwrap(), BackendType::Dynamics);
        assert_eq!(
            BackendType::parse("{60650FB3-5D8B-45DD-B82E-459F3B019E9A}").unwrap(),
            BackendType::Dynamics
        );
        assert_eq!(BackendType::parse("crmsync").unwrap(), BackendType::Crmsync);
        let err = BackendType::parse("salesforce").unwrap_err().to_string();
        assert!(err.contains("salesforce") && err.contains("crmsync"), "{err}");
    }
}
