//! [`Run`] and its builder: the user's handle on one run.
//!
//! Every method turns its call into an [`Input`] on the run's bounded queue and returns:
//! no method waits on the network, and none does more than a channel send on the caller's
//! thread (values are encoded by the core's handler thread). When the queue is full
//! because the disk is behind, `log` waits for room rather than drop data.
//!
//! Starting one is cairn-core's [`launch`](cairn_core::launch): the builder's values are
//! the explicit settings, resolved against the environment and W&B's settings files; the
//! resume question, the run folder and the pipeline are the core's. What is left here is
//! the SDK's own: telemetry, console capture, signals and the artifacts handle.
//!
//! A run ends with [`Run::finish`]. Dropping a run without finishing it finishes it too,
//! with exit code 1 if the thread is panicking and 0 otherwise, so a panic still leaves a
//! complete, readable log.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_core::console::{ConsoleCapture, Stream};
use cairn_core::input::{ConfigChange, Input, LogCall, Query, SummaryChange};
use cairn_core::launch::{self, Explicit, LaunchError, Launched, SettingsError};
use cairn_core::pipeline::{Event, FinishReport, LifecycleError, Pipeline, RunInput};
use cairn_core::value::Value;
use cairn_proto::record::RecordType;
use cairn_proto::{
    AlertRecord, ConfigItem, ConfigRecord, FilesItem, FilesRecord, MetricOptions, MetricRecord,
    MetricSummary, Record, RunPreemptingRecord, TelemetryRecord,
};
use cairn_store::SyncPolicy;

use crate::artifact::{Artifact, ArtifactError, ArtifactHandle, RunArtifacts, UsedArtifact};
use crate::media::{self, Table};
use crate::settings::{Mode, RunLayout};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A setting cannot be used (it names the value and where it came from), or online
    /// mode has no API key.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The run could not start: the resume setting forbids what the server holds, the
    /// server could not be asked, or the run folder could not be made.
    #[error(transparent)]
    Launch(#[from] LaunchError),
}

/// Why a call on a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run has finished; nothing more can be logged.
    #[error("the run is finished")]
    Finished,
    /// A key cannot be logged.
    #[error("invalid key {0:?}: keys must be at most {MAX_KEY_LEN} bytes")]
    BadKey(String),
    /// A value could not be converted.
    #[error("cannot log value for `{key}`: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

impl From<LifecycleError> for RunError {
    fn from(_: LifecycleError) -> Self {
        RunError::Finished
    }
}

/// Longest key accepted (W&B's server limit on metric names is in this range).
pub const MAX_KEY_LEN: usize = 4096;
/// Settings for a new run; build with [`crate::init`] and start with [`RunBuilder::start`].
///
/// Each value set here wins over the environment (`WANDB_*`) and W&B's settings files.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RunBuilder {
    settings: Explicit,
    config: Vec<(String, Value)>,
    signals: Option<bool>,
}

macro_rules! string_setters {
    ($($(#[$doc:meta])* $name:ident => $field:ident),*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<String>) -> Self {
            self.settings.$field = Some(value.into());
            self
        }
    )*};
}

impl RunBuilder {
    string_setters!(
        /// The project (`WANDB_PROJECT`; default `uncategorized`).
        project => project,
        /// The user or team (`WANDB_ENTITY`).
        entity => entity,
        /// The display name (`WANDB_NAME`).
        name => name,
        /// The run id (`WANDB_RUN_ID`; default: 8 random characters).
        id => run_id,
        /// Notes (`WANDB_NOTES`).
        notes => notes,
        /// The group (`WANDB_RUN_GROUP`).
        group => group,
        /// The job type (`WANDB_JOB_TYPE`).
        job_type => job_type,
        /// `online`, `offline` or `disabled` (`WANDB_MODE`; default online when an API
        /// key is found, else offline).
        mode => mode,
        /// `allow`, `must`, `never` or `auto` (`WANDB_RESUME`); `true` is `auto` and
        /// `false` no resume, as in W&B's `init(resume=True/False)`.
        resume => resume,
        /// The server to upload to in online mode (default `WANDB_BASE_URL`, else W&B's
        /// cloud).
        base_url => base_url,
        /// The API key for online mode (default `WANDB_API_KEY`, else `~/.netrc`).
        api_key => api_key
    );

