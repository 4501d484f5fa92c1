//! [`Uploader`]: the log's records, in order, become W&B's wire traffic.
//!
//! [`Uploader::observe`] takes one record at a time and dispatches it: the first run record
//! creates the run on the server (`UpsertBucket`, then the filestream's offsets, which continue
//! where a resumed run's lines end); config, telemetry, metric and environment records mark the
//! config for a debounced upsert; history, system metrics and console lines go into the
//! filestream's batch (`super::filestream`); run-file records, alerts, artifacts and used
//! artifacts go to the child modules below. [`Uploader::pump`] sends what is due (the debounced
//! config, files to upload now, the filestream's next request or a heartbeat);
//! [`Uploader::finish`] sends the rest and the final `complete`.
//!
//! * `run` — the run upsert, later upserts of its config and details, and alerts;
//! * `files` — run files (`CreateRunFiles` + PUTs), and making them from the log when the run
//!   folder lacks them;
//! * `artifacts` — the `cairn-artifacts` worker thread that saves the log's artifacts beside
//!   the rest, and lineage.
//!
//! Threads: an uploader works on its caller's thread (a driver in `super::drive`), except for
//! the artifact worker it starts with the first artifact and joins in [`Uploader::finish`].
//! Memory: the filestream's unsent lines, bounded by the driver to one request's worth.

mod artifacts;
mod files;
mod run;

pub use files::safe_relative;
pub use run::run_details;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use cairn_proto::Record;
use cairn_proto::record::RecordType;
use serde_json::Value as Json;

use super::convert;
use super::filestream::FileStream;
use super::report::{UploadError, UploadReport};
use super::settings::UploadSettings;
use crate::client::{Connection, Until};
use crate::console::{ConsoleModel, Stream};
use crate::runfiles::model::RunFiles;

/// Turns log records into W&B's wire traffic (see the module docs).
#[derive(Debug)]
pub struct Uploader {
    conn: Connection,
    settings: UploadSettings,
    run: Option<run::RemoteRun>,
    files: RunFiles,
    /// What later upserts say of the run besides its config: the latest run record's
    /// names, notes and tags (a rename after the start) and the program the environment
    /// record names.
    details: serde_json::Map<String, Json>,
    config_dirty: bool,
    summary_dirty: bool,
    last_upsert: Option<Instant>,
    stream: Option<FileStream>,
    console: ConsoleModel,
    console_at: SystemTime,
    start_time: Option<f64>,
    /// Files to upload at the next pump, and at the end.
    now_files: Vec<String>,
    end_files: Vec<String>,
    exit_code: Option<i32>,
    /// The server takes gzip filestream bodies (its `FILESTREAM_GZIP` feature).
    gzip: bool,
    /// The server says which parts of a multipart upload it already has
    /// (`CAIRN_RESUMABLE_MULTIPART`, cairn's servers).
    resumable_multipart: bool,
    /// Raised (never lowered) when the server answers a filestream request with `stopped`;
    /// the pipeline reads it as `Pipeline::should_stop`.
    stop: Arc<AtomicBool>,
    /// Saves artifacts beside the rest; started with the first one.
    artifact_worker: Option<artifacts::ArtifactWorker>,
    /// Run files made from the log for an upload of a log whose run folder lacks them
    /// ([`sync_log`](super::sync_log)): `config.yaml`, `wandb-summary.json`,
    /// `wandb-metadata.json`.
    generated: Option<tempfile::TempDir>,
    report: UploadReport,
}

impl Uploader {
    /// An uploader; `stop` is raised when the server asks the run to stop.
    pub fn new(settings: UploadSettings, stop: Arc<AtomicBool>) -> Uploader {
        Uploader {
            conn: Connection::with_policies(settings.connection.clone(), settings.policies),
            settings,
            run: None,
            files: RunFiles::default(),
            details: serde_json::Map::new(),
            config_dirty: false,
            summary_dirty: false,
            last_upsert: None,
            stream: None,
            console: ConsoleModel::new(),
            console_at: SystemTime::now(),
            start_time: None,
            now_files: Vec::new(),
            end_files: Vec::new(),
            exit_code: None,
            gzip: false,
            resumable_multipart: false,
            stop,
            artifact_worker: None,
            generated: None,
            report: UploadReport::default(),
        }
    }

