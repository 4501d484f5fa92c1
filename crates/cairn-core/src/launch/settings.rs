//! A run's settings ([`RunSettings`]) and the one resolver that makes them: what the code
//! passed ([`Explicit`]) > the environment (W&B's `WANDB_*` names) > W&B's settings files
//! > defaults, each setting on its own.
//!
//! Input: [`Sources`] — the explicit values, the environment as a lookup function, the
//! settings files' text, the netrc text and the `resume="auto"` file's text, all passed
//! in, so [`resolve`] is pure (reading them from the process is `sources::gather`).
//! Output: [`RunSettings`], or a [`SettingsError`] naming the value, where it came from
//! and what was expected. An empty value is unset, at every layer.
//!
//! | setting | code | environment | settings file key | default |
//! |---|---|---|---|---|
//! | mode | `mode` | `WANDB_MODE` | `mode` | online with an API key, else offline |
//! | server | `base_url` | `WANDB_BASE_URL` | `base_url` | `https://api.wandb.ai` |
//! | API key | `api_key` | `WANDB_API_KEY` | `api_key` | the netrc entry of the server's host |
//! | entity | `entity` | `WANDB_ENTITY` | `entity` | none (the server's default) |
//! | project | `project` | `WANDB_PROJECT` | `project` | `uncategorized` |
//! | run id | `run_id` | `WANDB_RUN_ID` | `run_id` | `auto`'s resume file, else 8 random characters |
//! | resume | `resume` | `WANDB_RESUME` | `resume` | none |
//! | name, notes, group, job type | … | `WANDB_NAME`, `WANDB_NOTES`, `WANDB_RUN_GROUP`, `WANDB_JOB_TYPE` | `run_name`, `run_notes`, `run_group`, `run_job_type` | none |
//! | tags | `tags` | `WANDB_TAGS` (comma-separated) | `run_tags` | none |
//! | folder | `dir` | `WANDB_DIR` | — (W&B refuses `root_dir` there) | `.` |
//! | console capture | `console` | `WANDB_CONSOLE` | `console` | on (`off` turns it off) |
//! | system metrics | `system_metrics` | `WANDB__DISABLE_STATS`, `WANDB__STATS_SAMPLING_INTERVAL` | `x_disable_stats`, `x_stats_sampling_interval` | every 15 s |
//! | filestream interval | `transmit_interval` | `WANDB__FILE_STREAM_TRANSMIT_INTERVAL` | `x_file_stream_transmit_interval` | 15 s |
//! | finish deadline | `finish_deadline` | `CAIRN_FINISH_DEADLINE` | — | 60 s |
//! | log sync policy | `sync` | — | — | never forced |

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_proto::RunRecord;
use cairn_store::SyncPolicy;

use super::error::{Origin, SettingsError};
use super::layout::{RunFolder, generate_run_id, resume_file_id, valid_run_id};
use super::resume::{RESUME_VALUES, Resume};
use super::sources::{Explicit, Sources, default_section, root_dir};
use crate::client::ConnectionConfig;
use crate::client::credentials::{self, DEFAULT_BASE_URL};
use crate::system::{DEFAULT_INTERVAL, SystemConfig};

/// `WANDB_MODE`: online, offline or disabled.
pub const ENV_MODE: &str = "WANDB_MODE";
/// `WANDB_BASE_URL`: the server runs upload to.
pub const ENV_BASE_URL: &str = "WANDB_BASE_URL";
/// `WANDB_API_KEY`: the key runs upload with.
pub const ENV_API_KEY: &str = "WANDB_API_KEY";
/// `WANDB_PROJECT`: the project runs are logged to.
pub const ENV_PROJECT: &str = "WANDB_PROJECT";
/// `WANDB_ENTITY`: the user or team that owns the project.
pub const ENV_ENTITY: &str = "WANDB_ENTITY";
/// `WANDB_RUN_ID`: the run's id.
pub const ENV_RUN_ID: &str = "WANDB_RUN_ID";
/// `WANDB_RESUME`: allow, must, never or auto.
pub const ENV_RESUME: &str = "WANDB_RESUME";
/// `WANDB_NAME`: the run's display name.
pub const ENV_NAME: &str = "WANDB_NAME";
/// `WANDB_NOTES`: the run's notes.
pub const ENV_NOTES: &str = "WANDB_NOTES";
/// `WANDB_TAGS`: comma-separated tags.
pub const ENV_TAGS: &str = "WANDB_TAGS";
/// `WANDB_RUN_GROUP`: the run's group.
pub const ENV_RUN_GROUP: &str = "WANDB_RUN_GROUP";
/// `WANDB_JOB_TYPE`: the run's job type.
pub const ENV_JOB_TYPE: &str = "WANDB_JOB_TYPE";
/// `WANDB_CONSOLE`: `off` disables console capture.
pub const ENV_CONSOLE: &str = "WANDB_CONSOLE";
/// `WANDB__DISABLE_STATS`: `true` turns system metrics off (W&B's `x_disable_stats`).
pub const ENV_DISABLE_STATS: &str = "WANDB__DISABLE_STATS";
/// `WANDB__STATS_SAMPLING_INTERVAL`: seconds between system metric samples.
pub const ENV_STATS_INTERVAL: &str = "WANDB__STATS_SAMPLING_INTERVAL";
/// `WANDB__FILE_STREAM_TRANSMIT_INTERVAL`: seconds between filestream requests (W&B's
/// `x_file_stream_transmit_interval`; default 15).
pub const ENV_TRANSMIT_INTERVAL: &str = "WANDB__FILE_STREAM_TRANSMIT_INTERVAL";
/// `CAIRN_FINISH_DEADLINE`: seconds `finish` waits for the run's files and uploads
/// (default 60); past it the run folder is left for `cairn sync`.
pub const ENV_FINISH_DEADLINE: &str = "CAIRN_FINISH_DEADLINE";