    /// Tags (`WANDB_TAGS`, comma-separated).
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.settings.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// One config value; call again for more.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    /// Config from anything serialisable to a JSON object (a struct of hyperparameters).
    pub fn config_from<T: serde::Serialize>(mut self, config: &T) -> Result<Self, RunError> {
        match serde_json::to_value(config) {
            Ok(serde_json::Value::Object(map)) => {
                self.config
                    .extend(map.into_iter().map(|(k, v)| (k, Value::from(v))));
                Ok(self)
            }
            Ok(_) => Err(RunError::BadValue {
                key: "config".into(),
                reason: "the config must serialise to a map".into(),
            }),
            Err(e) => Err(RunError::BadValue {
                key: "config".into(),
                reason: e.to_string(),
            }),
        }
    }

    /// The folder runs go under (`WANDB_DIR`; default the current directory).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.settings.dir = Some(dir.into());
        self
    }

    /// Whether to capture stdout and stderr (`WANDB_CONSOLE=off` disables; default on).
    pub fn console(mut self, on: bool) -> Self {
        self.settings.console = Some(on);
        self
    }

    /// Whether SIGINT/SIGTERM finish the run (exit code 128 + signal) before the process
    /// dies (default on).
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.signals = Some(on);
        self
    }

    /// How often to sample system metrics, or `None` for never (default 15 s).
    pub fn system_metrics(mut self, interval: Option<Duration>) -> Self {
        self.settings.system_metrics = Some(interval);
        self
    }

    /// When the transaction log is forced to disk (default: never; the OS decides).
    pub fn sync_policy(mut self, policy: SyncPolicy) -> Self {
        self.settings.sync = Some(policy);
        self
    }

    /// How long `finish` waits for the sender (`CAIRN_FINISH_DEADLINE`; default 60 s).
    pub fn finish_deadline(mut self, deadline: Duration) -> Self {
        self.settings.finish_deadline = Some(deadline);
        self
    }

    /// Starts the run: resolves the settings, then cairn-core's `launch` asks the server
    /// about a run to resume (online, with `resume`: the one time `start` waits on the
    /// network, as W&B's `init` does), creates the folder and log, starts the pipeline
    /// and queues the run record (a resumed run's stored config and summary included).
    pub fn start(self) -> Result<Run, InitError> {
        let RunBuilder {
            settings,
            config,
            signals,
        } = self;
        let mut settings = launch::resolve(launch::gather(settings, &launch::process_env))?;
        settings.connection.user_agent = format!("cairn-sdk {}", env!("CARGO_PKG_VERSION"));
        if settings.mode == Mode::Disabled {
            return Ok(Run::disabled(settings.run_id));
        }
        let started = SystemTime::now();
        let mut record = settings.run_record(started);
        record.config = Some(config_record(&config));
        let Launched {
            pipeline,
            events,
            layout,
            run,
            connection,
            artifacts: board,
            settings,
        } = launch::launch(settings, record)?;
        let input = pipeline.input().clone();
        // The queue holds two inputs at most: these cannot wait or fail.
        let _ = input.send(Input::Record(Box::new(telemetry_record(settings.mode))));
        let _ = input.send(Input::Record(Box::new(environment_record(started))));
        let artifacts = RunArtifacts {
            board,
            connection,
            entity: Some(run.entity).filter(|e| !e.is_empty()),
            project: run.project,
            run_id: run.run_id.clone(),
            run_dir: layout.run_dir.clone(),
            pending: std::sync::Mutex::new(Vec::new()),
        };
        let capture = if settings.console {
            start_capture(input.clone())
        } else {
            None
        };
        let signals = if signals.unwrap_or(true) {
            crate::signals::register(input.clone(), pipeline.completion())
        } else {
            None
        };
        Ok(Run {
            id: run.run_id,
            layout: Some(layout),
            inner: Some(Inner {
                should_stop: pipeline.should_stop(),
                pipeline,
                input,
                capture,
                events,
                signals,
                artifacts,
            }),
            deadline: settings.finish_deadline,
        })
    }
}

/// The init's config: W&B's `_wandb` entry, then the values given.
fn config_record(config: &[(String, Value)]) -> ConfigRecord {
    let wandb = ConfigItem {
        key: "_wandb".into(),
        value_json: "{}".into(),
        ..Default::default()
    };
    let given = config.iter().map(|(k, v)| ConfigItem {
        key: k.clone(),
        value_json: v.to_json(),
        ..Default::default()
    });
    ConfigRecord {
        update: std::iter::once(wandb).chain(given).collect(),
        ..Default::default()
    }
}

