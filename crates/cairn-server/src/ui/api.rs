//! The UI's read API: projects, runs, a run's charts, console, files and artifacts, as
//! the JSON shapes `ui/README.md` lists.
//!
//! Every handler resolves the entity through the same access rule as GraphQL (members and
//! admins) and answers 404 for what does not exist, naming it. Runs tables are answered
//! whole (the page sorts, filters and groups thousands of rows itself, and the response is
//! gzip-compressed): config and summary flattened to `a.b` keys, media summarised by type.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::series::{self, Source};
use super::{UiError, UiResult, Viewer};
use crate::App;
use crate::auth;
use crate::blob;
use crate::db::{self, ArtifactRow, LineKind, ProjectRow, RunRow};
use crate::error::ApiError;

/// Largest chart width the series endpoint reduces for.
const MAX_POINTS: usize = 8192;
/// Console lines per page, at most.
const MAX_CONSOLE_PAGE: i64 = 5000;
/// Bytes of `wandb-metadata.json` read for a run's overview.
const METADATA_LIMIT: usize = 1 << 20;

type Conn = sqlx::pool::PoolConnection<sqlx::Any>;

async fn project_of(
    conn: &mut Conn,
    viewer: &Viewer,
    entity: &str,
    project: &str,
) -> UiResult<ProjectRow> {
    let found = auth::readable_entity(conn, &viewer.user, Some(entity)).await?;
    let Some(entity_row) = found else {
        return Err(not_found(format!("entity {entity}")));
    };
    db::runs::project(conn, entity_row.id, project)
        .await?
        .ok_or_else(|| not_found(format!("project {entity}/{project}")))
}

async fn run_of(
    conn: &mut Conn,
    viewer: &Viewer,
    (entity, project, run): &(String, String, String),
) -> UiResult<RunRow> {
    let project_row = project_of(conn, viewer, entity, project).await?;
    db::runs::run_by_name(conn, project_row.id, run)
        .await?
        .ok_or_else(|| not_found(format!("run {entity}/{project}/{run}")))
}

fn not_found(what: String) -> UiError {
    UiError(ApiError::NotFound(format!("{what} does not exist")))
}

/// `GET /api/projects`.
pub(super) async fn projects(State(app): State<App>, viewer: Viewer) -> UiResult<Json<Value>> {
    let mut conn = app.db.conn().await?;
    let entities = if viewer.user.admin {
        db::accounts::all_entities(&mut conn).await?
    } else {
        db::accounts::entities_of(&mut conn, viewer.user.id).await?
    };
    let mut out = Vec::new();
    for entity in entities {
        for project in db::runs::projects_of(&mut conn, entity.id).await? {
            let (count, last) = db::runs::run_stats(&mut conn, project.id).await?;
            out.push(json!({
                "entity": entity.name,
                "name": project.name,
                "description": project.description,
                "runCount": count,
                "lastRunAt": last,
                "createdAt": project.created_at,
            }));
        }
    }
    Ok(Json(json!({ "projects": out })))
}

/// `GET /api/projects/{entity}/{project}/runs`: every run, newest first.
pub(super) async fn runs(
    State(app): State<App>,
    viewer: Viewer,
    Path((entity, project)): Path<(String, String)>,
) -> UiResult<Json<Value>> {
    let mut conn = app.db.conn().await?;
    let project = project_of(&mut conn, &viewer, &entity, &project).await?;
    let rows = db::runs::runs_of(&mut conn, project.id).await?;
    let users = user_names(&mut conn, &rows).await?;
    let runs: Vec<Value> = rows.iter().rev().map(|r| run_json(r, &users)).collect();
    Ok(Json(json!({ "runs": runs })))
}

async fn user_names(conn: &mut Conn, rows: &[RunRow]) -> UiResult<HashMap<i64, String>> {
    let mut names = HashMap::new();
    for id in rows.iter().filter_map(|r| r.user_id) {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id)
            && let Some(user) = db::accounts::user_by_id(conn, id).await?
        {
            slot.insert(user.name);
        }
    }
    Ok(names)
}

