//! The runs a service hosts, by stream id, and what each SDK record or request does to one.
//!
//! `inform_init` registers a run with its settings; its `run` record starts cairn's
//! pipeline for it (handler → writer → sender, the `.wandb` log at the settings'
//! `sync_file`) and is answered with the run as the SDK reads it. Data records become the
//! pipeline's inputs in order; requests are answered and never written to the log. `exit`
//! finishes the run on a thread of its own — the connection reads on, and other runs are
//! never held up — and is answered only once the finish is done; the summary and samples
//! the SDK asks for afterwards, for its footer, are taken just before.
//!
//! Online, the pipeline also uploads: cairn-core's uploader follows the log to the
//! settings' server, and `exit` is answered once the upload is done (or its deadline
//! passed; the log keeps everything for `cairn sync`).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_core::handler::HandlerConfig;
use cairn_core::input::{ConfigChange, Input, LogCall, Query, SummaryChange};
use cairn_core::pipeline::{DEFAULT_QUEUE_CAPACITY, Pipeline, PipelineConfig, RunInput};
use cairn_core::upload::artifact::{ArtifactBoard, ArtifactOutcome};
use cairn_core::upload::operations::Operations;
use cairn_core::value::Value;
use cairn_proto::record::RecordType;
use cairn_proto::request::RequestType;
use cairn_proto::response::ResponseType;
use cairn_proto::result::ResultType;
use cairn_proto::server_response::ServerResponseType;
use cairn_proto::{
    AttachResponse, ErrorInfo, FileCounts, FilePusherStats, GetSummaryResponse,
    GetSystemMetricsResponse, HistoryStepResponse, InternalMessages, InternalMessagesResponse,
    LogArtifactResponse, NetworkStatusResponse, Operation, OperationStats, OperationStatsResponse,
    PollExitResponse, Record, Response, RunExitResult, RunRecord, RunUpdateResult,
    SampledHistoryItem, SampledHistoryResponse, ServerInformAttachResponse, ServerResponse,
    Settings, StopStatusResponse, SummaryItem, SystemMetricSample, SystemMetricsBuffer,
};
use cairn_store::SyncPolicy;

use crate::connection::Responder;

/// How long a request answered from the handler's state may wait for it.
const QUERY_WAIT: Duration = Duration::from_secs(30);
/// The finish deadline when the settings give none (`finish_timeout` 0 means no limit;
/// a week stands for it without overflowing deadline arithmetic).
const NO_FINISH_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where a run is in its life.
enum Phase {
    /// `inform_init` came; the `run` record has not.
    Pending(Box<Settings>),
    /// The pipeline runs.
    Running(Box<Pipeline>),
    /// `exit` came; the finish thread owns the pipeline.
    Finishing,
    /// Finished: what the SDK asks for after `exit`.
    Finished(Box<Finished>),
}

#[derive(Default)]
struct Finished {
    timed_out: bool,
    summary: Vec<SummaryItem>,
    samples: Vec<SampledHistoryItem>,
    /// Online: the files the upload sent, counted as the footer shows them.
    files: Option<(FileCounts, FilePusherStats)>,
}

struct Run {
    phase: Phase,
    /// The settings `inform_init` brought (the environment probe reads them).
    settings: Box<Settings>,
    /// Outcomes of the run's logged artifacts, by client id (the uploader publishes).
    artifacts: Arc<ArtifactBoard>,
    /// What the run's upload is doing now (the SDK shows it while init and finish wait).
    operations: Arc<Operations>,
    /// The input queue while the pipeline runs (cloned out so a full queue blocks only
    /// the connection that feeds this run, not the registry).
    input: Option<RunInput>,
    /// The run as its `run_result` answered it (what `attach` answers a child process).
    answered: Option<Box<RunRecord>>,
    /// Warnings for the SDK's `internal_messages` long poll, and the poll held open.
    messages: Arc<Messages>,
    /// Where the run's files are written (the final summary is read from there).
    files_dir: Option<std::path::PathBuf>,
}

/// What the SDK's `internal_messages{wait}` poll returns: warnings as they come, and an
/// empty answer once the run is over (that ends the SDK's loop).
#[derive(Default)]
struct Messages {
    state: Mutex<MessagesState>,
}

/// A held poll: answers it with the warnings (none: the run is over).
type HeldPoll = Box<dyn FnOnce(Vec<String>) + Send>;

#[derive(Default)]
struct MessagesState {
    warnings: Vec<String>,
    held: Option<HeldPoll>,
    closed: bool,
}

impl Messages {
    /// A poll: answered at once when there are warnings or the run is over, else held.
    fn poll(&self, answer: HeldPoll) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed || !state.warnings.is_empty() {
            let warnings = std::mem::take(&mut state.warnings);
            drop(state);
            answer(warnings);
        } else if let Some(previous) = state.held.replace(answer) {
            // A second poll replaces the first (the SDK has stopped waiting on it).
            drop(state);
            previous(Vec::new());
        }
    }

    /// A warning for the user: released to a held poll at once.
    fn warn(&self, warning: String) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return;
        }
        state.warnings.push(warning);
        if let Some(held) = state.held.take() {
            let warnings = std::mem::take(&mut state.warnings);
            drop(state);
            held(warnings);
        }
    }

    /// The run is over: a held poll is answered empty, and so is every later one.
    fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        let held = state.held.take();
        drop(state);
        if let Some(held) = held {
            held(Vec::new());
        }
    }
}

/// Every run of the service.
#[derive(Default)]
pub(crate) struct Runs {
    runs: Mutex<HashMap<String, Arc<Mutex<Run>>>>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs").finish_non_exhaustive()
    }
}

