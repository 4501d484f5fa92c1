//! `POST /files/{entity}/{project}/{run}/file_stream`: a run's live data.
//!
//! Input: W&B's filestream body — `files` (history, system-metric events,
//! summary, console lines, each with the offset of its first line), `uploaded`,
//! `preempting`, `complete` + `exitcode` — as JSON, gzip-compressed or not. `{}` is a
//! heartbeat. Output: `{}`, or `{"stopped": true}` once someone asked the run to stop.
//!
//! Every request is applied in one transaction, and lines are keyed by offset, so a
//! retried or overlapping request stores each line once (see `db::lines`). A malformed
//! body is refused whole (400) and changes nothing.

use std::collections::BTreeMap;
use std::io::Read as _;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::auth;
use crate::db::lines::Line;
use crate::db::{self, LineKind, RunFields};
use crate::error::ApiError;

/// Largest body accepted after decompression (the client keeps requests under ~10 MiB).
pub(crate) const MAX_DECODED_BYTES: u64 = 256 << 20;

/// The largest offset a client may name: far beyond any real run, small enough to keep
/// `offset + count` exact.
const MAX_OFFSET: i64 = 1 << 40;

const HISTORY: &str = "wandb-history.jsonl";
const EVENTS: &str = "wandb-events.jsonl";
const SUMMARY: &str = "wandb-summary.json";
const CONSOLE: &str = "output.log";

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    files: BTreeMap<String, Chunk>,
    #[serde(default)]
    uploaded: Vec<String>,
    #[serde(default)]
    preempting: Option<bool>,
    #[serde(default)]
    complete: Option<bool>,
    #[serde(default)]
    exitcode: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Chunk {
    offset: i64,
    #[serde(default)]
    content: Vec<String>,
}

/// The handler: authenticate, decode, apply in one transaction, answer.
pub(crate) async fn file_stream(
    State(app): State<App>,
    Path((entity, project, run)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let viewer = {
        let mut conn = app.db.conn().await?;
        auth::authenticate(&mut conn, &headers).await?
    };
    let body = body?;
    let path = format!("{entity}/{project}/{run}");
    let gzip = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let text = if gzip {
        gunzip(&body, &path)?
    } else {
        body.to_vec()
    };
    let request: Body = serde_json::from_slice(&text).map_err(|err| {
        ApiError::BadRequest(format!(
            "filestream body for run {path} is not valid: {err}"
        ))
    })?;
    let plan = Plan::new(&request, &path)?;

    let mut tx = app.db.write().await?;
    let not_found = || ApiError::NotFound(format!("run {path} not found"));
    let entity_row = auth::readable_entity(tx.conn(), &viewer, Some(&entity))
        .await?
        .ok_or_else(not_found)?;
    let project_row = db::runs::project(tx.conn(), entity_row.id, &project)
        .await?
        .ok_or_else(not_found)?;
    let run_row = db::runs::run_by_name(tx.conn(), project_row.id, &run)
        .await?
        .ok_or_else(not_found)?;

    for (kind, lines) in [
        (LineKind::History, &plan.history),
        (LineKind::Events, &plan.events),
        (LineKind::Console, &plan.console),
    ] {
        if !lines.is_empty() {
            db::lines::write_lines(tx.conn(), run_row.id, kind, lines).await?;
        }
    }
    let state = if request.complete == Some(true) {
        let code = request.exitcode.unwrap_or(0);
        db::lines::set_exit(tx.conn(), run_row.id, code).await?;
        Some(if code == 0 { "finished" } else { "failed" })
    } else if request.preempting == Some(true) {
        Some("preempting")
    } else if run_row.state != "running" && run_row.state != "preempting" {
        // A finished run that streams again has been resumed.
        Some("running")
    } else {
        None
    };
    let fields = RunFields {
        summary: plan.summary.map(str::to_owned),
        state: state.map(str::to_owned),
        ..RunFields::default()
    };
    db::runs::update_run(tx.conn(), run_row.id, &fields).await?;
    db::lines::heartbeat(tx.conn(), run_row.id).await?;
    tx.commit().await?;
    if !request.uploaded.is_empty() {
        tracing::debug!(run = %path, files = ?request.uploaded, "client reports uploads");
    }
    Ok(Json(if run_row.stop_requested {
        json!({ "stopped": true })
    } else {
        json!({})
    }))
}

/// What a request will write, checked before anything is written.
struct Plan<'a> {
    history: Vec<Line<'a>>,
    events: Vec<Line<'a>>,
    console: Vec<Line<'a>>,
    summary: Option<&'a str>,
}

