//! [`Run`]: the user's handle on a started run — `log` and its variants, the summary and
//! config, `define_metric`, alerts, saved files, artifacts, events, and `finish` (also on
//! drop). Every call is a send on the run's bounded queue; none waits on the network.

use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_core::console::ConsoleCapture;
use cairn_core::input::{ConfigChange, Input, LogCall, Query, SummaryChange};
use cairn_core::pipeline::{Event, FinishReport, Pipeline, RunInput};
use cairn_core::value::Value;
use cairn_proto::record::RecordType;
use cairn_proto::{AlertRecord, Record, RunPreemptingRecord};

use super::error::{MAX_KEY_LEN, RunError};
use crate::artifact::{Artifact, ArtifactError, ArtifactHandle, RunArtifacts, UsedArtifact};
use crate::settings::RunLayout;

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) should_stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub(super) pipeline: Pipeline,
    pub(super) input: RunInput,
    pub(super) capture: Option<ConsoleCapture>,
    pub(super) events: std::sync::mpsc::Receiver<Event>,
    /// Registration with the signal listener, removed when the run finishes.
    pub(super) signals: Option<u64>,
    pub(super) artifacts: RunArtifacts,
}

/// A run: log metrics, set the summary and config, then [`finish`](Run::finish).
#[derive(Debug)]
#[must_use = "dropping a run finishes it"]
pub struct Run {
    pub(super) id: String,
    pub(super) layout: Option<RunLayout>,
    pub(super) inner: Option<Inner>,
    pub(super) deadline: Duration,
}

/// Options of [`Run::log_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Log into this step instead of the current one.
    pub step: Option<i64>,
    /// Commit the step now (`true`) or keep accumulating (`false`); by default a call
    /// without a step commits and a call with one accumulates.
    pub commit: Option<bool>,
}

impl Run {
    pub(super) fn disabled(id: String) -> Self {
        Self {
            id,
            layout: None,
            inner: None,
            deadline: Duration::ZERO,
        }
    }

    /// The run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the server asked this run to stop (`cairn run stop`, W&B's stop button):
    /// a training loop polls it and ends cleanly. Always `false` offline.
    pub fn should_stop(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| i.should_stop.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The run's folder (`None` when disabled).
    pub fn dir(&self) -> Option<&Path> {
        self.layout.as_ref().map(|l| l.run_dir.as_path())
    }

    /// The run's `.wandb` log (`None` when disabled).
    pub fn log_path(&self) -> Option<&Path> {
        self.layout.as_ref().map(|l| l.log_path.as_path())
    }

    pub(super) fn send(&self, input: Input) -> Result<(), RunError> {
        match &self.inner {
            Some(inner) => Ok(inner.input.send(input)?),
            None => Ok(()),
        }
    }

    /// Logs values into the current step and commits it.
    pub fn log<K, V>(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), RunError>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        self.log_with(items, LogOptions::default())
    }

