//! One run's pipeline: the handler, writer and sender (`crate::runfiles`) stages as named
//! threads joined by bounded channels, the uploader following the log (online), and the
//! ordered finish.
//!
//! ```text
//! Input ─(bounded, cap. `queue_capacity`)─▶ cairn-handler ─(4 batches)─▶ cairn-writer ─(4 batches)─▶ cairn-sender
//! ```
//!
//! Channels apply backpressure: a full queue makes its producer wait. Every stage
//! downstream of the SDK works on the local disk only, so the wait is bounded by the
//! disk, never by a network; the user-facing [`RunInput::send`] blocks only while the
//! disk is slower than the program, and [`RunInput::try_send`] never blocks.
//!
//! **Finish** is an explicit state machine, reported as [`Event::Exit`] phases:
//!
//! 1. `FlushInput` — the exit input is queued behind everything the user logged; the
//!    system monitor stops.
//! 2. `Handle` — the handler commits the pending row, persists the final summary and the
//!    exit record, and closes its output.
//! 3. `Persist` — the writer appends the last records, commits and syncs, and closes its
//!    output.
//! 4. `Finalize` — the sender writes `output.log`, `config.yaml`, `wandb-summary.json` and
//!    `wandb-metadata.json`.
//! 5. `Upload` (online only) — the uploader, which has been following the log all along,
//!    reads its last records, uploads the run files and sends the final filestream request.
//! 6. `Done`.
//!
//! Phases 1–3 are local and always run to completion: nothing the user logged before
//! `finish` is lost, whatever the deadline. The deadline bounds phases 4 and 5: past it,
//! `finish` returns with `timed_out`, the upload stops retrying, and the run folder (whose
//! log holds everything) is left for `cairn sync`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_store::{LogWriter, SyncPolicy, WriteError};

use crate::client::Until;
use crate::handler::{Handler, HandlerConfig, Warning};
use crate::input::Input;
use crate::runfiles::{self, RunFilesConfig, RunFilesReport};
use crate::system::{SystemConfig, SystemMonitor};
use crate::upload::{self, UploadError, UploadReport, UploadSettings};
use crate::writer::{self, WriterReport};

/// Batches of records in flight between two inner stages: with batches bounded by
/// [`MAX_BATCH_VALUES`], memory between stages stays a few MiB.
const STAGE_QUEUE: usize = 4;

/// Logged values the handler turns into one batch at most.
const MAX_BATCH_VALUES: usize = 4 * 1024;

/// Default capacity of the SDK's input queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 512;

/// Everything a run's pipeline needs.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// The run's `.wandb` log (created; it must not exist).
    pub log_path: PathBuf,
    /// The run's `files/` folder (created if missing).
    pub files_dir: PathBuf,
    /// Step, summary and identity settings.
    pub handler: HandlerConfig,
    /// When the log is forced to disk.
    pub sync: SyncPolicy,
    /// Capacity of the input queue.
    pub queue_capacity: usize,
    /// System metrics, or `None` to collect none.
    pub system: Option<SystemConfig>,
    /// Online: where and how to upload the run as it goes; `None` offline.
    pub upload: Option<UploadSettings>,
}

/// How often a live upload looks for new records in the log.
const UPLOAD_POLL: Duration = Duration::from_millis(200);

/// Why a pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The run's folders or log could not be created.
    #[error("cannot create the run's files: {0}")]
    Io(#[from] std::io::Error),
    /// The transaction log could not be created.
    #[error(transparent)]
    Log(#[from] WriteError),
}

/// Why a lifecycle call failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The run was already finished.
    #[error("the run is already finished")]
    AlreadyFinished,
    /// A stage stopped unexpectedly (a bug); the records before it are in the log.
    #[error("the run's {0} stage stopped unexpectedly")]
    StageFailed(&'static str),
}

/// A phase of the ordered finish (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitPhase {
    /// The exit is queued behind the user's inputs.
    FlushInput,
    /// The handler is committing the last row and the final summary.
    Handle,
    /// The writer is appending and syncing the last records.
    Persist,
    /// The sender is writing the run's files.
    Finalize,
    /// Online: the last records, the run files and the final request are being sent.
    Upload,
    /// Everything is done.
    Done,
}

/// What a run reports while it works; the SDK or CLI decides how to show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Something the user should know.
    Warning(Warning),
    /// The finish moved to a new phase.
    Exit(ExitPhase),
    /// System metrics are not collected: this is why.
    SystemMetricsOff(String),
}

/// The outcome of [`Pipeline::finish`].
#[derive(Debug)]
pub struct FinishReport {
    /// What the writer did.
    pub writer: WriterReport,
    /// What the sender did, unless the deadline passed first.
    pub sender: Option<RunFilesReport>,
    /// Whether the deadline passed before the sender (and, online, the upload) finished.
    pub timed_out: bool,
    /// Online: what the upload did, or why it stopped (the run folder then needs
    /// `cairn sync`); `None` offline or when the deadline passed first.
    pub upload: Option<Result<UploadReport, UploadError>>,
    /// How long the finish took.
    pub elapsed: Duration,
}

