//! The run's own files under `files/`: `config.yaml`, `wandb-summary.json` and
//! `wandb-metadata.json`, built from the records that pass through the sender stage (and,
//! online, through the uploader, which upserts the config and streams the summary).
//!
//! Pure state plus one `write_all` that renders and writes the three files atomically
//! ([`write_atomic`]: temporary file, then rename), so a reader never sees half a file.

use std::path::{Path, PathBuf};

use cairn_proto::record::RecordType;
use cairn_proto::{ConfigRecord, Record, SummaryRecord};

use super::tree::{Config, apply_config, remove_path, set_path};
use crate::input::key_path;
use crate::value::Value;

/// Config, summary and metadata as the records so far define them.
#[derive(Debug, Default)]
pub(crate) struct RunFiles {
    /// Top-level config keys and values, in first-set order.
    config: Config,
    /// The summary as a nested map.
    summary: Vec<(String, Value)>,
    /// Every environment record merged, as JSON (the protocol's JSON names, as W&B
    /// writes `wandb-metadata.json`).
    metadata: serde_json::Map<String, serde_json::Value>,
    /// The metric definitions in W&B's numbered form, by name, in first-definition order:
    /// the config's `_wandb.m`, followed by `glob_metrics`.
    metrics: indexmap::IndexMap<String, serde_json::Value>,
    /// The glob definitions, by pattern, likewise.
    glob_metrics: indexmap::IndexMap<String, serde_json::Value>,
    /// Each writer's environment (its `writerId` → its fields): the config's `_wandb.e`.
    environments: serde_json::Map<String, serde_json::Value>,
}

impl RunFiles {
    pub(crate) fn observe(&mut self, record: &Record) {
        match &record.record_type {
            Some(RecordType::Run(run)) => {
                if let Some(config) = &run.config {
                    self.apply_config(config);
                }
            }
            Some(RecordType::Config(config)) => self.apply_config(config),
            Some(RecordType::Summary(summary)) => self.apply_summary(summary),
            Some(RecordType::Telemetry(telemetry)) => self.apply_telemetry(telemetry),
            Some(RecordType::Environment(env)) => self.apply_environment(env),
            Some(RecordType::Metric(metric)) => self.apply_metric(metric),
            _ => {}
        }
    }

