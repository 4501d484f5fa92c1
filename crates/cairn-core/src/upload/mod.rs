//! The online side of a run: what the transaction log holds, uploaded to a W&B-compatible
//! server (W&B's own or `cairn server`).
//!
//! The log is the source of truth and the only input. An [`Uploader`] takes records in log
//! order and turns them into W&B's wire traffic: the run upsert (`UpsertBucket`, with the
//! full config, debounced), the filestream (history, system metrics, console, summary,
//! uploaded files, preempting, the final `complete`), run files (`CreateRunFiles` + PUT to
//! the signed URLs), alerts, artifacts (saved by a worker thread beside the rest, see
//! [`artifact`]; the finish waits for them) and the artifacts a run used. Two drivers feed
//! it:
//!
//! * [`follow`] — a live run: a thread polls the log as the writer appends to it, so the
//!   network is never on the training loop's path, memory holds one request's worth of
//!   lines at most (whatever is not sent yet stays in the log, not in RAM), and a server
//!   that is down only delays the upload;
//! * [`sync_log`] — `cairn sync`: a finished or crashed run's log, read once.
//!
//! Both send the same bytes: filestream offsets are line numbers derived from the log, so
//! a retried request, a second sync, or a sync after a cut-off live upload can never
//! duplicate a line on the server (it stores each line by its offset).
//!
//! Shutdown: [`follow`] ends when told to finish (after the writer closed the log) and the
//! last records are sent, or when its deadline passes or its abort flag is raised; then
//! the run folder is left for `cairn sync`.

mod convert;
mod filestream;

// Old paths, kept for cairn-service until it imports `crate::client` and `crate::artifact`
// directly.
pub use crate::artifact;
pub use crate::client::{credentials, operations};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use cairn_proto::Record;
use cairn_proto::record::RecordType;
use cairn_store::LogReader;
use serde_json::{Value as Json, json};

pub use crate::client::{Connection, ConnectionConfig, HttpError, Policies, Until};
use crate::client::{in_parallel, upload_headers};
use crate::console::{ConsoleModel, Stream};
use crate::runfiles::model::RunFiles;
use filestream::FileStream;

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

/// Run-file uploads in flight at once.
const PARALLEL_UPLOADS: usize = 8;

/// Run files uploaded at the end when present (W&B's set).
const END_FILES: &[&str] = &[
    "wandb-metadata.json",
    "requirements.txt",
    "config.yaml",
    "wandb-summary.json",
    "output.log",
];

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
    pub artifacts: Arc<artifact::ArtifactBoard>,
    /// What the upload is doing right now (for the SDK's progress display).
    pub operations: Arc<operations::Operations>,
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

/// Why an upload stopped.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The server could not be reached or refused a request.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The log holds records of a run but no run record before them.
    #[error("the log has no run record before its data")]
    NoRun,
    /// The server's answer lacks what the upload needs.
    #[error("unexpected answer to {operation}: {detail}")]
    Answer {
        /// The GraphQL operation.
        operation: &'static str,
        /// What was missing.
        detail: String,
    },
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] cairn_store::OpenError),
    /// Reading the log failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What an upload did.
#[derive(Debug, Default, Clone)]
pub struct UploadReport {
    /// `entity/project/run` on the server, once known.
    pub path: Option<String>,
    /// Records read from the log.
    pub records: u64,
    /// History lines sent (and confirmed).
    pub history_lines: u64,
    /// Filestream requests that reached the server.
    pub requests: u64,
    /// Run files uploaded.
    pub files: Vec<String>,
    /// Whether the final `complete` reached the server.
    pub completed: bool,
    /// Damage met in the log (records after it were still read).
    pub damage: Vec<String>,
    /// Problems that did not stop the upload (a file that could not be uploaded, …).
    pub warnings: Vec<String>,
    /// Artifact versions saved (`collection:vN`, or the id when the server gave no number).
    pub artifacts: Vec<String>,
    /// Files sent for artifacts, manifests included.
    pub artifact_files: usize,
}

/// The run as the server knows it.
#[derive(Debug, Clone)]
struct RemoteRun {
    entity: String,
    project: String,
    name: String,
}

const UPSERT_BUCKET: &str = "mutation UpsertBucket($id: String, $name: String, $project: String, \
$entity: String, $groupName: String, $description: String, $displayName: String, $notes: String, \
$commit: String, $config: JSONString, $host: String, $program: String, $repo: String, \
$jobType: String, $state: String, $sweep: String, $tags: [String!], $summaryMetrics: JSONString) {
  upsertBucket(input: {id: $id, name: $name, groupName: $groupName, modelName: $project, \
entityName: $entity, description: $description, displayName: $displayName, notes: $notes, \
config: $config, commit: $commit, host: $host, jobProgram: $program, jobRepo: $repo, \
jobType: $jobType, state: $state, sweep: $sweep, tags: $tags, summaryMetrics: $summaryMetrics}) {
    bucket { id name displayName project { name entity { name } } historyLineCount }
    inserted
  }
}";

