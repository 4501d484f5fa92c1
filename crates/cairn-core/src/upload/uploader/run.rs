//! The run on the server: the first `UpsertBucket` creates (or finds) it and learns its entity,
//! project and name ([`RemoteRun`]); later upserts send the config and the details a later run
//! record changed (debounced by the uploader); alerts become `NotifyScriptableRunAlert`.
//! [`run_details`] is the one mapping of a run record's user-given details to upsert variables
//! (the service's own upserts use it too).

use std::time::Instant;

use serde_json::{Value as Json, json};

use super::Uploader;
use crate::client::{Until, documents};
use crate::upload::filestream::FileStream;
use crate::upload::report::UploadError;
use crate::upload::resume::line_counts;

/// A run record's user-given details as `UpsertBucket` variables: `displayName`, `notes`,
/// `groupName`, `jobType` and `tags`, each left out when empty — as W&B's core does, an
/// empty value never clears what the server has (a resumed run keeps its tags).
pub fn run_details(run: &cairn_proto::RunRecord) -> serde_json::Map<String, Json> {
    let mut details = serde_json::Map::new();
    for (key, value) in [
        ("displayName", &run.display_name),
        ("notes", &run.notes),
        ("groupName", &run.run_group),
        ("jobType", &run.job_type),
    ] {
        if !value.is_empty() {
            details.insert(key.to_owned(), Json::from(value.as_str()));
        }
    }
    if !run.tags.is_empty() {
        details.insert("tags".to_owned(), Json::from(run.tags.clone()));
    }
    details
}

/// The run as the server knows it.
#[derive(Debug, Clone)]
pub(super) struct RemoteRun {
    pub(super) entity: String,
    pub(super) project: String,
    pub(super) name: String,
}

impl Uploader {
    /// The first upsert: creates (or finds) the run, learns its entity and project, and
    /// where its lines continue when it is resumed.
    pub(super) fn start_run(
        &mut self,
        run: &cairn_proto::RunRecord,
        until: &Until,
    ) -> Result<(), UploadError> {
        // `run` has the overrides applied (`observe`).
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let mut variables = json!({
            "name": run.run_id,
            "project": nonempty(&run.project),
            "entity": nonempty(&run.entity),
            "host": nonempty(&run.host),
            "sweep": nonempty(&run.sweep_id),
            "commit": run.git.as_ref().and_then(|g| nonempty(&g.commit)),
            "repo": run.git.as_ref().and_then(|g| nonempty(&g.remote_url)),
            "config": self.files.config_json(),
        });
        if let Json::Object(map) = &mut variables {
            map.extend(run_details(run));
        }
        let shown = self.settings.operations.start("updating run metadata");
        let data = self
            .conn
            .graphql("UpsertBucket", documents::UPSERT_BUCKET, variables, until)?;
        drop(shown);
        // Asked once the server has answered the upsert (so a server that is down at the
        // start costs one retry budget, not two). One that cannot say gets plain JSON.
        let features = self.conn.server_features(until).unwrap_or_default();
        self.gzip = features.iter().any(|f| f == "FILESTREAM_GZIP");
        self.resumable_multipart = features.iter().any(|f| f == "CAIRN_RESUMABLE_MULTIPART");
        let bucket = &data["upsertBucket"]["bucket"];
        let text = |v: &Json| v.as_str().map(str::to_owned);
        let remote = match (
            text(&bucket["project"]["entity"]["name"]),
            text(&bucket["project"]["name"]),
            text(&bucket["name"]),
        ) {
            (Some(entity), Some(project), Some(name)) => RemoteRun {
                entity,
                project,
                name,
            },
            _ => {
                return Err(UploadError::Answer {
                    operation: "UpsertBucket",
                    detail: format!("no bucket name, project and entity in {data}"),
                });
            }
        };
        self.last_upsert = Some(Instant::now());
        self.config_dirty = false;
        let (history, events, console) = if run.resumed {
            line_counts(
                &self.conn,
                &remote.entity,
                &remote.project,
                &remote.name,
                until,
            )?
        } else {
            (0, 0, 0)
        };
        self.report.path = Some(format!(
            "{}/{}/{}",
            remote.entity, remote.project, remote.name
        ));
        self.stream = Some(FileStream::new(
            self.settings.max_request_bytes,
            history,
            events,
            console,
        ));
        self.run = Some(remote);
        Ok(())
    }

    pub(super) fn upsert_config(&mut self, until: &Until) -> Result<(), UploadError> {
        let Some(run) = &self.run else {
            return Ok(());
        };
        let mut variables = json!({
            "name": run.name,
            "project": run.project,
            "entity": run.entity,
            "config": self.files.config_json(),
        });
        if let Json::Object(map) = &mut variables {
            map.extend(self.details.clone());
        }
        let _shown = self.settings.operations.start("updating run metadata");
        self.conn
            .graphql("UpsertBucket", documents::UPSERT_BUCKET, variables, until)?;
        self.config_dirty = false;
        self.last_upsert = Some(Instant::now());
        Ok(())
    }

    pub(super) fn alert(
        &mut self,
        alert: &cairn_proto::AlertRecord,
        until: &Until,
    ) -> Result<(), UploadError> {
        let Some(run) = &self.run else {
            return Err(UploadError::NoRun);
        };
        let severity = match alert.level.to_ascii_uppercase().as_str() {
            "WARN" | "WARNING" => "WARN",
            "ERROR" => "ERROR",
            _ => "INFO",
        };
        let variables = json!({
            "entityName": run.entity,
            "projectName": run.project,
            "runName": run.name,
            "title": alert.title,
            "text": alert.text,
            "severity": severity,
            "waitDuration": (alert.wait_duration > 0).then_some(alert.wait_duration),
        });
        self.conn.graphql(
            "NotifyScriptableRunAlert",
            documents::NOTIFY_SCRIPTABLE_RUN_ALERT,
            variables,
            until,
        )?;
        Ok(())
    }
}
