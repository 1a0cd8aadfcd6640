//! Signing requests in: HTTP Basic (crmsync servers) or OAuth2 bearer tokens (Dynamics via
//! Microsoft Entra ID, or a crmsync server's own `{url}/oauth2/token`).
//!
//! Tokens are fetched on first use with the password or client credentials grant (form
//! encoded, as OAuth2 requires), cached, and fetched again when they are within a minute of
//! expiry or after the server answered 401 to them ([`Auth::invalidate`]). One fetch at a
//! time: concurrent requests wait for the same token. Secrets and tokens are never logged.

use std::time::{Duration, Instant};

use crmsync_sync::SyncError;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::config::{Backend, Credentials, DataverseConfig, Secret, check_url};

/// The public client Microsoft documents for Dataverse samples, used for the password grant
/// when no `client_id` is configured.
pub const DEFAULT_PUBLIC_CLIENT_ID: &str = "51f81489-12ee-4a9e-aaae-a2591f45987d";

/// How long before its expiry a token is replaced.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// How a connector authenticates.
pub enum Auth {
    Basic { user: String, password: Secret },
    OAuth(TokenSource),
}

/// An OAuth2 token endpoint and the form to post to it.
pub struct TokenSource {
    token_url: String,
    /// Form fields; values are secrets because some are.
    form: Vec<(&'static str, Secret)>,
    cached: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    token: Secret,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl Auth {
    /// The authentication `config` asks for; checks the token URL like the server URL.
    pub fn from_config(config: &DataverseConfig) -> Result<Auth, SyncError> {
        let base = config.base_url()?;
        let own_token_url = || base.join("oauth2/token").map(|u| u.to_string());
        let token_url = |configured: &Option<String>, default: String| -> Result<String, SyncError> {
            let url = configured.clone().unwrap_or(default);
            check_url(&url, config.allow_private_urls).map(|u| u.to_string())
        };
        let scope = format!("{}/.default", base.as_str().trim_end_matches('/'));
        let secret = |s: &str| Secret::new(s);
        match (&config.credentials, config.backend) {
            (Credentials::Basic { user, password }, Backend::Crmsync) => Ok(Auth::Basic {
                user: user.clone(),
                password: password.clone(),
            }),
            (Credentials::Basic { .. }, Backend::Dynamics) => Err(SyncError::Invalid(
                "Dynamics 365 does not accept Basic authentication: use the password or client \
                 credentials grant"
                    .into(),
            )),
            (
                Credentials::Password {
                    user,
                    password,
                    client_id,
                    token_url: configured,
                },
                backend,
            ) => {
                let mut form = vec![
                    ("grant_type", secret("password")),
                    ("username", secret(user)),
                    ("password", password.clone()),
                ];
                let default = match backend {
                    Backend::Crmsync => own_token_url().map_err(|e| SyncError::Invalid(e.to_string()))?,
                    Backend::Dynamics => {
                        form.push((
                            "client_id",
                            secret(client_id.as_deref().unwrap_or(DEFAULT_PUBLIC_CLIENT_ID)),
                        ));
                        form.push(("scope", secret(&scope)));
                        "https://login.microsoftonline.com/organizations/oauth2/v2.0/token".into()
                    }
                };
                if backend == Backend::Crmsync
                    && let Some(id) = client_id
                {
                    form.push(("client_id", secret(id)));
                }
                Ok(Auth::OAuth(TokenSource::new(
                    token_url(configured, default)?,
                    form,
                )))
            }
            (
                Credentials::ClientCredentials {
                    tenant_id,
                    client_id,
                    client_secret,
                    token_url: configured,
                },
                backend,
            ) => {
                let mut form = vec![
                    ("grant_type", secret("client_credentials")),
                    ("client_id", secret(client_id)),
                    ("client_secret", client_secret.clone()),
                ];
                let default = match (backend, tenant_id) {
                    (Backend::Crmsync, _) => {
                        own_token_url().map_err(|e| SyncError::Invalid(e.to_string()))?
                    }
                    (Backend::Dynamics, Some(tenant)) => {
                        form.push(("scope", secret(&scope)));
                        format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
                    }
                    (Backend::Dynamics, None) if configured.is_some() => {
                        form.push(("scope", secret(&scope)));
                        String::new()
                    }
                    (Backend::Dynamics, None) => {
                        return Err(SyncError::Invalid(
                            "the client credentials grant needs a tenant id or a token URL".into(),
                        ));
                    }
                };
                Ok(Auth::OAuth(TokenSource::new(
                    token_url(configured, default)?,
                    form,
                )))
            }
        }
    }

    /// Adds the `Authorization` header to `request`, fetching a token if needed.
    pub async fn authorize(
        &self,
        http: &reqwest::Client,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, SyncError> {
        match self {
            Auth::Basic { user, password } => Ok(request.basic_auth(user, Some(password.expose()))),
            Auth::OAuth(source) => {
                let token = source.token(http).await?;
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                        SyncError::Protocol("the access token is not a valid header value".into())
                    })?;
                value.set_sensitive(true);
                Ok(request.header(reqwest::header::AUTHORIZATION, value))
            }
        }
    }

    /// Forgets the cached token after a 401; returns whether there was one to forget (so the
    /// request is worth one more try).
    pub async fn invalidate(&self) -> bool {
        match self {
            Auth::Basic { .. } => false,
            Auth::OAuth(source) => source.cached.lock().await.take().is_some(),
        }
    }
}

impl TokenSource {
    fn new(token_url: String, form: Vec<(&'static str, Secret)>) -> Self {
        Self {
            token_url,
            form,
            cached: Mutex::new(None),
        }
    }

    async fn token(&self, http: &reqwest::Client) -> Result<Secret, SyncError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch(http).await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<CachedToken, SyncError> {
        let form: Vec<(&str, &str)> = self.form.iter().map(|(k, v)| (*k, v.expose())).collect();
        tracing::debug!(token_url = %self.token_url, "requesting an access token");
        let response = http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| super::transport::network_error(&e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| super::transport::network_error(&e))?;
        if status.is_success() {
            let parsed: TokenResponse = serde_json::from_slice(&body)
                .map_err(|e| SyncError::Protocol(format!("unreadable token response: {e}")))?;
            let lifetime = parsed
                .expires_in
                .as_ref()
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(3600));
            let now = Instant::now();
            let refresh_at = now + lifetime.saturating_sub(REFRESH_MARGIN.min(lifetime / 2));
            return Ok(CachedToken {
                token: Secret::new(parsed.access_token),
                refresh_at,
            });
        }
        let error: Option<TokenError> = serde_json::from_slice(&body).ok();
        let message = error
            .map(|e| match e.error_description {
                Some(d) => format!("{}: {d}", e.error),
                None => e.error,
            })
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("the token endpoint answered {status}"));
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(SyncError::Server {
                status: status.as_u16(),
                message,
                retry_after: None,
            });
        }
        Err(SyncError::Unauthorized(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(backend: Backend, credentials: Credentials) -> DataverseConfig {
        DataverseConfig::new("https://contoso.crm.dynamics.com", backend, credentials)
    }

    fn form(auth: &Auth) -> (String, Vec<(&'static str, String)>) {
        match auth {
            Auth::OAuth(s) => (
                s.token_url.clone(),
                s.form.iter().map(|(k, v)| (*k, v.expose().to_owned())).collect(),
            ),
            Auth::Basic { .. } => panic!("expected OAuth"),
        }
    }

    #[test]
    fn dynamics_grants_target_entra_id_with_the_org_scope() {
        let auth = Auth::from_config(&config(
            Backend::Dynamics,
            Credentials::ClientCredentials {
                tenant_id: Some("tenant-1".into()),
                client_id: "app".into(),
                client_secret: Secret::new("shh"),
                token_url: None,
            },
        ))
        .unwrap();
        let (url, fields) = form(&auth);
        assert_eq!(
            url,
            "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token"
        );
        assert!(fields.contains(&("scope", "https://contoso.crm.dynamics.com/.default".into())));
        assert!(fields.contains(&("grant_type", "client_credentials".into())));

        let auth = Auth::from_config(&config(
            Backend::Dynamics,
            Credentials::Password {
                user: "u@contoso.example".into(),
                password: Secret::new("pw"),
                client_id: None,
                token_url: None,
            },
        ))
        .unwrap();
        let (url, fields) = form(&auth);
        assert!(url.contains("/organizations/oauth2/v2.0/token"));
        assert!(fields.contains(&("client_id", DEFAULT_PUBLIC_CLIENT_ID.into())));
        assert!(fields.contains(&("grant_type", "password".into())));
    }

    #[test]
    fn crmsync_uses_basic_or_its_own_token_endpoint_and_dynamics_refuses_basic() {
        let mut c = config(
            Backend::Crmsync,
            Credentials::Password {
                user: "u".into(),
                password: Secret::new("pw"),
                client_id: None,
                token_url: None,
            },
        );
        c.url = "https://crm.example.com/acme".into();
        let (url, _) = form(&Auth::from_config(&c).unwrap());
        assert_eq!(url, "https://crm.example.com/acme/oauth2/token");
        let basic = Credentials::Basic {
            user: "u".into(),
            password: Secret::new("pw"),
        };
        assert!(matches!(
            Auth::from_config(&config(Backend::Crmsync, basic.clone())),
            Ok(Auth::Basic { .. })
        ));
        assert!(matches!(
            Auth::from_config(&config(Backend::Dynamics, basic)),
            Err(SyncError::Invalid(_))
        ));
        let private_token_url = config(
            Backend::Dynamics,
            Credentials::ClientCredentials {
                tenant_id: None,
                client_id: "app".into(),
                client_secret: Secret::new("shh"),
                token_url: Some("http://169.254.169.254/token".into()),
            },
        );
        assert!(matches!(
            Auth::from_config(&private_token_url),
            Err(SyncError::Invalid(_))
        ));
    }
}
