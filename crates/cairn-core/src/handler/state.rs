//! The handler's state machine: user calls in, protocol records out.
//!
//! W&B's step semantics, exactly:
//!
//! * Values accumulate in a pending row. `log(values)` commits the row at once;
//!   `log(values, commit=false)` keeps accumulating; `log(values, step=N)` accumulates
//!   into step N and commits when a later step arrives (or at exit). An explicit `commit`
//!   always decides.
//! * An explicit step above the current one commits the pending row first, then jumps;
//!   a step below it is dropped with a warning; the same step accumulates.
//! * A committed row gets `_step`, `_runtime` (seconds since the run started, resumed
//!   runtime included) and `_timestamp` (of the last call), becomes one `history` record,
//!   and updates the summary; the step advances by one. Committing an empty row only
//!   advances the step.
//! * `define_metric` globs expand on a key's first appearance (persisted as a `metric`
//!   record with `expanded_from_glob`), and `step_sync` metrics get their step metric's
//!   latest value added to rows that lack it.
//!
//! Where cairn departs from W&B, on purpose: W&B writes two summary records for every step,
//! more bytes than the history itself. cairn derives the summary in memory and persists it
//! at checkpoints (the entries changed since the last one, at most every
//! `summary_checkpoint`) and in full at exit, so the log stays small and a crash loses at
//! most one checkpoint interval of summary — which `cairn sync` can re-derive from history.

use std::collections::VecDeque;
use std::time::Duration;

use cairn_proto::{
    ConfigItem, ConfigRecord, HeaderRecord, HistoryItem, HistoryRecord, HistoryStep, MetricRecord,
    Record, RecordInfo, RunExitRecord, StatsRecord, SummaryItem, SummaryRecord, VersionInfo,
    record::RecordType,
};

use super::metric::Metrics;
use super::sampler::Sampler;
use super::summary::Summary;
use crate::input::{ConfigChange, Input, LogCall, Path, Query, SummaryChange, SystemSample};
use crate::value::Value;

type FastMap<K, V> = indexmap::IndexMap<K, V, rustc_hash::FxBuildHasher>;

/// The pending row, in first-logged order. Top-level keys (nearly all of them) are kept by
/// their own string so that logging one costs no extra allocation; nested paths apart.
/// (A fast non-cryptographic hash: the keys are the user's own metric names.)
#[derive(Debug, Default)]
struct Row {
    top: FastMap<String, Value>,
    nested: FastMap<Path, Value>,
}

impl Row {
    fn is_empty(&self) -> bool {
        self.top.is_empty() && self.nested.is_empty()
    }

    fn len(&self) -> usize {
        self.top.len() + self.nested.len()
    }

    fn insert(&mut self, path: &[String], value: Value) {
        match path {
            [key] => {
                self.top.insert(key.clone(), value);
            }
            _ => {
                self.nested.insert(path.to_vec(), value);
            }
        }
    }

    /// Forgets scalars logged at `path` or below it (a map logged there replaces them).
    fn clear_at(&mut self, path: &[String]) {
        if let [key] = path {
            self.top.shift_remove(key);
        }
        self.nested.retain(|p, _| !p.starts_with(path));
    }
}

/// Maps nested deeper than this stay one JSON value instead of becoming nested keys.
const MAX_NESTING: usize = 32;

/// What the producer field of the log header says.
pub const PRODUCER: &str = concat!("cairn ", env!("CARGO_PKG_VERSION"));

/// The oldest W&B reader this log format is meant for (W&B 0.31 writes the same).
const MIN_CONSUMER: &str = "0.70.0";

/// Settings of the handler.
#[derive(Clone, Debug)]
pub struct HandlerConfig {
    /// The run's id, stamped on records that come from user calls (`_info.stream_id`).
    pub stream_id: String,
    /// The step of the first row (non-zero for resumed runs).
    pub starting_step: i64,
    /// Runtime already spent in earlier sessions of a resumed run.
    pub runtime_offset: Duration,
    /// Longest time between two persisted summary checkpoints.
    pub summary_checkpoint: Duration,
    /// Seed of the history sampler.
    pub seed: u64,
    /// How many of each system metric's latest samples are kept for
    /// [`Query::SystemMetrics`] (W&B's `x_stats_buffer_size`); 0 keeps none.
    pub stats_buffer: usize,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            stream_id: String::new(),
            starting_step: 0,
            runtime_offset: Duration::ZERO,
            summary_checkpoint: Duration::from_secs(15),
            seed: 0x5EED,
            stats_buffer: 0,
        }
    }
}

