//! The object types of the schema around runs: users and their API keys, entities,
//! projects (with their runs and artifacts, W&B's "model"), pages of projects, and what
//! the server announces about itself. Runs are in `run`, artifacts in `artifacts`.
//!
//! Input: rows the caller has checked access to. Output: the fields the client selects,
//! each read from the database when asked.

use async_graphql::{Context, ID, Object, SimpleObject};

use super::args::{self, encode_id};
use super::artifacts;
use super::error::Result;
use super::listing;
use super::paging::{PageInfo, page};
use super::request::session;
use super::run::{self, Run, RunConnection};
use super::scalars::JsonString;
use crate::db::{self, EntityRow, ProjectRow, UserRow};

pub(super) struct User(pub UserRow);

#[Object]
impl User {
    async fn id(&self) -> ID {
        encode_id("User", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn username(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// The user's default entity: their own.
    async fn entity(&self) -> &str {
        &self.0.name
    }
    async fn admin(&self) -> bool {
        self.0.admin
    }
    async fn flags(&self) -> JsonString {
        JsonString("{}".to_owned())
    }
    async fn deleted_at(&self) -> Option<String> {
        None
    }
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<ApiKeyConnection> {
        let s = session(ctx);
        if s.viewer.id != self.0.id && !s.viewer.admin {
            return Ok(ApiKeyConnection { edges: Vec::new() });
        }
        let mut conn = s.app.db.conn().await?;
        let keys = db::accounts::key_names(&mut conn, self.0.id).await?;
        Ok(ApiKeyConnection {
            edges: keys
                .into_iter()
                .map(|(id, name)| ApiKeyEdge {
                    node: ApiKey {
                        id: encode_id("ApiKey", id),
                        name,
                        description: None,
                    },
                })
                .collect(),
        })
    }
    async fn teams(&self, ctx: &Context<'_>) -> Result<EntityConnection> {
        let s = session(ctx);
        let mut conn = s.app.db.conn().await?;
        let names = db::accounts::teams_of(&mut conn, self.0.id).await?;
        let mut edges = Vec::new();
        for name in names {
            if let Some(entity) = db::accounts::entity_by_name(&mut conn, &name).await? {
                edges.push(EntityEdge {
                    node: Entity(entity),
                });
            }
        }
        Ok(EntityConnection { edges })
    }
}

#[derive(SimpleObject)]
pub(super) struct ApiKey {
    id: ID,
    name: String,
    description: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct ApiKeyEdge {
    node: ApiKey,
}

#[derive(SimpleObject)]
pub(super) struct ApiKeyConnection {
    edges: Vec<ApiKeyEdge>,
}

#[derive(SimpleObject)]
pub(super) struct EntityEdge {
    node: Entity,
}

#[derive(SimpleObject)]
pub(super) struct EntityConnection {
    edges: Vec<EntityEdge>,
}

pub(super) struct Entity(pub EntityRow);

#[Object]
impl Entity {
    async fn id(&self) -> ID {
        encode_id("Entity", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn is_team(&self) -> bool {
        self.0.is_team
    }
    /// cairn has no organizations (W&B's SaaS billing unit).
    async fn organization(&self) -> Option<Organization> {
        None
    }
}

#[derive(SimpleObject)]
pub(super) struct Organization {
    id: ID,
    name: String,
    core_weave_organization_id: Option<String>,
}

/// A feature the server announces to clients.
#[derive(SimpleObject)]
pub(super) struct ServerFeature {
    pub name: String,
    pub is_enabled: bool,
}

pub(super) struct ServerInfo;

#[Object]
impl ServerInfo {
    /// `FILESTREAM_GZIP`: the filestream accepts gzip bodies. W&B's SDK keeps sending
    /// plain JSON unless its user opts in (`x_file_stream_no_gzip=False`), so this changes
    /// nothing for it; cairn's uploader compresses. `CAIRN_RESUMABLE_MULTIPART` (unknown to
    /// W&B's SDK): `uploadUrlParts` carry `storedHexMD5`, so a multipart upload started
    /// again skips the parts already stored. Every other feature off keeps
    /// W&B's SDK on its most conservative protocol.
    async fn features(&self) -> Vec<ServerFeature> {
        ["FILESTREAM_GZIP", "CAIRN_RESUMABLE_MULTIPART"]
            .into_iter()
            .map(|name| ServerFeature {
                name: name.to_owned(),
                is_enabled: true,
            })
            .collect()
    }
    /// `max_cli_version`: the newest `wandb` cairn is tested with. Clients from before
    /// 0.12.10 compare it to decide what uploads the server takes; `wandb verify` warns
    /// a newer client.
    async fn cli_version_info(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::json!({ "max_cli_version": MAX_CLI_VERSION }))
    }
    /// Never out of date: the version on this instance is cairn's own.
    async fn latest_local_version_info(&self) -> LocalVersionInfo {
        LocalVersionInfo {
            out_of_date: false,
            latest_version_string: env!("CARGO_PKG_VERSION").to_owned(),
            version_on_this_instance_string: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// The newest `wandb` release cairn's tests run (`cliVersionInfo.max_cli_version`).
const MAX_CLI_VERSION: &str = "0.31.0";

/// Whether a self-hosted server is behind its newest release (W&B Local's update notice).
#[derive(SimpleObject)]
pub(super) struct LocalVersionInfo {
    out_of_date: bool,
    latest_version_string: String,
    version_on_this_instance_string: String,
}

/// What the server tells clients at run start (`upsertBucket`'s `serverSettings`, which
/// the legacy Python sender asks for once the type exists): cairn has no messages.
#[derive(SimpleObject, Default)]
pub(super) struct ServerSettings {
    server_messages: Vec<ServerMessage>,
}

/// One notice for the user (never made by cairn; the type is W&B's).
#[derive(SimpleObject)]
pub(super) struct ServerMessage {
    utf_text: String,
    plain_text: String,
    html_text: String,
    message_type: String,
    message_level: String,
}

pub(super) struct Project(pub ProjectRow);

#[Object]
impl Project {
    async fn id(&self) -> ID {
        encode_id("Project", self.0.id)
    }
    async fn internal_id(&self) -> ID {
        encode_id("Project", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn entity_name(&self) -> &str {
        &self.0.entity_name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    async fn is_benchmark(&self) -> bool {
        false
    }
    async fn read_only(&self) -> bool {
        false
    }
    /// The project's creator (not tracked: projects belong to entities).
    async fn user(&self) -> Option<User> {
        None
    }
    /// How many runs `filters` selects (all when absent).
    async fn run_count(&self, ctx: &Context<'_>, filters: Option<JsonString>) -> Result<i64> {
        let mut conn = session(ctx).app.db.conn().await?;
        let runs = listing::select_runs(
            &mut conn,
            self.0.id,
            filters.as_ref().map(|f| f.0.as_str()),
            None,
        )
        .await?;
        Ok(runs.len() as i64)
    }
    /// The runs `filters` selects, in `order` (`+created_at` by default), one page.
    async fn runs(
        &self,
        ctx: &Context<'_>,
        filters: Option<JsonString>,
        after: Option<String>,
        first: Option<i32>,
        order: Option<String>,
    ) -> Result<RunConnection> {
        let mut conn = session(ctx).app.db.conn().await?;
        let runs = listing::select_runs(
            &mut conn,
            self.0.id,
            filters.as_ref().map(|f| f.0.as_str()),
            order.as_deref(),
        )
        .await?;
        Ok(run::run_page(runs, after.as_deref(), first))
    }
    async fn entity(&self, ctx: &Context<'_>) -> Result<Option<Entity>> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(db::accounts::entity_by_id(&mut conn, self.0.entity_id)
            .await?
            .map(Entity))
    }
    /// A run by name (legacy name); `missingOk` only documents that null is fine.
    async fn bucket(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        #[graphql(name = "missingOk")] _missing_ok: Option<bool>,
    ) -> Result<Option<Run>> {
        self.run(ctx, name).await
    }
    /// A run by name (its W&B run id).
    async fn run(&self, ctx: &Context<'_>, name: Option<String>) -> Result<Option<Run>> {
        let Some(name) = name else { return Ok(None) };
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(db::runs::run_by_name(&mut conn, self.0.id, &name)
            .await?
            .map(Run))
    }
    /// The committed artifact version `name` (`collection:alias` or `collection:vN`).
    /// `enableTracking` (0.25) only feeds W&B's usage analytics: accepted and ignored.
    async fn artifact(
        &self,
        ctx: &Context<'_>,
        name: String,
        #[graphql(name = "enableTracking")] _enable_tracking: Option<bool>,
    ) -> Result<Option<artifacts::Artifact>> {
        Ok(args::project_artifact(ctx, &self.0, &name)
            .await?
            .map(artifacts::Artifact))
    }
    /// The same version, seen as a membership of its collection.
    async fn artifact_collection_membership(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<Option<artifacts::Membership>> {
        Ok(args::project_artifact(ctx, &self.0, &name)
            .await?
            .map(artifacts::Membership))
    }
    async fn artifact_collection(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<Option<artifacts::ArtifactSequence>> {
        Ok(args::project_collection(ctx, &self.0, &name)
            .await?
            .map(artifacts::ArtifactSequence))
    }
    async fn artifact_collections(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        filters: Option<JsonString>,
        order: Option<String>,
    ) -> Result<artifacts::CollectionConnection> {
        let _ = (filters, order);
        let mut conn = session(ctx).app.db.conn().await?;
        let all = db::artifacts::collections::collections_of(&mut conn, self.0.id).await?;
        Ok(artifacts::collection_page(all, after.as_deref(), first))
    }
    async fn artifact_type(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<Option<artifacts::ArtifactType>> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(artifacts::ArtifactType::of_project(&mut conn, self.0.id)
            .await?
            .into_iter()
            .find(|t| t.name() == name))
    }
    async fn artifact_types(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Result<artifacts::ArtifactTypeConnection> {
        let mut conn = session(ctx).app.db.conn().await?;
        let types = artifacts::ArtifactType::of_project(&mut conn, self.0.id).await?;
        Ok(artifacts::type_page(types, after.as_deref(), first))
    }
}

#[derive(SimpleObject)]
pub(super) struct ProjectEdge {
    node: Project,
    cursor: String,
}

#[derive(SimpleObject)]
pub(super) struct ProjectConnection {
    edges: Vec<ProjectEdge>,
    page_info: PageInfo,
    total_count: i64,
}

pub(super) fn project_page(
    mut projects: Vec<ProjectRow>,
    after: Option<&str>,
    first: Option<i32>,
) -> ProjectConnection {
    projects.reverse();
    let (edges, page_info, total_count) =
        page(projects, after, first, |(row, cursor)| ProjectEdge {
            node: Project(row),
            cursor,
        });
    ProjectConnection {
        edges,
        page_info,
        total_count,
    }
}
