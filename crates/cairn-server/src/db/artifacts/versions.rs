//! Artifact versions and their state machine. A version is created PENDING
//! ([`create_artifact`]), gets its manifest key ([`set_manifest`]) and becomes COMMITTED
//! in [`commit`], which numbers it (v0, v1, … per collection, never reusing a deleted
//! version's number), stores its entries and moves its aliases — all in the caller's
//! transaction, so a failed commit leaves the version PENDING and the collection
//! unchanged. Deletion marks versions DELETED and moves `latest` to the newest one left.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use super::aliases::set_aliases;
use super::collections::{COLLECTION_COLUMNS, CollectionRow};
use super::entries::EntryRow;
use crate::db::{DbError, doing, now};

/// A version of an artifact, with its collection.
#[derive(Clone, Debug)]
pub struct ArtifactRow {
    pub id: i64,
    pub collection: CollectionRow,
    pub version_index: Option<i64>,
    pub state: String,
    pub digest: String,
    pub description: Option<String>,
    /// JSON text of an object, when set.
    pub metadata: Option<String>,
    /// A JSON array of strings.
    pub tags: String,
    pub history_step: Option<i64>,
    pub ttl_seconds: Option<i64>,
    pub client_id: Option<String>,
    pub run_id: Option<i64>,
    /// A JSON array of alias names, applied at commit.
    pub pending_aliases: String,
    pub manifest_key: Option<String>,
    pub manifest_digest: Option<String>,
    pub size: i64,
    pub file_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl ArtifactRow {
    /// `entity/project/collection:vN` (or `:pending`), for messages.
    pub fn path(&self) -> String {
        let c = &self.collection;
        match self.version_index {
            Some(v) => format!("{}/{}/{}:v{v}", c.entity_name, c.project_name, c.name),
            None => format!("{}/{}/{}:pending", c.entity_name, c.project_name, c.name),
        }
    }
}

/// The fields of a new PENDING version.
#[derive(Clone, Debug, Default)]
pub struct NewArtifact {
    pub digest: String,
    pub description: Option<String>,
    pub metadata: Option<String>,
    pub tags: String,
    pub history_step: Option<i64>,
    pub ttl_seconds: Option<i64>,
    pub client_id: Option<String>,
    pub run_id: Option<i64>,
    pub aliases: String,
}

/// A version's own columns; selected with [`COLLECTION_COLUMNS`], whose names differ.
const ARTIFACT_COLUMNS: &str = "a.id AS id, a.version_index AS version_index, a.state AS state, \
     a.digest AS digest, a.description AS description, a.metadata AS metadata, a.tags AS tags, \
     a.history_step AS history_step, a.ttl_seconds AS ttl_seconds, a.client_id AS client_id, \
     a.run_id AS run_id, a.pending_aliases AS pending_aliases, a.manifest_key AS manifest_key, \
     a.manifest_digest AS manifest_digest, a.size AS size, a.file_count AS file_count, \
     a.created_at AS created_at, a.updated_at AS updated_at";

fn artifact_select(filter: &str) -> String {
    format!(
        "SELECT {ARTIFACT_COLUMNS}, {COLLECTION_COLUMNS} FROM artifacts a \
         JOIN artifact_collections c ON c.id = a.collection_id \
         JOIN projects p ON p.id = c.project_id JOIN entities e ON e.id = p.entity_id \
         WHERE {filter}"
    )
}

impl FromRow<'_, AnyRow> for ArtifactRow {
    fn from_row(row: &AnyRow) -> Result<ArtifactRow, sqlx::Error> {
        Ok(ArtifactRow {
            id: row.try_get("id")?,
            version_index: row.try_get("version_index")?,
            state: row.try_get("state")?,
            digest: row.try_get("digest")?,
            description: row.try_get("description")?,
            metadata: row.try_get("metadata")?,
            tags: row.try_get("tags")?,
            history_step: row.try_get("history_step")?,
            ttl_seconds: row.try_get("ttl_seconds")?,
            client_id: row.try_get("client_id")?,
            run_id: row.try_get("run_id")?,
            pending_aliases: row.try_get("pending_aliases")?,
            manifest_key: row.try_get("manifest_key")?,
            manifest_digest: row.try_get("manifest_digest")?,
            size: row.try_get("size")?,
            file_count: row.try_get("file_count")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            collection: CollectionRow::from_row(row)?,
        })
    }
}

pub(super) async fn fetch_artifacts(
    conn: &mut AnyConnection,
    filter: &str,
    binds: &[i64],
    what: &'static str,
) -> Result<Vec<ArtifactRow>, DbError> {
    let sql = artifact_select(filter);
    let mut query = sqlx::query_as(&sql);
    for b in binds {
        query = query.bind(*b);
    }
    query.fetch_all(conn).await.map_err(doing(what))
}

