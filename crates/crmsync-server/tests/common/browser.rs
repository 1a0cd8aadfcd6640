//! A cookie-keeping HTTP client for the admin UI tests, and the client org `field` registered
//! through the Connect page and connected to the server org `acme` of the same server.

#![allow(dead_code)]

use std::collections::HashMap;

use crate::common::{ACME_ADMIN, TestServer};
use crmsync_model::OrgName;
use crmsync_server::ServerConfig;
use crmsync_sync::Connection;
use reqwest::StatusCode;

pub const FIELD: (&str, &str) = ("lead@field.example", "field-admin-pw");

/// A cookie-keeping client that does not follow redirects, so tests see each answer.
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 20;
        self.body[at..at + self.body[at..].find('"').unwrap()].to_owned()
    }

    /// The message shown next to field `name`.
    pub fn field_error(&self, name: &str) -> Option<String> {
        let marker = format!("id=\"e-{name}\">");
        let at = self.body.find(&marker)? + marker.len();
        Some(html_text(&self.body[at..at + self.body[at..].find("</p>")?]))
    }
}

pub fn html_text(s: &str) -> String {
    s.replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

impl Browser {
    pub fn new(s: &TestServer) -> Self {
        Browser {
            base: s.url.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn finish(&mut self, r: reqwest::Response) -> Page {
        for set in r.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = r.status();
        let headers = r.headers().clone();
        let location = headers.get("location").map(|l| l.to_str().unwrap().to_owned());
        Page {
            status,
            location,
            headers,
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    /// Posts `form` with the CSRF token of the page at `page`.
    pub async fn submit(&mut self, page: &str, action: &str, form: &[(&str, &str)]) -> Page {
        let token = self.get(page).await.csrf();
        let mut fields = vec![("_csrf", token.as_str())];
        fields.extend_from_slice(form);
        self.post(action, &fields).await
    }

    pub async fn sign_in(&mut self, org: &str, who: (&str, &str)) -> Page {
        self.submit(
            "/admin/signin",
            "/admin/signin",
            &[("org", org), ("email", who.0), ("password", who.1)],
        )
        .await
    }
}

pub async fn start() -> TestServer {
    start_with(ServerConfig::default()).await
}

pub async fn start_with(config: ServerConfig) -> TestServer {
    TestServer::start_with(ServerConfig {
        allow_private_urls: true,
        ..config
    })
    .await
}

pub fn register_form<'a>(org: &'a str, server_url: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("org", org),
        ("email", FIELD.0),
        ("password", FIELD.1),
        ("password_confirm", FIELD.1),
        ("backend", "crmsync"),
        ("server_url", server_url),
        ("server_user", ACME_ADMIN.0),
        ("server_password", ACME_ADMIN.1),
    ]
}

/// Registers the client org `field` through the Connect page; the browser is signed in to it.
pub async fn register_field(s: &TestServer) -> Browser {
    let mut b = Browser::new(s);
    let acme = format!("{}/acme", s.url);
    let page = "/Register.aspx?otype=connect";
    let r = b.submit(page, page, &register_form("field", &acme)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    b
}

pub async fn connection(s: &TestServer, org: &str) -> Option<Connection> {
    let store = s.catalog.open_org(&OrgName::parse(org).unwrap()).await.unwrap();
    Connection::load(&*store).await.unwrap()
}
