//! Artifacts: collections, versions and their state machine, aliases, manifest entries,
//! the per-entity content-addressed blob index, multipart uploads in progress, and
//! lineage (which run made a version, which runs used it).
//!
//! A version is created PENDING ([`create_artifact`]), gets its manifest key
//! ([`set_manifest`]) and becomes COMMITTED in [`commit`], which numbers it, stores its
//! entries and moves its aliases — all in the caller's transaction, so a failed commit
//! leaves the version PENDING and the collection unchanged.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use super::{DbError, doing, flag, now};

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

/// One file (or reference) of a committed version.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryRow {
    pub path: String,
    /// W&B's base64 MD5; `None` for references.
    pub md5: Option<String>,
    pub size: i64,
    pub reference: Option<String>,
    pub birth_artifact_id: Option<i64>,
}

/// What the artifact blob index knows about one content of an entity.
#[derive(Clone, Debug, PartialEq)]
pub struct BlobRow {
    pub size: i64,
    pub stored: bool,
    pub birth_artifact_id: i64,
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

const COLLECTION_COLUMNS: &str = "c.id AS collection_id, c.project_id AS project_id, \
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

async fn fetch_artifacts(
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
pub async fn versions(
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

/// Removes `aliases` of `collection` from `artifact` (an alias on another version stays).
pub async fn remove_aliases(
    conn: &mut AnyConnection,
    collection: i64,
    artifact: i64,
    aliases: &[String],
) -> Result<(), DbError> {
    for alias in aliases {
        sqlx::query(
            "DELETE FROM artifact_aliases WHERE collection_id = $1 AND alias = $2 \
             AND artifact_id = $3",
        )
        .bind(collection)
        .bind(alias)
        .bind(artifact)
        .execute(&mut *conn)
        .await
        .map_err(doing("removing an artifact alias"))?;
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
enum Versions {
    /// The version with this id.
    One(i64),
    /// The versions the run with this id logged.
    OfRun(i64),
}

/// Marks `which` versions DELETED and drops their aliases; `latest` of each collection they
/// were in moves to the newest version left.
async fn delete_versions(
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

/// Points each of `aliases` of `collection` at `artifact` (moving them from other versions).
pub async fn set_aliases(
    conn: &mut AnyConnection,
    collection: i64,
    artifact: i64,
    aliases: &[String],
) -> Result<(), DbError> {
    let t = now();
    for alias in aliases {
        sqlx::query(
            "INSERT INTO artifact_aliases (collection_id, alias, artifact_id, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (collection_id, alias) DO UPDATE SET \
             artifact_id = excluded.artifact_id, created_at = excluded.created_at",
        )
        .bind(collection)
        .bind(alias)
        .bind(artifact)
        .bind(&t)
        .execute(&mut *conn)
        .await
        .map_err(doing("setting an artifact alias"))?;
    }
    Ok(())
}

/// The aliases pointing at `artifact`, by name.
pub async fn aliases_of(conn: &mut AnyConnection, artifact: i64) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar("SELECT alias FROM artifact_aliases WHERE artifact_id = $1 ORDER BY alias")
        .bind(artifact)
        .fetch_all(conn)
        .await
        .map_err(doing("listing artifact aliases"))
}

/// One page of a version's entries, by path: `limit` entries from the `offset`th.
pub async fn entries(
    conn: &mut AnyConnection,
    artifact: i64,
    offset: i64,
    limit: i64,
) -> Result<Vec<EntryRow>, DbError> {
    sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM artifact_entries \
         WHERE artifact_id = $1 ORDER BY path LIMIT $2 OFFSET $3"
    ))
    .bind(artifact)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await
    .map_err(doing("listing artifact files"))
}

/// The entries of `artifact` whose paths are in `names`, by path (each once; names it
/// lacks are left out).
pub async fn entries_named(
    conn: &mut AnyConnection,
    artifact: i64,
    names: &[String],
) -> Result<Vec<EntryRow>, DbError> {
    let mut names: Vec<&String> = names.iter().collect();
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let entry = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM artifact_entries WHERE artifact_id = $1 AND path = $2"
        ))
        .bind(artifact)
        .bind(name.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(doing("finding artifact files"))?;
        out.extend(entry);
    }
    Ok(out)
}

const ENTRY_COLUMNS: &str = "path, md5, size, ref, birth_artifact_id";

impl FromRow<'_, AnyRow> for EntryRow {
    fn from_row(row: &AnyRow) -> Result<EntryRow, sqlx::Error> {
        Ok(EntryRow {
            path: row.try_get("path")?,
            md5: row.try_get("md5")?,
            size: row.try_get("size")?,
            reference: row.try_get("ref")?,
            birth_artifact_id: row.try_get("birth_artifact_id")?,
        })
    }
}

