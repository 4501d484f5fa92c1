//! The online side of a run: what the transaction log holds, uploaded to a W&B-compatible
//! server (W&B's own or `cairn server`) through [`crate::client`].
//!
//! The log is the source of truth and the only input. An [`Uploader`] takes records in log
//! order and turns them into W&B's wire traffic: the run upsert (`UpsertBucket`, with the
//! full config, debounced), the filestream (history, system metrics, console, summary,
//! uploaded files, preempting, the final `complete`), run files (`CreateRunFiles` + PUT to
//! the signed URLs), alerts, artifacts (saved by a worker thread beside the rest, through
//! [`crate::artifact`]; the finish waits for them) and the artifacts a run used. Two drivers
//! feed it:
//!
//! * [`follow`] — a live run: a thread polls the log as the writer appends to it, so the
//!   network is never on the training loop's path, memory holds one request's worth of
//!   lines at most (whatever is not sent yet stays in the log, not in RAM), and a server
//!   that is down only delays the upload;
//! * [`sync_log`] — `cairn sync`: a finished or crashed run's log, read once (or, live, read
//!   on until its exit record).
//!
//! Both send the same bytes: filestream offsets are line numbers derived from the log, so
//! a retried request, a second sync, or a sync after a cut-off live upload can never
//! duplicate a line on the server (it stores each line by its offset).
//!
//! Files:
//!
//! * [`settings`] — [`UploadSettings`] and the sync's [`RunOverrides`];
//! * [`uploader`] — [`Uploader`]: records to traffic (with `uploader/run.rs`, `files.rs`,
//!   `artifacts.rs` for the run upsert, run files and the artifact worker);
//! * `filestream` — the filestream's batching state and request bodies (pure);
//! * `convert` — log records as filestream lines (pure);
//! * [`follower`] — [`LogFollower`]: the records a growing log gained since the last read;
//! * [`drive`] — [`follow`] and [`sync_log`];
//! * [`resume`] — what the server holds of a run being resumed;
//! * [`report`] — [`UploadReport`] and [`UploadError`].
//!
//! Shutdown: [`follow`] ends when told to finish (after the writer closed the log) and the
//! last records are sent, or when its deadline passes or its abort flag is raised; then
//! the run folder is left for `cairn sync`.

mod convert;
pub mod drive;
mod filestream;
pub mod follower;
pub mod report;
pub mod resume;
pub mod settings;
pub mod uploader;

pub use drive::{Control, follow, sync_log};
pub use follower::LogFollower;
pub use report::{UploadError, UploadReport};
pub use resume::{ResumeStatus, resume_status};
pub use settings::{RunOverrides, UploadSettings};
pub use uploader::{Uploader, run_details, safe_relative};
