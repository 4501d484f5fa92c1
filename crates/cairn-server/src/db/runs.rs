//! Projects and runs: lookup, upsert with W&B's "null means unchanged", stop requests and
//! deletion.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use super::{DbError, doing, flag, now};

/// A project, with its entity's name.
#[derive(Clone, Debug)]
pub struct ProjectRow {
    pub id: i64,
    pub entity_id: i64,
    pub entity_name: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: String,
}

/// A run, with the names of its project and entity.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub id: i64,
    pub project_id: i64,
    pub project_name: String,
    pub entity_name: String,
    pub name: String,
    pub user_id: Option<i64>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub notes: Option<String>,
    pub group_name: Option<String>,
    pub job_type: Option<String>,
    /// A JSON array of strings.
    pub tags: String,
    /// W&B's config shape, as JSON text.
    pub config: String,
    /// The summary object, as JSON text.
    pub summary: String,
    pub host: Option<String>,
    pub program: Option<String>,
    pub git_commit: Option<String>,
    pub git_repo: Option<String>,
    pub sweep: Option<String>,
    pub state: String,
    pub exitcode: Option<i64>,
    pub stop_requested: bool,
    pub history_lines: i64,
    pub events_lines: i64,
    pub log_lines: i64,
    pub created_at: String,
    pub updated_at: String,
    pub heartbeat_at: String,
}

/// A running run whose last sign of life is older than this counts as crashed.
const CRASH_AFTER_SECS: i64 = 300;

impl RunRow {
    /// `entity/project/run`, for messages.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.entity_name, self.project_name, self.name)
    }

    /// The state clients see: the stored one, except that a `running` run without a sign
    /// of life for five minutes is `crashed`.
    pub fn effective_state(&self) -> &str {
        if self.state == "running" && self.heartbeat_at < super::seconds_ago(CRASH_AFTER_SECS) {
            "crashed"
        } else {
            &self.state
        }
    }

    /// Seconds from creation to the last sign of life.
    pub fn duration_secs(&self) -> i64 {
        super::seconds_between(&self.created_at, &self.heartbeat_at).unwrap_or(0)
    }
}

/// The settable fields of a run; `None` leaves a field unchanged.
#[derive(Clone, Debug, Default)]
pub struct RunFields {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub notes: Option<String>,
    pub group_name: Option<String>,
    pub job_type: Option<String>,
    pub tags: Option<String>,
    pub config: Option<String>,
    pub summary: Option<String>,
    pub host: Option<String>,
    pub program: Option<String>,
    pub git_commit: Option<String>,
    pub git_repo: Option<String>,
    pub sweep: Option<String>,
    pub state: Option<String>,
}

impl RunFields {
    /// The first field holding a NUL character, which no backend stores alike (PostgreSQL's
    /// text cannot hold one): its GraphQL name.
    pub fn field_with_nul(&self) -> Option<&'static str> {
        [
            ("displayName", &self.display_name),
            ("description", &self.description),
            ("notes", &self.notes),
            ("groupName", &self.group_name),
            ("jobType", &self.job_type),
            ("tags", &self.tags),
            ("config", &self.config),
            ("summaryMetrics", &self.summary),
            ("host", &self.host),
            ("jobProgram", &self.program),
            ("commit", &self.git_commit),
            ("jobRepo", &self.git_repo),
            ("sweep", &self.sweep),
            ("state", &self.state),
        ]
        .into_iter()
        .find(|(_, value)| value.as_deref().is_some_and(|v| v.contains('\0')))
        .map(|(name, _)| name)
    }
}

const PROJECT_SELECT: &str = "SELECT projects.id AS id, projects.entity_id AS entity_id, \
     entities.name AS entity_name, projects.name AS name, projects.description AS description, \
     projects.created_at AS created_at \
     FROM projects JOIN entities ON entities.id = projects.entity_id";

