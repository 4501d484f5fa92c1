//! Starting a run, once for every front end: the Rust SDK's `init().start()` and the
//! service's `run` record both come here.
//!
//! ```text
//! Explicit + env + settings files ──resolve──▶ RunSettings ─┐
//!              (or RunSettings::from_explicit)              ├─▶ prepare ──▶ Prepared ──start──▶ Launched
//!                                   the first RunRecord ────┘   (resume check,        (pipeline running,
//!                                                                 folder placed)       run record queued)
//! ```
//!
//! * `settings` — [`RunSettings`] and its pure resolver: code > environment > W&B's
//!   settings files > defaults.
//! * `sources` — reading the environment and the files the resolver is given.
//! * `resume` — W&B's resume semantics as pure functions.
//! * `layout` — the run folder (W&B's layout) and run ids.
//! * `start` — [`prepare`], [`Prepared::start`] and [`launch`]: the server's resume answer,
//!   the folder, the upload settings and the [`crate::pipeline::Pipeline`].
//! * `error` — [`SettingsError`] and [`LaunchError`].
//!
//! What stays with each front end: console capture, signals, the artifacts handle and
//! telemetry (the SDK); registering the run before `init` returns, saved code and the
//! answers to the Python SDK (the service).

mod error;
mod layout;
mod resume;
mod settings;
mod sources;
mod start;

pub use error::{LaunchError, Origin, SettingsError};
pub use layout::{
    RESUME_FILE, RunFolder, RunLayout, generate_run_id, random_id, resume_file_id, timestamp_slug,
    valid_run_id,
};
pub use resume::{RESUME_VALUES, Resume, decide, restored_summary, resume_into, starting_step};
pub use settings::{
    DEFAULT_FINISH_DEADLINE, DEFAULT_PROJECT, ENV_API_KEY, ENV_BASE_URL, ENV_CONSOLE,
    ENV_DISABLE_STATS, ENV_ENTITY, ENV_FINISH_DEADLINE, ENV_JOB_TYPE, ENV_MODE, ENV_NAME,
    ENV_NOTES, ENV_PROJECT, ENV_RESUME, ENV_RUN_GROUP, ENV_RUN_ID, ENV_STATS_INTERVAL, ENV_TAGS,
    ENV_TRANSMIT_INTERVAL, Mode, RunSettings, resolve,
};
pub use sources::{
    ENV_CONFIG_DIR, ENV_DIR, Explicit, SettingsFile, Sources, default_section, gather, process_env,
};
pub use start::{Launched, Prepared, RESUME_WAIT, launch, prepare};

#[cfg(test)]
mod tests;