    /// What the upload did so far.
    pub fn report(&self) -> &UploadReport {
        &self.report
    }

    /// Bytes of lines read from the log and not yet confirmed by the server.
    pub fn backlog(&self) -> usize {
        self.stream.as_ref().map_or(0, FileStream::pending_bytes)
    }

    /// Takes one record of the log, in order.
    pub fn observe(&mut self, record: &Record, until: &Until) -> Result<(), UploadError> {
        self.report.records += 1;
        self.files.observe(record);
        let Some(kind) = &record.record_type else {
            return Ok(());
        };
        match kind {
            RecordType::Run(run) => {
                let run = &self.settings.overrides.rewrite(run);
                self.start_time = convert::seconds(run.start_time.as_ref());
                self.config_dirty = true;
                if self.run.is_none() {
                    self.start_run(run, until)?;
                } else {
                    // A run record after the first updates the run (a rename, new tags).
                    self.details.extend(run_details(run));
                }
            }
            RecordType::Environment(env) if !env.program.is_empty() => {
                self.details
                    .insert("program".to_owned(), Json::from(env.program.clone()));
                self.config_dirty = true;
            }
            // The config carries `_wandb`: telemetry, metric definitions, environments.
            RecordType::Config(_)
            | RecordType::Telemetry(_)
            | RecordType::Metric(_)
            | RecordType::Environment(_) => self.config_dirty = true,
            RecordType::Summary(_) => self.summary_dirty = true,
            RecordType::History(history) => {
                self.stream()?.push_history(convert::history_line(history));
            }
            RecordType::Stats(stats) => {
                let line = convert::stats_line(stats, self.start_time);
                self.stream()?.push_events(line);
            }
            RecordType::OutputRaw(raw) => {
                if let Some(at) = raw.timestamp.and_then(|t| SystemTime::try_from(t).ok()) {
                    self.console_at = at;
                }
                self.console
                    .write(Stream::from_output_type(raw.output_type), &raw.line);
                self.push_console_lines(false)?;
            }
            RecordType::Files(files) => {
                for item in &files.files {
                    let name = item.path.trim_start_matches('/').to_owned();
                    if item.policy == cairn_proto::files_item::PolicyType::End as i32 {
                        self.end_files.push(name);
                    } else {
                        self.now_files.push(name.clone());
                        self.end_files.push(name);
                    }
                }
            }
            RecordType::Alert(alert) => self.alert(alert, until)?,
            RecordType::Artifact(record) => self.save_artifact(record, until)?,
            RecordType::UseArtifact(used) => self.use_artifact(&used.id, until)?,
            RecordType::Preempting(_) => self.stream()?.set_preempting(),
            RecordType::Exit(exit) => self.exit_code = Some(exit.exit_code),
            _ => {}
        }
        Ok(())
    }

    /// The most unsent filestream bytes a driver lets wait before it sends a request.
    pub(super) fn request_budget(&self) -> usize {
        self.settings.max_request_bytes
    }

    /// Whether the run has started on the server (its first run record was read).
    pub(super) fn has_run(&self) -> bool {
        self.run.is_some()
    }

    /// Whether the log's exit record was read.
    pub(super) fn saw_exit(&self) -> bool {
        self.exit_code.is_some()
    }

    fn stream(&mut self) -> Result<&mut FileStream, UploadError> {
        self.stream.as_mut().ok_or(UploadError::NoRun)
    }

    fn push_console_lines(&mut self, all: bool) -> Result<(), UploadError> {
        let lines = if all {
            std::mem::take(&mut self.console).finish_lines()
        } else {
            self.console.take_completed()
        };
        let at = self.console_at;
        let stream = self.stream()?;
        for line in lines {
            stream.push_console(convert::console_line(line.stream, at, &line.text));
        }
        Ok(())
    }

