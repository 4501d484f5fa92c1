//! The handler stage: turns user calls into the run's records.
//!
//! [`Handler`] is the pure state machine (steps, summary, metric definitions, sampling);
//! the stage around it (added with the pipeline) feeds it inputs from the SDK's queue and
//! passes its records to the writer.

mod metric;
mod sampler;
mod state;
mod summary;

pub use state::{Handler, HandlerConfig, PRODUCER, Warning, summary_item};