impl<'a> Plan<'a> {
    fn new(request: &'a Body, path: &str) -> Result<Plan<'a>, ApiError> {
        let mut plan = Plan {
            history: Vec::new(),
            events: Vec::new(),
            console: Vec::new(),
            summary: None,
        };
        for (name, chunk) in &request.files {
            if chunk.offset < 0 || chunk.offset > MAX_OFFSET {
                return Err(ApiError::BadRequest(format!(
                    "run {path}: offset {} of {name} is out of range",
                    chunk.offset
                )));
            }
            let lines = chunk.content.iter().enumerate().map(|(i, content)| Line {
                line: chunk.offset + i as i64,
                step: None,
                content,
            });
            match name.as_str() {
                HISTORY => {
                    for mut line in lines {
                        check_object(line.content, path, name, line.line)?;
                        line.step = step(line.content);
                        plan.history.push(line);
                    }
                }
                EVENTS => {
                    for line in lines {
                        check_object(line.content, path, name, line.line)?;
                        plan.events.push(line);
                    }
                }
                CONSOLE => plan.console.extend(lines),
                SUMMARY => {
                    if let Some(last) = chunk.content.last() {
                        check_object(last, path, name, chunk.offset)?;
                        plan.summary = Some(last);
                    }
                }
                other => {
                    tracing::debug!(run = %path, file = other, "ignoring unknown filestream file");
                }
            }
        }
        Ok(plan)
    }
}

fn gunzip(body: &[u8], path: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|err| {
            ApiError::BadRequest(format!(
                "filestream body for run {path} is not valid gzip: {err}"
            ))
        })?;
    if out.len() as u64 > MAX_DECODED_BYTES {
        return Err(ApiError::TooLarge(format!(
            "filestream body for run {path} is larger than {MAX_DECODED_BYTES} bytes decompressed"
        )));
    }
    Ok(out)
}

/// History, events and summary lines must be JSON objects. The check is shallow on
/// purpose: W&B's lines may hold `NaN` and `Infinity`, which strict JSON parsers refuse.
fn check_object(line: &str, path: &str, file: &str, number: i64) -> Result<(), ApiError> {
    let trimmed = line.trim();
    if trimmed.starts_with('{') && trimmed.ends_with('}') {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "run {path}: line {number} of {file} is not a JSON object"
        )))
    }
}

/// A history line's `_step`: an integer, or a float without a fraction (`10.0`); `None`
/// when the line has none or is not an object of W&B's JSON (values may be `NaN`).
fn step(line: &str) -> Option<i64> {
    let text = cairn_proto::value::member(line, "_step")?;
    cairn_proto::value::Value::from_json(text)?.as_whole()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_step() {
        let cases: &[(&str, Option<i64>)] = &[
            (r#"{"_step":3,"a":1}"#, Some(3)),
            (r#"{"a":{"_step":9},"_step": 4}"#, Some(4)),
            (r#"{"a":"\"_step\":7","_step":5}"#, Some(5)),
            (
                r#"{"loss":NaN,"_step":12,"x":-Infinity,"NaN":"Infinity"}"#,
                Some(12),
            ),
            (r#"{"loss": [NaN, {"b": Infinity}], "_step": 13}"#, Some(13)),
            (r#"{"_step":1e2}"#, Some(100)),
            (r#"{"_step":10.0}"#, Some(10)),
            (r#"{"_step":1.5}"#, None),
            (r#"{"_step":NaN}"#, None),
            (r#"{"a":[{"_step":1}]}"#, None),
            (r#"{"_step":"x"}"#, None),
            (r#"{"_step":"#, None),
            (r#"{"_step":3,"a":"#, None),
            ("", None),
            (r#"{"\"#, None),
        ];
        for (line, expect) in cases {
            assert_eq!(step(line), *expect, "{line}");
        }
    }
}
