//! The filestream's idempotence: lines are keyed by their offset, so a retried request,
//! or one that overlaps an earlier one, stores each line once — the SDK retries freely.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::sdk::{chunk, document, file_stream, upsert_run};
use crate::support::{ADMIN_KEY, TestApp};

const RUN: &str = "admin/proj/r1";

/// A history line at step `step`.
fn history_line(step: i64) -> String {
    format!(r#"{{"_step":{step},"loss":{}}}"#, 1.0 / (step + 1) as f64)
}

/// Sends `body` to the run's filestream as the admin; fails the test unless it is taken.
async fn stream(app: &TestApp, body: &Value) {
    let answer = file_stream(app, Some(ADMIN_KEY), RUN, body).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json(), json!({}));
}

/// The run as `wandb.Api()` reads it: its line count and every history line.
async fn stored_history(app: &TestApp) -> (i64, Vec<String>) {
    let data = app
        .graphql_ok(
            "query H($entity: String, $project: String, $run: String) {
               project(name: $project, entityName: $entity) {
                 run(name: $run) { historyLineCount history(samples: 1000) }
               }
             }",
            json!({ "entity": "admin", "project": "proj", "run": "r1" }),
        )
        .await;
    let run = &data["project"]["run"];
    let lines = run["history"]
        .as_array()
        .expect("history lines")
        .iter()
        .map(|l| l.as_str().expect("a line").to_owned())
        .collect();
    (run["historyLineCount"].as_i64().expect("a count"), lines)
}

#[tokio::test]
async fn retried_and_overlapping_history_is_stored_once() {
    let app = TestApp::new().await;
    upsert_run(&app, "admin", "proj", "r1").await;
    let lines: Vec<String> = (0..5).map(history_line).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();

    let first = chunk("wandb-history.jsonl", 0, &refs[0..3]);
    stream(&app, &first).await;
    stream(&app, &first).await;
    assert_eq!(stored_history(&app).await, (3, lines[0..3].to_vec()));

    // Lines 2..5: line 2 again, then two new ones.
    stream(&app, &chunk("wandb-history.jsonl", 2, &refs[2..5])).await;
    assert_eq!(stored_history(&app).await, (5, lines.clone()));

    // A retry carrying other text for a stored offset keeps the first copy.
    stream(&app, &chunk("wandb-history.jsonl", 1, &[r#"{"_step":99}"#])).await;
    assert_eq!(stored_history(&app).await, (5, lines.clone()));

    // `sampledHistory` reads the same rows, each once.
    let data = app
        .graphql_ok(
            document("RunSampledHistory"),
            json!({ "entity": "admin", "project": "proj", "name": "r1",
                    "specs": [r#"{"keys": ["_step", "loss"], "samples": 100}"#] }),
        )
        .await;
    let rows = data["project"]["run"]["sampledHistory"][0]
        .as_array()
        .expect("rows")
        .clone();
    let steps: Vec<i64> = rows.iter().map(|r| r["_step"].as_i64().unwrap()).collect();
    assert_eq!(steps, [0, 1, 2, 3, 4]);

    // The step index follows the stored copy: steps 1..3 are lines 1 and 2.
    let data = app
        .graphql_ok(
            document("HistoryPage"),
            json!({ "entity": "admin", "project": "proj", "run": "r1",
                    "minStep": 1, "maxStep": 3, "pageSize": 50 }),
        )
        .await;
    assert_eq!(
        data["project"]["run"]["history"],
        json!([lines[1], lines[2]])
    );
}

/// Console lines are keyed the same way, but a line sent again replaces the stored one
/// (the SDK rewrites a line in place for `\r` progress bars).
#[tokio::test]
async fn console_lines_are_stored_once_and_rewritten_in_place() {
    let app = TestApp::new().await;
    upsert_run(&app, "admin", "proj", "r1").await;
    stream(&app, &chunk("output.log", 0, &["epoch 1", "progress 10%"])).await;
    stream(&app, &chunk("output.log", 0, &["epoch 1", "progress 10%"])).await;
    stream(&app, &chunk("output.log", 1, &["progress 100%", "done"])).await;
    let answer = app
        .request(
            axum::http::Method::GET,
            "/api/projects/admin/proj/runs/r1/console",
            Vec::new(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let console = answer.json();
    assert_eq!(console["total"], 3, "{console}");
    let texts: Vec<&str> = console["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["epoch 1", "progress 100%", "done"]);
}

/// A malformed request is refused whole: nothing of it is stored.
#[tokio::test]
async fn a_bad_line_refuses_the_whole_request() {
    let app = TestApp::new().await;
    upsert_run(&app, "admin", "proj", "r1").await;
    let body = json!({ "files": {
        "output.log": { "offset": 0, "content": ["kept?"] },
        "wandb-history.jsonl": { "offset": 0, "content": [history_line(0), "not an object"] },
    }});
    let answer = file_stream(&app, Some(ADMIN_KEY), RUN, &body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(stored_history(&app).await, (0, Vec::new()));
    let negative = chunk("wandb-history.jsonl", -1, &[&history_line(0)]);
    let answer = file_stream(&app, Some(ADMIN_KEY), RUN, &negative).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    // A run that does not exist is a 404 naming it.
    let answer = file_stream(&app, Some(ADMIN_KEY), "admin/proj/nope", &json!({})).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(
        answer.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("admin/proj/nope")
    );
}
