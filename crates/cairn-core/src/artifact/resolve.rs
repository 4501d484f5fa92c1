//! Using a version: finding the one `name:alias` names ([`resolve`], for the SDK's
//! `use_artifact`) and recording on the server that a run used it ([`record_use`], for the log's
//! `UseArtifactRecord`: lineage).
//!
//! One GraphQL call each, on the caller's thread, bounded by its [`Until`].

use serde_json::{Value as Json, json};

use crate::client::{Connection, Until, documents};

use super::error::ArtifactError;
use super::save::Target;

/// A committed version found on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteArtifact {
    /// The server's id of the version.
    pub id: String,
    /// The entity of its project.
    pub entity: String,
    /// Its project.
    pub project: String,
    /// The collection's name.
    pub collection: String,
    /// `vN`'s N.
    pub version: i64,
    /// The artifact's type.
    pub type_name: String,
    /// The content digest (hex).
    pub digest: String,
    /// Bytes in its files.
    pub size: i64,
    /// Its entries.
    pub file_count: i64,
}

impl RemoteArtifact {
    /// `collection:vN`.
    pub fn name(&self) -> String {
        format!("{}:v{}", self.collection, self.version)
    }
}

/// The version `name` (`collection:alias`, `collection:vN`; a bare name means `latest`) of
/// `entity/project`.
pub fn resolve(
    conn: &Connection,
    entity: &str,
    project: &str,
    name: &str,
    until: &Until,
) -> Result<RemoteArtifact, ArtifactError> {
    let full = if name.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    };
    let data = conn
        .graphql(
            "ArtifactMembershipByName",
            documents::ARTIFACT_MEMBERSHIP_BY_NAME,
            json!({"entity": entity, "project": project, "name": full}),
            until,
        )
        .map_err(|source| ArtifactError::Http {
            name: full.clone(),
            source,
        })?;
    let m = &data["project"]["artifactCollectionMembership"];
    let text = |v: &Json| v.as_str().map(str::to_owned);
    let found = (|| {
        Some(RemoteArtifact {
            id: text(&m["artifact"]["id"])?,
            entity: text(&m["artifactCollection"]["project"]["entity"]["name"])?,
            project: text(&m["artifactCollection"]["project"]["name"])?,
            collection: text(&m["artifactCollection"]["name"])?,
            version: m["versionIndex"].as_i64()?,
            type_name: text(&m["artifact"]["artifactType"]["name"]).unwrap_or_default(),
            digest: text(&m["artifact"]["digest"]).unwrap_or_default(),
            size: m["artifact"]["size"].as_i64().unwrap_or(0),
            file_count: m["artifact"]["fileCount"].as_i64().unwrap_or(0),
        })
    })();
    found.ok_or_else(|| ArtifactError::NotFound(format!("{entity}/{project}/{full}")))
}

/// Records on the server that run `target` used version `artifact_id`.
pub fn record_use(
    conn: &Connection,
    target: &Target,
    artifact_id: &str,
    until: &Until,
) -> Result<(), ArtifactError> {
    conn.graphql(
        "UseArtifact",
        documents::USE_ARTIFACT,
        json!({"input": {"entityName": target.entity, "projectName": target.project,
            "runName": target.run, "artifactID": artifact_id}}),
        until,
    )
    .map_err(|source| ArtifactError::Http {
        name: artifact_id.to_owned(),
        source,
    })?;
    Ok(())
}
