//! Authentication of org-scoped requests: HTTP Basic (a user's email and password, argon2id)
//! and Bearer tokens from `POST /{org}/oauth2/token` (`endpoint`), issued to users (the
//! `password` grant) and to the org's applications (the `client_credentials` grant).
//!
//! Whoever signed in, handlers see a [`Caller`] whose [`Principal`] has an id, a display
//! name and a role: an application acts with the role it was created with, and its client id
//! is its user id (`WhoAmI`). A token names its org, its subject and the subject's kind; the
//! subject is looked up in that org on every request, so deleting a user or an application
//! revokes its tokens at once, and a token of one org never opens another.
//!
//! Successful verifications of a password or an application secret are cached for a minute
//! (`cache`), so a client sending Basic on every request does not pay an argon2 hash per
//! request; the cache never holds a secret.

mod cache;
mod endpoint;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crmsync_model::OrgName;
use crmsync_store::{App, Catalog, OrgStore, Role, StoreError, User, password};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use endpoint::token;
pub use token::{Claims, TokenSigner};

use crate::ApiError;
use cache::VerifiedCache;

const VERIFIED_CACHE_TTL: Duration = Duration::from_secs(60);

/// What signed in: a user of the org or one of its applications.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    #[default]
    User,
    App,
}

/// The identity behind a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user id, or the application's client id.
    pub id: Uuid,
    pub kind: PrincipalKind,
    /// The user's email, or the application's name.
    pub name: String,
    pub role: Role,
}

impl From<&User> for Principal {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            kind: PrincipalKind::User,
            name: user.email.clone(),
            role: user.role,
        }
    }
}

impl From<&App> for Principal {
    fn from(app: &App) -> Self {
        Self {
            id: app.client_id,
            kind: PrincipalKind::App,
            name: app.name.clone(),
            role: app.role,
        }
    }
}

/// An authenticated caller of one organization.
#[derive(Clone)]
pub struct Caller {
    pub org: OrgName,
    /// Who is calling: a user or an application of `org`.
    pub user: Principal,
    pub store: Arc<dyn OrgStore>,
}

impl Caller {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.user.role {
            Role::Admin => Ok(()),
            Role::User => Err(ApiError::forbidden(
                "this operation needs the organization's admin role",
            )),
        }
    }
}

pub struct Authenticator {
    catalog: Arc<dyn Catalog>,
    signer: TokenSigner,
    ttl_secs: i64,
    users: VerifiedCache<User>,
    apps: VerifiedCache<App>,
}

/// Verifies `secret` against a PHC hash off the async runtime (argon2 takes tens of ms).
async fn verify_secret(secret: &str, hash: &str) -> Result<bool, ApiError> {
    let (secret, hash) = (secret.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || password::verify(&secret, &hash))
        .await
        .map_err(ApiError::internal)
}

impl Authenticator {
    pub fn new(catalog: Arc<dyn Catalog>, key: [u8; 32], ttl_secs: i64) -> Self {
        Self {
            catalog,
            signer: TokenSigner::new(key),
            ttl_secs,
            users: VerifiedCache::new(VERIFIED_CACHE_TTL),
            apps: VerifiedCache::new(VERIFIED_CACHE_TTL),
        }
    }

    /// Checks email and password against the org's users.
    pub async fn check_password(&self, org: &OrgName, email: &str, secret: &str) -> Result<User, ApiError> {
        let email = email.trim().to_lowercase();
        let key = self.users.key(&[org.as_str(), &email, secret]);
        if let Some(user) = self.users.get(&key) {
            return Ok(user);
        }
        let user = match self.catalog.find_user(org, &email).await {
            Ok(Some(user)) => user,
            Ok(None) | Err(StoreError::NotFound(_)) => return Err(ApiError::unauthorized()),
            Err(e) => return Err(e.into()),
        };
        if !verify_secret(secret, &user.password_hash).await? {
            return Err(ApiError::unauthorized());
        }
        self.users.insert(key, user.clone());
        Ok(user)
    }

    /// Checks an application's client id and secret against the org's applications. An
    /// application of another org is unknown here.
    pub async fn check_app(&self, org: &OrgName, client_id: Uuid, secret: &str) -> Result<App, ApiError> {
        let key = self.apps.key(&[org.as_str(), &client_id.to_string(), secret]);
        if let Some(app) = self.apps.get(&key) {
            return Ok(app);
        }
        let app = match self.catalog.find_app(org, client_id).await {
            Ok(Some(app)) => app,
            Ok(None) | Err(StoreError::NotFound(_)) => return Err(ApiError::unauthorized()),
            Err(e) => return Err(e.into()),
        };
        if !verify_secret(secret, &app.secret_hash).await? {
            return Err(ApiError::unauthorized());
        }
        self.apps.insert(key, app.clone());
        Ok(app)
    }

    /// A bearer token for `principal` on `org` and its lifetime in seconds.
    pub fn issue_token(&self, org: &OrgName, principal: &Principal) -> (String, i64) {
        let exp = chrono::Utc::now().timestamp() + self.ttl_secs;
        let token = self.signer.issue(&Claims {
            org: org.to_string(),
            sub: principal.id,
            kind: principal.kind,
            exp,
        });
        (token, self.ttl_secs)
    }

    /// Authenticates a request to `org` from its `Authorization` header.
    pub async fn authenticate(&self, org: &str, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let org = OrgName::parse(org).map_err(|_| ApiError::unauthorized())?;
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let principal = if let Some(b) = header.strip_prefix("Basic ") {
            let (email, secret) = decode_basic(b).ok_or_else(ApiError::unauthorized)?;
            Principal::from(&self.check_password(&org, &email, &secret).await?)
        } else if let Some(t) = header.strip_prefix("Bearer ") {
            self.bearer(&org, t.trim()).await?
        } else {
            return Err(ApiError::unauthorized());
        };
        let store = self.catalog.open_org(&org).await?;
        Ok(Caller {
            org,
            user: principal,
            store,
        })
    }

    /// The principal of a valid token of `org` whose subject still exists there.
    async fn bearer(&self, org: &OrgName, token: &str) -> Result<Principal, ApiError> {
        let claims = self
            .signer
            .verify(token, chrono::Utc::now().timestamp())
            .ok_or_else(ApiError::unauthorized)?;
        if claims.org != org.as_str() {
            return Err(ApiError::unauthorized());
        }
        let found = match claims.kind {
            PrincipalKind::User => self
                .catalog
                .list_users(org)
                .await
                .map(|users| users.iter().find(|u| u.id == claims.sub).map(Principal::from)),
            PrincipalKind::App => self
                .catalog
                .find_app(org, claims.sub)
                .await
                .map(|app| app.as_ref().map(Principal::from)),
        };
        found
            .map_err(|_| ApiError::unauthorized())?
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The `user:password` of a Basic credential (base64 of UTF-8), split at the first colon.
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, secret) = text.split_once(':')?;
    Some((user.to_owned(), secret.to_owned()))
}
