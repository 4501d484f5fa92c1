//! cairn's core: the internal pipeline of a run.
//!
//! A run's records flow through three stages, each a named thread that owns its state and
//! reads a bounded channel:
//!
//! ```text
//! SDK calls ──▶ handler ──▶ writer ──▶ sender
//!              steps,        .wandb     files (offline); uploads (online, later)
//!              summary       log
//! ```
//!
//! This crate never prints: it reports progress as events for the SDK or CLI to draw.

#![warn(missing_docs)]

pub mod artifact;
pub mod clock;
pub mod console;
pub mod handler;
pub mod input;
pub mod launch;
pub mod pipeline;
pub mod sender;
pub mod system;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod upload;
pub mod value;
pub mod writer;
