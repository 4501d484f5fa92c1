//! Artifacts as the SDK and `wandb.Api()` read them:
//! versions (`Artifact`), collections (`ArtifactSequence`, behind W&B's `ArtifactCollection`
//! interface), aliases, memberships (a version seen through a collection and an alias or
//! `vN`), types, files with signed download URLs, and lineage.
//!
//! Every path into an artifact checks that the viewer may read its entity: through a
//! project (already checked by `args::find_project`) or through an id
//! (`args::readable_artifact`).
//! Only COMMITTED versions are visible by name; a PENDING one is reachable by id only
//! (its creator's `wait()` polls it).

use async_graphql::{Context, Enum, ID, Interface, Object, SimpleObject, Union};
use sqlx::AnyConnection;

use super::args::{self, encode_id};
use super::error::Result;
use super::files::{FileConnection, FileEdge, StoredFile};
use super::paging::{PageInfo, cursor, decode_cursor, page};
use super::request::session;
use super::run::Run;
use super::scalars::JsonString;
use super::types::{Project, User};
use super::version_pages::VersionedArtifactConnection;
use crate::blob;
use crate::db::{self, ArtifactRow, CollectionRow, EntryRow, FileRow};
use crate::error::ApiError;

/// Entries per page of `files` when the client names no count.
const DEFAULT_FILE_PAGE: i64 = 50;
/// Largest page of `files`.
const MAX_FILE_PAGE: i64 = 10_000;
/// Names one `files(names:)` may look up.
const MAX_NAMED_FILES: usize = 10_000;

/// How a version's content digest is computed: cairn stores MD5 manifests
/// (`MANIFEST_XXH128` is W&B's newer algorithm, accepted and not used).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArtifactDigestAlgorithm {
    #[graphql(name = "MANIFEST_MD5")]
    ManifestMd5,
    #[graphql(name = "MANIFEST_XXH128")]
    ManifestXxh128,
}

/// A version of an artifact.
pub(super) struct Artifact(pub ArtifactRow);