fn telemetry_record(mode: Mode) -> Record {
    let mut telemetry = TelemetryRecord {
        cli_version: format!("cairn-{}", env!("CARGO_PKG_VERSION")),
        platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        ..Default::default()
    };
    if mode == Mode::Offline {
        telemetry.feature = Some(cairn_proto::Feature {
            offline: true,
            ..Default::default()
        });
    }
    Record {
        record_type: Some(RecordType::Telemetry(telemetry)),
        ..Default::default()
    }
}

fn environment_record(started: SystemTime) -> Record {
    let mut env = cairn_core::system::probe_environment();
    let args: Vec<String> = std::env::args().collect();
    if let Some(program) = args.first() {
        env.program = program.clone();
    }
    env.args = args.into_iter().skip(1).collect();
    if let Ok(exe) = std::env::current_exe() {
        env.executable = exe.display().to_string();
    }
    if let Ok(cwd) = std::env::current_dir() {
        env.root = cwd.display().to_string();
    }
    let since_epoch = started.duration_since(UNIX_EPOCH).unwrap_or_default();
    env.started_at = Some(prost_types::Timestamp {
        seconds: since_epoch.as_secs() as i64,
        nanos: since_epoch.subsec_nanos() as i32,
    });
    Record {
        record_type: Some(RecordType::Environment(env)),
        ..Default::default()
    }
}

