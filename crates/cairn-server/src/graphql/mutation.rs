//! The root mutation: creating and updating runs, announcing run files, alerts, deletion;
//! the artifact mutations are merged in from `artifact_mutation`.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::args::{self, json_object, named_run, run_by_storage_id};
use super::error::Result;
use super::request::session;
use super::run::Run;
use super::scalars::{Duration, JsonString};
use super::types::ServerSettings;
use crate::auth;
use crate::blob;
use crate::checks;
use crate::db::{self, RunFields};
use crate::error::ApiError;
use crate::names;
use crate::names::DEFAULT_PROJECT;

/// The root mutation: the run mutations below and the artifact ones
/// (`artifact_mutation`).
#[derive(async_graphql::MergedObject, Debug, Default)]
pub struct Mutation(RunMutation, super::artifact_mutation::ArtifactMutation);

#[derive(Debug, Default)]
pub(super) struct RunMutation;

/// `upsertBucket`'s input: every field nullable, null meaning "leave unchanged".
#[derive(InputObject, Default)]
pub(super) struct UpsertBucketInput {
    id: Option<String>,
    name: Option<String>,
    group_name: Option<String>,
    model_name: Option<String>,
    entity_name: Option<String>,
    description: Option<String>,
    display_name: Option<String>,
    notes: Option<String>,
    commit: Option<String>,
    config: Option<JsonString>,
    host: Option<String>,
    debug: Option<bool>,
    job_program: Option<String>,
    job_repo: Option<String>,
    job_type: Option<String>,
    state: Option<String>,
    sweep: Option<String>,
    tags: Option<Vec<String>>,
    summary_metrics: Option<JsonString>,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct UpsertBucketPayload {
    bucket: Option<Run>,
    inserted: Option<bool>,
    server_settings: ServerSettings,
    client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub(super) struct CreateRunFilesInput {
    entity_name: Option<String>,
    project_name: Option<String>,
    run_name: Option<String>,
    files: Vec<String>,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct RunFileUpload {
    name: String,
    upload_url: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct CreateRunFilesPayload {
    #[graphql(name = "runID")]
    run_id: ID,
    upload_headers: Vec<String>,
    files: Vec<RunFileUpload>,
    client_mutation_id: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AlertSeverity {
    Info,
    Warn,
    Error,
}

#[derive(InputObject)]
pub(super) struct NotifyScriptableRunAlertInput {
    entity_name: Option<String>,
    project_name: Option<String>,
    run_name: Option<String>,
    title: String,
    text: String,
    severity: Option<AlertSeverity>,
    wait_duration: Option<Duration>,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct SuccessPayload {
    success: bool,
    client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub(super) struct DeleteRunInput {
    id: ID,
    delete_artifacts: Option<bool>,
    client_mutation_id: Option<String>,
}

/// `stopRun`'s input: the run's storage id.
#[derive(InputObject)]
pub(super) struct StopRunInput {
    id: ID,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct ClientMutationPayload {
    client_mutation_id: Option<String>,
}

#[Object]
impl RunMutation {
    /// Creates or updates a run (W&B's `upsertBucket`).
    ///
    /// The run is found by storage `id` when given, else by entity (default: the viewer's),
    /// project (created on first use; default `uncategorized`) and `name` (generated when
    /// missing). Null fields leave the run unchanged; `config`, `tags` and
    /// `summaryMetrics` replace what is stored.
    async fn upsert_bucket(
        &self,
        ctx: &Context<'_>,
        input: UpsertBucketInput,
    ) -> Result<UpsertBucketPayload> {
        upsert_bucket(ctx, input).await
    }

    /// Hands out signed upload URLs for files of a run.
    async fn create_run_files(
        &self,
        ctx: &Context<'_>,
        input: CreateRunFilesInput,
    ) -> Result<CreateRunFilesPayload> {
        let s = session(ctx);
        let run = named_run(
            ctx,
            input.entity_name.as_deref(),
            input.project_name.as_deref(),
            input.run_name.as_deref(),
        )
        .await?;
        for name in &input.files {
            blob::check_file_name(name)
                .map_err(|msg| ApiError::BadRequest(format!("run {}: {msg}", run.path())))?;
        }
        let mut tx = s.app.db.write().await?;
        let mut files = Vec::with_capacity(input.files.len());
        for name in input.files {
            db::lines::announce_file(tx.conn(), run.id, &name).await?;
            let key = blob::run_file_key(run.id, &name);
            files.push(RunFileUpload {
                upload_url: Some(s.app.signed_url(&s.base_url, "PUT", &key)),
                name,
            });
        }
        tx.commit().await?;
        Ok(CreateRunFilesPayload {
            run_id: args::encode_id("Run", run.id),
            upload_headers: Vec::new(),
            files,
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Records an alert raised by a run (`run.alert()`).
    async fn notify_scriptable_run_alert(
        &self,
        ctx: &Context<'_>,
        input: NotifyScriptableRunAlertInput,
    ) -> Result<SuccessPayload> {
        let s = session(ctx);
        let run = named_run(
            ctx,
            input.entity_name.as_deref(),
            input.project_name.as_deref(),
            input.run_name.as_deref(),
        )
        .await?;
        let severity = match input.severity.unwrap_or(AlertSeverity::Info) {
            AlertSeverity::Info => "INFO",
            AlertSeverity::Warn => "WARN",
            AlertSeverity::Error => "ERROR",
        };
        let mut tx = s.app.db.write().await?;
        db::runs::add_alert(
            tx.conn(),
            run.id,
            &input.title,
            &input.text,
            severity,
            input.wait_duration.map(|d| d.0),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(run = %run.path(), severity, title = %input.title, "alert");
        Ok(SuccessPayload {
            success: true,
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Deletes a run with its history, console, events and files.
    async fn delete_run(
        &self,
        ctx: &Context<'_>,
        input: DeleteRunInput,
    ) -> Result<ClientMutationPayload> {
        let s = session(ctx);
        let mut tx = s.app.db.write().await?;
        let run = run_by_storage_id(tx.conn(), &s.viewer, &input.id).await?;
        if input.delete_artifacts == Some(true) {
            db::artifacts::lineage::delete_outputs_of(tx.conn(), run.id).await?;
        }
        db::runs::delete_run(tx.conn(), run.id).await?;
        tx.commit().await?;
        // SQLite may give the next run this id: its charts must not start from these.
        s.app.series.forget(run.id);
        if let Err(err) = s
            .app
            .blobs
            .delete_prefix(&format!("runs/{}/", run.id))
            .await
        {
            tracing::warn!(run = %run.path(), error = %err, "run deleted; its files remain in storage");
        }
        Ok(ClientMutationPayload {
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Asks a running run to stop (`wandb.Api().run(…).stop()`): its next filestream
    /// answer says `stopped`, and the SDK interrupts the script. A run that is not running
    /// is left as it is; either way the answer is `success: true`, as asking twice is.
    async fn stop_run(&self, ctx: &Context<'_>, input: StopRunInput) -> Result<SuccessPayload> {
        let s = session(ctx);
        let mut tx = s.app.db.write().await?;
        let run = run_by_storage_id(tx.conn(), &s.viewer, &input.id).await?;
        if run.state == "running" {
            db::runs::request_stop(tx.conn(), run.id).await?;
            tracing::info!(run = %run.path(), "stop requested");
        }
        tx.commit().await?;
        Ok(SuccessPayload {
            success: true,
            client_mutation_id: input.client_mutation_id,
        })
    }
}

async fn upsert_bucket(ctx: &Context<'_>, input: UpsertBucketInput) -> Result<UpsertBucketPayload> {
    let s = session(ctx);
    let fields = RunFields {
        display_name: input.display_name,
        description: input.description,
        notes: input.notes,
        group_name: input.group_name,
        job_type: input.job_type,
        tags: input
            .tags
            .map(|tags| serde_json::to_string(&tags).unwrap_or_else(|_| "[]".to_owned())),
        config: input
            .config
            .as_ref()
            .map(|c| json_object("config", c))
            .transpose()?,
        summary: input
            .summary_metrics
            .as_ref()
            .map(|c| json_object("summaryMetrics", c))
            .transpose()?,
        host: input.host,
        program: input.job_program,
        git_commit: input.commit,
        git_repo: input.job_repo,
        sweep: input.sweep,
        state: input.state,
    };
    let _ = input.debug;
    if let Some(field) = fields.field_with_nul() {
        return Err(ApiError::BadRequest(format!(
            "{field} contains a NUL character, which cannot be stored"
        ))
        .into());
    }
    let mut tx = s.app.db.write().await?;
    let (run, inserted) = match input.id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => (run_by_storage_id(tx.conn(), &s.viewer, id).await?, false),
        None => {
            let entity =
                auth::writable_entity(tx.conn(), &s.viewer, input.entity_name.as_deref()).await?;
            let project_name = input
                .model_name
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
            checks::check_name("project", &project_name)?;
            let project = db::runs::ensure_project(tx.conn(), entity.id, &project_name).await?;
            let name = match input.name.filter(|n| !n.is_empty()) {
                Some(name) => name,
                None => names::run_id(),
            };
            checks::check_name("run", &name)?;
            db::runs::ensure_run(tx.conn(), project.id, &name, s.viewer.id).await?
        }
    };
    let mut fields = fields;
    if inserted && fields.display_name.is_none() {
        fields.display_name = Some(names::display_name(run.id));
    }
    db::runs::update_run(tx.conn(), run.id, &fields).await?;
    let run = db::runs::run_by_id(tx.conn(), run.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("run {} vanished", run.path())))?;
    tx.commit().await?;
    Ok(UpsertBucketPayload {
        bucket: Some(Run(run)),
        inserted: Some(inserted),
        server_settings: ServerSettings::default(),
        client_mutation_id: input.client_mutation_id,
    })
}