#[Object]
impl Artifact {
    async fn id(&self) -> ID {
        encode_id("Artifact", self.0.id)
    }
    async fn artifact_sequence(&self) -> ArtifactSequence {
        ArtifactSequence(self.0.collection.clone())
    }
    async fn version_index(&self) -> Option<i64> {
        self.0.version_index
    }
    async fn artifact_type(&self) -> ArtifactType {
        ArtifactType::of(&self.0.collection)
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn metadata(&self) -> Option<JsonString> {
        self.0.metadata.clone().map(JsonString)
    }
    /// -1: no time-to-live.
    async fn ttl_duration_seconds(&self) -> i64 {
        self.0.ttl_seconds.unwrap_or(-1)
    }
    async fn ttl_is_inherited(&self) -> bool {
        false
    }
    async fn tags(&self) -> Vec<Tag> {
        serde_json::from_str::<Vec<String>>(&self.0.tags)
            .unwrap_or_default()
            .into_iter()
            .map(|name| Tag {
                id: ID(name.clone()),
                name,
            })
            .collect()
    }
    async fn history_step(&self) -> Option<i64> {
        self.0.history_step
    }
    async fn state(&self) -> &str {
        &self.0.state
    }
    async fn size(&self) -> i64 {
        self.0.size
    }
    async fn digest(&self) -> &str {
        &self.0.digest
    }
    async fn digest_algorithm(&self) -> ArtifactDigestAlgorithm {
        ArtifactDigestAlgorithm::ManifestMd5
    }
    async fn commit_hash(&self) -> Option<String> {
        (self.0.state == "COMMITTED").then(|| self.0.digest.chars().take(12).collect())
    }
    async fn file_count(&self) -> i64 {
        self.0.file_count
    }
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    async fn updated_at(&self) -> Option<&str> {
        Some(&self.0.updated_at)
    }
    async fn aliases(&self, ctx: &Context<'_>) -> Result<Vec<ArtifactAlias>> {
        aliases(ctx, &self.0).await
    }
    /// The manifest file, once uploaded.
    async fn current_manifest(&self) -> Option<ArtifactManifest> {
        let key = self.0.manifest_key.clone()?;
        Some(ArtifactManifest {
            id: encode_id("ArtifactManifest", self.0.id),
            key,
        })
    }
    /// The run that logged this version.
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<Creator>> {
        let Some(run) = self.0.run_id else {
            return Ok(None);
        };
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(db::runs::run_by_id(&mut conn, run)
            .await?
            .map(|r| Creator::Run(Run(r))))
    }
    /// The runs that used this version as an input.
    async fn used_by(&self, ctx: &Context<'_>) -> Result<RunUsageConnection> {
        let mut conn = session(ctx).app.db.conn().await?;
        let mut edges = Vec::new();
        for id in db::artifacts::lineage::users_of(&mut conn, self.0.id).await? {
            if let Some(run) = db::runs::run_by_id(&mut conn, id).await? {
                edges.push(RunUsageEdge { node: Run(run) });
            }
        }
        Ok(RunUsageConnection { edges })
    }
    async fn files(
        &self,
        ctx: &Context<'_>,
        names: Option<Vec<String>>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Result<FileConnection> {
        file_page(ctx, &self.0, names, after.as_deref(), first).await
    }
}

/// Who made a version: a run (W&B also has users, for versions made outside runs).
// Built once per answer and dropped: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Union)]
pub(super) enum Creator {
    Run(Run),
    User(User),
}

#[derive(SimpleObject)]
pub(super) struct RunUsageEdge {
    node: Run,
}

#[derive(SimpleObject)]
pub(super) struct RunUsageConnection {
    edges: Vec<RunUsageEdge>,
}

#[derive(SimpleObject)]
pub(super) struct Tag {
    id: ID,
    name: String,
}

#[derive(SimpleObject)]
pub(super) struct TagEdge {
    node: Tag,
}

#[derive(SimpleObject)]
pub(super) struct TagConnection {
    edges: Vec<TagEdge>,
}

/// A version's `wandb_manifest.json`.
pub(super) struct ArtifactManifest {
    id: ID,
    key: String,
}

#[Object]
impl ArtifactManifest {
    async fn id(&self) -> &ID {
        &self.id
    }
    async fn file(&self) -> ManifestFile {
        ManifestFile {
            key: self.key.clone(),
        }
    }
}

pub(super) struct ManifestFile {
    key: String,
}

#[Object]
impl ManifestFile {
    async fn id(&self) -> ID {
        ID(self.key.clone())
    }
    /// A signed, expiring download URL.
    async fn direct_url(&self, ctx: &Context<'_>) -> String {
        let s = session(ctx);
        s.app.signed_url(&s.base_url, "GET", &self.key)
    }
}

/// The fields every artifact collection has (W&B also has portfolios; cairn has sequences).
// The macro's `field(...)` entries repeat `ty = …` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface)]
#[graphql(
    field(name = "id", ty = "ID"),
    field(name = "name", ty = "&str"),
    field(name = "description", ty = "Option<&str>"),
    field(name = "created_at", ty = "&str"),
    field(name = "updated_at", ty = "Option<&str>"),
    field(name = "project", ty = "Result<Option<Project>>"),
    field(name = "default_artifact_type", ty = "ArtifactType"),
    field(name = "tags", ty = "TagConnection"),
    field(
        name = "aliases",
        ty = "Result<AliasConnection>",
        arg(name = "after", ty = "Option<String>"),
        arg(name = "first", ty = "Option<i32>")
    )
)]
pub(super) enum ArtifactCollection {
    ArtifactSequence(ArtifactSequence),
}

/// A collection: the versions of one artifact name in a project.
pub(super) struct ArtifactSequence(pub CollectionRow);