    /// Logs values into step `step` (committed when a later step is logged).
    pub fn log_at<K, V>(
        &self,
        step: i64,
        items: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), RunError>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        self.log_with(
            items,
            LogOptions {
                step: Some(step),
                commit: None,
            },
        )
    }

    /// Logs values with an explicit step and/or commit.
    pub fn log_with<K, V>(
        &self,
        items: impl IntoIterator<Item = (K, V)>,
        options: LogOptions,
    ) -> Result<(), RunError>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        if self.inner.is_none() {
            return Ok(());
        }
        let mut converted = Vec::new();
        for (k, v) in items {
            let key = k.into();
            if key.len() > MAX_KEY_LEN {
                return Err(RunError::BadKey(key));
            }
            converted.push((key, v.into()));
        }
        self.send(Input::Log(LogCall {
            items: converted,
            step: options.step,
            commit: options.commit,
            timestamp: now_secs(),
        }))
    }

    /// Logs every field of a serialisable value (a struct or map) into the current step.
    pub fn log_serialize<T: serde::Serialize>(&self, values: &T) -> Result<(), RunError> {
        match serde_json::to_value(values) {
            Ok(serde_json::Value::Object(map)) => {
                self.log(map.into_iter().map(|(k, v)| (k, Value::from(v))))
            }
            Ok(_) => Err(RunError::BadValue {
                key: String::new(),
                reason: "log_serialize needs a value that serialises to a map".into(),
            }),
            Err(e) => Err(RunError::BadValue {
                key: String::new(),
                reason: e.to_string(),
            }),
        }
    }

    /// Sets summary values (they replace what the run derived from history).
    pub fn summary_set<K, V>(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), RunError>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        self.send(Input::Summary(SummaryChange {
            update: top_level(items),
            remove: Vec::new(),
        }))
    }

    /// Removes summary keys.
    pub fn summary_remove<K: Into<String>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<(), RunError> {
        let remove = keys.into_iter().map(|k| vec![k.into()]).collect();
        self.send(Input::Summary(SummaryChange {
            update: Vec::new(),
            remove,
        }))
    }

    /// The current summary: top-level keys and nested paths with their values.
    pub fn summary(&self) -> Result<Vec<(Vec<String>, Value)>, RunError> {
        let (tx, rx) = sync_channel(1);
        if self.inner.is_none() {
            return Ok(Vec::new());
        }
        self.send(Input::Query(Query::Summary(tx)))?;
        rx.recv().map_err(|_| RunError::Finished)
    }

    /// The step the next committed row will have.
    pub fn step(&self) -> Result<i64, RunError> {
        let (tx, rx) = sync_channel(1);
        if self.inner.is_none() {
            return Ok(0);
        }
        self.send(Input::Query(Query::HistoryStep(tx)))?;
        rx.recv().map_err(|_| RunError::Finished)
    }

    /// Updates config values. A map value is merged into the map the key holds (its
    /// entries replace those of the same name, the others stay), as W&B's core merges it.
    pub fn config_update<K, V>(
        &self,
        items: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), RunError>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        self.send(Input::Config(ConfigChange {
            update: top_level(items),
            remove: Vec::new(),
        }))
    }

    /// Raises an alert (`level`: INFO, WARN or ERROR).
    pub fn alert(
        &self,
        title: impl Into<String>,
        text: impl Into<String>,
        level: &str,
    ) -> Result<(), RunError> {
        self.record(RecordType::Alert(AlertRecord {
            title: title.into(),
            text: text.into(),
            level: level.to_owned(),
            wait_duration: 60_000,
            ..Default::default()
        }))
    }

    /// Saves a file with the run: copies it into the run's `files/` folder now.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), RunError> {
        let Some(layout) = &self.layout else {
            return Ok(());
        };
        let path = path.as_ref();
        let name = path.file_name().ok_or_else(|| RunError::BadValue {
            key: path.display().to_string(),
            reason: "not a file".into(),
        })?;
        std::fs::copy(path, layout.files_dir.join(name)).map_err(|e| RunError::BadValue {
            key: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.upload_now(&name.to_string_lossy())
    }

    /// Logs an artifact and returns at once: its files are hashed on another thread, then
    /// it is saved beside the run's other uploads (online) or kept in the log for
    /// `cairn sync` (offline). [`ArtifactHandle::wait`] gives the outcome.
    pub fn log_artifact(&self, artifact: &Artifact) -> Result<ArtifactHandle, ArtifactError> {
        match &self.inner {
            Some(inner) => inner.artifacts.log(&inner.input, artifact),
            None => Err(ArtifactError::NoRun(artifact.name().to_owned())),
        }
    }

    /// Finds the artifact version `name` (`[entity/][project/]name[:alias|:vN]`; the
    /// run's entity and project by default, `latest` by default) on the server and records
    /// that this run uses it. Online only; this call waits for the server's answer.
    pub fn use_artifact(&self, name: &str) -> Result<UsedArtifact, ArtifactError> {
        match &self.inner {
            Some(inner) => inner.artifacts.use_artifact(&inner.input, name),
            None => Err(ArtifactError::NoRun(name.to_owned())),
        }
    }
}

impl Run {
    /// Marks the run as about to be preempted.
    pub fn mark_preempting(&self) -> Result<(), RunError> {
        self.record(RecordType::Preempting(RunPreemptingRecord::default()))
    }

    pub(super) fn record(&self, record_type: RecordType) -> Result<(), RunError> {
        self.send(Input::Record(Box::new(Record {
            record_type: Some(record_type),
            ..Default::default()
        })))
    }

    /// Warnings and progress the core reported since the last call.
    pub fn events(&self) -> Vec<Event> {
        self.inner
            .as_ref()
            .map(|i| i.events.try_iter().collect())
            .unwrap_or_default()
    }

    /// Finishes the run with exit code 0.
    pub fn finish(self) -> Result<Option<FinishReport>, RunError> {
        self.finish_with(0)
    }

    /// Finishes the run with an exit code: everything logged is written, then the run's
    /// files; returns what the pipeline did (`None` when disabled).
    pub fn finish_with(mut self, exit_code: i32) -> Result<Option<FinishReport>, RunError> {
        self.finish_inner(exit_code)
    }

    fn finish_inner(&mut self, exit_code: i32) -> Result<Option<FinishReport>, RunError> {
        let Some(inner) = self.inner.take() else {
            return Ok(None);
        };
        if let Some(id) = inner.signals {
            crate::signals::unregister(id);
        }
        if let Some(capture) = inner.capture {
            use std::io::Write;
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            let _ = capture.stop();
        }
        inner.artifacts.wait_hashing();
        drop(inner.input);
        let report = inner.pipeline.finish(exit_code, self.deadline)?;
        if exit_code == 0
            && let Some(layout) = &self.layout
        {
            // A run that ended well is not one for `resume="auto"` to come back to.
            layout.forget_resume_file();
        }
        Ok(Some(report))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let code = if std::thread::panicking() { 1 } else { 0 };
        let _ = self.finish_inner(code);
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Top-level keys with their values, as the paths summary and config changes take.
fn top_level<K: Into<String>, V: Into<Value>>(
    items: impl IntoIterator<Item = (K, V)>,
) -> Vec<(Vec<String>, Value)> {
    items
        .into_iter()
        .map(|(k, v)| (vec![k.into()], v.into()))
        .collect()
}
