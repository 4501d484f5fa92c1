//! The artifact mutations of W&B's save flow, as W&B
//! names their inputs and payloads: `createArtifact` → `createArtifactManifest` (twice) →
//! `createArtifactFiles` (a null upload URL for content the entity already stores; part
//! URLs for multipart files) → PUTs to the signed URLs → `completeMultipartUploadArtifact`
//! → `commitArtifact`. Also `useArtifact` (lineage), `updateArtifact`, `addAliases`,
//! `deleteAliases` and `deleteArtifact`.
//!
//! Each resolver turns its input into plain values, calls the rule in `crate::artifacts`
//! (where dedup, multipart bookkeeping, commit checks, numbering and aliases live), and
//! answers with the payload, signing the storage keys the rule hands back. Inputs W&B
//! sends that cairn has no use for are accepted and dropped (`let _ = …`).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use serde_json::Value;

use super::args::{artifact_arg, encode_id, named_run};
use super::artifacts::{Artifact, ArtifactDigestAlgorithm};
use super::error::Result;
use super::request::session;
use super::scalars::{Int64, JsonString};
use crate::artifacts::uploads::{self, FilePlan};
use crate::artifacts::{aliases, manifest, versions};
use crate::db::ArtifactRow;
use crate::error::ApiError;

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
    /// Absent from clients before 0.19's core, which name the collection only in
    /// `artifactCollectionNames` (the first is the version's collection; W&B links the
    /// version into the others, cairn has only the first).
    artifact_collection_name: Option<String>,
    artifact_collection_names: Option<Vec<String>>,
    digest: String,
    digest_algorithm: Option<ArtifactDigestAlgorithm>,
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

/// Where uploaded artifact files are stored in W&B's buckets; cairn addresses content
/// by MD5 either way.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArtifactStorageLayout {
    V1,
    V2,
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
    /// The manifest's file name (`wandb_manifest.json`).
    name: String,
    display_name: String,
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
    storage_layout: Option<ArtifactStorageLayout>,
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
    /// The file's base name.
    display_name: String,
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