/// An answer to a record or request: `Result{…}` under the request's id.
fn result(request_id: &str, result_type: ResultType) -> ServerResponse {
    ServerResponse {
        request_id: request_id.to_owned(),
        server_response_type: Some(ServerResponseType::ResultCommunicate(cairn_proto::Result {
            result_type: Some(result_type),
            ..Default::default()
        })),
    }
}

fn response(request_id: &str, response_type: Option<ResponseType>) -> ServerResponse {
    result(request_id, ResultType::Response(Response { response_type }))
}

impl Runs {
    fn get(&self, id: &str) -> Option<Arc<Mutex<Run>>> {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// `inform_init`: registers run `id`; an error message when the id is in use.
    pub(crate) fn init(&self, id: &str, settings: Settings) -> Result<(), String> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if runs.contains_key(id) {
            return Err(format!("run ID {id} is in use"));
        }
        runs.insert(
            id.to_owned(),
            Arc::new(Mutex::new(Run {
                phase: Phase::Pending(Box::new(settings.clone())),
                settings: Box::new(settings),
                artifacts: Arc::default(),
                operations: Arc::default(),
                input: None,
                answered: None,
                messages: Arc::default(),
                files_dir: None,
            })),
        );
        Ok(())
    }

    /// `inform_attach` from a child process: the run's settings, or an error when no run
    /// `id` is running here (W&B's core leaves that unanswered; the SDK would then wait
    /// 10 s for nothing).
    pub(crate) fn inform_attach<S>(&self, request_id: &str, id: &str, reply: &Arc<Responder<S>>)
    where
        S: std::io::Write + Send + 'static,
    {
        let settings = self.get(id).and_then(|run| {
            let run = run.lock().unwrap_or_else(|e| e.into_inner());
            match run.phase {
                Phase::Pending(_) | Phase::Running(_) => Some(run.settings.clone()),
                Phase::Finishing | Phase::Finished(_) => None,
            }
        });
        match settings {
            Some(settings) => reply.send(&ServerResponse {
                request_id: request_id.to_owned(),
                server_response_type: Some(ServerResponseType::InformAttachResponse(
                    ServerInformAttachResponse {
                        settings: Some(*settings),
                        info: None,
                    },
                )),
            }),
            None => reply.error(request_id, format!("no run {id:?} to attach to")),
        }
    }

    /// `inform_finish`: forgets a run once it is finished.
    pub(crate) fn forget(&self, id: &str) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(run) = runs.get(id) {
            let run = run.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(run.phase, Phase::Finished(_) | Phase::Pending(_)) {
                drop(run);
                runs.remove(id);
            }
        }
    }

    /// `inform_teardown` (or a parent gone): finishes every run the user never finished
    /// with `exit_code`, waits, and reports each one's footer (the SDK prints none then).
    pub(crate) fn finish_all(&self, exit_code: i32, reporter: &dyn crate::Reporter) {
        let all: Vec<Arc<Mutex<Run>>> = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for run in all {
            if complete(&run, exit_code).is_some() {
                let guard = run.lock().unwrap_or_else(|e| e.into_inner());
                let lines = footer(&guard.settings);
                let id = guard
                    .answered
                    .as_ref()
                    .map(|r| r.run_id.clone())
                    .unwrap_or_default();
                drop(guard);
                if !lines.is_empty() {
                    reporter.report(crate::ServiceEvent::Footer { run: id, lines });
                }
            }
            close_messages(&run);
        }
    }

    /// A record published on a connection, answered on `reply` when it carries an id.
    pub(crate) fn record<S>(&self, request_id: &str, record: Record, reply: &Arc<Responder<S>>)
    where
        S: std::io::Write + Send + 'static,
    {
        let id = record
            .info
            .as_ref()
            .map(|i| i.stream_id.clone())
            .unwrap_or_default();
        let Some(run) = self.get(&id) else {
            if !request_id.is_empty() {
                reply.error(
                    request_id,
                    format!("unknown run {id:?}: no inform_init for it"),
                );
            }
            return;
        };
        match record.record_type {
            Some(RecordType::Header(_)) => {}
            Some(RecordType::Run(run_record)) => start(&run, request_id, run_record, reply),
            Some(RecordType::Exit(exit)) => finish(run, request_id, exit.exit_code, reply),
            Some(RecordType::Request(request)) => {
                self::request(&run, request_id, request.request_type, reply);
            }
            Some(RecordType::Summary(summary)) => {
                let change = SummaryChange {
                    update: summary
                        .update
                        .iter()
                        .filter_map(|i| {
                            Some((
                                path(&i.key, &i.nested_key),
                                Value::from_json(&i.value_json)?,
                            ))
                        })
                        .collect(),
                    remove: summary
                        .remove
                        .iter()
                        .map(|i| path(&i.key, &i.nested_key))
                        .collect(),
                };
                feed(&run, Input::Summary(change));
            }
            Some(RecordType::Config(config)) => {
                let change = ConfigChange {
                    update: config
                        .update
                        .iter()
                        .filter_map(|i| Some((i.key.clone(), Value::from_json(&i.value_json)?)))
                        .collect(),
                    remove: config.remove.iter().map(|i| i.key.clone()).collect(),
                };
                feed(&run, Input::Config(change));
            }
            Some(RecordType::Metric(metric)) => feed(&run, Input::DefineMetric(Box::new(metric))),
            Some(kind) => {
                // Persisted as sent: telemetry, console output, files, alerts, artifacts…
                // (`control.local` marks the SDK's requests, never its records).
                let record = Record {
                    record_type: Some(kind),
                    control: None,
                    info: record.info,
                    ..Default::default()
                };
                feed(&run, Input::Record(Box::new(record)));
                if !request_id.is_empty() {
                    reply.send(&response(request_id, None));
                }
            }
            None => {
                if !request_id.is_empty() {
                    reply.send(&response(request_id, None));
                }
            }
        }
    }
}

