//! Uploading a version's files: which bytes must be sent (none that the entity already
//! stores), multipart uploads and their resumption, and taking in the bytes PUT to the
//! signed URLs — each checked against the MD5 its key or its announcement names.
//!
//! Input: a file's name and base64 MD5 (and its parts' MD5s for a multipart upload), or
//! a body streamed to a storage key. Output: a [`FilePlan`] naming the storage keys the
//! caller signs upload URLs for, the stored bytes, or a `BadRequest` naming the artifact
//! or upload. Bytes go to a staging key first and become the entity's blob only once
//! their MD5 is checked, so a refused upload never stands for the content it claimed.

use std::collections::HashMap;

use futures_util::Stream;

use crate::auth;
use crate::blob::{self, Blobs, Stored};
use crate::db::{self, ArtifactRow, Db, UserRow};
use crate::error::ApiError;

/// One part of a multipart upload as the client announces it.
#[derive(Clone, Debug)]
pub(crate) struct Part {
    pub(crate) number: i64,
    pub(crate) hex_md5: String,
}

/// What the client must upload of one announced file.
#[derive(Clone, Debug)]
pub(crate) struct FilePlan {
    /// The storage key of the file's content.
    pub(crate) key: String,
    /// Whether the content must be uploaded (the entity does not store it yet).
    pub(crate) upload: bool,
    /// The version that first announced these bytes (the manifest's `birthArtifactID`).
    pub(crate) birth_artifact_id: i64,
    /// For a multipart upload: its id and parts.
    pub(crate) multipart: Option<MultipartPlan>,
}

/// A multipart upload, new or resumed.
#[derive(Clone, Debug)]
pub(crate) struct MultipartPlan {
    pub(crate) upload_id: String,
    pub(crate) parts: Vec<PartPlan>,
}

/// One part of a multipart upload: its storage key, and its MD5 when the server already
/// stores it with the announced content (the client may skip it).
#[derive(Clone, Debug)]
pub(crate) struct PartPlan {
    pub(crate) number: i64,
    pub(crate) key: String,
    pub(crate) stored_hex_md5: Option<String>,
}

/// Announces file `name` of PENDING `artifact`, with content `md5_b64` (W&B's base64
/// MD5), in `parts` when the client uploads it in parts.
pub(crate) async fn announce_file(
    db: &Db,
    artifact: &ArtifactRow,
    name: &str,
    md5_b64: &str,
    parts: Option<Vec<Part>>,
) -> Result<FilePlan, ApiError> {
    let path = artifact.path();
    blob::check_file_name(name)
        .map_err(|msg| ApiError::BadRequest(format!("artifact {path}: {msg}")))?;
    if artifact.state != "PENDING" {
        return Err(ApiError::BadRequest(format!(
            "artifact {path} is {}, files can no longer be added",
            artifact.state
        )));
    }
    let hex = blob::md5_hex(md5_b64).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "artifact {path}: file {name:?} has md5 {md5_b64:?}, not a base64 MD5"
        ))
    })?;
    let entity = artifact.collection.entity_id;
    let key = blob::artifact_blob_key(entity, &hex);
    let mut tx = db.write().await?;
    let known = db::artifacts::blobs::announce_blob(tx.conn(), entity, &hex, artifact.id).await?;
    let mut multipart = None;
    if !known.stored
        && let Some(parts) = parts.filter(|p| !p.is_empty())
    {
        let count = parts.len() as i64;
        // The same content started before (a failed or cut-off upload): go on with it, and
        // say which parts are already stored.
        let (upload_id, stored) =
            match db::artifacts::blobs::upload_of(tx.conn(), entity, &hex, count).await? {
                Some(id) => {
                    let stored = db::artifacts::blobs::stored_parts(tx.conn(), &id).await?;
                    (id, stored)
                }
                None => {
                    use rand::Rng as _;
                    let id = hex::encode(rand::rng().random::<[u8; 16]>());
                    let row = db::artifacts::blobs::UploadRow {
                        entity_id: entity,
                        md5_hex: hex.clone(),
                        parts: count,
                    };
                    db::artifacts::blobs::add_upload(tx.conn(), &id, &row).await?;
                    (id, HashMap::new())
                }
            };
        let mut planned = Vec::with_capacity(parts.len());
        for part in parts {
            let number = part.number;
            if !(1..=10_000).contains(&number) || hex::decode(&part.hex_md5).is_err() {
                return Err(ApiError::BadRequest(format!(
                    "artifact {path}: file {name:?} has a bad part {number}"
                )));
            }
            planned.push(PartPlan {
                number,
                key: blob::artifact_part_key(entity, &upload_id, number),
                stored_hex_md5: stored
                    .get(&number)
                    .filter(|md5| md5.eq_ignore_ascii_case(&part.hex_md5))
                    .cloned(),
            });
        }
        multipart = Some(MultipartPlan {
            upload_id,
            parts: planned,
        });
    }
    tx.commit().await?;
    Ok(FilePlan {
        key,
        upload: !known.stored,
        birth_artifact_id: known.birth_artifact_id,
        multipart,
    })
}

/// How a multipart upload ends.
#[derive(Clone, Debug)]
pub(crate) enum Finish {
    /// Join the parts, which must be exactly 1..=N.
    Complete { parts: Vec<i64> },
    /// Forget the upload and its stored parts.
    Abort,
}

