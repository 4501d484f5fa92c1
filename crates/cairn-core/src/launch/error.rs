//! Why a run's settings cannot be resolved ([`SettingsError`]) and why a run cannot start
//! ([`LaunchError`]). Every message names the value, the run or the folder at fault.

use std::fmt;
use std::path::PathBuf;

use crate::pipeline::StartError;
use crate::upload::UploadError;

/// Where a setting's value came from; errors name it so the user knows what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Passed in code (`init().resume(…)`, the Python SDK's settings).
    Code,
    /// An environment variable.
    Env(&'static str),
    /// A key of W&B's settings file.
    File {
        /// The file.
        path: PathBuf,
        /// The key in its `[default]` section.
        key: &'static str,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Code => f.write_str("the code"),
            Origin::Env(name) => f.write_str(name),
            Origin::File { path, key } => write!(f, "`{key}` in {}", path.display()),
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value that does not parse.
    #[error("{origin} sets {setting} to `{value}`, which is not {expected}")]
    Invalid {
        /// The setting (`resume`, `mode`, …).
        setting: &'static str,
        /// Where the value came from.
        origin: Origin,
        /// The value as given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// Online mode without an API key.
    #[error(
        "online mode needs an API key for {base_url}: set WANDB_API_KEY, run `wandb login`, \
         or use WANDB_MODE=offline and `cairn sync` later"
    )]
    NoApiKey {
        /// The server the run would upload to.
        base_url: String,
    },
    /// The run id cannot name a folder.
    #[error("invalid run id `{0}`: use letters, digits, `-` and `_` (at most 128)")]
    BadRunId(String),
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// `resume="must"`, but the server has no such run.
    #[error(
        "run {id} does not exist on the server, and resume=\"must\" requires an existing run \
         (use resume=\"allow\" to create it)"
    )]
    ResumeMissing {
        /// The run.
        id: String,
    },
    /// `resume="never"`, but the server already has the run.
    #[error(
        "run {id} already exists on the server, and resume=\"never\" does not allow resuming \
         it (use a new id, or resume=\"allow\")"
    )]
    RunExists {
        /// The run.
        id: String,
    },
    /// The server could not say whether the run exists.
    #[error("cannot ask the server about run {id}: {source}")]
    Resume {
        /// The run.
        id: String,
        /// Why.
        #[source]
        source: UploadError,
    },
    /// The run id cannot name a folder.
    #[error("invalid run id `{0}`: use letters, digits, `-` and `_` (at most 128)")]
    BadRunId(String),
    /// The settings say the run is disabled: there is nothing to start.
    #[error("run {id} is disabled (mode=disabled): nothing to start")]
    Disabled {
        /// The run.
        id: String,
    },
    /// The run's folder or log could not be created.
    #[error("cannot start run {id} in {}: {source}", dir.display())]
    Start {
        /// The run.
        id: String,
        /// The run folder.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: StartError,
    },
}

impl LaunchError {
    /// Whether the resume setting forbids what the server holds (W&B raises a
    /// `UsageError` for these; the others are communication or local failures).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            LaunchError::ResumeMissing { .. } | LaunchError::RunExists { .. }
        )
    }
}