const RUN_RESUME_STATUS: &str =
    "query RunResumeStatus($project: String, $entity: String, $name: String!) {
  model(name: $project, entityName: $entity) {
    bucket(name: $name, missingOk: true) { id historyLineCount eventsLineCount logLineCount }
  }
}";

const CREATE_RUN_FILES: &str = "mutation CreateRunFiles($entity: String!, $project: String!, $run: String!, $files: [String!]!) {
  createRunFiles(input: {entityName: $entity, projectName: $project, runName: $run, files: $files}) {
    runID uploadHeaders files { name uploadUrl }
  }
}";

const NOTIFY_ALERT: &str = "mutation NotifyScriptableRunAlert($entityName: String!, $projectName: String!, \
$runName: String!, $title: String!, $text: String!, $severity: AlertSeverity = INFO, $waitDuration: Duration) {
  notifyScriptableRunAlert(input: {entityName: $entityName, projectName: $projectName, runName: $runName, \
title: $title, text: $text, severity: $severity, waitDuration: $waitDuration}) { success }
}";

/// Turns log records into W&B's wire traffic (see the module docs).
#[derive(Debug)]
pub struct Uploader {
    conn: Connection,
    settings: UploadSettings,
    run: Option<RemoteRun>,
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
    stop: Arc<AtomicBool>,
    /// Saves artifacts beside the rest; started with the first one.
    artifact_worker: Option<ArtifactWorker>,
    /// Run files made from the log for an upload of a log whose run folder lacks them
    /// ([`sync_log`]): `config.yaml`, `wandb-summary.json`, `wandb-metadata.json`.
    generated: Option<tempfile::TempDir>,
    report: UploadReport,
}

/// A thread saving a run's artifacts in log order, publishing each outcome.
#[derive(Debug)]
struct ArtifactWorker {
    queue: std::sync::mpsc::Sender<(artifact::Target, cairn_proto::ArtifactRecord)>,
    /// Ends with the versions saved, the failures, and the files sent.
    thread: std::thread::JoinHandle<(Vec<String>, Vec<String>, usize)>,
}

