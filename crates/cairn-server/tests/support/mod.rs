//! An in-process cairn server for router-level tests: a fresh SQLite database and storage
//! folder in a temporary directory, the admin's key known, requests sent straight into
//! the router (no socket).

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// The admin's API key in every test app.
pub(crate) const ADMIN_KEY: &str = "local-0123456789abcdef0123456789abcdef01234567";

/// A server opened on a temporary folder; dropped with it.
pub(crate) struct TestApp {
    pub(crate) app: cairn_server::App,
    _dir: tempfile::TempDir,
}

/// An answer: its status, headers and whole body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// The body as JSON; panics (failing the test) with the body when it is not.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "answer ({}) is not JSON ({err}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl TestApp {
    pub(crate) async fn new() -> TestApp {
        let dir = tempfile::tempdir().expect("temporary folder");
        let config = cairn_server::ServerConfig {
            data_dir: dir.path().to_path_buf(),
            database: None,
            storage: None,
            public_url: Some("http://cairn.test".to_owned()),
            admin_key: Some(ADMIN_KEY.to_owned()),
        };
        let opened = cairn_server::open(&config).await.expect("server opens");
        TestApp {
            app: opened.app,
            _dir: dir,
        }
    }

    /// Sends `request` into the router.
    pub(crate) async fn send(&self, request: Request<Body>) -> Answer {
        let response = cairn_server::router(self.app.clone())
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("whole body")
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `method path` with the admin's key and an optional body.
    pub(crate) async fn request(&self, method: Method, path: &str, body: Vec<u8>) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, basic(ADMIN_KEY))
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }

    /// A GraphQL request as the admin; the whole `{data, errors}` answer.
    pub(crate) async fn graphql(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let body = serde_json::json!({ "query": query, "variables": variables });
        let answer = self
            .request(
                Method::POST,
                "/graphql",
                serde_json::to_vec(&body).expect("JSON"),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "GraphQL answered {}",
            answer.status
        );
        answer.json()
    }

    /// Like [`TestApp::graphql`], but fails the test on any GraphQL error; the `data`.
    pub(crate) async fn graphql_ok(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let answer = self.graphql(query, variables).await;
        assert!(
            answer.get("errors").is_none(),
            "GraphQL errors for {query}: {answer}"
        );
        answer["data"].clone()
    }
}

/// `Authorization: Basic api:KEY`.
pub(crate) fn basic(key: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"));
    format!("Basic {token}")
}