fn start_capture(input: RunInput) -> Option<ConsoleCapture> {
    ConsoleCapture::start(move |stream: Stream, bytes: &[u8], at: SystemTime| {
        let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let record = Record {
            record_type: Some(RecordType::OutputRaw(cairn_proto::OutputRawRecord {
                output_type: stream.output_type() as i32,
                line: String::from_utf8_lossy(bytes).into_owned(),
                timestamp: Some(prost_types::Timestamp {
                    seconds: since_epoch.as_secs() as i64,
                    nanos: since_epoch.subsec_nanos() as i32,
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        // Console output waits for room like any other input.
        let _ = input.send(Input::Record(Box::new(record)));
    })
    .ok()
}

#[derive(Debug)]
struct Inner {
    should_stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pipeline: Pipeline,
    input: RunInput,
    capture: Option<ConsoleCapture>,
    events: std::sync::mpsc::Receiver<Event>,
    /// Registration with the signal listener, removed when the run finishes.
    signals: Option<u64>,
    artifacts: RunArtifacts,
}

/// A run: log metrics, set the summary and config, then [`finish`](Run::finish).
#[derive(Debug)]
#[must_use = "dropping a run finishes it"]
pub struct Run {
    id: String,
    layout: Option<RunLayout>,
    inner: Option<Inner>,
    deadline: Duration,
}

/// Options of [`Run::log_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Log into this step instead of the current one.
    pub step: Option<i64>,
    /// Commit the step now (`true`) or keep accumulating (`false`); by default a call
    /// without a step commits and a call with one accumulates.
    pub commit: Option<bool>,
}

impl Run {
    fn disabled(id: String) -> Self {
        Self {
            id,
            layout: None,
            inner: None,
            deadline: Duration::ZERO,
        }
    }

    /// The run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the server asked this run to stop (`cairn run stop`, W&B's stop button):
    /// a training loop polls it and ends cleanly. Always `false` offline.
    pub fn should_stop(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| i.should_stop.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The run's folder (`None` when disabled).
    pub fn dir(&self) -> Option<&Path> {
        self.layout.as_ref().map(|l| l.run_dir.as_path())
    }

    /// The run's `.wandb` log (`None` when disabled).
    pub fn log_path(&self) -> Option<&Path> {
        self.layout.as_ref().map(|l| l.log_path.as_path())
    }

    fn send(&self, input: Input) -> Result<(), RunError> {
        match &self.inner {
            Some(inner) => Ok(inner.input.send(input)?),
            None => Ok(()),
        }
    }

    /// Logs values into the current step and commits it.
    pub fn log<K, V>(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), RunError>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        self.log_with(items, LogOptions::default())
    }

    /// Logs values into step `step` (committed when a later step is logged).
    pub fn log_at<K, V>(
        &self,
        step: i64,
        items: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), RunError>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        self.log_with(
            items,
            LogOptions {
                step: Some(step),
                commit: None,
            },
        )
    }

    /// Logs values with an explicit step and/or commit.
    pub fn log_with<K, V>(
        &self,
        items: impl IntoIterator<Item = (K, V)>,
        options: LogOptions,
    ) -> Result<(), RunError>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        if self.inner.is_none() {
            return Ok(());
        }
        let mut converted = Vec::new();
        for (k, v) in items {
            let key = k.into();
            if key.len() > MAX_KEY_LEN {
                return Err(RunError::BadKey(key));
            }
            converted.push((key, v.into()));
        }
        self.send(Input::Log(LogCall {
            items: converted,
            step: options.step,
            commit: options.commit,
            timestamp: now_secs(),
        }))
    }

    /// Logs every field of a serialisable value (a struct or map) into the current step.
    pub fn log_serialize<T: serde::Serialize>(&self, values: &T) -> Result<(), RunError> {
        match serde_json::to_value(values) {
            Ok(serde_json::Value::Object(map)) => {
                self.log(map.into_iter().map(|(k, v)| (k, Value::from(v))))
            }
            Ok(_) => Err(RunError::BadValue {
                key: String::new(),
                reason: "log_serialize needs a value that serialises to a map".into(),
            }),
            Err(e) => Err(RunError::BadValue {
                key: String::new(),
                reason: e.to_string(),
            }),
        }
    }

    /// Sets summary values (they replace what the run derived from history).
    pub fn summary_set<K, V>(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), RunError>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        let update = items
            .into_iter()
            .map(|(k, v)| (vec![k.into()], v.into()))
            .collect();
        self.send(Input::Summary(SummaryChange {
            update,
            remove: Vec::new(),
        }))
    }

    /// Removes summary keys.
    pub fn summary_remove<K: Into<String>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<(), RunError> {
        let remove = keys.into_iter().map(|k| vec![k.into()]).collect();
        self.send(Input::Summary(SummaryChange {
            update: Vec::new(),
            remove,
        }))
    }

    /// The current summary: top-level keys and nested paths with their values.
    pub fn summary(&self) -> Result<Vec<(Vec<String>, Value)>, RunError> {
        let (tx, rx) = sync_channel(1);
        if self.inner.is_none() {
            return Ok(Vec::new());
        }
        self.send(Input::Query(Query::Summary(tx)))?;
        rx.recv().map_err(|_| RunError::Finished)
    }

    /// The step the next committed row will have.
    pub fn step(&self) -> Result<i64, RunError> {
        let (tx, rx) = sync_channel(1);
        if self.inner.is_none() {
            return Ok(0);
        }
        self.send(Input::Query(Query::HistoryStep(tx)))?;
        rx.recv().map_err(|_| RunError::Finished)
    }

    /// Updates config values.
    pub fn config_update<K, V>(
        &self,
        items: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), RunError>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        let update = items
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.send(Input::Config(ConfigChange {
            update,
            remove: Vec::new(),
        }))
    }

    /// Starts a metric definition (`define_metric`); finish it with [`MetricDef::apply`].
    pub fn define_metric(&self, name: impl Into<String>) -> MetricDef<'_> {
        let record = cairn_core::input::metric_definition(&name.into());
        MetricDef { run: self, record }
    }

    /// Raises an alert (`level`: INFO, WARN or ERROR).
    pub fn alert(
        &self,
        title: impl Into<String>,
        text: impl Into<String>,
        level: &str,
    ) -> Result<(), RunError> {
        self.record(RecordType::Alert(AlertRecord {
            title: title.into(),
            text: text.into(),
            level: level.to_owned(),
            wait_duration: 60_000,
            ..Default::default()
        }))
    }

    /// Saves a file with the run: copies it into the run's `files/` folder now.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), RunError> {
        let Some(layout) = &self.layout else {
            return Ok(());
        };
        let path = path.as_ref();
        let name = path.file_name().ok_or_else(|| RunError::BadValue {
            key: path.display().to_string(),
            reason: "not a file".into(),
        })?;
        std::fs::copy(path, layout.files_dir.join(name)).map_err(|e| RunError::BadValue {
            key: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.upload_now(&name.to_string_lossy())
    }

    /// Logs an artifact and returns at once: its files are hashed on another thread, then
    /// it is saved beside the run's other uploads (online) or kept in the log for
    /// `cairn sync` (offline). [`ArtifactHandle::wait`] gives the outcome.
    pub fn log_artifact(&self, artifact: &Artifact) -> Result<ArtifactHandle, ArtifactError> {
        match &self.inner {
            Some(inner) => inner.artifacts.log(&inner.input, artifact),
            None => Err(ArtifactError::NoRun(artifact.name().to_owned())),
        }
    }

    /// Finds the artifact version `name` (`[entity/][project/]name[:alias|:vN]`; the
    /// run's entity and project by default, `latest` by default) on the server and records
    /// that this run uses it. Online only; this call waits for the server's answer.
    pub fn use_artifact(&self, name: &str) -> Result<UsedArtifact, ArtifactError> {
        match &self.inner {
            Some(inner) => inner.artifacts.use_artifact(&inner.input, name),
            None => Err(ArtifactError::NoRun(name.to_owned())),
        }
    }

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
    fn upload_now(&self, name: &str) -> Result<(), RunError> {
        self.record(RecordType::Files(FilesRecord {
            files: vec![FilesItem {
                path: name.to_owned(),
                ..Default::default()
            }],
            ..Default::default()
        }))
    }

    /// Marks the run as about to be preempted.
    pub fn mark_preempting(&self) -> Result<(), RunError> {
        self.record(RecordType::Preempting(RunPreemptingRecord::default()))
    }

    fn record(&self, record_type: RecordType) -> Result<(), RunError> {
        self.send(Input::Record(Box::new(Record {
            record_type: Some(record_type),
            ..Default::default()
        })))
    }

    /// Warnings and progress the core reported since the last call.
    pub fn events(&self) -> Vec<Event> {
        self.inner
            .as_ref()
            .map(|i| i.events.try_iter().collect())
            .unwrap_or_default()
    }

    /// Finishes the run with exit code 0.
    pub fn finish(self) -> Result<Option<FinishReport>, RunError> {
        self.finish_with(0)
    }

    /// Finishes the run with an exit code: everything logged is written, then the run's
    /// files; returns what the pipeline did (`None` when disabled).
    pub fn finish_with(mut self, exit_code: i32) -> Result<Option<FinishReport>, RunError> {
        self.finish_inner(exit_code)
    }

    fn finish_inner(&mut self, exit_code: i32) -> Result<Option<FinishReport>, RunError> {
        let Some(inner) = self.inner.take() else {
            return Ok(None);
        };
        if let Some(id) = inner.signals {
            crate::signals::unregister(id);
        }
        if let Some(capture) = inner.capture {
            use std::io::Write;
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            let _ = capture.stop();
        }
        inner.artifacts.wait_hashing();
        drop(inner.input);
        let report = inner.pipeline.finish(exit_code, self.deadline)?;
        if exit_code == 0
            && let Some(layout) = &self.layout
        {
            // A run that ended well is not one for `resume="auto"` to come back to.
            layout.forget_resume_file();
        }
        Ok(Some(report))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let code = if std::thread::panicking() { 1 } else { 0 };
        let _ = self.finish_inner(code);
    }
}

/// A metric definition being built; see [`Run::define_metric`].
#[derive(Debug)]
#[must_use = "call apply() to define the metric"]
pub struct MetricDef<'a> {
    run: &'a Run,
    record: MetricRecord,
}

