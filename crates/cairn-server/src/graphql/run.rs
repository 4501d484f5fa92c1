//! A run ("bucket" in W&B's legacy names) as `wandb.Api()` and the SDK's resume read it:
//! its fields, config and summary, history and system metrics (through
//! `history`), files and console (through `files`), the artifacts it logged and used, and
//! pages of runs.
//!
//! Input: a run row the caller has checked access to. Output: the fields the client
//! selects, each read from the database when asked.

use async_graphql::{Context, ID, Json, Object, SimpleObject};

use super::args::encode_id;
use super::error::Result;
use super::files::{self, FileConnection, LogLineConnection};
use super::history;
use super::paging::{PageInfo, page};
use super::request::session;
use super::scalars::{Int64, JsonString};
use super::types::{Project, User};
use super::version_pages::{ArtifactConnection, InputArtifactConnection};
use crate::db::{self, LineKind, RunRow};

/// How many lines `historyTail` / `eventsTail` carry (the SDK reads the last one).
const TAIL_LINES: i64 = 10;

pub(super) struct Run(pub RunRow);

impl Run {
    async fn tail(&self, ctx: &Context<'_>, kind: LineKind) -> Result<JsonString> {
        let mut conn = session(ctx).app.db.conn().await?;
        let lines = db::lines::tail_lines(&mut conn, self.0.id, kind, TAIL_LINES).await?;
        let lines: Vec<String> = lines.into_iter().map(|(_, text)| text).collect();
        Ok(JsonString(
            serde_json::to_string(&lines).unwrap_or_default(),
        ))
    }
}

/// `parquetHistory`: cairn exports no parquet files, so all history is live (see
/// `Run::parquet_history`).
#[derive(SimpleObject)]
pub(super) struct ParquetHistory {
    parquet_urls: Vec<String>,
    live_data: Vec<Json<serde_json::Value>>,
}

