//! The run's own files under `files/`, kept current from the run's records.
//!
//! Two parts:
//!
//! * [`stage`] — the pipeline's third stage (the `cairn-sender` thread: W&B calls this stage
//!   the sender). It reads numbered records from the writer and keeps `output.log` (the
//!   console as a terminal shows it) appended, then writes `config.yaml`,
//!   `wandb-summary.json` and `wandb-metadata.json` when the exit record arrives. It never
//!   touches the network: online, the uploader (`crate::upload`) follows the log on its own
//!   thread and uploads these files at the finish.
//! * `model` — `RunFiles`: config, summary and metadata as the records
//!   define them, rendered in W&B's formats and written atomically ([`write_atomic`]). The
//!   uploader keeps one too, for the config it upserts and the summary it streams.
//! * `tree` — key paths into nested values: how config records change the config (W&B's
//!   merge, nested keys and removals) and how the summary's paths are set.
//!
//! Shutdown: the stage ends when its input closes (the writer finished) and returns a
//! [`RunFilesReport`]; file errors are reported there, never fatal (the log holds the data).

pub(crate) mod model;
pub mod stage;
mod tree;

pub use model::write_atomic;
pub use stage::{RunFilesConfig, RunFilesReport, run, wants};
