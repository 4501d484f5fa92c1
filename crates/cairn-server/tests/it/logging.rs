//! What the server logs about a failed request: each failure once, at WARN (4xx and
//! GraphQL errors) or ERROR (5xx), inside a span that names the request id, the route and
//! the user; and the id is answered in `X-Request-Id`.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};

use crate::support::{ADMIN_KEY, TestApp, basic};

/// The log lines written while `work` runs on this thread.
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || Captured(writer.clone()))
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

fn text(buffer: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}

#[tokio::test]
async fn graphql_errors_are_logged_with_operation_user_and_request_id() {
    let app = TestApp::new().await;
    let (buffer, _guard) = capture();
    let body = serde_json::json!({
        "operationName": "Broken",
        "query": "query Broken { viewer { noSuchField } }",
    });
    let request = Request::builder()
        .method(Method::POST)
        .uri("/graphql")
        .header(header::AUTHORIZATION, basic(ADMIN_KEY))
        .header("x-request-id", "req-42")
        .body(Body::from(body.to_string()))
        .unwrap();
    let answer = app.send(request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["x-request-id"], "req-42");
    let log = text(&buffer);
    let line = log
        .lines()
        .find(|l| l.contains("GraphQL error"))
        .unwrap_or_else(|| panic!("no GraphQL error logged:\n{log}"));
    for part in [
        "WARN",
        "id=req-42",
        "user=admin",
        "operation=\"Broken\"",
        "noSuchField",
    ] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
}

#[tokio::test]
async fn refused_requests_are_logged_once_at_warn() {
    let app = TestApp::new().await;
    let (buffer, _guard) = capture();
    // A bad key (401 from the GraphQL endpoint), an unknown route (404), a malformed
    // body (400).
    let answer = app
        .request_as(Some("wrong-key"), Method::POST, "/graphql", b"{}".to_vec())
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let generated = answer.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 16, "{generated}");
    let answer = app
        .request(Method::GET, "/no/such/thing/here", Vec::new())
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = app
        .request(Method::POST, "/graphql", b"not json".to_vec())
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let log = text(&buffer);
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request failed"))
        .collect();
    assert_eq!(failures.len(), 3, "{log}");
    assert!(failures.iter().all(|l| l.contains("WARN")), "{log}");
    assert!(failures[0].contains(&format!("id={generated}")), "{log}");
    assert!(failures[0].contains("status=401"), "{log}");
    assert!(
        failures[1].contains("path=\"/no/such/thing/here\"")
            || failures[1].contains("path=/no/such/thing/here"),
        "{log}"
    );
    assert!(
        failures[2].contains("user=admin") && failures[2].contains("status=400"),
        "{log}"
    );
}

#[tokio::test]
async fn the_sdks_own_telemetry_is_acknowledged() {
    let app = TestApp::new().await;
    for signal in ["metrics", "logs"] {
        let answer = app
            .request_as(
                None,
                Method::POST,
                &format!("/sdk/otel/v1/{signal}"),
                b"\x0a\x00".to_vec(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{signal}");
    }
    let answer = app
        .request_as(None, Method::POST, "/sdk/otel/v1/other", Vec::new())
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}
