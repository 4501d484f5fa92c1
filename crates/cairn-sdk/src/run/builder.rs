//! [`RunBuilder`]: the settings of a new run, and its start — the builder's values are
//! the explicit settings of cairn-core's `launch`, resolved against the environment and
//! W&B's settings files; then what only the SDK sends first (telemetry, the environment
//! record), console capture, signal registration and the artifacts handle.
//!
//! Threads: starting a run starts the core's pipeline threads and, when asked, console
//! capture's; they end with [`Run::finish`].

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_core::console::{ConsoleCapture, Stream};
use cairn_core::input::Input;
use cairn_core::launch::{self, Explicit, Launched};
use cairn_core::pipeline::RunInput;
use cairn_core::value::Value;
use cairn_proto::record::RecordType;
use cairn_proto::{ConfigItem, ConfigRecord, Record, TelemetryRecord};
use cairn_store::SyncPolicy;

use super::error::{InitError, RunError};
use super::handle::{Inner, Run};
use crate::artifact::RunArtifacts;
use crate::settings::Mode;

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
pub(super) fn config_record(config: &[(String, Value)]) -> ConfigRecord {
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

pub(super) fn telemetry_record(mode: Mode) -> Record {
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