/// Default project when none is given (W&B's).
pub const DEFAULT_PROJECT: &str = "uncategorized";
/// Default time `finish` waits for the run's files and uploads.
pub const DEFAULT_FINISH_DEADLINE: Duration = Duration::from_secs(60);

/// Where a run's data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Logged locally and uploaded as the run goes (the default when an API key is found).
    Online,
    /// Logged locally only; upload later with `cairn sync` or `wandb sync`.
    #[default]
    Offline,
    /// Nothing is written; every call is a no-op.
    Disabled,
}

impl Mode {
    /// Parses W&B's mode names (`dryrun` is W&B's old name for offline, `run` for
    /// online; `shared` is online too).
    pub fn parse(text: &str) -> Option<Mode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "online" | "run" | "shared" => Some(Mode::Online),
            "offline" | "dryrun" => Some(Mode::Offline),
            "disabled" => Some(Mode::Disabled),
            _ => None,
        }
    }
}

/// Everything a run start needs, resolved (see the module docs for where each comes
/// from). Fields are public so a caller whose settings were resolved elsewhere (the
/// Python SDK's) can set what [`Explicit`] has no word for.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// Where the run's data goes.
    pub mode: Mode,
    /// The server, the key (redacted in `Debug`) and the `User-Agent`; the key is empty
    /// unless the run is online.
    pub connection: ConnectionConfig,
    /// The user or team; `None` lets the server pick the key's default.
    pub entity: Option<String>,
    /// The project.
    pub project: String,
    /// The run id.
    pub run_id: String,
    /// How a run of this id on the server is treated; `None`: not asked.
    pub resume: Option<Resume>,
    /// The display name.
    pub name: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// The group.
    pub group: Option<String>,
    /// The job type.
    pub job_type: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Where the run's folder goes.
    pub folder: RunFolder,
    /// Whether the SDK captures stdout and stderr.
    pub console: bool,
    /// System metrics, or `None` for none.
    pub system: Option<SystemConfig>,
    /// Latest samples of each system metric kept for queries (W&B's
    /// `x_stats_buffer_size`); 0 keeps none.
    pub stats_buffer: usize,
    /// When the log is forced to disk.
    pub sync: SyncPolicy,
    /// How long `finish` waits for the run's files and uploads.
    pub finish_deadline: Duration,
    /// Time between filestream requests; `None`: the uploader's default (15 s).
    pub transmit_interval: Option<Duration>,
}

impl RunSettings {
    /// Settings from explicit values alone: no environment, no files, no netrc (for a
    /// caller whose settings were already resolved, as the Python SDK's are).
    pub fn from_explicit(explicit: Explicit) -> Result<RunSettings, SettingsError> {
        resolve(Sources::explicit_only(explicit))
    }

    /// Whether the run uploads as it goes.
    pub fn online(&self) -> bool {
        self.mode == Mode::Online
    }

    /// A run record naming the run as these settings do, started at `started`; the
    /// caller adds the config.
    pub fn run_record(&self, started: SystemTime) -> RunRecord {
        let since_epoch = started.duration_since(UNIX_EPOCH).unwrap_or_default();
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        RunRecord {
            run_id: self.run_id.clone(),
            project: self.project.clone(),
            entity: text(&self.entity),
            display_name: text(&self.name),
            notes: text(&self.notes),
            run_group: text(&self.group),
            job_type: text(&self.job_type),
            tags: self.tags.clone(),
            host: crate::system::hostname(),
            start_time: Some(prost_types::Timestamp {
                seconds: since_epoch.as_secs() as i64,
                nanos: since_epoch.subsec_nanos() as i32,
            }),
            ..Default::default()
        }
    }
}

