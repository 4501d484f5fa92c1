//! The SDK's data records as cairn-core pipeline inputs, one function per kind.
//!
//! Pure translation: no IO, no run state. Summary and config changes become the handler's
//! [`SummaryChange`] and [`ConfigChange`] (values that are not JSON are left out), a
//! `partial_history` request becomes a [`LogCall`] (the row's `_timestamp` taken out as its
//! time), and every other kind is persisted as the SDK sent it. Which kinds go where is
//! decided by the registry's dispatch (`registry::Runs::record`).

use std::time::{SystemTime, UNIX_EPOCH};

use cairn_core::input::{ConfigChange, LogCall, SummaryChange};
use cairn_core::value::Value;
use cairn_proto::record::RecordType;
use cairn_proto::{ConfigRecord, PartialHistoryRequest, Record, RecordInfo, SummaryRecord};

/// A `summary` record: updated and removed keys, each as its path.
pub(super) fn summary_change(summary: &SummaryRecord) -> SummaryChange {
    SummaryChange {
        update: summary
            .update
            .iter()
            .filter_map(|i| {
                Some((
                    path(&i.key, &i.nested_key),
                    Value::from_json(&i.value_json)?,
                ))
            })
            .collect(),
        remove: summary
            .remove
            .iter()
            .map(|i| path(&i.key, &i.nested_key))
            .collect(),
    }
}

/// A `config` record: updated and removed keys, each as its path (the nested key when it
/// has one, as W&B's core reads a config item: `run._set_config_wandb` and the charts of
/// `wandb.plot` send `("_wandb", "visualize", key)` with no `key`).
pub(super) fn config_change(config: &ConfigRecord) -> ConfigChange {
    ConfigChange {
        update: config
            .update
            .iter()
            .filter_map(|i| {
                Some((
                    path(&i.key, &i.nested_key),
                    Value::from_json(&i.value_json)?,
                ))
            })
            .collect(),
        remove: config
            .remove
            .iter()
            .map(|i| path(&i.key, &i.nested_key))
            .collect(),
    }
}

/// A `partial_history` request (`run.log`): its items by key (a nested key joined with
/// `.`), its step and commit, and its `_timestamp` as the call's time (now when absent).
pub(super) fn log_call(history: &PartialHistoryRequest) -> LogCall {
    let mut timestamp = None;
    let items = history
        .item
        .iter()
        .filter_map(|item| {
            let value = Value::from_json(&item.value_json)?;
            let key = if item.nested_key.is_empty() {
                item.key.clone()
            } else {
                item.nested_key.join(".")
            };
            if key == "_timestamp" {
                timestamp = value.as_f64();
                return None;
            }
            Some((key, value))
        })
        .collect();
    let timestamp = timestamp.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    });
    LogCall {
        items,
        step: history.step.as_ref().map(|s| s.num),
        commit: history.action.as_ref().map(|a| a.flush),
        timestamp,
    }
}

/// Any other record, persisted as sent: telemetry, console output, files, alerts,
/// artifacts… (`control.local` marks the SDK's requests, never its records, so the
/// control is dropped).
pub(super) fn persisted(kind: RecordType, info: Option<RecordInfo>) -> Record {
    Record {
        record_type: Some(kind),
        control: None,
        info,
        ..Default::default()
    }
}

/// A summary or config item's key path: the nested key when it has one, else the key.
fn path(key: &str, nested: &[String]) -> Vec<String> {
    if nested.is_empty() {
        vec![key.to_owned()]
    } else {
        nested.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_change_keeps_nested_keys() {
        let item = |key: &str, nested: &[&str], json: &str| cairn_proto::ConfigItem {
            key: key.to_owned(),
            nested_key: nested.iter().map(|s| (*s).to_owned()).collect(),
            value_json: json.to_owned(),
        };
        let config = ConfigRecord {
            update: vec![
                item("lr", &[], "0.1"),
                item(
                    "",
                    &["_wandb", "visualize", "roc"],
                    r#"{"panel_type":"Vega2"}"#,
                ),
                item("bad", &[], "{not json"),
            ],
            remove: vec![item("", &["model", "layers"], ""), item("old", &[], "")],
            ..Default::default()
        };
        let change = config_change(&config);
        let paths: Vec<String> = change.update.iter().map(|(p, _)| p.join(".")).collect();
        assert_eq!(paths, ["lr", "_wandb.visualize.roc"]);
        let removed: Vec<String> = change.remove.iter().map(|p| p.join(".")).collect();
        assert_eq!(removed, ["model.layers", "old"]);
    }

    #[test]
    fn a_log_call_takes_its_time_and_joins_nested_keys() {
        let item = |key: &str, nested: &[&str], json: &str| cairn_proto::HistoryItem {
            key: key.to_owned(),
            nested_key: nested.iter().map(|s| (*s).to_owned()).collect(),
            value_json: json.to_owned(),
            ..Default::default()
        };
        let history = PartialHistoryRequest {
            item: vec![
                item("loss", &[], "0.5"),
                item("", &["eval", "acc"], "1"),
                item("_timestamp", &[], "12.5"),
                item("bad", &[], "{not json"),
            ],
            ..Default::default()
        };
        let call = log_call(&history);
        let keys: Vec<&str> = call.items.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["loss", "eval.acc"]);
        assert_eq!(call.timestamp, 12.5);
        assert_eq!((call.step, call.commit), (None, None));
    }
}
