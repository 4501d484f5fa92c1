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
use cairn_core::value::Value;
use cairn_proto::record::RecordType;
use cairn_proto::request::RequestType;
use cairn_proto::response::ResponseType;
use cairn_proto::result::ResultType;
use cairn_proto::server_response::ServerResponseType;
use cairn_proto::{
    ErrorInfo, GetSummaryResponse, HistoryStepResponse, InternalMessagesResponse,
    LogArtifactResponse, NetworkStatusResponse, OperationStatsResponse, PollExitResponse, Record,
    Response, RunExitResult, RunRecord, RunUpdateResult, SampledHistoryItem,
    SampledHistoryResponse, ServerResponse, Settings, StopStatusResponse, SummaryItem,
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

struct Finished {
    timed_out: bool,
    summary: Vec<SummaryItem>,
    samples: Vec<SampledHistoryItem>,
}

struct Run {
    phase: Phase,
    /// The settings `inform_init` brought (the environment probe reads them).
    settings: Box<Settings>,
    /// Outcomes of the run's logged artifacts, by client id (the uploader publishes).
    artifacts: Arc<ArtifactBoard>,
    /// The input queue while the pipeline runs (cloned out so a full queue blocks only
    /// the connection that feeds this run, not the registry).
    input: Option<RunInput>,
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
                input: None,
            })),
        );
        Ok(())
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

    /// `inform_teardown`: finishes every run still running with `exit_code`, and waits.
    pub(crate) fn finish_all(&self, exit_code: i32) {
        let all: Vec<Arc<Mutex<Run>>> = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for run in all {
            if let Some(pipeline) = take_pipeline(&run) {
                let _ = pipeline.finish(exit_code, NO_FINISH_LIMIT);
            }
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
        drop(guard);
        reply.send(&run_error(
            request_id,
            &record,
            "the run has already started",
        ));
        return;
    };
    let online = settings
        .mode
        .as_deref()
        .is_some_and(|m| !matches!(m, "offline" | "dryrun" | "disabled"));
    let mut record = record;
    let upload = if online {
        let connection = crate::api::connection_config(settings);
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
    let config = PipelineConfig {
        log_path: log_path.clone(),
        files_dir,
        handler: HandlerConfig {
            stream_id: record.run_id.clone(),
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
    // Nobody reads the events yet (warnings reach the SDK through internal_messages later).
    drop(events);
    let input = pipeline.input().clone();
    let answer = run_result(request_id, &record);
    let _ = input.send(Input::Record(Box::new(Record {
        record_type: Some(RecordType::Run(record)),
        ..Default::default()
    })));
    guard.input = Some(input);
    guard.phase = Phase::Running(Box::new(pipeline));
    drop(guard);
    reply.send(&answer);
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

/// `probe_system_info`: the machine (cairn-core's probe) and the script (the settings),
/// persisted as the run's environment record (`wandb-metadata.json`). Probed on a thread:
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
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            env.started_at = Some(prost_types::Timestamp {
                seconds: i64::try_from(now.as_secs()).unwrap_or(0),
                nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
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
fn run_result(request_id: &str, record: &RunRecord) -> ServerResponse {
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

/// `exit`: on a thread of its own, takes the footer's summary and samples, finishes the
/// pipeline, then answers.
fn finish<S>(run: Arc<Mutex<Run>>, request_id: &str, exit_code: i32, reply: &Arc<Responder<S>>)
where
    S: std::io::Write + Send + 'static,
{
    let request_id = request_id.to_owned();
    let reply = reply.clone();
    let spawned = std::thread::Builder::new()
        .name("cairn-finish".into())
        .spawn(move || {
            let summary = ask(&run, Query::Summary)
                .map(summary_items)
                .unwrap_or_default();
            let samples = ask(&run, Query::SampledHistory)
                .map(sample_items)
                .unwrap_or_default();
            let timed_out = match take_pipeline(&run) {
                Some(pipeline) => pipeline
                    .finish(exit_code, NO_FINISH_LIMIT)
                    .map(|report| report.timed_out)
                    .unwrap_or(true),
                None => false,
            };
            run.lock().unwrap_or_else(|e| e.into_inner()).phase =
                Phase::Finished(Box::new(Finished {
                    timed_out,
                    summary,
                    samples,
                }));
            if !request_id.is_empty() {
                reply.send(&result(
                    &request_id,
                    ResultType::ExitResult(RunExitResult { timed_out }),
                ));
            }
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
        Some(RequestType::PollExit(_)) => {
            let done = finished(run, |f| f.timed_out);
            Some(ResponseType::PollExitResponse(PollExitResponse {
                done: done.is_some(),
                exit_result: done.map(|timed_out| RunExitResult { timed_out }),
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
        Some(RequestType::Operations(_)) => Some(ResponseType::OperationsResponse(
            OperationStatsResponse::default(),
        )),
        // Answered empty at once: no warnings to show (the protocol allows it).
        Some(RequestType::InternalMessages(_)) => Some(ResponseType::InternalMessagesResponse(
            InternalMessagesResponse::default(),
        )),
        _ => None,
    };
    if !request_id.is_empty() {
        reply.send(&response(request_id, answer));
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
