//! The client against a one-request-per-connection test server on 127.0.0.1: what goes on
//! the wire, retries, `Retry-After`, rate limits, aborts and deadlines, and the errors.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use serde_json::Value;

use super::retry::{Jitter, RetryPolicy};
use super::{Connection, ConnectionConfig, HttpError, Operations, Policies, Until};
use crate::testing::{FakeRequest, FakeServer, http_answer as answer};

/// The test server: one request per connection, each answered with raw bytes.
fn start(reply: impl FnMut(usize, &FakeRequest) -> Vec<u8> + Send + 'static) -> FakeServer {
    FakeServer::start_raw(reply).unwrap()
}

fn ok_json(body: &str) -> Vec<u8> {
    answer(200, &[("Content-Type", "application/json")], body)
}

fn test_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 5,
        min_wait: Duration::from_millis(10),
        max_wait: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(5),
    }
}

fn connect_with(base_url: &str, policy: RetryPolicy) -> Connection {
    let config = ConnectionConfig {
        base_url: format!("{base_url}/"),
        api_key: "KEY123".to_owned(),
        user_agent: "cairn test".to_owned(),
    };
    let policies = Policies {
        graphql: policy,
        filestream: policy,
        file_transfer: policy,
    };
    Connection::with_policies(config, policies)
}

fn connect(server: &FakeServer) -> Connection {
    connect_with(server.base_url(), test_policy())
}

fn viewer(connection: &Connection, until: &Until) -> Result<Value, HttpError> {
    let variables = serde_json::json!({"entity": "e"});
    connection.graphql("Viewer", "query Viewer { viewer { id } }", variables, until)
}

#[test]
fn graphql_succeeds_after_two_server_errors() {
    let server = start(|n, _| match n {
        0 | 1 => answer(500, &[], "boom"),
        _ => ok_json(r#"{"data": {"viewer": {"id": "u1"}}}"#),
    });
    let data = viewer(&connect(&server), &Until::forever()).unwrap();
    assert_eq!(data, serde_json::json!({"viewer": {"id": "u1"}}));
    let requests = server.finish();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.line, "POST /graphql HTTP/1.1");
        // base64("api:KEY123")
        assert_eq!(
            request.header("authorization"),
            Some("Basic YXBpOktFWTEyMw==")
        );
        assert_eq!(request.header("user-agent"), Some("cairn test"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "query": "query Viewer { viewer { id } }",
                "variables": {"entity": "e"},
                "operationName": "Viewer",
            })
        );
    }
}

#[test]
fn a_retried_request_shows_on_its_operation() {
    let operations = Arc::new(Operations::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (ops, log) = (operations.clone(), seen.clone());
    let server = start(move |n, _| {
        let status = ops.snapshot().first().map(|v| v.error_status.clone());
        log.lock().unwrap().push(status.unwrap_or_default());
        match n {
            0 => answer(500, &[], "boom"),
            _ => ok_json(r#"{"data": {"viewer": {"id": "u1"}}}"#),
        }
    });
    let running = operations.start("updating run metadata");
    viewer(&connect(&server), &Until::forever()).unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], "", "no retry before the first answer");
    assert!(
        seen[1].starts_with("retrying: ") && seen[1].contains("500"),
        "{seen:?}"
    );
    assert_eq!(
        operations.snapshot()[0].error_status,
        "",
        "cleared once through"
    );
    drop(running);
    server.finish();
}

#[test]
fn retry_after_overrides_backoff() {
    let server = start(|n, _| match n {
        0 => answer(429, &[("Retry-After", "1")], "slow down"),
        _ => ok_json(r#"{"data": {}}"#),
    });
    let started = Instant::now();
    viewer(&connect(&server), &Until::forever()).unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1800), "{elapsed:?}");
    assert_eq!(server.finish().len(), 2);
}

