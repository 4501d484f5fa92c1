//! cairn's Rust SDK: track a training run in W&B's formats.
//!
//! ```no_run
//! let run = cairn_sdk::init()
//!     .project("mnist")
//!     .config("lr", 3e-4)
//!     .config("batch_size", 64)
//!     .start()?;
//! for step in 0..100 {
//!     let loss = 1.0 / (step as f64 + 1.0);
//!     run.log([("loss", loss), ("lr", 3e-4)])?;
//! }
//! run.summary_set([("best_loss", 0.01)])?;
//! run.finish()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A run writes `<dir>/wandb/offline-run-<date>_<time>-<id>/run-<id>.wandb` (W&B's
//! transaction log, readable by `cairn dump` and uploadable by `wandb sync` or
//! `cairn sync`) and `files/` beside it. Settings come from code, then W&B's environment
//! variables (`WANDB_PROJECT`, `WANDB_ENTITY`, `WANDB_DIR`, `WANDB_MODE`, `WANDB_RUN_ID`,
//! `WANDB_RESUME`, ...), then W&B's settings files (`~/.config/wandb/settings`,
//! `<dir>/wandb/settings`), then defaults; a run started with `resume` continues the
//! server's run — its steps, runtime, config and summary — as W&B's does.
//!
//! Calls never wait on the network: each becomes an input on the run's bounded queue,
//! handled by cairn-core's pipeline on its own threads. A run dropped without `finish`
//! is finished on drop (exit code 1 if the thread is panicking).

#![warn(missing_docs)]

pub mod artifact;
pub mod media;
mod run;
pub mod settings;
mod signals;

pub use artifact::{Artifact, ArtifactHandle, LoggedArtifact, UsedArtifact};
pub use cairn_core::pipeline::{Event, ExitPhase, FinishReport};
pub use cairn_core::value::Value;
pub use cairn_store::SyncPolicy;
pub use media::Table;
pub use run::{InitError, LogOptions, MAX_KEY_LEN, MetricDef, Run, RunBuilder, RunError};

/// Starts building a run; finish with [`RunBuilder::start`].
pub fn init() -> RunBuilder {
    RunBuilder::default()
}
