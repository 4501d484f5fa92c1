//! Aliases of artifact versions: names such as `latest` or `best`, each on one version of
//! a collection at a time. Setting one moves it from the version that held it.

use sqlx::AnyConnection;

use crate::db::{DbError, doing, now};

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
