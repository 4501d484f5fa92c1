//! How an upload is configured ([`UploadSettings`]: the server, the run folder, W&B's timings
//! and retry policies, the shared artifact board and operations list) and what a sync changes in
//! the log's run records ([`RunOverrides`]).
//!
//! Plain data, built once by the SDK, the service or `cairn sync`; the environment is read only
//! by [`UploadSettings::with_retry_env`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::artifact::ArtifactBoard;
use crate::client::operations::Operations;
use crate::client::{ConnectionConfig, Policies};

/// How an upload is configured.
#[derive(Clone, Debug)]
pub struct UploadSettings {
    /// The server and the key.
    pub connection: ConnectionConfig,
    /// What the upload changes in the log's run record (`cairn sync --entity …`,
    /// `wandb sync --job-type …`).
    pub overrides: RunOverrides,
    /// The run's `files/` folder.
    pub files_dir: PathBuf,
    /// Time between filestream requests (W&B: 15 s).
    pub transmit_interval: Duration,
    /// A quiet stream sends `{}` after this long (W&B: 30 s).
    pub heartbeat: Duration,
    /// Largest filestream request body.
    pub max_request_bytes: usize,
    /// Time between config upserts while the run goes on (W&B: 5 s).
    pub upsert_debounce: Duration,
    /// Retries per kind of request (W&B's by default).
    pub policies: Policies,
    /// Where the outcome of each artifact the log holds is published.
    pub artifacts: Arc<ArtifactBoard>,
    /// What the upload is doing right now (for the SDK's progress display).
    pub operations: Arc<Operations>,
}

/// What a sync changes in the run records of a log: where the run goes and how it is
/// labelled. Each field left `None` (or empty) keeps the log's own value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOverrides {
    /// The entity to upload to (`--entity`).
    pub entity: Option<String>,
    /// The project to upload to (`--project`).
    pub project: Option<String>,
    /// The run id to upload as (`--id`).
    pub run_id: Option<String>,
    /// Replaces the run's job type (`wandb sync --job-type`).
    pub job_type: Option<String>,
    /// Renames tags, old name → new name (`wandb sync --replace-tags old=new`); a tag
    /// renamed to one the run already has is kept once.
    pub tag_replacements: std::collections::BTreeMap<String, String>,
}

impl RunOverrides {
    /// `run` with these overrides applied.
    pub fn rewrite(&self, run: &cairn_proto::RunRecord) -> cairn_proto::RunRecord {
        let mut run = run.clone();
        for (field, over) in [
            (&mut run.entity, &self.entity),
            (&mut run.project, &self.project),
            (&mut run.run_id, &self.run_id),
            (&mut run.job_type, &self.job_type),
        ] {
            if let Some(value) = over {
                field.clone_from(value);
            }
        }
        if !self.tag_replacements.is_empty() {
            let mut tags: Vec<String> = Vec::with_capacity(run.tags.len());
            for tag in &run.tags {
                let tag = self.tag_replacements.get(tag).unwrap_or(tag);
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
            run.tags = tags;
        }
        run
    }
}

impl UploadSettings {
    /// W&B's defaults for a server and a run folder.
    pub fn new(connection: ConnectionConfig, files_dir: PathBuf) -> UploadSettings {
        UploadSettings {
            connection,
            overrides: RunOverrides::default(),
            files_dir,
            transmit_interval: Duration::from_secs(15),
            heartbeat: Duration::from_secs(30),
            max_request_bytes: 10 << 20,
            upsert_debounce: Duration::from_secs(5),
            policies: Policies::default(),
            artifacts: Arc::default(),
            operations: Arc::default(),
        }
    }

    /// Applies W&B's retry settings from the environment, as its SDK reads them:
    /// `WANDB__{GRAPHQL,FILE_STREAM,FILE_TRANSFER}_RETRY_MAX` and
    /// `…_RETRY_WAIT_MIN_SECONDS` / `…_RETRY_WAIT_MAX_SECONDS`.
    pub fn with_retry_env(mut self) -> UploadSettings {
        for (prefix, policy) in [
            ("WANDB__GRAPHQL", &mut self.policies.graphql),
            ("WANDB__FILE_STREAM", &mut self.policies.filestream),
            ("WANDB__FILE_TRANSFER", &mut self.policies.file_transfer),
        ] {
            let var = |suffix: &str| {
                std::env::var(format!("{prefix}_{suffix}"))
                    .ok()
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite() && *v >= 0.0)
            };
            if let Some(n) = var("RETRY_MAX") {
                policy.max_retries = n as u32;
            }
            if let Some(s) = var("RETRY_WAIT_MIN_SECONDS") {
                policy.min_wait = Duration::from_secs_f64(s);
            }
            if let Some(s) = var("RETRY_WAIT_MAX_SECONDS") {
                policy.max_wait = Duration::from_secs_f64(s);
            }
            if policy.min_wait > policy.max_wait {
                policy.min_wait = policy.max_wait;
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::upload::run_details;

    #[test]
    fn sync_overrides_rewrite_the_run_record() {
        let run = cairn_proto::RunRecord {
            run_id: "r1".into(),
            entity: "e".into(),
            job_type: "train".into(),
            tags: vec!["a".into(), "b".into(), "c".into()],
            display_name: "n".into(),
            ..Default::default()
        };
        let mut overrides = RunOverrides::default();
        assert_eq!(overrides.rewrite(&run), run);
        overrides.job_type = Some("eval".into());
        overrides.project = Some("p2".into());
        overrides.run_id = Some("r2".into());
        overrides.tag_replacements = [("a", "b"), ("c", "z")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let out = overrides.rewrite(&run);
        assert_eq!((out.entity.as_str(), out.project.as_str()), ("e", "p2"));
        assert_eq!(out.run_id, "r2");
        assert_eq!(out.job_type, "eval");
        assert_eq!(out.tags, ["b", "z"], "a renamed onto b is kept once");
        assert_eq!(out.display_name, "n");
        let details = run_details(&out);
        assert_eq!(details["jobType"], "eval");
        assert_eq!(details["tags"], json!(["b", "z"]));
        assert!(!run_details(&cairn_proto::RunRecord::default()).contains_key("tags"));
    }
}
