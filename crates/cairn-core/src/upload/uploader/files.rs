//! Run files: uploading the files of the run folder the log names (`CreateRunFiles` for their
//! signed URLs, then a PUT each, [`PARALLEL_UPLOADS`] at a time, streamed from disk), now or at
//! the end, and W&B's end-of-run set ([`END_FILES`]). For a run folder that lacks
//! `config.yaml`, `wandb-summary.json` or `wandb-metadata.json` (W&B's offline runs),
//! [`Uploader::generate_run_files`] makes them from the log read so far.
//!
//! The PUTs run on scoped threads that end before the call returns. A file that cannot be read
//! is a warning, not a failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use serde_json::json;

use super::Uploader;
use crate::client::{HttpError, Until, documents, in_parallel, upload_headers};
use crate::runfiles::model::RunFiles;
use crate::upload::report::UploadError;

/// Run-file uploads in flight at once.
const PARALLEL_UPLOADS: usize = 8;

/// Run files uploaded at the end when present (W&B's set).
pub(super) const END_FILES: &[&str] = &[
    "wandb-metadata.json",
    "requirements.txt",
    "config.yaml",
    "wandb-summary.json",
    "output.log",
];

impl Uploader {
    /// Uploads run files (names relative to the files folder) that exist: one
    /// `CreateRunFiles`, then a PUT each. A file that cannot be read is a warning.
    pub(super) fn upload_files(
        &mut self,
        names: &[String],
        until: &Until,
    ) -> Result<(), UploadError> {
        let Some(run) = self.run.clone() else {
            return Err(UploadError::NoRun);
        };
        // Each name resolved once: the names asked for are those with a file.
        let mut paths: HashMap<&str, PathBuf> = names
            .iter()
            .filter_map(|n| Some((n.as_str(), self.file_path(n)?)))
            .collect();
        if paths.is_empty() {
            return Ok(());
        }
        let present: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| paths.contains_key(n))
            .collect();
        let shown = self.settings.operations.start(match present.as_slice() {
            [one] => format!("uploading {one}"),
            many => format!("uploading {} files", many.len()),
        });
        let data = self.conn.graphql(
            "CreateRunFiles",
            documents::CREATE_RUN_FILES,
            json!({"entity": run.entity, "project": run.project, "run": run.name, "files": present}),
            until,
        )?;
        let answer = &data["createRunFiles"];
        let headers = upload_headers(answer);
        // Parallel PUTs, each streamed from disk; a name the server made up is skipped.
        let jobs: Vec<(String, String, PathBuf)> = answer["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let name = f["name"].as_str()?;
                let path = paths.remove(name)?;
                Some((name.to_owned(), f["uploadUrl"].as_str()?.to_owned(), path))
            })
            .collect();
        let conn = &self.conn;
        let (total, done) = (jobs.len(), std::sync::atomic::AtomicUsize::new(0));
        let mut results = in_parallel(
            jobs,
            PARALLEL_UPLOADS,
            |(name, url, path)| {
                let outcome = conn.put_file(&url, &path, &headers, until);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if total > 1 {
                    shown.progress(format!("{n}/{total} files"));
                }
                (name, outcome)
            },
            |_| false,
        );
        drop(shown);
        results.sort_by(|a, b| a.0.cmp(&b.0));
        let mut failure = None;
        for (name, outcome) in results {
            match outcome {
                Ok(()) => {
                    self.report.files.push(name.clone());
                    if let Some(stream) = &mut self.stream {
                        stream.push_uploaded(name);
                    }
                }
                Err(HttpError::File { path, source }) => self
                    .report
                    .warnings
                    .push(format!("cannot upload {}: {source}", path.display())),
                Err(other) => failure = Some(other),
            }
        }
        match failure {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }

    /// Where run file `name` (relative to the files folder) is read from: the run's files
    /// folder, else the files made from the log; `None` when neither has it or the name
    /// leaves the folder.
    fn file_path(&self, name: &str) -> Option<PathBuf> {
        if !safe_relative(name) {
            return None;
        }
        let own = self.settings.files_dir.join(name);
        if own.is_file() {
            return Some(own);
        }
        let made = self.generated.as_ref()?.path().join(name);
        made.is_file().then_some(made)
    }

    /// Makes `config.yaml`, `wandb-summary.json` and `wandb-metadata.json` from the log
    /// read so far, for a run folder that lacks them (W&B's offline runs keep only the
    /// log and `requirements.txt`); the run's files folder wins where it has one. They live
    /// in a temporary folder until the uploader is dropped. A failure is a warning: the
    /// rest of the run still uploads.
    pub fn generate_run_files(&mut self) {
        if RunFiles::NAMES
            .iter()
            .all(|name| self.settings.files_dir.join(name).is_file())
        {
            return; // cairn's and W&B's online runs keep them all
        }
        let made = tempfile::Builder::new()
            .prefix("cairn-run-files-")
            .tempdir()
            .and_then(|dir| self.files.write_all(dir.path()).map(|_| dir));
        match made {
            Ok(dir) => self.generated = Some(dir),
            Err(err) => self
                .report
                .warnings
                .push(format!("cannot make the run files from the log: {err}")),
        }
    }
}

/// A name safe to join under the files folder: relative, no `..`, no NUL.
pub fn safe_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\0')
        && !Path::new(name).is_absolute()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_stay_inside() {
        assert!(safe_relative("media/images/a.png"));
        assert!(!safe_relative("../x"));
        assert!(!safe_relative("/etc/passwd"));
        assert!(!safe_relative("a/../../b"));
        assert!(!safe_relative(""));
    }
}