    /// The config as it is uploaded and written: with the metric definitions (`m`, perhaps
    /// none) and the environments (`e`) in `_wandb` — derived state, so they are the
    /// current ones whatever the SDK sends under `_wandb`.
    fn config_view(&self) -> std::borrow::Cow<'_, Config> {
        if !self.config.contains_key("_wandb")
            && self.metrics.is_empty()
            && self.glob_metrics.is_empty()
            && self.environments.is_empty()
        {
            return std::borrow::Cow::Borrowed(&self.config);
        }
        let mut config = self.config.clone();
        let entry = wandb_entry(&mut config);
        let metrics = serde_json::Value::Array(
            self.metrics
                .values()
                .chain(self.glob_metrics.values())
                .cloned()
                .collect(),
        );
        if let Some(value) = Value::from_json(&metrics.to_string()) {
            set_path(entry, &["m".to_owned()], value);
        }
        if !self.environments.is_empty() {
            let environments = serde_json::Value::Object(self.environments.clone());
            if let Some(value) = Value::from_json(&environments.to_string()) {
                set_path(entry, &["e".to_owned()], value);
            }
        }
        std::borrow::Cow::Owned(config)
    }

    /// An environment record: merged into `wandb-metadata.json`, and kept per writer in
    /// `_wandb.e` (as W&B's core keeps it).
    fn apply_environment(&mut self, env: &cairn_proto::EnvironmentRecord) {
        let Ok(serde_json::Value::Object(map)) = cairn_proto::json::to_value_json_names(env) else {
            return;
        };
        let writer = self
            .environments
            .entry(env.writer_id.clone())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        for (k, v) in map {
            if k == "_info" {
                continue;
            }
            if let serde_json::Value::Object(fields) = writer {
                fields.insert(k.clone(), v.clone());
            }
            self.metadata.insert(k, v);
        }
    }

    /// A metric definition (`define_metric`), kept in `_wandb.m` in W&B's numbered form,
    /// as observed of W&B's core: named definitions first, globs after them; a step metric
    /// defined before is named by its 1-based position in the list (`step_metric_index`);
    /// flag sets are lists of field numbers (`6` options, `7` summary, both always
    /// present); a glob's definition does not carry `defined`; a step metric not defined
    /// gets a bare entry of its own. A redefinition replaces the entry in place; metrics the
    /// handler expanded from a glob are not definitions. (W&B's order of the entries is not
    /// always the order of definition; the entries and what they point at are the same.)
    fn apply_metric(&mut self, metric: &cairn_proto::MetricRecord) {
        if metric.expanded_from_glob || (metric.name.is_empty() && metric.glob_name.is_empty()) {
            return;
        }
        let mut encoded = metric.clone();
        encoded.control = None;
        if !metric.step_metric.is_empty() && !self.metrics.contains_key(&metric.step_metric) {
            // A step metric never defined gets a bare entry, as W&B's core gives it.
            self.metrics.insert(
                metric.step_metric.clone(),
                serde_json::json!({"1": metric.step_metric, "6": [], "7": []}),
            );
        }
        if let Some(index) = self.metrics.get_index_of(&metric.step_metric)
            && !metric.step_metric.is_empty()
        {
            encoded.step_metric.clear();
            encoded.step_metric_index = i32::try_from(index + 1).unwrap_or(i32::MAX);
        }
        if !metric.glob_name.is_empty()
            && let Some(options) = encoded.options.as_mut()
        {
            options.defined = false;
        }
        let Ok(serde_json::Value::Object(mut numbered)) = cairn_proto::json::to_numbered(&encoded)
        else {
            return;
        };
        for flags in ["6", "7"] {
            numbered
                .entry(flags)
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        }
        let numbered = serde_json::Value::Object(numbered);
        if metric.name.is_empty() {
            self.glob_metrics.insert(metric.glob_name.clone(), numbered);
        } else {
            self.metrics.insert(metric.name.clone(), numbered);
        }
    }

    /// The SDK's telemetry goes where W&B keeps it, in the config's `_wandb`: `t` (the
    /// numbered form), `cli_version` and `python_version` (`config_view` adds `m` and `e`
    /// beside them). (W&B's resume reads `t` back.)
    fn apply_telemetry(&mut self, telemetry: &cairn_proto::TelemetryRecord) {
        let Ok(numbered) = cairn_proto::json::to_numbered(telemetry) else {
            return;
        };
        let Some(t) = Value::from_json(&numbered.to_string()) else {
            return;
        };
        let entry = wandb_entry(&mut self.config);
        set_path(entry, &["t".to_owned()], t);
        for (key, value) in [
            ("cli_version", &telemetry.cli_version),
            ("python_version", &telemetry.python_version),
        ] {
            if !value.is_empty() {
                set_path(entry, &[key.to_owned()], Value::Str(value.clone()));
            }
        }
    }

    /// A config change, applied as W&B's core applies it (`super::tree`): map values merge
    /// into what their path holds, so `_wandb` updates keep the charts and class labels
    /// sent under nested keys before them.
    fn apply_config(&mut self, config: &ConfigRecord) {
        apply_config(&mut self.config, config);
    }

    fn apply_summary(&mut self, summary: &SummaryRecord) {
        let mut root = Value::Map(std::mem::take(&mut self.summary));
        for item in &summary.update {
            let path = key_path(&item.key, &item.nested_key);
            match Value::from_json(&item.value_json) {
                // A key set to null is removed (W&B's rule; see the handler's).
                Some(Value::Null) => remove_path(&mut root, &path),
                Some(value) => set_path(&mut root, &path, value),
                None => set_path(&mut root, &path, Value::Str(item.value_json.clone())),
            }
        }
        for item in &summary.remove {
            remove_path(&mut root, &key_path(&item.key, &item.nested_key));
        }
        if let Value::Map(entries) = root {
            self.summary = entries;
        }
    }

    /// The config in W&B's wire shape, `{"key": {"value": v}, …}`, as JSON text.
    pub(crate) fn config_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (key, value)) in self.config_view().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            crate::value::write_string(key, &mut out);
            out.push_str(":{\"value\":");
            value.write_json(&mut out);
            out.push('}');
        }
        out.push('}');
        out
    }

    /// The summary as one JSON object.
    pub(crate) fn summary_json(&self) -> String {
        Value::Map(self.summary.clone()).to_json()
    }

    /// The files [`RunFiles::write_all`] writes.
    pub(crate) const NAMES: [&str; 3] =
        ["config.yaml", "wandb-summary.json", "wandb-metadata.json"];

    /// Writes `config.yaml`, `wandb-summary.json` and `wandb-metadata.json` into `dir`
    /// ([`RunFiles::NAMES`]; the metadata only when there is some).
    pub(crate) fn write_all(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        let mut yaml = String::new();
        let config = self.config_view();
        let mut keys: Vec<_> = config.iter().collect();
        // Keys sorted at every level, as W&B's core writes them.
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in keys {
            yaml_key(key, &mut yaml);
            yaml.push_str(":\n  value:");
            yaml_value(value, 2, &mut yaml);
        }
        written.push(write_atomic(&dir.join(Self::NAMES[0]), yaml.as_bytes())?);
        let mut summary = Value::Map(self.summary.clone()).to_json();
        summary.push('\n');
        written.push(write_atomic(&dir.join(Self::NAMES[1]), summary.as_bytes())?);
        if !self.metadata.is_empty() {
            let mut meta = serde_json::to_string_pretty(&self.metadata).unwrap_or_default();
            meta.push('\n');
            written.push(write_atomic(&dir.join(Self::NAMES[2]), meta.as_bytes())?);
        }
        Ok(written)
    }
}