/// Something the user should be told about, reported through the run's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// A `log` with a step below the current step was dropped.
    StepNotMonotonic {
        /// The step the user asked for.
        requested: i64,
        /// The current step.
        current: i64,
    },
    /// An input arrived after the run's exit and was ignored.
    AfterExit,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::StepNotMonotonic { requested, current } => write!(
                f,
                "log at step {requested} dropped: the run is already at step {current} and \
                 steps only go up (use define_metric with a step_metric to log out of order)"
            ),
            Warning::AfterExit => write!(f, "data logged after the run finished was dropped"),
        }
    }
}

/// The handler state machine (see the module docs).
#[derive(Debug)]
pub struct Handler {
    config: HandlerConfig,
    step: i64,
    row: Row,
    timestamp: Option<f64>,
    metrics: Metrics,
    summary: Summary,
    sampler: Sampler,
    last_checkpoint: Duration,
    exited: bool,
    warnings: Vec<Warning>,
    /// The latest `stats_buffer` samples of each system metric.
    system: std::collections::BTreeMap<String, VecDeque<SystemSample>>,
}

impl Handler {
    /// A handler for a new run.
    pub fn new(config: HandlerConfig) -> Self {
        Self {
            step: config.starting_step,
            sampler: Sampler::new(config.seed),
            config,
            row: Row::default(),
            timestamp: None,
            metrics: Metrics::default(),
            summary: Summary::default(),
            last_checkpoint: Duration::ZERO,
            exited: false,
            warnings: Vec::new(),
            system: Default::default(),
        }
    }

