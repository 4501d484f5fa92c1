//! Starting a run from its settings and its first run record, in two steps so a caller
//! can act between them (the service registers the run on the server there):
//!
//! 1. [`prepare`] — online with a resume setting, asks the server about the run (W&B's
//!    `RunResumeStatus`; the one time a run start waits on the network, bounded by
//!    [`RESUME_WAIT`]) and applies W&B's resume semantics to the record; then places the
//!    run's folder.
//! 2. [`Prepared::start`] — creates the folder and the log, starts the [`Pipeline`]
//!    (uploading as it goes when online), marks the folder `latest-run` (and keeps the
//!    `resume="auto"` file), and queues the run record, then the restored summary.
//!
//! [`launch`] does both. The caller then sends what only it knows (telemetry, the
//! environment record, saved code) and feeds the run through the pipeline's input.
//! Nothing here runs a thread of its own; the pipeline's threads stop with
//! [`Pipeline::finish`].

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_proto::record::RecordType;
use cairn_proto::{Record, RunRecord};

use super::error::LaunchError;
use super::layout::RunLayout;
use super::resume::{self, Resume};
use super::settings::{Mode, RunSettings};
use crate::artifact::ArtifactBoard;
use crate::client::operations::Operations;
use crate::client::{ConnectionConfig, Until};
use crate::handler::HandlerConfig;
use crate::input::Input;
use crate::pipeline::{DEFAULT_QUEUE_CAPACITY, Event, Pipeline, PipelineConfig};
use crate::upload::{self, ResumeStatus, UploadSettings};

/// How long a start waits for the server's answer about a run it may resume.
pub const RESUME_WAIT: Duration = Duration::from_secs(60);

/// A run ready to start: the resume question answered, the record final, the folder
/// chosen. Its fields are public so the caller can adjust them before [`Prepared::start`].
#[derive(Debug)]
pub struct Prepared {
    /// The settings.
    pub settings: RunSettings,
    /// The run record the pipeline gets first: the caller's, with the settings' identity
    /// where it had none and, resumed, the stored run's steps, runtime and config.
    pub run: RunRecord,
    /// What the server holds of the run, when it is resumed.
    pub resumed: Option<ResumeStatus>,
    /// Where the run's files go.
    pub layout: RunLayout,
    /// Where the outcome of each logged artifact is published (online).
    pub artifacts: Arc<ArtifactBoard>,
    /// What the upload is doing now (online; for progress displays).
    pub operations: Arc<Operations>,
}

/// A started run.
#[derive(Debug)]
pub struct Launched {
    /// The running pipeline; its input already holds the run record and the restored
    /// summary.
    pub pipeline: Pipeline,
    /// What the pipeline reports.
    pub events: Receiver<Event>,
    /// Where the run's files are.
    pub layout: RunLayout,
    /// The run record as queued (what an SDK shows as the run: resumed, its starting step,
    /// its merged config).
    pub run: RunRecord,
    /// Online: the server and the key the run uploads with.
    pub connection: Option<ConnectionConfig>,
    /// Where the outcome of each logged artifact is published.
    pub artifacts: Arc<ArtifactBoard>,
    /// The settings the run started with.
    pub settings: RunSettings,
}

/// [`prepare`], then [`Prepared::start`].
pub fn launch(settings: RunSettings, run: RunRecord) -> Result<Launched, LaunchError> {
    prepare(settings, run)?.start()
}