/// Ends the run's `internal_messages` poll: the run is over.
fn close_messages(run: &Arc<Mutex<Run>>) {
    let messages = run
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .messages
        .clone();
    messages.close();
}

/// Takes a running run's pipeline to finish it (the run is then `Finishing`, its input
/// closed); `None` when it is not running.
fn take_pipeline(run: &Arc<Mutex<Run>>) -> Option<Box<Pipeline>> {
    let mut run = run.lock().unwrap_or_else(|e| e.into_inner());
    run.input = None;
    match std::mem::replace(&mut run.phase, Phase::Finishing) {
        Phase::Running(pipeline) => Some(pipeline),
        other => {
            run.phase = other;
            None
        }
    }
}

fn path(key: &str, nested: &[String]) -> Vec<String> {
    if nested.is_empty() {
        vec![key.to_owned()]
    } else {
        nested.to_vec()
    }
}

/// Sends `input` to the run's pipeline (blocking while its queue is full: that is the
/// back-pressure the SDK expects); dropped when the run is not running.
fn feed(run: &Arc<Mutex<Run>>, input: Input) {
    let queue = run.lock().unwrap_or_else(|e| e.into_inner()).input.clone();
    if let Some(queue) = queue {
        let _ = queue.send(input);
    }
}

/// The `run` record: starts the pipeline and answers the run as the SDK reads it.
fn start<S>(run: &Arc<Mutex<Run>>, request_id: &str, record: RunRecord, reply: &Arc<Responder<S>>)
where
    S: std::io::Write + Send + 'static,
{
    let mut guard = run.lock().unwrap_or_else(|e| e.into_inner());
    let Phase::Pending(settings) = &guard.phase else {
        let running = matches!(guard.phase, Phase::Running(_));
        drop(guard);
        if running {
            // A run record after the start updates the run (`run.name = …`, tags, notes).
            let answer =
                (!request_id.is_empty()).then(|| run_result(request_id, answered_run(&record)));
            feed(
                run,
                Input::Record(Box::new(Record {
                    record_type: Some(RecordType::Run(record)),
                    ..Default::default()
                })),
            );
            if let Some(answer) = answer {
                reply.send(&answer);
            }
        } else if !request_id.is_empty() {
            reply.send(&run_error(request_id, &record, "the run has finished"));
        }
        return;
    };
    let online = settings
        .mode
        .as_deref()
        .is_some_and(|m| !matches!(m, "offline" | "dryrun" | "disabled"));
    let mut record = record;
    let mut resumed = None;
    let upload = if online {
        let connection = crate::api::connection_config(settings);
        match resume_check(&connection, settings, &record) {
            Ok(status) => resumed = status,
            Err((message, code)) => {
                drop(guard);
                reply.send(&run_error_code(request_id, &record, &message, code));
                return;
            }
        }
        // The run exists on the server before `wandb.init` returns (the SDK's own GraphQL
        // right after init expects it); its entity is the viewer's when none is named. An
        // unreachable server or a bad key fails `wandb.init` here.
        let probe = cairn_core::upload::Connection::new(connection.clone());
        match crate::api::register_run(&probe, &record) {
            Ok(remote) => {
                record.entity = remote.entity;
                record.project = remote.project;
                if record.display_name.is_empty() {
                    record.display_name = remote.display_name;
                }
            }
            Err(err) => {
                drop(guard);
                let message = format!("cannot create the run on the server: {err}");
                reply.send(&run_error_code(request_id, &record, &message, 1));
                return;
            }
        }
        let mut upload = cairn_core::upload::UploadSettings::new(connection, Default::default())
            .with_retry_env();
        upload.artifacts = guard.artifacts.clone();
        upload.operations = guard.operations.clone();
        if let Some(secs) = settings
            .x_file_stream_transmit_interval
            .filter(|s| s.is_finite() && *s >= 0.0)
        {
            upload.transmit_interval = Duration::from_secs_f64(secs);
        }
        Some(upload)
    } else {
        None
    };
    let Some(log_path) = settings.sync_file.clone() else {
        drop(guard);
        reply.send(&run_error(
            request_id,
            &record,
            "the settings name no sync_file",
        ));
        return;
    };
    let log_path = std::path::PathBuf::from(log_path);
    let files_dir = settings
        .sync_dir
        .as_deref()
        .map(std::path::PathBuf::from)
        .or_else(|| log_path.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_default()
        .join("files");
    let upload = upload.map(|mut upload| {
        upload.files_dir = files_dir.clone();
        upload
    });
    let code = save_code(settings, &files_dir);
    if let Some(status) = &resumed {
        resume_into(&mut record, status);
    }
    let config_files_dir = files_dir.clone();
    let config = PipelineConfig {
        log_path: log_path.clone(),
        files_dir,
        handler: HandlerConfig {
            stream_id: record.run_id.clone(),
            starting_step: record.starting_step,
            runtime_offset: Duration::from_secs(u64::try_from(record.runtime).unwrap_or(0)),
            stats_buffer: settings
                .x_stats_buffer_size
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
            ..HandlerConfig::default()
        },
        sync: SyncPolicy::default(),
        queue_capacity: DEFAULT_QUEUE_CAPACITY,
        system: system_config(settings),
        upload,
    };
    let (pipeline, events) = match Pipeline::start(config) {
        Ok(started) => started,
        Err(err) => {
            drop(guard);
            let message = format!("cannot start run {}: {err}", record.run_id);
            reply.send(&run_error(request_id, &record, &message));
            return;
        }
    };
    // The handler's warnings reach the user through the SDK's internal_messages poll.
    let messages = guard.messages.clone();
    let _ = std::thread::Builder::new()
        .name("cairn-run-events".into())
        .spawn(move || {
            for event in events {
                if let cairn_core::pipeline::Event::Warning(warning) = event {
                    messages.warn(warning.to_string());
                }
            }
        });
    guard.files_dir = Some(config_files_dir);
    let input = pipeline.input().clone();
    let answered = answered_run(&record);
    guard.answered = Some(Box::new(answered.clone()));
    let _ = input.send(Input::Record(Box::new(Record {
        record_type: Some(RecordType::Run(record)),
        ..Default::default()
    })));
    if let Some(status) = resumed {
        // The stored summary carries on (keys this session logs replace it).
        let change = SummaryChange {
            update: status
                .summary
                .into_iter()
                .filter_map(|(key, value)| Some((vec![key], Value::from_json(&value.to_string())?)))
                .collect(),
            remove: Vec::new(),
        };
        let _ = input.send(Input::Summary(change));
    }
    if let Some(files) = code {
        let _ = input.send(Input::Record(Box::new(files)));
    }
    guard.input = Some(input);
    guard.phase = Phase::Running(Box::new(pipeline));
    drop(guard);
    reply.send(&run_result(request_id, answered));
}

/// `resume` in the settings (`allow`, `must`, `never`, `auto`): asks the server whether
/// the run exists, as W&B's core does before creating it. `Ok(Some)` to resume it;
/// `Err((message, code))` when the setting forbids what the server holds (code 3: the
/// SDK's `UsageError`) or the server cannot be asked (code 1).
fn resume_check(
    connection: &cairn_core::upload::ConnectionConfig,
    settings: &Settings,
    record: &RunRecord,
) -> Result<Option<cairn_core::upload::ResumeStatus>, (String, i32)> {
    let Some(resume) = settings
        .resume
        .as_deref()
        .map(str::to_ascii_lowercase)
        .filter(|r| matches!(r.as_str(), "allow" | "must" | "never" | "auto"))
    else {
        return Ok(None);
    };
    let id = &record.run_id;
    let until = cairn_core::upload::Until::deadline(std::time::Instant::now() + QUERY_WAIT);
    let project = if record.project.is_empty() {
        "uncategorized"
    } else {
        record.project.as_str()
    };
    let entity = (!record.entity.is_empty()).then_some(record.entity.as_str());
    let status = cairn_core::upload::resume_status(
        connection,
        cairn_core::upload::Policies::default(),
        entity,
        project,
        id,
        &until,
    )
    .map_err(|err| (format!("cannot ask the server about run {id}: {err}"), 1))?;
    match (resume.as_str(), status) {
        ("must", None) => Err((
            format!(
                "run {id} does not exist on the server, and resume=\"must\" requires an \
                 existing run (use resume=\"allow\" to create it)"
            ),
            3,
        )),
        ("never", Some(_)) => Err((
            format!(
                "run {id} already exists on the server, and resume=\"never\" does not allow \
                 resuming it (use a new id, or resume=\"allow\")"
            ),
            3,
        )),
        (_, status) => Ok(status),
    }
}

/// The run record of a resumed run: marked resumed, its steps and runtime continuing,
/// the stored config under the keys this init does not set.
fn resume_into(record: &mut RunRecord, status: &cairn_core::upload::ResumeStatus) {
    record.resumed = true;
    record.starting_step = status.last_step.map_or(0, |s| s.saturating_add(1));
    record.runtime = status.runtime.max(0.0).min(f64::from(i32::MAX)) as i32;
    let config = record.config.get_or_insert_with(Default::default);
    let set: std::collections::HashSet<String> =
        config.update.iter().map(|i| i.key.clone()).collect();
    for (key, value) in &status.config {
        if !set.contains(key) {
            config.update.push(cairn_proto::ConfigItem {
                key: key.clone(),
                value_json: value.to_string(),
                ..Default::default()
            });
        }
    }
}

/// System metrics as the settings ask: sampled every `x_stats_sampling_interval` (W&B's
/// 15 s by default) for the SDK's process `x_stats_pid`; none with
/// `x_disable_machine_info`.
fn system_config(settings: &Settings) -> Option<cairn_core::system::SystemConfig> {
    if settings.x_disable_machine_info == Some(true) {
        return None;
    }
    let mut config = cairn_core::system::SystemConfig::default();
    if let Some(pid) = settings
        .x_stats_pid
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p > 0)
    {
        config.pid = pid;
    }
    if let Some(secs) = settings
        .x_stats_sampling_interval
        .filter(|s| s.is_finite() && *s > 0.0)
    {
        config.interval = Duration::from_secs_f64(secs);
    }
    if let Some(paths) = settings
        .x_stats_disk_paths
        .as_ref()
        .filter(|p| !p.value.is_empty())
    {
        config.disk_paths = paths.value.iter().map(std::path::PathBuf::from).collect();
    }
    Some(config)
}