    /// The first record of every log.
    pub fn header(&self) -> Record {
        Record {
            record_type: Some(RecordType::Header(HeaderRecord {
                version_info: Some(VersionInfo {
                    producer: PRODUCER.to_owned(),
                    min_consumer: MIN_CONSUMER.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            info: self.info(),
            ..Default::default()
        }
    }

    /// The step the next committed row will have.
    pub fn step(&self) -> i64 {
        self.step
    }

    /// Whether the exit input has been handled.
    pub fn has_exited(&self) -> bool {
        self.exited
    }

    /// Warnings raised since the last call.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    /// The current summary, every entry rendered.
    pub fn summary(&self, elapsed: Duration) -> Vec<(Path, Value)> {
        let mut out = self.summary.render();
        out.push((
            vec!["_wandb".to_owned(), "runtime".to_owned()],
            Value::Int(self.runtime(elapsed).as_secs() as i64),
        ));
        out
    }

    /// Handles one input; `elapsed` is the time since the run started in this process.
    /// Records to persist are appended to `out`, in order.
    pub fn handle(&mut self, input: Input, elapsed: Duration, out: &mut Vec<Record>) {
        if self.exited {
            if let Input::Query(query) = input {
                self.answer(query, elapsed);
            } else {
                self.warnings.push(Warning::AfterExit);
            }
            return;
        }
        match input {
            Input::Log(call) => self.log(call, elapsed, out),
            Input::Summary(change) => self.user_summary(change, out),
            Input::Config(change) => out.push(self.config_record(change)),
            Input::DefineMetric(def) => self.define_metric(*def, out),
            Input::Record(mut record) => {
                if record.info.is_none() {
                    record.info = self.info();
                }
                if let Some(RecordType::Stats(stats)) = &record.record_type {
                    self.keep_system_samples(stats);
                }
                out.push(*record);
            }
            Input::Exit { exit_code } => self.exit(exit_code, elapsed, out),
            Input::Query(query) => self.answer(query, elapsed),
        }
    }

    fn answer(&self, query: Query, elapsed: Duration) {
        // A caller that stopped waiting is not an error.
        let _ = match query {
            Query::Summary(reply) => reply.try_send(self.summary(elapsed)).map_err(drop),
            Query::HistoryStep(reply) => reply.try_send(self.step).map_err(drop),
            Query::SampledHistory(reply) => reply.try_send(self.sampler.samples()).map_err(drop),
            Query::SystemMetrics(reply) => reply
                .try_send(
                    self.system
                        .iter()
                        .map(|(key, samples)| (key.clone(), samples.iter().cloned().collect()))
                        .collect(),
                )
                .map_err(drop),
        };
    }

    /// Keeps a system-metrics record's numeric values, the latest `stats_buffer` of each.
    fn keep_system_samples(&mut self, stats: &StatsRecord) {
        let keep = self.config.stats_buffer;
        if keep == 0 {
            return;
        }
        let Some(at) = stats.timestamp else { return };
        for item in &stats.item {
            let Ok(value) = item.value_json.trim().parse::<f64>() else {
                continue; // not a number: nothing to plot
            };
            let samples = self.system.entry(item.key.clone()).or_default();
            while samples.len() >= keep {
                samples.pop_front();
            }
            samples.push_back((at, value as f32));
        }
    }

    fn info(&self) -> Option<RecordInfo> {
        (!self.config.stream_id.is_empty()).then(|| RecordInfo {
            stream_id: self.config.stream_id.clone(),
            ..Default::default()
        })
    }

    fn runtime(&self, elapsed: Duration) -> Duration {
        self.config.runtime_offset + elapsed
    }

    fn log(&mut self, call: LogCall, elapsed: Duration, out: &mut Vec<Record>) {
        if let Some(step) = call.step {
            if step > self.step {
                self.commit(elapsed, out);
                self.step = step;
            } else if step < self.step {
                self.warnings.push(Warning::StepNotMonotonic {
                    requested: step,
                    current: self.step,
                });
                return;
            }
        }
        for (key, value) in call.items {
            if let Value::Map(_) = value {
                let mut path = vec![key];
                insert_flattened(&mut self.row, &mut path, value, 0);
            } else {
                self.row.top.insert(key, value);
            }
        }
        self.timestamp = Some(call.timestamp);
        if call.commit.unwrap_or(call.step.is_none()) {
            self.commit(elapsed, out);
        }
    }

    fn commit(&mut self, elapsed: Duration, out: &mut Vec<Record>) {
        if self.row.is_empty() {
            self.step += 1;
            return;
        }
        let mut row = std::mem::take(&mut self.row);
        let has_definitions = self.metrics.has_definitions();
        if has_definitions {
            let keys: Vec<String> = row.top.keys().cloned().collect();
            for key in &keys {
                if let Some(expanded) = self.metrics.expand(key) {
                    out.push(self.metric_record(expanded));
                }
            }
            for key in &keys {
                if let Some((step_key, value)) = self.metrics.step_sync(key)
                    && !row.top.contains_key(step_key)
                {
                    row.top.insert(step_key.to_owned(), value.clone());
                }
            }
            self.metrics
                .note_step_values(row.top.iter().map(|(k, v)| (k.as_str(), v)));
        }
        let runtime = self.runtime(elapsed).as_secs_f64();
        row.top.insert("_runtime".to_owned(), Value::Float(runtime));
        row.top.insert("_step".to_owned(), Value::Int(self.step));
        if let Some(ts) = self.timestamp.take() {
            row.top.insert("_timestamp".to_owned(), Value::Float(ts));
        }
        let mut items = Vec::with_capacity(row.len());
        // The row is consumed: each key moves into its history item and each value into
        // the summary, so a steady-state commit allocates only the JSON text.
        for (key, value) in row.top {
            if !key.starts_with('_')
                && let Some(x) = value.as_f64()
            {
                self.sampler.observe(&key, x);
            }
            let value_json = value.to_json();
            // As in W&B, a null is history only: the summary keeps the last real value.
            if value != Value::Null {
                let agg = if has_definitions {
                    self.metrics.aggregation(&key)
                } else {
                    None
                };
                self.summary
                    .observe(std::slice::from_ref(&key), value, agg.as_ref());
            }
            items.push(HistoryItem {
                key,
                value_json,
                ..Default::default()
            });
        }
        for (path, value) in row.nested {
            let value_json = value.to_json();
            if value != Value::Null {
                self.summary.observe(&path, value, None);
            }
            items.push(HistoryItem {
                nested_key: path,
                value_json,
                ..Default::default()
            });
        }
        out.push(Record {
            record_type: Some(RecordType::History(HistoryRecord {
                item: items,
                step: Some(HistoryStep { num: self.step }),
                ..Default::default()
            })),
            ..Default::default()
        });
        self.step += 1;
        if elapsed.saturating_sub(self.last_checkpoint) >= self.config.summary_checkpoint {
            self.checkpoint(elapsed, out);
        }
    }

    /// Persists the summary entries changed since the last checkpoint.
    fn checkpoint(&mut self, elapsed: Duration, out: &mut Vec<Record>) {
        self.last_checkpoint = elapsed;
        let changed = self.summary.take_dirty();
        if !changed.is_empty() {
            out.push(summary_record(changed, Vec::new(), None));
        }
    }

    /// Applies the user's summary change. A key set to `null` is removed, as W&B's core
    /// does (`run.summary["k"] = None` leaves no `k`); a null inside a value stays.
    fn user_summary(&mut self, mut change: SummaryChange, out: &mut Vec<Record>) {
        let (nulls, update): (Vec<_>, Vec<_>) = change
            .update
            .into_iter()
            .partition(|(_, value)| *value == Value::Null);
        change.update = update;
        change
            .remove
            .extend(nulls.into_iter().map(|(path, _)| path));
        for (path, value) in &change.update {
            self.summary.set(path.clone(), value.clone());
        }
        for path in &change.remove {
            self.summary.remove(path);
        }
        out.push(summary_record(change.update, change.remove, self.info()));
    }

    /// The user's config change as W&B writes one: a one-part path as `key`, a longer one
    /// as `nested_key` (the form W&B's core reads back either way).
    fn config_record(&self, change: ConfigChange) -> Record {
        let update = change
            .update
            .into_iter()
            .map(|(path, value)| config_item(path, value.to_json()))
            .collect();
        let remove = change
            .remove
            .into_iter()
            .map(|path| config_item(path, String::new()))
            .collect();
        Record {
            record_type: Some(RecordType::Config(ConfigRecord {
                update,
                remove,
                ..Default::default()
            })),
            info: self.info(),
            ..Default::default()
        }
    }

    fn define_metric(&mut self, def: MetricRecord, out: &mut Vec<Record>) {
        self.metrics.define(def.clone());
        out.push(self.metric_record(def));
    }

    fn metric_record(&self, def: MetricRecord) -> Record {
        Record {
            record_type: Some(RecordType::Metric(def)),
            info: self.info(),
            ..Default::default()
        }
    }

    fn exit(&mut self, exit_code: i32, elapsed: Duration, out: &mut Vec<Record>) {
        if !self.row.is_empty() {
            self.commit(elapsed, out);
        }
        let runtime = self.runtime(elapsed).as_secs() as i64;
        let mut final_items = self.summary.take_dirty();
        // The final `_runtime` is the whole seconds below, as W&B reports it.
        final_items.retain(|(path, _)| path.len() != 1 || path[0] != "_runtime");
        final_items.push((
            vec!["_wandb".to_owned(), "runtime".to_owned()],
            Value::Int(runtime),
        ));
        final_items.push((vec!["_runtime".to_owned()], Value::Int(runtime)));
        out.push(summary_record(final_items, Vec::new(), None));
        out.push(Record {
            record_type: Some(RecordType::Exit(RunExitRecord {
                exit_code,
                runtime: i32::try_from(runtime).unwrap_or(i32::MAX),
                ..Default::default()
            })),
            info: self.info(),
            ..Default::default()
        });
        self.exited = true;
    }
}

/// Puts `value` into the row at `path`, turning maps into nested keys.
fn insert_flattened(row: &mut Row, path: &mut Path, value: Value, depth: usize) {
    match value {
        Value::Map(entries) if depth < MAX_NESTING && !entries.is_empty() => {
            // A new nested map replaces what was logged at its own path this step.
            row.clear_at(path);
            for (key, v) in entries {
                path.push(key);
                insert_flattened(row, path, v, depth + 1);
                path.pop();
            }
        }
        value => row.insert(path, value),
    }
}

/// A summary item as W&B writes one: a one-part path as `key`, a longer one as
/// `nested_key`.
pub fn summary_item(path: Path, value_json: String) -> SummaryItem {
    if path.len() == 1 {
        SummaryItem {
            key: path.into_iter().next().unwrap_or_default(),
            value_json,
            ..Default::default()
        }
    } else {
        SummaryItem {
            nested_key: path,
            value_json,
            ..Default::default()
        }
    }
}

/// A config item at `path`: a one-part path as `key`, a longer one as `nested_key`.
fn config_item(path: Path, value_json: String) -> ConfigItem {
    match <[String; 1]>::try_from(path) {
        Ok([key]) => ConfigItem {
            key,
            value_json,
            ..Default::default()
        },
        Err(nested_key) => ConfigItem {
            nested_key,
            value_json,
            ..Default::default()
        },
    }
}

fn summary_record(
    update: Vec<(Path, Value)>,
    remove: Vec<Path>,
    info: Option<RecordInfo>,
) -> Record {
    let item = |(path, value): (Path, Option<Value>)| {
        summary_item(path, value.map(|v| v.to_json()).unwrap_or_default())
    };
    Record {
        record_type: Some(RecordType::Summary(SummaryRecord {
            update: update
                .into_iter()
                .map(|(p, v)| item((p, Some(v))))
                .collect(),
            remove: remove.into_iter().map(|p| item((p, None))).collect(),
            ..Default::default()
        })),
        info,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
