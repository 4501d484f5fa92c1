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
//! Online (any mode but `offline`, `dryrun`, `disabled`), before the pipeline starts: the
//! `resume` setting is checked against the server, and the run is created there (the
//! SDK's own GraphQL right after init expects it); cairn-core's uploader then follows the
//! log to the server. The run's lock is held throughout, so records the SDK sends
//! meanwhile wait and then go to the started pipeline.
//!
//! Threads: one `cairn-run-events` thread per run passes the pipeline's warnings to the
//! `internal_messages` poll; it ends when the pipeline's events end.
//!
//! Self-contained on purpose: [`start_pipeline`] and what it calls need only the settings,
//! the run record, cairn-core, [`crate::remote`] and `files::save_code`, so the start can
//! move into cairn-core and be shared with the Rust SDK; only [`start`] and [`update`]
//! know the run's phases and the connection they answer on.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_core::artifact::ArtifactBoard;
use cairn_core::client::operations::Operations;
use cairn_core::client::{Connection, ConnectionConfig, Policies, Until};
use cairn_core::handler::HandlerConfig;
use cairn_core::input::{Input, SummaryChange};
use cairn_core::pipeline::{DEFAULT_QUEUE_CAPACITY, Event, Pipeline, PipelineConfig};
use cairn_core::upload::{ResumeStatus, UploadSettings};
use cairn_core::value::Value;
use cairn_proto::record::RecordType;
use cairn_proto::{Record, RunRecord, Settings};
use cairn_store::SyncPolicy;

use super::answers::{run_error, run_error_code, run_result};
use super::files::save_code;
use super::run::{Phase, Run, feed, lock};
use crate::remote::{connection_config, until};
use crate::responder::Responder;

/// How long the server may take to say whether a run to resume exists.
const RESUME_CHECK_WAIT: Duration = Duration::from_secs(30);

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
    /// What the pipeline gets first, in order: the run record, a resumed run's stored
    /// summary, the saved script.
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

/// Starts the pipeline `settings` and `record` describe (see the module doc); online, the
/// upload publishes to `artifacts` and reports to `operations`.
fn start_pipeline(
    settings: &Settings,
    mut record: RunRecord,
    artifacts: &Arc<ArtifactBoard>,
    operations: &Arc<Operations>,
) -> Result<Started, StartFailure> {
    let online = settings
        .mode
        .as_deref()
        .is_some_and(|m| !matches!(m, "offline" | "dryrun" | "disabled"));
    let mut resumed = None;
    let upload = if online {
        let connection = connection_config(settings);
        match resume_check(&connection, settings, &record) {
            Ok(status) => resumed = status,
            Err((message, code)) => {
                return Err(StartFailure {
                    message,
                    code,
                    record: Box::new(record),
                });
            }
        }
        // The run exists on the server before `wandb.init` returns (the SDK's own GraphQL
        // right after init expects it); its entity is the viewer's when none is named. An
        // unreachable server or a bad key fails `wandb.init` here.
        let probe = Connection::new(connection.clone());
        match register_run(&probe, &record) {
            Ok(remote) => {
                record.entity = remote.entity;
                record.project = remote.project;
                if record.display_name.is_empty() {
                    record.display_name = remote.display_name;
                }
            }
            Err(err) => {
                return Err(StartFailure {
                    message: format!("cannot create the run on the server: {err}"),
                    code: 1,
                    record: Box::new(record),
                });
            }
        }
        let mut upload = UploadSettings::new(connection, Default::default()).with_retry_env();
        upload.artifacts = artifacts.clone();
        upload.operations = operations.clone();
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
        return Err(StartFailure {
            message: "the settings name no sync_file".to_owned(),
            code: 0,
            record: Box::new(record),
        });
    };
    let log_path = PathBuf::from(log_path);
    let files_dir = settings
        .sync_dir
        .as_deref()
        .map(PathBuf::from)
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
    let config = PipelineConfig {
        log_path,
        files_dir: files_dir.clone(),
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
            return Err(StartFailure {
                message: format!("cannot start run {}: {err}", record.run_id),
                code: 0,
                record: Box::new(record),
            });
        }
    };
    let mut opening = vec![Input::Record(Box::new(Record {
        record_type: Some(RecordType::Run(record.clone())),
        ..Default::default()
    }))];
    if let Some(status) = resumed {
        // The stored summary carries on (keys this session logs replace it).
        opening.push(Input::Summary(SummaryChange {
            update: status
                .summary
                .into_iter()
                .filter_map(|(key, value)| Some((vec![key], Value::from_json(&value.to_string())?)))
                .collect(),
            remove: Vec::new(),
        }));
    }
    if let Some(files) = code {
        opening.push(Input::Record(Box::new(files)));
    }
    Ok(Started {
        pipeline,
        events,
        record,
        files_dir,
        opening,
    })
}

/// `resume` in the settings (`allow`, `must`, `never`, `auto`): asks the server whether
/// the run exists, as W&B's core does before creating it. `Ok(Some)` to resume it;
/// `Err((message, code))` when the setting forbids what the server holds (code 3: the
/// SDK's `UsageError`) or the server cannot be asked (code 1).
fn resume_check(
    connection: &ConnectionConfig,
    settings: &Settings,
    record: &RunRecord,
) -> Result<Option<ResumeStatus>, (String, i32)> {
    let Some(resume) = settings
        .resume
        .as_deref()
        .map(str::to_ascii_lowercase)
        .filter(|r| matches!(r.as_str(), "allow" | "must" | "never" | "auto"))
    else {
        return Ok(None);
    };
    let id = &record.run_id;
    let until = Until::deadline(std::time::Instant::now() + RESUME_CHECK_WAIT);
    let project = if record.project.is_empty() {
        "uncategorized"
    } else {
        record.project.as_str()
    };
    let entity = (!record.entity.is_empty()).then_some(record.entity.as_str());
    let status = cairn_core::upload::resume_status(
        connection,
        Policies::default(),
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
fn resume_into(record: &mut RunRecord, status: &ResumeStatus) {
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

/// Where the server put a run: its entity, project and display name.
#[derive(Debug)]
struct RemoteRun {
    entity: String,
    project: String,
    display_name: String,
}

const REGISTER_RUN: &str = "mutation UpsertBucket($name: String, $project: String, \
$entity: String, $displayName: String, $groupName: String, $jobType: String, $notes: String, \
$tags: [String!]) {
  upsertBucket(input: {name: $name, modelName: $project, entityName: $entity, \
displayName: $displayName, groupName: $groupName, jobType: $jobType, notes: $notes, tags: $tags}) {
    bucket { name displayName project { name entity { name } } }
  }
}";

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
        .graphql("UpsertBucket", REGISTER_RUN, variables, &until)
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