#[Object]
impl Run {
    async fn id(&self) -> ID {
        encode_id("Run", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The project's numeric id.
    async fn project_id(&self) -> i64 {
        self.0.project_id
    }
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }
    async fn group(&self) -> Option<&str> {
        self.0.group_name.as_deref()
    }
    async fn job_type(&self) -> Option<&str> {
        self.0.job_type.as_deref()
    }
    async fn sweep_name(&self) -> Option<&str> {
        self.0.sweep.as_deref()
    }
    async fn commit(&self) -> Option<&str> {
        self.0.git_commit.as_deref()
    }
    async fn host(&self) -> Option<&str> {
        self.0.host.as_deref()
    }
    async fn program(&self) -> Option<&str> {
        self.0.program.as_deref()
    }
    async fn read_only(&self) -> bool {
        false
    }
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    async fn updated_at(&self) -> &str {
        &self.0.updated_at
    }
    async fn heartbeat_at(&self) -> &str {
        &self.0.heartbeat_at
    }
    /// `running`, `finished`, `failed`, `crashed` (no sign of life for 5 minutes) or
    /// `preempting`.
    async fn state(&self) -> &str {
        self.0.effective_state()
    }
    async fn exitcode(&self) -> Option<i64> {
        self.0.exitcode
    }
    async fn stopped(&self) -> bool {
        self.0.stop_requested
    }
    async fn tags(&self) -> Vec<String> {
        serde_json::from_str(&self.0.tags).unwrap_or_default()
    }
    async fn config(&self) -> JsonString {
        JsonString(self.0.config.clone())
    }
    async fn summary_metrics(&self) -> JsonString {
        JsonString(self.0.summary.clone())
    }
    /// The latest system-metrics row.
    async fn system_metrics(&self, ctx: &Context<'_>) -> Result<JsonString> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(JsonString(
            history::latest_system_metrics(&mut conn, &self.0).await?,
        ))
    }
    /// History lines as JSON strings: `samples` of them over the run, or those with
    /// `minStep <= _step < maxStep`.
    async fn history(
        &self,
        ctx: &Context<'_>,
        samples: Option<i32>,
        min_step: Option<Int64>,
        max_step: Option<Int64>,
    ) -> Result<Vec<String>> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(history::lines(
            &mut conn,
            &self.0,
            LineKind::History,
            samples.map(i64::from),
            min_step.map(|s| s.0),
            max_step.map(|s| s.0),
        )
        .await?)
    }
    /// System-metrics lines as JSON strings, `samples` of them over the run.
    async fn events(&self, ctx: &Context<'_>, samples: Option<i32>) -> Result<Vec<String>> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(history::lines(
            &mut conn,
            &self.0,
            LineKind::Events,
            samples.map(i64::from),
            None,
            None,
        )
        .await?)
    }
    /// One list of row objects per spec (see `history`).
    async fn sampled_history(
        &self,
        ctx: &Context<'_>,
        specs: Vec<JsonString>,
    ) -> Result<Json<Vec<Vec<serde_json::Value>>>> {
        let mut conn = session(ctx).app.db.conn().await?;
        let specs: Vec<String> = specs.into_iter().map(|s| s.0).collect();
        Ok(Json(history::sampled(&mut conn, &self.0, &specs).await?))
    }
    /// No exports: every row is live. `liveData` names the first live step (the SDK's
    /// readers take the smallest `_step` as the live boundary and only need one), so a run
    /// with history is reported incomplete to `download_history_exports()` — truthfully —
    /// and one without history is reported empty.
    async fn parquet_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "liveKeys")] _live_keys: Option<Vec<String>>,
    ) -> Result<ParquetHistory> {
        let mut conn = session(ctx).app.db.conn().await?;
        let bounds = db::lines::step_bounds(&mut conn, self.0.id).await?;
        Ok(ParquetHistory {
            parquet_urls: Vec::new(),
            live_data: bounds
                .map(|(first, _)| Json(serde_json::json!({ "_step": first })))
                .into_iter()
                .collect(),
        })
    }
    /// How many files of the run are stored.
    async fn file_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(files::stored_files(&mut conn, &self.0).await?.len() as i64)
    }
    /// The run's stored files: those in `names` (all when empty) or matching the SQL
    /// `LIKE` `pattern`, one page.
    async fn files(
        &self,
        ctx: &Context<'_>,
        names: Option<Vec<Option<String>>>,
        after: Option<String>,
        first: Option<i32>,
        pattern: Option<String>,
    ) -> Result<FileConnection> {
        let mut conn = session(ctx).app.db.conn().await?;
        let names: Vec<String> = names.unwrap_or_default().into_iter().flatten().collect();
        Ok(files::file_page(
            &mut conn,
            &self.0,
            &names,
            pattern.as_deref(),
            after.as_deref(),
            first,
        )
        .await?)
    }
    /// Console lines: the `last` ones, or `first` after the cursor.
    async fn log_lines(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        #[graphql(name = "useImprovedPagination")] _improved: Option<bool>,
    ) -> Result<LogLineConnection> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(files::log_page(&mut conn, &self.0, first, after.as_deref(), last).await?)
    }
    /// Entries of the config's `_wandb.value` object, restricted to `keys` when given.
    /// Resume depends on `wandbConfig(keys: ["t"])`.
    async fn wandb_config(&self, keys: Option<Vec<String>>) -> JsonString {
        let config: serde_json::Value = serde_json::from_str(&self.0.config).unwrap_or_default();
        let mut out = serde_json::Map::new();
        if let Some(wandb) = config
            .get("_wandb")
            .and_then(|w| w.get("value"))
            .and_then(|v| v.as_object())
        {
            for (key, value) in wandb {
                if keys.as_ref().is_none_or(|keys| keys.contains(key)) {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        JsonString(serde_json::Value::Object(out).to_string())
    }
    async fn history_line_count(&self) -> i64 {
        self.0.history_lines
    }
    async fn events_line_count(&self) -> i64 {
        self.0.events_lines
    }
    async fn log_line_count(&self) -> i64 {
        self.0.log_lines
    }
    /// The last history lines: a JSON array of JSON-line strings (double-encoded, as W&B).
    async fn history_tail(&self, ctx: &Context<'_>) -> Result<JsonString> {
        self.tail(ctx, LineKind::History).await
    }
    async fn events_tail(&self, ctx: &Context<'_>) -> Result<JsonString> {
        self.tail(ctx, LineKind::Events).await
    }
    /// `{"lastStep": largest _step, "keys": {key: {"typeCounts": [...]}}}`. `lastStep`
    /// bounds every `scan_history()` (the SDK scans up to `lastStep + 1`: -1 for a run
    /// without history, where null made `scan_history()` raise); the keys are those of the
    /// summary (the last value of every history key), each with its latest value's type.
    async fn history_keys(
        &self,
        ctx: &Context<'_>,
    ) -> Result<async_graphql::Json<serde_json::Value>> {
        let mut conn = session(ctx).app.db.conn().await?;
        let bounds = db::lines::step_bounds(&mut conn, self.0.id).await?;
        let summary: serde_json::Value = serde_json::from_str(&self.0.summary).unwrap_or_default();
        let mut keys = serde_json::Map::new();
        if let Some(summary) = summary.as_object() {
            for (key, value) in summary {
                if key == "_wandb" {
                    continue;
                }
                let kind = match value {
                    serde_json::Value::Number(_) => "number",
                    serde_json::Value::String(_) => "string",
                    serde_json::Value::Bool(_) => "boolean",
                    serde_json::Value::Object(map) => {
                        map.get("_type").and_then(|t| t.as_str()).unwrap_or("map")
                    }
                    serde_json::Value::Array(_) => "list",
                    serde_json::Value::Null => "nil",
                };
                keys.insert(
                    key.clone(),
                    serde_json::json!({"typeCounts": [{"type": kind, "count": 1}]}),
                );
            }
        }
        Ok(async_graphql::Json(serde_json::json!({
            "lastStep": bounds.map_or(-1, |(_, max)| max),
            "keys": keys,
        })))
    }
    async fn project(&self, ctx: &Context<'_>) -> Result<Option<Project>> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(db::runs::project_by_id(&mut conn, self.0.project_id)
            .await?
            .map(Project))
    }
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(user) = self.0.user_id else {
            return Ok(None);
        };
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(db::accounts::user_by_id(&mut conn, user).await?.map(User))
    }
    /// The artifact versions this run logged.
    async fn output_artifacts(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Result<ArtifactConnection> {
        let mut conn = session(ctx).app.db.conn().await?;
        let versions = db::artifacts::lineage::outputs_of(&mut conn, self.0.id).await?;
        Ok(ArtifactConnection::page(versions, after.as_deref(), first))
    }
    /// The artifact versions this run used.
    async fn input_artifacts(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Result<InputArtifactConnection> {
        let mut conn = session(ctx).app.db.conn().await?;
        let versions = db::artifacts::lineage::inputs_of(&mut conn, self.0.id).await?;
        Ok(InputArtifactConnection::page(
            versions,
            after.as_deref(),
            first,
        ))
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
