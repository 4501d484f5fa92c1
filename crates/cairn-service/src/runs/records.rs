//! The SDK's data records as cairn-core pipeline inputs, one function per kind.
//!
//! Pure translation: no IO, no run state. Summary and config changes become the handler's
//! [`SummaryChange`] and [`ConfigChange`] (values that are not JSON are left out), a
//! `partial_history` request becomes a [`LogCall`] (the row's `_timestamp` taken out as its
//! time), and every other kind is persisted as the SDK sent it. Which kinds go where is
//! decided by the registry's dispatch (`registry::Runs::record`).

use std::time::{SystemTime, UNIX_EPOCH};

use cairn_core::input::{ConfigChange, LogCall, Path, SummaryChange, key_path};
use cairn_core::value::Value;
use cairn_proto::record::RecordType;
use cairn_proto::{ConfigRecord, PartialHistoryRequest, Record, RecordInfo, SummaryRecord};

/// A `summary` record: updated and removed keys, each as its path.
pub(super) fn summary_change(summary: &SummaryRecord) -> SummaryChange {
    let (update, remove) = item_changes(
        summary.update.iter().map(|i| {
            (
                i.key.as_str(),
                i.nested_key.as_slice(),
                i.value_json.as_str(),
            )
        }),
        summary
            .remove
            .iter()
            .map(|i| (i.key.as_str(), i.nested_key.as_slice())),
    );
    SummaryChange { update, remove }
}

/// A `config` record: updated and removed keys, each as its path (the nested key when it
/// has one, as W&B's core reads a config item: `run._set_config_wandb` and the charts of
/// `wandb.plot` send `("_wandb", "visualize", key)` with no `key`).
pub(super) fn config_change(config: &ConfigRecord) -> ConfigChange {
    let (update, remove) = item_changes(
        config.update.iter().map(|i| {
            (
                i.key.as_str(),
                i.nested_key.as_slice(),
                i.value_json.as_str(),
            )
        }),
        config
            .remove
            .iter()
            .map(|i| (i.key.as_str(), i.nested_key.as_slice())),
    );
    ConfigChange { update, remove }
}

/// Updated items (`key`, `nested_key`, `value_json`) as paths with their values — an item
/// whose value is not JSON is left out — and removed items as paths.
fn item_changes<'a>(
    update: impl Iterator<Item = (&'a str, &'a [String], &'a str)>,
    remove: impl Iterator<Item = (&'a str, &'a [String])>,
) -> (Vec<(Path, Value)>, Vec<Path>) {
    let update = update
        .filter_map(|(key, nested, json)| Some((key_path(key, nested), Value::from_json(json)?)))
        .collect();
    let remove = remove.map(|(key, nested)| key_path(key, nested)).collect();
    (update, remove)
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
