//! [`Run`] and its builder: the user's handle on one run.
//!
//! Every method turns its call into an [`Input`](cairn_core::input::Input) on the run's
//! bounded queue and returns: no method waits on the network, and none does more than a
//! channel send on the caller's thread (values are encoded by the core's handler thread).
//! When the queue is full because the disk is behind, `log` waits for room rather than
//! drop data.
//!
//! Starting one is cairn-core's [`launch`](cairn_core::launch): the builder's values are
//! the explicit settings, resolved against the environment and W&B's settings files; the
//! resume question, the run folder and the pipeline are the core's. What is left here is
//! the SDK's own: telemetry, console capture, signals and the artifacts handle.
//!
//! A run ends with [`Run::finish`]. Dropping a run without finishing it finishes it too,
//! with exit code 1 if the thread is panicking and 0 otherwise, so a panic still leaves a
//! complete, readable log.
//!
//! * `error` — [`InitError`], [`RunError`], [`MAX_KEY_LEN`].
//! * `builder` — [`RunBuilder`] and the start.
//! * `handle` — [`Run`]: logging, summary, config, files, artifacts, finish.
//! * `media` — tables and images logged as W&B's media files.
//! * `metric` — [`MetricDef`].

mod builder;
mod error;
mod handle;
mod media;
mod metric;

pub use builder::RunBuilder;
pub use error::{InitError, MAX_KEY_LEN, RunError};
pub use handle::{LogOptions, Run};
pub use metric::MetricDef;

#[cfg(test)]
mod tests;
