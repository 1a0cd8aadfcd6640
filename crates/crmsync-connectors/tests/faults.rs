//! Transport faults against scripted servers (wiremock, and a raw socket for dropped
//! connections): what is retried, how long it waits, and what is not retried.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::fast_retries;
use crmsync_connectors::{Backend, Credentials, DataverseConfig, DataverseConnector, Secret};
use crmsync_sync::{Connector, SyncError};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WHO_AM_I: &str = "/acme/api/data/v9.2/WhoAmI";

fn who_am_i_body() -> serde_json::Value {
    json!({
        "@odata.context": "http://x/acme/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
        "BusinessUnitId": "5f3e2b2c-53f2-4a2e-9d8e-6a1b4b1b3c11",
        "UserId": "0a9b7c6d-1234-4cde-8f00-112233445566",
        "OrganizationId": "5f3e2b2c-53f2-4a2e-9d8e-6a1b4b1b3c11",
    })
}

fn connector(base: &str, max_retries: u32) -> DataverseConnector {
    let mut config = DataverseConfig::new(
        format!("{base}/acme"),
        Backend::Crmsync,
        Credentials::Basic {
            user: "admin@acme.example".into(),
            password: Secret::new("pw"),
        },
    );
    config.allow_private_urls = true;
    config.timeout = Duration::from_secs(10);
    DataverseConnector::new(config)
        .unwrap()
        .with_retry_policy(fast_retries(max_retries))
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(WHO_AM_I))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(WHO_AM_I))
        .and(header("authorization", "Basic YWRtaW5AYWNtZS5leGFtcGxlOnB3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(who_am_i_body()))
        .mount(&server)
        .await;
    let me = connector(&server.uri(), 3).who_am_i().await.unwrap();
    assert_eq!(me.user_id.to_string(), "0a9b7c6d-1234-4cde-8f00-112233445566");
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(WHO_AM_I))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(WHO_AM_I))
        .respond_with(ResponseTemplate::new(200).set_body_json(who_am_i_body()))
        .mount(&server)
        .await;
    let started = Instant::now();
    connector(&server.uri(), 3).who_am_i().await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(4),
        "waited {waited:?}"
    );
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let n = count.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 8192];
            let _ = socket.read(&mut buf).await;
            if n == 0 {
                drop(socket); // the first request gets no answer at all
                continue;
            }
            let body = who_am_i_body().to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    connector(&base, 3).who_am_i().await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn exhausted_retries_return_the_retryable_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(WHO_AM_I))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"code": "0x80072321", "message": "Service unavailable, try later"}}),
        ))
        .mount(&server)
        .await;
    let err = connector(&server.uri(), 2).who_am_i().await.unwrap_err();
    assert!(
        matches!(&err, SyncError::Server { status: 503, message, .. } if message.contains("try later")),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(requests(&server).await, 3, "the first try and two retries");
}

#[tokio::test]
async fn a_bad_request_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(WHO_AM_I))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"code": "0x80060888", "message": "Resource not found for the segment 'WhoAmI'"}}),
        ))
        .mount(&server)
        .await;
    let err = connector(&server.uri(), 5).who_am_i().await.unwrap_err();
    assert!(
        matches!(&err, SyncError::Server { status: 400, message, .. } if message.contains("segment 'WhoAmI'")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(WHO_AM_I))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "http://169.254.169.254/latest"))
        .mount(&server)
        .await;
    let err = connector(&server.uri(), 5).who_am_i().await.unwrap_err();
    assert!(
        matches!(&err, SyncError::Protocol(m) if m.contains("169.254.169.254")),
        "{err:?}"
    );
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn an_oauth_token_is_cached_and_fetched_again_after_a_401() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/tenant/oauth2/v2.0/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok-1"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(WHO_AM_I))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(WHO_AM_I))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(who_am_i_body()))
        .mount(&server)
        .await;
    let mut config = DataverseConfig::new(
        format!("{}/acme", server.uri()),
        Backend::Dynamics,
        Credentials::ClientCredentials {
            tenant_id: None,
            client_id: "app".into(),
            client_secret: Secret::new("shh"),
            token_url: Some(format!("{}/tenant/oauth2/v2.0/token", server.uri())),
        },
    );
    config.allow_private_urls = true;
    let c = DataverseConnector::new(config)
        .unwrap()
        .with_retry_policy(fast_retries(0));
    c.who_am_i().await.unwrap();
    c.who_am_i().await.unwrap();
    let received = server.received_requests().await.unwrap();
    let token_posts: Vec<_> = received.iter().filter(|r| r.method.as_str() == "POST").collect();
    assert_eq!(
        token_posts.len(),
        2,
        "one token, then one more after the 401, then cached"
    );
    let form = String::from_utf8_lossy(&token_posts[0].body).into_owned();
    assert!(
        form.contains("grant_type=client_credentials") && form.contains("client_secret=shh"),
        "{form}"
    );
    assert!(form.contains("scope=http%3A%2F%2F127.0.0.1"), "{form}");
    assert_eq!(received.len(), 5);
}

#[tokio::test]
async fn a_token_near_its_expiry_is_replaced_before_use() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/acme/oauth2/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"token_type": "Bearer", "expires_in": 2, "access_token": "short"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(WHO_AM_I))
        .and(header("authorization", "Bearer short"))
        .respond_with(ResponseTemplate::new(200).set_body_json(who_am_i_body()))
        .mount(&server)
        .await;
    let mut config = DataverseConfig::new(
        format!("{}/acme", server.uri()),
        Backend::Crmsync,
        Credentials::Password {
            user: "admin@acme.example".into(),
            password: Secret::new("pw"),
            client_id: None,
            token_url: None,
        },
    );
    config.allow_private_urls = true;
    let c = DataverseConnector::new(config)
        .unwrap()
        .with_retry_policy(fast_retries(0));
    c.who_am_i().await.unwrap();
    c.who_am_i().await.unwrap();
    let posts = |r: &[wiremock::Request]| r.iter().filter(|r| r.method.as_str() == "POST").count();
    assert_eq!(
        posts(&server.received_requests().await.unwrap()),
        1,
        "cached while fresh"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    c.who_am_i().await.unwrap();
    assert_eq!(
        posts(&server.received_requests().await.unwrap()),
        2,
        "replaced near expiry"
    );
}