/// The alias names of `aliasInput`s (each names its collection, which is the version's).
fn alias_names(inputs: Option<Vec<ArtifactAliasInput>>) -> Option<Vec<String>> {
    inputs.map(|inputs| {
        inputs
            .into_iter()
            .map(|input| {
                let _ = input.artifact_collection_name;
                input.alias
            })
            .collect()
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

impl From<&ArtifactCollectionAliasInput> for aliases::Target {
    fn from(input: &ArtifactCollectionAliasInput) -> aliases::Target {
        aliases::Target {
            alias: input.alias.clone(),
            entity: input.entity_name.clone(),
            project: input.project_name.clone(),
            collection: input.artifact_collection_name.clone(),
        }
    }
}

/// The answer for one announced file, with signed upload URLs.
fn file_upload(
    ctx: &Context<'_>,
    artifact: &ArtifactRow,
    name: String,
    plan: FilePlan,
) -> FileUpload {
    let s = session(ctx);
    let put = |key: &str| s.app.signed_url(&s.base_url, "PUT", key);
    FileUpload {
        id: ID(format!("{}:{name}", artifact.id)),
        upload_url: plan.upload.then(|| put(&plan.key)),
        upload_headers: Vec::new(),
        upload_multipart_urls: plan.multipart.map(|m| UploadMultipartUrls {
            upload_id: m.upload_id,
            upload_url_parts: m
                .parts
                .into_iter()
                .map(|part| UploadUrlPart {
                    part_number: part.number,
                    upload_url: put(&part.key),
                    stored_hex_md5: part.stored_hex_md5,
                })
                .collect(),
        }),
        artifact: ArtifactIdOnly {
            id: encode_id("Artifact", plan.birth_artifact_id),
        },
        storage_path: plan.key,
        display_name: name.rsplit('/').next().unwrap_or(&name).to_owned(),
        name,
    }
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
        let collection = match (
            input.artifact_collection_name,
            input.artifact_collection_names,
        ) {
            (Some(name), _) => name,
            (None, Some(names)) if !names.is_empty() => names[0].clone(),
            _ => {
                return Err(ApiError::BadRequest(
                    "createArtifact needs artifactCollectionName or artifactCollectionNames"
                        .to_owned(),
                )
                .into());
            }
        };
        let _ = (
            input.digest_algorithm,
            input.labels,
            input.distributed_id,
            input.storage_region,
            input.enable_digest_deduplication,
        );
        let s = session(ctx);
        let new = versions::NewVersion {
            entity: input.entity_name,
            project: input.project_name,
            run: input.run_name,
            type_name: input.artifact_type_name,
            collection,
            collection_client_id: input.sequence_client_id.map(|id| id.0),
            digest: input.digest,
            description: input.description,
            metadata: input.metadata.map(|m| m.0),
            aliases: alias_names(input.aliases).unwrap_or_default(),
            tags: input.tags.map(|t| tag_names(&t.0)).unwrap_or_default(),
            history_step: input.history_step.map(|h| h.0),
            ttl_seconds: input.ttl_duration_seconds.map(|t| t.0),
            client_id: input.client_id.map(|c| c.0),
        };
        let artifact = versions::create(&s.app.db, &s.viewer, new).await?;
        Ok(CreateArtifactPayload {
            artifact: Artifact(artifact),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Reserves (first call) and then hands out the upload URL of a version's manifest.
    async fn create_artifact_manifest(
        &self,
        ctx: &Context<'_>,
        input: CreateArtifactManifestInput,
    ) -> Result<CreateArtifactManifestPayload> {
        let artifact = artifact_arg(ctx, &input.artifact_id).await?;
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
            return Err(ApiError::BadRequest(format!(
                "artifact {}: only FULL manifests are supported",
                artifact.path()
            ))
            .into());
        }
        let s = session(ctx);
        let key = manifest::reserve(&s.app.db, &artifact, &input.name, input.digest).await?;
        let id = encode_id("ArtifactManifest", artifact.id);
        Ok(CreateArtifactManifestPayload {
            artifact_manifest: ArtifactManifestRef {
                id: id.clone(),
                file: ManifestUpload {
                    id,
                    display_name: input.name.clone(),
                    name: input.name,
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
        let db = &session(ctx).app.db;
        let mut edges = Vec::with_capacity(input.artifact_files.len());
        let mut artifact: Option<ArtifactRow> = None;
        for spec in input.artifact_files {
            let _ = (spec.artifact_manifest_id, spec.mimetype, spec.digest);
            if artifact
                .as_ref()
                .is_none_or(|a| encode_id("Artifact", a.id) != spec.artifact_id)
            {
                artifact = Some(artifact_arg(ctx, &spec.artifact_id).await?);
            }
            let Some(artifact) = &artifact else {
                continue;
            };
            let parts = spec.upload_parts_input.map(|parts| {
                parts
                    .into_iter()
                    .map(|p| uploads::Part {
                        number: p.part_number.0,
                        hex_md5: p.hex_md5,
                    })
                    .collect()
            });
            let plan = uploads::announce_file(db, artifact, &spec.name, &spec.md5, parts).await?;
            edges.push(FileUploadEdge {
                node: file_upload(ctx, artifact, spec.name, plan),
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
        let _ = (input.artifact_id, input.storage_path);
        let s = session(ctx);
        let finish = match input.complete_multipart_action {
            CompleteMultipartAction::Abort => uploads::Finish::Abort,
            CompleteMultipartAction::Complete => uploads::Finish::Complete {
                parts: input
                    .completed_parts
                    .iter()
                    .map(|p| p.part_number.0)
                    .collect(),
            },
        };
        let digest =
            uploads::finish_multipart(&s.app.db, &s.app.blobs, &s.viewer, &input.upload_id, finish)
                .await?;
        Ok(CompleteMultipartUploadArtifactPayload {
            digest,
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Makes a PENDING version COMMITTED (idempotent: committing again returns it).
    async fn commit_artifact(
        &self,
        ctx: &Context<'_>,
        input: CommitArtifactInput,
    ) -> Result<ArtifactPayload> {
        let artifact = artifact_arg(ctx, &input.artifact_id).await?;
        let s = session(ctx);
        let artifact = versions::commit(&s.app.db, &s.app.blobs, artifact).await?;
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
        let artifact = artifact_arg(ctx, &input.artifact_id).await?;
        let run = named_run(
            ctx,
            input.entity_name.as_deref(),
            input.project_name.as_deref(),
            input.run_name.as_deref(),
        )
        .await?;
        versions::record_use(&session(ctx).app.db, run.id, &artifact).await?;
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
        let artifact = artifact_arg(ctx, &input.artifact_id).await?;
        let tag_names = |tags: Option<Vec<TagInput>>| {
            tags.map(|tags| {
                tags.into_iter()
                    .map(|tag| {
                        let _ = (tag.tag_category_name, tag.attributes);
                        tag.tag_name
                    })
                    .collect()
            })
        };
        let update = versions::Update {
            description: input.description,
            metadata: input.metadata.map(|m| m.0),
            tags_to_add: tag_names(input.tags_to_add),
            tags_to_delete: tag_names(input.tags_to_delete),
            ttl_seconds: input.ttl_duration_seconds.map(|t| t.0),
            aliases: alias_names(input.aliases),
        };
        let artifact = versions::update(&session(ctx).app.db, &artifact, update).await?;
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
        let artifact = artifact_arg(ctx, &input.artifact_id).await?;
        let targets: Vec<aliases::Target> = input.aliases.iter().map(Into::into).collect();
        aliases::add(&session(ctx).app.db, &artifact, &targets).await?;
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
        let artifact = artifact_arg(ctx, &input.artifact_id).await?;
        let targets: Vec<aliases::Target> = input.aliases.iter().map(Into::into).collect();
        aliases::remove(&session(ctx).app.db, &artifact, &targets).await?;
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
        let artifact = artifact_arg(ctx, &input.artifact_id).await?;
        versions::delete(
            &session(ctx).app.db,
            &artifact,
            input.delete_aliases == Some(true),
        )
        .await?;
        Ok(ArtifactPayload {
            artifact: Some(Artifact(artifact)),
            client_mutation_id: input.client_mutation_id,
        })
    }
}