/// `python_packages`: the script's environment as `requirements.txt` (`name==version`,
/// sorted) in the run's files, uploaded with them.
fn write_requirements(run: &Arc<Mutex<Run>>, packages: &cairn_proto::PythonPackagesRequest) {
    let Some(dir) = run
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .files_dir
        .clone()
    else {
        return;
    };
    let mut lines: Vec<String> = packages
        .package
        .iter()
        .filter(|p| !p.name.is_empty() && !p.name.contains(['\n', '\r']))
        .map(|p| format!("{}=={}", p.name, p.version.replace(['\n', '\r'], "")))
        .collect();
    lines.sort_unstable_by_key(|l| l.to_ascii_lowercase());
    let mut text = lines.join("\n");
    text.push('\n');
    if cairn_core::sender::write_atomic(&dir.join("requirements.txt"), text.as_bytes()).is_err() {
        return;
    }
    feed(
        run,
        Input::Record(Box::new(wandb_file_now("requirements.txt".to_owned()))),
    );
}

/// A Files record for one file the core made (type WANDB, as W&B's core marks its own),
/// uploaded at once.
fn wandb_file_now(path: String) -> Record {
    Record {
        record_type: Some(RecordType::Files(cairn_proto::FilesRecord {
            files: vec![cairn_proto::FilesItem {
                path,
                policy: cairn_proto::files_item::PolicyType::Now as i32,
                r#type: cairn_proto::files_item::FileType::Wandb as i32,
            }],
            info: None,
        })),
        ..Default::default()
    }
}