/// The entry count of `artifact`.
pub async fn entry_count(conn: &mut AnyConnection, artifact: i64) -> Result<i64, DbError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM artifact_entries WHERE artifact_id = $1")
        .bind(artifact)
        .fetch_one(conn)
        .await
        .map_err(doing("counting artifact files"))
}

/// What `entity`'s blob index knows of the content `md5_hex`.
pub async fn blob(
    conn: &mut AnyConnection,
    entity: i64,
    md5_hex: &str,
) -> Result<Option<BlobRow>, DbError> {
    sqlx::query_as(
        "SELECT size, stored, birth_artifact_id FROM artifact_blobs \
         WHERE entity_id = $1 AND md5_hex = $2",
    )
    .bind(entity)
    .bind(md5_hex)
    .fetch_optional(conn)
    .await
    .map_err(doing("finding an artifact blob"))
}

impl FromRow<'_, AnyRow> for BlobRow {
    fn from_row(row: &AnyRow) -> Result<BlobRow, sqlx::Error> {
        Ok(BlobRow {
            size: row.try_get("size")?,
            stored: flag(row, "stored")?,
            birth_artifact_id: row.try_get("birth_artifact_id")?,
        })
    }
}

/// Announces the content `md5_hex` for `entity` (no-op when known); returns what the index
/// then holds.
pub async fn announce_blob(
    conn: &mut AnyConnection,
    entity: i64,
    md5_hex: &str,
    birth_artifact: i64,
) -> Result<BlobRow, DbError> {
    sqlx::query(
        "INSERT INTO artifact_blobs (entity_id, md5_hex, birth_artifact_id, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (entity_id, md5_hex) DO NOTHING",
    )
    .bind(entity)
    .bind(md5_hex)
    .bind(birth_artifact)
    .bind(now())
    .execute(&mut *conn)
    .await
    .map_err(doing("recording an artifact blob"))?;
    blob(conn, entity, md5_hex).await?.ok_or(DbError::Query {
        doing: "recording an artifact blob",
        source: sqlx::Error::RowNotFound,
    })
}

/// Records that the bytes of `md5_hex` are stored for `entity`.
pub async fn blob_stored(
    conn: &mut AnyConnection,
    entity: i64,
    md5_hex: &str,
    size: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE artifact_blobs SET stored = 1, size = $3 WHERE entity_id = $1 AND md5_hex = $2",
    )
    .bind(entity)
    .bind(md5_hex)
    .bind(size)
    .execute(conn)
    .await
    .map_err(doing("recording an artifact blob"))?;
    Ok(())
}

/// A multipart upload in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadRow {
    pub entity_id: i64,
    pub md5_hex: String,
    pub parts: i64,
}

impl FromRow<'_, AnyRow> for UploadRow {
    fn from_row(row: &AnyRow) -> Result<UploadRow, sqlx::Error> {
        Ok(UploadRow {
            entity_id: row.try_get("entity_id")?,
            md5_hex: row.try_get("md5_hex")?,
            parts: row.try_get("parts")?,
        })
    }
}

