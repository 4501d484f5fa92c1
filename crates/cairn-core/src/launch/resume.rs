//! W&B's resume semantics, as pure functions of the setting and the server's answer.
//!
//! * [`Resume::parse`] reads the setting: `allow`, `must`, `never`, `auto`, and the boolean
//!   forms of `wandb.init(resume=True/False)` — `true` is W&B's `auto`, `false` (or an
//!   empty value) is no resume.
//! * [`decide`] turns the server's answer ([`ResumeStatus`], `None` when it has no such
//!   run) into "resume it", "start it new" or an error naming the run: `must` on a missing
//!   run, `never` on an existing one. `allow` and `auto` resume a run the server has.
//! * [`resume_into`] makes the init's run record the resumed run's: marked resumed, its
//!   steps and runtime continuing, the stored config merged under the new one (keys the
//!   new init sets win; the stored `_wandb` charts and class labels are kept).
//! * [`restored_summary`] is the stored summary as the change that carries it on (keys
//!   this session logs replace it).
//!
//! `auto` also picks the run id: the one `<dir>/wandb/wandb-resume.json` names, when no
//! id is given (the settings resolver reads it; the layout writes it).

use std::collections::HashSet;

use cairn_proto::{ConfigItem, RunRecord};

use super::error::LaunchError;
use crate::input::{SummaryChange, key_path};
use crate::upload::ResumeStatus;
use crate::value::Value;

/// How a run with a given id treats a run of that id the server already has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Resume it if it exists, else start it new.
    Allow,
    /// Resume it; fail if it does not exist.
    Must,
    /// Start it new; fail if it exists.
    Never,
    /// Like `allow`, with the id of the last run in this folder that did not end well.
    Auto,
}

/// What [`Resume::parse`] accepts, for error messages.
pub const RESUME_VALUES: &str = "one of allow, must, never, auto, true or false";

impl Resume {
    /// Parses the setting (any case, spaces around ignored): `Some(None)` for no resume
    /// (`false`, empty), `None` when the text is none of [`RESUME_VALUES`].
    pub fn parse(text: &str) -> Option<Option<Resume>> {
        match text.trim().to_ascii_lowercase().as_str() {
            "allow" => Some(Some(Resume::Allow)),
            "must" => Some(Some(Resume::Must)),
            "never" => Some(Some(Resume::Never)),
            // `wandb.init(resume=True)`: W&B's settings validator makes it "auto".
            "auto" | "true" => Some(Some(Resume::Auto)),
            "false" | "" => Some(None),
            _ => None,
        }
    }

    /// W&B's name of the setting.
    pub fn as_str(self) -> &'static str {
        match self {
            Resume::Allow => "allow",
            Resume::Must => "must",
            Resume::Never => "never",
            Resume::Auto => "auto",
        }
    }
}

/// What `resume` makes of the server's answer about run `id`: `Ok(Some)` to resume it,
/// `Ok(None)` to start it new.
pub fn decide(
    resume: Resume,
    id: &str,
    status: Option<ResumeStatus>,
) -> Result<Option<ResumeStatus>, LaunchError> {
    match (resume, status) {
        (Resume::Must, None) => Err(LaunchError::ResumeMissing { id: id.to_owned() }),
        (Resume::Never, Some(_)) => Err(LaunchError::RunExists { id: id.to_owned() }),
        (_, status) => Ok(status),
    }
}

/// The `_wandb` entries a resumed run keeps from its stored config even when the new init
/// sets `_wandb` (as the SDK always does): its charts and image class labels (W&B's core,
/// `RunConfig.MergeResumedConfig`).
const KEPT_WANDB_ENTRIES: [&str; 3] = ["viz", "visualize", "mask/class_labels"];