impl FromRow<'_, AnyRow> for ProjectRow {
    fn from_row(row: &AnyRow) -> Result<ProjectRow, sqlx::Error> {
        Ok(ProjectRow {
            id: row.try_get("id")?,
            entity_id: row.try_get("entity_id")?,
            entity_name: row.try_get("entity_name")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

const RUN_SELECT: &str = "SELECT runs.id AS id, runs.project_id AS project_id, \
     projects.name AS project_name, entities.name AS entity_name, runs.name AS name, \
     runs.user_id AS user_id, runs.display_name AS display_name, \
     runs.description AS description, runs.notes AS notes, runs.group_name AS group_name, \
     runs.job_type AS job_type, runs.tags AS tags, runs.config AS config, \
     runs.summary AS summary, runs.host AS host, runs.program AS program, \
     runs.git_commit AS git_commit, runs.git_repo AS git_repo, runs.sweep AS sweep, \
     runs.state AS state, runs.exitcode AS exitcode, runs.stop_requested AS stop_requested, \
     runs.history_lines AS history_lines, runs.events_lines AS events_lines, \
     runs.log_lines AS log_lines, runs.created_at AS created_at, \
     runs.updated_at AS updated_at, runs.heartbeat_at AS heartbeat_at \
     FROM runs JOIN projects ON projects.id = runs.project_id \
     JOIN entities ON entities.id = projects.entity_id";

impl FromRow<'_, AnyRow> for RunRow {
    fn from_row(row: &AnyRow) -> Result<RunRow, sqlx::Error> {
        Ok(RunRow {
            id: row.try_get("id")?,
            project_id: row.try_get("project_id")?,
            project_name: row.try_get("project_name")?,
            entity_name: row.try_get("entity_name")?,
            name: row.try_get("name")?,
            user_id: row.try_get("user_id")?,
            display_name: row.try_get("display_name")?,
            description: row.try_get("description")?,
            notes: row.try_get("notes")?,
            group_name: row.try_get("group_name")?,
            job_type: row.try_get("job_type")?,
            tags: row.try_get("tags")?,
            config: row.try_get("config")?,
            summary: row.try_get("summary")?,
            host: row.try_get("host")?,
            program: row.try_get("program")?,
            git_commit: row.try_get("git_commit")?,
            git_repo: row.try_get("git_repo")?,
            sweep: row.try_get("sweep")?,
            state: row.try_get("state")?,
            exitcode: row.try_get("exitcode")?,
            stop_requested: flag(row, "stop_requested")?,
            history_lines: row.try_get("history_lines")?,
            events_lines: row.try_get("events_lines")?,
            log_lines: row.try_get("log_lines")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            heartbeat_at: row.try_get("heartbeat_at")?,
        })
    }
}

pub async fn project(
    conn: &mut AnyConnection,
    entity: i64,
    name: &str,
) -> Result<Option<ProjectRow>, DbError> {
    if name.contains('\0') {
        return Ok(None);
    }
    sqlx::query_as(&format!(
        "{PROJECT_SELECT} WHERE projects.entity_id = $1 AND projects.name = $2"
    ))
    .bind(entity)
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(doing("finding a project"))
}

pub async fn project_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<ProjectRow>, DbError> {
    sqlx::query_as(&format!("{PROJECT_SELECT} WHERE projects.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(doing("finding a project"))
}

/// The project `name` of `entity`, created on first use.
pub async fn ensure_project(
    conn: &mut AnyConnection,
    entity: i64,
    name: &str,
) -> Result<ProjectRow, DbError> {
    sqlx::query(
        "INSERT INTO projects (entity_id, name, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (entity_id, name) DO NOTHING",
    )
    .bind(entity)
    .bind(name)
    .bind(now())
    .execute(&mut *conn)
    .await
    .map_err(doing("creating a project"))?;
    project(conn, entity, name).await?.ok_or(DbError::Query {
        doing: "creating a project",
        source: sqlx::Error::RowNotFound,
    })
}

/// Every project of `entity`, oldest first.
pub async fn projects_of(
    conn: &mut AnyConnection,
    entity: i64,
) -> Result<Vec<ProjectRow>, DbError> {
    sqlx::query_as(&format!(
        "{PROJECT_SELECT} WHERE projects.entity_id = $1 ORDER BY projects.id"
    ))
    .bind(entity)
    .fetch_all(conn)
    .await
    .map_err(doing("listing projects"))
}

/// Every run of `project`, oldest first.
pub async fn runs_of(conn: &mut AnyConnection, project: i64) -> Result<Vec<RunRow>, DbError> {
    sqlx::query_as(&format!(
        "{RUN_SELECT} WHERE runs.project_id = $1 ORDER BY runs.id"
    ))
    .bind(project)
    .fetch_all(conn)
    .await
    .map_err(doing("listing runs"))
}

/// How many runs `project` has, and when the newest was created.
pub async fn run_stats(
    conn: &mut AnyConnection,
    project: i64,
) -> Result<(i64, Option<String>), DbError> {
    sqlx::query_as("SELECT COUNT(*), MAX(created_at) FROM runs WHERE project_id = $1")
        .bind(project)
        .fetch_one(conn)
        .await
        .map_err(doing("counting runs"))
}

pub async fn run_by_name(
    conn: &mut AnyConnection,
    project: i64,
    name: &str,
) -> Result<Option<RunRow>, DbError> {
    if name.contains('\0') {
        return Ok(None);
    }
    sqlx::query_as(&format!(
        "{RUN_SELECT} WHERE runs.project_id = $1 AND runs.name = $2"
    ))
    .bind(project)
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(doing("finding a run"))
}

pub async fn run_by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<RunRow>, DbError> {
    sqlx::query_as(&format!("{RUN_SELECT} WHERE runs.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(doing("finding a run"))
}

/// The run `name` of `project`, created when missing; `true` when this call created it.
pub async fn ensure_run(
    conn: &mut AnyConnection,
    project: i64,
    name: &str,
    user: i64,
) -> Result<(RunRow, bool), DbError> {
    let t = now();
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO runs (project_id, name, user_id, created_at, updated_at, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $4, $4) ON CONFLICT (project_id, name) DO NOTHING RETURNING id",
    )
    .bind(project)
    .bind(name)
    .bind(user)
    .bind(&t)
    .fetch_optional(&mut *conn)
    .await
    .map_err(doing("creating a run"))?;
    let run = run_by_name(conn, project, name)
        .await?
        .ok_or(DbError::Query {
            doing: "creating a run",
            source: sqlx::Error::RowNotFound,
        })?;
    Ok((run, inserted.is_some()))
}

/// Sets the fields of `fields` that are `Some`, and `updated_at`.
pub async fn update_run(
    conn: &mut AnyConnection,
    id: i64,
    fields: &RunFields,
) -> Result<(), DbError> {
    let columns: [(&str, &Option<String>); 14] = [
        ("display_name", &fields.display_name),
        ("description", &fields.description),
        ("notes", &fields.notes),
        ("group_name", &fields.group_name),
        ("job_type", &fields.job_type),
        ("tags", &fields.tags),
        ("config", &fields.config),
        ("summary", &fields.summary),
        ("host", &fields.host),
        ("program", &fields.program),
        ("git_commit", &fields.git_commit),
        ("git_repo", &fields.git_repo),
        ("sweep", &fields.sweep),
        ("state", &fields.state),
    ];
    let mut sql = String::from("UPDATE runs SET updated_at = $1");
    let mut values = Vec::new();
    for (column, value) in columns {
        if let Some(value) = value {
            values.push(value.as_str());
            sql.push_str(&format!(", {column} = ${}", values.len() + 1));
        }
    }
    sql.push_str(&format!(" WHERE id = ${}", values.len() + 2));
    let mut query = sqlx::query(&sql).bind(now());
    for value in values {
        query = query.bind(value);
    }
    query
        .bind(id)
        .execute(conn)
        .await
        .map_err(doing("updating a run"))?;
    Ok(())
}

/// Asks the run to stop: the next filestream answer says `stopped`.
pub async fn request_stop(conn: &mut AnyConnection, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE runs SET stop_requested = 1 WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(doing("requesting a stop"))?;
    Ok(())
}

/// Deletes a run and everything stored with it in the database (its files' bytes are the
/// caller's to delete). Artifacts the run logged stay (no longer linked to a run) unless
/// the caller deleted them first (`artifacts::delete_outputs_of`).
pub async fn delete_run(conn: &mut AnyConnection, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE artifacts SET run_id = NULL WHERE run_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(doing("deleting a run"))?;
    for table in [
        "history",
        "events",
        "console",
        "run_files",
        "alerts",
        "artifact_usage",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE run_id = $1"))
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(doing("deleting a run"))?;
    }
    sqlx::query("DELETE FROM runs WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(doing("deleting a run"))?;
    Ok(())
}

pub async fn add_alert(
    conn: &mut AnyConnection,
    run: i64,
    title: &str,
    body: &str,
    severity: &str,
    wait_ms: Option<i64>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO alerts (run_id, title, body, severity, wait_ms, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(run)
    .bind(title)
    .bind(body)
    .bind(severity)
    .bind(wait_ms)
    .bind(now())
    .execute(conn)
    .await
    .map_err(doing("storing an alert"))?;
    Ok(())
}
