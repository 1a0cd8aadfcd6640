//! HTTP for the connector: the reqwest client (timeouts, no redirects, no proxies, a DNS
//! resolver that refuses private addresses), requests with retries, and the mapping of
//! failures to `SyncError`.
//!
//! Invariants:
//! - redirects are never followed (a redirect answer is an error), so credentials are only
//!   ever sent to the configured server and token endpoint;
//! - unless private URLs are allowed, every connection's host name is resolved by
//!   [`PublicOnlyResolver`], which refuses the whole name if any of its addresses is not
//!   public; literal IP hosts are checked by `config::check_url`;
//! - a response body is read whole, within [`MAX_BODY_BYTES`], inside the retry loop, so a
//!   connection dropped mid-body is retried like one dropped before the status line;
//! - a 401 is retried once with a fresh token (OAuth only); retryable failures follow the
//!   [`RetryPolicy`] and are logged without secrets or query strings.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crmsync_sync::SyncError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{StatusCode, Url};
use serde_json::Value as Json;

use super::auth::Auth;
use super::config::{DataverseConfig, is_public_ip, refused};
use super::retry::{RetryPolicy, parse_retry_after};

/// Largest response body accepted (a page of 5,000 wide records fits many times).
pub const MAX_BODY_BYTES: usize = 512 * 1024 * 1024;

/// A host name that resolved to a non-public address.
#[derive(Debug)]
struct PrivateAddress(String);

impl std::fmt::Display for PrivateAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused private address {}", self.0)
    }
}

impl StdError for PrivateAddress {}

/// Resolves host names with the system resolver and refuses non-public addresses.
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !is_public_ip(a.ip())) {
                let e: Box<dyn StdError + Send + Sync> =
                    Box::new(PrivateAddress(format!("{host} ({})", bad.ip())));
                return Err(e);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client of a connector.
pub fn http_client(config: &DataverseConfig) -> Result<reqwest::Client, SyncError> {
    let mut builder = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(30)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("crmsync/", env!("CARGO_PKG_VERSION")));
    if !config.allow_private_urls {
        builder = builder.dns_resolver(std::sync::Arc::new(PublicOnlyResolver));
    }
    builder
        .build()
        .map_err(|e| SyncError::Invalid(format!("cannot build the HTTP client: {e}")))
}

/// A transport failure as a `SyncError`: a refused address is `Invalid`, anything else
/// `Network` with the causes (reqwest's top-level message alone says little).
pub fn network_error(e: &reqwest::Error) -> SyncError {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(private) = cause.downcast_ref::<PrivateAddress>() {
            return refused(&private.0);
        }
        let text = cause.to_string();
        if text.starts_with("refused private address ") {
            return refused(text.trim_start_matches("refused private address "));
        }
        message = format!("{message}: {text}");
        source = cause.source();
    }
    if e.is_builder() {
        return SyncError::Invalid(message);
    }
    SyncError::Network(message)
}

/// Dataverse's error body `{"error":{"code","message"}}` or a short text.
fn error_message(status: StatusCode, body: &[u8]) -> (String, String) {
    let json: Option<Json> = serde_json::from_slice(body).ok();
    let field = |k: &str| {
        json.as_ref()
            .and_then(|j| j.pointer(&format!("/error/{k}")))
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    let message = field("message").unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(300).collect();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            text
        }
    });
    (field("code").unwrap_or_default(), message)
}

/// Whether an error answer says the change-tracking token has expired: crmsync's 410
/// `ChangeTokenExpired`, or Dataverse's `ExpiredVersionStamp` fault (0x80044352, "Version
/// stamp associated with the client has expired").
fn is_expired(status: StatusCode, code: &str, message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    status == StatusCode::GONE
        || code.eq_ignore_ascii_case("0x80044352")
        || code.eq_ignore_ascii_case("ChangeTokenExpired")
        || code.eq_ignore_ascii_case("ExpiredVersionStamp")
        || (lower.contains("version stamp") && lower.contains("expired"))
}

/// The `SyncError` of an error status.
pub fn status_error(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &[u8]) -> SyncError {
    let (code, message) = error_message(status, body);
    if is_expired(status, &code, &message) {
        return SyncError::Expired(message);
    }
    match status.as_u16() {
        401 | 403 => SyncError::Unauthorized(message),
        s @ (429 | 503) => SyncError::Server {
            status: s,
            message,
            retry_after: headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
        },
        s if status.is_redirection() => SyncError::Protocol(format!(
            "the server answered {s} (a redirect to {}); redirects are not followed: check the server URL",
            headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
        )),
        s => SyncError::Server {
            status: s,
            message,
            retry_after: None,
        },
    }
}

/// Sends requests for a connector. Cheap to clone (the HTTP client and the sign-in state are
/// shared), so a task of its own can send a request.
#[derive(Clone)]
pub struct Transport {
    pub http: reqwest::Client,
    pub auth: std::sync::Arc<Auth>,
    pub retry: RetryPolicy,
}

impl Transport {
    /// GETs `url` and parses the JSON answer, retrying as the module header says.
    pub async fn get_json(&self, url: &Url, prefer: Option<&str>) -> Result<Json, SyncError> {
        let body = self.get(url, prefer).await?;
        serde_json::from_slice(&body).map_err(|e| SyncError::Protocol(format!("the answer is not JSON: {e}")))
    }

