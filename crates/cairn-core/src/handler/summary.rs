//! The run summary: for every metric, its latest value or the aggregates `define_metric`
//! asked for (min, max, mean, first, last, best), and the values the user set explicitly.
//!
//! Pure state, updated by the handler at every committed row and user summary change;
//! rendered on demand (queries, periodic checkpoints, the final summary record).

use cairn_proto::MetricSummary;
use cairn_proto::metric_record::MetricGoal;

use crate::input::Path;
use crate::value::Value;

/// How a metric's summary entry is computed.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Aggregation {
    pub(crate) flags: MetricSummary,
    pub(crate) goal: i32,
}

impl Aggregation {
    /// Whether any aggregate beyond "latest value" was asked for.
    fn is_custom(&self) -> bool {
        let f = &self.flags;
        f.min || f.max || f.mean || f.best || f.last || f.first || f.none
    }
}

#[derive(Clone, Debug)]
struct Entry {
    last: Value,
    first: Option<Value>,
    min: f64,
    max: f64,
    sum: f64,
    count: u64,
    aggregation: Option<Aggregation>,
    /// Changed since the last checkpoint.
    dirty: bool,
}

impl Entry {
    fn new(value: Value) -> Self {
        Self {
            last: value,
            first: None,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            count: 0,
            aggregation: None,
            dirty: true,
        }
    }

    fn observe(&mut self, value: Value) {
        if self.first.is_none() {
            self.first = Some(value.clone());
        }
        if let Some(x) = value.as_f64().filter(|x| !x.is_nan()) {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            self.sum += x;
            self.count += 1;
        }
        self.last = value;
        self.dirty = true;
    }

    /// The summary value, or `None` when the metric asked for no summary.
    fn render(&self) -> Option<Value> {
        let Some(agg) = self.aggregation.as_ref().filter(|a| a.is_custom()) else {
            return Some(self.last.clone());
        };
        let f = &agg.flags;
        if f.none {
            return None;
        }
        let mut out = Vec::new();
        let numeric = self.count > 0;
        if f.min && numeric {
            out.push(("min".to_owned(), Value::Float(self.min)));
        }
        if f.max && numeric {
            out.push(("max".to_owned(), Value::Float(self.max)));
        }
        if f.mean && numeric {
            out.push((
                "mean".to_owned(),
                Value::Float(self.sum / self.count as f64),
            ));
        }
        if f.best && numeric {
            let best = if agg.goal == MetricGoal::GoalMaximize as i32 {
                self.max
            } else {
                self.min
            };
            out.push(("best".to_owned(), Value::Float(best)));
        }
        if f.first
            && let Some(first) = &self.first
        {
            out.push(("first".to_owned(), first.clone()));
        }
        if f.last {
            out.push(("last".to_owned(), self.last.clone()));
        }
        Some(Value::Map(out))
    }
}

/// Every summary entry, in the order keys first appeared.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    entries: indexmap::IndexMap<Path, Entry, rustc_hash::FxBuildHasher>,
}

impl Summary {
    /// A value from a committed history row.
    pub(crate) fn observe(&mut self, path: &[String], value: Value, agg: Option<&Aggregation>) {
        let entry = match self.entries.get_mut(path) {
            Some(entry) => entry,
            None => {
                let mut entry = Entry::new(Value::Null);
                entry.aggregation = agg.cloned();
                self.entries.entry(path.to_vec()).or_insert(entry)
            }
        };
        if let Some(agg) = agg
            && entry.aggregation.as_ref() != Some(agg)
        {
            entry.aggregation = Some(agg.clone());
        }
        entry.observe(value);
    }

    /// A value the user set: replaces the entry and its aggregation.
    pub(crate) fn set(&mut self, path: Path, value: Value) {
        let mut entry = Entry::new(value);
        entry.dirty = false; // persisted by the user's own summary record
        self.entries.insert(path, entry);
    }

    pub(crate) fn remove(&mut self, path: &[String]) {
        self.entries.shift_remove(path);
    }

    /// Every entry as it should be reported now.
    pub(crate) fn render(&self) -> Vec<(Path, Value)> {
        self.entries
            .iter()
            .filter_map(|(k, e)| e.render().map(|v| (k.clone(), v)))
            .collect()
    }

    /// The entries changed since the last call, marking them clean.
    pub(crate) fn take_dirty(&mut self) -> Vec<(Path, Value)> {
        let mut out = Vec::new();
        for (k, e) in &mut self.entries {
            if e.dirty {
                e.dirty = false;
                if let Some(v) = e.render() {
                    out.push((k.clone(), v));
                }
            }
        }
        out
    }
}
