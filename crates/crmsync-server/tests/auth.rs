//! Who may call what: Basic and Bearer (for users and for applications), per organization,
//! learning nothing about others.

use crate::common;

use common::{ACME_ADMIN, BETA_ADMIN, TestServer, error, json};
use crmsync_model::OrgName;
use crmsync_store::Role;

#[tokio::test]
async fn health_check_answers_without_credentials() {
    let s = TestServer::start().await;
    let r = s.client.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn missing_wrong_and_foreign_credentials_all_get_the_same_401() {
    let s = TestServer::start().await;
    let mut bodies = Vec::new();
    let no_auth = s
        .client
        .get(format!("{}WhoAmI", s.api("acme")))
        .send()
        .await
        .unwrap();
    bodies.push(error(no_auth, 401).await);
    bodies.push(
        error(
            s.get("acme", "WhoAmI", (ACME_ADMIN.0, "wrong-password"))
                .send()
                .await
                .unwrap(),
            401,
        )
        .await,
    );
    bodies.push(error(s.get("acme", "WhoAmI", BETA_ADMIN).send().await.unwrap(), 401).await);
    bodies.push(
        error(
            s.get("nosuchorg", "WhoAmI", ACME_ADMIN).send().await.unwrap(),
            401,
        )
        .await,
    );
    bodies.push(error(s.get("acme", "accounts", BETA_ADMIN).send().await.unwrap(), 401).await);
    let bad_header = s
        .client
        .get(format!("{}WhoAmI", s.api("acme")))
        .header("authorization", "Basic !!!")
        .send()
        .await
        .unwrap();
    bodies.push(error(bad_header, 401).await);
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}

#[tokio::test]
async fn token_endpoint_issues_bearer_tokens_valid_for_their_org_only() {
    let s = TestServer::start().await;
    let form = [
        ("grant_type", "password"),
        ("username", ACME_ADMIN.0),
        ("password", ACME_ADMIN.1),
    ];
    let r = s
        .client
        .post(format!("{}/acme/oauth2/token", s.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    let token = body["access_token"].as_str().unwrap().to_owned();
    let me = s
        .client
        .get(format!("{}WhoAmI", s.api("acme")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let other = s
        .client
        .get(format!("{}WhoAmI", s.api("beta")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);
    let tampered = format!("{token}x");
    let r = s
        .client
        .get(format!("{}WhoAmI", s.api("acme")))
        .bearer_auth(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let wrong = [
        ("grant_type", "password"),
        ("username", ACME_ADMIN.0),
        ("password", "nope-nope"),
    ];
    let r = s
        .client
        .post(format!("{}/acme/oauth2/token", s.url))
        .form(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_grant");
    let grant = [("grant_type", "authorization_code")];
    let r = s
        .client
        .post(format!("{}/acme/oauth2/token", s.url))
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await["error"], "unsupported_grant_type");
    let r = s
        .client
        .post(format!("{}/acme/oauth2/token", s.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await["error"], "invalid_request");
}

#[tokio::test]
async fn who_am_i_names_the_caller() {
    let s = TestServer::start().await;
    let body = json(s.get("acme", "WhoAmI", ACME_ADMIN).send().await.unwrap()).await;
    let user = s
        .catalog
        .find_user(&crmsync_model::OrgName::parse("acme").unwrap(), ACME_ADMIN.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body["UserId"], user.id.to_string());
    assert!(body["OrganizationId"].as_str().is_some());
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse")
    );
}

/// An application of `org` with its secret.
async fn app(s: &TestServer, org: &str, role: Role) -> (String, String) {
    let (app, secret) = s
        .catalog
        .create_app(&OrgName::parse(org).unwrap(), "Sync service", role)
        .await
        .unwrap();
    (app.client_id.to_string(), secret.expose().to_owned())
}

async fn token_request(
    s: &TestServer,
    org: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = s.client.post(format!("{}/{org}/oauth2/token", s.url)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

async fn who_am_i(s: &TestServer, org: &str, token: &str) -> reqwest::Response {
    s.client
        .get(format!("{}WhoAmI", s.api(org)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn access_token(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn client_credentials_in_the_body_give_a_token_for_the_apps_org_only() {
    let s = TestServer::start().await;
    let (id, secret) = app(&s, "acme", Role::User).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("scope", "https://acme.example/.default"),
    ];
    let token = access_token(token_request(&s, "acme", &form, None).await).await;
    let me = who_am_i(&s, "acme", &token).await;
    assert_eq!(me.status(), 200);
    assert_eq!(json(me).await["UserId"], id);
    let accounts = s
        .client
        .get(format!("{}accounts?$top=2", s.api("acme")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(accounts.status(), 200);
    assert_eq!(json(accounts).await["value"].as_array().unwrap().len(), 2);
    // The token and the credentials are worthless on another org.
    error(who_am_i(&s, "beta", &token).await, 401).await;
    let r = token_request(&s, "beta", &form, None).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_client");
}

#[tokio::test]
async fn client_credentials_in_a_basic_header_give_a_token() {
    let s = TestServer::start().await;
    let (id, secret) = app(&s, "acme", Role::Admin).await;
    let grant = [("grant_type", "client_credentials")];
    let token = access_token(token_request(&s, "acme", &grant, Some((&id, &secret))).await).await;
    let me = who_am_i(&s, "acme", &token).await;
    assert_eq!(json(me).await["UserId"], id);
    // A client_id in the body may repeat the header's.
    let same = [("grant_type", "client_credentials"), ("client_id", id.as_str())];
    access_token(token_request(&s, "acme", &same, Some((&id, &secret))).await).await;

    let r = token_request(&s, "acme", &grant, Some((&id, "wrong-secret"))).await;
    assert_eq!(r.status(), 401, "a client authenticated by header gets 401");
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(json(r).await["error"], "invalid_client");
    let r = token_request(&s, "beta", &grant, Some((&id, &secret))).await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "invalid_client");
    let both = [
        ("grant_type", "client_credentials"),
        ("client_secret", secret.as_str()),
    ];
    let r = token_request(&s, "acme", &both, Some((&id, &secret))).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_request");
}

#[tokio::test]
async fn wrong_unknown_or_missing_client_credentials_are_invalid_client() {
    let s = TestServer::start().await;
    let (id, secret) = app(&s, "acme", Role::User).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let mut bodies = Vec::new();
    for (client_id, client_secret) in [
        (Some(id.as_str()), Some("wrong-secret")),
        (Some(unknown.as_str()), Some(secret.as_str())),
        (Some("not-a-guid"), Some(secret.as_str())),
        (Some(id.as_str()), None),
        (None, None),
    ] {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(client_id.map(|v| ("client_id", v)));
        form.extend(client_secret.map(|v| ("client_secret", v)));
        let r = token_request(&s, "acme", &form, None).await;
        assert_eq!(r.status(), 400, "{form:?}");
        bodies.push(json(r).await);
    }
    assert!(
        bodies.iter().all(|b| b["error"] == "invalid_client"),
        "{bodies:?}"
    );
    // An app's secret is not a user password, nor the other way round.
    let as_password = [
        ("grant_type", "password"),
        ("username", id.as_str()),
        ("password", secret.as_str()),
    ];
    let r = token_request(&s, "acme", &as_password, None).await;
    assert_eq!(json(r).await["error"], "invalid_grant");
    error(s.get("acme", "WhoAmI", (&id, &secret)).send().await.unwrap(), 401).await;
    let user_as_client = [
        ("grant_type", "client_credentials"),
        ("client_id", ACME_ADMIN.0),
        ("client_secret", ACME_ADMIN.1),
    ];
    let r = token_request(&s, "acme", &user_as_client, None).await;
    assert_eq!(json(r).await["error"], "invalid_client");
    // Other grants are still refused, and the answer names the supported ones.
    let r = token_request(&s, "acme", &[("grant_type", "refresh_token")], None).await;
    assert_eq!(r.status(), 400);
    let body = json(r).await;
    assert_eq!(body["error"], "unsupported_grant_type");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client_credentials")
    );
}

#[tokio::test]
async fn deleting_an_app_revokes_its_tokens() {
    let s = TestServer::start().await;
    let (id, secret) = app(&s, "acme", Role::User).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let token = access_token(token_request(&s, "acme", &form, None).await).await;
    assert_eq!(who_am_i(&s, "acme", &token).await.status(), 200);
    s.catalog
        .delete_app(&OrgName::parse("acme").unwrap(), id.parse().unwrap())
        .await
        .unwrap();
    error(who_am_i(&s, "acme", &token).await, 401).await;
}
