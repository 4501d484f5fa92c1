//! Artifact collections ("artifact sequences"): the versions of one artifact name in a
//! project, with the type every version shares. Created on first use by a version's
//! creation; looked up by name, id or the client's `sequenceClientID`.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::db::{DbError, doing, now};

/// A collection ("artifact sequence"), with its project's and entity's names.
#[derive(Clone, Debug)]
pub struct CollectionRow {
    pub id: i64,
    pub project_id: i64,
    pub project_name: String,
    pub entity_id: i64,
    pub entity_name: String,
    pub name: String,
    pub type_name: String,
    pub description: Option<String>,
    pub created_at: String,
}

pub(super) const COLLECTION_COLUMNS: &str = "c.id AS collection_id, c.project_id AS project_id, \
     p.name AS project_name, e.id AS entity_id, e.name AS entity_name, \
     c.name AS collection_name, c.type_name AS type_name, \
     c.description AS collection_description, c.created_at AS collection_created_at";
const COLLECTION_FROM: &str = "artifact_collections c JOIN projects p ON p.id = c.project_id \
     JOIN entities e ON e.id = p.entity_id";

impl FromRow<'_, AnyRow> for CollectionRow {
    fn from_row(row: &AnyRow) -> Result<CollectionRow, sqlx::Error> {
        Ok(CollectionRow {
            id: row.try_get("collection_id")?,
            project_id: row.try_get("project_id")?,
            project_name: row.try_get("project_name")?,
            entity_id: row.try_get("entity_id")?,
            entity_name: row.try_get("entity_name")?,
            name: row.try_get("collection_name")?,
            type_name: row.try_get("type_name")?,
            description: row.try_get("collection_description")?,
            created_at: row.try_get("collection_created_at")?,
        })
    }
}

/// How a collection is looked up.
enum By<'a> {
    Name { project: i64, name: &'a str },
    Id(i64),
    ClientId(&'a str),
}

async fn find_collection(
    conn: &mut AnyConnection,
    by: By<'_>,
) -> Result<Option<CollectionRow>, DbError> {
    let select = format!("SELECT {COLLECTION_COLUMNS} FROM {COLLECTION_FROM} WHERE ");
    let (sql, query);
    match by {
        By::Name { project, name } => {
            sql = select + "c.project_id = $1 AND c.name = $2";
            query = sqlx::query_as(&sql).bind(project).bind(name);
        }
        By::Id(id) => {
            sql = select + "c.id = $1";
            query = sqlx::query_as(&sql).bind(id);
        }
        By::ClientId(client_id) => {
            sql = select + "c.client_id = $1";
            query = sqlx::query_as(&sql).bind(client_id);
        }
    }
    query
        .fetch_optional(conn)
        .await
        .map_err(doing("finding an artifact collection"))
}

/// The collection `name` of `project`, if any.
pub async fn collection(
    conn: &mut AnyConnection,
    project: i64,
    name: &str,
) -> Result<Option<CollectionRow>, DbError> {
    if name.contains('\0') {
        return Ok(None);
    }
    find_collection(conn, By::Name { project, name }).await
}

/// The collection `name` of `project`, created with `type_name` on first use.
pub async fn ensure_collection(
    conn: &mut AnyConnection,
    project: i64,
    name: &str,
    type_name: &str,
    client_id: Option<&str>,
) -> Result<CollectionRow, DbError> {
    sqlx::query(
        "INSERT INTO artifact_collections (project_id, name, type_name, client_id, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id, name) DO NOTHING",
    )
    .bind(project)
    .bind(name)
    .bind(type_name)
    .bind(client_id)
    .bind(now())
    .execute(&mut *conn)
    .await
    .map_err(doing("creating an artifact collection"))?;
    collection(conn, project, name)
        .await?
        .ok_or(DbError::Query {
            doing: "creating an artifact collection",
            source: sqlx::Error::RowNotFound,
        })
}

/// Every collection of `project`, oldest first.
pub async fn collections_of(
    conn: &mut AnyConnection,
    project: i64,
) -> Result<Vec<CollectionRow>, DbError> {
    sqlx::query_as(&format!(
        "SELECT {COLLECTION_COLUMNS} FROM {COLLECTION_FROM} WHERE c.project_id = $1 ORDER BY c.id"
    ))
    .bind(project)
    .fetch_all(conn)
    .await
    .map_err(doing("listing artifact collections"))
}

pub async fn collection_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<CollectionRow>, DbError> {
    find_collection(conn, By::Id(id)).await
}

/// The collection whose `sequenceClientID` is `client_id`.
pub async fn collection_by_client_id(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<Option<CollectionRow>, DbError> {
    find_collection(conn, By::ClientId(client_id)).await
}
