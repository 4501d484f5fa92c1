//! What W&B's SDK sends: its GraphQL documents, captured from the real client
//! (`testdata/wandb-0.31/graphql/documents.jsonl`, looked up by operation name), and
//! filestream bodies. Tests send these instead of hand-written queries wherever the SDK
//! has one, so they pin the behaviour the SDK meets.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::Method;
use serde_json::{Value, json};

use super::{Answer, TestApp};

/// The SDK's document of operation `name` (its first capture).
pub(crate) fn document(name: &str) -> &'static str {
    static DOCUMENTS: OnceLock<HashMap<String, String>> = OnceLock::new();
    let documents = DOCUMENTS.get_or_init(|| {
        let corpus = include_str!("../../../../../testdata/wandb-0.31/graphql/documents.jsonl");
        let mut documents = HashMap::new();
        for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
            let entry: Value = serde_json::from_str(line).expect("a JSON line");
            let (Some(name), Some(query)) =
                (entry["operationName"].as_str(), entry["query"].as_str())
            else {
                continue;
            };
            documents
                .entry(name.to_owned())
                .or_insert_with(|| query.to_owned());
        }
        documents
    });
    documents
        .get(name)
        .unwrap_or_else(|| panic!("the SDK corpus has no operation {name}"))
}

/// `UpsertBucket` as `wandb.init()` sends it: run `run` of `entity/project`, created on
/// first use. The answer's `upsertBucket`.
pub(crate) async fn upsert_run(app: &TestApp, entity: &str, project: &str, run: &str) -> Value {
    let data = app
        .graphql_ok(
            document("UpsertBucket"),
            json!({ "name": run, "project": project, "entity": entity, "config": "{}" }),
        )
        .await;
    data["upsertBucket"].clone()
}

/// A filestream body carrying `lines` of `file` from line `offset`.
pub(crate) fn chunk(file: &str, offset: i64, lines: &[&str]) -> Value {
    json!({ "files": { file: { "offset": offset, "content": lines } } })
}

/// POSTs `body` to the filestream of `entity/project/run` with `key` (none: no header).
pub(crate) async fn file_stream(
    app: &TestApp,
    key: Option<&str>,
    run_path: &str,
    body: &Value,
) -> Answer {
    app.request_as(
        key,
        Method::POST,
        &format!("/files/{run_path}/file_stream"),
        serde_json::to_vec(body).expect("JSON"),
    )
    .await
}