#[test]
fn unauthorized_fails_at_once_with_the_server_message() {
    let server = start(|_, _| answer(401, &[], r#"{"errors": [{"message": "invalid api key"}]}"#));
    let error = viewer(&connect(&server), &Until::forever()).unwrap_err();
    match &error {
        HttpError::Status {
            url,
            status,
            message,
        } => {
            assert_eq!(url, &format!("{}/graphql", server.base_url()));
            assert_eq!(*status, 401);
            assert_eq!(message, "invalid api key");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        error.to_string().contains("HTTP 401: invalid api key"),
        "{error}"
    );
    assert_eq!(server.finish().len(), 1);
}

#[test]
fn permanent_status_with_error_field() {
    let server = start(|_, _| answer(403, &[], r#"{"error": "run is locked"}"#));
    let error = connect(&server)
        .post_json("/files/e/p/r/file_stream", b"{}", false, &Until::forever())
        .unwrap_err();
    assert!(
        matches!(&error, HttpError::Status { status: 403, message, .. } if message == "run is locked"),
        "{error:?}"
    );
    assert_eq!(server.finish().len(), 1);
}

#[test]
fn graphql_errors_become_graphql_error() {
    let server = start(|_, _| {
        ok_json(r#"{"data": null, "errors": [{"message": "project not found", "path": ["x"]}]}"#)
    });
    let error = viewer(&connect(&server), &Until::forever()).unwrap_err();
    match &error {
        HttpError::GraphQl { operation, message } => {
            assert_eq!(operation, "Viewer");
            assert_eq!(message, "project not found");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.finish().len(), 1);
}

#[test]
fn an_unnamed_operation_takes_the_documents_name_or_none() {
    let server = start(|n, _| match n {
        0 => ok_json(r#"{"data": {"x": 1}}"#),
        _ => ok_json(r#"{"errors": [{"message": "Unknown type \"X\""}]}"#),
    });
    let connection = connect(&server);
    let until = Until::forever();
    let named = "mutation Link { x }";
    assert!(connection.graphql("", named, Value::Null, &until).is_ok());
    let error = connection
        .graphql("", "{ x }", Value::Null, &until)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"GraphQL request failed: Unknown type "X""#
    );
    let bodies: Vec<Value> = server
        .finish()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies[0]["operationName"], "Link");
    assert_eq!(bodies[1]["operationName"], Value::Null);
}

#[test]
fn graphql_answer_that_is_not_graphql() {
    let server = start(|n, _| match n {
        0 => ok_json("<html>proxy login</html>"),
        _ => ok_json(r#"{"errors": []}"#),
    });
    let connection = connect(&server);
    let error = viewer(&connection, &Until::forever()).unwrap_err();
    assert!(
        matches!(&error, HttpError::GraphQl { message, .. } if message.contains("<html>proxy login</html>")),
        "{error:?}"
    );
    let error = viewer(&connection, &Until::forever()).unwrap_err();
    assert!(
        matches!(&error, HttpError::GraphQl { message, .. } if message == "the answer has no data"),
        "{error:?}"
    );
    server.finish();
}

#[test]
fn post_json_gzips_the_body() {
    let server = start(|n, _| match n {
        0 => ok_json(r#"{"exitcode": null, "limits": {}}"#),
        _ => answer(200, &[], ""),
    });
    let connection = connect(&server);
    let body = br#"{"files": {"output.log": {"offset": 0, "content": ["hello"]}}}"#;
    let answer = connection
        .post_json("/files/e/p/r/file_stream", body, true, &Until::forever())
        .unwrap();
    assert_eq!(answer, serde_json::json!({"exitcode": null, "limits": {}}));
    // An empty answer is Null.
    let answer = connection
        .post_json("/files/e/p/r/file_stream", body, false, &Until::forever())
        .unwrap();
    assert_eq!(answer, Value::Null);

    let requests = server.finish();
    assert_eq!(requests.len(), 2);
    let gzipped = &requests[0];
    assert_eq!(gzipped.line, "POST /files/e/p/r/file_stream HTTP/1.1");
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(
        gzipped.header("authorization"),
        Some("Basic YXBpOktFWTEyMw==")
    );
    let mut plain = Vec::new();
    GzDecoder::new(&gzipped.body[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, body);
    assert_eq!(requests[1].header("content-encoding"), None);
    assert_eq!(requests[1].body, body);
}

#[test]
fn put_file_streams_the_file_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    let mut jitter = Jitter::new(99);
    let data: Vec<u8> = (0..3 << 20)
        .map(|_| (jitter.next_f64() * 256.0) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();

    let server = start(|_, _| answer(200, &[], ""));
    let url = format!(
        "{}/bucket/model.bin?X-Amz-Signature=secret",
        server.base_url()
    );
    let headers = vec![
        (
            "Content-Type".to_owned(),
            "application/octet-stream".to_owned(),
        ),
        ("x-amz-meta-run".to_owned(), "r1".to_owned()),
        ("Content-Length".to_owned(), "1".to_owned()),
    ];
    connect(&server)
        .put_file(&url, &path, &headers, &Until::forever())
        .unwrap();
    let requests = server.finish();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.line,
        "PUT /bucket/model.bin?X-Amz-Signature=secret HTTP/1.1"
    );
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.header("content-length"), Some("3145728"));
    let lengths = request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .count();
    assert_eq!(lengths, 1, "{:?}", request.headers);
    assert_eq!(
        request.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(request.header("x-amz-meta-run"), Some("r1"));
    assert!(request.body == data, "uploaded bytes differ");
}

#[test]
fn put_file_of_a_missing_file_fails_without_a_request() {
    let server = start(|_, _| answer(200, &[], ""));
    let path = Path::new("/nonexistent/cairn/upload.bin");
    let url = format!("{}/upload", server.base_url());
    let error = connect(&server)
        .put_file(&url, path, &[], &Until::forever())
        .unwrap_err();
    assert!(
        matches!(&error, HttpError::File { path: p, .. } if p == path),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "cannot read /nonexistent/cairn/upload.bin for upload"
    );
    assert_eq!(server.finish().len(), 0);
}

#[test]
fn errors_hide_the_signed_query() {
    let server = start(|_, _| answer(403, &[], "<Error>SignatureDoesNotMatch</Error>"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.txt");
    std::fs::write(&path, "x").unwrap();
    let url = format!("{}/b/f.txt?sig=secret", server.base_url());
    let error = connect(&server)
        .put_file(&url, &path, &[], &Until::forever())
        .unwrap_err();
    let text = error.to_string();
    assert!(!text.contains("secret"), "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    server.finish();
}

#[test]
fn abort_stops_a_retry_loop_quickly() {
    let server = start(|_, _| answer(503, &[], "busy"));
    let policy = RetryPolicy {
        min_wait: Duration::from_secs(10),
        max_wait: Duration::from_secs(10),
        ..test_policy()
    };
    let connection = connect_with(server.base_url(), policy);
    let flag = Arc::new(AtomicBool::new(false));
    let until = Until {
        deadline: None,
        abort: Some(Arc::clone(&flag)),
    };
    let raiser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        flag.store(true, Ordering::Relaxed);
        Instant::now()
    });
    let error = viewer(&connection, &until).unwrap_err();
    let returned = Instant::now();
    let raised = raiser.join().unwrap();
    let lag = returned.saturating_duration_since(raised);
    assert!(lag < Duration::from_millis(200), "noticed after {lag:?}");
    match &error {
        HttpError::GaveUp { last, .. } => {
            assert!(last.contains("HTTP 503: busy (after 1 attempt)"), "{last}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.finish().len(), 1);
}

#[test]
fn raised_abort_flag_makes_no_request() {
    let server = start(|_, _| ok_json(r#"{"data": {}}"#));
    let until = Until {
        deadline: None,
        abort: Some(Arc::new(AtomicBool::new(true))),
    };
    let error = viewer(&connect(&server), &until).unwrap_err();
    assert!(
        matches!(&error, HttpError::GaveUp { last, .. } if last == "no attempt was made"),
        "{error:?}"
    );
    assert_eq!(server.finish().len(), 0);
}

#[test]
fn deadline_stops_before_a_wait_that_would_pass_it() {
    let server = start(|_, _| answer(500, &[], "down"));
    let policy = RetryPolicy {
        min_wait: Duration::from_secs(1),
        max_wait: Duration::from_secs(1),
        ..test_policy()
    };
    let connection = connect_with(server.base_url(), policy);
    let started = Instant::now();
    let until = Until::deadline(started + Duration::from_millis(300));
    let error = viewer(&connection, &until).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(&error, HttpError::GaveUp { .. }), "{error:?}");
    assert_eq!(server.finish().len(), 1);
}

#[test]
fn running_out_of_retries_returns_the_last_status() {
    let server = start(|n, _| answer(502, &[], &format!("bad gateway {n}")));
    let policy = RetryPolicy {
        max_retries: 2,
        ..test_policy()
    };
    let error = viewer(&connect_with(server.base_url(), policy), &Until::forever()).unwrap_err();
    match &error {
        HttpError::Status {
            status, message, ..
        } => {
            assert_eq!(*status, 502);
            assert_eq!(message, "bad gateway 2 (after 3 attempts)");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.finish().len(), 3);
}

#[test]
fn a_permanent_answer_after_retries_counts_the_attempts() {
    let server = start(|n, _| match n {
        0 => answer(503, &[], "starting"),
        _ => answer(404, &[], r#"{"error": "no such run"}"#),
    });
    let error = viewer(&connect(&server), &Until::forever()).unwrap_err();
    assert!(
        matches!(&error, HttpError::Status { status: 404, message, .. } if message == "no such run (after 2 attempts)"),
        "{error:?}"
    );
    assert_eq!(server.finish().len(), 2);
}

#[test]
fn connections_are_shareable() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Connection>();
    check::<Until>();
    fn check_error<T: std::error::Error + Send + Sync + 'static>() {}
    check_error::<HttpError>();
}

#[test]
fn a_connection_cut_mid_answer_is_retried() {
    let server = start(|n, _| match n {
        0 => {
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"data\"".to_vec()
        }
        _ => ok_json(r#"{"data": {"ok": true}}"#),
    });
    let data = viewer(&connect(&server), &Until::forever()).unwrap();
    assert_eq!(data, serde_json::json!({"ok": true}));
    assert_eq!(server.finish().len(), 2);
}

#[test]
fn a_refused_connection_is_retried_then_reported() {
    // A port that was just free: nothing listens there any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let policy = RetryPolicy {
        max_retries: 2,
        ..test_policy()
    };
    let connection = connect_with(&format!("http://127.0.0.1:{port}"), policy);
    let error = viewer(&connection, &Until::forever()).unwrap_err();
    match &error {
        HttpError::Transport { url, message } => {
            assert_eq!(url, &format!("http://127.0.0.1:{port}/graphql"));
            assert!(message.ends_with("(after 3 attempts)"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_spent_rate_limit_holds_back_the_next_request() {
    let server = start(|n, _| match n {
        0 => answer(
            200,
            &[("RateLimit-Remaining", "0"), ("RateLimit-Reset", "0.4")],
            "{}",
        ),
        _ => answer(200, &[], "{}"),
    });
    let connection = connect(&server);
    connection
        .post_json("/fs", b"{}", false, &Until::forever())
        .unwrap();
    let started = Instant::now();
    connection
        .clone()
        .post_json("/fs", b"{}", false, &Until::forever())
        .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
    // A deadline before the limit resets gives up without a request.
    let server_requests = {
        let limited = start(|_, _| {
            answer(
                200,
                &[("RateLimit-Remaining", "0"), ("RateLimit-Reset", "60")],
                "{}",
            )
        });
        let connection = connect(&limited);
        connection
            .post_json("/fs", b"{}", false, &Until::forever())
            .unwrap();
        let until = Until::deadline(Instant::now() + Duration::from_secs(1));
        let error = connection
            .post_json("/fs", b"{}", false, &until)
            .unwrap_err();
        assert!(matches!(&error, HttpError::GaveUp { .. }), "{error:?}");
        limited.finish().len()
    };
    assert_eq!(server_requests, 1);
    assert_eq!(server.finish().len(), 2);
}