pub async fn artifact_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<ArtifactRow>, DbError> {
    Ok(
        fetch_artifacts(conn, "a.id = $1", &[id], "finding an artifact")
            .await?
            .pop(),
    )
}

/// The version whose `clientID` is `client_id`.
pub async fn artifact_by_client_id(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<Option<ArtifactRow>, DbError> {
    let sql = artifact_select("a.client_id = $1 ORDER BY a.id DESC");
    sqlx::query_as(&sql)
        .bind(client_id)
        .fetch_optional(conn)
        .await
        .map_err(doing("finding an artifact"))
}

/// The newest committed version of `collection`.
pub async fn latest_committed(
    conn: &mut AnyConnection,
    collection: i64,
) -> Result<Option<ArtifactRow>, DbError> {
    Ok(fetch_artifacts(
        conn,
        "a.collection_id = $1 AND a.state = 'COMMITTED' ORDER BY a.version_index DESC LIMIT 1",
        &[collection],
        "finding the latest artifact",
    )
    .await?
    .pop())
}

/// The committed versions of `collection`, oldest first.
pub async fn committed(
    conn: &mut AnyConnection,
    collection: i64,
) -> Result<Vec<ArtifactRow>, DbError> {
    fetch_artifacts(
        conn,
        "a.collection_id = $1 AND a.state = 'COMMITTED' ORDER BY a.version_index",
        &[collection],
        "listing artifact versions",
    )
    .await
}

/// The version of `collection` that `name` means: `vN`, or an alias.
pub async fn resolve(
    conn: &mut AnyConnection,
    collection: i64,
    name: &str,
) -> Result<Option<ArtifactRow>, DbError> {
    if let Some(index) = name.strip_prefix('v').and_then(|n| n.parse::<i64>().ok()) {
        return Ok(fetch_artifacts(
            conn,
            "a.collection_id = $1 AND a.version_index = $2 AND a.state = 'COMMITTED'",
            &[collection, index],
            "finding an artifact version",
        )
        .await?
        .pop());
    }
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT artifact_id FROM artifact_aliases WHERE collection_id = $1 AND alias = $2",
    )
    .bind(collection)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(doing("finding an artifact alias"))?;
    match id {
        Some(id) => artifact_by_id(conn, id).await,
        None => Ok(None),
    }
}

/// Creates a PENDING version of `collection`; returns its id.
pub async fn create_artifact(
    conn: &mut AnyConnection,
    collection: i64,
    new: &NewArtifact,
) -> Result<i64, DbError> {
    let t = now();
    sqlx::query_scalar(
        "INSERT INTO artifacts (collection_id, digest, description, metadata, tags, \
         history_step, ttl_seconds, client_id, run_id, pending_aliases, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
    )
    .bind(collection)
    .bind(&new.digest)
    .bind(&new.description)
    .bind(&new.metadata)
    .bind(&new.tags)
    .bind(new.history_step)
    .bind(new.ttl_seconds)
    .bind(&new.client_id)
    .bind(new.run_id)
    .bind(&new.aliases)
    .bind(&t)
    .fetch_one(conn)
    .await
    .map_err(doing("creating an artifact"))
}

/// Records where a version's manifest is stored and its base64 MD5.
pub async fn set_manifest(
    conn: &mut AnyConnection,
    artifact: i64,
    key: &str,
    digest: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE artifacts SET manifest_key = $2, manifest_digest = COALESCE($3, manifest_digest), \
         updated_at = $4 WHERE id = $1",
    )
    .bind(artifact)
    .bind(key)
    .bind(digest)
    .bind(now())
    .execute(conn)
    .await
    .map_err(doing("recording an artifact manifest"))?;
    Ok(())
}

/// What `updateArtifact` changes of a version; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ArtifactUpdate<'a> {
    pub description: Option<&'a str>,
    /// JSON text of an object.
    pub metadata: Option<&'a str>,
    /// A JSON array of strings: the whole new tag list.
    pub tags: Option<&'a str>,
    /// `Some(None)` removes the time-to-live.
    pub ttl_seconds: Option<Option<i64>>,
}

/// Replaces what `update` names of a version (`updateArtifact`).
pub async fn update_artifact(
    conn: &mut AnyConnection,
    artifact: i64,
    update: &ArtifactUpdate<'_>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE artifacts SET description = COALESCE($2, description), \
         metadata = COALESCE($3, metadata), tags = COALESCE($4, tags), updated_at = $5 \
         WHERE id = $1",
    )
    .bind(artifact)
    .bind(update.description)
    .bind(update.metadata)
    .bind(update.tags)
    .bind(now())
    .execute(&mut *conn)
    .await
    .map_err(doing("updating an artifact"))?;
    if let Some(ttl) = update.ttl_seconds {
        sqlx::query("UPDATE artifacts SET ttl_seconds = $2 WHERE id = $1")
            .bind(artifact)
            .bind(ttl)
            .execute(conn)
            .await
            .map_err(doing("updating an artifact's time-to-live"))?;
    }
    Ok(())
}

