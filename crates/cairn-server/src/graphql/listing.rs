//! Listings with cursors: projects of an entity and runs of a project (filtered and
//! ordered, api-read §3–§5).
//!
//! Input: the rows of one entity or project, the client's `after` cursor and page size.
//! Output: one page of edges, each with its own cursor (`Runs` and `RunFiles` continue
//! from the last edge's cursor), and a `pageInfo` (relay listings continue from
//! `endCursor`). Both conventions hold on every listing. Runs are filtered and sorted in
//! memory: a project's run rows are small, and the filter language reaches into config
//! and summary JSON that SQL cannot index portably.

use std::cmp::Ordering;
use std::collections::HashMap;

use async_graphql::SimpleObject;
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use super::paging::{cursor, decode_cursor};
use super::types::{Project, Run};
use crate::db::{self, ProjectRow, RunRow};
use crate::error::ApiError;
use crate::filter::{self, RunDoc};

/// Page size when the client names none.
const DEFAULT_PAGE: usize = 50;
/// Largest page a client can ask for.
const MAX_PAGE: usize = 10_000;

/// Relay's page information.
#[derive(SimpleObject, Debug, Clone)]
pub(super) struct PageInfo {
    pub end_cursor: Option<String>,
    pub start_cursor: Option<String>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// Which slice of `total` items one request covers.
#[derive(Debug, PartialEq)]
pub(super) struct Window {
    pub start: usize,
    pub end: usize,
}

impl Window {
    /// The items after `after` (a cursor made by `paging::cursor` of an index), at most
    /// `first` of them.
    pub(super) fn new(total: usize, after: Option<&str>, first: Option<i32>) -> Window {
        let start = decode_cursor(after)
            .map(|n| usize::try_from(n.saturating_add(1)).unwrap_or(0))
            .unwrap_or(0)
            .min(total);
        let size = first
            .map(|f| usize::try_from(f).unwrap_or(0))
            .unwrap_or(DEFAULT_PAGE)
            .min(MAX_PAGE);
        Window {
            start,
            end: start.saturating_add(size).min(total),
        }
    }

    /// The items of this window, each with its cursor (`items` is the whole listing).
    pub(super) fn edges<T>(&self, items: Vec<T>) -> impl Iterator<Item = (T, String)> + use<T> {
        items
            .into_iter()
            .enumerate()
            .skip(self.start)
            .take(self.end - self.start)
            .map(|(i, item)| (item, cursor(i as i64)))
    }

    /// The page information of this window over `total` items.
    pub(super) fn page_info(&self, total: usize) -> PageInfo {
        let nonempty = self.end > self.start;
        PageInfo {
            start_cursor: nonempty.then(|| cursor(self.start as i64)),
            end_cursor: nonempty.then(|| cursor(self.end as i64 - 1)),
            has_next_page: self.end < total,
            has_previous_page: self.start > 0,
        }
    }
}

/// One page of a whole listing: the edges `edge` makes of the items in the window (each
/// with its cursor), the page information, and the listing's size.
pub(super) fn page<T, E>(
    items: Vec<T>,
    after: Option<&str>,
    first: Option<i32>,
    edge: impl FnMut((T, String)) -> E,
) -> (Vec<E>, PageInfo, i64) {
    let total = items.len();
    let window = Window::new(total, after, first);
    let page_info = window.page_info(total);
    (
        window.edges(items).map(edge).collect(),
        page_info,
        total as i64,
    )
}

#[derive(SimpleObject)]
pub(super) struct ProjectEdge {
    node: Project,
    cursor: String,
}

#[derive(SimpleObject)]
pub(super) struct ProjectConnection {
    edges: Vec<ProjectEdge>,
    page_info: PageInfo,
    total_count: i64,
}

/// A page of `projects` (given oldest first), listed newest first.
pub(super) fn project_page(
    mut projects: Vec<ProjectRow>,
    after: Option<&str>,
    first: Option<i32>,
) -> ProjectConnection {
    projects.reverse();
    let (edges, page_info, total_count) =
        page(projects, after, first, |(row, cursor)| ProjectEdge {
            node: Project(row),
            cursor,
        });
    ProjectConnection {
        edges,
        page_info,
        total_count,
    }
}

#[derive(SimpleObject)]
pub(super) struct RunEdge {
    node: Run,
    cursor: String,
}

#[derive(SimpleObject)]
pub(super) struct RunConnection {
    edges: Vec<RunEdge>,
    page_info: PageInfo,
    total_count: i64,
}

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

/// One page of `runs`.
pub(super) fn run_page(
    runs: Vec<RunRow>,
    after: Option<&str>,
    first: Option<i32>,
) -> RunConnection {
    let (edges, page_info, total_count) = page(runs, after, first, |(row, cursor)| RunEdge {
        node: Run(row),
        cursor,
    });
    RunConnection {
        edges,
        page_info,
        total_count,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_page_through() {
        let w = Window::new(5, None, Some(2));
        assert_eq!(w, Window { start: 0, end: 2 });
        let info = w.page_info(5);
        assert!(info.has_next_page);
        let w = Window::new(5, info.end_cursor.as_deref(), Some(2));
        assert_eq!(w, Window { start: 2, end: 4 });
        let w = Window::new(5, w.page_info(5).end_cursor.as_deref(), Some(2));
        assert_eq!(w, Window { start: 4, end: 5 });
        assert!(!w.page_info(5).has_next_page);
        // A foreign cursor starts over; a negative page size is empty.
        assert_eq!(
            Window::new(5, Some("???"), None),
            Window { start: 0, end: 5 }
        );
        assert_eq!(Window::new(5, None, Some(-3)), Window { start: 0, end: 0 });
        assert_eq!(Window::new(0, None, None).page_info(0).end_cursor, None);
    }
}