impl ArtifactWorker {
    fn start(
        conn: Connection,
        board: Arc<artifact::ArtifactBoard>,
        operations: Arc<operations::Operations>,
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
                                artifact::ArtifactOutcome::Saved(done)
                            }
                            Err(err) => {
                                failed.push(err.to_string());
                                artifact::ArtifactOutcome::Failed(err.to_string())
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
            RecordType::UseArtifact(used) => {
                let target = self.target()?;
                if let Err(err) = artifact::record_use(&self.conn, &target, &used.id, until) {
                    self.report.warnings.push(err.to_string());
                }
            }
            RecordType::Preempting(_) => self.stream()?.set_preempting(),
            RecordType::Exit(exit) => self.exit_code = Some(exit.exit_code),
            _ => {}
        }
        Ok(())
    }

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
    fn save_artifact(
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
    fn finish_artifacts(&mut self) {
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

    /// The first upsert: creates (or finds) the run, learns its entity and project, and
    /// where its lines continue when it is resumed.
    fn start_run(
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
            .graphql("UpsertBucket", UPSERT_BUCKET, variables, until)?;
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
        let (mut history, mut events, mut console) = (0, 0, 0);
        if run.resumed {
            let data = self.conn.graphql(
                "RunResumeStatus",
                RUN_RESUME_STATUS,
                json!({"project": remote.project, "entity": remote.entity, "name": remote.name}),
                until,
            )?;
            let bucket = &data["model"]["bucket"];
            let count = |key: &str| bucket[key].as_u64().unwrap_or(0);
            history = count("historyLineCount");
            events = count("eventsLineCount");
            console = count("logLineCount");
        }
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

    fn upsert_config(&mut self, until: &Until) -> Result<(), UploadError> {
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
            .graphql("UpsertBucket", UPSERT_BUCKET, variables, until)?;
        self.config_dirty = false;
        self.last_upsert = Some(Instant::now());
        Ok(())
    }

    fn alert(
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
        self.conn
            .graphql("NotifyScriptableRunAlert", NOTIFY_ALERT, variables, until)?;
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
    fn send_one(&mut self, until: &Until) -> Result<(), UploadError> {
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

    /// Uploads run files (names relative to the files folder) that exist: one
    /// `CreateRunFiles`, then a PUT each. A file that cannot be read is a warning.
    fn upload_files(&mut self, names: &[String], until: &Until) -> Result<(), UploadError> {
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
            CREATE_RUN_FILES,
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
        names.extend(END_FILES.iter().map(|s| (*s).to_owned()));
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

/// A name safe to join under the files folder: relative, no `..`, no NUL.
pub fn safe_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\0')
        && !Path::new(name).is_absolute()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
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

/// Reads the records a log gained since the last call, from where the last one ended.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    resume: u64,
    progress: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl LogFollower {
    /// Follows the log at `path` from its first record.
    pub fn new(path: impl Into<PathBuf>) -> LogFollower {
        LogFollower {
            path: path.into(),
            resume: 0,
            progress: None,
        }
    }

    /// Publishes how many bytes of the log have been read (for a progress display).
    pub fn with_progress(mut self, progress: Arc<std::sync::atomic::AtomicU64>) -> LogFollower {
        self.progress = Some(progress);
        self
    }

    /// Hands every whole record written since the last call to `each`, until `each`
    /// answers `false` (enough for now: the next call goes on after that record); a record
    /// cut by a write in progress is read on the next call. Damage in the middle is
    /// reported and read past. Stops early when `each` fails. Returns the records read.
    pub fn read_new(
        &mut self,
        report: &mut UploadReport,
        mut each: impl FnMut(&Record) -> Result<bool, UploadError>,
    ) -> Result<usize, UploadError> {
        let mut reader = LogReader::open(&self.path)?;
        if self.resume > 0 {
            reader
                .seek_to(self.resume)
                .map_err(|source| UploadError::Io {
                    path: self.path.clone(),
                    source,
                })?;
        }
        let mut n = 0;
        while let Some(item) = reader.next() {
            match item {
                Ok(record) => {
                    let decoded = record.decode();
                    let end = reader.position();
                    let more = match decoded {
                        Ok(record) => {
                            let more = each(&record)?;
                            n += 1;
                            more
                        }
                        Err(err) => {
                            report.damage.push(format!(
                                "{}: a record does not decode: {err}",
                                self.path.display()
                            ));
                            true
                        }
                    };
                    self.resume = end;
                    if let Some(progress) = &self.progress {
                        progress.store(end, Ordering::Relaxed);
                    }
                    if !more {
                        break;
                    }
                }
                Err(err) => {
                    if err.damage().is_some_and(|d| d.is_torn_tail()) {
                        break; // not written yet (or the run was cut here)
                    }
                    report.damage.push(err.to_string());
                }
            }
        }
        Ok(n)
    }
}

/// What the server holds of a run that is being resumed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeStatus {
    /// The last `_step` in its history, if it has any.
    pub last_step: Option<i64>,
    /// Seconds it already ran (the last history row's `_runtime`).
    pub runtime: f64,
    /// History lines the server holds.
    pub history_lines: u64,
    /// The stored config, top-level keys to their plain values (W&B's `{"value": v}`
    /// unwrapped).
    pub config: serde_json::Map<String, Json>,
    /// The stored summary.
    pub summary: serde_json::Map<String, Json>,
}

const RESUME_QUERY: &str =
    "query RunResumeStatus($project: String, $entity: String, $name: String!) {
  model(name: $project, entityName: $entity) {
    bucket(name: $name, missingOk: true) { id historyLineCount historyTail config summaryMetrics }
  }
}";

/// Asks the server about run `name` before resuming it (W&B's `RunResumeStatus`):
/// `None` when it does not exist.
pub fn resume_status(
    connection: &ConnectionConfig,
    policies: Policies,
    entity: Option<&str>,
    project: &str,
    name: &str,
    until: &Until,
) -> Result<Option<ResumeStatus>, UploadError> {
    let conn = Connection::with_policies(connection.clone(), policies);
    let data = conn.graphql(
        "RunResumeStatus",
        RESUME_QUERY,
        json!({"project": project, "entity": entity, "name": name}),
        until,
    )?;
    let bucket = &data["model"]["bucket"];
    if bucket.is_null() {
        return Ok(None);
    }
    // `historyTail` is a JSON string holding an array of JSON-line strings.
    let last: Option<serde_json::Map<String, Json>> = bucket["historyTail"]
        .as_str()
        .and_then(|tail| serde_json::from_str::<Vec<String>>(tail).ok())
        .and_then(|lines| lines.last().cloned())
        .and_then(|line| serde_json::from_str(&line).ok());
    Ok(Some(ResumeStatus {
        last_step: last.as_ref().and_then(|row| row.get("_step")?.as_i64()),
        runtime: last
            .as_ref()
            .and_then(|row| row.get("_runtime")?.as_f64())
            .unwrap_or(0.0),
        history_lines: bucket["historyLineCount"].as_u64().unwrap_or(0),
        config: json_object(&bucket["config"])
            .into_iter()
            .map(|(key, value)| match value {
                Json::Object(mut wrapped) if wrapped.contains_key("value") => {
                    (key, wrapped.remove("value").unwrap_or(Json::Null))
                }
                other => (key, other),
            })
            .collect(),
        summary: json_object(&bucket["summaryMetrics"]),
    }))
}

/// A JSON object the server sent as an object or as JSON text (`JSONString`); empty
/// when it is neither.
fn json_object(value: &Json) -> serde_json::Map<String, Json> {
    match value {
        Json::Object(map) => map.clone(),
        Json::String(text) => match serde_json::from_str(text) {
            Ok(Json::Object(map)) => map,
            _ => serde_json::Map::new(),
        },
        _ => serde_json::Map::new(),
    }
}

/// Reads the log as far as it goes, never holding more than one request's worth of
/// unsent lines: when that much waits, a request goes out before reading on. What is not
/// read yet stays in the log, not in memory, however long the server is away.
fn drain(
    uploader: &mut Uploader,
    follower: &mut LogFollower,
    damage: &mut UploadReport,
    until: &Until,
) -> Result<(), UploadError> {
    let budget = uploader.settings.max_request_bytes;
    loop {
        let read = follower.read_new(damage, |record| {
            uploader.observe(record, until)?;
            Ok(uploader.backlog() < budget)
        })?;
        if uploader.backlog() >= budget {
            uploader.send_one(until)?;
        } else if read == 0 {
            return Ok(());
        }
    }
}

/// Uploads a whole log (`cairn sync`): every record, then the finish. `progress` follows
/// the bytes of the log read so far.
///
/// `live: Some(poll)` (`wandb beta sync --live`) is for a log still being written: the
/// upload reads on every `poll`, sending the filestream as it is due, until the log's
/// exit record arrives — or `until` ends (its deadline, its abort flag). A writer that dies
/// without an exit record keeps a live sync waiting, as with W&B's.
pub fn sync_log(
    log: &Path,
    settings: UploadSettings,
    until: &Until,
    progress: Arc<std::sync::atomic::AtomicU64>,
    live: Option<Duration>,
) -> Result<UploadReport, UploadError> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut uploader = Uploader::new(settings, stop);
    let mut follower = LogFollower::new(log).with_progress(progress);
    let mut damage = UploadReport::default();
    drain(&mut uploader, &mut follower, &mut damage, until)?;
    if let Some(poll) = live {
        while uploader.exit_code.is_none() && until.sleep(poll) && !until.expired(Instant::now()) {
            if uploader.run.is_some() {
                uploader.pump(until)?;
            }
            drain(&mut uploader, &mut follower, &mut damage, until)?;
        }
    }
    if uploader.run.is_some() {
        uploader.generate_run_files();
    }
    let mut report = uploader.finish(until)?;
    report.damage = damage.damage;
    Ok(report)
}

/// What the pipeline tells a live upload.
#[derive(Debug)]
pub enum Control {
    /// The log is complete: send the rest and finish, giving up at `until`.
    Finish(Until),
}

/// Drives a live upload on the current thread (see the module docs) until it is told to
/// finish and has sent everything, or gives up. Polls the log every `poll`.
pub fn follow(
    log: &Path,
    settings: UploadSettings,
    stop: Arc<AtomicBool>,
    control: Receiver<Control>,
    poll: Duration,
    abort: Arc<AtomicBool>,
) -> Result<UploadReport, UploadError> {
    let mut uploader = Uploader::new(settings, stop);
    let mut follower = LogFollower::new(log);
    let mut damage = UploadReport::default();
    let live = Until {
        deadline: None,
        abort: Some(abort),
    };
    loop {
        let finish = match control.recv_timeout(poll) {
            Ok(Control::Finish(until)) => Some(until),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(live.clone()),
        };
        let until = finish.as_ref().unwrap_or(&live);
        drain(&mut uploader, &mut follower, &mut damage, until)?;
        if let Some(until) = finish {
            let mut report = uploader.finish(&until)?;
            report.damage = damage.damage;
            return Ok(report);
        }
        uploader.pump(&live)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn names_that_stay_inside() {
        assert!(safe_relative("media/images/a.png"));
        assert!(!safe_relative("../x"));
        assert!(!safe_relative("/etc/passwd"));
        assert!(!safe_relative("a/../../b"));
        assert!(!safe_relative(""));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("my run/1"), "my%20run%2F1");
        assert_eq!(path_segment("abc-1_2.x"), "abc-1_2.x");
    }
}
