//! Which runs a project listing holds: W&B's run filters (`filter.rs`)
//! and `order`, applied to a project's run rows.
//!
//! Input: a project, the client's `filters` JSON and `order`. Output: the selected rows,
//! in order (paged by the caller). Runs are filtered and sorted in memory: a project's run
//! rows are small, and the filter language reaches into config and summary JSON that SQL
//! cannot index portably.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Map, Value};
use sqlx::AnyConnection;

use crate::db::{self, RunRow};
use crate::error::ApiError;
use crate::filter::{self, RunDoc};

/// The runs of `project` that `filters` selects, in `order`.
pub(super) async fn select_runs(
    conn: &mut AnyConnection,
    project: i64,
    filters: Option<&str>,
    order: Option<&str>,
) -> Result<Vec<RunRow>, ApiError> {
    let filter = filter::parse(filters).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let runs = db::runs::runs_of(conn, project).await?;
    let mut users: HashMap<i64, Option<String>> = HashMap::new();
    for id in runs.iter().filter_map(|r| r.user_id) {
        if let std::collections::hash_map::Entry::Vacant(slot) = users.entry(id) {
            let user = db::accounts::user_by_id(conn, id).await?;
            slot.insert(user.map(|u| u.name));
        }
    }
    let order = filter::parse_order(order);
    let by_creation = matches!(order.path.as_str(), "created_at" | "createdAt");
    let mut selected: Vec<(RunRow, Option<Value>)> = Vec::new();
    for run in runs {
        let username = run.user_id.and_then(|id| users.get(&id).cloned().flatten());
        let doc = run_doc(&run, username);
        if filter::matches(&filter, &doc) {
            let key = filter::lookup(&doc, &order.path);
            selected.push((run, key));
        }
    }
    // Stable: ties keep creation order; creation order itself breaks its ties by id.
    selected.sort_by(|(a, ka), (b, kb)| {
        let ordering = filter::order_cmp(ka.as_ref(), kb.as_ref(), order.descending);
        if ordering == Ordering::Equal && by_creation {
            let by_id = a.id.cmp(&b.id);
            if order.descending {
                by_id.reverse()
            } else {
                by_id
            }
        } else {
            ordering
        }
    });
    Ok(selected.into_iter().map(|(run, _)| run).collect())
}

/// What a filter can see of `run`.
fn run_doc(run: &RunRow, username: Option<String>) -> RunDoc {
    let mut fields = Map::new();
    let mut put = |key: &str, value: Value| {
        fields.insert(key.to_owned(), value);
    };
    let text = |v: &Option<String>| v.clone().map(Value::String).unwrap_or(Value::Null);
    put("name", Value::String(run.name.clone()));
    put("displayName", text(&run.display_name));
    put("state", Value::String(run.effective_state().to_owned()));
    put(
        "tags",
        serde_json::from_str(&run.tags).unwrap_or(Value::Array(Vec::new())),
    );
    put("group", text(&run.group_name));
    put("jobType", text(&run.job_type));
    put("createdAt", Value::String(run.created_at.clone()));
    put("heartbeatAt", Value::String(run.heartbeat_at.clone()));
    put("updatedAt", Value::String(run.updated_at.clone()));
    put("username", text(&username));
    put("host", text(&run.host));
    put("sweep", text(&run.sweep));
    put("duration", Value::from(run.duration_secs()));
    put("notes", text(&run.notes));
    put("description", text(&run.description));
    put("commit", text(&run.git_commit));
    RunDoc {
        fields,
        config: serde_json::from_str(&run.config).unwrap_or_default(),
        summary: serde_json::from_str(&run.summary).unwrap_or_default(),
    }
}