/// One setting's names: in messages, in the environment, in the settings files.
struct Setting {
    name: &'static str,
    env: Option<&'static str>,
    key: Option<&'static str>,
    expected: &'static str,
}

const fn setting(name: &'static str, env: &'static str, expected: &'static str) -> Setting {
    Setting {
        name,
        env: Some(env),
        key: Some(name),
        expected,
    }
}

const TEXT: &str = "a text";
const SECONDS: &str = "a number of seconds (0 or more)";
const MODE: Setting = setting("mode", ENV_MODE, "one of online, offline or disabled");
const BASE_URL: Setting = setting("base_url", ENV_BASE_URL, "an http:// or https:// URL");
const API_KEY: Setting = setting("api_key", ENV_API_KEY, TEXT);
const ENTITY: Setting = setting("entity", ENV_ENTITY, TEXT);
const PROJECT: Setting = setting("project", ENV_PROJECT, TEXT);
const RUN_ID: Setting = setting(
    "run_id",
    ENV_RUN_ID,
    "a run id of letters, digits, `-` and `_` (at most 128)",
);
const RESUME: Setting = setting("resume", ENV_RESUME, RESUME_VALUES);
const NAME: Setting = setting("run_name", ENV_NAME, TEXT);
const NOTES: Setting = setting("run_notes", ENV_NOTES, TEXT);
const GROUP: Setting = setting("run_group", ENV_RUN_GROUP, TEXT);
const JOB_TYPE: Setting = setting("run_job_type", ENV_JOB_TYPE, TEXT);
const TAGS: Setting = setting("run_tags", ENV_TAGS, TEXT);
const CONSOLE: Setting = setting(
    "console",
    ENV_CONSOLE,
    "one of auto, off, wrap, redirect, wrap_raw or wrap_emu",
);
const DISABLE_STATS: Setting = setting("x_disable_stats", ENV_DISABLE_STATS, "true or false");
const STATS_INTERVAL: Setting = setting(
    "x_stats_sampling_interval",
    ENV_STATS_INTERVAL,
    "a number of seconds above 0",
);
const TRANSMIT: Setting = setting(
    "x_file_stream_transmit_interval",
    ENV_TRANSMIT_INTERVAL,
    SECONDS,
);
const FINISH: Setting = Setting {
    name: "finish_deadline",
    env: Some(ENV_FINISH_DEADLINE),
    key: None,
    expected: SECONDS,
};

/// The environment, then the settings files (the workspace's before the global one).
struct Layers<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    files: Vec<(PathBuf, HashMap<String, String>)>,
}

impl Layers<'_> {
    /// The first layer's value of `setting`, and where it came from.
    fn text(&self, setting: &Setting) -> Option<(String, Origin)> {
        let set = |v: &String| !v.trim().is_empty();
        if let Some(var) = setting.env
            && let Some(value) = (self.env)(var).filter(set)
        {
            return Some((value, Origin::Env(var)));
        }
        let key = setting.key?;
        self.files.iter().find_map(|(path, values)| {
            let value = values.get(key).filter(|v| set(v))?;
            let origin = Origin::File {
                path: path.clone(),
                key,
            };
            Some((value.clone(), origin))
        })
    }

    /// The code's text for `setting`, else the first layer's, parsed; an error names the
    /// value and its origin.
    fn get<T>(
        &self,
        explicit: Option<&str>,
        setting: &Setting,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, SettingsError> {
        let found = explicit
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v.to_owned(), Origin::Code))
            .or_else(|| self.text(setting));
        let Some((value, origin)) = found else {
            return Ok(None);
        };
        match parse(&value) {
            Some(parsed) => Ok(Some(parsed)),
            None => Err(SettingsError::Invalid {
                setting: setting.name,
                origin,
                value,
                expected: setting.expected,
            }),
        }
    }

    /// A text setting, trimmed.
    fn string(
        &self,
        explicit: Option<&str>,
        setting: &Setting,
    ) -> Result<Option<String>, SettingsError> {
        self.get(explicit, setting, |v| Some(v.trim().to_owned()))
    }

    /// A typed setting the code gives as a value (not text), else from the layers.
    fn typed<T>(
        &self,
        explicit: Option<T>,
        setting: &Setting,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, SettingsError> {
        match explicit {
            Some(value) => Ok(Some(value)),
            None => self.get(None, setting, parse),
        }
    }
}

