//! The log's artifacts: each `ArtifactRecord` is handed to a `cairn-artifacts` worker thread,
//! started with the first one, that saves them in log order ([`crate::artifact::save`]) and
//! publishes each outcome on the settings' [`ArtifactBoard`](crate::artifact::ArtifactBoard),
//! so a large upload never holds up the filestream. A `UseArtifactRecord` becomes
//! `useArtifact` (lineage) on the uploader's own thread.
//!
//! Shutdown: [`Uploader::finish`] closes the worker's queue and joins it, adding what it saved,
//! the files it sent and its failures to the report.

use std::sync::Arc;

use super::Uploader;
use crate::artifact::{self, ArtifactBoard, ArtifactOutcome};
use crate::client::operations::Operations;
use crate::client::{Connection, Until};
use crate::upload::report::UploadError;

/// A thread saving a run's artifacts in log order, publishing each outcome.
#[derive(Debug)]
pub(super) struct ArtifactWorker {
    /// Closed (dropped) by `Uploader::finish_artifacts`, which ends the thread once the queue
    /// is worked off.
    queue: std::sync::mpsc::Sender<(artifact::Target, cairn_proto::ArtifactRecord)>,
    /// Ends with the versions saved, the failures, and the files sent.
    thread: std::thread::JoinHandle<(Vec<String>, Vec<String>, usize)>,
}

impl ArtifactWorker {
    fn start(
        conn: Connection,
        board: Arc<ArtifactBoard>,
        operations: Arc<Operations>,
        resumable: bool,
        until: Until,
    ) -> ArtifactWorker {
        let (queue, jobs) =
            std::sync::mpsc::channel::<(artifact::Target, cairn_proto::ArtifactRecord)>();
        let thread = std::thread::Builder::new()
            .name("cairn-artifacts".to_owned())
            .spawn(move || {
                let (mut saved, mut failed, mut files) = (Vec::new(), Vec::new(), 0);
                for (target, record) in jobs {
                    let step = board.history_step(&record.client_id);
                    let _shown = operations.start(format!("uploading artifact {}", record.name));
                    let outcome =
                        match artifact::save(&conn, &target, &record, resumable, step, &until) {
                            Ok(done) => {
                                files += done.files_sent;
                                saved.push(match done.version {
                                    Some(v) => format!("{}:v{v}", record.name),
                                    None => format!("{} ({})", record.name, done.id),
                                });
                                ArtifactOutcome::Saved(done)
                            }
                            Err(err) => {
                                failed.push(err.to_string());
                                ArtifactOutcome::Failed(err.to_string())
                            }
                        };
                    if !record.client_id.is_empty() {
                        board.publish(&record.client_id, outcome);
                    }
                }
                (saved, failed, files)
            })
            .expect("spawning the artifact thread");
        ArtifactWorker { queue, thread }
    }
}

impl Uploader {
    /// The run as an artifact's owner.
    fn target(&self) -> Result<artifact::Target, UploadError> {
        let run = self.run.as_ref().ok_or(UploadError::NoRun)?;
        Ok(artifact::Target {
            entity: run.entity.clone(),
            project: run.project.clone(),
            run: run.name.clone(),
        })
    }

    /// Hands an artifact of the log to the artifact thread (started on first use).
    pub(super) fn save_artifact(
        &mut self,
        record: &cairn_proto::ArtifactRecord,
        until: &Until,
    ) -> Result<(), UploadError> {
        let target = self.target()?;
        let worker = self.artifact_worker.get_or_insert_with(|| {
            ArtifactWorker::start(
                self.conn.clone(),
                self.settings.artifacts.clone(),
                self.settings.operations.clone(),
                self.resumable_multipart,
                until.clone(),
            )
        });
        if worker.queue.send((target, record.clone())).is_err() {
            self.report.warnings.push(format!(
                "artifact {}: the artifact thread ended",
                record.name
            ));
        }
        Ok(())
    }

    /// Waits for the artifact thread to save what it was given.
    pub(super) fn finish_artifacts(&mut self) {
        let Some(worker) = self.artifact_worker.take() else {
            return;
        };
        drop(worker.queue);
        match worker.thread.join() {
            Ok((saved, failed, files)) => {
                self.report.artifacts.extend(saved);
                self.report.artifact_files += files;
                self.report.warnings.extend(failed);
            }
            Err(_) => self
                .report
                .warnings
                .push("the artifact thread panicked".to_owned()),
        }
    }

    /// Records on the server that the run used version `id` (lineage); a failure is a
    /// warning.
    pub(super) fn use_artifact(&mut self, id: &str, until: &Until) -> Result<(), UploadError> {
        let target = self.target()?;
        if let Err(err) = artifact::record_use(&self.conn, &target, id, until) {
            self.report.warnings.push(err.to_string());
        }
        Ok(())
    }
}