/// The init's run record made the resumed run's: marked resumed, its steps continuing
/// after the last stored step, its runtime after the stored runtime, and the stored
/// config under every key the new init does not set, plus each stored chart and class
/// label set under `_wandb` ([`KEPT_WANDB_ENTRIES`]) the new init does not set.
pub fn resume_into(record: &mut RunRecord, status: &ResumeStatus) {
    record.resumed = true;
    record.starting_step = starting_step(status);
    record.runtime = status.runtime.max(0.0).min(f64::from(i32::MAX)) as i32;
    let config = record.config.get_or_insert_with(Default::default);
    let path = |i: &ConfigItem| key_path(&i.key, &i.nested_key);
    let set: HashSet<Vec<String>> = config.update.iter().map(path).collect();
    let mut stored: Vec<ConfigItem> = status
        .config
        .iter()
        .filter(|(key, _)| !set.contains(std::slice::from_ref(*key)))
        .map(|(key, value)| ConfigItem {
            key: key.clone(),
            value_json: value.to_string(),
            ..Default::default()
        })
        .collect();
    // A `_wandb` restored whole carries them already.
    let wandb = ["_wandb".to_owned()];
    if set.contains(wandb.as_slice())
        && let Some(serde_json::Value::Object(old)) = status.config.get("_wandb")
    {
        for entry in KEPT_WANDB_ENTRIES {
            let Some(serde_json::Value::Object(items)) = old.get(entry) else {
                continue;
            };
            for (key, value) in items {
                let nested_key = vec![wandb[0].clone(), entry.to_owned(), key.clone()];
                if !set.contains(&nested_key) {
                    stored.push(ConfigItem {
                        nested_key,
                        value_json: value.to_string(),
                        ..Default::default()
                    });
                }
            }
        }
    }
    config.update.extend(stored);
}

/// The first step of the resumed session: the last stored step + 1 (0 when the server
/// holds no history).
pub fn starting_step(status: &ResumeStatus) -> i64 {
    status.last_step.map_or(0, |s| s.saturating_add(1))
}

