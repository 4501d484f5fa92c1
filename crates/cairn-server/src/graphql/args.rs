//! Resolver support: from a resolver's arguments to the rows they name, with the viewer's
//! access checked on the way — entities, projects, runs (by name or by id), artifact
//! versions (by id or `collection:alias`) and collections — plus the GraphQL ids that name
//! rows and JSON-text arguments.
//!
//! Input: the request's session and the arguments as W&B's clients send them (names
//! default as W&B's do: the viewer's entity, `uncategorized`). Output: the row, `None`
//! when it does not exist, or an `ApiError` (403 when the viewer may not read its entity,
//! 404 where a mutation needs the row, 400 for a malformed id). No GraphQL objects are
//! built here: callers wrap the rows.

use async_graphql::{Context, ID};
use sqlx::AnyConnection;

use super::request::session;
use super::scalars::JsonString;
use crate::artifacts::versions;
use crate::auth;
use crate::checks;
use crate::db::{self, ArtifactRow, CollectionRow, EntityRow, ProjectRow, RunRow, UserRow};
use crate::error::ApiError;
use crate::names::DEFAULT_PROJECT;

pub(super) use crate::ids::decode as decode_id;

/// The GraphQL id of object `id` of `kind` (see `crate::ids`).
pub(super) fn encode_id(kind: &str, id: i64) -> ID {
    ID(crate::ids::encode(kind, id))
}

/// A JSON-text argument that must hold an object, as given; the error names `field`.
pub(super) fn json_object(field: &str, text: &JsonString) -> Result<String, ApiError> {
    checks::json_object(field, &text.0)
}

/// The entity `name` (the viewer's own by default), if it exists; 403 when the viewer may
/// not read it.
pub(super) async fn readable_entity(
    ctx: &Context<'_>,
    conn: &mut AnyConnection,
    name: Option<&str>,
) -> Result<Option<EntityRow>, ApiError> {
    auth::readable_entity(conn, &session(ctx).viewer, name).await
}

/// Fails unless the viewer may read and write entity `id`.
pub(super) async fn check_entity(
    ctx: &Context<'_>,
    conn: &mut AnyConnection,
    id: i64,
) -> Result<(), ApiError> {
    auth::check_entity_id(conn, &session(ctx).viewer, id).await
}

/// The project `name` of entity `entity_name` (defaults: the viewer's entity,
/// `uncategorized`), if it exists and the viewer may read it.
pub(super) async fn find_project(
    ctx: &Context<'_>,
    name: Option<String>,
    entity_name: Option<String>,
) -> Result<Option<ProjectRow>, ApiError> {
    let mut conn = session(ctx).app.db.conn().await?;
    let Some(entity) = readable_entity(ctx, &mut conn, entity_name.as_deref()).await? else {
        return Ok(None);
    };
    let name = name.filter(|n| !n.is_empty());
    let name = name.as_deref().unwrap_or(DEFAULT_PROJECT);
    Ok(db::runs::project(&mut conn, entity.id, name).await?)
}

/// The run an entity/project/run triple names, checked for access; 404 when missing.
pub(super) async fn named_run(
    ctx: &Context<'_>,
    entity: Option<&str>,
    project: Option<&str>,
    run: Option<&str>,
) -> Result<RunRow, ApiError> {
    let s = session(ctx);
    let mut conn = s.app.db.conn().await?;
    let entity_name = auth::entity_name(&s.viewer, entity).to_owned();
    let project_name = project.filter(|p| !p.is_empty()).unwrap_or(DEFAULT_PROJECT);
    let run_name = run.unwrap_or_default();
    let not_found = || {
        ApiError::NotFound(format!(
            "run {entity_name}/{project_name}/{run_name} not found"
        ))
    };
    let entity = auth::readable_entity(&mut conn, &s.viewer, Some(&entity_name))
        .await?
        .ok_or_else(not_found)?;
    let project = db::runs::project(&mut conn, entity.id, project_name)
        .await?
        .ok_or_else(not_found)?;
    db::runs::run_by_name(&mut conn, project.id, run_name)
        .await?
        .ok_or_else(not_found)
}

/// The run a storage id (`Run.id`) names, if the viewer may access its entity; 400 for
/// an id that is not a run's, 404 when missing.
pub(super) async fn run_by_storage_id(
    conn: &mut AnyConnection,
    viewer: &UserRow,
    id: &str,
) -> Result<RunRow, ApiError> {
    let numeric =
        decode_id("Run", id).ok_or_else(|| ApiError::BadRequest(format!("not a run id: {id}")))?;
    let run = db::runs::run_by_id(conn, numeric)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("run {id} not found")))?;
    let entity = db::accounts::entity_by_name(conn, &run.entity_name)
        .await?
        .ok_or_else(|| auth::forbidden(&run.entity_name))?;
    if !auth::may_access(conn, viewer, &entity).await? {
        return Err(auth::forbidden(&run.entity_name));
    }
    Ok(run)
}

/// The version `id` names, if the viewer may read its entity.
pub(super) async fn readable_artifact(
    ctx: &Context<'_>,
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<ArtifactRow>, ApiError> {
    let Some(id) = decode_id("Artifact", id) else {
        return Ok(None);
    };
    versions::readable(conn, &session(ctx).viewer, id).await
}

/// The version `id` names, checked for access; 404 when missing (for mutations).
pub(super) async fn artifact_arg(ctx: &Context<'_>, id: &ID) -> Result<ArtifactRow, ApiError> {
    let mut conn = session(ctx).app.db.conn().await?;
    readable_artifact(ctx, &mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("artifact {} not found", id.0)))
}

/// `collection:alias` (or `collection:vN`; a bare name means `latest`).
fn split_name(name: &str) -> (&str, &str) {
    match name.rsplit_once(':') {
        Some((collection, alias)) if !alias.is_empty() => (collection, alias),
        _ => (name.trim_end_matches(':'), "latest"),
    }
}

/// The committed version `name` (`collection:alias`) of `project` (whose entity the
/// caller has checked).
pub(super) async fn project_artifact(
    ctx: &Context<'_>,
    project: &ProjectRow,
    name: &str,
) -> Result<Option<ArtifactRow>, ApiError> {
    let mut conn = session(ctx).app.db.conn().await?;
    let (collection, alias) = split_name(name);
    let Some(collection) =
        db::artifacts::collections::collection(&mut conn, project.id, collection).await?
    else {
        return Ok(None);
    };
    Ok(
        db::artifacts::versions::resolve(&mut conn, collection.id, alias)
            .await?
            .filter(|a| a.state == "COMMITTED"),
    )
}

/// The collection `name` of `project` (whose entity the caller has checked).
pub(super) async fn project_collection(
    ctx: &Context<'_>,
    project: &ProjectRow,
    name: &str,
) -> Result<Option<CollectionRow>, ApiError> {
    let mut conn = session(ctx).app.db.conn().await?;
    Ok(db::artifacts::collections::collection(&mut conn, project.id, name).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_collection_and_alias() {
        assert_eq!(split_name("ds:latest"), ("ds", "latest"));
        assert_eq!(split_name("ds:v3"), ("ds", "v3"));
        assert_eq!(split_name("ds"), ("ds", "latest"));
        assert_eq!(split_name("ds:"), ("ds", "latest"));
        assert_eq!(split_name("run-x-tbl:v0"), ("run-x-tbl", "v0"));
    }
}