/// Marks a version DELETED and drops its aliases; `latest` moves to the newest version
/// left. Its number is never given again; its stored bytes stay (other versions may share
/// them).
pub async fn delete_version(
    conn: &mut AnyConnection,
    artifact: &ArtifactRow,
) -> Result<(), DbError> {
    delete_versions(conn, Versions::One(artifact.id), "deleting an artifact").await
}

/// Which versions [`delete_versions`] deletes.
#[derive(Clone, Copy)]
pub(super) enum Versions {
    /// The version with this id.
    One(i64),
    /// The versions the run with this id logged.
    OfRun(i64),
}

/// Marks `which` versions DELETED and drops their aliases; `latest` of each collection they
/// were in moves to the newest version left.
pub(super) async fn delete_versions(
    conn: &mut AnyConnection,
    which: Versions,
    doing_what: &'static str,
) -> Result<(), DbError> {
    let (column, id) = match which {
        Versions::One(id) => ("id", id),
        Versions::OfRun(run) => ("run_id", run),
    };
    let collections: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT collection_id FROM artifacts WHERE {column} = $1"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(doing(doing_what))?;
    sqlx::query(&format!(
        "DELETE FROM artifact_aliases WHERE artifact_id IN \
         (SELECT id FROM artifacts WHERE {column} = $1)"
    ))
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(doing(doing_what))?;
    sqlx::query(&format!(
        "UPDATE artifacts SET state = 'DELETED', updated_at = $2 WHERE {column} = $1"
    ))
    .bind(id)
    .bind(now())
    .execute(&mut *conn)
    .await
    .map_err(doing(doing_what))?;
    for collection in collections {
        repoint_latest(conn, collection).await?;
    }
    Ok(())
}

/// Points `latest` of `collection` at its newest committed version when no version holds
/// it (after deletions).
async fn repoint_latest(conn: &mut AnyConnection, collection: i64) -> Result<(), DbError> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT artifact_id FROM artifact_aliases WHERE collection_id = $1 AND alias = 'latest'",
    )
    .bind(collection)
    .fetch_optional(&mut *conn)
    .await
    .map_err(doing("finding an artifact alias"))?;
    if held.is_none()
        && let Some(newest) = latest_committed(conn, collection).await?
    {
        set_aliases(conn, collection, newest.id, &["latest".to_owned()]).await?;
    }
    Ok(())
}

/// Makes `artifact` COMMITTED: the next version number of its collection, `entries` as its
/// contents (with their total size and count), the (possibly recomputed) `digest`, and
/// `aliases` moved onto it. Returns the version number.
pub async fn commit(
    conn: &mut AnyConnection,
    artifact: &ArtifactRow,
    entries: &[EntryRow],
    digest: &str,
    aliases: &[String],
) -> Result<i64, DbError> {
    // Deleted versions keep their numbers: `v3` never names two versions.
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(version_index) FROM artifacts WHERE collection_id = $1 \
         AND version_index IS NOT NULL",
    )
    .bind(artifact.collection.id)
    .fetch_one(&mut *conn)
    .await
    .map_err(doing("numbering an artifact version"))?;
    let version = next.map_or(0, |n| n + 1);
    sqlx::query("DELETE FROM artifact_entries WHERE artifact_id = $1")
        .bind(artifact.id)
        .execute(&mut *conn)
        .await
        .map_err(doing("storing artifact entries"))?;
    for entry in entries {
        sqlx::query(
            "INSERT INTO artifact_entries (artifact_id, path, md5, size, ref, birth_artifact_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(artifact.id)
        .bind(&entry.path)
        .bind(&entry.md5)
        .bind(entry.size)
        .bind(&entry.reference)
        .bind(entry.birth_artifact_id)
        .execute(&mut *conn)
        .await
        .map_err(doing("storing artifact entries"))?;
    }
    let size: i64 = entries.iter().map(|e| e.size).sum();
    let t = now();
    sqlx::query(
        "UPDATE artifacts SET state = 'COMMITTED', version_index = $2, size = $3, \
         file_count = $4, digest = $5, updated_at = $6, committed_at = $6 WHERE id = $1",
    )
    .bind(artifact.id)
    .bind(version)
    .bind(size)
    .bind(entries.len() as i64)
    .bind(digest)
    .bind(&t)
    .execute(&mut *conn)
    .await
    .map_err(doing("committing an artifact"))?;
    set_aliases(conn, artifact.collection.id, artifact.id, aliases).await?;
    Ok(version)
}
