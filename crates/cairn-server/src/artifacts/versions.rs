//! A version's life: created PENDING (or, when its content is the latest committed
//! version's, that version again), committed — checked against its manifest and numbered
//! v0, v1, … in its collection, never reusing a number — then updated, used by runs, and
//! deleted (refused while it has aliases, unless they go too).
//!
//! Input: what a client asked for, as plain values, and the viewer. Output: the version's
//! row, or an `ApiError` naming the artifact.

use sqlx::AnyConnection;

use super::aliases::{self, LATEST};
use super::manifest;
use crate::auth;
use crate::blob::{self, Blobs};
use crate::checks;
use crate::db::{self, ArtifactRow, Db, NewArtifact, UserRow};
use crate::error::ApiError;
use crate::names::DEFAULT_PROJECT;

/// A version a client asks to create (`createArtifact`).
#[derive(Clone, Debug, Default)]
pub(crate) struct NewVersion {
    /// Default: the viewer's own entity; created as a team on first use.
    pub(crate) entity: Option<String>,
    /// Default: [`DEFAULT_PROJECT`]; created on first use.
    pub(crate) project: Option<String>,
    /// The run that logs it, by name, if it exists.
    pub(crate) run: Option<String>,
    pub(crate) type_name: String,
    pub(crate) collection: String,
    /// The client's id of the collection (`sequenceClientID`).
    pub(crate) collection_client_id: Option<String>,
    /// W&B's content digest of the manifest the client will upload.
    pub(crate) digest: String,
    pub(crate) description: Option<String>,
    /// JSON text of an object.
    pub(crate) metadata: Option<String>,
    /// Aliases besides `latest`, put on at commit.
    pub(crate) aliases: Vec<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) history_step: Option<i64>,
    /// Seconds; a negative one means no time-to-live.
    pub(crate) ttl_seconds: Option<i64>,
    /// The client's id of the version (`clientID`).
    pub(crate) client_id: Option<String>,
}

/// The version `id`, if there is one and `viewer` may read its entity.
pub(crate) async fn readable(
    conn: &mut AnyConnection,
    viewer: &UserRow,
    id: i64,
) -> Result<Option<ArtifactRow>, ApiError> {
    let Some(artifact) = db::artifacts::versions::artifact_by_id(conn, id).await? else {
        return Ok(None);
    };
    auth::check_entity_id(conn, viewer, artifact.collection.entity_id).await?;
    Ok(Some(artifact))
}

/// Starts a version: PENDING, or the latest committed one when its content digest is the
/// same (then the requested aliases move to it, and no upload follows).
pub(crate) async fn create(
    db: &Db,
    viewer: &UserRow,
    new: NewVersion,
) -> Result<ArtifactRow, ApiError> {
    checks::check_name("artifact type", &new.type_name)?;
    checks::check_name("artifact", &new.collection)?;
    if new.collection.contains(':') {
        return Err(ApiError::BadRequest(format!(
            "artifact name {:?} contains `:`",
            new.collection
        )));
    }
    let aliases = aliases::requested(new.aliases)?;
    let metadata = new
        .metadata
        .map(|m| checks::json_object("metadata", &m))
        .transpose()?;
    for text in [&new.description, &metadata].into_iter().flatten() {
        if text.contains('\0') {
            return Err(ApiError::BadRequest(
                "artifact description or metadata contains a NUL character".to_owned(),
            ));
        }
    }
    let mut tx = db.write().await?;
    let entity = auth::writable_entity(tx.conn(), viewer, new.entity.as_deref()).await?;
    let project_name = new
        .project
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
    checks::check_name("project", &project_name)?;
    let project = db::runs::ensure_project(tx.conn(), entity.id, &project_name).await?;
    let collection = db::artifacts::collections::ensure_collection(
        tx.conn(),
        project.id,
        &new.collection,
        &new.type_name,
        new.collection_client_id.as_deref(),
    )
    .await?;
    if collection.type_name != new.type_name {
        return Err(ApiError::BadRequest(format!(
            "artifact {}/{}/{} has type {:?}, not {:?}",
            entity.name, project.name, collection.name, collection.type_name, new.type_name
        )));
    }
    let run = match new.run.as_deref().filter(|r| !r.is_empty()) {
        Some(name) => db::runs::run_by_name(tx.conn(), project.id, name).await?,
        None => None,
    };
    let latest = db::artifacts::versions::latest_committed(tx.conn(), collection.id).await?;
    let id = match latest.filter(|l| l.digest == new.digest) {
        Some(same) => {
            db::artifacts::aliases::set_aliases(tx.conn(), collection.id, same.id, &aliases)
                .await?;
            same.id
        }
        None => {
            let row = NewArtifact {
                digest: new.digest,
                description: new.description,
                metadata,
                tags: json_list(&new.tags),
                history_step: new.history_step,
                ttl_seconds: new.ttl_seconds.filter(|t| *t >= 0),
                client_id: new.client_id,
                run_id: run.map(|r| r.id),
                aliases: json_list(&aliases),
            };
            db::artifacts::versions::create_artifact(tx.conn(), collection.id, &row).await?
        }
    };
    let artifact = db::artifacts::versions::artifact_by_id(tx.conn(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("artifact {id} vanished")))?;
    tx.commit().await?;
    Ok(artifact)
}

