//! `define_metric` state: definitions by name and by glob, the step metric each metric
//! is plotted against, and the latest value of every step metric.
//!
//! Pure state owned by the handler. Explicit definitions win over globs; a glob applies to
//! a key the first time the key is logged (keys starting with `_` are never matched), and
//! that expansion is reported so it can be persisted as W&B does (`expanded_from_glob`).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use cairn_proto::MetricRecord;

use super::summary::Aggregation;
use crate::value::Value;

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    by_name: HashMap<String, MetricRecord>,
    globs: Vec<MetricRecord>,
    /// Keys already checked against the globs.
    seen: HashSet<String>,
    /// Keys used as some metric's `step_metric`.
    step_metrics: HashSet<String>,
    /// Latest logged value of each step metric.
    latest: HashMap<String, Value>,
}

impl Metrics {
    pub(crate) fn define(&mut self, def: MetricRecord) {
        if !def.step_metric.is_empty() {
            self.step_metrics.insert(def.step_metric.clone());
        }
        if !def.glob_name.is_empty() {
            self.globs.push(def);
        } else if !def.name.is_empty() {
            let overwrite = def.control.as_ref().is_some_and(|c| c.overwrite);
            match self.by_name.get_mut(&def.name) {
                Some(existing) if !overwrite => merge(existing, def),
                _ => {
                    self.by_name.insert(def.name.clone(), def);
                }
            }
        }
    }

    /// Glob expansions for keys seen for the first time: the definitions to persist.
    pub(crate) fn expand(&mut self, key: &str) -> Option<MetricRecord> {
        if key.starts_with('_')
            || self.by_name.contains_key(key)
            || !self.seen.insert(key.to_owned())
        {
            return None;
        }
        let glob = self
            .globs
            .iter()
            .rev()
            .find(|g| glob_match(&g.glob_name, key))?;
        let expanded = MetricRecord {
            name: key.to_owned(),
            glob_name: String::new(),
            expanded_from_glob: true,
            ..glob.clone()
        };
        self.by_name.insert(key.to_owned(), expanded.clone());
        Some(expanded)
    }

    /// Remembers values of step metrics from a committed row.
    pub(crate) fn note_step_values<'a>(&mut self, row: impl Iterator<Item = (&'a str, &'a Value)>) {
        if self.step_metrics.is_empty() {
            return;
        }
        for (key, value) in row {
            if self.step_metrics.contains(key) {
                self.latest.insert(key.to_owned(), value.clone());
            }
        }
    }

    /// For a metric defined with `step_sync`, its step metric and that metric's latest
    /// value (to add to a row that lacks it).
    pub(crate) fn step_sync(&self, key: &str) -> Option<(&str, &Value)> {
        let def = self.by_name.get(key)?;
        let sync = def.options.as_ref().is_some_and(|o| o.step_sync);
        if !sync || def.step_metric.is_empty() {
            return None;
        }
        let value = self.latest.get(&def.step_metric)?;
        Some((def.step_metric.as_str(), value))
    }

    /// The summary aggregation a metric asked for, if any.
    pub(crate) fn aggregation(&self, key: &str) -> Option<Aggregation> {
        let def = self.by_name.get(key)?;
        Some(Aggregation {
            flags: def.summary.unwrap_or_default(),
            goal: def.goal,
        })
    }

    pub(crate) fn has_definitions(&self) -> bool {
        !self.by_name.is_empty() || !self.globs.is_empty()
    }
}

/// A later definition of the same name updates the fields it sets.
fn merge(existing: &mut MetricRecord, def: MetricRecord) {
    if !def.step_metric.is_empty() {
        existing.step_metric = def.step_metric;
    }
    if def.options.is_some() {
        existing.options = def.options;
    }
    if def.summary.is_some() {
        existing.summary = def.summary;
    }
    if def.goal != 0 {
        existing.goal = def.goal;
    }
}

/// Shell-style matching: `*` any run of characters (`/` included), `?` one character.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t, m) in [
            ("val/*", "val/loss", true),
            ("val/*", "val/a/b", true),
            ("val/*", "train/loss", false),
            ("*", "x", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*/acc", "val/acc", true),
            ("*/acc", "val/accuracy", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(glob_match(p, t), m, "{p} vs {t}");
        }
    }
}
