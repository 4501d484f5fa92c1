//! The artifact mutations of W&B's save flow (wire §3.4, §4.5–§4.9, §4.14, §7):
//! `createArtifact` (with same-content dedup) → `createArtifactManifest` (twice) →
//! `createArtifactFiles` (a null upload URL for content the entity already stores; part
//! URLs for multipart files) → PUTs (`http.rs` checks each body's MD5) →
//! `completeMultipartUploadArtifact` → `commitArtifact` (reads the uploaded manifest,
//! checks every file is stored, numbers the version, moves aliases). Also `useArtifact`
//! (lineage) and `updateArtifact`.
//!
//! Blobs are content-addressed per entity, so a user can only ever skip uploading bytes
//! their own entity already holds, and commit fails for a manifest naming bytes the
//! entity never uploaded.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use futures_util::StreamExt as _;
use md5::{Digest as _, Md5};
use serde_json::Value;

use super::artifacts::{Artifact, check_entity, readable_artifact};
use super::query::DEFAULT_PROJECT;
use super::scalars::{Int64, JsonString};
use super::{decode_id, encode_id, gql, session};
use crate::auth;
use crate::blob;
use crate::db::{self, ArtifactRow, EntryRow, NewArtifact};
use crate::error::ApiError;

/// The largest manifest a commit reads (about four million entries).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

#[derive(Debug, Default)]
pub(super) struct ArtifactMutation;

#[derive(InputObject)]
pub(super) struct ArtifactAliasInput {
    artifact_collection_name: Option<String>,
    alias: String,
}