/// A JSON array of strings, as the rows keep lists.
fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// Makes a PENDING version COMMITTED (a COMMITTED one is returned as it is): reads its
/// manifest, checks every stored file was uploaded with the size the manifest names,
/// numbers the version and puts its aliases on it.
pub(crate) async fn commit(
    db: &Db,
    blobs: &Blobs,
    artifact: ArtifactRow,
) -> Result<ArtifactRow, ApiError> {
    if artifact.state == "COMMITTED" {
        return Ok(artifact);
    }
    let path = artifact.path();
    if artifact.state != "PENDING" {
        return Err(ApiError::BadRequest(format!(
            "artifact {path} is {} and cannot be committed",
            artifact.state
        )));
    }
    let key = artifact.manifest_key.clone().ok_or_else(|| {
        ApiError::BadRequest(format!("artifact {path}: no manifest was uploaded"))
    })?;
    let bytes = manifest::read(blobs, &key, &path).await?;
    let entries = manifest::parse(&bytes, &path)?;
    let digest =
        manifest::content_digest(entries.iter().map(|(e, d)| (e.path.as_str(), d.as_str())));
    if digest != artifact.digest {
        tracing::warn!(artifact = %path, client = %artifact.digest, server = %digest,
            "the client's artifact digest differs from its manifest's; keeping the manifest's");
    }
    let entity = artifact.collection.entity_id;
    let mut tx = db.write().await?;
    let mut rows = Vec::with_capacity(entries.len());
    for (mut entry, _) in entries {
        if let Some(md5) = &entry.md5 {
            let hex = blob::md5_hex(md5).unwrap_or_default();
            let known = db::artifacts::blobs::blob(tx.conn(), entity, &hex).await?;
            let Some(known) = known.filter(|b| b.stored) else {
                return Err(ApiError::BadRequest(format!(
                    "artifact {path}: file {:?} was never uploaded",
                    entry.path
                )));
            };
            if known.size != entry.size {
                return Err(ApiError::BadRequest(format!(
                    "artifact {path}: file {:?} has size {} in the manifest, {} in storage",
                    entry.path, entry.size, known.size
                )));
            }
            entry.birth_artifact_id = entry.birth_artifact_id.or(Some(known.birth_artifact_id));
        }
        rows.push(entry);
    }
    let aliases: Vec<String> =
        serde_json::from_str(&artifact.pending_aliases).unwrap_or_else(|_| vec![LATEST.to_owned()]);
    db::artifacts::versions::commit(tx.conn(), &artifact, &rows, &digest, &aliases).await?;
    let committed = db::artifacts::versions::artifact_by_id(tx.conn(), artifact.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("artifact {path} vanished")))?;
    tx.commit().await?;
    tracing::info!(artifact = %committed.path(), files = committed.file_count, "artifact committed");
    Ok(committed)
}

/// What `updateArtifact` changes of a version; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub(crate) struct Update {
    pub(crate) description: Option<String>,
    /// JSON text of an object.
    pub(crate) metadata: Option<String>,
    pub(crate) tags_to_add: Option<Vec<String>>,
    pub(crate) tags_to_delete: Option<Vec<String>>,
    /// Seconds; a negative one removes the time-to-live.
    pub(crate) ttl_seconds: Option<i64>,
    /// Aliases to put on the version (moved from others); none are taken off.
    pub(crate) aliases: Option<Vec<String>>,
}

/// Changes what `update` names of `artifact`; the version as it then is.
pub(crate) async fn update(
    db: &Db,
    artifact: &ArtifactRow,
    update: Update,
) -> Result<Option<ArtifactRow>, ApiError> {
    let metadata = update
        .metadata
        .map(|m| checks::json_object("metadata", &m))
        .transpose()?;
    let tags = match (update.tags_to_add, update.tags_to_delete) {
        (None, None) => None,
        (add, delete) => {
            let mut tags: Vec<String> = serde_json::from_str(&artifact.tags).unwrap_or_default();
            for tag in delete.unwrap_or_default() {
                tags.retain(|t| *t != tag);
            }
            for tag in add.unwrap_or_default() {
                checks::check_name("tag", &tag)?;
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            Some(serde_json::to_string(&tags).map_err(|e| ApiError::BadRequest(e.to_string()))?)
        }
    };
    let row = db::artifacts::versions::ArtifactUpdate {
        description: update.description.as_deref(),
        metadata: metadata.as_deref(),
        tags: tags.as_deref(),
        ttl_seconds: update.ttl_seconds.map(|t| (t >= 0).then_some(t)),
    };
    let mut tx = db.write().await?;
    db::artifacts::versions::update_artifact(tx.conn(), artifact.id, &row).await?;
    if let Some(names) = update.aliases {
        for alias in &names {
            aliases::check(alias)?;
        }
        db::artifacts::aliases::set_aliases(tx.conn(), artifact.collection.id, artifact.id, &names)
            .await?;
    }
    let updated = db::artifacts::versions::artifact_by_id(tx.conn(), artifact.id).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Records that run `run` used `artifact` as an input.
pub(crate) async fn record_use(db: &Db, run: i64, artifact: &ArtifactRow) -> Result<(), ApiError> {
    let mut tx = db.write().await?;
    db::artifacts::lineage::record_use(tx.conn(), run, artifact.id).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a version: refused while it has aliases unless `delete_aliases`; `latest` then
/// moves to the newest version left. Its number is never given again.
pub(crate) async fn delete(
    db: &Db,
    artifact: &ArtifactRow,
    delete_aliases: bool,
) -> Result<(), ApiError> {
    let mut tx = db.write().await?;
    let aliases = db::artifacts::aliases::aliases_of(tx.conn(), artifact.id).await?;
    if !aliases.is_empty() && !delete_aliases {
        return Err(ApiError::BadRequest(format!(
            "cannot delete {}: it has aliases ({}); delete them first or pass \
             delete_aliases=True",
            artifact.path(),
            aliases.join(", ")
        )));
    }
    db::artifacts::versions::delete_version(tx.conn(), artifact).await?;
    tx.commit().await?;
    Ok(())
}