/// Step 1 (see the module docs): `run`'s empty id, project and entity come from the
/// settings; online with a resume setting, the server is asked about the run.
pub fn prepare(settings: RunSettings, mut run: RunRecord) -> Result<Prepared, LaunchError> {
    for (field, value) in [
        (&mut run.run_id, Some(&settings.run_id)),
        (&mut run.project, Some(&settings.project)),
        (&mut run.entity, settings.entity.as_ref()),
    ] {
        if field.is_empty()
            && let Some(value) = value
        {
            field.clone_from(value);
        }
    }
    if settings.mode == Mode::Disabled {
        return Err(LaunchError::Disabled { id: run.run_id });
    }
    let resumed = match settings.resume {
        Some(resume) if settings.online() => ask_server(&settings, &run, resume)?,
        _ => None,
    };
    if let Some(status) = &resumed {
        resume::resume_into(&mut run, status);
    }
    let started = run.start_time.as_ref().map_or_else(SystemTime::now, |t| {
        let nanos = u32::try_from(t.nanos).unwrap_or(0);
        UNIX_EPOCH + Duration::new(u64::try_from(t.seconds).unwrap_or(0), nanos)
    });
    let layout = settings
        .folder
        .place(&run.run_id, !settings.online(), started)?;
    Ok(Prepared {
        settings,
        run,
        resumed,
        layout,
        artifacts: Arc::default(),
        operations: Arc::default(),
    })
}

/// W&B's `RunResumeStatus` for the run, decided by the resume setting.
fn ask_server(
    settings: &RunSettings,
    run: &RunRecord,
    resume: Resume,
) -> Result<Option<ResumeStatus>, LaunchError> {
    let id = &run.run_id;
    let until = Until::deadline(Instant::now() + RESUME_WAIT);
    let entity = (!run.entity.is_empty()).then_some(run.entity.as_str());
    let policies = UploadSettings::new(settings.connection.clone(), Default::default())
        .with_retry_env()
        .policies;
    let status = upload::resume_status(
        &settings.connection,
        policies,
        entity,
        &run.project,
        id,
        &until,
    )
    .map_err(|source| LaunchError::Resume {
        id: id.clone(),
        source,
    })?;
    resume::decide(resume, id, status)
}

impl Prepared {
    /// Step 2 (see the module docs).
    pub fn start(self) -> Result<Launched, LaunchError> {
        let Prepared {
            settings,
            run,
            resumed,
            layout,
            artifacts,
            operations,
        } = self;
        let connection = settings.online().then(|| settings.connection.clone());
        let upload = connection.clone().map(|connection| {
            let mut upload =
                UploadSettings::new(connection, layout.files_dir.clone()).with_retry_env();
            upload.artifacts = artifacts.clone();
            upload.operations = operations;
            if let Some(interval) = settings.transmit_interval {
                upload.transmit_interval = interval;
            }
            upload
        });
        let runtime = resumed.as_ref().map_or(0.0, |r| r.runtime.max(0.0));
        let config = PipelineConfig {
            log_path: layout.log_path.clone(),
            files_dir: layout.files_dir.clone(),
            handler: HandlerConfig {
                stream_id: run.run_id.clone(),
                starting_step: run.starting_step,
                runtime_offset: Duration::try_from_secs_f64(runtime).unwrap_or_default(),
                stats_buffer: settings.stats_buffer,
                ..HandlerConfig::default()
            },
            sync: settings.sync,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            system: settings.system.clone(),
            upload,
        };
        let (pipeline, events) = Pipeline::start(config).map_err(|source| LaunchError::Start {
            id: run.run_id.clone(),
            dir: layout.run_dir.clone(),
            source,
        })?;
        layout.link_latest();
        layout.keep_resume_file(
            &run.run_id,
            settings.resume == Some(Resume::Auto),
            settings.resume.is_some(),
        );
        let input = pipeline.input();
        // The queue is empty and its capacity above 2: these cannot wait or fail.
        let _ = input.send(Input::Record(Box::new(Record {
            record_type: Some(RecordType::Run(run.clone())),
            ..Default::default()
        })));
        if let Some(status) = resumed.as_ref().filter(|s| !s.summary.is_empty()) {
            let _ = input.send(Input::Summary(resume::restored_summary(status)));
        }
        Ok(Launched {
            pipeline,
            events,
            layout,
            run,
            connection,
            artifacts,
            settings,
        })
    }
}
