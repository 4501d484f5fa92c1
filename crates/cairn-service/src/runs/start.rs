//! The `run` record: starts a pending run's pipeline, offline or online, and answers the
//! run as the SDK reads it; a `run` record after the start updates the run.
//!
//! Input: the run's settings (from `inform_init`) and the SDK's run record. Output: a
//! running pipeline (handler → writer → sender, the `.wandb` log at the settings'
//! `sync_file`, the files beside it) fed first with the run record, a resumed run's stored
//! summary and the saved script; then the `run_result` — or a `run_result` error naming
//! what failed, with the code the SDK maps to its exception (0: the run's own files or
//! settings, 1: the server, 3: a `resume` setting the server's state forbids).
//!
//! The start itself is cairn-core's [`launch`], the one the Rust SDK uses: the SDK's
//! settings become a [`RunSettings`] ([`run_settings`]: mode, server and key, resume, the
//! exact log and `files/` folder the SDK chose, system metrics), [`launch::prepare`]
//! checks the `resume` setting against the server with W&B's semantics (stored config
//! merged, summary restored, steps and runtime continued), and [`launch::Prepared::start`]
//! starts the pipeline and queues the run record and the restored summary. Between the two
//! steps, online (any mode but `offline`, `dryrun`, `disabled`), the run is created on the
//! server (the SDK's own GraphQL right after init expects it); cairn-core's uploader then
//! follows the log to the server. What only the service does: that registration, the saved
//! script, and the answer. The run's lock is held throughout, so records the SDK sends
//! meanwhile wait and then go to the started pipeline.
//!
//! Threads: one `cairn-run-events` thread per run passes the pipeline's warnings to the
//! `internal_messages` poll; it ends when the pipeline's events end.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_core::artifact::ArtifactBoard;
use cairn_core::client::operations::Operations;
use cairn_core::client::{Connection, documents};
use cairn_core::input::Input;
use cairn_core::launch::{self, Explicit, LaunchError, RunFolder, RunSettings};
use cairn_core::pipeline::{Event, Pipeline};
use cairn_proto::record::RecordType;
use cairn_proto::{Record, RunRecord, Settings};

use super::answers::{run_error, run_error_code, run_result};
use super::files::save_code;
use super::run::{Phase, Run, feed, lock};
use crate::remote::{connection_config, until};
use crate::responder::Responder;

/// The `run` record: starts the pipeline and answers the run as the SDK reads it.
pub(super) fn start<S>(
    run: &Mutex<Run>,
    request_id: &str,
    record: RunRecord,
    reply: &Arc<Responder<S>>,
) where
    S: std::io::Write + Send + 'static,
{
    let mut guard = lock(run);
    let Phase::Pending(settings) = &guard.phase else {
        let running = matches!(guard.phase, Phase::Running(_));
        drop(guard);
        if running {
            update(run, request_id, record, reply);
        } else if !request_id.is_empty() {
            reply.send(&run_error(request_id, &record, "the run has finished"));
        }
        return;
    };
    let started = match start_pipeline(settings, record, &guard.artifacts, &guard.operations) {
        Ok(started) => started,
        Err(failure) => {
            drop(guard);
            reply.send(&run_error_code(
                request_id,
                &failure.record,
                &failure.message,
                failure.code,
            ));
            return;
        }
    };
    // The handler's warnings reach the user through the SDK's internal_messages poll.
    let messages = guard.messages.clone();
    let events = started.events;
    let _ = std::thread::Builder::new()
        .name("cairn-run-events".into())
        .spawn(move || {
            for event in events {
                if let Event::Warning(warning) = event {
                    messages.warn(warning.to_string());
                }
            }
        });
    guard.files_dir = Some(started.files_dir);
    let input = started.pipeline.input().clone();
    let answered = answered_run(&started.record);
    guard.answered = Some(Box::new(answered.clone()));
    for opening in started.opening {
        let _ = input.send(opening);
    }
    guard.input = Some(input);
    guard.phase = Phase::Running(Box::new(started.pipeline));
    drop(guard);
    reply.send(&run_result(request_id, answered));
}

/// A run record after the start updates the run (`run.name = …`, tags, notes).
fn update<S>(run: &Mutex<Run>, request_id: &str, record: RunRecord, reply: &Arc<Responder<S>>)
where
    S: std::io::Write + Send + 'static,
{
    let answer = (!request_id.is_empty()).then(|| run_result(request_id, answered_run(&record)));
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
}

/// A pipeline started for a run record.
struct Started {
    pipeline: Pipeline,
    /// The pipeline's events (warnings, exit phases).
    events: Receiver<Event>,
    /// The run record as started: the server's entity and project, a resumed run's steps.
    record: RunRecord,
    /// Where the run's files are written.
    files_dir: PathBuf,
    /// What the pipeline gets after the run record and a resumed run's stored summary
    /// (which the launch queued): the saved script.
    opening: Vec<Input>,
}

/// Why a run did not start: the message, the SDK's error code, and the run record as far
/// as the start got with it.
struct StartFailure {
    message: String,
    code: i32,
    /// Boxed: a run record is large, and the error path is rare.
    record: Box<RunRecord>,
}

impl StartFailure {
    fn new(message: impl ToString, code: i32, record: RunRecord) -> StartFailure {
        StartFailure {
            message: message.to_string(),
            code,
            record: Box::new(record),
        }
    }
}

