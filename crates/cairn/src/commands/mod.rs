//! The commands of the `cairn` binary, one module each.
//!
//! Each command takes its parsed arguments and returns a [`Status`] for the exit code, or
//! an error for problems it did not expect (exit status 1).

pub(crate) mod core;
pub(crate) mod dump;
pub(crate) mod server;
pub(crate) mod sync;

use std::process::ExitCode;

/// How a command ended, as the exit status tells scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Everything went as asked (exit 0).
    Success,
    /// The input was missing, foreign or damaged (exit 2); details went to stderr.
    BadInput,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        match status {
            Status::Success => ExitCode::SUCCESS,
            Status::BadInput => ExitCode::from(2),
        }
    }
}
