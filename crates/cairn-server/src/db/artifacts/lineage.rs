//! Lineage: which run logged a version (its output) and which runs used it (their
//! inputs); deleting a run's outputs with it.

use sqlx::AnyConnection;

use super::versions::{ArtifactRow, Versions, delete_versions, fetch_artifacts};
use crate::db::{DbError, doing, now};

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