/// Tells other threads when a pipeline has finished (its sender has ended), e.g. a signal
/// handler that must not exit the process before the run's files are complete.
#[derive(Clone, Debug, Default)]
pub struct Completion(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Completion {
    fn mark(&self) {
        let (done, cv) = &*self.0;
        if let Ok(mut done) = done.lock() {
            *done = true;
        }
        cv.notify_all();
    }

    /// Waits until the pipeline has finished or `timeout` passes; whether it finished.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (done, cv) = &*self.0;
        let Ok(guard) = done.lock() else { return false };
        match cv.wait_timeout_while(guard, timeout, |done| !*done) {
            Ok((done, _)) => *done,
            Err(_) => false,
        }
    }
}

/// The SDK's handle on the input queue (cheap to clone).
#[derive(Clone, Debug)]
pub struct RunInput {
    tx: SyncSender<Input>,
}

impl RunInput {
    /// Queues an input, waiting while the queue is full (the disk is behind).
    pub fn send(&self, input: Input) -> Result<(), LifecycleError> {
        self.tx
            .send(input)
            .map_err(|_| LifecycleError::AlreadyFinished)
    }

    /// Queues an input if there is room, without waiting; gives it back otherwise.
    pub fn try_send(&self, input: Input) -> Result<(), TrySendError<Input>> {
        self.tx.try_send(input)
    }
}

/// A running pipeline (see the module docs).
#[derive(Debug)]
pub struct Pipeline {
    input: RunInput,
    handler: JoinHandle<()>,
    writer: JoinHandle<WriterReport>,
    sender_done: Receiver<RunFilesReport>,
    system: Option<(SyncSender<()>, JoinHandle<()>)>,
    events: SyncSender<Event>,
    completion: Completion,
    upload: Option<LiveUpload>,
    should_stop: Arc<AtomicBool>,
}

/// The thread uploading a live run, and how to end it.
#[derive(Debug)]
struct LiveUpload {
    control: SyncSender<upload::Control>,
    done: Receiver<Result<UploadReport, UploadError>>,
    abort: Arc<AtomicBool>,
}

impl Pipeline {
    /// Creates the log and starts the stages; events go to the returned receiver.
    pub fn start(config: PipelineConfig) -> Result<(Self, Receiver<Event>), StartError> {
        fs_err::create_dir_all(&config.files_dir)?;
        if let Some(parent) = config.log_path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let log = LogWriter::create(&config.log_path, config.sync)?;
        let (events_tx, events_rx) = sync_channel(256);
        let (input_tx, input_rx) = sync_channel::<Input>(config.queue_capacity.max(1));
        let (to_writer, writer_rx) = sync_channel(STAGE_QUEUE);
        let (to_sender, sender_rx) = sync_channel(STAGE_QUEUE);
        let (sender_done_tx, sender_done) = sync_channel(1);

        let started = Instant::now();
        let handler_events = events_tx.clone();
        let handler_config = config.handler.clone();
        let handler = spawn("cairn-handler", move || {
            handler_stage(handler_config, input_rx, to_writer, handler_events, started);
        })?;
        let writer = spawn("cairn-writer", move || {
            writer::run(log, writer_rx, Some((to_sender, runfiles::wants)))
        })?;
        let sender_config = RunFilesConfig {
            files_dir: config.files_dir.clone(),
        };
        let completion = Completion::default();
        let sender_completion = completion.clone();
        spawn("cairn-sender", move || {
            let report = runfiles::run(sender_config, sender_rx);
            let _ = sender_done_tx.send(report);
            sender_completion.mark();
        })?;
        let should_stop = Arc::new(AtomicBool::new(false));
        let upload = match config.upload {
            Some(settings) => Some(spawn_upload(
                config.log_path.clone(),
                settings,
                should_stop.clone(),
            )?),
            None => None,
        };
        let input = RunInput { tx: input_tx };
        let system = match config.system {
            Some(system) => Some(spawn_system(system, input.clone())?),
            None => None,
        };
        Ok((
            Self {
                input,
                handler,
                writer,
                sender_done,
                system,
                events: events_tx,
                completion,
                upload,
                should_stop,
            },
            events_rx,
        ))
    }

    /// Raised when the server asked the run to stop (`cairn run stop`, W&B's stop
    /// button); a training loop polls it.
    pub fn should_stop(&self) -> Arc<AtomicBool> {
        self.should_stop.clone()
    }

    /// A handle that tells when this pipeline has finished.
    pub fn completion(&self) -> Completion {
        self.completion.clone()
    }

    /// The handle the SDK queues inputs on.
    pub fn input(&self) -> &RunInput {
        &self.input
    }