impl MetricDef<'_> {
    /// Plots this metric against another metric instead of `_step`.
    pub fn step_metric(mut self, metric: impl Into<String>) -> Self {
        self.record.step_metric = metric.into();
        self
    }

    /// Adds the step metric's latest value to rows that log this metric without it.
    pub fn step_sync(mut self, on: bool) -> Self {
        self.options().step_sync = on;
        self
    }

    /// Hides the metric in the UI.
    pub fn hidden(mut self, on: bool) -> Self {
        self.options().hidden = on;
        self
    }

    /// Summary aggregates, W&B-style: any of `min`, `max`, `mean`, `first`, `last`,
    /// `best`, `copy`, `none`, comma-separated.
    pub fn summary(mut self, aggregates: &str) -> Self {
        let mut s = MetricSummary::default();
        for agg in aggregates.split(',').map(str::trim) {
            match agg {
                "min" => s.min = true,
                "max" => s.max = true,
                "mean" => s.mean = true,
                "first" => s.first = true,
                "last" => s.last = true,
                "best" => s.best = true,
                "copy" => s.copy = true,
                "none" => s.none = true,
                _ => {}
            }
        }
        self.record.summary = Some(s);
        self
    }

    /// The goal for `best`: `minimize` or `maximize`.
    pub fn goal(mut self, goal: &str) -> Self {
        use cairn_proto::metric_record::MetricGoal;
        self.record.goal = match goal {
            "maximize" | "max" => MetricGoal::GoalMaximize as i32,
            "minimize" | "min" => MetricGoal::GoalMinimize as i32,
            _ => MetricGoal::GoalUnset as i32,
        };
        self
    }

    fn options(&mut self) -> &mut MetricOptions {
        self.record.options.get_or_insert_with(Default::default)
    }

    /// Sends the definition.
    pub fn apply(self) -> Result<(), RunError> {
        self.run.send(Input::DefineMetric(Box::new(self.record)))
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
