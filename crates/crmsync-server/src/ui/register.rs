//! The public Connect page (`/Register.aspx?otype=connect`, also `/register?otype=connect`):
//! a new Client org (its name and its administrator), the server's backend type, the server's
//! address and credentials, Connect. It runs the connect of the sync webservice
//! (`crmsync_sync::service::connect`, which checks the server before creating anything) in the
//! request, as a `connect` item of the work queue for a new org (`connector::connect_here`:
//! a registration of the same name running elsewhere is said so, not waited for), and signs
//! the new admin in on the org's CRM Sync section.
//!
//! Attempts are rate-limited per client address (`ServerConfig::registration_limit`, counted
//! before any work); with registration closed the page says so and accepts nothing.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crmsync_model::OrgName;
use crmsync_store::{NewUser, Role, StoreError};
use crmsync_sync::service::ConnectRequest;
use serde::Deserialize;

use super::connector::{ConnectHere, connect_here};
use super::forms::{FieldErrors, ServerFields, connect_error};
use super::pages::{Chrome, UiError, render, see_other};
use super::session::{form_id, sign_in_cookie};
use crate::AppState;

/// The peer address of the request, when the server was started with connect info.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

#[derive(Deserialize)]
pub struct RegisterQuery {
    otype: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    org: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(flatten)]
    server: ServerFields,
}

#[derive(Template)]
#[template(path = "ui/register.html")]
struct RegisterPage {
    chrome: Chrome,
    form: RegisterForm,
    errors: FieldErrors,
    action: String,
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ClosedPage {
    chrome: Chrome,
    message: String,
    back: Option<String>,
}

fn store_message(e: StoreError) -> String {
    match e {
        StoreError::BadRequest(m) => m,
        other => other.to_string(),
    }
}

fn check_otype(q: &RegisterQuery) -> Result<(), UiError> {
    match q.otype.as_deref() {
        None | Some("connect") => Ok(()),
        Some(other) => Err(UiError::not_found(format!(
            "This server offers only the Connect page (otype=connect), not otype={other}."
        ))),
    }
}

fn closed() -> Response {
    render(
        StatusCode::FORBIDDEN,
        &ClosedPage {
            chrome: Chrome::public("Registration is closed", String::new()),
            message: "This server does not accept new organizations. Ask its administrator for an \
                      organization, or sign in to one you already have."
                .into(),
            back: Some("/admin/signin".into()),
        },
    )
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    status: StatusCode,
    form: RegisterForm,
    errors: FieldErrors,
) -> Response {
    let (id, set) = form_id(headers);
    let mut response = render(
        status,
        &RegisterPage {
            chrome: Chrome::public("Connect a new organization", state.session_keys().csrf(&id)),
            form: RegisterForm {
                password: String::new(),
                password_confirm: String::new(),
                server: ServerFields {
                    server_password: String::new(),
                    ..form.server
                },
                ..form
            },
            errors,
            action: format!("{path}?otype=connect"),
        },
    );
    if let Some(set) = set {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    response
}

/// `GET /Register.aspx?otype=connect`, `GET /register?otype=connect`
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<RegisterQuery>,
) -> Result<Response, UiError> {
    check_otype(&q)?;
    if !state.config.registration_open {
        return Ok(closed());
    }
    let form = RegisterForm {
        server: ServerFields {
            backend: "crmsync".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(page(
        &state,
        &headers,
        uri.path(),
        StatusCode::OK,
        form,
        FieldErrors::default(),
    ))
}

fn too_many(wait: std::time::Duration) -> Response {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let mut response = render(
        StatusCode::TOO_MANY_REQUESTS,
        &ClosedPage {
            chrome: Chrome::public("Too many attempts", String::new()),
            message: format!(
                "This address has tried to connect new organizations too often. Try again in {minutes} minute(s)."
            ),
            back: None,
        },
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&wait.as_secs().max(1).to_string()).expect("digits"),
    );
    response
}

/// `POST /Register.aspx?otype=connect`, `POST /register?otype=connect`
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<RegisterQuery>,
    Form(f): Form<RegisterForm>,
) -> Result<Response, UiError> {
    check_otype(&q)?;
    if !state.config.registration_open {
        return Ok(closed());
    }
    let addr = addr.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if let Err(wait) = state.registrations.attempt(addr, Instant::now()) {
        tracing::warn!(client = %addr, "registration rate limit reached");
        return Ok(too_many(wait));
    }
    let mut errors = FieldErrors::default();
    let org = match OrgName::parse(f.org.trim()) {
        Ok(org) => Some(org),
        Err(_) => {
            errors.add(
                "org",
                "Use 3 to 40 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
            );
            None
        }
    };
    let admin = NewUser {
        email: f.email.trim().to_owned(),
        password: f.password.clone(),
        role: Role::Admin,
    };
    // Each half of the user policy on its own, so both messages show at once.
    if admin.email.is_empty() {
        errors.add("email", "Enter your email address.");
    } else if let Err(e) = crmsync_store::normalize_email(&admin.email) {
        errors.add("email", store_message(e));
    }
    let min = crmsync_store::password::MIN_PASSWORD_LEN;
    if admin.password.chars().count() < min {
        errors.add(
            "password",
            format!("The password must have at least {min} characters."),
        );
    }
    if f.password != f.password_confirm {
        errors.add("password_confirm", "The two passwords differ.");
    }
    let backend = f.server.check(&mut errors, false);
    if let Some(org) = &org {
        match state.catalog.org_info(org).await {
            Ok(_) => errors.add(
                "org",
                "An organization with this name already exists; choose another name, or sign in to it.",
            ),
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let again = |errors| {
        Ok(page(
            &state,
            &headers,
            uri.path(),
            StatusCode::UNPROCESSABLE_ENTITY,
            f.clone(),
            errors,
        ))
    };
    let (Some(org), Some(backend), true) = (org, backend, errors.is_empty()) else {
        return again(errors);
    };
    let request = ConnectRequest {
        client_org: org.clone(),
        server_url: f.server.server_url.trim().to_owned(),
        backend,
        user: f.server.server_user.trim().to_owned(),
        password: f.server.server_password.clone(),
        entities: Vec::new(),
        filters_xml: None,
        write_offline: false,
        allow_private_urls: state.config.allow_private_urls,
        registration: Some(admin.clone()),
    };
    match connect_here(&state, request, true, None).await? {
        ConnectHere::Connected(_) => {}
        ConnectHere::Refused(e) => {
            connect_error(&mut errors, &e);
            return again(errors);
        }
        ConnectHere::Busy(busy) => {
            errors.add("org", busy);
            return again(errors);
        }
    }
    tracing::info!(org = %org, client = %addr, "organization registered through the Connect page");
    let user = state
        .catalog
        .find_user(&org, &admin.email)
        .await?
        .ok_or_else(|| UiError::not_found("the new administrator"))?;
    let mut response = see_other(&format!("/admin/{org}/sync/connector?notice=registered"));
    response
        .headers_mut()
        .append(header::SET_COOKIE, sign_in_cookie(&state, &org, user.id));
    Ok(response.into_response())
}
