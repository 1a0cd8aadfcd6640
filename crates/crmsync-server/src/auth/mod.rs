//! Authentication of org-scoped requests: HTTP Basic (email and password, argon2id) and
//! Bearer tokens from `POST /{org}/oauth2/token`.
//!
//! Successful Basic verifications are cached for a minute under a salted SHA-256 of the
//! credentials, so a client sending Basic on every request does not pay an argon2 hash per
//! request; the cache never holds a password.

mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crmsync_model::OrgName;
use crmsync_store::{Catalog, OrgStore, Role, User, password};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use token::{Claims, TokenSigner};

use crate::{ApiError, AppState};

const BASIC_CACHE_TTL: Duration = Duration::from_secs(60);

/// An authenticated caller of one organization.
#[derive(Clone)]
pub struct Caller {
    pub org: OrgName,
    pub user: User,
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
    salt: [u8; 16],
    basic_cache: Mutex<HashMap<[u8; 32], (User, Instant)>>,
}

impl Authenticator {
    pub fn new(catalog: Arc<dyn Catalog>, key: [u8; 32], ttl_secs: i64) -> Self {
        Self {
            catalog,
            signer: TokenSigner::new(key),
            ttl_secs,
            salt: rand::random(),
            basic_cache: Mutex::new(HashMap::new()),
        }
    }

    /// Checks email and password against the org's users.
    pub async fn check_password(&self, org: &OrgName, email: &str, secret: &str) -> Result<User, ApiError> {
        let cache_key: [u8; 32] = Sha256::new()
            .chain_update(self.salt)
            .chain_update(org.as_str())
            .chain_update([0])
            .chain_update(email.trim().to_lowercase())
            .chain_update([0])
            .chain_update(secret)
            .finalize()
            .into();
        if let Some((user, at)) = self
            .basic_cache
            .lock()
            .expect("cache lock")
            .get(&cache_key)
            .cloned()
            && at.elapsed() < BASIC_CACHE_TTL
        {
            return Ok(user);
        }
        let user = match self.catalog.find_user(org, email).await {
            Ok(Some(user)) => user,
            Ok(None) | Err(crmsync_store::StoreError::NotFound(_)) => return Err(ApiError::unauthorized()),
            Err(e) => return Err(e.into()),
        };
        let (hash, secret) = (user.password_hash.clone(), secret.to_owned());
        let ok = tokio::task::spawn_blocking(move || password::verify(&secret, &hash))
            .await
            .map_err(ApiError::internal)?;
        if !ok {
            return Err(ApiError::unauthorized());
        }
        let mut cache = self.basic_cache.lock().expect("cache lock");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(cache_key, (user.clone(), Instant::now()));
        Ok(user)
    }

    pub fn issue_token(&self, user: &User) -> (String, i64) {
        let exp = chrono::Utc::now().timestamp() + self.ttl_secs;
        let token = self.signer.issue(&Claims {
            org: user.org.to_string(),
            sub: user.id,
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
        let user = if let Some(b) = header.strip_prefix("Basic ") {
            let decoded = STANDARD.decode(b.trim()).map_err(|_| ApiError::unauthorized())?;
            let text = String::from_utf8(decoded).map_err(|_| ApiError::unauthorized())?;
            let (email, secret) = text.split_once(':').ok_or_else(ApiError::unauthorized)?;
            self.check_password(&org, email, secret).await?
        } else if let Some(t) = header.strip_prefix("Bearer ") {
            let claims = self
                .signer
                .verify(t.trim(), chrono::Utc::now().timestamp())
                .ok_or_else(ApiError::unauthorized)?;
            if claims.org != org.as_str() {
                return Err(ApiError::unauthorized());
            }
            let users = self
                .catalog
                .list_users(&org)
                .await
                .map_err(|_| ApiError::unauthorized())?;
            users
                .into_iter()
                .find(|u| u.id == claims.sub)
                .ok_or_else(ApiError::unauthorized)?
        } else {
            return Err(ApiError::unauthorized());
        };
        let store = self.catalog.open_org(&org).await?;
        Ok(Caller { org, user, store })
    }
}

#[derive(Deserialize)]
pub struct TokenRequest {
    grant_type: String,
    username: Option<String>,
    password: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /{org}/oauth2/token` (form-encoded, as OAuth 2.0 requires): the `password` grant.
pub async fn token(
    State(state): State<AppState>,
    Path(org): Path<String>,
    form: Result<Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(request)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected an application/x-www-form-urlencoded body with grant_type",
        );
    };
    if request.grant_type != "password" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "supported grant types: password",
        );
    }
    let (Some(username), Some(secret)) = (request.username, request.password) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the password grant needs username and password",
        );
    };
    let Ok(org) = OrgName::parse(&org) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "invalid username or password",
        );
    };
    match state.auth.check_password(&org, &username, &secret).await {
        Ok(user) => {
            let (access_token, expires_in) = state.auth.issue_token(&user);
            axum::Json(serde_json::json!({"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in}))
                .into_response()
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "invalid username or password",
        ),
        Err(e) => e.into_response(),
    }
}