/// Resolves every setting from `sources` (see the module docs).
pub fn resolve(sources: Sources<'_>) -> Result<RunSettings, SettingsError> {
    let explicit = sources.explicit;
    let layers = Layers {
        env: sources.env,
        files: sources
            .files
            .iter()
            .rev()
            .map(|file| (file.path.clone(), default_section(&file.text)))
            .collect(),
    };
    let base_url = layers
        .get(explicit.base_url.as_deref(), &BASE_URL, parse_url)?
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    let api_key = layers
        .string(explicit.api_key.as_deref(), &API_KEY)?
        .or_else(|| {
            let netrc = sources.netrc.as_deref()?;
            credentials::netrc_password(netrc, &credentials::host(&base_url))
        });
    let mode = layers
        .get(explicit.mode.as_deref(), &MODE, Mode::parse)?
        .unwrap_or(if api_key.is_some() {
            Mode::Online
        } else {
            Mode::Offline
        });
    if mode == Mode::Online && api_key.is_none() {
        return Err(SettingsError::NoApiKey { base_url });
    }
    let resume = layers
        .get(explicit.resume.as_deref(), &RESUME, Resume::parse)?
        .flatten();
    let run_id = match layers.get(explicit.run_id.as_deref(), &RUN_ID, parse_run_id)? {
        Some(id) => id,
        None => match (resume, &sources.auto_resume) {
            (Some(Resume::Auto), Some(file)) => match resume_file_id(&file.text) {
                Some(id) if valid_run_id(&id) => id,
                Some(id) => {
                    return Err(SettingsError::Invalid {
                        setting: RUN_ID.name,
                        origin: Origin::File {
                            path: file.path.clone(),
                            key: "run_id",
                        },
                        value: id,
                        expected: RUN_ID.expected,
                    });
                }
                None => generate_run_id(),
            },
            _ => generate_run_id(),
        },
    };
    let tags = layers
        .typed(explicit.tags.clone(), &TAGS, |v| Some(split_tags(v)))?
        .unwrap_or_default();
    let system = match explicit.system_metrics {
        Some(interval) => interval,
        None => {
            let off = layers
                .get(None, &DISABLE_STATS, parse_bool)?
                .unwrap_or(false);
            let every = layers.get(None, &STATS_INTERVAL, parse_interval)?;
            (!off).then(|| every.unwrap_or(DEFAULT_INTERVAL))
        }
    };
    Ok(RunSettings {
        mode,
        connection: ConnectionConfig {
            base_url,
            api_key: api_key.unwrap_or_default(),
            user_agent: format!("cairn {}", env!("CARGO_PKG_VERSION")),
        },
        entity: layers.string(explicit.entity.as_deref(), &ENTITY)?,
        project: layers
            .string(explicit.project.as_deref(), &PROJECT)?
            .unwrap_or_else(|| DEFAULT_PROJECT.to_owned()),
        run_id,
        resume,
        name: layers.string(explicit.name.as_deref(), &NAME)?,
        notes: layers.string(explicit.notes.as_deref(), &NOTES)?,
        group: layers.string(explicit.group.as_deref(), &GROUP)?,
        job_type: layers.string(explicit.job_type.as_deref(), &JOB_TYPE)?,
        tags,
        folder: RunFolder::Under(root_dir(explicit.dir.as_ref(), sources.env)),
        console: layers
            .typed(explicit.console, &CONSOLE, parse_console)?
            .unwrap_or(true),
        system: system.map(|interval| SystemConfig {
            interval,
            ..SystemConfig::default()
        }),
        stats_buffer: 0,
        sync: explicit.sync.unwrap_or_default(),
        finish_deadline: layers
            .typed(explicit.finish_deadline, &FINISH, parse_seconds)?
            .unwrap_or(DEFAULT_FINISH_DEADLINE),
        transmit_interval: layers.typed(explicit.transmit_interval, &TRANSMIT, parse_seconds)?,
    })
}

/// A server URL without its trailing `/`; only `http://` and `https://` ones.
fn parse_url(text: &str) -> Option<String> {
    let url = text.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    (!rest.is_empty()).then(|| url.to_owned())
}

fn parse_run_id(text: &str) -> Option<String> {
    let id = text.trim();
    valid_run_id(id).then(|| id.to_owned())
}

/// `a, b,,c` → `[a, b, c]`.
fn split_tags(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// W&B's console modes: `off`, or one of the ways of capturing (all of which cairn
/// captures the same way).
fn parse_console(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "off" => Some(false),
        "auto" | "wrap" | "redirect" | "wrap_raw" | "wrap_emu" => Some(true),
        _ => None,
    }
}

/// Seconds, 0 or more.
fn parse_seconds(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// Seconds, above 0.
fn parse_interval(text: &str) -> Option<Duration> {
    parse_seconds(text).filter(|d| !d.is_zero())
}
