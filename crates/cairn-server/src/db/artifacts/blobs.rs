//! The per-entity, content-addressed index of artifact file bytes, and the multipart
//! uploads in progress. A content is announced (with the version that first named it)
//! before its bytes arrive, and marked stored once they are checked; a multipart upload
//! records its parts as they are stored, so an upload cut off can resume.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::db::{DbError, doing, flag, now};

/// What the artifact blob index knows about one content of an entity.
#[derive(Clone, Debug, PartialEq)]
pub struct BlobRow {
    pub size: i64,
    pub stored: bool,
    pub birth_artifact_id: i64,
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