/// `save_code`: the script itself, copied to `code/<its path under the root>` in the run's
/// files and uploaded at once, as W&B's core does at run start (W&B also saves `git diff`s
/// of a repository; cairn does not). Nothing when the setting is off, the script is not a
/// file (a notebook, `python -c`), or its relative path would leave `files/code`.
fn save_code(settings: &Settings, files_dir: &std::path::Path) -> Option<Record> {
    if settings.save_code != Some(true) {
        return None;
    }
    let relpath = settings
        .program_relpath
        .as_deref()
        .filter(|p| cairn_core::upload::safe_relative(p))?;
    let source = settings
        .program_abspath
        .as_deref()
        .filter(|p| !p.is_empty())?;
    let rel = std::path::Path::new(relpath);
    let dest = files_dir.join("code").join(rel);
    std::fs::create_dir_all(dest.parent()?).ok()?;
    std::fs::copy(source, &dest).ok()?;
    let path = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    Some(wandb_file_now(format!("code/{path}")))
}

/// This core process's writer id, a random UUID (v4) made once: W&B's core stamps the
/// environment it probes with one, and keys the config's `_wandb.e` by it.
fn writer_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let mut bytes: [u8; 16] = rand::random();
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    })
}

/// `probe_system_info`: the machine (cairn-core's probe) and the script (the settings:
/// program, arguments, interpreter, OS string, user), persisted as the run's environment
/// record (`wandb-metadata.json`). Probed on a thread:
/// it reads `/proc` and may load NVML.
fn probe_environment(run: &Arc<Mutex<Run>>, settings: &Settings) {
    let run = run.clone();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let (program, root, host, python, username, email) = (
        text(&settings.program),
        text(&settings.root_dir),
        text(&settings.host),
        text(&settings.python),
        text(&settings.username),
        text(&settings.email),
    );
    let code_path = text(&settings.program_relpath);
    let start_time = settings.x_start_time;
    // The script's process, not the core's: its arguments, its interpreter, its OS string.
    let args = settings.args.clone().map(|a| a.value).unwrap_or_default();
    let (executable, os, code_path_local, docker, colab) = (
        text(&settings.x_executable),
        text(&settings.os),
        text(&settings.code_path_local),
        text(&settings.docker),
        text(&settings.colab_url),
    );
    let _ = std::thread::Builder::new()
        .name("cairn-probe".into())
        .spawn(move || {
            let mut env = cairn_core::system::probe_environment();
            env.program = program;
            env.code_path = code_path;
            env.root = root;
            env.host = host;
            env.python = python;
            env.username = username;
            env.email = email;
            env.args = args;
            env.writer_id = writer_id().to_owned();
            env.code_path_local = code_path_local;
            env.docker = docker;
            env.colab = colab;
            if !executable.is_empty() {
                env.executable = executable;
            }
            if !os.is_empty() {
                env.os = os;
            }
            // When the script started (`wandb.init`), to the microsecond as W&B writes it;
            // the core's clock when the SDK did not say.
            let started = start_time
                .filter(|t| t.is_finite() && *t > 0.0)
                .map(|t| Duration::from_micros((t * 1e6).round() as u64))
                .unwrap_or_else(|| {
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                });
            env.started_at = Some(prost_types::Timestamp {
                seconds: i64::try_from(started.as_secs()).unwrap_or(0),
                nanos: i32::try_from(started.subsec_nanos()).unwrap_or(0),
            });
            feed(
                &run,
                Input::Record(Box::new(Record {
                    record_type: Some(RecordType::Environment(env)),
                    ..Default::default()
                })),
            );
        });
}

/// The `run_result` the SDK reads: the client's run, config items wrapped as `{"value": X}`.
/// The run as the SDK expects it back: config values wrapped as `{"value": …}` (the
/// config file's shape) and a start time.
fn answered_run(record: &RunRecord) -> RunRecord {
    let mut run = record.clone();
    if let Some(config) = run.config.as_mut() {
        for item in &mut config.update {
            item.value_json = format!("{{\"value\": {}}}", item.value_json);
        }
    }
    if run.start_time.is_none() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        run.start_time = Some(prost_types::Timestamp {
            seconds: i64::try_from(now.as_secs()).unwrap_or(0),
            nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
        });
    }
    run
}

fn run_result(request_id: &str, run: RunRecord) -> ServerResponse {
    result(
        request_id,
        ResultType::RunResult(RunUpdateResult {
            run: Some(run),
            error: None,
        }),
    )
}

