//! Router-level tests of what any HTTP client meets: which paths exist, what an unknown
//! one answers, and GraphQL request handling at the engine boundary.

use axum::http::{Method, StatusCode};

use crate::support::TestApp;

/// Paths cairn does not serve answer 404 with a JSON error — never the UI's page, which a
/// download would write into the user's file (the SDK's `artifactsV2` fallback did).
#[tokio::test]
async fn unknown_paths_are_404_json() {
    let app = TestApp::new().await;
    for (method, path) in [
        (
            Method::GET,
            "/artifactsV2/default/admin/proj/coll/QXJ0aWZhY3Q6djE6MQ==/0123abcd/model.bin",
        ),
        (Method::GET, "/artifacts/admin/0123abcd"),
        (Method::GET, "/admin"),
        (Method::GET, "/favicon.ico"),
        (Method::GET, "/admin/proj/runs/abc/no-such-tab"),
        (Method::GET, "/admin/proj/runs/abc/files/x/y"),
        (Method::POST, "/admin/proj"),
        (Method::PUT, "/nothing/here/at/all"),
        (Method::GET, "/api/no-such-route"),
    ] {
        let answer = app.request(method.clone(), path, Vec::new()).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(
            answer.content_type().starts_with("application/json"),
            "{method} {path}: {}",
            answer.content_type()
        );
        let body = answer.json();
        let message = body["errors"][0]["message"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or_default();
        assert!(!message.is_empty(), "{method} {path}: {body}");
    }
}

/// The UI's own page paths (ui/README.md's table) still answer its page, so links work
/// on reload.
#[tokio::test]
async fn page_paths_answer_the_app() {
    let app = TestApp::new().await;
    for path in [
        "/",
        "/login",
        "/admin/proj",
        "/admin/proj/workspace",
        "/admin/proj/table",
        "/admin/proj/compare?runs=a,b",
        "/admin/proj/runs/abc",
        "/admin/proj/runs/abc/overview",
        "/admin/proj/runs/abc/logs",
        "/admin/proj/artifacts",
        "/admin/proj/artifacts/model/my-model/v3",
    ] {
        let answer = app.request(Method::GET, path, Vec::new()).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(answer.content_type().starts_with("text/html"), "{path}");
    }
}

/// A variable the request omits takes the default its operation declares — in `@include`,
/// `@skip` and arguments alike (the SDK's artifact queries rely on it for aliases).
#[tokio::test]
async fn omitted_variables_take_declared_defaults() {
    let app = TestApp::new().await;
    let data = app
        .graphql_ok(
            "query Q($x: Boolean = true, $y: Boolean = false) { viewer { id username @include(if: $x) entity @skip(if: $y) } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(data["viewer"]["username"], "admin", "{data}");
    assert_eq!(data["viewer"]["entity"], "admin", "{data}");

    // Sent values still win over defaults.
    let data = app
        .graphql_ok(
            "query Q($x: Boolean = true) { viewer { id username @include(if: $x) } }",
            serde_json::json!({ "x": false }),
        )
        .await;
    assert!(data["viewer"].get("username").is_none(), "{data}");

    // Several operations: the named one's defaults apply.
    let body = serde_json::json!({
        "query": "query A($x: Boolean = false) { viewer { username @include(if: $x) } } \
                  query B($x: Boolean = true) { viewer { username @include(if: $x) } }",
        "operationName": "B",
        "variables": {},
    });
    let answer = app
        .request(Method::POST, "/graphql", serde_json::to_vec(&body).unwrap())
        .await;
    assert_eq!(answer.json()["data"]["viewer"]["username"], "admin");
}
