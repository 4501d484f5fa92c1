//! [`MetricDef`]: a `define_metric` call being built (step metric, step sync, hidden,
//! summaries, goal), sent with [`MetricDef::apply`].

use cairn_core::input::Input;
use cairn_proto::{MetricOptions, MetricRecord, MetricSummary};

use super::error::RunError;
use super::handle::Run;

impl Run {
    /// Starts a metric definition (`define_metric`); finish it with [`MetricDef::apply`].
    pub fn define_metric(&self, name: impl Into<String>) -> MetricDef<'_> {
        let record = cairn_core::input::metric_definition(&name.into());
        MetricDef { run: self, record }
    }
}

/// A metric definition being built; see [`Run::define_metric`].
#[derive(Debug)]
#[must_use = "call apply() to define the metric"]
pub struct MetricDef<'a> {
    pub(super) run: &'a Run,
    pub(super) record: MetricRecord,
}

impl MetricDef<'_> {
    /// Plots this metric against another metric instead of `_step`.
    pub fn step_metric(mut self, metric: impl Into<String>) -> Self {
        self.record.step_metric = metric.into();
        self
    }

    /// Adds the step metric's latest value to rows that log this metric without it.
    pub fn step_sync(mut self, on: bool) -> Self {
        self.options().step_sync = on;
        self
    }

    /// Hides the metric in the UI.
    pub fn hidden(mut self, on: bool) -> Self {
        self.options().hidden = on;
        self
    }

    /// Summary aggregates, W&B-style: any of `min`, `max`, `mean`, `first`, `last`,
    /// `best`, `copy`, `none`, comma-separated.
    pub fn summary(mut self, aggregates: &str) -> Self {
        let mut s = MetricSummary::default();
        for agg in aggregates.split(',').map(str::trim) {
            match agg {
                "min" => s.min = true,
                "max" => s.max = true,
                "mean" => s.mean = true,
                "first" => s.first = true,
                "last" => s.last = true,
                "best" => s.best = true,
                "copy" => s.copy = true,
                "none" => s.none = true,
                _ => {}
            }
        }
        self.record.summary = Some(s);
        self
    }

    /// The goal for `best`: `minimize` or `maximize`.
    pub fn goal(mut self, goal: &str) -> Self {
        use cairn_proto::metric_record::MetricGoal;
        self.record.goal = match goal {
            "maximize" | "max" => MetricGoal::GoalMaximize as i32,
            "minimize" | "min" => MetricGoal::GoalMinimize as i32,
            _ => MetricGoal::GoalUnset as i32,
        };
        self
    }

    fn options(&mut self) -> &mut MetricOptions {
        self.record.options.get_or_insert_with(Default::default)
    }

    /// Sends the definition.
    pub fn apply(self) -> Result<(), RunError> {
        self.run.send(Input::DefineMetric(Box::new(self.record)))
    }
}
