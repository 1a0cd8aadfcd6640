//! Admin sessions and CSRF protection.
//!
//! A session is a signed cookie (`crmsync_session`: claims JSON and an HMAC-SHA256 under a
//! key derived from the token key), so any instance sharing the master key accepts it and
//! no session table is needed. It names the org, the user and a random session id; the user
//! is looked up on every request, so deleting a user or taking away the admin role ends
//! their sessions at once. Signing out clears the cookie. Cookies are `HttpOnly` and
//! `SameSite=Lax`.
//!
//! CSRF: every state-changing request carries a token (form field `_csrf` or header
//! `X-CSRF-Token`) equal to an HMAC of the session id; forms shown before sign-in (sign-in,
//! the Connect page) bind their token to a random id in the `crmsync_form` cookie instead.
//! [`csrf_guard`] refuses any POST under the UI without a matching token, and any POST whose
//! `Origin` names another host, before a handler runs.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crmsync_model::OrgName;
use crmsync_store::Role;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::pages::UiError;
use crate::AppState;
use crate::auth::{Caller, Principal};

pub const SESSION_COOKIE: &str = "crmsync_session";
pub const FORM_COOKIE: &str = "crmsync_form";
/// How long a sign-in lasts.
pub const SESSION_TTL_SECS: i64 = 8 * 3600;
/// Largest body of a UI form (a sync filter's FetchXML fits).
const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub org: String,
    pub sub: Uuid,
    /// Random id of this sign-in; CSRF tokens are bound to it.
    pub sid: String,
    pub exp: i64,
}

/// Signs sessions and CSRF tokens with a key of their own, derived from the token key.
#[derive(Clone)]
pub struct SessionKeys {
    key: [u8; 32],
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(&(part.len() as u64).to_le_bytes());
        mac.update(part);
    }
    mac
}

impl SessionKeys {
    pub fn new(token_key: &[u8; 32]) -> Self {
        let derived = mac(token_key, &[b"crmsync admin ui session"])
            .finalize()
            .into_bytes();
        Self { key: derived.into() }
    }

    pub fn issue(&self, claims: &SessionClaims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let signature = mac(&self.key, &[b"session", &payload]).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The claims of a well-signed, unexpired session cookie.
    pub fn verify(&self, cookie: &str, now: i64) -> Option<SessionClaims> {
        let (payload, signature) = cookie.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        mac(&self.key, &[b"session", &payload])
            .verify_slice(&signature)
            .ok()?;
        let claims: SessionClaims = serde_json::from_slice(&payload).ok()?;
        (claims.exp > now).then_some(claims)
    }

    /// The CSRF token of forms bound to `sid`.
    pub fn csrf(&self, sid: &str) -> String {
        URL_SAFE_NO_PAD.encode(mac(&self.key, &[b"csrf", sid.as_bytes()]).finalize().into_bytes())
    }

    /// Whether `presented` is the CSRF token of `sid` (compared in constant time).
    pub fn check_csrf(&self, sid: &str, presented: &str) -> bool {
        let Ok(presented) = URL_SAFE_NO_PAD.decode(presented.trim()) else {
            return false;
        };
        mac(&self.key, &[b"csrf", sid.as_bytes()])
            .verify_slice(&presented)
            .is_ok()
    }
}

impl AppState {
    /// The keys of admin sessions (derived from the token key; cheap to derive).
    pub(crate) fn session_keys(&self) -> SessionKeys {
        SessionKeys::new(&self.config.token_key)
    }
}

/// A random id, hex.
pub fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, whole site; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    ))
    .expect("cookie values are base64url or hex")
}

/// The id anonymous forms bind their CSRF token to: the `crmsync_form` cookie, or a new id
/// together with the cookie that sets it.
pub fn form_id(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, FORM_COOKIE).filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(id) => (id.to_owned(), None),
        None => {
            let id = random_id();
            let set = set_cookie(FORM_COOKIE, &id, SESSION_TTL_SECS);
            (id, Some(set))
        }
    }
}

fn session_claims(state: &AppState, headers: &HeaderMap) -> Option<SessionClaims> {
    let cookie = cookie(headers, SESSION_COOKIE)?;
    state
        .session_keys()
        .verify(cookie, chrono::Utc::now().timestamp())
}

