//! Who may call what: Basic and Bearer, per organization, learning nothing about others.

mod common;

use common::{ACME_ADMIN, BETA_ADMIN, TestServer, error, json};

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