/// The stored summary as a change that carries it on; empty when there is none.
pub fn restored_summary(status: &ResumeStatus) -> SummaryChange {
    SummaryChange {
        update: status
            .summary
            .iter()
            .map(|(key, value)| (vec![key.clone()], Value::from(value.clone())))
            .collect(),
        remove: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use cairn_proto::ConfigRecord;
    use serde_json::json;

    use super::*;

    fn status(last_step: Option<i64>) -> ResumeStatus {
        let object = |value: serde_json::Value| match value {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        };
        ResumeStatus {
            last_step,
            runtime: 42.7,
            history_lines: last_step.map_or(0, |s| s as u64 + 1),
            config: object(json!({"lr": 0.1, "layers": 3, "_wandb": {"t": {"1": [1]}}})),
            summary: object(json!({"loss": 0.25, "best": {"acc": 0.9}})),
        }
    }

    #[test]
    fn every_resume_value_parses() {
        let cases = [
            ("allow", Some(Some(Resume::Allow))),
            ("must", Some(Some(Resume::Must))),
            ("never", Some(Some(Resume::Never))),
            ("auto", Some(Some(Resume::Auto))),
            (" MUST ", Some(Some(Resume::Must))),
            ("true", Some(Some(Resume::Auto))),
            ("True", Some(Some(Resume::Auto))),
            ("false", Some(None)),
            ("FALSE", Some(None)),
            ("", Some(None)),
            ("sometimes", None),
            ("1", None),
            ("yes", None),
        ];
        for (text, expect) in cases {
            assert_eq!(Resume::parse(text), expect, "{text:?}");
        }
        for resume in [Resume::Allow, Resume::Must, Resume::Never, Resume::Auto] {
            assert_eq!(Resume::parse(resume.as_str()), Some(Some(resume)));
        }
    }

    #[test]
    fn each_setting_decides_on_the_server_s_answer() {
        for resume in [Resume::Allow, Resume::Must, Resume::Never, Resume::Auto] {
            let on_existing = decide(resume, "r1", Some(status(Some(9))));
            let on_missing = decide(resume, "r1", None);
            match resume {
                Resume::Allow | Resume::Auto => {
                    assert_eq!(on_existing.unwrap(), Some(status(Some(9))));
                    assert_eq!(on_missing.unwrap(), None);
                }
                Resume::Must => {
                    assert!(on_existing.unwrap().is_some());
                    let err = on_missing.unwrap_err();
                    assert!(err.is_usage());
                    assert!(
                        err.to_string().starts_with("run r1 does not exist"),
                        "{err}"
                    );
                }
                Resume::Never => {
                    assert_eq!(on_missing.unwrap(), None);
                    let err = on_existing.unwrap_err();
                    assert!(err.is_usage());
                    assert!(
                        err.to_string().starts_with("run r1 already exists"),
                        "{err}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_resumed_record_continues_steps_runtime_and_config() {
        let mut record = RunRecord {
            run_id: "r1".into(),
            config: Some(ConfigRecord {
                update: vec![ConfigItem {
                    key: "lr".into(),
                    value_json: "0.5".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        resume_into(&mut record, &status(Some(9)));
        assert!(record.resumed);
        assert_eq!(record.starting_step, 10);
        assert_eq!(record.runtime, 42);
        let config: Vec<(&str, &str)> = record
            .config
            .as_ref()
            .unwrap()
            .update
            .iter()
            .map(|i| (i.key.as_str(), i.value_json.as_str()))
            .collect();
        // The new init's lr wins; the stored keys it does not set come back.
        assert_eq!(
            config,
            [
                ("lr", "0.5"),
                ("_wandb", r#"{"t":{"1":[1]}}"#),
                ("layers", "3")
            ]
        );
    }

    /// The SDK's init always sets `_wandb`; the stored charts and class labels come back
    /// under it as nested keys, and merge into it (`crate::runfiles`).
    #[test]
    fn a_resumed_record_keeps_its_charts_and_class_labels() {
        let mut record = RunRecord {
            config: Some(ConfigRecord {
                update: vec![ConfigItem {
                    key: "_wandb".into(),
                    value_json: "{}".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut stored = status(Some(9));
        stored.config.insert(
            "_wandb".into(),
            json!({
                "t": {"1": [1]},
                "visualize": {"roc": {"panel_type": "Vega2"}},
                "mask/class_labels": {"img": {"value": {"1": "cat"}}},
            }),
        );
        resume_into(&mut record, &stored);
        let config: Vec<(String, &str)> = record
            .config
            .as_ref()
            .unwrap()
            .update
            .iter()
            .map(|i| {
                let key = if i.nested_key.is_empty() {
                    i.key.clone()
                } else {
                    format!("[{}]", i.nested_key.join("."))
                };
                (key, i.value_json.as_str())
            })
            .collect();
        let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            config,
            [
                ("_wandb", "{}"),
                ("layers", "3"),
                ("lr", "0.1"),
                ("[_wandb.visualize.roc]", r#"{"panel_type":"Vega2"}"#),
                ("[_wandb.mask/class_labels.img]", r#"{"value":{"1":"cat"}}"#),
            ]
        );
    }

    #[test]
    fn a_run_without_history_starts_at_step_0() {
        let mut record = RunRecord::default();
        resume_into(&mut record, &status(None));
        assert_eq!(record.starting_step, 0);
        assert!(record.resumed);
    }

    #[test]
    fn the_stored_summary_comes_back_key_by_key() {
        let change = restored_summary(&status(Some(1)));
        assert!(change.remove.is_empty());
        assert_eq!(
            change.update,
            [
                (
                    vec!["best".to_owned()],
                    Value::Map(vec![("acc".to_owned(), Value::Float(0.9))])
                ),
                (vec!["loss".to_owned()], Value::Float(0.25)),
            ]
        );
    }
}