#[derive(InputObject)]
pub(super) struct CreateArtifactInput {
    entity_name: Option<String>,
    project_name: Option<String>,
    run_name: Option<String>,
    artifact_type_name: String,
    artifact_collection_name: String,
    artifact_collection_names: Option<Vec<String>>,
    digest: String,
    digest_algorithm: Option<String>,
    description: Option<String>,
    metadata: Option<JsonString>,
    aliases: Option<Vec<ArtifactAliasInput>>,
    labels: Option<async_graphql::Json<Value>>,
    tags: Option<async_graphql::Json<Value>>,
    history_step: Option<Int64>,
    ttl_duration_seconds: Option<Int64>,
    #[graphql(name = "distributedID")]
    distributed_id: Option<String>,
    enable_digest_deduplication: Option<bool>,
    #[graphql(name = "clientID")]
    client_id: Option<ID>,
    #[graphql(name = "sequenceClientID")]
    sequence_client_id: Option<ID>,
    storage_region: Option<String>,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct CreateArtifactPayload {
    artifact: Artifact,
    client_mutation_id: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArtifactManifestType {
    Full,
    Incremental,
    Patch,
}

#[derive(InputObject)]
pub(super) struct CreateArtifactManifestInput {
    #[graphql(name = "artifactID")]
    artifact_id: ID,
    #[graphql(name = "baseArtifactID")]
    base_artifact_id: Option<ID>,
    name: String,
    digest: Option<String>,
    entity_name: Option<String>,
    project_name: Option<String>,
    run_name: Option<String>,
    r#type: Option<ArtifactManifestType>,
    include_upload: Option<bool>,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct ManifestUpload {
    id: ID,
    upload_url: Option<String>,
    upload_headers: Vec<String>,
}

#[derive(SimpleObject)]
pub(super) struct ArtifactManifestRef {
    id: ID,
    file: ManifestUpload,
}

#[derive(SimpleObject)]
pub(super) struct CreateArtifactManifestPayload {
    artifact_manifest: ArtifactManifestRef,
    client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub(super) struct UploadPartsInput {
    part_number: Int64,
    #[graphql(name = "hexMD5")]
    hex_md5: String,
}

#[derive(InputObject)]
pub(super) struct CreateArtifactFileSpecInput {
    #[graphql(name = "artifactID")]
    artifact_id: ID,
    #[graphql(name = "artifactManifestID")]
    artifact_manifest_id: Option<ID>,
    name: String,
    md5: String,
    mimetype: Option<String>,
    digest: Option<String>,
    upload_parts_input: Option<Vec<UploadPartsInput>>,
}

#[derive(InputObject)]
pub(super) struct CreateArtifactFilesInput {
    artifact_files: Vec<CreateArtifactFileSpecInput>,
    storage_layout: Option<String>,
    #[graphql(name = "cloudRegionID")]
    cloud_region_id: Option<String>,
    digest_algorithm: Option<String>,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct UploadUrlPart {
    part_number: i64,
    upload_url: String,
    /// cairn's extension (feature `CAIRN_RESUMABLE_MULTIPART`): the hex MD5 of this part
    /// when the server already stores it with that content, so the client can skip it.
    #[graphql(name = "storedHexMD5")]
    stored_hex_md5: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct UploadMultipartUrls {
    #[graphql(name = "uploadID")]
    upload_id: String,
    upload_url_parts: Vec<UploadUrlPart>,
}

#[derive(SimpleObject)]
pub(super) struct ArtifactIdOnly {
    id: ID,
}

#[derive(SimpleObject)]
pub(super) struct FileUpload {
    id: ID,
    name: String,
    storage_path: String,
    upload_url: Option<String>,
    upload_headers: Vec<String>,
    upload_multipart_urls: Option<UploadMultipartUrls>,
    /// The version that first uploaded these bytes (the manifest's `birthArtifactID`).
    artifact: ArtifactIdOnly,
}

#[derive(SimpleObject)]
pub(super) struct FileUploadEdge {
    node: FileUpload,
}

#[derive(SimpleObject)]
pub(super) struct FileUploadConnection {
    edges: Vec<FileUploadEdge>,
}

#[derive(SimpleObject)]
pub(super) struct CreateArtifactFilesPayload {
    files: FileUploadConnection,
    client_mutation_id: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum CompleteMultipartAction {
    #[graphql(name = "Complete")]
    Complete,
    #[graphql(name = "Abort")]
    Abort,
}

#[derive(InputObject)]
pub(super) struct CompleteMultipartUploadArtifactInput {
    complete_multipart_action: CompleteMultipartAction,
    completed_parts: Vec<UploadPartsInput>,
    #[graphql(name = "artifactID")]
    artifact_id: ID,
    storage_path: String,
    #[graphql(name = "uploadID")]
    upload_id: String,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct CompleteMultipartUploadArtifactPayload {
    digest: Option<String>,
    client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub(super) struct CommitArtifactInput {
    #[graphql(name = "artifactID")]
    artifact_id: ID,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct ArtifactPayload {
    artifact: Option<Artifact>,
    client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub(super) struct UseArtifactInput {
    entity_name: Option<String>,
    project_name: Option<String>,
    run_name: Option<String>,
    #[graphql(name = "artifactID")]
    artifact_id: ID,
    used_as: Option<String>,
    artifact_entity_name: Option<String>,
    artifact_project_name: Option<String>,
    client_mutation_id: Option<String>,
}

/// A tag named in `updateArtifact` (categories and attributes are accepted, not kept).
#[derive(InputObject)]
pub(super) struct TagInput {
    tag_name: String,
    tag_category_name: Option<String>,
    attributes: Option<String>,
}

#[derive(InputObject)]
pub(super) struct UpdateArtifactInput {
    #[graphql(name = "artifactID")]
    artifact_id: ID,
    description: Option<String>,
    metadata: Option<JsonString>,
    aliases: Option<Vec<ArtifactAliasInput>>,
    tags_to_add: Option<Vec<TagInput>>,
    tags_to_delete: Option<Vec<TagInput>>,
    /// Seconds; -1 (inherit) and -2 (disabled) mean no time-to-live.
    ttl_duration_seconds: Option<Int64>,
    labels: Option<String>,
    client_mutation_id: Option<String>,
}

/// An alias of a version in a named collection (`addAliases`, `deleteAliases`).
#[derive(InputObject)]
pub(super) struct ArtifactCollectionAliasInput {
    alias: String,
    artifact_collection_name: String,
    entity_name: String,
    project_name: String,
}

#[derive(InputObject)]
pub(super) struct AddAliasesInput {
    #[graphql(name = "artifactID")]
    artifact_id: ID,
    aliases: Vec<ArtifactCollectionAliasInput>,
    client_mutation_id: Option<String>,
}

/// The same fields as [`AddAliasesInput`], under the name `deleteAliases` declares.
#[derive(InputObject)]
pub(super) struct DeleteAliasesInput {
    #[graphql(name = "artifactID")]
    artifact_id: ID,
    aliases: Vec<ArtifactCollectionAliasInput>,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct AliasesPayload {
    success: bool,
    client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub(super) struct DeleteArtifactInput {
    #[graphql(name = "artifactID")]
    artifact_id: ID,
    delete_aliases: Option<bool>,
    client_mutation_id: Option<String>,
}

fn bad(msg: String) -> async_graphql::Error {
    gql(ApiError::BadRequest(msg))
}

/// The version `id` names, checked for access; a missing one is an error.
async fn artifact_arg(ctx: &Context<'_>, id: &ID) -> Result<ArtifactRow, ApiError> {
    let mut conn = session(ctx).app.db.conn().await?;
    readable_artifact(ctx, &mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("artifact {} not found", id.0)))
}

/// The aliases a client asked for, `latest` included, each checked.
fn alias_names(inputs: Option<Vec<ArtifactAliasInput>>) -> Result<Vec<String>, ApiError> {
    let mut aliases = vec!["latest".to_owned()];
    for input in inputs.unwrap_or_default() {
        let _ = input.artifact_collection_name;
        check_alias(&input.alias)?;
        if !aliases.contains(&input.alias) {
            aliases.push(input.alias);
        }
    }
    Ok(aliases)
}

/// Aliases: 1–128 characters, no `/` or `:` or control characters, and not of the `vN`
/// form that names versions.
fn check_alias(alias: &str) -> Result<(), ApiError> {
    auth::check_name("alias", alias)?;
    let version_like = alias
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if alias.contains(':') || version_like {
        return Err(ApiError::BadRequest(format!(
            "alias {alias:?} contains `:` or has the form of a version (vN)"
        )));
    }
    Ok(())
}

/// W&B's content digest of a manifest's entries (wire §7.2), hex.
pub(crate) fn content_digest<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut entries: Vec<(&str, &str)> = entries.collect();
    entries.sort_unstable();
    let mut md5 = Md5::new();
    md5.update(b"wandb-artifact-manifest-v1\n");
    for (path, digest) in entries {
        md5.update(path.as_bytes());
        md5.update(b":");
        md5.update(digest.as_bytes());
        md5.update(b"\n");
    }
    hex::encode(md5.finalize())
}

/// The entries of a `wandb_manifest.json`, checked: paths safe, digests well formed.
fn parse_manifest(bytes: &[u8], artifact: &str) -> Result<Vec<(EntryRow, String)>, ApiError> {
    let bad = |msg: String| ApiError::BadRequest(format!("manifest of {artifact}: {msg}"));
    let manifest: Value =
        serde_json::from_slice(bytes).map_err(|err| bad(format!("not JSON: {err}")))?;
    let contents = manifest
        .get("contents")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no `contents` object".to_owned()))?;
    let mut entries = Vec::with_capacity(contents.len());
    for (path, entry) in contents {
        blob::check_file_name(path).map_err(bad)?;
        let digest = entry
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("entry {path:?} has no digest")))?;
        let size = entry.get("size").and_then(Value::as_i64).unwrap_or(0);
        let reference = entry.get("ref").and_then(Value::as_str).map(str::to_owned);
        let birth = entry
            .get("birthArtifactID")
            .and_then(Value::as_str)
            .and_then(|id| decode_id("Artifact", id));
        if reference.is_none() && blob::md5_hex(digest).is_none() {
            return Err(bad(format!(
                "entry {path:?} has digest {digest:?}, not a base64 MD5"
            )));
        }
        entries.push((
            EntryRow {
                path: path.clone(),
                md5: reference.is_none().then(|| digest.to_owned()),
                size,
                reference,
                birth_artifact_id: birth,
            },
            digest.to_owned(),
        ));
    }
    Ok(entries)
}

#[Object]
impl ArtifactMutation {
    /// Starts a version: PENDING, or the latest committed one when its content digest is
    /// the same (then the requested aliases move to it and no upload follows).
    async fn create_artifact(
        &self,
        ctx: &Context<'_>,
        input: CreateArtifactInput,
    ) -> Result<CreateArtifactPayload> {
        create_artifact(ctx, input).await.map_err(gql)
    }

    /// Reserves (first call) and then hands out the upload URL of a version's manifest.
    async fn create_artifact_manifest(
        &self,
        ctx: &Context<'_>,
        input: CreateArtifactManifestInput,
    ) -> Result<CreateArtifactManifestPayload> {
        let artifact = artifact_arg(ctx, &input.artifact_id).await.map_err(gql)?;
        let _ = (
            input.base_artifact_id,
            input.entity_name,
            input.project_name,
            input.run_name,
            input.include_upload,
        );
        if input
            .r#type
            .is_some_and(|t| t != ArtifactManifestType::Full)
        {
            return Err(bad(format!(
                "artifact {}: only FULL manifests are supported",
                artifact.path()
            )));
        }
        blob::check_file_name(&input.name).map_err(bad)?;
        let s = session(ctx);
        let key = blob::artifact_manifest_key(artifact.collection.entity_id, artifact.id);
        let digest = input.digest.filter(|d| !d.is_empty());
        let mut tx = s.app.db.write().await.map_err(gql)?;
        db::artifacts::set_manifest(tx.conn(), artifact.id, &key, digest.as_deref())
            .await
            .map_err(gql)?;
        tx.commit().await.map_err(gql)?;
        let id = encode_id("ArtifactManifest", artifact.id);
        Ok(CreateArtifactManifestPayload {
            artifact_manifest: ArtifactManifestRef {
                id: id.clone(),
                file: ManifestUpload {
                    id,
                    upload_url: Some(s.app.signed_url(&s.base_url, "PUT", &key)),
                    upload_headers: Vec::new(),
                },
            },
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Upload URLs for a version's files, by position: null for content the entity
    /// already stores.
    async fn create_artifact_files(
        &self,
        ctx: &Context<'_>,
        input: CreateArtifactFilesInput,
    ) -> Result<CreateArtifactFilesPayload> {
        let _ = (
            input.storage_layout,
            input.cloud_region_id,
            input.digest_algorithm,
        );
        let mut edges = Vec::with_capacity(input.artifact_files.len());
        let mut artifact: Option<ArtifactRow> = None;
        for spec in input.artifact_files {
            let _ = (spec.artifact_manifest_id, spec.mimetype, spec.digest);
            if artifact
                .as_ref()
                .is_none_or(|a| encode_id("Artifact", a.id) != spec.artifact_id)
            {
                artifact = Some(artifact_arg(ctx, &spec.artifact_id).await.map_err(gql)?);
            }
            let Some(artifact) = &artifact else {
                continue;
            };
            edges.push(FileUploadEdge {
                node: file_upload(ctx, artifact, spec.name, &spec.md5, spec.upload_parts_input)
                    .await
                    .map_err(gql)?,
            });
        }
        Ok(CreateArtifactFilesPayload {
            files: FileUploadConnection { edges },
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Joins the parts of a multipart upload into the content they make up.
    async fn complete_multipart_upload_artifact(
        &self,
        ctx: &Context<'_>,
        input: CompleteMultipartUploadArtifactInput,
    ) -> Result<CompleteMultipartUploadArtifactPayload> {
        complete_multipart(ctx, input).await.map_err(gql)
    }

    /// Makes a PENDING version COMMITTED (idempotent: committing again returns it).
    async fn commit_artifact(
        &self,
        ctx: &Context<'_>,
        input: CommitArtifactInput,
    ) -> Result<ArtifactPayload> {
        let artifact = artifact_arg(ctx, &input.artifact_id).await.map_err(gql)?;
        let artifact = commit(ctx, artifact).await.map_err(gql)?;
        Ok(ArtifactPayload {
            artifact: Some(Artifact(artifact)),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Records that a run used a version (its input).
    async fn use_artifact(
        &self,
        ctx: &Context<'_>,
        input: UseArtifactInput,
    ) -> Result<ArtifactPayload> {
        let _ = (
            input.used_as,
            input.artifact_entity_name,
            input.artifact_project_name,
        );
        let artifact = artifact_arg(ctx, &input.artifact_id).await.map_err(gql)?;
        let run = super::mutation::named_run(
            ctx,
            input.entity_name.as_deref(),
            input.project_name.as_deref(),
            input.run_name.as_deref(),
        )
        .await
        .map_err(gql)?;
        let mut tx = session(ctx).app.db.write().await.map_err(gql)?;
        db::artifacts::record_use(tx.conn(), run.id, artifact.id)
            .await
            .map_err(gql)?;
        tx.commit().await.map_err(gql)?;
        Ok(ArtifactPayload {
            artifact: Some(Artifact(artifact)),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Changes a version's description, metadata, tags, time-to-live or aliases.
    async fn update_artifact(
        &self,
        ctx: &Context<'_>,
        input: UpdateArtifactInput,
    ) -> Result<ArtifactPayload> {
        let _ = input.labels;
        let artifact = artifact_arg(ctx, &input.artifact_id).await.map_err(gql)?;
        let metadata = input
            .metadata
            .map(|m| super::mutation::json_object("metadata", &m))
            .transpose()
            .map_err(gql)?;
        let tags = match (input.tags_to_add, input.tags_to_delete) {
            (None, None) => None,
            (add, delete) => {
                let mut tags: Vec<String> =
                    serde_json::from_str(&artifact.tags).unwrap_or_default();
                for tag in delete.unwrap_or_default() {
                    tags.retain(|t| *t != tag.tag_name);
                }
                for tag in add.unwrap_or_default() {
                    let _ = (tag.tag_category_name, tag.attributes);
                    auth::check_name("tag", &tag.tag_name).map_err(gql)?;
                    if !tags.contains(&tag.tag_name) {
                        tags.push(tag.tag_name);
                    }
                }
                Some(serde_json::to_string(&tags).map_err(|e| bad(e.to_string()))?)
            }
        };
        let update = db::artifacts::ArtifactUpdate {
            description: input.description.as_deref(),
            metadata: metadata.as_deref(),
            tags: tags.as_deref(),
            ttl_seconds: input
                .ttl_duration_seconds
                .map(|t| (t.0 >= 0).then_some(t.0)),
        };
        let mut tx = session(ctx).app.db.write().await.map_err(gql)?;
        db::artifacts::update_artifact(tx.conn(), artifact.id, &update)
            .await
            .map_err(gql)?;
        if let Some(aliases) = input.aliases {
            let mut names = Vec::new();
            for alias in aliases {
                check_alias(&alias.alias).map_err(gql)?;
                names.push(alias.alias);
            }
            db::artifacts::set_aliases(tx.conn(), artifact.collection.id, artifact.id, &names)
                .await
                .map_err(gql)?;
        }
        let artifact = db::artifacts::artifact_by_id(tx.conn(), artifact.id)
            .await
            .map_err(gql)?;
        tx.commit().await.map_err(gql)?;
        Ok(ArtifactPayload {
            artifact: artifact.map(Artifact),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Puts aliases on a version (`artifact.aliases.append(…); artifact.save()`), moving
    /// each from the version that held it.
    async fn add_aliases(
        &self,
        ctx: &Context<'_>,
        input: AddAliasesInput,
    ) -> Result<AliasesPayload> {
        change_aliases(ctx, &input.artifact_id, &input.aliases, true)
            .await
            .map_err(gql)?;
        Ok(AliasesPayload {
            success: true,
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Takes aliases off a version (`latest` moves only by itself: removing it is refused).
    async fn delete_aliases(
        &self,
        ctx: &Context<'_>,
        input: DeleteAliasesInput,
    ) -> Result<AliasesPayload> {
        change_aliases(ctx, &input.artifact_id, &input.aliases, false)
            .await
            .map_err(gql)?;
        Ok(AliasesPayload {
            success: true,
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Deletes a version (`artifact.delete()`): refused while it has aliases unless
    /// `deleteAliases`; `latest` then moves to the newest version left.
    async fn delete_artifact(
        &self,
        ctx: &Context<'_>,
        input: DeleteArtifactInput,
    ) -> Result<ArtifactPayload> {
        let artifact = artifact_arg(ctx, &input.artifact_id).await.map_err(gql)?;
        let mut tx = session(ctx).app.db.write().await.map_err(gql)?;
        let aliases = db::artifacts::aliases_of(tx.conn(), artifact.id)
            .await
            .map_err(gql)?;
        if !aliases.is_empty() && input.delete_aliases != Some(true) {
            return Err(bad(format!(
                "cannot delete {}: it has aliases ({}); delete them first or pass \
                 delete_aliases=True",
                artifact.path(),
                aliases.join(", ")
            )));
        }
        db::artifacts::delete_version(tx.conn(), &artifact)
            .await
            .map_err(gql)?;
        tx.commit().await.map_err(gql)?;
        Ok(ArtifactPayload {
            artifact: Some(Artifact(artifact)),
            client_mutation_id: input.client_mutation_id,
        })
    }
}

/// `addAliases` (`add`) or `deleteAliases` on version `id`. Each alias must name the
/// version's own collection (cairn has no portfolios to alias into); `latest` is never
/// removed by hand.
async fn change_aliases(
    ctx: &Context<'_>,
    id: &ID,
    aliases: &[ArtifactCollectionAliasInput],
    add: bool,
) -> Result<(), ApiError> {
    let artifact = artifact_arg(ctx, id).await?;
    let c = &artifact.collection;
    let mut names = Vec::with_capacity(aliases.len());
    for alias in aliases {
        let target = (
            alias.entity_name.as_str(),
            alias.project_name.as_str(),
            alias.artifact_collection_name.as_str(),
        );
        if target
            != (
                c.entity_name.as_str(),
                c.project_name.as_str(),
                c.name.as_str(),
            )
        {
            return Err(ApiError::BadRequest(format!(
                "alias {:?} names collection {}/{}/{}, not the one of {}",
                alias.alias,
                target.0,
                target.1,
                target.2,
                artifact.path()
            )));
        }
        if add {
            check_alias(&alias.alias)?;
        } else if alias.alias == "latest" {
            return Err(ApiError::BadRequest(format!(
                "the alias latest of {} moves by itself; it cannot be removed",
                artifact.path()
            )));
        }
        names.push(alias.alias.clone());
    }
    let (collection, version) = (artifact.collection.id, artifact.id);
    let mut tx = session(ctx).app.db.write().await?;
    if add {
        db::artifacts::set_aliases(tx.conn(), collection, version, &names).await?;
    } else {
        db::artifacts::remove_aliases(tx.conn(), collection, version, &names).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn create_artifact(
    ctx: &Context<'_>,
    input: CreateArtifactInput,
) -> Result<CreateArtifactPayload, ApiError> {
    let s = session(ctx);
    let _ = (
        input.artifact_collection_names,
        input.digest_algorithm,
        input.labels,
        input.distributed_id,
        input.storage_region,
        input.enable_digest_deduplication,
    );
    auth::check_name("artifact type", &input.artifact_type_name)?;
    auth::check_name("artifact", &input.artifact_collection_name)?;
    if input.artifact_collection_name.contains(':') {
        return Err(ApiError::BadRequest(format!(
            "artifact name {:?} contains `:`",
            input.artifact_collection_name
        )));
    }
    let aliases = alias_names(input.aliases)?;
    let metadata = input
        .metadata
        .map(|m| super::mutation::json_object("metadata", &m))
        .transpose()?;
    let tags: Vec<String> = input.tags.map(|t| tag_names(&t.0)).unwrap_or_default();
    for text in [&input.description, &metadata].into_iter().flatten() {
        if text.contains('\0') {
            return Err(ApiError::BadRequest(
                "artifact description or metadata contains a NUL character".to_owned(),
            ));
        }
    }
    let mut tx = s.app.db.write().await?;
    let entity = auth::writable_entity(tx.conn(), &s.viewer, input.entity_name.as_deref()).await?;
    let project_name = input
        .project_name
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
    auth::check_name("project", &project_name)?;
    let project = db::runs::ensure_project(tx.conn(), entity.id, &project_name).await?;
    let collection = db::artifacts::ensure_collection(
        tx.conn(),
        project.id,
        &input.artifact_collection_name,
        &input.artifact_type_name,
        input.sequence_client_id.as_ref().map(|id| id.as_str()),
    )
    .await?;
    if collection.type_name != input.artifact_type_name {
        return Err(ApiError::BadRequest(format!(
            "artifact {}/{}/{} has type {:?}, not {:?}",
            entity.name,
            project.name,
            collection.name,
            collection.type_name,
            input.artifact_type_name
        )));
    }
    let run = match input.run_name.as_deref().filter(|r| !r.is_empty()) {
        Some(name) => db::runs::run_by_name(tx.conn(), project.id, name).await?,
        None => None,
    };
    let latest = db::artifacts::latest_committed(tx.conn(), collection.id).await?;
    let id = match latest.filter(|l| l.digest == input.digest) {
        Some(same) => {
            db::artifacts::set_aliases(tx.conn(), collection.id, same.id, &aliases).await?;
            same.id
        }
        None => {
            let new = NewArtifact {
                digest: input.digest,
                description: input.description,
                metadata,
                tags: serde_json::to_string(&tags).unwrap_or_else(|_| "[]".to_owned()),
                history_step: input.history_step.map(|h| h.0),
                ttl_seconds: input.ttl_duration_seconds.map(|t| t.0).filter(|t| *t >= 0),
                client_id: input.client_id.map(|c| c.0),
                run_id: run.map(|r| r.id),
                aliases: serde_json::to_string(&aliases).unwrap_or_else(|_| "[]".to_owned()),
            };
            db::artifacts::create_artifact(tx.conn(), collection.id, &new).await?
        }
    };
    let artifact = db::artifacts::artifact_by_id(tx.conn(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("artifact {id} vanished")))?;
    tx.commit().await?;
    Ok(CreateArtifactPayload {
        artifact: Artifact(artifact),
        client_mutation_id: input.client_mutation_id,
    })
}

/// Tag names from W&B's tag inputs (`[{"tagName": …}]`) or plain strings.
fn tag_names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(s.clone()),
                    other => other
                        .get("tagName")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The upload answer for one file of `artifact`.
async fn file_upload(
    ctx: &Context<'_>,
    artifact: &ArtifactRow,
    name: String,
    md5_b64: &str,
    parts: Option<Vec<UploadPartsInput>>,
) -> Result<FileUpload, ApiError> {
    let s = session(ctx);
    let path = artifact.path();
    blob::check_file_name(&name)
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
    let mut tx = s.app.db.write().await?;
    let known = db::artifacts::announce_blob(tx.conn(), entity, &hex, artifact.id).await?;
    let mut multipart = None;
    if !known.stored
        && let Some(parts) = parts.filter(|p| !p.is_empty())
    {
        let count = parts.len() as i64;
        // The same content started before (a failed or cut-off upload): go on with it, and
        // say which parts are already stored.
        let (upload_id, stored) =
            match db::artifacts::upload_of(tx.conn(), entity, &hex, count).await? {
                Some(id) => {
                    let stored = db::artifacts::stored_parts(tx.conn(), &id).await?;
                    (id, stored)
                }
                None => {
                    use rand::Rng as _;
                    let id = hex::encode(rand::rng().random::<[u8; 16]>());
                    let row = db::artifacts::UploadRow {
                        entity_id: entity,
                        md5_hex: hex.clone(),
                        parts: count,
                    };
                    db::artifacts::add_upload(tx.conn(), &id, &row).await?;
                    (id, Default::default())
                }
            };
        let mut urls = Vec::with_capacity(parts.len());
        for part in parts {
            let number = part.part_number.0;
            if !(1..=10_000).contains(&number) || hex::decode(&part.hex_md5).is_err() {
                return Err(ApiError::BadRequest(format!(
                    "artifact {path}: file {name:?} has a bad part {number}"
                )));
            }
            let part_key = blob::artifact_part_key(entity, &upload_id, number);
            let stored_hex_md5 = stored
                .get(&number)
                .filter(|md5| md5.eq_ignore_ascii_case(&part.hex_md5))
                .cloned();
            urls.push(UploadUrlPart {
                part_number: number,
                upload_url: s.app.signed_url(&s.base_url, "PUT", &part_key),
                stored_hex_md5,
            });
        }
        multipart = Some(UploadMultipartUrls {
            upload_id,
            upload_url_parts: urls,
        });
    }
    tx.commit().await?;
    Ok(FileUpload {
        id: ID(format!("{}:{name}", artifact.id)),
        storage_path: key.clone(),
        upload_url: (!known.stored).then(|| s.app.signed_url(&s.base_url, "PUT", &key)),
        upload_headers: Vec::new(),
        upload_multipart_urls: multipart,
        artifact: ArtifactIdOnly {
            id: encode_id("Artifact", known.birth_artifact_id),
        },
        name,
    })
}

async fn complete_multipart(
    ctx: &Context<'_>,
    input: CompleteMultipartUploadArtifactInput,
) -> Result<CompleteMultipartUploadArtifactPayload, ApiError> {
    let s = session(ctx);
    let _ = (input.artifact_id, input.storage_path);
    let upload = {
        let mut conn = s.app.db.conn().await?;
        let upload = db::artifacts::upload(&mut conn, &input.upload_id)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("multipart upload {} not found", input.upload_id))
            })?;
        check_entity(ctx, &mut conn, upload.entity_id).await?;
        upload
    };
    let part_keys: Vec<String> = (1..=upload.parts)
        .map(|n| blob::artifact_part_key(upload.entity_id, &input.upload_id, n))
        .collect();
    let finish = |tx_blobs: &blob::Blobs| {
        let keys = part_keys.clone();
        let blobs = tx_blobs.clone();
        async move {
            for key in keys {
                if let Err(err) = blobs.delete(&key).await {
                    tracing::warn!(%key, error = %err, "a multipart part remains in storage");
                }
            }
        }
    };
    if input.complete_multipart_action == CompleteMultipartAction::Abort {
        finish(&s.app.blobs).await;
        let mut tx = s.app.db.write().await?;
        db::artifacts::remove_upload(tx.conn(), &input.upload_id).await?;
        tx.commit().await?;
        return Ok(CompleteMultipartUploadArtifactPayload {
            digest: None,
            client_mutation_id: input.client_mutation_id,
        });
    }
    let mut completed: Vec<i64> = input
        .completed_parts
        .iter()
        .map(|p| p.part_number.0)
        .collect();
    completed.sort_unstable();
    if completed != (1..=upload.parts).collect::<Vec<_>>() {
        return Err(ApiError::BadRequest(format!(
            "multipart upload {}: parts 1..={} expected, got {completed:?}",
            input.upload_id, upload.parts
        )));
    }
    let staging = blob::artifact_staging_key(upload.entity_id);
    let stored = s
        .app
        .blobs
        .concat(&part_keys, &staging)
        .await
        .map_err(|err| match err {
            blob::BlobError::NotFound(part) => ApiError::BadRequest(format!(
                "multipart upload {}: part {part} was never uploaded",
                input.upload_id
            )),
            other => other.into(),
        })?;
    let got = stored.md5_hex();
    if got != upload.md5_hex {
        let _ = s.app.blobs.delete(&staging).await;
        return Err(ApiError::BadRequest(format!(
            "multipart upload {}: the joined parts have MD5 {got}, the file announced {}",
            input.upload_id, upload.md5_hex
        )));
    }
    let key = blob::artifact_blob_key(upload.entity_id, &upload.md5_hex);
    s.app.blobs.rename(&staging, &key).await?;
    let mut tx = s.app.db.write().await?;
    db::artifacts::blob_stored(
        tx.conn(),
        upload.entity_id,
        &upload.md5_hex,
        stored.size as i64,
    )
    .await?;
    db::artifacts::remove_upload(tx.conn(), &input.upload_id).await?;
    tx.commit().await?;
    finish(&s.app.blobs).await;
    Ok(CompleteMultipartUploadArtifactPayload {
        digest: Some(stored.md5),
        client_mutation_id: input.client_mutation_id,
    })
}

/// Reads `artifact`'s manifest, checks it, and commits the version.
async fn commit(ctx: &Context<'_>, artifact: ArtifactRow) -> Result<ArtifactRow, ApiError> {
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
    let s = session(ctx);
    let key = artifact.manifest_key.clone().ok_or_else(|| {
        ApiError::BadRequest(format!("artifact {path}: no manifest was uploaded"))
    })?;
    let bytes = read_manifest(&s.app.blobs, &key, &path).await?;
    let entries = parse_manifest(&bytes, &path)?;
    let digest = content_digest(entries.iter().map(|(e, d)| (e.path.as_str(), d.as_str())));
    if digest != artifact.digest {
        tracing::warn!(artifact = %path, client = %artifact.digest, server = %digest,
            "the client's artifact digest differs from its manifest's; keeping the manifest's");
    }
    let entity = artifact.collection.entity_id;
    let mut tx = s.app.db.write().await?;
    let mut rows = Vec::with_capacity(entries.len());
    for (mut entry, _) in entries {
        if let Some(md5) = &entry.md5 {
            let hex = blob::md5_hex(md5).unwrap_or_default();
            let known = db::artifacts::blob(tx.conn(), entity, &hex).await?;
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
    let aliases: Vec<String> = serde_json::from_str(&artifact.pending_aliases)
        .unwrap_or_else(|_| vec!["latest".to_owned()]);
    db::artifacts::commit(tx.conn(), &artifact, &rows, &digest, &aliases).await?;
    let committed = db::artifacts::artifact_by_id(tx.conn(), artifact.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("artifact {path} vanished")))?;
    tx.commit().await?;
    tracing::info!(artifact = %committed.path(), files = committed.file_count, "artifact committed");
    Ok(committed)
}

async fn read_manifest(blobs: &blob::Blobs, key: &str, path: &str) -> Result<Vec<u8>, ApiError> {
    let (size, mut stream) = blobs.get(key).await.map_err(|err| match err {
        blob::BlobError::NotFound(_) => {
            ApiError::BadRequest(format!("artifact {path}: its manifest was never uploaded"))
        }
        other => other.into(),
    })?;
    if size > MAX_MANIFEST_BYTES {
        return Err(ApiError::BadRequest(format!(
            "artifact {path}: manifest of {size} bytes is larger than {MAX_MANIFEST_BYTES}"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| blob::BlobError::Store {
            key: key.to_owned(),
            source,
        })?;
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_digest_matches_wandb() {
        let digest = content_digest(
            [
                ("b.txt", "hprAQUrptf256Thx/DV7/g=="),
                ("a.txt", "t/DFCvY1IvFkGHDVa9VgAg=="),
            ]
            .into_iter(),
        );
        assert_eq!(digest, "43502a9e1a5f21586d4b3099d3d214e1");
    }

    #[test]
    fn manifests_are_checked() {
        let ok = br#"{"version":1,"contents":{"a.txt":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","size":8,"birthArtifactID":"QXJ0aWZhY3Q6djE6Mg=="},"r":{"digest":"etag","ref":"s3://b/k","size":3}}}"#;
        let entries = parse_manifest(ok, "a").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0.birth_artifact_id, Some(2));
        assert_eq!(entries[1].0.md5, None);
        for bad in [
            &br#"{"contents":{"../x":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","size":1}}}"#[..],
            br#"{"contents":{"/etc/passwd":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","size":1}}}"#,
            br#"{"contents":{"a\u0000b":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","size":1}}}"#,
            br#"{"contents":{"a":{"digest":"zz","size":1}}}"#,
            br#"{"contents":[]}"#,
            b"not json",
        ] {
            assert!(
                parse_manifest(bad, "a").is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn aliases_are_checked() {
        assert!(check_alias("best").is_ok());
        assert!(check_alias("v1.2").is_ok());
        for bad in ["", "v3", "a:b", "a/b", "x\0"] {
            assert!(check_alias(bad).is_err(), "{bad:?}");
        }
    }
}