/// Starts the pipeline `settings` and `record` describe with cairn-core's launch (see the
/// module doc); online, the upload publishes to `artifacts` and reports to `operations`.
fn start_pipeline(
    settings: &Settings,
    record: RunRecord,
    artifacts: &Arc<ArtifactBoard>,
    operations: &Arc<Operations>,
) -> Result<Started, StartFailure> {
    let run_settings = match run_settings(settings, &record) {
        Ok(run_settings) => run_settings,
        Err(err) => return Err(StartFailure::new(err, 0, record)),
    };
    let mut prepared = match launch::prepare(run_settings, record.clone()) {
        Ok(prepared) => prepared,
        Err(err) => {
            let code = if err.is_usage() {
                3
            } else if matches!(err, LaunchError::Resume { .. }) {
                1
            } else {
                0
            };
            return Err(StartFailure::new(err, code, record));
        }
    };
    prepared.artifacts = artifacts.clone();
    prepared.operations = operations.clone();
    if prepared.settings.online() {
        // The run exists on the server before `wandb.init` returns (the SDK's own GraphQL
        // right after init expects it); its entity is the viewer's when none is named. An
        // unreachable server or a bad key fails `wandb.init` here.
        let probe = Connection::new(prepared.settings.connection.clone());
        match register_run(&probe, &prepared.run) {
            Ok(remote) => {
                let run = &mut prepared.run;
                run.entity = remote.entity;
                run.project = remote.project;
                if run.display_name.is_empty() {
                    run.display_name = remote.display_name;
                }
            }
            Err(err) => {
                let message = format!("cannot create the run on the server: {err}");
                return Err(StartFailure::new(message, 1, prepared.run));
            }
        }
    }
    let code = save_code(settings, &prepared.layout.files_dir);
    let id = prepared.run.run_id.clone();
    let failed = prepared.run.clone();
    let launched = match prepared.start() {
        Ok(launched) => launched,
        Err(err) => {
            let message = format!("cannot start run {id}: {err}");
            return Err(StartFailure::new(message, 0, failed));
        }
    };
    Ok(Started {
        pipeline: launched.pipeline,
        events: launched.events,
        record: launched.run,
        files_dir: launched.layout.files_dir,
        opening: code
            .into_iter()
            .map(|files| Input::Record(Box::new(files)))
            .collect(),
    })
}

/// The Python SDK's settings for one run as cairn-core's [`RunSettings`]: already
/// resolved by the SDK, so nothing is read from the environment or W&B's files here. The
/// log and `files/` folder are exactly the SDK's `sync_file` and `files_dir` (the SDK
/// keeps `latest-run` and the resume file itself).
fn run_settings(settings: &Settings, record: &RunRecord) -> Result<RunSettings, String> {
    let online = settings
        .mode
        .as_deref()
        .is_some_and(|m| !matches!(m, "offline" | "dryrun" | "disabled"));
    let connection = connection_config(settings);
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let mut run = RunSettings::from_explicit(Explicit {
        mode: Some(if online { "online" } else { "offline" }.to_owned()),
        // Offline, the server and key are not used: a base URL the resolver would refuse
        // must not stop an offline run (the service never checked it).
        base_url: online.then(|| connection.base_url.clone()),
        api_key: text(&connection.api_key).filter(|_| online),
        entity: text(&record.entity),
        project: text(&record.project),
        run_id: text(&record.run_id),
        resume: settings.resume.clone(),
        transmit_interval: settings
            .x_file_stream_transmit_interval
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64),
        ..Explicit::default()
    })
    .map_err(|err| format!("run {}: {err}", record.run_id))?;
    if online {
        // The SDK's user agent and anything else the service's connection carries.
        run.connection = connection;
    }
    let Some(log_path) = settings.sync_file.clone().filter(|f| !f.is_empty()) else {
        return Err("the settings name no sync_file".to_owned());
    };
    let log_path = PathBuf::from(log_path);
    let files_dir = settings
        .sync_dir
        .as_deref()
        .map(PathBuf::from)
        .or_else(|| log_path.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_default()
        .join("files");
    run.folder = RunFolder::Exact {
        log_path,
        files_dir,
    };
    run.system = system_config(settings);
    run.stats_buffer = settings
        .x_stats_buffer_size
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    Ok(run)
}

/// Where the server put a run: its entity, project and display name.
#[derive(Debug)]
struct RemoteRun {
    entity: String,
    project: String,
    display_name: String,
}

/// Creates (or finds) the run on the server before `wandb.init` returns, as W&B's core
/// does: the SDK's own GraphQL right after init (`use_artifact`, `wandb.Api()`) expects
/// the run to exist. The uploader upserts everything else as it follows the log.
fn register_run(connection: &Connection, run: &RunRecord) -> Result<RemoteRun, String> {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let mut variables = serde_json::json!({
        "name": run.run_id,
        "project": text(&run.project),
        "entity": text(&run.entity),
    });
    if let serde_json::Value::Object(map) = &mut variables {
        map.extend(cairn_core::upload::run_details(run));
    }
    let until = until();
    let data = connection
        .graphql("UpsertBucket", documents::UPSERT_BUCKET, variables, &until)
        .map_err(|e| e.to_string())?;
    let bucket = &data["upsertBucket"]["bucket"];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Ok(RemoteRun {
        entity: text(&bucket["project"]["entity"]["name"]),
        project: text(&bucket["project"]["name"]),
        display_name: text(&bucket["displayName"]),
    })
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
        config.disk_paths = paths.value.iter().map(PathBuf::from).collect();
    }
    Some(config)
}

/// The run as the SDK expects it back in its `run_result`: config values wrapped as
/// `{"value": …}` (the config file's shape) and a start time.
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