#[Object]
impl ArtifactSequence {
    async fn id(&self) -> ID {
        encode_id("ArtifactSequence", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    async fn updated_at(&self) -> Option<&str> {
        Some(&self.0.created_at)
    }
    async fn project(&self, ctx: &Context<'_>) -> Result<Option<Project>> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(db::runs::project_by_id(&mut conn, self.0.project_id)
            .await?
            .map(Project))
    }
    async fn default_artifact_type(&self) -> ArtifactType {
        ArtifactType::of(&self.0)
    }
    async fn tags(&self) -> TagConnection {
        TagConnection { edges: Vec::new() }
    }
    /// The newest committed version.
    async fn latest_artifact(&self, ctx: &Context<'_>) -> Result<Option<Artifact>> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(
            db::artifacts::versions::latest_committed(&mut conn, self.0.id)
                .await?
                .map(Artifact),
        )
    }
    /// The version an alias or `vN` names.
    async fn artifact_membership(
        &self,
        ctx: &Context<'_>,
        alias_name: Option<String>,
    ) -> Result<Option<Membership>> {
        let mut conn = session(ctx).app.db.conn().await?;
        let alias = alias_name.unwrap_or_else(|| "latest".to_owned());
        Ok(
            db::artifacts::versions::resolve(&mut conn, self.0.id, &alias)
                .await?
                .map(Membership),
        )
    }
    /// The committed versions, oldest first (`filters`/`order` are accepted; only committed
    /// versions are ever listed).
    async fn artifacts(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        order: Option<String>,
        filters: Option<JsonString>,
    ) -> Result<VersionedArtifactConnection> {
        let _ = (order, filters);
        let mut conn = session(ctx).app.db.conn().await?;
        let versions = db::artifacts::versions::committed(&mut conn, self.0.id).await?;
        Ok(VersionedArtifactConnection::page(
            versions,
            after.as_deref(),
            first,
        ))
    }
    async fn aliases(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Result<AliasConnection> {
        let mut conn = session(ctx).app.db.conn().await?;
        let versions = db::artifacts::versions::committed(&mut conn, self.0.id).await?;
        let mut all = Vec::new();
        for version in &versions {
            for alias in db::artifacts::aliases::aliases_of(&mut conn, version.id).await? {
                all.push(ArtifactAlias::new(&self.0, version.id, alias));
            }
        }
        let (edges, page_info, _) = page(all, after.as_deref(), first, |(node, cursor)| {
            AliasEdge { node, cursor }
        });
        Ok(AliasConnection { edges, page_info })
    }
}

/// A version seen through its collection.
pub(super) struct Membership(pub ArtifactRow);

#[Object(name = "ArtifactCollectionMembership")]
impl Membership {
    async fn id(&self) -> ID {
        encode_id("ArtifactCollectionMembership", self.0.id)
    }
    async fn version_index(&self) -> Option<i64> {
        self.0.version_index
    }
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    async fn aliases(&self, ctx: &Context<'_>) -> Result<Vec<ArtifactAlias>> {
        aliases(ctx, &self.0).await
    }
    async fn artifact_collection(&self) -> ArtifactSequence {
        ArtifactSequence(self.0.collection.clone())
    }
    async fn artifact(&self) -> Artifact {
        Artifact(self.0.clone())
    }
    async fn files(
        &self,
        ctx: &Context<'_>,
        names: Option<Vec<String>>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Result<FileConnection> {
        file_page(ctx, &self.0, names, after.as_deref(), first).await
    }
}

pub(super) struct ArtifactAlias {
    id: ID,
    alias: String,
    collection: CollectionRow,
}

impl ArtifactAlias {
    fn new(collection: &CollectionRow, artifact: i64, alias: String) -> ArtifactAlias {
        ArtifactAlias {
            id: ID(format!("{}:{artifact}:{alias}", collection.id)),
            alias,
            collection: collection.clone(),
        }
    }
}

#[Object]
impl ArtifactAlias {
    async fn id(&self) -> &ID {
        &self.id
    }
    async fn alias(&self) -> &str {
        &self.alias
    }
    async fn artifact_collection(&self) -> ArtifactCollection {
        ArtifactCollection::ArtifactSequence(ArtifactSequence(self.collection.clone()))
    }
}

#[derive(SimpleObject)]
pub(super) struct AliasEdge {
    node: ArtifactAlias,
    cursor: String,
}

#[derive(SimpleObject)]
pub(super) struct AliasConnection {
    edges: Vec<AliasEdge>,
    page_info: PageInfo,
}

/// A version's aliases, its `vN` among them once it is numbered: W&B's server lists the
/// version alias too, and clients before 0.19 take the version from it (exactly one).
async fn aliases(ctx: &Context<'_>, artifact: &ArtifactRow) -> Result<Vec<ArtifactAlias>> {
    let mut conn = session(ctx).app.db.conn().await?;
    let mut names = db::artifacts::aliases::aliases_of(&mut conn, artifact.id).await?;
    if let Some(index) = artifact.version_index {
        names.push(format!("v{index}"));
    }
    Ok(names
        .into_iter()
        .map(|alias| ArtifactAlias::new(&artifact.collection, artifact.id, alias))
        .collect())
}

/// An artifact type of a project: cairn keeps the type on each collection, so a type is
/// the set of collections that carry its name.
pub(super) struct ArtifactType {
    project: i64,
    name: String,
    created_at: String,
}

impl ArtifactType {
    fn of(collection: &CollectionRow) -> ArtifactType {
        ArtifactType {
            project: collection.project_id,
            name: collection.type_name.clone(),
            created_at: collection.created_at.clone(),
        }
    }