    /// GETs `url` and returns the body of the successful answer, retrying as the module
    /// header says.
    pub async fn get(&self, url: &Url, prefer: Option<&str>) -> Result<Vec<u8>, SyncError> {
        Ok(self.send(&Request::get(url, prefer)).await?.1)
    }

    /// Sends `request` and returns the content type and body of its 2xx answer, retrying as
    /// the module header says (a request is only sent again when it is safe to: GETs, and
    /// writes that are idempotent by construction).
    pub async fn send(&self, request: &Request<'_>) -> Result<(String, Vec<u8>), SyncError> {
        let url = request.url;
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            let err = match self.attempt(request).await {
                Ok(answer) => return Ok(answer),
                Err((Some(StatusCode::UNAUTHORIZED), err)) if !reauthenticated => {
                    if self.auth.invalidate().await {
                        reauthenticated = true;
                        tracing::info!(path = url.path(), "access token refused; signing in again");
                        continue;
                    }
                    err
                }
                Err((_, err)) => err,
            };
            if !err.is_retryable() || attempt >= self.retry.max_retries {
                return Err(err);
            }
            let retry_after = match &err {
                SyncError::Server { retry_after, .. } => *retry_after,
                _ => None,
            };
            let delay = self.retry.delay(attempt, retry_after, rand::random::<f64>());
            attempt += 1;
            tracing::warn!(
                host = url.host_str().unwrap_or_default(),
                path = url.path(),
                attempt,
                max_retries = self.retry.max_retries,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying a request to the server"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One try: the content type and body of a 2xx answer, or the error (with the status, if
    /// any).
    async fn attempt(&self, r: &Request<'_>) -> Result<(String, Vec<u8>), (Option<StatusCode>, SyncError)> {
        let mut request = self
            .http
            .request(r.method.clone(), r.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0");
        if let Some(prefer) = r.prefer {
            request = request.header("Prefer", prefer);
        }
        if let Some((content_type, body)) = &r.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, *content_type)
                .body(body.to_string());
        }
        let request = self
            .auth
            .authorize(&self.http, request)
            .await
            .map_err(|e| (None, e))?;
        let response = request.send().await.map_err(|e| (None, network_error(&e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_body(response).await.map_err(|e| (None, e))?;
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        // A batch that failed a change set answers 4xx with the per-operation answers.
        let batch_answer = status.is_client_error()
            && status != StatusCode::UNAUTHORIZED
            && status != StatusCode::TOO_MANY_REQUESTS
            && content_type.to_ascii_lowercase().starts_with("multipart/mixed");
        if status.is_success() || batch_answer {
            Ok((content_type, body))
        } else {
            Err((Some(status), status_error(status, &headers, &body)))
        }
    }
}

/// One request to the server.
pub struct Request<'a> {
    pub method: reqwest::Method,
    pub url: &'a Url,
    pub prefer: Option<&'a str>,
    /// Content type and body.
    pub body: Option<(&'a str, &'a str)>,
}

impl<'a> Request<'a> {
    pub fn get(url: &'a Url, prefer: Option<&'a str>) -> Self {
        Self {
            method: reqwest::Method::GET,
            url,
            prefer,
            body: None,
        }
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, SyncError> {
    // Room for the announced length, so a large page is not copied each time the buffer grows.
    let announced = response.content_length().unwrap_or(0).min(MAX_BODY_BYTES as u64);
    let mut body = Vec::with_capacity(announced as usize);
    while let Some(chunk) = response.chunk().await.map_err(|e| network_error(&e))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(SyncError::Protocol(format!(
                "the answer is larger than {} MiB",
                MAX_BODY_BYTES / (1024 * 1024)
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_map_to_sync_errors() {
        let h = reqwest::header::HeaderMap::new();
        let body = br#"{"error":{"code":"0x80044352","message":"Version stamp associated with the client has expired. Please perform a full sync."}}"#;
        assert!(matches!(
            status_error(StatusCode::BAD_REQUEST, &h, body),
            SyncError::Expired(_)
        ));
        let gone = br#"{"error":{"code":"ChangeTokenExpired","message":"the token has expired"}}"#;
        assert!(
            matches!(status_error(StatusCode::GONE, &h, gone), SyncError::Expired(m) if m.contains("expired"))
        );
        let bad = br#"{"error":{"code":"0x80060888","message":"Could not find a property named 'x'"}}"#;
        assert!(matches!(
            status_error(StatusCode::BAD_REQUEST, &h, bad),
            SyncError::Server { status: 400, message, .. } if message.contains("property named 'x'")
        ));
        assert!(matches!(
            status_error(StatusCode::FORBIDDEN, &h, b""),
            SyncError::Unauthorized(_)
        ));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert!(matches!(
            status_error(StatusCode::TOO_MANY_REQUESTS, &h, b"slow down"),
            SyncError::Server { status: 429, retry_after: Some(d), message } if d == Duration::from_secs(7) && message == "slow down"
        ));
        assert!(matches!(
            status_error(StatusCode::INTERNAL_SERVER_ERROR, &h, b""),
            SyncError::Server {
                status: 500,
                retry_after: None,
                ..
            }
        ));
        h.insert("location", "https://elsewhere.example/".parse().unwrap());
        assert!(
            matches!(status_error(StatusCode::FOUND, &h, b""), SyncError::Protocol(m) if m.contains("elsewhere"))
        );
    }
}
