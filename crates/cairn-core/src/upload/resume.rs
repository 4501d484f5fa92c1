//! What the server holds of a run being resumed: [`resume_status`] (W&B's `RunResumeStatus`,
//! asked by the SDK and the service before a resumed run starts: its last step, runtime, config
//! and summary) and `line_counts` (asked by the uploader: where the run's filestream lines
//! continue).
//!
//! One GraphQL call each (both `RunResumeStatus`, the one [`documents::RUN_RESUME_STATUS`]),
//! on the caller's thread, bounded by its `Until`.

use serde_json::{Value as Json, json};

use super::report::UploadError;
use crate::client::{Connection, ConnectionConfig, HttpError, Policies, Until, documents};

/// What the server holds of a run that is being resumed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeStatus {
    /// The last `_step` in its history, if it has any.
    pub last_step: Option<i64>,
    /// Seconds it already ran (the last history row's `_runtime`).
    pub runtime: f64,
    /// History lines the server holds.
    pub history_lines: u64,
    /// The stored config, top-level keys to their plain values (W&B's `{"value": v}`
    /// unwrapped).
    pub config: serde_json::Map<String, Json>,
    /// The stored summary.
    pub summary: serde_json::Map<String, Json>,
}

/// Asks the server about run `name` before resuming it (W&B's `RunResumeStatus`):
/// `None` when it does not exist.
pub fn resume_status(
    connection: &ConnectionConfig,
    policies: Policies,
    entity: Option<&str>,
    project: &str,
    name: &str,
    until: &Until,
) -> Result<Option<ResumeStatus>, UploadError> {
    let conn = Connection::with_policies(connection.clone(), policies);
    let data = conn.graphql(
        "RunResumeStatus",
        documents::RUN_RESUME_STATUS,
        json!({"project": project, "entity": entity, "name": name}),
        until,
    )?;
    let bucket = &data["model"]["bucket"];
    if bucket.is_null() {
        return Ok(None);
    }
    // `historyTail` is a JSON string holding an array of JSON-line strings.
    let last: Option<serde_json::Map<String, Json>> = bucket["historyTail"]
        .as_str()
        .and_then(|tail| serde_json::from_str::<Vec<String>>(tail).ok())
        .and_then(|lines| lines.last().cloned())
        .and_then(|line| serde_json::from_str(&line).ok());
    Ok(Some(ResumeStatus {
        last_step: last.as_ref().and_then(|row| row.get("_step")?.as_i64()),
        runtime: last
            .as_ref()
            .and_then(|row| row.get("_runtime")?.as_f64())
            .unwrap_or(0.0),
        history_lines: bucket["historyLineCount"].as_u64().unwrap_or(0),
        config: json_object(&bucket["config"])
            .into_iter()
            .map(|(key, value)| match value {
                Json::Object(mut wrapped) if wrapped.contains_key("value") => {
                    (key, wrapped.remove("value").unwrap_or(Json::Null))
                }
                other => (key, other),
            })
            .collect(),
        summary: json_object(&bucket["summaryMetrics"]),
    }))
}

/// A JSON object the server sent as an object or as JSON text (`JSONString`); empty
/// when it is neither.
fn json_object(value: &Json) -> serde_json::Map<String, Json> {
    match value {
        Json::Object(map) => map.clone(),
        Json::String(text) => match serde_json::from_str(text) {
            Ok(Json::Object(map)) => map,
            _ => serde_json::Map::new(),
        },
        _ => serde_json::Map::new(),
    }
}

/// The history, events and console line counts the server holds of run
/// `entity/project/name`: where a resumed run's filestream lines continue (0 for a run the
/// server does not have).
pub(super) fn line_counts(
    conn: &Connection,
    entity: &str,
    project: &str,
    name: &str,
    until: &Until,
) -> Result<(u64, u64, u64), HttpError> {
    let data = conn.graphql(
        "RunResumeStatus",
        documents::RUN_RESUME_STATUS,
        json!({"project": project, "entity": entity, "name": name}),
        until,
    )?;
    let bucket = &data["model"]["bucket"];
    let count = |key: &str| bucket[key].as_u64().unwrap_or(0);
    Ok((
        count("historyLineCount"),
        count("eventsLineCount"),
        count("logLineCount"),
    ))
}
