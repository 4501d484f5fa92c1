//! Why a run could not start ([`InitError`]) and why a call on it failed ([`RunError`]),
//! and the longest key a run accepts.

use cairn_core::launch::{LaunchError, SettingsError};
use cairn_core::pipeline::LifecycleError;

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
