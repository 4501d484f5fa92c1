//! What the SDK hands the core: one [`Input`] per user call.
//!
//! Inputs stay native (no JSON, no protobuf encoding) so that building one on the user's
//! thread costs little; the handler turns them into protocol records. Queries carry a
//! reply channel the handler answers on.

use std::sync::mpsc::SyncSender;

use cairn_proto::{MetricRecord, Record};

use crate::value::Value;

/// A key path: `["train", "loss"]` for a value logged as `{"train": {"loss": ..}}`.
pub type Path = Vec<String>;

/// A protocol item's key path (history, summary and config items alike): its `nested_key`
/// when it has one, else its `key` alone — as W&B's core reads every item.
pub fn key_path(key: &str, nested: &[String]) -> Path {
    if nested.is_empty() {
        vec![key.to_owned()]
    } else {
        nested.to_vec()
    }
}

/// One user call, in the order the user made them.
#[derive(Debug)]
pub enum Input {
    /// `run.log(values, step, commit)`.
    Log(LogCall),
    /// `run.summary` changes made by the user (explicit values replace derived ones).
    Summary(SummaryChange),
    /// `run.config` changes.
    Config(ConfigChange),
    /// `run.define_metric(...)`, as W&B's record.
    DefineMetric(Box<MetricRecord>),
    /// A record persisted as it is: run, telemetry, alert, files, console output, system
    /// metrics, environment, preempting, artifacts.
    Record(Box<Record>),
    /// `run.finish(exit_code)`: the last input of a run.
    Exit {
        /// The program's exit code (0 success).
        exit_code: i32,
    },
    /// A question the handler answers from its state.
    Query(Query),
}

/// The values of one `log` call.
#[derive(Debug, Clone, PartialEq)]
pub struct LogCall {
    /// Top-level keys and values; map values become nested keys.
    pub items: Vec<(String, Value)>,
    /// An explicit step, when the user gave one.
    pub step: Option<i64>,
    /// An explicit `commit`, when the user gave one.
    pub commit: Option<bool>,
    /// Seconds since the Unix epoch when the call was made (`_timestamp`).
    pub timestamp: f64,
}

/// Summary keys set and removed by the user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryChange {
    /// Keys set, with their values.
    pub update: Vec<(Path, Value)>,
    /// Keys removed.
    pub remove: Vec<Path>,
}

/// A new `define_metric` definition of `name`: a glob when it contains `*`, a metric name
/// otherwise, marked `defined` as W&B marks user definitions.
pub fn metric_definition(name: &str) -> MetricRecord {
    let mut record = MetricRecord {
        options: Some(cairn_proto::MetricOptions {
            defined: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    if name.contains('*') {
        record.glob_name = name.to_owned();
    } else {
        record.name = name.to_owned();
    }
    record
}

/// Config keys set and removed by the user, each by its path: `["lr"]` for a top-level key,
/// `["_wandb", "visualize", "chart"]` for a nested one (W&B's `ConfigItem.nested_key`).
///
/// Applied as W&B's core applies them (`crate::runfiles`): a map value is merged into what
/// the path holds, any other value replaces it; a removal drops only that path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigChange {
    /// Keys set, with their values.
    pub update: Vec<(Path, Value)>,
    /// Keys removed.
    pub remove: Vec<Path>,
}

/// Questions answered from the handler's state; each carries its reply channel.
#[derive(Debug)]
pub enum Query {
    /// The whole current summary, derived values included.
    Summary(SyncSender<Vec<(Path, Value)>>),
    /// The step the next committed row will have.
    HistoryStep(SyncSender<i64>),
    /// Reservoir samples of every top-level numeric metric, for the finish footer.
    SampledHistory(SyncSender<Vec<(String, Vec<f32>)>>),
    /// The latest system-metric samples kept (`HandlerConfig::stats_buffer` per metric),
    /// oldest first, by metric name.
    SystemMetrics(SyncSender<Vec<(String, Vec<SystemSample>)>>),
}

/// One system-metric sample: when it was taken, and its value.
pub type SystemSample = (prost_types::Timestamp, f32);
