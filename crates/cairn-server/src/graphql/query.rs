//! The root query: the viewer, server capabilities, entities, projects, and artifacts by id.

use async_graphql::{Context, ID, Object, SimpleObject};

use super::args::{self, decode_id, encode_id};
use super::artifacts;
use super::error::Result;
use super::request::session;
use super::types::{self, Entity, Project, ProjectConnection, ServerInfo, User};
use crate::db;

#[derive(Debug)]
pub struct Query;

#[derive(SimpleObject)]
pub(super) struct ClientIdMapping {
    #[graphql(name = "serverID")]
    server_id: ID,
}

#[Object]
impl Query {
    /// The user whose API key made the request.
    async fn viewer(&self, ctx: &Context<'_>) -> User {
        User(session(ctx).viewer.clone())
    }

    async fn server_info(&self) -> ServerInfo {
        ServerInfo
    }

    async fn entity(&self, ctx: &Context<'_>, name: Option<String>) -> Result<Option<Entity>> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(args::readable_entity(ctx, &mut conn, name.as_deref())
            .await?
            .map(Entity))
    }

    /// The projects of an entity (the viewer's by default), newest first, one page.
    async fn models(
        &self,
        ctx: &Context<'_>,
        entity_name: Option<String>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Result<Option<ProjectConnection>> {
        let mut conn = session(ctx).app.db.conn().await?;
        let Some(entity) = args::readable_entity(ctx, &mut conn, entity_name.as_deref()).await?
        else {
            return Ok(None);
        };
        let projects = db::runs::projects_of(&mut conn, entity.id).await?;
        Ok(Some(types::project_page(projects, after.as_deref(), first)))
    }

    /// A project (W&B's legacy name for it is "model").
    async fn model(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        entity_name: Option<String>,
    ) -> Result<Option<Project>> {
        Ok(args::find_project(ctx, name, entity_name)
            .await?
            .map(Project))
    }

    /// An artifact version by id (a PENDING one too: its creator polls it).
    async fn artifact(&self, ctx: &Context<'_>, id: ID) -> Result<Option<artifacts::Artifact>> {
        let mut conn = session(ctx).app.db.conn().await?;
        Ok(args::readable_artifact(ctx, &mut conn, &id)
            .await?
            .map(artifacts::Artifact))
    }

    /// An artifact collection by id.
    async fn artifact_collection(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<artifacts::ArtifactSequence>> {
        let Some(id) = decode_id("ArtifactSequence", &id) else {
            return Ok(None);
        };
        let mut conn = session(ctx).app.db.conn().await?;
        let Some(collection) = db::artifacts::collections::collection_by_id(&mut conn, id).await?
        else {
            return Ok(None);
        };
        args::check_entity(ctx, &mut conn, collection.entity_id).await?;
        Ok(Some(artifacts::ArtifactSequence(collection)))
    }

    /// The server id behind a client id of an artifact version (`clientID`) or of a
    /// collection (`sequenceClientID`), for `wandb-client-artifact://` references.
    #[graphql(name = "clientIDMapping")]
    async fn client_id_mapping(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "clientID")] client_id: ID,
    ) -> Result<Option<ClientIdMapping>> {
        let mut conn = session(ctx).app.db.conn().await?;
        let (entity, server_id) =
            match db::artifacts::versions::artifact_by_client_id(&mut conn, &client_id).await? {
                Some(a) => (a.collection.entity_id, encode_id("Artifact", a.id)),
                None => {
                    match db::artifacts::collections::collection_by_client_id(&mut conn, &client_id)
                        .await?
                    {
                        Some(c) => (c.entity_id, encode_id("ArtifactSequence", c.id)),
                        None => return Ok(None),
                    }
                }
            };
        args::check_entity(ctx, &mut conn, entity).await?;
        Ok(Some(ClientIdMapping { server_id }))
    }

    async fn project(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        entity_name: Option<String>,
    ) -> Result<Option<Project>> {
        Ok(args::find_project(ctx, name, entity_name)
            .await?
            .map(Project))
    }
}
