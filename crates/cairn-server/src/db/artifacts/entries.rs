//! The entries of committed versions (the files and references of their manifests), as
//! `commit` stored them: paged by path, or looked up by name.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::db::{DbError, doing};

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