/// Ends multipart upload `upload_id` of an entity `viewer` may write: joins its parts into
/// the content they make up (checked against the announced MD5) and returns that
/// content's base64 MD5, or aborts it (`None`). Either way its parts leave storage.
pub(crate) async fn finish_multipart(
    db: &Db,
    blobs: &Blobs,
    viewer: &UserRow,
    upload_id: &str,
    finish: Finish,
) -> Result<Option<String>, ApiError> {
    let upload = {
        let mut conn = db.conn().await?;
        let upload = db::artifacts::blobs::upload(&mut conn, upload_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("multipart upload {upload_id} not found")))?;
        auth::check_entity_id(&mut conn, viewer, upload.entity_id).await?;
        upload
    };
    let part_keys: Vec<String> = (1..=upload.parts)
        .map(|n| blob::artifact_part_key(upload.entity_id, upload_id, n))
        .collect();
    let mut completed = match finish {
        Finish::Abort => {
            delete_parts(blobs, &part_keys).await;
            let mut tx = db.write().await?;
            db::artifacts::blobs::remove_upload(tx.conn(), upload_id).await?;
            tx.commit().await?;
            return Ok(None);
        }
        Finish::Complete { parts } => parts,
    };
    completed.sort_unstable();
    if completed != (1..=upload.parts).collect::<Vec<_>>() {
        return Err(ApiError::BadRequest(format!(
            "multipart upload {upload_id}: parts 1..={} expected, got {completed:?}",
            upload.parts
        )));
    }
    let staging = blob::artifact_staging_key(upload.entity_id);
    let stored = blobs
        .concat(&part_keys, &staging)
        .await
        .map_err(|err| match err {
            blob::BlobError::NotFound(part) => ApiError::BadRequest(format!(
                "multipart upload {upload_id}: part {part} was never uploaded"
            )),
            other => other.into(),
        })?;
    let key = blob::artifact_blob_key(upload.entity_id, &upload.md5_hex);
    let target = (key.as_str(), upload.entity_id, upload.md5_hex.as_str());
    keep_as_blob(db, blobs, &staging, &stored, target, |got| {
        ApiError::BadRequest(format!(
            "multipart upload {upload_id}: the joined parts have MD5 {got}, the file announced {}",
            upload.md5_hex
        ))
    })
    .await?;
    let mut tx = db.write().await?;
    db::artifacts::blobs::remove_upload(tx.conn(), upload_id).await?;
    tx.commit().await?;
    delete_parts(blobs, &part_keys).await;
    Ok(Some(stored.md5))
}

async fn delete_parts(blobs: &Blobs, keys: &[String]) {
    for key in keys {
        if let Err(err) = blobs.delete(key).await {
            tracing::warn!(%key, error = %err, "a multipart part remains in storage");
        }
    }
}

/// Stores a file's content PUT to its key (`artifacts/{entity}/blobs/{md5}`): kept only
/// when its MD5 is the one the key names.
pub(crate) async fn put_blob<S, E>(
    db: &Db,
    blobs: &Blobs,
    key: &str,
    entity: i64,
    md5_hex: &str,
    body: S,
) -> Result<Stored, ApiError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let staging = blob::artifact_staging_key(entity);
    let stored = blobs.put_stream(&staging, body).await?;
    keep_as_blob(
        db,
        blobs,
        &staging,
        &stored,
        (key, entity, md5_hex),
        |got| {
            ApiError::BadRequest(format!(
                "upload to {key}: the body's MD5 is {got}, not the one the file was announced with"
            ))
        },
    )
    .await?;
    Ok(stored)
}

/// Moves the bytes at `staging` to `key`, entity `entity`'s blob `md5_hex`, when they have
/// that MD5 (recording them as stored); deletes them and answers `mismatch(their MD5)`
/// otherwise.
async fn keep_as_blob(
    db: &Db,
    blobs: &Blobs,
    staging: &str,
    stored: &Stored,
    (key, entity, md5_hex): (&str, i64, &str),
    mismatch: impl FnOnce(&str) -> ApiError,
) -> Result<(), ApiError> {
    let got = stored.md5_hex();
    if got != md5_hex {
        if let Err(err) = blobs.delete(staging).await {
            tracing::warn!(key = %staging, error = %err, "a refused upload remains in storage");
        }
        return Err(mismatch(&got));
    }
    blobs.rename(staging, key).await?;
    let mut tx = db.write().await?;
    db::artifacts::blobs::blob_stored(tx.conn(), entity, md5_hex, stored.size as i64).await?;
    tx.commit().await?;
    Ok(())
}

/// Stores part `part` of multipart upload `upload` PUT to its key, refusing a body whose
/// MD5 differs from its `Content-MD5` (base64, when the client sent one).
pub(crate) async fn put_part<S, E>(
    db: &Db,
    blobs: &Blobs,
    key: &str,
    upload: &str,
    part: i64,
    content_md5: Option<&str>,
    body: S,
) -> Result<Stored, ApiError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let stored = blobs.put_stream(key, body).await?;
    if let Some(expected) = content_md5
        && expected.trim() != stored.md5
    {
        return Err(ApiError::BadRequest(format!(
            "upload to {key}: Content-MD5 is {expected}, the body's MD5 is {}",
            stored.md5
        )));
    }
    let mut tx = db.write().await?;
    db::artifacts::blobs::part_stored(tx.conn(), upload, part, &stored.md5_hex()).await?;
    tx.commit().await?;
    Ok(stored)
}