fn run_json(row: &RunRow, users: &HashMap<i64, String>) -> Value {
    let tags: Value = serde_json::from_str(&row.tags).unwrap_or_else(|_| json!([]));
    let summary = flat_summary(&row.summary);
    // The run's own clock when it reported one (W&B's `_wandb.runtime`, or `_runtime`),
    // else creation to last sign of life.
    let duration = ["_wandb.runtime", "_runtime"]
        .iter()
        .find_map(|k| summary.get(*k).and_then(Value::as_f64))
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map_or(row.duration_secs(), |d| d.round() as i64);
    json!({
        "name": row.name,
        "displayName": row.display_name.as_deref().unwrap_or(&row.name),
        "state": row.effective_state(),
        "tags": tags,
        "group": row.group_name,
        "jobType": row.job_type,
        "user": row.user_id.and_then(|id| users.get(&id)),
        "createdAt": row.created_at,
        "heartbeatAt": row.heartbeat_at,
        "duration": duration,
        "notes": row.notes,
        "config": flat_config(&row.config),
        "summary": summary,
    })
}

/// W&B's config shape (`{"k": {"value": v}}`) as flat `a.b` keys; `_wandb` and other
/// `_` keys are the SDK's, not the user's.
pub(crate) fn flat_config(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    if let Ok(Value::Object(config)) = serde_json::from_str::<Value>(text) {
        for (key, item) in config {
            if key.starts_with('_') {
                continue;
            }
            let value = match item {
                Value::Object(mut o) if o.contains_key("value") => {
                    o.remove("value").unwrap_or(Value::Null)
                }
                other => other,
            };
            flatten(&key, value, &mut out);
        }
    }
    out
}

/// A summary object as flat `a.b` keys; media and tables become their type's name.
pub(crate) fn flat_summary(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    if let Ok(Value::Object(summary)) = serde_json::from_str::<Value>(text) {
        for (key, value) in summary {
            flatten(&key, value, &mut out);
        }
    }
    out
}

fn flatten(prefix: &str, value: Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(o) => {
            if let Some(kind) = o.get("_type").and_then(Value::as_str) {
                let kind = kind.split(['-', '/']).next().unwrap_or(kind).to_owned();
                out.insert(prefix.to_owned(), Value::String(kind));
                return;
            }
            if o.is_empty() {
                out.insert(prefix.to_owned(), Value::Object(o));
                return;
            }
            for (key, value) in o {
                flatten(&format!("{prefix}.{key}"), value, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other);
        }
    }
}

