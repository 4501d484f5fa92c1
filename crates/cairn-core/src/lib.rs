//! cairn's core: the internal pipeline of a run.
//!
//! A run's records flow through three stages, each a named thread that owns its state and
//! reads a bounded channel; online, an uploader thread follows the log the writer appends to:
//!
//! ```text
//! SDK calls ──▶ handler ──▶ writer ──▶ sender (runfiles)
//!              steps,        .wandb     output.log, config.yaml,
//!              summary       log        wandb-summary.json, …
//!                              │
//!                              └──▶ uploader (upload, online): reads the log, sends it
//!                                   to the server through `client`
//! ```
//!
//! This crate never prints: it reports progress as events for the SDK or CLI to draw.

#![warn(missing_docs)]

pub mod artifact;
pub mod client;
pub mod clock;
pub mod console;
pub mod handler;
pub mod input;
pub mod launch;
pub mod pipeline;
pub mod runfiles;
pub mod system;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod upload;
pub mod value;
pub mod writer;
