//! Rich values a [`Run`] logs as W&B does: a table or an image becomes a file in the run's
//! `files/media/…` folder (named by key, step and content hash), a descriptor in the
//! history row, and (tables) a `run_table` artifact. The encodings are in [`crate::media`].

use std::path::{Path, PathBuf};

use cairn_core::value::Value;
use cairn_proto::record::RecordType;
use cairn_proto::{FilesItem, FilesRecord};

use super::error::RunError;
use super::handle::Run;
use crate::artifact::Artifact;
use crate::media::{self, Table};

impl Run {
    /// Logs `table` under `key` into the current step and commits the step, as W&B's
    /// `run.log({key: wandb.Table(...)})` does: a run file, a `table-file` descriptor in
    /// the row, and a `run_table` artifact (see [`crate::media`]).
    pub fn log_table(&self, key: &str, table: &Table) -> Result<(), RunError> {
        let (Some(layout), Some(inner)) = (&self.layout, &self.inner) else {
            return Ok(());
        };
        let bytes = table.to_json();
        let (name, path, sha) =
            self.write_media(&layout.files_dir, key, "table", "table.json", &bytes)?;
        let safe_key: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let entry = format!("{safe_key}.table.json");
        let artifact = Artifact::new(format!("run-{}-{safe_key}", self.id), "run_table")
            .add_file_as(&path, entry.as_str());
        let handle = inner
            .artifacts
            .log(&inner.input, &artifact)
            .map_err(|err| RunError::BadValue {
                key: key.to_owned(),
                reason: err.to_string(),
            })?;
        let (ncols, nrows) = table.shape();
        let descriptor = serde_json::json!({
            "_type": "table-file",
            "path": name,
            "sha256": sha,
            "size": bytes.len(),
            "ncols": ncols,
            "nrows": nrows,
            "log_mode": "IMMUTABLE",
            "artifact_path": format!("wandb-client-artifact://{}/{entry}", handle.client_id()),
            "_latest_artifact_path": format!(
                "wandb-client-artifact://{}:latest/{entry}",
                handle.sequence_client_id()
            ),
        });
        self.log_media(key, &name, descriptor)
    }

    /// Logs a PNG image (its bytes) under `key` into the current step and commits the step,
    /// as W&B's `run.log({key: wandb.Image(...)})` does: a run file and an `image-file`
    /// descriptor in the row (see [`crate::media`]).
    pub fn log_image(&self, key: &str, png: &[u8]) -> Result<(), RunError> {
        let Some(layout) = &self.layout else {
            return Ok(());
        };
        let (width, height) = media::png_size(png).ok_or_else(|| RunError::BadValue {
            key: key.to_owned(),
            reason: "not a PNG image".into(),
        })?;
        let (name, _, sha) = self.write_media(&layout.files_dir, key, "images", "png", png)?;
        let descriptor = serde_json::json!({
            "_type": "image-file",
            "path": name,
            "sha256": sha,
            "size": png.len(),
            "format": "png",
            "width": width,
            "height": height,
        });
        self.log_media(key, &name, descriptor)
    }

    /// Writes media `bytes` logged under `key` at the current step to
    /// `files/media/<folder>/<key>_<step>_<hash>.<ext>`; returns the name under `files/`,
    /// the path, and the SHA-256.
    fn write_media(
        &self,
        files_dir: &Path,
        key: &str,
        folder: &str,
        ext: &str,
        bytes: &[u8],
    ) -> Result<(String, PathBuf, String), RunError> {
        let step = self.step()?;
        let sha = media::sha256_hex(bytes);
        let name = format!(
            "media/{folder}/{}",
            media::media_file_name(key, step, &sha, ext)
        );
        let path = files_dir.join(&name);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, bytes));
        written.map_err(|err| RunError::BadValue {
            key: key.to_owned(),
            reason: format!("cannot write {}: {err}", path.display()),
        })?;
        Ok((name, path, sha))
    }

    /// Uploads the media file `name` now (W&B's policy for media) and logs its descriptor
    /// under `key`, committing the step.
    fn log_media(
        &self,
        key: &str,
        name: &str,
        descriptor: serde_json::Value,
    ) -> Result<(), RunError> {
        self.upload_now(name)?;
        self.log([(key, Value::from(descriptor))])
    }

    /// Asks for the file `name` of `files/` to be uploaded now.
    pub(super) fn upload_now(&self, name: &str) -> Result<(), RunError> {
        self.record(RecordType::Files(FilesRecord {
            files: vec![FilesItem {
                path: name.to_owned(),
                ..Default::default()
            }],
            ..Default::default()
        }))
    }
}
