//! `POST /{org}/oauth2/token`: the OAuth 2.0 token endpoint (RFC 6749, form-encoded body).
//!
//! - `grant_type=password` with `username` and `password`: a user of the org.
//! - `grant_type=client_credentials`: an application of the org, authenticated with
//!   `client_id` and `client_secret` in the body, or with HTTP Basic
//!   `client_id:client_secret` (each form-urlencoded first, RFC 6749 §2.3.1), never both.
//!
//! Errors follow RFC 6749 §5.2: wrong user credentials are `400 invalid_grant`; a wrong,
//! unknown or missing client is `invalid_client`, `401` with `WWW-Authenticate` when the
//! client authenticated through the `Authorization` header and `400` otherwise. Every failure
//! of one kind reads the same, so a caller learns nothing about other orgs or applications.
//! Parameters the server does not use (`scope`, or `client_id` with the password grant, as
//! Dynamics clients send them) are ignored.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crmsync_model::OrgName;
use serde::Deserialize;
use uuid::Uuid;

use super::{Principal, decode_basic};
use crate::AppState;

#[derive(Deserialize)]
pub struct TokenRequest {
    grant_type: String,
    username: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// An error answer of the token endpoint (RFC 6749 §5.2). A 401 tells the client how to
/// authenticate (`WWW-Authenticate`, RFC 7235).
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

fn oauth_error(status: StatusCode, error: &'static str, description: &'static str) -> OAuthError {
    OAuthError {
        status,
        error,
        description,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.error, "error_description": self.description});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"crmsync\""),
            );
        }
        response
    }
}

fn token_response(state: &AppState, org: &OrgName, principal: &Principal) -> Response {
    let (access_token, expires_in) = state.auth.issue_token(org, principal);
    axum::Json(serde_json::json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    }))
    .into_response()
}

pub async fn token(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let Ok(Form(request)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected an application/x-www-form-urlencoded body with grant_type",
        )
        .into_response();
    };
    match request.grant_type.as_str() {
        "password" => password_grant(&state, &org, request).await,
        "client_credentials" => client_credentials_grant(&state, &org, &headers, request).await,
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "supported grant types: password, client_credentials",
        )
        .into_response(),
    }
}

async fn password_grant(state: &AppState, org: &str, request: TokenRequest) -> Response {
    let (Some(username), Some(secret)) = (request.username, request.password) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the password grant needs username and password",
        )
        .into_response();
    };
    let invalid = || {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "invalid username or password",
        )
        .into_response()
    };
    let Ok(org) = OrgName::parse(org) else {
        return invalid();
    };
    match state.auth.check_password(&org, &username, &secret).await {
        Ok(user) => token_response(state, &org, &Principal::from(&user)),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => invalid(),
        Err(e) => e.into_response(),
    }
}

/// How the client presented its credentials: the status of `invalid_client` depends on it.
struct ClientCredentials {
    id: String,
    secret: String,
    via_header: bool,
}

/// The client's credentials from the `Authorization: Basic` header or the body, or the error
/// for a request that presents them wrongly.
fn client_credentials(headers: &HeaderMap, request: TokenRequest) -> Result<ClientCredentials, OAuthError> {
    let invalid_client = |status| oauth_error(status, "invalid_client", "client authentication failed");
    let basic = headers
        .get(header::AUTHORIZATION)
        .map(|h| h.to_str().ok().and_then(|h| h.strip_prefix("Basic ")));
    match basic {
        Some(Some(encoded)) => {
            if request.client_secret.is_some() {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "authenticate the client with the Authorization header or the body, not both",
                ));
            }
            let Some((id, secret)) = decode_basic(encoded)
                .and_then(|(id, secret)| Some((form_decode(&id)?, form_decode(&secret)?)))
            else {
                return Err(invalid_client(StatusCode::UNAUTHORIZED));
            };
            if request.client_id.as_ref().is_some_and(|body_id| *body_id != id) {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "client_id in the body differs from the one in the Authorization header",
                ));
            }
            Ok(ClientCredentials {
                id,
                secret,
                via_header: true,
            })
        }
        // Another scheme in the Authorization header is an attempt that failed.
        Some(None) => Err(invalid_client(StatusCode::UNAUTHORIZED)),
        None => match (request.client_id, request.client_secret) {
            (Some(id), Some(secret)) => Ok(ClientCredentials {
                id,
                secret,
                via_header: false,
            }),
            _ => Err(invalid_client(StatusCode::BAD_REQUEST)),
        },
    }
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space).
fn form_decode(value: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&value.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|v| v.into_owned())
}

async fn client_credentials_grant(
    state: &AppState,
    org: &str,
    headers: &HeaderMap,
    request: TokenRequest,
) -> Response {
    let credentials = match client_credentials(headers, request) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let invalid = || {
        let status = if credentials.via_header {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        oauth_error(status, "invalid_client", "client authentication failed").into_response()
    };
    let (Ok(org), Ok(client_id)) = (OrgName::parse(org), Uuid::parse_str(credentials.id.trim())) else {
        return invalid();
    };
    match state.auth.check_app(&org, client_id, &credentials.secret).await {
        Ok(app) => {
            tracing::debug!(org = %org, client_id = %app.client_id, "token issued to an application");
            token_response(state, &org, &Principal::from(&app))
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => invalid(),
        Err(e) => e.into_response(),
    }
}