pub async fn add_upload(
    conn: &mut AnyConnection,
    upload_id: &str,
    row: &UploadRow,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO artifact_uploads (upload_id, entity_id, md5_hex, parts, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(upload_id)
    .bind(row.entity_id)
    .bind(&row.md5_hex)
    .bind(row.parts)
    .bind(now())
    .execute(conn)
    .await
    .map_err(doing("starting a multipart upload"))?;
    Ok(())
}

pub async fn upload(
    conn: &mut AnyConnection,
    upload_id: &str,
) -> Result<Option<UploadRow>, DbError> {
    sqlx::query_as("SELECT entity_id, md5_hex, parts FROM artifact_uploads WHERE upload_id = $1")
        .bind(upload_id)
        .fetch_optional(conn)
        .await
        .map_err(doing("finding a multipart upload"))
}

pub async fn remove_upload(conn: &mut AnyConnection, upload_id: &str) -> Result<(), DbError> {
    for sql in [
        "DELETE FROM artifact_upload_parts WHERE upload_id = $1",
        "DELETE FROM artifact_uploads WHERE upload_id = $1",
    ] {
        sqlx::query(sql)
            .bind(upload_id)
            .execute(&mut *conn)
            .await
            .map_err(doing("finishing a multipart upload"))?;
    }
    Ok(())
}

/// The multipart upload in progress of `entity`'s content `md5_hex` in `parts` parts.
pub async fn upload_of(
    conn: &mut AnyConnection,
    entity: i64,
    md5_hex: &str,
    parts: i64,
) -> Result<Option<String>, DbError> {
    sqlx::query_scalar(
        "SELECT upload_id FROM artifact_uploads WHERE entity_id = $1 AND md5_hex = $2 \
         AND parts = $3 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(entity)
    .bind(md5_hex)
    .bind(parts)
    .fetch_optional(conn)
    .await
    .map_err(doing("finding a multipart upload"))
}

/// Records that part `part` of `upload_id` is stored, with its MD5 (replacing an earlier
/// one). An upload that is gone (completed meanwhile) records nothing.
pub async fn part_stored(
    conn: &mut AnyConnection,
    upload_id: &str,
    part: i64,
    md5_hex: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO artifact_upload_parts (upload_id, part, md5_hex) \
         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM artifact_uploads WHERE upload_id = $1) \
         ON CONFLICT (upload_id, part) DO UPDATE SET md5_hex = excluded.md5_hex",
    )
    .bind(upload_id)
    .bind(part)
    .bind(md5_hex)
    .execute(conn)
    .await
    .map_err(doing("recording an uploaded part"))?;
    Ok(())
}

/// The stored parts of `upload_id`: part number → hex MD5.
pub async fn stored_parts(
    conn: &mut AnyConnection,
    upload_id: &str,
) -> Result<std::collections::HashMap<i64, String>, DbError> {
    let parts: Vec<(i64, String)> =
        sqlx::query_as("SELECT part, md5_hex FROM artifact_upload_parts WHERE upload_id = $1")
            .bind(upload_id)
            .fetch_all(conn)
            .await
            .map_err(doing("listing uploaded parts"))?;
    Ok(parts.into_iter().collect())
}

/// Records that `run` used `artifact` as an input (no-op when already recorded).
pub async fn record_use(conn: &mut AnyConnection, run: i64, artifact: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO artifact_usage (run_id, artifact_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (run_id, artifact_id) DO NOTHING",
    )
    .bind(run)
    .bind(artifact)
    .bind(now())
    .execute(conn)
    .await
    .map_err(doing("recording an artifact use"))?;
    Ok(())
}

/// The committed versions `run` logged, oldest first.
pub async fn outputs_of(conn: &mut AnyConnection, run: i64) -> Result<Vec<ArtifactRow>, DbError> {
    fetch_artifacts(
        conn,
        "a.run_id = $1 AND a.state = 'COMMITTED' ORDER BY a.id",
        &[run],
        "listing a run's artifacts",
    )
    .await
}

/// The versions `run` used, in the order it used them.
pub async fn inputs_of(conn: &mut AnyConnection, run: i64) -> Result<Vec<ArtifactRow>, DbError> {
    fetch_artifacts(
        conn,
        "a.id IN (SELECT artifact_id FROM artifact_usage WHERE run_id = $1) \
         AND a.state = 'COMMITTED' ORDER BY a.id",
        &[run],
        "listing a run's inputs",
    )
    .await
}

/// The ids of the runs that used `artifact`, in the order they did.
pub async fn users_of(conn: &mut AnyConnection, artifact: i64) -> Result<Vec<i64>, DbError> {
    sqlx::query_scalar(
        "SELECT run_id FROM artifact_usage WHERE artifact_id = $1 ORDER BY created_at, run_id",
    )
    .bind(artifact)
    .fetch_all(conn)
    .await
    .map_err(doing("listing an artifact's users"))
}

/// Marks a run's output versions DELETED and drops their aliases (run deletion with
/// `deleteArtifacts`); `latest` of each collection moves to the newest version left.
pub async fn delete_outputs_of(conn: &mut AnyConnection, run: i64) -> Result<(), DbError> {
    delete_versions(conn, Versions::OfRun(run), "deleting a run's artifacts").await
}