fn run_error(request_id: &str, record: &RunRecord, message: &str) -> ServerResponse {
    run_error_code(request_id, record, message, 0)
}

/// A `run_result` error: code 0 is the SDK's `Error`, 1 `CommError`, 2 authentication,
/// 3 usage.
fn run_error_code(
    request_id: &str,
    record: &RunRecord,
    message: &str,
    code: i32,
) -> ServerResponse {
    result(
        request_id,
        ResultType::RunResult(RunUpdateResult {
            run: Some(record.clone()),
            error: Some(ErrorInfo {
                message: message.to_owned(),
                code,
            }),
        }),
    )
}

/// What the SDK would have printed at the end of a run it never finished: where to find
/// the run (online) or how to upload it (offline), and its logs. Nothing when the
/// settings silence the SDK.
fn footer(settings: &Settings) -> Vec<String> {
    if settings.silent == Some(true) || settings.quiet == Some(true) {
        return Vec::new();
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let offline = settings
        .mode
        .as_deref()
        .is_some_and(|m| matches!(m, "offline" | "dryrun"));
    let mut lines = Vec::new();
    if offline {
        let dir = text(&settings.sync_dir);
        lines.push("wandb: You can sync this run to the cloud by running:".to_owned());
        lines.push(format!("wandb: wandb sync {dir}"));
    } else if let Some(url) = settings.run_url.as_ref().filter(|u| !u.is_empty()) {
        let name = settings
            .run_name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| settings.run_id.clone())
            .unwrap_or_default();
        lines.push(format!("wandb: View run {name} at: {url}"));
    }
    if let Some(logs) = settings.log_dir.as_ref().filter(|d| !d.is_empty()) {
        lines.push(format!("wandb: Find logs at: {logs}"));
    }
    lines
}

/// Asks the handler `make(reply)` and waits for its answer.
fn ask<T>(run: &Arc<Mutex<Run>>, make: impl FnOnce(mpsc::SyncSender<T>) -> Query) -> Option<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    let queue = run
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .input
        .clone()?;
    queue.send(Input::Query(make(tx))).ok()?;
    rx.recv_timeout(QUERY_WAIT).ok()
}

fn summary_items(items: Vec<(Vec<String>, Value)>) -> Vec<SummaryItem> {
    items
        .into_iter()
        .map(|(path, value)| cairn_core::handler::summary_item(path, value.to_json()))
        .collect()
}

fn sample_items(samples: Vec<(String, Vec<f32>)>) -> Vec<SampledHistoryItem> {
    samples
        .into_iter()
        .map(|(key, values_float)| SampledHistoryItem {
            key,
            values_float,
            ..Default::default()
        })
        .collect()
}

/// Finishes a running run with `exit_code` and keeps what the SDK asks for afterwards:
/// the final summary (the sender's `wandb-summary.json`, which includes a row the exit
/// committed; the handler's summary taken just before when that file is missing), the
/// samples for the footer's sparklines and the files uploaded. `None` when the run was
/// not running.
fn complete(run: &Arc<Mutex<Run>>, exit_code: i32) -> Option<()> {
    let before = ask(run, Query::Summary).map(summary_items);
    let samples = ask(run, Query::SampledHistory)
        .map(sample_items)
        .unwrap_or_default();
    let pipeline = take_pipeline(run)?;
    let report = pipeline.finish(exit_code, NO_FINISH_LIMIT);
    let files_dir = run
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .files_dir
        .clone();
    let summary = files_dir
        .as_deref()
        .and_then(final_summary)
        .or(before)
        .unwrap_or_default();
    let (timed_out, files) = match &report {
        Ok(report) => (
            report.timed_out,
            report
                .upload
                .as_ref()
                .and_then(|u| u.as_ref().ok())
                .map(|upload| file_counts(upload, files_dir.as_deref())),
        ),
        Err(_) => (true, None),
    };
    run.lock().unwrap_or_else(|e| e.into_inner()).phase = Phase::Finished(Box::new(Finished {
        timed_out,
        summary,
        samples,
        files,
    }));
    Some(())
}

/// The summary the sender wrote at the finish (`files/wandb-summary.json`), as items.
fn final_summary(files_dir: &std::path::Path) -> Option<Vec<SummaryItem>> {
    let text = std::fs::read_to_string(files_dir.join("wandb-summary.json")).ok()?;
    let serde_json::Value::Object(map) = serde_json::from_str(&text).ok()? else {
        return None;
    };
    Some(
        map.into_iter()
            .map(|(key, value)| SummaryItem {
                key,
                value_json: value.to_string(),
                ..Default::default()
            })
            .collect(),
    )
}

/// `poll_exit`'s file counts (the online footer's "Synced N W&B file(s), M media
/// file(s)…", each file once; artifact files include each manifest) and byte totals, from
/// what the upload sent.
fn file_counts(
    upload: &cairn_core::upload::UploadReport,
    files_dir: Option<&std::path::Path>,
) -> (FileCounts, FilePusherStats) {
    let mut counts = FileCounts {
        artifact_count: i32::try_from(upload.artifact_files).unwrap_or(i32::MAX),
        ..Default::default()
    };
    let mut bytes = 0i64;
    // A file uploaded twice (at the start and again at the end) is one file.
    let names: std::collections::BTreeSet<&String> = upload.files.iter().collect();
    for name in names {
        if name.starts_with("media/") {
            counts.media_count += 1;
        } else if name.starts_with("wandb-")
            || name.starts_with("code/")
            || matches!(
                name.as_str(),
                "output.log" | "config.yaml" | "requirements.txt" | "diff.patch"
            )
        {
            counts.wandb_count += 1;
        } else {
            counts.other_count += 1;
        }
        if let Some(dir) = files_dir {
            let size = std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
            bytes = bytes.saturating_add(i64::try_from(size).unwrap_or(i64::MAX));
        }
    }
    let pusher = FilePusherStats {
        uploaded_bytes: bytes,
        total_bytes: bytes,
        deduped_bytes: 0,
    };
    (counts, pusher)
}

