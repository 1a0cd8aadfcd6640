//! Sign-in with an org user's email and password (admins only: every UI page is an admin
//! page), and sign-out.
//!
//! Attempts are rate-limited per client address (`ServerConfig::signin_limit`), counted before
//! the password is checked, so guessing passwords from one address is slow whatever the
//! outcome; over the limit the form says how long to wait (429 with `Retry-After`).

use std::net::IpAddr;
use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crmsync_model::OrgName;
use crmsync_store::Role;
use serde::Deserialize;

use super::forms::FieldErrors;
use super::pages::{Chrome, render, see_other};
use super::register::ClientAddr;
use super::session::{SESSION_COOKIE, cookie, form_id, set_cookie, sign_in_cookie};
use crate::AppState;

#[derive(Template)]
#[template(path = "ui/signin.html")]
struct SignInPage {
    chrome: Chrome,
    org: String,
    email: String,
    next: String,
    errors: FieldErrors,
}

#[derive(Default, Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    org: String,
    #[serde(default)]
    next: String,
}

/// `GET /admin/`: the signed-in admin's CRM Sync section, or the sign-in page.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let org = cookie(&headers, SESSION_COOKIE)
        .and_then(|c| state.session_keys().verify(c, chrono::Utc::now().timestamp()))
        .map(|claims| claims.org);
    match org {
        Some(org) => see_other(&format!("/admin/{org}/sync/connector")),
        None => see_other("/admin/signin"),
    }
}

/// `GET /admin/signin`
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    signin_page(
        &state,
        &headers,
        StatusCode::OK,
        q,
        String::new(),
        FieldErrors::default(),
    )
}

fn signin_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    q: SignInQuery,
    email: String,
    errors: FieldErrors,
) -> Response {
    let (id, set) = form_id(headers);
    let mut response = render(
        status,
        &SignInPage {
            chrome: Chrome::public("Sign in", state.session_keys().csrf(&id)),
            org: q.org,
            email,
            next: q.next,
            errors,
        },
    );
    if let Some(set) = set {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    response
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    org: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Where to go after signing in to `org`: `next` when it is a page of that org's section.
fn destination(org: &OrgName, next: &str) -> String {
    let prefix = format!("/admin/{org}/");
    if next.starts_with(&prefix) && !next.contains("//") && !next.contains('\\') {
        next.to_owned()
    } else {
        format!("/admin/{org}/sync/connector")
    }
}

/// The sign-in form again, saying how long this address must wait.
fn too_many(state: &AppState, headers: &HeaderMap, f: &SignInForm, wait: std::time::Duration) -> Response {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let mut errors = FieldErrors::default();
    errors.add(
        "",
        format!(
            "Too many sign-in attempts from this address. Try again in {minutes} minute(s); \
             nothing was checked this time."
        ),
    );
    let q = SignInQuery {
        org: f.org.clone(),
        next: f.next.clone(),
    };
    let mut response = signin_page(
        state,
        headers,
        StatusCode::TOO_MANY_REQUESTS,
        q,
        f.email.clone(),
        errors,
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&wait.as_secs().max(1).to_string()).expect("digits"),
    );
    response
}

/// `POST /admin/signin`
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let addr = addr.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if let Err(wait) = state.signins.attempt(addr, Instant::now()) {
        tracing::warn!(client = %addr, "sign-in rate limit reached");
        return too_many(&state, &headers, &f, wait);
    }
    let mut errors = FieldErrors::default();
    let org = match OrgName::parse(f.org.trim()) {
        Ok(org) => Some(org),
        Err(_) if f.org.trim().is_empty() => {
            errors.add("org", "Enter the name of your organization.");
            None
        }
        Err(e) => {
            errors.add("org", e.to_string());
            None
        }
    };
    if f.email.trim().is_empty() {
        errors.add("email", "Enter your email address.");
    }
    if f.password.is_empty() {
        errors.add("password", "Enter your password.");
    }
    let again = |errors| {
        let q = SignInQuery {
            org: f.org.clone(),
            next: f.next.clone(),
        };
        signin_page(
            &state,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            q,
            f.email.clone(),
            errors,
        )
    };
    let Some(org) = org.filter(|_| errors.is_empty()) else {
        return again(errors);
    };
    let user = match state.auth.check_password(&org, &f.email, &f.password).await {
        Ok(user) => user,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            errors.add("password", "The organization, email or password is wrong.");
            return again(errors);
        }
        Err(e) => return super::pages::UiError::from(e).into_response(),
    };
    if user.role != Role::Admin {
        errors.add(
            "email",
            "This user is not an administrator of the organization; the admin pages need the admin role.",
        );
        return again(errors);
    }
    tracing::info!(org = %org, user = %user.id, "admin signed in");
    let mut response = see_other(&destination(&org, &f.next));
    response
        .headers_mut()
        .append(header::SET_COOKIE, sign_in_cookie(&state, &org, user.id));
    response
}

/// `POST /admin/signout`
pub async fn sign_out() -> Response {
    let mut response = see_other("/admin/signin");
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_sign_in_only_pages_of_the_same_org_are_followed() {
        let org = OrgName::parse("acme").unwrap();
        assert_eq!(
            destination(&org, "/admin/acme/sync/logs"),
            "/admin/acme/sync/logs"
        );
        for bad in [
            "/admin/beta/sync/logs",
            "https://evil.example/admin/acme/",
            "//evil.example",
            "",
        ] {
            assert_eq!(destination(&org, bad), "/admin/acme/sync/connector", "{bad}");
        }
    }
}