/// `GET /api/projects/{entity}/{project}/runs/{run}`.
pub(super) async fn run(
    State(app): State<App>,
    viewer: Viewer,
    Path(path): Path<(String, String, String)>,
) -> UiResult<Json<Value>> {
    let mut conn = app.db.conn().await?;
    let row = run_of(&mut conn, &viewer, &path).await?;
    let users = user_names(&mut conn, std::slice::from_ref(&row)).await?;
    let mut out = run_json(&row, &users);
    let files = db::lines::files(&mut conn, row.id).await?;
    let outputs = db::artifacts::lineage::outputs_of(&mut conn, row.id).await?;
    let inputs = db::artifacts::lineage::inputs_of(&mut conn, row.id).await?;
    let mut output_refs = Vec::new();
    for a in &outputs {
        output_refs.push(artifact_ref(&mut conn, a).await?);
    }
    let mut input_refs = Vec::new();
    for a in &inputs {
        input_refs.push(artifact_ref(&mut conn, a).await?);
    }
    drop(conn);
    let metrics = metric_keys(&app, &row, Source::History).await?;
    let system = metric_keys(&app, &row, Source::Events).await?;
    let metadata = metadata(&app, &row).await;
    let (e, p, r) = &path;
    let files: Vec<Value> = files
        .iter()
        .filter(|f| f.uploaded)
        .map(|f| {
            json!({
                "name": f.name,
                "size": f.size,
                "updatedAt": f.updated_at,
                "url": format!("/api/projects/{}/{}/runs/{}/files/{}",
                    blob::encode_key(e), blob::encode_key(p), blob::encode_key(r),
                    blob::encode_key(&f.name)),
            })
        })
        .collect();
    let field = |name: &str| metadata.get(name).cloned().unwrap_or(Value::Null);
    let command = metadata.get("args").and_then(Value::as_array).map(|args| {
        let program = metadata
            .get("codePath")
            .or_else(|| metadata.get("program"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut parts = vec![program.to_owned()];
        parts.extend(
            args.iter()
                .map(|a| a.as_str().map_or(a.to_string(), str::to_owned)),
        );
        parts.join(" ").trim().to_owned()
    });
    if let Value::Object(o) = &mut out {
        o.insert(
            "host".into(),
            json!(
                row.host
                    .clone()
                    .or_else(|| { field("host").as_str().map(str::to_owned) })
            ),
        );
        o.insert(
            "program".into(),
            json!(
                row.program
                    .clone()
                    .or_else(|| { field("program").as_str().map(str::to_owned) })
            ),
        );
        o.insert("command".into(), json!(command));
        o.insert("os".into(), field("os"));
        o.insert("python".into(), field("python"));
        o.insert("gitCommit".into(), json!(row.git_commit));
        o.insert("gitRepo".into(), json!(row.git_repo));
        o.insert("exitcode".into(), json!(row.exitcode));
        o.insert("historyLines".into(), json!(row.history_lines));
        o.insert("eventsLines".into(), json!(row.events_lines));
        o.insert("logLines".into(), json!(row.log_lines));
        o.insert("metrics".into(), json!(metrics));
        o.insert("systemMetrics".into(), json!(system));
        o.insert("files".into(), json!(files));
        o.insert(
            "artifacts".into(),
            json!({ "output": output_refs, "input": input_refs }),
        );
    }
    Ok(Json(out))
}

async fn artifact_ref(conn: &mut Conn, a: &ArtifactRow) -> UiResult<Value> {
    let aliases = db::artifacts::aliases::aliases_of(conn, a.id).await?;
    let version = a.version_index.map(|v| format!("v{v}"));
    Ok(json!({
        "id": a.id.to_string(),
        "name": format!("{}:{}", a.collection.name, version.as_deref().unwrap_or("pending")),
        "type": a.collection.type_name,
        "collection": a.collection.name,
        "version": version,
        "aliases": aliases,
    }))
}

/// The run's `wandb-metadata.json` (host, program, args, os, python), when uploaded.
async fn metadata(app: &App, row: &RunRow) -> Map<String, Value> {
    let key = blob::run_file_key(row.id, "wandb-metadata.json");
    let Ok((size, stream)) = app.blobs.get(&key).await else {
        return Map::new();
    };
    if size as usize > METADATA_LIMIT {
        return Map::new();
    }
    let bytes: Result<Vec<_>, _> = stream.try_collect().await;
    let Ok(chunks) = bytes else {
        return Map::new();
    };
    let bytes: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

async fn columns(
    app: &App,
    row: &RunRow,
    source: Source,
) -> UiResult<tokio::sync::OwnedMutexGuard<series::Columns>> {
    let (kind, lines) = match source {
        Source::History => (LineKind::History, row.history_lines),
        Source::Events => (LineKind::Events, row.events_lines),
    };
    let db = &app.db;
    let run = row.id;
    let read = |from: i64, to: i64| async move {
        let mut conn = db.conn().await?;
        db::lines::joined_lines(&mut conn, run, kind, from, to).await
    };
    Ok(app.series.columns(run, source, lines, read).await?)
}

/// Keys with numeric values that a chart can draw (the `_` bookkeeping keys are axes).
async fn metric_keys(app: &App, row: &RunRow, source: Source) -> UiResult<Vec<String>> {
    let columns = columns(app, row, source).await?;
    Ok(columns
        .keys()
        .into_iter()
        .filter(|k| !k.starts_with('_'))
        .collect())
}

#[derive(Debug, Deserialize)]
pub(super) struct SeriesQuery {
    keys: String,
    x: Option<String>,
    from: Option<f64>,
    to: Option<f64>,
    points: Option<usize>,
    source: Option<String>,
}

/// `GET …/series`: reduced series (see [`series`]).
pub(super) async fn series(
    State(app): State<App>,
    viewer: Viewer,
    Path(path): Path<(String, String, String)>,
    Query(q): Query<SeriesQuery>,
) -> UiResult<Json<Value>> {
    let row = {
        let mut conn = app.db.conn().await?;
        run_of(&mut conn, &viewer, &path).await?
    };
    let source = match q.source.as_deref() {
        None | Some("history") => Source::History,
        Some("events") => Source::Events,
        Some(other) => {
            return Err(UiError(ApiError::BadRequest(format!(
                "source must be history or events, not {other:?}"
            ))));
        }
    };
    let x_key = q.x.unwrap_or_else(|| match source {
        Source::History => "_step".to_owned(),
        Source::Events => "_runtime".to_owned(),
    });
    let points = q.points.unwrap_or(1000).clamp(1, MAX_POINTS);
    let columns = columns(&app, &row, source).await?;
    let mut out = Map::new();
    let mut pairs = Vec::new();
    let (mut xmin, mut xmax) = (f64::INFINITY, f64::NEG_INFINITY);
    for key in q.keys.split(',').filter(|k| !k.is_empty()).take(64) {
        let (xs, ys) = columns.pairs(&x_key, key);
        for &x in &xs {
            xmin = xmin.min(x);
            xmax = xmax.max(x);
        }
        pairs.push((key, xs, ys));
    }
    let lines = columns.next_line;
    drop(columns);
    let from = q.from.filter(|f| f.is_finite()).unwrap_or(xmin);
    let to = q.to.filter(|t| t.is_finite()).unwrap_or(xmax);
    for (key, xs, ys) in pairs {
        let r = series::reduce(&xs, &ys, from, to, points);
        out.insert(
            key.to_owned(),
            json!({ "x": r.x, "y": r.y, "count": r.count }),
        );
    }
    let finite = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
    Ok(Json(json!({
        "x": x_key,
        "series": out,
        "xmin": finite(xmin),
        "xmax": finite(xmax),
        "lines": lines,
    })))
}

#[derive(Debug, Deserialize)]
pub(super) struct ConsoleQuery {
    from: Option<i64>,
    limit: Option<i64>,
    q: Option<String>,
}

/// `GET …/console`: a page of console lines, optionally only those containing `q`.
pub(super) async fn console(
    State(app): State<App>,
    viewer: Viewer,
    Path(path): Path<(String, String, String)>,
    Query(q): Query<ConsoleQuery>,
) -> UiResult<Json<Value>> {
    let mut conn = app.db.conn().await?;
    let row = run_of(&mut conn, &viewer, &path).await?;
    let from = q.from.unwrap_or(0).max(0);
    let limit = q.limit.unwrap_or(1000).clamp(1, MAX_CONSOLE_PAGE);
    let needle = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let (total, lines) = match needle {
        None => (
            row.log_lines,
            db::lines::read_lines(&mut conn, row.id, LineKind::Console, from, limit).await?,
        ),
        Some(needle) => {
            let (total, lines) =
                db::lines::search_lines(&mut conn, row.id, LineKind::Console, needle, from, limit)
                    .await?;
            (total, lines)
        }
    };
    let lines: Vec<Value> = lines
        .iter()
        .map(|(n, content)| {
            let (stderr, time, text) = split_console_line(content);
            json!({ "n": n, "time": time, "text": text, "stderr": stderr })
        })
        .collect();
    Ok(Json(json!({ "total": total, "lines": lines })))
}

/// A stored console line's parts: whether it came from stderr (`ERROR ` prefix), its
/// timestamp, and its text.
fn split_console_line(content: &str) -> (bool, Option<&str>, &str) {
    let (stderr, rest) = match content.strip_prefix("ERROR ") {
        Some(rest) => (true, rest),
        None => (false, content),
    };
    match rest.split_once(' ') {
        Some((time, text))
            if time.len() >= 19
                && time.as_bytes()[4] == b'-'
                && time.as_bytes()[10] == b'T'
                && time.bytes().take(4).all(|b| b.is_ascii_digit()) =>
        {
            (stderr, Some(time), text)
        }
        _ => (stderr, None, rest),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct FileQuery {
    download: Option<String>,
}

/// `GET …/files/{name}`: a run file's bytes, inline (as text when it looks like text) or
/// as an attachment with `?download=1`.
pub(super) async fn file(
    State(app): State<App>,
    viewer: Viewer,
    Path((entity, project, run, name)): Path<(String, String, String, String)>,
    Query(q): Query<FileQuery>,
) -> UiResult<Response> {
    blob::check_file_name(&name).map_err(|e| UiError(ApiError::BadRequest(e)))?;
    let row = {
        let mut conn = app.db.conn().await?;
        run_of(&mut conn, &viewer, &(entity, project, run)).await?
    };
    let key = blob::run_file_key(row.id, &name);
    let (size, stream) = app.blobs.get(&key).await?;
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&name)),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // Files are the user's, not the server's: never let one run as a page of this origin.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; img-src 'self'; sandbox"),
    );
    if q.download.is_some() {
        let base = name.rsplit('/').next().unwrap_or(&name).replace('"', "");
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{base}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(response)
}

fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "json" | "jsonl" | "log" | "txt" | "yaml" | "yml" | "md" | "py" | "csv" | "toml"
        | "cfg" | "ini" | "sh" | "rs" | "patch" | "diff" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        _ => "application/octet-stream",
    }
}

/// `GET /api/projects/{entity}/{project}/artifacts`: collections with their versions.
pub(super) async fn artifacts(
    State(app): State<App>,
    viewer: Viewer,
    Path((entity, project)): Path<(String, String)>,
) -> UiResult<Json<Value>> {
    let mut conn = app.db.conn().await?;
    let project = project_of(&mut conn, &viewer, &entity, &project).await?;
    let mut out = Vec::new();
    for collection in db::artifacts::collections::collections_of(&mut conn, project.id).await? {
        let mut versions = Vec::new();
        for a in db::artifacts::versions::committed(&mut conn, collection.id).await? {
            if a.state != "COMMITTED" {
                continue;
            }
            versions.push(version_json(&mut conn, &a).await?);
        }
        versions.reverse();
        out.push(json!({
            "id": collection.id.to_string(),
            "name": collection.name,
            "type": collection.type_name,
            "description": collection.description,
            "createdAt": collection.created_at,
            "versions": versions,
        }));
    }
    Ok(Json(json!({ "collections": out })))
}

async fn version_json(conn: &mut Conn, a: &ArtifactRow) -> UiResult<Value> {
    let aliases = db::artifacts::aliases::aliases_of(conn, a.id).await?;
    let created_by = match a.run_id {
        Some(run) => db::runs::run_by_id(conn, run).await?.map(|r| r.name),
        None => None,
    };
    let mut used_by = Vec::new();
    for run in db::artifacts::lineage::users_of(conn, a.id).await? {
        if let Some(r) = db::runs::run_by_id(conn, run).await? {
            used_by.push(r.name);
        }
    }
    Ok(json!({
        "id": a.id.to_string(),
        "version": a.version_index.map(|v| format!("v{v}")),
        "aliases": aliases,
        "digest": a.digest,
        "size": a.size,
        "fileCount": a.file_count,
        "description": a.description,
        "createdAt": a.created_at,
        "createdBy": created_by,
        "usedBy": used_by,
    }))
}

/// `GET /api/artifacts/{id}`: one version with its files and signed download URLs.
pub(super) async fn artifact(
    State(app): State<App>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> UiResult<Json<Value>> {
    let not_found = || not_found(format!("artifact {id}"));
    let id_num: i64 = id.parse().map_err(|_| not_found())?;
    let mut conn = app.db.conn().await?;
    let a = db::artifacts::versions::artifact_by_id(&mut conn, id_num)
        .await?
        .filter(|a| a.state == "COMMITTED")
        .ok_or_else(not_found)?;
    let entity = db::accounts::entity_by_id(&mut conn, a.collection.entity_id)
        .await?
        .ok_or_else(not_found)?;
    if !auth::may_access(&mut conn, &viewer.user, &entity).await? {
        return Err(UiError(auth::forbidden(&entity.name)));
    }
    let mut out = version_json(&mut conn, &a).await?;
    let entries = db::artifacts::entries::entries(&mut conn, a.id, 0, 10_000).await?;
    let base = app.base_url(&headers);
    let files: Vec<Value> = entries
        .iter()
        .map(|e| {
            let url =
                e.md5.as_deref().and_then(blob::md5_hex).map(|hex| {
                    app.signed_url(&base, "GET", &blob::artifact_blob_key(entity.id, &hex))
                });
            json!({
                "path": e.path,
                "size": e.size,
                "digest": e.md5,
                "ref": e.reference,
                "url": url,
            })
        })
        .collect();
    if let Value::Object(o) = &mut out {
        o.insert("collection".into(), json!(a.collection.name));
        o.insert("type".into(), json!(a.collection.type_name));
        o.insert("entity".into(), json!(a.collection.entity_name));
        o.insert("project".into(), json!(a.collection.project_name));
        o.insert("files".into(), json!(files));
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_summary_flatten_for_columns() {
        let config = flat_config(
            r#"{"lr":{"value":0.01,"desc":null},"opt":{"value":{"name":"adam","b":[0.9,0.99]}},
                "_wandb":{"value":{"cli_version":"0.31.0"}}}"#,
        );
        assert_eq!(
            Value::Object(config),
            json!({"lr": 0.01, "opt.name": "adam", "opt.b": [0.9, 0.99]})
        );
        let summary = flat_summary(
            r#"{"loss":0.5,"img":{"_type":"image-file","width":2},"eval":{"acc":0.9},"_step":9}"#,
        );
        assert_eq!(
            Value::Object(summary),
            json!({"loss": 0.5, "img": "image", "eval.acc": 0.9, "_step": 9})
        );
    }

    #[test]
    fn console_lines_split_into_stream_time_and_text() {
        assert_eq!(
            split_console_line("2026-12-02T07:00:00.123456 hello world"),
            (false, Some("2026-12-02T07:00:00.123456"), "hello world")
        );
        assert_eq!(
            split_console_line("ERROR 2026-12-02T07:00:00.1 oops"),
            (true, Some("2026-12-02T07:00:00.1"), "oops")
        );
        assert_eq!(
            split_console_line("plain text"),
            (false, None, "plain text")
        );
        assert_eq!(split_console_line(""), (false, None, ""));
    }
}
