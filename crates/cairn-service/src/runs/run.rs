//! One run's state, and the ways into it the other roles share.
//!
//! A [`Run`] sits behind its own lock (`Arc<Mutex<Run>>`, shared by the registry and the
//! threads that finish it or answer for it) and moves through its [`Phase`]s:
//! `Pending` (after `inform_init`) → `Running` (its `run` record started the pipeline) →
//! `Finishing` (`exit` took the pipeline) → `Finished` (what the SDK asks for after `exit`).
//!
//! The helpers here never hold the lock while they wait: [`feed`] clones the input queue
//! out and then sends (blocking while the queue is full — the back-pressure the SDK
//! expects — and holding up only the connection that feeds this run); [`ask`] waits at
//! most [`QUERY_WAIT`] for the handler's answer. Nothing here starts threads or stops.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cairn_core::artifact::ArtifactBoard;
use cairn_core::client::operations::Operations;
use cairn_core::input::{Input, Query};
use cairn_core::pipeline::{Pipeline, RunInput};
use cairn_proto::{
    FileCounts, FilePusherStats, RunRecord, SampledHistoryItem, Settings, SummaryItem,
};

use super::messages::Messages;

/// How long a request answered from the handler's state may wait for it.
pub(super) const QUERY_WAIT: Duration = Duration::from_secs(30);

/// Where a run is in its life.
pub(super) enum Phase {
    /// `inform_init` came; the `run` record has not.
    Pending(Box<Settings>),
    /// The pipeline runs.
    Running(Box<Pipeline>),
    /// `exit` came; the finish thread owns the pipeline.
    Finishing,
    /// Finished: what the SDK asks for after `exit`.
    Finished(Box<Finished>),
}

/// What a finished run keeps for the SDK's questions after `exit` (its footer).
#[derive(Default)]
pub(super) struct Finished {
    pub(super) timed_out: bool,
    pub(super) summary: Vec<SummaryItem>,
    pub(super) samples: Vec<SampledHistoryItem>,
    /// Online: the files the upload sent, counted as the footer shows them.
    pub(super) files: Option<(FileCounts, FilePusherStats)>,
}

/// One run of the service.
pub(super) struct Run {
    pub(super) phase: Phase,
    /// The settings `inform_init` brought (the environment probe reads them).
    pub(super) settings: Box<Settings>,
    /// Outcomes of the run's logged artifacts, by client id (the uploader publishes).
    pub(super) artifacts: Arc<ArtifactBoard>,
    /// What the run's upload is doing now (the SDK shows it while init and finish wait).
    pub(super) operations: Arc<Operations>,
    /// The input queue while the pipeline runs (cloned out so a full queue blocks only
    /// the connection that feeds this run, not the registry). Dropped when the finish
    /// takes the pipeline.
    pub(super) input: Option<RunInput>,
    /// The run as its `run_result` answered it (what `attach` answers a child process).
    pub(super) answered: Option<Box<RunRecord>>,
    /// Warnings for the SDK's `internal_messages` long poll, and the poll held open.
    pub(super) messages: Arc<Messages>,
    /// Where the run's files are written (the final summary is read from there).
    pub(super) files_dir: Option<std::path::PathBuf>,
}

impl Run {
    /// A run `inform_init` registered with `settings`: pending, nothing started.
    pub(super) fn pending(settings: Settings) -> Run {
        Run {
            phase: Phase::Pending(Box::new(settings.clone())),
            settings: Box::new(settings),
            artifacts: Arc::default(),
            operations: Arc::default(),
            input: None,
            answered: None,
            messages: Arc::default(),
            files_dir: None,
        }
    }
}

/// The run's state (a thread that panicked holding the lock left it usable).
pub(super) fn lock(run: &Mutex<Run>) -> MutexGuard<'_, Run> {
    run.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends `input` to the run's pipeline (blocking while its queue is full: that is the
/// back-pressure the SDK expects); dropped when the run is not running.
pub(super) fn feed(run: &Mutex<Run>, input: Input) {
    let queue = lock(run).input.clone();
    if let Some(queue) = queue {
        let _ = queue.send(input);
    }
}

/// Asks the handler `make(reply)` and waits for its answer.
pub(super) fn ask<T>(
    run: &Mutex<Run>,
    make: impl FnOnce(mpsc::SyncSender<T>) -> Query,
) -> Option<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    let queue = lock(run).input.clone()?;
    queue.send(Input::Query(make(tx))).ok()?;
    rx.recv_timeout(QUERY_WAIT).ok()
}

/// `what` of the run's finished state, if it is finished.
pub(super) fn finished<T>(run: &Mutex<Run>, what: impl FnOnce(&Finished) -> T) -> Option<T> {
    match &lock(run).phase {
        Phase::Finished(f) => Some(what(f)),
        _ => None,
    }
}

/// Takes a running run's pipeline to finish it (the run is then `Finishing`, its input
/// closed); `None` when it is not running.
pub(super) fn take_pipeline(run: &Mutex<Run>) -> Option<Box<Pipeline>> {
    let mut run = lock(run);
    run.input = None;
    match std::mem::replace(&mut run.phase, Phase::Finishing) {
        Phase::Running(pipeline) => Some(pipeline),
        other => {
            run.phase = other;
            None
        }
    }
}

/// Ends the run's `internal_messages` poll: the run is over.
pub(super) fn close_messages(run: &Mutex<Run>) {
    let messages = lock(run).messages.clone();
    messages.close();
}