/// A signed-in administrator of the org named in the path.
pub struct Admin {
    pub caller: Caller,
    /// The CSRF token for forms on the pages this admin sees.
    pub csrf: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let org = parts
            .uri
            .path()
            .strip_prefix("/admin/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_owned();
        let signin = || UiError::SignIn {
            org: org.clone(),
            next: parts.uri.path().to_owned(),
        };
        let org_name = OrgName::parse(&org).map_err(|_| UiError::not_found("no such page"))?;
        let claims = session_claims(state, &parts.headers)
            .filter(|c| c.org == org)
            .ok_or_else(signin)?;
        let users = state.catalog.list_users(&org_name).await.map_err(|_| signin())?;
        let user = users.iter().find(|u| u.id == claims.sub).ok_or_else(signin)?;
        if user.role != Role::Admin {
            return Err(signin());
        }
        let store = state.catalog.open_org(&org_name).await?;
        Ok(Admin {
            csrf: state.session_keys().csrf(&claims.sid),
            caller: Caller {
                org: org_name,
                user: Principal::from(user),
                store,
            },
        })
    }
}

/// The session cookie of a new sign-in of `user` to `org`.
pub fn sign_in_cookie(state: &AppState, org: &OrgName, user: Uuid) -> HeaderValue {
    let claims = SessionClaims {
        org: org.to_string(),
        sub: user,
        sid: random_id(),
        exp: chrono::Utc::now().timestamp() + SESSION_TTL_SECS,
    };
    set_cookie(
        SESSION_COOKIE,
        &state.session_keys().issue(&claims),
        SESSION_TTL_SECS,
    )
}

fn forbidden(reason: &str) -> Response {
    tracing::warn!(reason, "refused a UI form without a valid CSRF token");
    UiError::Page {
        status: StatusCode::FORBIDDEN,
        title: "This form cannot be accepted".into(),
        message: "The form was sent without a valid security token (it may come from another site, or \
                  the page is older than your sign-in). Go back, reload the page and send it again."
            .into(),
    }
    .into_response()
}

fn token_in_form(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v)
}

/// Whether the request's `Origin`, when sent, is the host the request was made to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Refuses state-changing requests without the CSRF token of the session (or of the form
/// cookie, before sign-in), and cross-origin ones.
pub async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    if !same_origin(request.headers()) {
        return forbidden("cross-origin");
    }
    let sid = session_claims(&state, request.headers())
        .map(|c| c.sid)
        .or_else(|| cookie(request.headers(), FORM_COOKIE).map(str::to_owned));
    let Some(sid) = sid else {
        return forbidden("no session");
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return UiError::Page {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            title: "The form is too large".into(),
            message: format!("Forms may hold at most {} MiB.", MAX_FORM_BYTES / 1024 / 1024),
        }
        .into_response();
    };
    let presented = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| token_in_form(&bytes));
    match presented {
        Some(token) if state.session_keys().check_csrf(&sid, &token) => {
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        _ => forbidden("missing or wrong token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_csrf_tokens_verify_only_with_their_key_and_id() {
        let keys = SessionKeys::new(&[3; 32]);
        let claims = SessionClaims {
            org: "acme".into(),
            sub: Uuid::new_v4(),
            sid: random_id(),
            exp: 1000,
        };
        let cookie = keys.issue(&claims);
        assert_eq!(keys.verify(&cookie, 999), Some(claims.clone()));
        assert_eq!(keys.verify(&cookie, 1000), None, "expired");
        assert_eq!(SessionKeys::new(&[4; 32]).verify(&cookie, 0), None);
        let (payload, _) = cookie.split_once('.').unwrap();
        assert_eq!(keys.verify(&format!("{payload}.AAAA"), 0), None);
        let token = keys.csrf(&claims.sid);
        assert!(keys.check_csrf(&claims.sid, &token));
        assert!(!keys.check_csrf(&random_id(), &token));
        assert!(!keys.check_csrf(&claims.sid, ""));
        assert!(!keys.check_csrf(&claims.sid, "not base64 !"));
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; crmsync_form=xyz"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, FORM_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn origin_must_be_the_requested_host_when_sent() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&headers));
    }
}