    /// The types of `project`'s collections, each once, in first-use order.
    pub(super) async fn of_project(
        conn: &mut AnyConnection,
        project: i64,
    ) -> Result<Vec<ArtifactType>, ApiError> {
        let mut types: Vec<ArtifactType> = Vec::new();
        for collection in db::artifacts::collections::collections_of(conn, project).await? {
            if !types.iter().any(|t| t.name == collection.type_name) {
                types.push(ArtifactType::of(&collection));
            }
        }
        Ok(types)
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    async fn collections(&self, ctx: &Context<'_>) -> Result<Vec<CollectionRow>, ApiError> {
        let mut conn = session(ctx).app.db.conn().await?;
        let mut all = db::artifacts::collections::collections_of(&mut conn, self.project).await?;
        all.retain(|c| c.type_name == self.name);
        Ok(all)
    }
}

#[Object(name = "ArtifactType")]
impl ArtifactType {
    async fn id(&self) -> ID {
        ID(format!("{}:{}", self.project, self.name))
    }
    #[graphql(name = "name")]
    async fn type_name(&self) -> &str {
        &self.name
    }
    async fn description(&self) -> Option<&str> {
        None
    }
    async fn created_at(&self) -> &str {
        &self.created_at
    }
    async fn artifact_collection(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<Option<ArtifactSequence>> {
        Ok(self
            .collections(ctx)
            .await?
            .into_iter()
            .find(|c| c.name == name)
            .map(ArtifactSequence))
    }
    /// The collection `name` under W&B's older field name.
    async fn artifact_sequence(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<Option<ArtifactSequence>> {
        self.artifact_collection(ctx, name).await
    }
    /// The committed version `name` (`collection:alias` or `collection:vN`) of this type.
    async fn artifact(&self, ctx: &Context<'_>, name: String) -> Result<Option<Artifact>> {
        let mut conn = session(ctx).app.db.conn().await?;
        let Some(project) = db::runs::project_by_id(&mut conn, self.project).await? else {
            return Ok(None);
        };
        drop(conn);
        let found = args::project_artifact(ctx, &project, &name).await?;
        Ok(found
            .filter(|a| a.collection.type_name == self.name)
            .map(Artifact))
    }
    async fn artifact_collections(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        filters: Option<JsonString>,
        order: Option<String>,
    ) -> Result<CollectionConnection> {
        let _ = (filters, order);
        let all = self.collections(ctx).await?;
        Ok(collection_page(all, after.as_deref(), first))
    }
}

#[derive(SimpleObject)]
pub(super) struct ArtifactTypeEdge {
    node: ArtifactType,
    cursor: String,
}

#[derive(SimpleObject)]
pub(super) struct ArtifactTypeConnection {
    edges: Vec<ArtifactTypeEdge>,
    page_info: PageInfo,
}

pub(super) fn type_page(
    types: Vec<ArtifactType>,
    after: Option<&str>,
    first: Option<i32>,
) -> ArtifactTypeConnection {
    let (edges, page_info, _) = page(types, after, first, |(node, cursor)| ArtifactTypeEdge {
        node,
        cursor,
    });
    ArtifactTypeConnection { edges, page_info }
}

#[derive(SimpleObject)]
pub(super) struct CollectionEdge {
    node: ArtifactSequence,
    cursor: String,
}

#[derive(SimpleObject)]
pub(super) struct CollectionConnection {
    edges: Vec<CollectionEdge>,
    page_info: PageInfo,
    total_count: i64,
}

pub(super) fn collection_page(
    all: Vec<CollectionRow>,
    after: Option<&str>,
    first: Option<i32>,
) -> CollectionConnection {
    let (edges, page_info, total_count) = page(all, after, first, |(row, cursor)| CollectionEdge {
        node: ArtifactSequence(row),
        cursor,
    });
    CollectionConnection {
        edges,
        page_info,
        total_count,
    }
}

/// One page of a version's stored files (references have no bytes here), by path, each
/// with a signed download URL.
async fn file_page(
    ctx: &Context<'_>,
    artifact: &ArtifactRow,
    names: Option<Vec<String>>,
    after: Option<&str>,
    first: Option<i32>,
) -> Result<FileConnection> {
    let mut conn = session(ctx).app.db.conn().await?;
    let start = decode_cursor(after).map_or(0, |n| n.saturating_add(1));
    let size = first
        .map_or(DEFAULT_FILE_PAGE, i64::from)
        .clamp(0, MAX_FILE_PAGE);
    // Named files are looked up first and paged after, so a name far down the artifact
    // is on the first page (the SDK stops at the first empty page).
    let (rows, total) = match names.filter(|n| !n.is_empty()) {
        Some(names) => {
            if names.len() > MAX_NAMED_FILES {
                return Err(ApiError::BadRequest(format!(
                    "files(names:) takes at most {MAX_NAMED_FILES} names, got {}",
                    names.len()
                ))
                .into());
            }
            let named =
                db::artifacts::entries::entries_named(&mut conn, artifact.id, &names).await?;
            let total = i64::try_from(named.len()).unwrap_or(i64::MAX);
            let page = named
                .into_iter()
                .skip(usize::try_from(start).unwrap_or(usize::MAX))
                .take(usize::try_from(size).unwrap_or(0))
                .collect();
            (page, total)
        }
        None => (
            db::artifacts::entries::entries(&mut conn, artifact.id, start, size).await?,
            db::artifacts::entries::entry_count(&mut conn, artifact.id).await?,
        ),
    };
    let edges: Vec<FileEdge> = rows
        .into_iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let file = entry_file(artifact, entry)?;
            Some(FileEdge {
                node: file,
                cursor: cursor(start + i as i64),
            })
        })
        .collect();
    let end = (start + size).min(total);
    Ok(FileConnection {
        edges,
        page_info: PageInfo {
            start_cursor: (end > start).then(|| cursor(start)),
            end_cursor: (end > start).then(|| cursor(end - 1)),
            has_next_page: end < total,
            has_previous_page: start > 0,
        },
        total_count: total,
    })
}

/// The stored file behind an entry, or `None` for a reference.
fn entry_file(artifact: &ArtifactRow, entry: EntryRow) -> Option<StoredFile> {
    if entry.reference.is_some() {
        return None;
    }
    let md5 = entry.md5?;
    let key = blob::artifact_blob_key(artifact.collection.entity_id, &blob::md5_hex(&md5)?);
    Some(StoredFile::at(
        key,
        FileRow {
            name: entry.path,
            size: entry.size,
            md5: Some(md5),
            uploaded: true,
            updated_at: artifact.updated_at.clone(),
        },
    ))
}