    /// Finishes the run in order (see the module docs); `deadline` bounds the sender.
    ///
    /// Every clone of [`RunInput`] must be dropped for the handler to see the end of its
    /// input; clones still alive are ignored after the exit input.
    pub fn finish(
        self,
        exit_code: i32,
        deadline: Duration,
    ) -> Result<FinishReport, LifecycleError> {
        let start = Instant::now();
        let phase = |p| {
            let _ = self.events.try_send(Event::Exit(p));
        };
        phase(ExitPhase::FlushInput);
        if let Some((stop, join)) = self.system {
            drop(stop);
            let _ = join.join();
        }
        self.input.send(Input::Exit { exit_code })?;
        drop(self.input);
        phase(ExitPhase::Handle);
        self.handler
            .join()
            .map_err(|_| LifecycleError::StageFailed("handler"))?;
        phase(ExitPhase::Persist);
        let writer = self
            .writer
            .join()
            .map_err(|_| LifecycleError::StageFailed("writer"))?;
        phase(ExitPhase::Finalize);
        let remaining = deadline.saturating_sub(start.elapsed());
        let (sender, mut timed_out) = match self.sender_done.recv_timeout(remaining) {
            Ok(report) => (Some(report), false),
            Err(RecvTimeoutError::Timeout) => (None, true),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(LifecycleError::StageFailed("sender"));
            }
        };
        let mut upload = None;
        if let Some(live) = self.upload {
            phase(ExitPhase::Upload);
            let until = Until {
                deadline: Some(start + deadline),
                abort: Some(live.abort.clone()),
            };
            let _ = live.control.send(upload::Control::Finish(until));
            let remaining = deadline.saturating_sub(start.elapsed());
            match live.done.recv_timeout(remaining) {
                Ok(result) => upload = Some(result),
                Err(_) => {
                    // Past the deadline: stop retrying; the log keeps everything for
                    // `cairn sync`.
                    live.abort.store(true, Ordering::SeqCst);
                    timed_out = true;
                }
            }
        }
        phase(ExitPhase::Done);
        Ok(FinishReport {
            writer,
            sender,
            timed_out,
            upload,
            elapsed: start.elapsed(),
        })
    }
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    std::thread::Builder::new().name(name.to_owned()).spawn(f)
}

/// The handler stage: inputs in, records out, until the exit input is handled.
fn handler_stage(
    config: HandlerConfig,
    input: Receiver<Input>,
    output: SyncSender<Vec<cairn_proto::Record>>,
    events: SyncSender<Event>,
    started: Instant,
) {
    let mut handler = Handler::new(config);
    let mut out = vec![handler.header()];
    while let Ok(first) = input.recv() {
        // Handle whatever else is already queued too (bounded by values, so a batch stays
        // small in memory), then pass the writer one batch: one wake-up per batch, not per
        // record.
        let mut next = Some(first);
        let mut values = 0;
        while let Some(item) = next.take() {
            values += match &item {
                Input::Log(call) => call.items.len().max(1),
                _ => 1,
            };
            handler.handle(item, started.elapsed(), &mut out);
            if handler.has_exited() || values >= MAX_BATCH_VALUES {
                break;
            }
            next = input.try_recv().ok();
        }
        if !out.is_empty() && output.send(std::mem::take(&mut out)).is_err() {
            return; // the writer is gone: nothing downstream to feed
        }
        for warning in handler.take_warnings() {
            let _ = events.try_send(Event::Warning(warning));
        }
        if handler.has_exited() {
            // Inputs after exit are ignored; the writer must see its input close now.
            break;
        }
    }
    if !handler.has_exited() {
        // Every input handle was dropped without a finish: finish as a failed run.
        handler.handle(Input::Exit { exit_code: 1 }, started.elapsed(), &mut out);
        let _ = output.send(out);
    }
}

/// Starts the thread that uploads the run while the log grows (see `upload::follow`).
fn spawn_upload(
    log: PathBuf,
    settings: UploadSettings,
    should_stop: Arc<AtomicBool>,
) -> std::io::Result<LiveUpload> {
    let (control, control_rx) = sync_channel(1);
    let (done_tx, done) = sync_channel(1);
    let abort = Arc::new(AtomicBool::new(false));
    let thread_abort = abort.clone();
    spawn("cairn-uploader", move || {
        let result = upload::follow(
            &log,
            settings,
            should_stop,
            control_rx,
            UPLOAD_POLL,
            thread_abort,
        );
        let _ = done_tx.send(result);
    })?;
    Ok(LiveUpload {
        control,
        done,
        abort,
    })
}

/// Samples system metrics every `interval` until the stop channel closes.
fn spawn_system(
    config: SystemConfig,
    input: RunInput,
) -> std::io::Result<(SyncSender<()>, JoinHandle<()>)> {
    let (stop_tx, stop_rx) = sync_channel::<()>(0);
    let interval = config.interval;
    let join = spawn("cairn-system", move || {
        let mut monitor = SystemMonitor::new(config);
        while let Err(RecvTimeoutError::Timeout) = stop_rx.recv_timeout(interval) {
            let stats = monitor.stats_record(std::time::SystemTime::now());
            let record = cairn_proto::Record {
                record_type: Some(cairn_proto::record::RecordType::Stats(stats)),
                ..Default::default()
            };
            // System metrics are best effort: when the queue is full, skip a sample.
            let _ = input.try_send(Input::Record(Box::new(record)));
        }
    })?;
    Ok((stop_tx, join))
}