    /// Sends what is due: debounced config, files to upload now, filestream requests
    /// whose interval has passed, a heartbeat when the stream was quiet.
    pub fn pump(&mut self, until: &Until) -> Result<(), UploadError> {
        if self.run.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        if self.config_dirty
            && self
                .last_upsert
                .is_none_or(|t| now.duration_since(t) >= self.settings.upsert_debounce)
        {
            self.upsert_config(until)?;
        }
        if !self.now_files.is_empty() {
            let names = std::mem::take(&mut self.now_files);
            self.upload_files(&names, until)?;
        }
        self.refresh_summary();
        let interval = self.settings.transmit_interval;
        let heartbeat = self.settings.heartbeat;
        let due = self
            .stream
            .as_ref()
            .is_some_and(|s| s.due(Instant::now(), interval));
        if due {
            self.send_one(until)?;
        } else if self
            .stream
            .as_ref()
            .is_some_and(|s| !s.has_pending() && s.idle_for(now, heartbeat))
        {
            let path = self.stream_path()?;
            let answer = self.conn.post_json(&path, b"{}", false, until)?;
            self.check_stop(&answer);
            if let Some(stream) = &mut self.stream {
                stream.heartbeat_sent(Instant::now());
            }
        }
        Ok(())
    }

    fn refresh_summary(&mut self) {
        if self.summary_dirty
            && let Some(stream) = &mut self.stream
        {
            stream.set_summary(self.files.summary_json());
            self.summary_dirty = false;
        }
    }

    fn stream_path(&self) -> Result<String, UploadError> {
        let run = self.run.as_ref().ok_or(UploadError::NoRun)?;
        Ok(format!(
            "/files/{}/{}/{}/file_stream",
            path_segment(&run.entity),
            path_segment(&run.project),
            path_segment(&run.name)
        ))
    }

    fn check_stop(&self, answer: &Json) {
        if answer.get("stopped").and_then(Json::as_bool) == Some(true) {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    /// Sends one filestream request (the next body) and confirms it.
    pub(super) fn send_one(&mut self, until: &Until) -> Result<(), UploadError> {
        let path = self.stream_path()?;
        let Some(body) = self.stream.as_ref().and_then(FileStream::next_body) else {
            return Ok(());
        };
        let shown = self
            .settings
            .operations
            .start("uploading history, summary and console lines");
        let answer = self.conn.post_json(&path, &body.json, self.gzip, until)?;
        drop(shown);
        self.check_stop(&answer);
        let before = self.stream.as_ref().map_or(0, |s| s.offsets().0);
        if let Some(stream) = &mut self.stream {
            stream.sent(&body, Instant::now());
            self.report.history_lines += stream.offsets().0 - before;
        }
        self.report.requests += 1;
        if body.is_final() {
            self.report.completed = true;
        }
        Ok(())
    }

    /// Ends the upload: the last console lines, the config and summary, every run file,
    /// then the remaining filestream requests, the last one with `complete` and the exit
    /// code (1 when the log has no exit record: the run did not end cleanly).
    pub fn finish(&mut self, until: &Until) -> Result<UploadReport, UploadError> {
        if self.run.is_none() {
            return Err(UploadError::NoRun);
        }
        self.push_console_lines(true)?;
        if self.config_dirty {
            self.upsert_config(until)?;
        }
        self.finish_artifacts();
        let mut names: Vec<String> = std::mem::take(&mut self.end_files);
        names.extend(std::mem::take(&mut self.now_files));
        names.extend(files::END_FILES.iter().map(|s| (*s).to_owned()));
        let mut seen = HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        self.upload_files(&names, until)?;
        self.summary_dirty = true;
        self.refresh_summary();
        let exit_code = match self.exit_code {
            Some(code) => code,
            None => {
                self.report
                    .warnings
                    .push("the log has no exit record: the run is marked failed".to_owned());
                1
            }
        };
        if let Some(stream) = &mut self.stream {
            stream.set_exit(exit_code);
        }
        while self.stream.as_ref().is_some_and(FileStream::has_pending) {
            self.send_one(until)?;
        }
        Ok(self.report.clone())
    }
}

/// Percent-encodes one URL path segment.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("my run/1"), "my%20run%2F1");
        assert_eq!(path_segment("abc-1_2.x"), "abc-1_2.x");
    }
}