/// `exit`: finishes the run on a thread of its own, then answers it and ends the run's
/// `internal_messages` poll.
fn finish<S>(run: Arc<Mutex<Run>>, request_id: &str, exit_code: i32, reply: &Arc<Responder<S>>)
where
    S: std::io::Write + Send + 'static,
{
    let request_id = request_id.to_owned();
    let reply = reply.clone();
    let spawned = std::thread::Builder::new()
        .name("cairn-finish".into())
        .spawn(move || {
            if complete(&run, exit_code).is_none() {
                let mut guard = run.lock().unwrap_or_else(|e| e.into_inner());
                if !matches!(guard.phase, Phase::Finished(_)) {
                    guard.phase = Phase::Finished(Box::default());
                }
            }
            let timed_out = finished(&run, |f| f.timed_out).unwrap_or(false);
            if !request_id.is_empty() {
                reply.send(&result(
                    &request_id,
                    ResultType::ExitResult(RunExitResult { timed_out }),
                ));
            }
            close_messages(&run);
        });
    if spawned.is_err() {
        // No thread: the answer never comes; the SDK's own exit timeout takes over.
    }
}

/// A request inside `record_publish`: answered, never persisted.
fn request<S>(
    run: &Arc<Mutex<Run>>,
    request_id: &str,
    request: Option<RequestType>,
    reply: &Arc<Responder<S>>,
) where
    S: std::io::Write + Send + 'static,
{
    let answer = match request {
        Some(RequestType::PartialHistory(history)) => {
            let mut timestamp = None;
            let items = history
                .item
                .iter()
                .filter_map(|item| {
                    let value = Value::from_json(&item.value_json)?;
                    let key = if item.nested_key.is_empty() {
                        item.key.clone()
                    } else {
                        item.nested_key.join(".")
                    };
                    if key == "_timestamp" {
                        timestamp = value.as_f64();
                        return None;
                    }
                    Some((key, value))
                })
                .collect();
            let timestamp = timestamp.unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
            });
            feed(
                run,
                Input::Log(LogCall {
                    items,
                    step: history.step.map(|s| s.num),
                    commit: history.action.map(|a| a.flush),
                    timestamp,
                }),
            );
            None
        }
        Some(RequestType::Attach(attach)) => {
            let answered = run
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .answered
                .clone();
            Some(ResponseType::AttachResponse(match answered {
                Some(run) => AttachResponse {
                    run: Some(*run),
                    error: None,
                },
                None => AttachResponse {
                    run: None,
                    error: Some(ErrorInfo {
                        message: format!("run {:?} has not started", attach.attach_id),
                        code: 3,
                    }),
                },
            }))
        }
        Some(RequestType::HistoryStep(_)) => {
            Some(ResponseType::HistoryStepResponse(HistoryStepResponse {
                step: ask(run, Query::HistoryStep).unwrap_or(0),
            }))
        }
        Some(RequestType::GetSummary(_)) => {
            let finished = finished(run, |f| f.summary.clone());
            let item = match finished {
                Some(items) => items,
                None => ask(run, Query::Summary)
                    .map(summary_items)
                    .unwrap_or_default(),
            };
            Some(ResponseType::GetSummaryResponse(GetSummaryResponse {
                item,
            }))
        }
        Some(RequestType::SampledHistory(_)) => {
            let item = finished(run, |f| f.samples.clone())
                .or_else(|| ask(run, Query::SampledHistory).map(sample_items))
                .unwrap_or_default();
            Some(ResponseType::SampledHistoryResponse(
                SampledHistoryResponse { item },
            ))
        }
        // The samples kept under `x_stats_buffer_size` (none by default, as with W&B's
        // core); a run no longer running has none to give.
        Some(RequestType::GetSystemMetrics(_)) => {
            let system_metrics = ask(run, Query::SystemMetrics)
                .unwrap_or_default()
                .into_iter()
                .map(|(key, samples)| {
                    let record = samples
                        .into_iter()
                        .map(|(timestamp, value)| SystemMetricSample {
                            timestamp: Some(timestamp),
                            value,
                        })
                        .collect();
                    (key, SystemMetricsBuffer { record })
                })
                .collect();
            Some(ResponseType::GetSystemMetricsResponse(
                GetSystemMetricsResponse { system_metrics },
            ))
        }
        Some(RequestType::PollExit(_)) => {
            let done = finished(run, |f| (f.timed_out, f.files));
            let files = done.and_then(|(_, files)| files);
            Some(ResponseType::PollExitResponse(PollExitResponse {
                done: done.is_some(),
                exit_result: done.map(|(timed_out, _)| RunExitResult { timed_out }),
                file_counts: files.map(|(counts, _)| counts),
                pusher_stats: files.map(|(_, pusher)| pusher),
                ..Default::default()
            }))
        }
        Some(RequestType::LogArtifact(log)) => {
            // Persisted like an offline artifact: the uploader saves it from the log and
            // publishes the outcome; the answer waits for it on a thread of its own.
            let Some(artifact) = log.artifact else {
                if !request_id.is_empty() {
                    reply.send(&log_artifact_answer(
                        request_id,
                        String::new(),
                        "log_artifact without an artifact".to_owned(),
                    ));
                }
                return;
            };
            let client_id = artifact.client_id.clone();
            let board = run
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .artifacts
                .clone();
            if log.history_step > 0 {
                // The step the SDK copied from `history_step` (a media table logged at it);
                // 0 is left out, as W&B's core leaves it.
                board.set_history_step(&client_id, log.history_step);
            }
            feed(
                run,
                Input::Record(Box::new(Record {
                    record_type: Some(RecordType::Artifact(artifact)),
                    ..Default::default()
                })),
            );
            let request_id = request_id.to_owned();
            let reply = reply.clone();
            let _ = std::thread::Builder::new()
                .name("cairn-artifact-wait".into())
                .spawn(move || {
                    let outcome = board.wait(&client_id, None, |o| {
                        !matches!(o, ArtifactOutcome::Recorded)
                    });
                    let (id, error) = match outcome {
                        Some(ArtifactOutcome::Saved(saved)) => (saved.id, String::new()),
                        Some(ArtifactOutcome::Failed(why)) => (String::new(), why),
                        _ => (String::new(), "the artifact was not saved".to_owned()),
                    };
                    if !request_id.is_empty() {
                        reply.send(&log_artifact_answer(&request_id, id, error));
                    }
                });
            return;
        }
        Some(RequestType::PythonPackages(packages)) => {
            write_requirements(run, &packages);
            None
        }
        Some(RequestType::ProbeSystemInfo(_)) => {
            let settings = run
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .settings
                .clone();
            probe_environment(run, &settings);
            None
        }
        Some(RequestType::StopStatus(_)) => {
            let stop = match &run.lock().unwrap_or_else(|e| e.into_inner()).phase {
                Phase::Running(pipeline) => pipeline
                    .should_stop()
                    .load(std::sync::atomic::Ordering::SeqCst),
                _ => false,
            };
            Some(ResponseType::StopStatusResponse(StopStatusResponse {
                run_should_stop: stop,
            }))
        }
        Some(RequestType::NetworkStatus(_)) => Some(ResponseType::NetworkStatusResponse(
            NetworkStatusResponse::default(),
        )),
        Some(RequestType::Operations(_)) => {
            let operations = run
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .operations
                .clone();
            Some(ResponseType::OperationsResponse(operations_response(
                &operations,
            )))
        }
        // Held until there is a warning to show or the run is over (then answered empty,
        // which ends the SDK's loop).
        Some(RequestType::InternalMessages(_)) => {
            let messages = run
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .messages
                .clone();
            let request_id = request_id.to_owned();
            let reply = reply.clone();
            messages.poll(Box::new(move |warning| {
                if request_id.is_empty() {
                    return;
                }
                reply.send(&response(
                    &request_id,
                    Some(ResponseType::InternalMessagesResponse(
                        InternalMessagesResponse {
                            messages: Some(InternalMessages { warning }),
                        },
                    )),
                ));
            }));
            return;
        }
        _ => None,
    };
    if !request_id.is_empty() {
        reply.send(&response(request_id, answer));
    }
}

