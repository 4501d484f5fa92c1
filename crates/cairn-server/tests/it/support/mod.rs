//! An in-process cairn server for router-level tests: a fresh SQLite database and storage
//! folder in a temporary directory, the admin's key known, requests sent straight into
//! the router (no socket). With `CAIRN_TEST_POSTGRES` set to a server URL without a
//! database (what `scripts/postgres-env` prints), each app gets a fresh PostgreSQL
//! database instead, dropped with the app. [`sdk`] holds the documents and bodies W&B's SDK sends;
//! [`artifacts`] saves artifact versions through them.

#![allow(dead_code)]

pub(crate) mod artifacts;
pub(crate) mod sdk;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// The admin's API key in every test app.
pub(crate) const ADMIN_KEY: &str = "local-0123456789abcdef0123456789abcdef01234567";

/// The URL the test server hands out its URLs under.
pub(crate) const BASE_URL: &str = "http://cairn.test";

/// A server opened on a temporary folder; dropped with it.
pub(crate) struct TestApp {
    pub(crate) app: cairn_server::App,
    _dir: tempfile::TempDir,
    /// The PostgreSQL database made for this app: (server URL, database name).
    postgres: Option<(String, String)>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop is not async, and the test's runtime may be ending: drop the database
        // from a runtime of its own (FORCE ends the app's connections).
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let mut admin = postgres_admin(&server).await;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map(|_| ())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("test database was not dropped: {dropped:?}");
        }
    }
}

/// A connection to the `postgres` database of the server at `server`.
async fn postgres_admin(server: &str) -> sqlx::AnyConnection {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("CAIRN_TEST_POSTGRES answers")
}

/// A fresh database on the PostgreSQL server `CAIRN_TEST_POSTGRES` names, if it names one:
/// (server URL, database name).
async fn postgres_database() -> Option<(String, String)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let server = std::env::var("CAIRN_TEST_POSTGRES").ok()?;
    let server = server.trim_end_matches('/').to_owned();
    let name = format!(
        "cairn_it_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = postgres_admin(&server).await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("a test database");
    Some((server, name))
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
        let postgres = postgres_database().await;
        let config = cairn_server::ServerConfig {
            data_dir: dir.path().to_path_buf(),
            database: postgres
                .as_ref()
                .map(|(server, name)| format!("{server}/{name}")),
            storage: None,
            public_url: Some(BASE_URL.to_owned()),
            admin_key: Some(ADMIN_KEY.to_owned()),
        };
        let opened = cairn_server::open(&config).await.expect("server opens");
        TestApp {
            app: opened.app,
            _dir: dir,
            postgres,
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
        self.request_as(Some(ADMIN_KEY), method, path, body).await
    }

    /// `method path` with `key` (none: no `Authorization` header) and a body.
    pub(crate) async fn request_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, basic(key));
        }
        self.send(request.body(Body::from(body)).expect("request"))
            .await
    }

    /// A new user (with their own entity, not an admin); their API key.
    pub(crate) async fn add_user(&self, name: &str) -> String {
        cairn_server::admin::add_user(&self.app.db, name, false)
            .await
            .expect("user created")
    }

    /// `method` of a URL the server handed out (signed storage URLs), without credentials.
    pub(crate) async fn request_url(&self, method: Method, url: &str, body: Vec<u8>) -> Answer {
        let path = url
            .strip_prefix(BASE_URL)
            .unwrap_or_else(|| panic!("{url} is not a URL of the test server"));
        self.request_as(None, method, path, body).await
    }

    /// A GraphQL request as the admin; the whole `{data, errors}` answer.
    pub(crate) async fn graphql(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        self.graphql_as(ADMIN_KEY, query, variables).await
    }

    /// A GraphQL request with `key`; the whole `{data, errors}` answer.
    pub(crate) async fn graphql_as(
        &self,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let body = serde_json::json!({ "query": query, "variables": variables });
        let answer = self
            .request_as(
                Some(key),
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

    /// Like [`TestApp::graphql`], but fails the test unless GraphQL answers an error; the
    /// first error's message.
    pub(crate) async fn graphql_error(&self, query: &str, variables: serde_json::Value) -> String {
        self.graphql_error_as(ADMIN_KEY, query, variables).await
    }

    /// Like [`TestApp::graphql_as`], but fails the test unless GraphQL answers an error;
    /// the first error's message.
    pub(crate) async fn graphql_error_as(
        &self,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> String {
        let answer = self.graphql_as(key, query, variables).await;
        answer["errors"][0]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("expected a GraphQL error for {query}: {answer}"))
            .to_owned()
    }

    /// PUTs `body` to a signed upload URL the server handed out; fails the test unless it
    /// is taken.
    pub(crate) async fn upload(&self, url: &str, body: Vec<u8>) {
        let answer = self.request_url(Method::PUT, url, body).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "PUT {url}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }

    /// Like [`TestApp::graphql`], but fails the test on any GraphQL error; the `data`.
    pub(crate) async fn graphql_ok(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        self.graphql_ok_as(ADMIN_KEY, query, variables).await
    }

    /// Like [`TestApp::graphql_as`], but fails the test on any GraphQL error; the `data`.
    pub(crate) async fn graphql_ok_as(
        &self,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let answer = self.graphql_as(key, query, variables).await;
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