/// `config["_wandb"]`, made a map if it is missing or is not one.
fn wandb_entry(config: &mut Config) -> &mut Value {
    let entry = config
        .entry("_wandb".to_owned())
        .or_insert(Value::Map(Vec::new()));
    if !matches!(entry, Value::Map(_)) {
        *entry = Value::Map(Vec::new());
    }
    entry
}

/// Writes `bytes` to `path` through a hidden temporary file beside it that is renamed into
/// place, so a reader sees the old file or the new one, never half of one. The temporary
/// file is removed when either step fails; errors name the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let written = fs_err::write(&tmp, bytes).and_then(|()| fs_err::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| path.to_owned())
}

/// A YAML key: plain when it is a simple word, double-quoted (JSON escaping, which YAML
/// accepts) otherwise.
fn yaml_key(key: &str, out: &mut String) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '/')
        && !key.starts_with(['-', '.'])
        && !matches!(
            key,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
        && key.parse::<f64>().is_err();
    if plain {
        out.push_str(key);
    } else {
        out.push_str(&Value::Str(key.to_owned()).to_json());
    }
}

/// A YAML value after `key:` at `indent` spaces: scalars inline, maps (keys sorted) and
/// lists as blocks.
fn yaml_value(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent + 2);
    match value {
        Value::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            let mut entries: Vec<_> = entries.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, v) in entries {
                out.push_str(&pad);
                yaml_key(k, out);
                out.push(':');
                yaml_value(v, indent + 2, out);
            }
        }
        Value::List(items) if !items.is_empty() => {
            out.push('\n');
            for item in items {
                out.push_str(&pad);
                out.push('-');
                yaml_value(item, indent + 2, out);
            }
        }
        scalar => {
            out.push(' ');
            match scalar {
                Value::Float(f) if f.is_nan() => out.push_str(".nan"),
                Value::Float(f) if f.is_infinite() => {
                    out.push_str(if *f > 0.0 { ".inf" } else { "-.inf" })
                }
                Value::Map(_) => out.push_str("{}"),
                Value::List(_) => out.push_str("[]"),
                other => other.write_json(out),
            }
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use cairn_proto::{ConfigItem, SummaryItem};

    use super::*;

    fn metric(name: &str, glob: &str, step: &str) -> cairn_proto::MetricRecord {
        cairn_proto::MetricRecord {
            name: name.into(),
            glob_name: glob.into(),
            step_metric: step.into(),
            options: Some(cairn_proto::MetricOptions {
                defined: true,
                step_sync: !step.is_empty(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn wandb_json(files: &RunFiles) -> serde_json::Value {
        let config: serde_json::Value = serde_json::from_str(&files.config_json()).unwrap();
        config["_wandb"]["value"].clone()
    }

    #[test]
    fn metric_definitions_and_environments_go_where_wandb_keeps_them() {
        // The definitions of W&B's `rich` fixture, and the `_wandb.m` W&B's own sync
        // stored for them.
        let mut files = RunFiles::default();
        let min = cairn_proto::MetricSummary {
            min: true,
            ..Default::default()
        };
        let max = cairn_proto::MetricSummary {
            max: true,
            ..Default::default()
        };
        let glob = metric("", "val/*", "epoch");
        for (record, summary) in [
            (metric("val/loss", "", ""), Some(min)),
            (metric("val/acc", "", ""), Some(max)),
            (metric("epoch", "", ""), None),
            (glob.clone(), None),
            (metric("val/loss", "", ""), Some(min)), // defined again: same place
        ] {
            files.observe(&Record {
                record_type: Some(RecordType::Metric(cairn_proto::MetricRecord {
                    summary,
                    ..record
                })),
                ..Default::default()
            });
        }
        files.observe(&Record {
            record_type: Some(RecordType::Metric(cairn_proto::MetricRecord {
                name: "val/x".into(),
                expanded_from_glob: true,
                ..glob
            })),
            ..Default::default()
        });
        files.observe(&Record {
            record_type: Some(RecordType::Metric(metric("epoch_loss", "", "batch"))),
            ..Default::default()
        });
        assert_eq!(
            wandb_json(&files)["m"],
            serde_json::json!([
                {"1": "val/loss", "6": [3], "7": [1]},
                {"1": "val/acc", "6": [3], "7": [2]},
                {"1": "epoch", "6": [3], "7": []},
                {"1": "batch", "6": [], "7": []},
                {"1": "epoch_loss", "5": 4, "6": [1, 3], "7": []},
                {"2": "val/*", "5": 3, "6": [1], "7": []},
            ])
        );

        let env = |writer: &str, program: &str| Record {
            record_type: Some(RecordType::Environment(cairn_proto::EnvironmentRecord {
                writer_id: writer.into(),
                program: program.into(),
                code_path: "train.py".into(),
                cpu_count: 2,
                ..Default::default()
            })),
            ..Default::default()
        };
        files.observe(&env("w1", "/a/train.py"));
        files.observe(&env("w2", "/b/child.py"));
        let e = &wandb_json(&files)["e"];
        assert_eq!(e["w1"]["program"], "/a/train.py");
        assert_eq!(e["w2"]["program"], "/b/child.py");
        // W&B's JSON names: `codePath`, `writerId`, but `cpu_count`.
        assert_eq!(e["w1"]["codePath"], "train.py");
        assert_eq!(e["w1"]["writerId"], "w1");
        assert_eq!(e["w1"]["cpu_count"], 2);
        assert_eq!(files.metadata["program"], "/b/child.py");
        assert_eq!(files.metadata["codePath"], "train.py");
    }

    /// What the Python SDK sends for two `wandb.plot` charts and an image with class
    /// labels: both charts and the labels reach the upserted config and `config.yaml`.
    #[test]
    fn charts_and_class_labels_reach_the_config() {
        let config = |items: Vec<ConfigItem>| Record {
            record_type: Some(RecordType::Config(ConfigRecord {
                update: items,
                ..Default::default()
            })),
            ..Default::default()
        };
        let nested = |path: &[&str], json: &str| ConfigItem {
            nested_key: path.iter().map(|s| (*s).to_owned()).collect(),
            value_json: json.into(),
            ..Default::default()
        };
        let top = |key: &str, json: &str| ConfigItem {
            key: key.into(),
            value_json: json.into(),
            ..Default::default()
        };
        let mut files = RunFiles::default();
        files.observe(&config(vec![top("lr", "0.1"), top("_wandb", "{}")]));
        files.observe(&Record {
            record_type: Some(RecordType::Telemetry(cairn_proto::TelemetryRecord {
                cli_version: "0.31.0".into(),
                ..Default::default()
            })),
            ..Default::default()
        });
        files.observe(&config(vec![nested(
            &["_wandb", "visualize", "line"],
            r#"{"panel_type":"Vega2"}"#,
        )]));
        files.observe(&config(vec![nested(
            &["_wandb", "visualize", "bar"],
            r#"{"panel_type":"Vega2"}"#,
        )]));
        // `config.persist()` after the image: the whole `_wandb` the SDK knows.
        files.observe(&config(vec![
            top("lr", "0.1"),
            top(
                "_wandb",
                r#"{"mask/class_labels":{"img":{"value":{"1":"cat"}}}}"#,
            ),
        ]));
        let wandb = wandb_json(&files);
        assert_eq!(wandb["visualize"]["line"]["panel_type"], "Vega2");
        assert_eq!(wandb["visualize"]["bar"]["panel_type"], "Vega2");
        assert_eq!(wandb["mask/class_labels"]["img"]["value"]["1"], "cat");
        assert_eq!(wandb["cli_version"], "0.31.0");
        let dir = tempfile::tempdir().unwrap();
        files.write_all(dir.path()).unwrap();
        let yaml = std::fs::read_to_string(dir.path().join("config.yaml")).unwrap();
        let wandb_yaml: String = yaml
            .lines()
            .take_while(|l| !l.starts_with("lr:"))
            .collect::<Vec<_>>()
            .join("\n");
        insta::assert_snapshot!(wandb_yaml, @r#"
        _wandb:
          value:
            cli_version: "0.31.0"
            m: []
            mask/class_labels:
              img:
                value:
                  "1": "cat"
            t:
              "5": "0.31.0"
            visualize:
              bar:
                panel_type: "Vega2"
              line:
                panel_type: "Vega2"
        "#);
    }

    #[test]
    fn config_yaml_and_summary_json() {
        let mut files = RunFiles::default();
        files.observe(&Record {
            record_type: Some(RecordType::Config(ConfigRecord {
                update: vec![
                    ConfigItem {
                        key: "lr".into(),
                        value_json: "0.01".into(),
                        ..Default::default()
                    },
                    ConfigItem {
                        key: "model".into(),
                        value_json: r#"{"layers":4,"act":"relu","sizes":[1,2]}"#.into(),
                        ..Default::default()
                    },
                    ConfigItem {
                        key: "名前 x".into(),
                        value_json: "\"テスト\"".into(),
                        ..Default::default()
                    },
                    ConfigItem {
                        key: "gone".into(),
                        value_json: "NaN".into(),
                        ..Default::default()
                    },
                ],
                remove: vec![ConfigItem {
                    key: "gone".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        });
        files.observe(&Record {
            record_type: Some(RecordType::Summary(SummaryRecord {
                update: vec![
                    SummaryItem {
                        nested_key: vec!["val".into(), "loss".into()],
                        value_json: r#"{"min":0.5}"#.into(),
                        ..Default::default()
                    },
                    SummaryItem {
                        key: "acc".into(),
                        value_json: "NaN".into(),
                        ..Default::default()
                    },
                    SummaryItem {
                        key: "per_class".into(),
                        value_json: "[0.5,NaN]".into(),
                        ..Default::default()
                    },
                    SummaryItem {
                        key: "unset".into(),
                        value_json: "3".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            })),
            ..Default::default()
        });
        // `run.summary["unset"] = None`: W&B's core drops the key.
        files.observe(&Record {
            record_type: Some(RecordType::Summary(SummaryRecord {
                update: vec![SummaryItem {
                    key: "unset".into(),
                    value_json: "null".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        });
        let dir = tempfile::tempdir().unwrap();
        files.write_all(dir.path()).unwrap();
        let yaml = std::fs::read_to_string(dir.path().join("config.yaml")).unwrap();
        insta::assert_snapshot!(yaml, @r#"
        lr:
          value: 0.01
        model:
          value:
            act: "relu"
            layers: 4
            sizes:
              - 1
              - 2
        "名前 x":
          value: "テスト"
        "#);
        let summary = std::fs::read_to_string(dir.path().join("wandb-summary.json")).unwrap();
        assert_eq!(
            summary,
            "{\"val\":{\"loss\":{\"min\":0.5}},\"acc\":NaN,\"per_class\":[0.5,NaN]}\n"
        );
    }
}
