//! What an upload did ([`UploadReport`]) and why one stopped ([`UploadError`]).

use std::path::PathBuf;

use crate::client::HttpError;

/// Why an upload stopped.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The server could not be reached or refused a request.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The log holds records of a run but no run record before them.
    #[error("the log has no run record before its data")]
    NoRun,
    /// The server's answer lacks what the upload needs.
    #[error("unexpected answer to {operation}: {detail}")]
    Answer {
        /// The GraphQL operation.
        operation: &'static str,
        /// What was missing.
        detail: String,
    },
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] cairn_store::OpenError),
    /// Reading the log failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What an upload did.
#[derive(Debug, Default, Clone)]
pub struct UploadReport {
    /// `entity/project/run` on the server, once known.
    pub path: Option<String>,
    /// Records read from the log.
    pub records: u64,
    /// History lines sent (and confirmed).
    pub history_lines: u64,
    /// Filestream requests that reached the server.
    pub requests: u64,
    /// Run files uploaded.
    pub files: Vec<String>,
    /// Whether the final `complete` reached the server.
    pub completed: bool,
    /// Damage met in the log (records after it were still read).
    pub damage: Vec<String>,
    /// Problems that did not stop the upload (a file that could not be uploaded, …).
    pub warnings: Vec<String>,
    /// Artifact versions saved (`collection:vN`, or the id when the server gave no number).
    pub artifacts: Vec<String>,
    /// Files sent for artifacts, manifests included.
    pub artifact_files: usize,
}
