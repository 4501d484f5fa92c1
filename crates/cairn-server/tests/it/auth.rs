//! Who may do what: requests without a valid key are 401 on every authenticated surface;
//! a user reaches only the entities they belong to; signed storage URLs work only as
//! signed and until they expire.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::artifacts::Save;
use crate::support::sdk::{chunk, document, file_stream, upsert_run};
use crate::support::{BASE_URL, TestApp};

const WRONG_KEY: &str = "local-wrongwrongwrongwrongwrongwrongwrongwrong";

/// How many history lines admin's run `admin/proj/r1` holds.
async fn admin_history_lines(app: &TestApp) -> i64 {
    let data = app
        .graphql_ok(
            "{ project(name: \"proj\", entityName: \"admin\") { run(name: \"r1\") { historyLineCount } } }",
            json!({}),
        )
        .await;
    data["project"]["run"]["historyLineCount"]
        .as_i64()
        .expect("a count")
}

/// No key, or a key the server does not know: 401 on GraphQL, the filestream and the UI's
/// API, and nothing is written.
#[tokio::test]
async fn requests_without_a_valid_key_are_401() {
    let app = TestApp::new().await;
    upsert_run(&app, "admin", "proj", "r1").await;
    let graphql = serde_json::to_vec(&json!({ "query": "{ viewer { id } }" })).unwrap();
    let stream = serde_json::to_vec(&chunk("wandb-history.jsonl", 0, &[r#"{"_step":0}"#])).unwrap();
    for key in [None, Some(WRONG_KEY)] {
        for (method, path, body) in [
            (Method::POST, "/graphql", graphql.clone()),
            (
                Method::POST,
                "/files/admin/proj/r1/file_stream",
                stream.clone(),
            ),
            (Method::GET, "/api/projects", Vec::new()),
            (Method::GET, "/api/projects/admin/proj/runs", Vec::new()),
            (Method::GET, "/api/projects/admin/proj/runs/r1", Vec::new()),
            (Method::GET, "/api/me", Vec::new()),
        ] {
            let answer = app.request_as(key, method.clone(), path, body).await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {key:?}"
            );
            assert!(
                answer.content_type().starts_with("application/json"),
                "{method} {path}"
            );
        }
    }
    assert_eq!(admin_history_lines(&app).await, 0);
}

/// A user reaches their own entity, not another user's: reads and writes through GraphQL,
/// the filestream and the UI's API are refused, and the other's projects are not listed.
#[tokio::test]
async fn another_users_project_is_out_of_reach() {
    let app = TestApp::new().await;
    upsert_run(&app, "admin", "proj", "r1").await;
    let saved = Save::new("ds").file("a.txt", b"one").save(&app).await;
    let bob = app.add_user("bob").await;

    // Bob's own entity works.
    let data = app
        .graphql_ok_as(
            &bob,
            document("UpsertBucket"),
            json!({ "name": "b1", "project": "mine", "entity": "bob" }),
        )
        .await;
    assert_eq!(data["upsertBucket"]["inserted"], true);

    // Reads of admin's project, entity and artifact; writes of a run, an artifact and
    // aliases there.
    let mut as_bob = Save::new("ds").file("a.txt", b"bob's");
    as_bob.key = bob.clone();
    for (query, variables) in [
        (
            "query Q($p: String, $e: String) { project(name: $p, entityName: $e) { id } }",
            json!({ "p": "proj", "e": "admin" }),
        ),
        (
            "query Q($e: String) { entity(name: $e) { id } }",
            json!({ "e": "admin" }),
        ),
        (document("ArtifactByID"), json!({ "id": saved.id })),
        (
            document("UpsertBucket"),
            json!({ "name": "intruder", "project": "proj", "entity": "admin" }),
        ),
        (
            document("CreateArtifact"),
            json!({ "input": { "artifactCollectionName": "ds", "artifactTypeName": "dataset",
                    "digest": as_bob.digest(), "entityName": "admin", "projectName": "proj" } }),
        ),
        (
            document("AddAliases"),
            json!({ "input": { "artifactID": saved.id,
                    "aliases": Save::new("ds").alias_inputs(&["mine"]) } }),
        ),
    ] {
        let message = app.graphql_error_as(&bob, query, variables).await;
        assert!(message.contains("permission denied"), "{query}: {message}");
    }

    let answer = file_stream(
        &app,
        Some(&bob),
        "admin/proj/r1",
        &chunk("wandb-history.jsonl", 0, &[r#"{"_step":0}"#]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);

    for path in [
        "/api/projects/admin/proj/runs",
        "/api/projects/admin/proj/runs/r1",
        "/api/projects/admin/proj/artifacts",
    ] {
        let answer = app
            .request_as(Some(&bob), Method::GET, path, Vec::new())
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
    }
    let answer = app
        .request_as(Some(&bob), Method::GET, "/api/projects", Vec::new())
        .await;
    let projects = answer.json();
    let entities: Vec<&str> = projects["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["entity"].as_str().unwrap())
        .collect();
    assert_eq!(entities, ["bob"], "{projects}");

    // Nothing of bob's reached admin's run.
    assert_eq!(admin_history_lines(&app).await, 0);
    // The admin reaches bob's entity.
    let data = app
        .graphql_ok(
            "{ project(name: \"mine\", entityName: \"bob\") { run(name: \"b1\") { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["project"]["run"]["name"], "b1");
}

/// Signed storage URLs: a changed signature, a changed key, another method or an expired
/// time is 403; the URL as handed out works.
#[tokio::test]
async fn signed_urls_refuse_bad_signatures_and_expired_times() {
    let app = TestApp::new().await;
    upsert_run(&app, "admin", "proj", "r1").await;
    let data = app
        .graphql_ok(
            document("CreateRunFiles"),
            json!({ "entity": "admin", "project": "proj", "run": "r1", "files": ["notes.txt"] }),
        )
        .await;
    let url = data["createRunFiles"]["files"][0]["uploadUrl"]
        .as_str()
        .expect("an upload URL")
        .to_owned();
    let (path, query) = url.split_once('?').expect("a signed query");

    let tampered_sig = {
        let (before, sig) = query.rsplit_once("sig=").expect("a signature");
        let mut sig = sig.to_owned();
        let last = sig.pop().unwrap();
        sig.push(if last == '0' { '1' } else { '0' });
        format!("{path}?{before}sig={sig}")
    };
    for (method, bad) in [
        (Method::PUT, tampered_sig),
        (Method::PUT, format!("{path}x?{query}")),
        (Method::PUT, path.to_owned()),
        (Method::GET, url.clone()),
    ] {
        let answer = app
            .request_url(method.clone(), &bad, b"hello".to_vec())
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {bad}");
    }

    // Correctly signed, but expired (the key has only safe characters: no decoding).
    let key = path
        .strip_prefix(&format!("{BASE_URL}/storage/"))
        .expect("a storage URL");
    assert!(key.ends_with("/files/notes.txt"), "{key}");
    let expired = format!(
        "{BASE_URL}/storage/{key}?{}",
        app.app.blobs.sign("PUT", key, 1_000)
    );
    let answer = app
        .request_url(Method::PUT, &expired, b"hello".to_vec())
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);

    app.upload(&url, b"hello".to_vec()).await;
    // A signed GET of the same key reads it back.
    let far = i64::MAX / 2;
    let get = format!(
        "{BASE_URL}/storage/{key}?{}",
        app.app.blobs.sign("GET", key, far)
    );
    let answer = app.request_url(Method::GET, &get, Vec::new()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, b"hello");
}