/// The upload's operations in flight, as the SDK's progress display reads them.
fn operations_response(operations: &Operations) -> OperationStatsResponse {
    let operations: Vec<Operation> = operations
        .snapshot()
        .into_iter()
        .map(|op| Operation {
            desc: op.desc,
            runtime_seconds: op.runtime.as_secs_f64(),
            progress: op.progress,
            error_status: op.error_status,
            ..Default::default()
        })
        .collect();
    OperationStatsResponse {
        operation_stats: Some(OperationStats {
            total_operations: i64::try_from(operations.len()).unwrap_or(i64::MAX),
            operations,
            label: String::new(),
        }),
    }
}

fn log_artifact_answer(
    request_id: &str,
    artifact_id: String,
    error_message: String,
) -> ServerResponse {
    response(
        request_id,
        Some(ResponseType::LogArtifactResponse(LogArtifactResponse {
            artifact_id,
            error_message,
        })),
    )
}

/// `what` of the run's finished state, if it is finished.
fn finished<T>(run: &Arc<Mutex<Run>>, what: impl FnOnce(&Finished) -> T) -> Option<T> {
    match &run.lock().unwrap_or_else(|e| e.into_inner()).phase {
        Phase::Finished(f) => Some(what(f)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(save: bool, relpath: &str, abspath: &std::path::Path) -> Settings {
        Settings {
            save_code: Some(save),
            program_relpath: Some(relpath.to_owned()),
            program_abspath: Some(abspath.to_string_lossy().into_owned()),
            ..Default::default()
        }
    }

    fn saved_path(record: &Record) -> &str {
        match &record.record_type {
            Some(RecordType::Files(files)) => &files.files[0].path,
            other => panic!("not a files record: {other:?}"),
        }
    }

    #[test]
    fn save_code_copies_the_script_under_code() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("train.py");
        std::fs::write(&script, "print('hi')\n").unwrap();
        let files = dir.path().join("files");

        let record = save_code(&settings(true, "sub/train.py", &script), &files).unwrap();
        assert_eq!(saved_path(&record), "code/sub/train.py");
        let copied = std::fs::read_to_string(files.join("code/sub/train.py")).unwrap();
        assert_eq!(copied, "print('hi')\n");

        // Off, a path that climbs out of `files/code`, an absolute one, a missing script.
        assert!(save_code(&settings(false, "train.py", &script), &files).is_none());
        assert!(save_code(&settings(true, "../train.py", &script), &files).is_none());
        assert!(save_code(&settings(true, "/etc/train.py", &script), &files).is_none());
        let missing = dir.path().join("gone.py");
        assert!(save_code(&settings(true, "gone.py", &missing), &files).is_none());
    }
}
